/*
 * cli/recipients.h - the recipients of sbx encrypt, rotate and migrate,
 * loaded in one place (cli/recipients.c): -r strings, -R files, encrypt's -i
 * identity files, --kms keys (through cli/kms_opts.h), or a passphrase.
 *
 * Everything is appended to one malloc'ed array that the caller frees with
 * sbx_recipients_free(list, n), on success and on failure alike: a failure
 * leaves the recipients loaded so far in it. Every failure, running out of
 * memory included, is reported on stderr and returned as a negative SBX_E*
 * code; nothing aborts.
 */
#ifndef SBX_CLI_RECIPIENTS_H
#define SBX_CLI_RECIPIENTS_H

#include "cli.h"

struct cli_kms_opts;

/** What a command line names as recipients, loaded in this order. */
struct cli_recipient_args {
    const char *const *strings; /**< -r RECIPIENT */
    size_t nstrings;
    const char *const *files; /**< -R FILE ("-": standard input) */
    size_t nfiles;
    const char *const *identity_files; /**< -i FILE: to the identities' own recipients */
    size_t nidentity_files;
    struct cli_kms_opts *kms; /**< --kms URL..., or NULL */
    /**
     * encrypt's messages: a bad -r names its argument (a secret key pasted by
     * mistake is not shown) with hints towards -R and -i, and a recipients
     * file holding secret keys gets a hint. Otherwise "-r: <problem>".
     */
    bool explain;
};

/**
 * Append every recipient of a to *list (n counts them).
 * @return 0, or < 0 after printing the problem.
 */
int cli_recipients_load(sbx_recipient ***list, size_t *n, const struct cli_recipient_args *a);

/**
 * Append a passphrase (scrypt) recipient: the passphrase is read from file,
 * or asked twice on the terminal when file is NULL; log_n is the work factor
 * (0: the default). what prefixes a failure to read it ("new passphrase"), or NULL.
 * @return 0, or < 0 after printing the problem.
 */
int cli_recipients_add_passphrase(sbx_recipient ***list, size_t *n, const char *file, int log_n,
                                  const char *what);

#endif
