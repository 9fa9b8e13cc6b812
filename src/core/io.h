/* src/core/io.h - small I/O helpers shared inside the library (internal). */
#ifndef SBX_CORE_IO_H
#define SBX_CORE_IO_H

#include "strongbox/common.h"

/* write(2) all of data, retrying on EINTR and short writes. 0 or SBX_EIO. */
int sbx__write_all(int fd, const uint8_t *data, size_t len);

#endif
