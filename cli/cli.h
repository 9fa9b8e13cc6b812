/*
 * cli/cli.h - shared helpers of the sbx command.
 *
 * The command is a thin layer over libstrongbox: each subcommand parses its
 * arguments with getopt_long ("+": options before operands, as POSIX), calls
 * the library and prints. Exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include "strongbox/strongbox.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/** Largest key, recipients or passphrase file we read (they are small text files). */
#define CLI_MAX_KEY_FILE (16u * 1024 * 1024)
/** Longest passphrase accepted from a terminal or a file. */
#define CLI_MAX_PASSPHRASE 4096

/* ---- subcommands (argv[0] is the subcommand name) ---- */
int cmd_keygen(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_migrate(int argc, char **argv); // cli/migrate.c

/* ---- manual.c: manual pages (the table is the program's: help.c in sbx) ---- */

/** A manual page: "usage: ..." lines, and NAME ... EXAMPLES (EXIT STATUS is appended). */
struct cli_page {
    const char *name;
    const char *usage;
    const char *text;
};

/** The program's pages, searched by name; defined by cli/help.c (sbx) or server/main.c. */
extern const struct cli_page cli_pages[];
extern const size_t cli_npages;

/** The page of sbx kms (cli/kms_manual.c), shared with the key server program. */
extern const char usage_kms[], help_kms[];

/**
 * Print the manual page of a command ("sbx" for the overview): the one printer
 * behind `sbx help CMD` and `sbx CMD --help`. Every command's page is in the
 * table of help.c. @return false if unknown.
 */
bool cli_help_print(FILE *f, const char *command);
/** Print "usage: ..." for a command and a pointer to its help on stderr; @return CLI_USAGE. */
int cli_usage(const char *command);

/* ---- messages.c ---- */

/**
 * What sbx and sbx-kms do first: lock key memory (sbx_init), make sure no
 * core file can ever hold a key, and let cli_bad_option() word getopt's
 * complaints. A failure to lock is reported only with SBX_DEBUG set.
 */
void cli_process_start(void);

/** "sbx: error: <fmt>" on stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** "sbx: error: [<prefix>: ]<last library error message>" on stderr. */
void cli_error_lib(const char *prefix);
/** "sbx: warning: <fmt>" on stderr. */
void cli_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** "sbx: hint: <fmt>" on stderr. */
void cli_hintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Report a usage problem of command: "sbx: error: <fmt>" then its usage line. @return CLI_USAGE.
 */
int cli_usage_errorf(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Report a getopt_long failure (c is '?' or ':'; the option string starts with
 * "+:" and opterr is 0) as a usage error. @return CLI_USAGE.
 */
struct option;
int cli_bad_option(const char *command, int c, char **argv, const struct option *longopts);

/** Parse a decimal integer in [min, max]. @return false when it is not one. */
bool cli_parse_int(int *out, const char *s, int min, int max);

/* ---- files.c ---- */

/**
 * Read a small file ("-" = standard input) into buf, which is wiped on
 * dispose so it may hold secrets. what names the file in messages
 * ("identity file"). With warn_mode, warn when a regular file is accessible
 * by group or others. @return 0 or a negative SBX_E* code (message printed).
 */
int cli_read_small_file(sbx_buf *buf, const char *path, const char *what, bool warn_mode);

/** Open the output: an atomic file sink with mode, or standard output when path is NULL. */
int cli_open_output(sbx_sink **out, const char *path, unsigned mode);

/**
 * Parse every identity in an identity file and append them to *ids. A
 * protected file (an age file encrypted with a passphrase, as `age -p` makes
 * them, or a passphrase-protected PEM key) is opened with the passphrase from
 * passphrase_file, or asked on the terminal when it is NULL. A public key
 * given instead (a recipients file, or an age1.../ssh-... string that is not
 * a file) gets a hint towards -r/-R and -i.
 * @return 0 or < 0 (printed).
 */
int cli_load_identities_pass(sbx_identity ***ids, size_t *count, const char *path,
                             const char *passphrase_file);

/** cli_load_identities_pass() asking a passphrase, when one is needed, on the terminal. */
int cli_load_identities(sbx_identity ***ids, size_t *count, const char *path);

/* ---- recipients.c (the loader itself: recipients.h) ---- */

/** Append r to a malloc'ed recipient array; on failure frees r, reports, SBX_ENOMEM. */
int cli_recipient_append(sbx_recipient ***list, size_t *n, sbx_recipient *r);

/* ---- passphrase.c ---- */

/**
 * Read a passphrase into out (a wiped sbx_buf): from file when not NULL
 * (first line, trailing "\n" or "\r\n" removed), else from /dev/tty with echo
 * off, asking twice when confirm is set. An empty passphrase is refused.
 * On failure, a message is written to err (errlen bytes) and nothing printed.
 * @return 0, SBX_ECANCELED (empty, mismatch, no terminal), SBX_EIO, SBX_ETOOBIG.
 */
int cli_read_passphrase(sbx_buf *out, const char *file, bool confirm, char *err, size_t errlen);

/** As cli_read_passphrase() without confirm, prompting "Enter passphrase for <what>: ". */
int cli_read_passphrase_for(sbx_buf *out, const char *file, const char *what, char *err,
                            size_t errlen);

#endif
