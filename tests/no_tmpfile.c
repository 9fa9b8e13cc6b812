/*
 * tests/no_tmpfile.c - LD_PRELOAD shim: a filesystem without O_TMPFILE.
 *
 * open() and openat() with O_TMPFILE fail with EOPNOTSUPP, as on a filesystem
 * that lacks unnamed files; everything else goes to the C library. Tests run
 * the atomic file sink and sbx under it to check the weaker case (a named
 * temporary file, removed by signal handlers).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);

static bool
refused(int flags)
{
    if ((flags & O_TMPFILE) != O_TMPFILE)
        return false;
    errno = EOPNOTSUPP;
    return true;
}

static mode_t
mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) != 0 ? (mode_t)va_arg(ap, unsigned) : 0;
}

#define OPEN_SHIM(name)                                                                            \
    int name(const char *path, int flags, ...)                                                     \
    {                                                                                              \
        static open_fn real;                                                                       \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode_t mode = mode_arg(flags, ap);                                                         \
        va_end(ap);                                                                                \
        if (refused(flags))                                                                        \
            return -1;                                                                             \
        if (real == NULL)                                                                          \
            *(void **)&real = dlsym(RTLD_NEXT, #name);                                             \
        return real(path, flags, mode);                                                            \
    }

#define OPENAT_SHIM(name)                                                                          \
    int name(int dfd, const char *path, int flags, ...)                                            \
    {                                                                                              \
        static openat_fn real;                                                                     \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode_t mode = mode_arg(flags, ap);                                                         \
        va_end(ap);                                                                                \
        if (refused(flags))                                                                        \
            return -1;                                                                             \
        if (real == NULL)                                                                          \
            *(void **)&real = dlsym(RTLD_NEXT, #name);                                             \
        return real(dfd, path, flags, mode);                                                       \
    }

OPEN_SHIM(open)
OPEN_SHIM(open64)
OPENAT_SHIM(openat)
OPENAT_SHIM(openat64)
