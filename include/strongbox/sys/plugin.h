/*
 * strongbox/sys/plugin.h - the age plugin protocol's connection, for
 * writing an `age-plugin-NAME` program in C (as `age-plugin-sbxkms` is).
 *
 * The protocol (C2SP age-plugin) speaks in age stanzas over the plugin's
 * standard input and output: "-> COMMAND ARG...", then the body as base64
 * lines of 64 columns, the last one shorter (possibly empty). A connection
 * reads and writes such stanzas with the same strict parser and encoder as
 * age headers, and bounds what it reads: a stanza is at most
 * SBX_PLUGIN_MAX_STANZA bytes as sent.
 *
 *     sbx_plugin_conn *c;
 *     const sbx_age_stanza *s;
 *     sbx_plugin_conn_new(&c, STDIN_FILENO, STDOUT_FILENO);
 *     while (sbx_plugin_conn_read(c, &s) == 0 && strcmp(s->type, "done") != 0)
 *         ...;                                   // phase 1: store what the client sends
 *     sbx_plugin_conn_write(c, "file-key", args, 1, key, 16);
 *     sbx_plugin_conn_read(c, &s);               // the client's "ok"
 *     sbx_plugin_conn_write(c, "done", NULL, 0, NULL, 0);
 *     sbx_plugin_conn_free(c);
 *
 * The client side (running plugins for recipients and identities) is in
 * strongbox/plugin.h.
 */
#ifndef STRONGBOX_SYS_PLUGIN_H
#define STRONGBOX_SYS_PLUGIN_H

#include "strongbox/sys/age.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The largest stanza a connection reads: its opening line and body lines, as sent. */
#define SBX_PLUGIN_MAX_STANZA (64 * 1024)

typedef struct sbx_plugin_conn sbx_plugin_conn;

/**
 * @brief A connection reading stanzas from in_fd and writing them to
 *        out_fd (a plugin: standard input and output). The fds stay open.
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_plugin_conn_new(sbx_plugin_conn **out, int in_fd, int out_fd);

/**
 * @brief Read the next stanza. *s is borrowed, valid until the next read or
 *        the free; its body may hold a secret (it is wiped then).
 * @return 0; SBX_EIO (the input ended before a stanza began, or a read
 *         failed), SBX_EFORMAT (malformed, or the input ended inside a
 *         stanza), SBX_ETOOBIG (over SBX_PLUGIN_MAX_STANZA), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_plugin_conn_read(sbx_plugin_conn *c, const sbx_age_stanza **s) SBX_WARN_UNUSED;

/**
 * @brief Write one stanza. Arguments are printable ASCII without spaces
 *        (checked); no limit on their number (a wrapped stanza adds two).
 * @return 0, SBX_EINVAL (an argument the format cannot carry), SBX_EIO,
 *         SBX_ENOMEM.
 */
SBX_EXTERN int sbx_plugin_conn_write(sbx_plugin_conn *c, const char *type, const char *const *args,
                                     size_t nargs, const uint8_t *body,
                                     size_t body_len) SBX_WARN_UNUSED;

/** @brief Free a connection (its fds are not closed), wiping what it read. NULL-safe. */
SBX_EXTERN void sbx_plugin_conn_free(sbx_plugin_conn *c);

#ifdef __cplusplus
}
#endif
#endif
