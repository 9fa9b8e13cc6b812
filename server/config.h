/*
 * server/config.h - the settings of `sbx kms serve`: one name per setting,
 * used both as the long option (--max-body 2M) and as the key of the
 * configuration file (max-body = 2M) (internal).
 *
 * Configuration file (--config FILE): the grammar of libinih, the INI parser
 * Debian maintains (package libinih): `key = value` lines (also `key: value`),
 * whitespace around both trimmed; lines starting with `#` or `;` are comments,
 * and so is the rest of a line after ` ;`; blank lines are skipped; an
 * indented line continues the previous value. Sections (`[name]`) are not
 * used and are refused. The keys are the long option names without the
 * dashes; booleans (dev, audit-fail-closed) take true or false. A later line
 * overrides an earlier one; command-line flags override the file. The first
 * unknown key, bad value or malformed line is an error naming FILE:LINE.
 */
#ifndef SBX_SERVER_CONFIG_H
#define SBX_SERVER_CONFIG_H

#include "serve.h"

#include <stdbool.h>
#include <stddef.h>

#define KMS_CONFIG_ERR_MAX 512

/*
 * Sets the setting NAME (a long option name without "--") in o from value
 * (NULL for a boolean given as a flag: true). Strings are copied into o's
 * pool when copy is true (borrowed otherwise). The error text names the
 * setting as "--NAME" when flag is true, as "NAME" otherwise. Returns 0, or
 * -1 with err set (nothing changed).
 */
int kms_config_set(kms_serve_options *o, const char *name, const char *value, bool flag, bool copy,
                   char err[KMS_CONFIG_ERR_MAX]);

/*
 * Reads the configuration file path into o (see above). Returns 0, or -1
 * with err set to "PATH:LINE: what is wrong" (or "cannot read PATH: ...").
 */
int kms_config_file(kms_serve_options *o, const char *path, char err[KMS_CONFIG_ERR_MAX]);

/*
 * The settings of `sbx kms serve`: the config file (o->config_file) when
 * given, then the flags (o->flags). o starts from all defaults.
 */
int kms_config_build(kms_serve_options *o, const char *config_file, const kms_config_pair *flags,
                     size_t nflags, char err[KMS_CONFIG_ERR_MAX]);

/* Whether SIGHUP applies a change of NAME (true) or it waits for a restart. */
bool kms_config_is_live(const char *name);

/*
 * The names of the settings that differ between a and b, comma-separated
 * into out (empty when none); live selects the settings applied by SIGHUP
 * (true) or the others (false).
 */
void kms_config_diff(char *out, size_t cap, const kms_serve_options *a, const kms_serve_options *b,
                     bool live);

/* Moves the strings of src's pool into dst's (src's pool is then empty). */
int kms_config_pool_take(kms_serve_options *dst, kms_serve_options *src);

/* Frees the strings that o's pool owns. */
void kms_config_free(kms_serve_options *o);

#endif
