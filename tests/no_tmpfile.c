/*
 * tests/no_tmpfile.c - LD_PRELOAD shim: a filesystem without O_TMPFILE.
 *
 * open() and openat() with O_TMPFILE fail with EOPNOTSUPP, as on a filesystem
 * that lacks unnamed files; everything else goes to the C library's openat().
 * Tests run the atomic file sink and sbx under it to check the weaker case (a
 * named temporary file, removed by signal handlers).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

typedef int (*openat_fn)(int, const char *, int, ...);

static int
forward(int dfd, const char *path, int flags, mode_t mode)
{
    static openat_fn real;
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        errno = EOPNOTSUPP;
        return -1;
    }
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "openat");
    return real(dfd, path, flags, mode);
}

/* The mode argument, present only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                                                      \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? (mode_t)va_arg(ap, unsigned) : 0;            \
        va_end(ap);                                                                                \
    } while (0)

int
open(const char *path, int flags, ...)
{
    mode_t mode;
    MODE_ARG(flags, mode);
    return forward(AT_FDCWD, path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
    mode_t mode;
    MODE_ARG(flags, mode);
    return forward(AT_FDCWD, path, flags, mode);
}

int
openat(int dfd, const char *path, int flags, ...)
{
    mode_t mode;
    MODE_ARG(flags, mode);
    return forward(dfd, path, flags, mode);
}

int
openat64(int dfd, const char *path, int flags, ...)
{
    mode_t mode;
    MODE_ARG(flags, mode);
    return forward(dfd, path, flags, mode);
}
