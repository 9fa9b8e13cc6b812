/*
 * src/age/header.h - the age v1 header as data (internal).
 *
 * Parsing is a pure function over memory, so it can be fuzzed alone and
 * reused by later tools (inspect, rotate). Re-encoding a parsed header gives
 * back the exact input bytes (the format has one encoding per header).
 */
#ifndef SBX_AGE_HEADER_H
#define SBX_AGE_HEADER_H

#include "strongbox/common.h"

#define SBX_AGE_VERSION_LINE "age-encryption.org/v1\n"
#define SBX_AGE_MAX_STANZAS  1024
#define SBX_AGE_MAX_ARGS     16
#define SBX_AGE_MAX_ARG_LEN  4096

typedef struct sbx_age_stanza {
    char *type;  /* first argument, NUL-terminated */
    char **args; /* remaining arguments, NUL-terminated */
    size_t nargs;
    uint8_t *body; /* decoded body */
    size_t body_len;
} sbx_age_stanza;

typedef struct sbx_age_header {
    sbx_age_stanza *stanzas;
    size_t count;
    uint8_t mac[32];
    size_t mac_input_len; /* bytes covered by the MAC: up to and including "---" */
    size_t len;           /* total header bytes including the MAC line's LF */
} sbx_age_header;

/*
 * Parse a complete header at the start of data. *header_len receives the
 * number of bytes consumed (through the MAC line's LF). Returns 0,
 * SBX_EHEADER (malformed, incomplete or over a limit; the message says
 * which), or SBX_ENOMEM.
 */
int sbx_age__header_parse(sbx_age_header **out, const uint8_t *data, size_t len,
                          size_t *header_len);

/*
 * Encode hdr. With with_mac false, the output stops after "---" (the bytes
 * the MAC covers); with true, " " + base64(mac) + "\n" follows.
 */
int sbx_age__header_encode(sbx_buf *out, const sbx_age_header *hdr, bool with_mac);

/* Append a stanza (copies everything). Returns 0 or SBX_ENOMEM. */
int sbx_age__header_add_stanza(sbx_age_header *hdr, const char *type, const char *const *args,
                               size_t nargs, const uint8_t *body, size_t body_len);

/* A new empty header. */
int sbx_age__header_new(sbx_age_header **out);

void sbx_age__header_free(sbx_age_header *hdr);

#endif
