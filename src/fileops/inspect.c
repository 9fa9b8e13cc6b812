/*
 * src/fileops/inspect.c - recognise a file and describe an age header
 * without any key.
 *
 * Implementation notes:
 *  - Input is untrusted (fuzz/inspect_fuzzer.c). The age header is read by
 *    sbx_age_header_read() (strongbox/sys/age.h) from a memory source over
 *    at most SBX_AGE_MAX_HEADER_SIZE + 64 bytes: the same parser and the
 *    same registered stanza rules as every decryptor (age.md §6; sbx-pad
 *    and sbx-meta included, and sbx-kms when libstrongbox-kms is loaded),
 *    so "valid" means a decryptor would accept the header syntax (the MAC
 *    needs the key).
 *  - Stanza bodies (wrapped keys) are never copied into the report. SSH
 *    tags and scrypt work factors are public header arguments.
 *  - Payload layout from the size alone (age.md §5): P bytes after the
 *    header = 16-byte nonce + chunks of 65,552 bytes, the last 17..65,552
 *    bytes (16 is valid only for an empty file, as chunk 0).
 *  - Armored files are decoded through the strict armor decoder; only the
 *    first bytes are kept, the rest is counted.
 */
#include "strongbox/inspect.h"
#include "strongbox/encoding.h"
#include "strongbox/age.h"
#include "strongbox/pad.h"
#include "strongbox/stream.h"
#include "strongbox/sys/age.h"
#include "fileops/stanza_types.h"
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX_MAX  (SBX_AGE_MAX_HEADER_SIZE + 64)
#define ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"

static void
set_format(sbx_inspect_info *info, int format)
{
    static const struct {
        const char *name, *note;
    } names[] = {
        {"unknown", "not a format sbx recognises (plaintext, or another tool's format)"},
        {"empty", "an empty file"},
        {"age", "age v1 encrypted file (binary)"},
        {"age-armored", "age v1 encrypted file, ASCII armored"},
        {"gzip", "gzip data: possibly a pyFileSec .enc archive or a PsychoPy opensslwrap "
                 "bundle (legacy, unauthenticated; convert with sbx migrate)"},
        {"openssl-enc", "`openssl enc -salt` output (AES-CBC without integrity protection, as in "
                        "the data member of pyFileSec and opensslwrap archives)"},
        {"pyfilesec-padded", "plaintext padded by pyFileSec (clear-text length padding; remove "
                             "with sbx unpad)"},
    };
    info->format = format;
    info->name = names[format].name;
    info->note = names[format].note;
}

static void
add_type(sbx_inspect_info *info, const char *type)
{
    for (size_t i = 0; i < info->ntypes; i++) {
        if (strncmp(info->types[i].name, type, sizeof(info->types[i].name) - 1) == 0) {
            info->types[i].count++;
            return;
        }
    }
    if (info->ntypes == SBX_INSPECT_MAX_TYPES) {
        info->more_types++;
        return;
    }
    snprintf(info->types[info->ntypes].name, sizeof(info->types[0].name), "%s", type);
    info->types[info->ntypes++].count = 1;
}

static void
stanza_facts(sbx_inspect_info *info, const sbx_age_stanza *s)
{
    add_type(info, s->type);
    bool ssh = strcmp(s->type, "ssh-ed25519") == 0 || strcmp(s->type, "ssh-rsa") == 0;
    if (ssh && s->nargs >= 1 && info->nssh < SBX_INSPECT_MAX_SSH_TAGS) {
        snprintf(info->ssh[info->nssh].type, sizeof(info->ssh[0].type), "%s", s->type);
        snprintf(info->ssh[info->nssh].tag, sizeof(info->ssh[0].tag), "%s", s->args[0]);
        info->nssh++;
    }
    if (strcmp(s->type, "scrypt") == 0 && s->nargs == 2)
        info->scrypt_log_n = atoi(s->args[1]); // validated by the registered scrypt rule
    if (strcmp(s->type, SBX_PAD_STANZA_TYPE) == 0)
        info->padded = true;
}

static void
payload_layout(sbx_inspect_info *info, uint64_t total)
{
    uint64_t p, c, last;
    if (total < info->header_size) { // the file shrank (or grew) between stat and read
        snprintf(info->error, sizeof(info->error),
                 "the file size changed while it was read; inspect it again");
        return;
    }
    p = total - info->header_size;
    info->payload_size = p;
    if (p < 16) {
        snprintf(info->error, sizeof(info->error),
                 "the file ends before the 16-byte payload "
                 "nonce (truncated)");
        return;
    }
    c = p - 16;
    if (c == 0) {
        snprintf(info->error, sizeof(info->error),
                 "no payload chunks after the nonce "
                 "(truncated)");
        return;
    }
    info->chunks = (c + SBX_AGE_SEALED_CHUNK_SIZE - 1) / SBX_AGE_SEALED_CHUNK_SIZE;
    last = c - (info->chunks - 1) * SBX_AGE_SEALED_CHUNK_SIZE;
    if (last < 16 || (info->chunks > 1 && last == 16)) {
        snprintf(info->error, sizeof(info->error),
                 "the payload size is not a valid STREAM layout (last chunk of %llu bytes): "
                 "truncated or extended",
                 (unsigned long long)last);
        return;
    }
    info->plaintext_size = c - 16 * info->chunks;
    info->layout_ok = true;
    info->valid = true;
}

