/*
 * strongbox/plugin.h - age plugins (the C2SP age-plugin specification):
 * recipients and identities served by an `age-plugin-NAME` program.
 *
 * A plugin recipient is a Bech32 string with the prefix "age1" + NAME
 * ("age1yubikey1q..."), a plugin identity one with the prefix
 * "AGE-PLUGIN-" + NAME + "-" ("AGE-PLUGIN-YUBIKEY-1Q..."). To wrap or unwrap
 * a file key, the library runs `age-plugin-NAME --age-plugin=recipient-v1`
 * (or identity-v1), found in PATH (absolute directories only), and speaks
 * the plugin protocol over its standard input and output. The generic
 * parsers of strongbox/age.h (sbx_recipient_parse(), sbx_identity_parse(),
 * sbx_recipients_parse(), sbx_identities_parse()) make plugin keys too, so
 * an identity file may mix native and plugin identities.
 *
 * A plugin may want to talk to the user (touch the key, enter its PIN).
 * It does so through an sbx_plugin_ui, given when the key is made or later
 * with sbx_plugin_recipient_set_ui() / sbx_plugin_identity_set_ui(). Without
 * one, every such request is answered "fail", and the plugin decides what
 * that means (usually an error with its own message). The library itself
 * never opens the terminal.
 *
 *     sbx_identity **ids; size_t n;
 *     sbx_identities_parse(&ids, &n, text, len);     // native and plugin lines
 *     for (size_t i = 0; i < n; i++)
 *         sbx_plugin_identity_set_ui(ids[i], &my_ui); // false for native ones
 *     sbx_age_decryptor_new(&dec, src, ids, n, NULL);
 *
 * Running a plugin: the program gets the process environment and "/" as its
 * working directory; its standard error is kept (the first kilobyte) for
 * the message when it fails. Nothing is waited on with a timeout: a
 * hardware key may wait for a touch. The library writes to the plugin with
 * SIGPIPE blocked in the calling thread, so a plugin that exits early gives
 * an error, not a signal; it reaps every plugin it starts.
 *
 * During decryption, a plugin that cannot be started, fails, or reports an
 * error does not fail the file at once: the next identity is tried, and
 * when none opens the file, the message says what the plugin said. During
 * encryption every failure fails the file.
 */
#ifndef STRONGBOX_PLUGIN_H
#define STRONGBOX_PLUGIN_H

#include "strongbox/age.h"
#include "strongbox/sys/age.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SBX_PLUGIN_UI_VERSION 1

/**
 * How a plugin talks to the user. Every callback may be NULL (the plugin is
 * then answered "fail"). plugin is the plugin's name ("yubikey"); message is
 * the plugin's text, with control characters replaced by '?'.
 */
typedef struct sbx_plugin_ui {
    unsigned version; /**< SBX_PLUGIN_UI_VERSION */
    /** Show a message. @return 0 (shown) or a negative code (answered "fail"). */
    int (*message)(const char *plugin, const char *message, void *payload);
    /**
     * Ask the user to choose between yes and no (no may be NULL: only one
     * choice, "yes", to acknowledge). Set *yes. @return 0 or a negative code.
     */
    int (*confirm)(const char *plugin, const char *message, const char *yes, const char *no,
                   bool *chose_yes, void *payload);
    /**
     * Ask the user for a value: a secret (a PIN: do not echo it) or a public
     * string. Append it to out (wiped by the library after use).
     * @return 0, or a negative code (answered "fail"), ideally with
     *         sbx_error_set() saying why (it is added to the plugin's error).
     */
    int (*request)(sbx_buf *out, const char *plugin, const char *message, bool secret,
                   void *payload);
    void *payload; /**< passed to every callback */
} sbx_plugin_ui;

#define SBX_PLUGIN_UI_INIT                                                                         \
    {                                                                                              \
        SBX_PLUGIN_UI_VERSION, NULL, NULL, NULL, NULL                                              \
    }

/**
 * @brief A plugin recipient "age1NAME1...".
 * @param ui copied; NULL: no user interaction.
 * @return 0, SBX_EFORMAT (not a plugin recipient, bad Bech32, a NAME with
 *         characters outside A-Z a-z 0-9 - _ . +), SBX_EINVAL (bad ui
 *         version), SBX_ENOMEM. The plugin is looked for when it is used.
 */
SBX_EXTERN int sbx_plugin_recipient_new(sbx_recipient **out, const char *str,
                                        const sbx_plugin_ui *ui) SBX_WARN_UNUSED;

/**
 * @brief A plugin identity "AGE-PLUGIN-NAME-1...". Its recipient
 *        (sbx_identity_to_recipient()) has the plugin wrap to the identity
 *        itself, as `age -e -i` does.
 * @return as sbx_plugin_recipient_new().
 */
SBX_EXTERN int sbx_plugin_identity_new(sbx_identity **out, const char *str,
                                       const sbx_plugin_ui *ui) SBX_WARN_UNUSED;

/** @brief Set (copy) the UI of a plugin recipient. @return false if r is not one. */
SBX_EXTERN bool sbx_plugin_recipient_set_ui(sbx_recipient *r, const sbx_plugin_ui *ui);

/** @brief Set (copy) the UI of a plugin identity. @return false if id is not one. */
SBX_EXTERN bool sbx_plugin_identity_set_ui(sbx_identity *id, const sbx_plugin_ui *ui);

/**
 * @brief The plugin name of a plugin recipient or identity ("yubikey"),
 *        or NULL for any other key. Borrowed.
 */
SBX_EXTERN const char *sbx_plugin_recipient_name(const sbx_recipient *r);
SBX_EXTERN const char *sbx_plugin_identity_name(const sbx_identity *id);

/**
 * @brief Open several headers with one run of a plugin identity's plugin
 *        (one PIN for many files: the protocol's "several files").
 *        Each header whose file key the plugin finds and whose MAC verifies
 *        is opened (as by sbx_age_header_unwrap()).
 * @param results receives, per header, 0 (opened), SBX_ENOMATCH (the plugin
 *        found no key for it), SBX_EMAC, or SBX_EINVAL (not a read header).
 * @return 0 when the plugin ran to its end (see results), or the plugin's
 *         failure (SBX_ENOTFOUND: not in PATH; SBX_EIO: it failed, exited,
 *         or reported an error and opened nothing; SBX_ECANCELED: it asked
 *         the user for something the UI could not give, and opened nothing;
 *         SBX_EFORMAT or SBX_ETOOBIG: it broke the protocol), or SBX_EINVAL
 *         (id is not a plugin identity).
 */
SBX_EXTERN int sbx_plugin_unwrap_headers(sbx_identity *id, sbx_age_header *const *headers,
                                         size_t count, int *results) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
