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

/* ---- main.c: the commands of sbx ---- */

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
};

/**
 * Every command of sbx, in the overview's order: the one list behind the
 * dispatch, the SYNOPSIS and COMMANDS of the overview and the command lists
 * of usage errors (help.c), so that none of them can leave a command out.
 */
extern const struct cli_command cli_commands[];
extern const size_t cli_ncommands;

/* ---- help.c: the overview of sbx ---- */

/** The overview page (sbx help, sbx --help): its SYNOPSIS and COMMANDS from cli_commands. */
void cli_overview_print(FILE *f);
/** sbx's usage lines and its commands on stderr (sbx alone, an unknown command). @return CLI_USAGE.
 */
int cli_overview_usage(void);

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
/** The page named name, or NULL. */
const struct cli_page *cli_page_find(const char *name);
/** The EXIT STATUS section that ends every page. */
void cli_exit_status_print(FILE *f);
/** Print "usage: ..." for a command and a pointer to its help on stderr; @return CLI_USAGE. */
int cli_usage(const char *command);

/* ---- messages.c ---- */

/**
 * What sbx and sbx-kms do first: lock key memory (sbx_init), make sure no
 * core file can ever hold a key, and let cli_bad_option() word getopt's
 * complaints. A failure to lock is reported only with SBX_DEBUG set.
 */
void cli_process_start(void);

/* ---- signals.c ---- */

/**
 * Install sbx's handlers for the signals that end it (SIGINT, SIGTERM, SIGHUP,
 * SIGPIPE, ...): named temporary files of unfinished outputs are removed, then
 * the signal ends the process. Signals already ignored stay ignored.
 */
void cli_signals_install(void);

/* ---- messages.c (continued) ---- */

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

/**
 * After the option loop (optind is the first operand): refuse an operand that
 * looks like an option ("-x", "--name"; "-" alone is standard input), unless
 * "--" ended the options. Options go before operands (POSIX), so in
 * `sbx destroy a.csv --json` the --json would otherwise be taken for a file
 * only after a.csv was destroyed: every command checks this before any work.
 * @return CLI_OK, or CLI_USAGE (printed).
 */
int cli_operands_check(const char *command, int argc, char **argv);

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

/**
 * Warn, as cli_read_small_file does with warn_mode, when the regular file at
 * path is accessible by group or others: for a secret file that another
 * part reads (the library reads SBX_KMS_TOKEN_FILE itself).
 */
void cli_warn_if_exposed(const char *what, const char *path);

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

/**
 * Ask on the terminal (/dev/tty): write prompt, read one line into out (a
 * wiped sbx_buf), with echo off when secret. @return 0, or SBX_ECANCELED
 * (no terminal) or another code, with the reason in err.
 */
int cli_tty_ask(sbx_buf *out, const char *prompt, bool secret, char *err, size_t errlen);

/* ---- plugin_ui.c ---- */

/** Give every age plugin key in the list the terminal UI (others are left alone). */
void cli_plugin_ui_identities(sbx_identity **ids, size_t n);
void cli_plugin_ui_recipients(sbx_recipient **list, size_t n);

/** As cli_read_passphrase() without confirm, prompting "Enter passphrase for <what>: ". */
int cli_read_passphrase_for(sbx_buf *out, const char *file, const char *what, char *err,
                            size_t errlen);

#endif
