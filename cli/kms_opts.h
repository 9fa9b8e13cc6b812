/*
 * cli/kms_opts.h - the key server options shared by sbx encrypt, decrypt and
 * rotate (cli/kms_opts.c): envelope (sbx-kms) recipients and identities.
 *
 * Credentials and trust come from the environment as for the library
 * (SBX_KMS_TOKEN, SBX_KMS_TOKEN_FILE, SBX_KMS_CACERT, SBX_KMS_FINGERPRINT,
 * SBX_KMS_CLIENT_CERT, SBX_KMS_CLIENT_KEY, SBX_KMS_URL); the flags below win
 * over it. The token itself is never a flag: it would show in ps(1).
 */
#ifndef SBX_CLI_KMS_OPTS_H
#define SBX_CLI_KMS_OPTS_H

#include "cli.h"

/* getopt_long values of the options (above every command's own enum). */
enum {
    CLI_OPT_KMS = 1000,      /* --kms URL: encrypt to a key server key */
    CLI_OPT_KMS_TOKEN_FILE,  /* --kms-token-file FILE */
    CLI_OPT_KMS_CACERT,      /* --kms-cacert FILE */
    CLI_OPT_KMS_FINGERPRINT, /* --kms-fingerprint FP */
    CLI_OPT_KMS_URL,         /* --kms-url URL: an allowed server for decryption */
};

#define CLI_KMS_TRUST_LONGOPTS                                                                     \
    {"kms-token-file", required_argument, NULL, CLI_OPT_KMS_TOKEN_FILE},                           \
        {"kms-cacert", required_argument, NULL, CLI_OPT_KMS_CACERT},                               \
    {                                                                                              \
        "kms-fingerprint", required_argument, NULL, CLI_OPT_KMS_FINGERPRINT                        \
    }

struct cli_kms_opts {
    const char **keys; /* --kms URLs */
    size_t nkeys;
    const char **urls; /* --kms-url */
    size_t nurls;
    const char *token_file, *cacert, *fingerprint;
    bool any;              /* some --kms-* trust option was given */
    bool env_file_checked; /* SBX_KMS_TOKEN_FILE's mode was checked (warned once) */
    sbx_buf token;
    sbx_kms_client **clients; /* of the recipients, freed by dispose */
    size_t nclients;
};

/** Allocate the lists for argc arguments. @return CLI_OK or CLI_FAIL (printed). */
int cli_kms_opts_init(struct cli_kms_opts *o, int argc);

/** Take one option (c is a CLI_OPT_KMS* value). @return false if c is not one. */
bool cli_kms_option(struct cli_kms_opts *o, int c, const char *arg);

/** Free everything, wiping the token (after the recipients are freed). */
void cli_kms_opts_dispose(struct cli_kms_opts *o);

/**
 * Append a recipient for each --kms URL to *list (realloc'ed, *n updated).
 * @return 0 or < 0 (printed).
 */
int cli_kms_add_recipients(sbx_recipient ***list, size_t *n, struct cli_kms_opts *o);

/**
 * A key server identity from the environment and the flags, in *out.
 * @return 0 or < 0 (message left in sbx_error_last(), not printed).
 */
int cli_kms_identity(sbx_identity **out, struct cli_kms_opts *o);

/**
 * Append the key server identity to ids (realloc'ed). When it cannot be made
 * and the user gave neither key server flags nor `required`, warn and go
 * on without it. @return 0 or < 0 (printed).
 */
int cli_kms_add_identity(sbx_identity ***ids, size_t *n, struct cli_kms_opts *o, bool required);

/**
 * A client of the key server that the flags or the environment name (the
 * first --kms-url, else the first entry of SBX_KMS_URL), with the same
 * credentials and trust as --kms. @return 0 or < 0 (printed).
 */
int cli_kms_client(sbx_kms_client **out, struct cli_kms_opts *o);

/** Hints for a failure that involved the key server (err: the library code). */
void cli_kms_hint(int err);

#endif
