/*
 * cli/archive_dl.c - loading libarchive at run time (see archive_dl.h).
 */
#include <dlfcn.h>
#include <stdio.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive_dl.h"

struct archive_dl archive_dl;

#define SYM(field, name)                                                                           \
    {                                                                                              \
        (void **)&archive_dl.field, #name                                                          \
    }

bool
archive_dl_load(char *why, size_t why_len)
{
    static void *handle;
    const struct {
        void **slot;
        const char *name;
    } syms[] = {
        SYM(read_new, archive_read_new),
        SYM(read_free, archive_read_free),
        SYM(support_filter_gzip, archive_read_support_filter_gzip),
        SYM(support_format_tar, archive_read_support_format_tar),
        SYM(open_fd, archive_read_open_fd),
        SYM(next_header, archive_read_next_header),
        SYM(read_data, archive_read_data),
        SYM(error_string, archive_error_string),
        SYM(entry_filetype, archive_entry_filetype),
        SYM(entry_hardlink, archive_entry_hardlink),
        SYM(entry_pathname, archive_entry_pathname),
        SYM(entry_size, archive_entry_size),
        SYM(entry_symlink, archive_entry_symlink),
    };
    if (handle != NULL)
        return true;
    void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(why, why_len, "cannot load libarchive (%s); install the libarchive13 package",
                 dlerror());
        return false;
    }
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if ((*syms[i].slot = dlsym(h, syms[i].name)) == NULL) {
            snprintf(why, why_len, "libarchive lacks %s", syms[i].name);
            dlclose(h);
            return false;
        }
    }
    handle = h;
    return true;
}
