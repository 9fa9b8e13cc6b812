/*
 * src/age/plugin.h - the age plugin client (internal side of
 * strongbox/plugin.h and strongbox/sys/plugin.h).
 *
 *   plugin_conn.c    stanzas over a byte stream, bounded (the reader is fuzzed)
 *   plugin_client.c  the client's side of recipient-v1 and identity-v1
 *   plugin_exec.c    finding, starting, talking to and reaping age-plugin-NAME
 *   plugin.c         the recipient and identity types
 */
#ifndef SBX_AGE_PLUGIN_H
#define SBX_AGE_PLUGIN_H

#include "strongbox/plugin.h"
#include "strongbox/sys/plugin.h"

#include <sys/types.h>

/* The bytes under a connection: read (0 with *got == 0 at the end) and write all. */
typedef struct sbx__plugin_io {
    int (*read)(void *ctx, uint8_t *buf, size_t cap, size_t *got);
    int (*write)(void *ctx, const uint8_t *buf, size_t len);
    void *ctx;
} sbx__plugin_io;

/* A connection over io (copied). 0 or SBX_ENOMEM. */
int sbx__plugin_conn_new_io(sbx_plugin_conn **out, const sbx__plugin_io *io);

/* One file of an identity-v1 run: its stanzas in, its file key out. */
typedef struct sbx__plugin_file {
    const sbx_age_stanza *const *stanzas;
    size_t count;
    bool found;
    uint8_t file_key[SBX_AGE_FILE_KEY_LEN]; /* SECRET: wiped by the caller */
} sbx__plugin_file;

/* What a run heard besides its results: the plugin's first error, the UI's refusals. */
typedef struct sbx__plugin_report {
    bool error;        /* the plugin sent an "error" command */
    char message[512]; /* its kind and text */
    char note[256];    /* the first UI request that could not be answered, and why */
} sbx__plugin_report;

/*
 * The client's side of identity-v1: send the identities and every file's
 * stanzas, then serve the plugin's phase 2 until "done". Returns 0 when the
 * plugin said "done" (files[i].found tells which keys it sent; *rep what
 * else it said), or the failure of the connection or the protocol (with
 * its message).
 */
int sbx__plugin_identity_v1(sbx_plugin_conn *c, const char *name, const char *const *identities,
                            size_t nids, sbx__plugin_file *files, size_t nfiles,
                            const sbx_plugin_ui *ui, sbx__plugin_report *rep);

/*
 * The client's side of recipient-v1: send the recipients (is_identity[i]:
 * an identity string, "add-identity") and the file keys, then serve phase 2
 * until "done". The stanzas for file i are appended to out[i]. Returns 0 or
 * the failure (an "error" from the plugin fails the run: SBX_EIO).
 */
int sbx__plugin_recipient_v1(sbx_plugin_conn *c, const char *name, const char *const *keys,
                             const bool *is_identity, size_t nkeys,
                             const uint8_t (*file_keys)[SBX_AGE_FILE_KEY_LEN],
                             sbx_age_header *const *out, size_t nfiles, const sbx_plugin_ui *ui,
                             sbx__plugin_report *rep);

/* A running plugin. */
typedef struct sbx__plugin_proc {
    char program[64]; /* "age-plugin-NAME", for messages */
    pid_t pid;
    int to, from, err; /* its stdin, stdout, stderr; -1 once closed */
    char stderr_head[1024];
    size_t stderr_len;
    sbx__plugin_io io; /* reads stdout and writes stdin, draining stderr meanwhile */
} sbx__plugin_proc;

/*
 * Find age-plugin-NAME in PATH and start it with --age-plugin=MACHINE.
 * 0, SBX_ENOTFOUND (not in PATH, with the directories looked in), SBX_EIO.
 */
int sbx__plugin_start(sbx__plugin_proc *p, const char *name, const char *machine);

/*
 * Close the pipes, stop the plugin if it still runs, reap it. err is the
 * run's result: when negative, the message is rewritten to name the plugin
 * and add how it ended and the start of its error output. Returns err.
 */
int sbx__plugin_finish(sbx__plugin_proc *p, int err);

/*
 * str looks like a plugin recipient: "age1" + NAME + "1...", and NAME is not one of the age
 * format's own types (pq, tag, tagpq), which are unsupported rather than plugins (plugin.c;
 * keys.c dispatches).
 */
bool sbx_age__is_plugin_recipient(const char *str);

/* A valid plugin NAME (1-32 of A-Z a-z 0-9 - _ . +). */
bool sbx__plugin_name_ok(const char *name, size_t len);

#endif