/* Read and check the header at the start of data[0..n): the registered rules run. */
static int
read_header(sbx_age_header **h, const uint8_t *data, size_t n)
{
    sbx_source *src = NULL;
    int err;
    *h = NULL;
    if ((err = sbx_fileops__stanza_types()) < 0 || (err = sbx_source_mem_new(&src, data, n)) < 0)
        return err;
    err = sbx_age_header_read(h, src);
    sbx_source_free(src);
    return err;
}

/* Describe the binary age file whose first n bytes are data and whose size is total. */
static int
analyse_age(sbx_inspect_info *info, const uint8_t *data, size_t n, uint64_t total)
{
    sbx_age_header *hdr = NULL;
    size_t hlen = 0;
    int err = read_header(&hdr, data, n);
    if (err == SBX_ENOMEM)
        return err;
    if (err < 0) {
        snprintf(info->error, sizeof(info->error), "invalid header: %s", sbx_error_last()->message);
        sbx_error_clear();
        return 0;
    }
    (void)sbx_age_header_bytes(hdr, &hlen);
    info->header_size = hlen;
    info->stanzas = sbx_age_header_count(hdr);
    for (size_t i = 0; i < info->stanzas; i++)
        stanza_facts(info, sbx_age_header_stanza(hdr, i));
    sbx_age_header_free(hdr);
    payload_layout(info, total);
    return 0;
}

