# SSH and PEM keys as age recipients and identities (issue 3).
# Included from tests/CMakeLists.txt after sbx_add_test() is defined:
#   include(age/ssh.cmake)
sbx_add_test(age/ssh age/test_ssh.c unit OpenSSL::Crypto)
target_compile_definitions(test_age_ssh PRIVATE
                           SBX_SSH_VECTORS="${CMAKE_CURRENT_SOURCE_DIR}/vectors/ssh")

# Interop with the real age, ssh-keygen and openssl (a missing peer fails the test).
add_test(NAME interop/ssh
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/interop/ssh_interop.sh $<TARGET_FILE:sbx>)
set_tests_properties(interop/ssh PROPERTIES LABELS interop TIMEOUT 600)
add_test(NAME interop/migrate
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/interop/migrate_test.sh $<TARGET_FILE:sbx>)
set_tests_properties(interop/migrate PROPERTIES LABELS interop TIMEOUT 600)
