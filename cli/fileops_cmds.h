/*
 * cli/fileops_cmds.h - the file tools of sbx: rotate, pad, unpad, inspect,
 * and the --pad/--pad-to helpers for encrypt and decrypt (cli/pad_opts.c).
 *
 * Each command exports its manual page as two arrays, usable in the static
 * page table of cli/help.c: usage_<cmd> ("usage: ..." lines) and help_<cmd>
 * (NAME ... EXAMPLES; help.c appends EXIT STATUS).
 */
#ifndef SBX_CLI_FILEOPS_CMDS_H
#define SBX_CLI_FILEOPS_CMDS_H

#include "cli.h"

int cmd_rotate(int argc, char **argv);
int cmd_pad(int argc, char **argv);
int cmd_unpad(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

extern const char usage_rotate[], help_rotate[];
extern const char usage_pad[], help_pad[];
extern const char usage_unpad[], help_unpad[];
extern const char usage_inspect[], help_inspect[];

/* ---- pad_opts.c: --pad / --pad-to for sbx encrypt and sbx decrypt ---- */

/** Options of encrypt's padding. */
struct cli_pad_opts {
    bool pad;        /**< --pad or --pad-to given */
    uint64_t bucket; /**< 0 = PADME */
};

/**
 * Parse a size with an optional binary suffix (K, M, G, T = KiB ...; "KiB"
 * and "k" also accepted): "4096", "64K", "1M". @return false when invalid or 0.
 */
bool cli_parse_size(uint64_t *out, const char *s);

/**
 * For encrypt's option loop: --pad (optarg NULL) or --pad-to SIZE.
 * @return CLI_OK, or CLI_USAGE after printing the problem.
 */
int cli_pad_option(struct cli_pad_opts *p, const char *optarg_or_null);

/**
 * Create the encryptor: the padded one when p->pad, else sbx_age_encryptor_new().
 * The message on failure is left in sbx_error_last().
 */
int cli_pad_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *r, size_t n,
                          const sbx_age_encrypt_options *opts, const struct cli_pad_opts *p);

#endif