static bool
starts_armored(const uint8_t *data, size_t n)
{
    size_t i = 0;
    while (i < n && i < 1024 &&
           (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    return n - i >= sizeof(ARMOR_BEGIN) - 1 &&
           memcmp(data + i, ARMOR_BEGIN, sizeof(ARMOR_BEGIN) - 1) == 0;
}

/* Formats other than age, from the first bytes (and the pyFileSec tail). */
static void
sniff_other(sbx_inspect_info *info, const uint8_t *data, size_t n, const uint8_t *tail,
            size_t tail_len)
{
    uint64_t pad = 0;
    if (n >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        set_format(info, SBX_INSPECT_GZIP);
        return;
    }
    if ((n >= 8 && memcmp(data, "Salted__", 8) == 0) ||
        (n >= 10 && memcmp(data, "U2FsdGVkX1", 10) == 0)) {
        set_format(info, SBX_INSPECT_OPENSSL_ENC);
        return;
    }
    sbx_pad_pfs_detect(&pad, tail, tail_len, info->file_size);
    if (pad > 0) {
        set_format(info, SBX_INSPECT_PFS_PADDED);
        info->pfs_pad_bytes = pad;
    }
}

/* Read src to its end: the first PREFIX_MAX bytes into buf, the rest counted. */
static int
drain(sbx_source *src, uint8_t *buf, size_t *n, uint64_t *total)
{
    uint8_t scratch[16384];
    size_t got;
    int err;
    if ((err = sbx_source_read_full(src, buf, PREFIX_MAX, n)) < 0)
        return err;
    *total = *n;
    if (*n < PREFIX_MAX)
        return 0;
    while ((err = sbx_source_read(src, scratch, sizeof(scratch), &got)) == 0 && got > 0)
        *total += got;
    return err;
}

/* Decode the armor read from src and analyse the binary file inside. */
static int
analyse_armored(sbx_inspect_info *info, sbx_source *src)
{
    sbx_source *dec = NULL;
    uint8_t *buf = malloc(PREFIX_MAX);
    size_t n = 0;
    uint64_t total = 0;
    int err;
    set_format(info, SBX_INSPECT_AGE_ARMORED);
    if (buf == NULL)
        return sbx__error_nomem();
    if ((err = sbx_armor_decoder_new(&dec, src)) == 0 && (err = drain(dec, buf, &n, &total)) == 0)
        err = analyse_age(info, buf, n, total);
    else if (err != SBX_ENOMEM) {
        snprintf(info->error, sizeof(info->error), "invalid armor: %s", sbx_error_last()->message);
        sbx_error_clear();
        err = 0;
    }
    sbx_source_free(dec);
    free(buf);
    return err;
}

static void
info_init(sbx_inspect_info *info, uint64_t size)
{
    memset(info, 0, sizeof(*info));
    set_format(info, size == 0 ? SBX_INSPECT_EMPTY : SBX_INSPECT_UNKNOWN);
    info->file_size = size;
}

static bool
is_age(const uint8_t *data, size_t n)
{
    static const char prefix[] = "age-encryption.org/";
    return n >= sizeof(prefix) - 1 && memcmp(data, prefix, sizeof(prefix) - 1) == 0;
}

/* see strongbox/inspect.h */
int
sbx_inspect_mem(sbx_inspect_info *info, const uint8_t *data, size_t len)
{
    info_init(info, len);
    if (len == 0)
        return 0;
    if (is_age(data, len)) {
        set_format(info, SBX_INSPECT_AGE);
        return analyse_age(info, data, len < PREFIX_MAX ? len : PREFIX_MAX, len);
    }
    if (starts_armored(data, len)) {
        sbx_source *src = NULL;
        int err = sbx_source_mem_new(&src, data, len);
        if (err == 0)
            err = analyse_armored(info, src);
        sbx_source_free(src);
        return err;
    }
    size_t tail = len < SBX_PAD_PFS_TRAILER_LEN ? len : SBX_PAD_PFS_TRAILER_LEN;
    sniff_other(info, data, len, data + len - tail, tail);
    return 0;
}

static int
inspect_fd(sbx_inspect_info *info, int fd, const char *path, const struct stat *st)
{
    uint8_t *buf = malloc(PREFIX_MAX), tail[SBX_PAD_PFS_TRAILER_LEN];
    size_t n = 0, tail_len = 0;
    sbx_source *src = NULL;
    int err = 0;
    if (buf == NULL)
        return sbx__error_nomem();
    while (n < PREFIX_MAX) {
        ssize_t got = pread(fd, buf + n, PREFIX_MAX - n, (off_t)n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            err = sbx__error_sys(SBX_EIO, "cannot read %s", path);
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n == 0)
        goto out;
    if (is_age(buf, n)) {
        set_format(info, SBX_INSPECT_AGE);
        err = analyse_age(info, buf, n, (uint64_t)st->st_size);
    } else if (starts_armored(buf, n)) {
        if ((err = sbx_source_fd_new(&src, fd, false)) == 0) // the file checked, not a new open
            err = analyse_armored(info, src);
    } else {
        if (info->file_size > 0) {
            tail_len = info->file_size < sizeof(tail) ? (size_t)info->file_size : sizeof(tail);
            if (pread(fd, tail, tail_len, (off_t)(info->file_size - tail_len)) != (ssize_t)tail_len)
                tail_len = 0;
        }
        sniff_other(info, buf, n, tail, tail_len);
    }
out:
    sbx_source_free(src);
    free(buf);
    return err;
}

/* see strongbox/inspect.h */
int
sbx_inspect_file(sbx_inspect_info *info, const char *path)
{
    struct stat st;
    int err;
    info_init(info, 0);
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused below)
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot open %s", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sbx__error(SBX_EINVAL, "%s is not a regular file (inspect needs its size)", path);
    }
    info_init(info, (uint64_t)st.st_size);
    err = inspect_fd(info, fd, path, &st);
    close(fd);
    return err;
}

/* ---- output ---- */

static int
put(sbx_buf *out, const char *s)
{
    return sbx_buf_append(out, s, strlen(s));
}

static int putf(sbx_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
putf(sbx_buf *out, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return sbx__error(SBX_EINVAL, "formatting failed");
    return sbx_buf_append(out, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string by the one rule for text that may not be UTF-8 (sbx_json_quote). */
static int
put_json_str(sbx_buf *out, const char *s)
{
    return sbx_json_quote(out, s, NULL);
}

static int
json_body(const sbx_inspect_info *i, sbx_buf *o)
{
    int err = 0;
    err = err ? err
              : putf(o, ",\"format\":\"%s\",\"armored\":%s", i->name,
                     i->format == SBX_INSPECT_AGE_ARMORED ? "true" : "false");
    err = err ? err : put(o, ",\"description\":");
    err = err ? err : put_json_str(o, i->note);
    err = err ? err : putf(o, ",\"file_size\":%llu", (unsigned long long)i->file_size);
    if (i->format == SBX_INSPECT_PFS_PADDED)
        err = err ? err
                  : putf(o, ",\"pyfilesec_padding_bytes\":%llu",
                         (unsigned long long)i->pfs_pad_bytes);
    if (i->format != SBX_INSPECT_AGE && i->format != SBX_INSPECT_AGE_ARMORED)
        return err;
    err = err ? err : putf(o, ",\"valid\":%s,\"error\":", i->valid ? "true" : "false");
    err = err ? err : (i->error[0] ? put_json_str(o, i->error) : put(o, "null"));
    err = err ? err
              : putf(o, ",\"header_size\":%llu,\"stanzas\":%zu,\"stanza_types\":{",
                     (unsigned long long)i->header_size, i->stanzas);
    for (size_t k = 0; k < i->ntypes && err == 0; k++) {
        err = put(o, k ? "," : "");
        err = err ? err : put_json_str(o, i->types[k].name);
        err = err ? err : putf(o, ":%zu", i->types[k].count);
    }
    err = err ? err : put(o, "},\"ssh_keys\":[");
    for (size_t k = 0; k < i->nssh && err == 0; k++) {
        err = put(o, k ? ",{\"type\":" : "{\"type\":");
        err = err ? err : put_json_str(o, i->ssh[k].type);
        err = err ? err : put(o, ",\"tag\":");
        err = err ? err : put_json_str(o, i->ssh[k].tag);
        err = err ? err : put(o, "}");
    }
    err = err ? err : put(o, "],\"scrypt_work_factor\":");
    err = err ? err : (i->scrypt_log_n ? putf(o, "%d", i->scrypt_log_n) : put(o, "null"));
    err = err ? err
              : putf(o, ",\"padded\":%s,\"layout_ok\":%s", i->padded ? "true" : "false",
                     i->layout_ok ? "true" : "false");
    if (i->layout_ok)
        err = err ? err
                  : putf(o, ",\"payload_size\":%llu,\"chunks\":%llu,\"plaintext_size\":%llu",
                         (unsigned long long)i->payload_size, (unsigned long long)i->chunks,
                         (unsigned long long)i->plaintext_size);
    return err;
}

/* see strongbox/inspect.h */
int
sbx_inspect_to_json(const sbx_inspect_info *info, const char *path, sbx_buf *out)
{
    int err = put(out, "{");
    err =
        err ? err : (path ? sbx_json_member(out, "file", path, false) : put(out, "\"file\":null"));
    err = err ? err : json_body(info, out);
    return err ? err : put(out, "}\n");
}

static int
text_age(const sbx_inspect_info *i, sbx_buf *o)
{
    int err = 0;
    if (!i->valid && i->header_size == 0)
        return putf(o, "error:     %s\n", i->error);
    err = putf(o, "header:    %llu bytes, %zu stanza%s:", (unsigned long long)i->header_size,
               i->stanzas, i->stanzas == 1 ? "" : "s");
    for (size_t k = 0; k < i->ntypes && err == 0; k++)
        err = putf(o, "%s %s x%zu", k ? "," : "", i->types[k].name, i->types[k].count);
    err = err ? err : put(o, "\n");
    for (size_t k = 0; k < i->nssh && err == 0; k++)
        err = putf(o, "ssh key:   %s, tag %s (links the file to that public key)\n", i->ssh[k].type,
                   i->ssh[k].tag);
    if (i->scrypt_log_n)
        err = err ? err
                  : putf(o, "scrypt:    work factor %d (N = 2^%d)\n", i->scrypt_log_n,
                         i->scrypt_log_n);
    err = err ? err
              : putf(o, "padded:    %s\n",
                     i->padded ? "yes (sbx-pad v1: the true length is hidden in the "
                                 "payload)"
                               : "no");
    if (i->layout_ok)
        err = err ? err
                  : putf(o, "payload:   %llu bytes, %llu chunk%s, %llu plaintext bytes%s\n",
                         (unsigned long long)i->payload_size, (unsigned long long)i->chunks,
                         i->chunks == 1 ? "" : "s", (unsigned long long)i->plaintext_size,
                         i->padded ? " (padded)" : "");
    else
        err = err ? err : putf(o, "error:     %s\n", i->error);
    return err ? err
               : put(o, "note:      the header MAC and the payload can only be verified "
                        "with a key\n");
}

/* see strongbox/inspect.h */
int
sbx_inspect_to_text(const sbx_inspect_info *info, const char *path, sbx_buf *out)
{
    int err = 0;
    if (path != NULL)
        err = putf(out, "file:      %s\n", path);
    err = err ? err : putf(out, "format:    %s: %s\n", info->name, info->note);
    err = err ? err : putf(out, "size:      %llu bytes\n", (unsigned long long)info->file_size);
    if (info->format == SBX_INSPECT_PFS_PADDED)
        err = err ? err
                  : putf(out, "padding:   %llu bytes (filler + 32-byte trailer)\n",
                         (unsigned long long)info->pfs_pad_bytes);
    if (info->format == SBX_INSPECT_AGE || info->format == SBX_INSPECT_AGE_ARMORED)
        err = err ? err : text_age(info, out);
    return err;
}
