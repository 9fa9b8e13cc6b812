# strongbox.pc and strongbox-kms.pc, relocatable: prefix=${pcfiledir}/../.. (one ".." per
# level of <libdir>/pkgconfig), so that they stay right after
# `cmake --install build --prefix ANYWHERE` or after the installed tree is moved.
# An absolute CMAKE_INSTALL_LIBDIR or CMAKE_INSTALL_INCLUDEDIR (some distributions pass
# them) cannot be relative to the .pc file: those paths are written as given.

set(SBX_PC_PREFIX "\${pcfiledir}")
file(RELATIVE_PATH _sbx_pc_up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" _sbx_pc_up "${_sbx_pc_up}")
if(_sbx_pc_up)
  string(APPEND SBX_PC_PREFIX "/${_sbx_pc_up}")
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(SBX_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(SBX_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SBX_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
endif()

foreach(pc strongbox strongbox-kms)
  configure_file(${PROJECT_SOURCE_DIR}/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
