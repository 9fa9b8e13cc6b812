/*
 * src/age/header.h - the age v1 header as data (internal side of
 * strongbox/sys/age.h).
 *
 * Parsing is a pure function over memory, so it can be fuzzed alone.
 * Re-encoding a parsed header gives back the exact input bytes (the format
 * has one encoding per header).
 */
#ifndef SBX_AGE_HEADER_H
#define SBX_AGE_HEADER_H

#include "strongbox/sys/age.h"

#define SBX_AGE_VERSION_LINE "age-encryption.org/v1\n"
#define SBX_AGE_ARMOR_BEGIN  "-----BEGIN AGE ENCRYPTED FILE-----"
#define SBX_AGE_MAX_STANZAS  1024
#define SBX_AGE_MAX_ARGS     16
#define SBX_AGE_MAX_ARG_LEN  4096

struct sbx_age_header {
    sbx_age_stanza *stanzas;
    size_t count;
    uint8_t mac[32];
    size_t mac_input_len; /* bytes covered by the MAC: up to and including "---" */
    size_t len;           /* total header bytes including the MAC line's LF */
    sbx_buf read;         /* a read header: its bytes, then the bytes read past it */
    bool was_read;
    uint8_t *file_key; /* secure memory once opened, else NULL */
};

/*
 * Parse a complete header at the start of data. *header_len receives the
 * number of bytes consumed (through the MAC line's LF). No stanza type rule
 * is checked here (sbx_age__header_check). Returns 0, SBX_EHEADER
 * (malformed, incomplete or over a limit; the message says which), or
 * SBX_ENOMEM.
 */
int sbx_age__header_parse(sbx_age_header **out, const uint8_t *data, size_t len,
                          size_t *header_len);

/*
 * Parse one stanza (its "->" line and its body) at data + *pos and append it
 * to hdr; *pos moves past it. The same strict grammar as in a header; the
 * age plugin protocol (plugin_conn.c) speaks in these stanzas too. Returns 0,
 * SBX_EHEADER (malformed or incomplete: hdr is unchanged) or SBX_ENOMEM.
 */
int sbx_age__stanza_parse(sbx_age_header *hdr, const uint8_t *data, size_t len, size_t *pos);

/* Append one stanza, its opening line and its base64 body lines, to out. */
int sbx_age__stanza_encode(sbx_buf *out, const char *type, const char *const *args, size_t nargs,
                           const uint8_t *body, size_t body_len);

/*
 * Encode hdr. With with_mac false, the output stops after "---" (the bytes
 * the MAC covers); with true, " " + base64(hdr->mac) + "\n" follows.
 */
int sbx_age__header_encode(sbx_buf *out, const sbx_age_header *hdr, bool with_mac);

/* Check every stanza against the registered stanza types (registry.c): 0 or SBX_EHEADER. */
int sbx_age__header_check(const sbx_age_header *hdr);

#endif
