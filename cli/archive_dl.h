/*
 * cli/archive_dl.h - libarchive, loaded only when sbx migrate needs it.
 *
 * libarchive drags in about twenty shared libraries (xml2, ICU, zstd, ...)
 * whose loading costs every sbx run some 2 ms, several times the work of
 * encrypting a small file. So it is not linked: archive_dl_load() dlopen()s
 * it on first use, and the macros below route the calls of migrate.c
 * through the loaded symbols. Include this instead of <archive.h>.
 */
#ifndef SBX_CLI_ARCHIVE_DL_H
#define SBX_CLI_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>

struct archive_dl {
    __typeof__(&archive_read_new) read_new;
    __typeof__(&archive_read_free) read_free;
    __typeof__(&archive_read_support_filter_gzip) support_filter_gzip;
    __typeof__(&archive_read_support_format_tar) support_format_tar;
    __typeof__(&archive_read_open_fd) open_fd;
    __typeof__(&archive_read_next_header) next_header;
    __typeof__(&archive_read_data) read_data;
    __typeof__(&archive_error_string) error_string;
    __typeof__(&archive_entry_filetype) entry_filetype;
    __typeof__(&archive_entry_hardlink) entry_hardlink;
    __typeof__(&archive_entry_pathname) entry_pathname;
    __typeof__(&archive_entry_size) entry_size;
    __typeof__(&archive_entry_symlink) entry_symlink;
};

/** The loaded library; valid only after archive_dl_load() returned true. */
extern struct archive_dl archive_dl;

/**
 * Load libarchive (once). On failure, writes the reason to why and returns
 * false (e.g. the libarchive13 package is missing).
 */
bool archive_dl_load(char *why, size_t why_len);

#define archive_read_new(...)                 archive_dl.read_new(__VA_ARGS__)
#define archive_read_free(...)                archive_dl.read_free(__VA_ARGS__)
#define archive_read_support_filter_gzip(...) archive_dl.support_filter_gzip(__VA_ARGS__)
#define archive_read_support_format_tar(...)  archive_dl.support_format_tar(__VA_ARGS__)
#define archive_read_open_fd(...)             archive_dl.open_fd(__VA_ARGS__)
#define archive_read_next_header(...)         archive_dl.next_header(__VA_ARGS__)
#define archive_read_data(...)                archive_dl.read_data(__VA_ARGS__)
#define archive_error_string(...)             archive_dl.error_string(__VA_ARGS__)
#define archive_entry_filetype(...)           archive_dl.entry_filetype(__VA_ARGS__)
#define archive_entry_hardlink(...)           archive_dl.entry_hardlink(__VA_ARGS__)
#define archive_entry_pathname(...)           archive_dl.entry_pathname(__VA_ARGS__)
#define archive_entry_size(...)               archive_dl.entry_size(__VA_ARGS__)
#define archive_entry_symlink(...)            archive_dl.entry_symlink(__VA_ARGS__)

#endif
