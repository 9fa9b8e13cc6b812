/*
 * src/records/keyfile.c - the key holder: record key files, read once per
 * process into locked memory (see strongbox/records.h).
 *
 * Implementation notes: a process-wide list of held keys keyed by the
 * canonical path (realpath), under one mutex held while a file is loaded, so
 * two threads asking for the same new file read it once. Entries live until
 * sbx_record_cleanup(). Key files are small: anything over 256 bytes is not
 * a key file and is refused before it is read.
 */
#include "records/records.h"
#include "core/crypto.h"
#include "core/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX 256

typedef struct held_key {
    char *path;   // canonical
    uint8_t *key; // SBX_RECORD_KEY_LEN bytes of secure memory
    uint8_t key_id[SBX_RECORD__KEY_ID_LEN];
    struct held_key *next;
} held_key;

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static held_key *held_keys;

/* Read the whole (small) file into buf; checks type and mode first. */
static int
read_key_file(uint8_t buf[KEYFILE_MAX + 1], size_t *n, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); // a FIFO must not block
    if (fd < 0)
        return sbx__error_sys(SBX_EIO, "key file %s: cannot open", path);
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0) {
        err = sbx__error_sys(SBX_EIO, "key file %s: cannot stat", path);
    } else if (!S_ISREG(st.st_mode)) {
        err = sbx__error(SBX_EFORMAT, "key file %s is not a regular file", path);
    } else if ((st.st_mode & 077) != 0) {
        err = sbx__error(SBX_EDENIED,
                         "key file %s is accessible by group or others (mode %03o); "
                         "run chmod 600 %s",
                         path, (unsigned)(st.st_mode & 0777), path);
    } else if (st.st_size > KEYFILE_MAX) {
        err = sbx__error(SBX_EFORMAT, "key file %s is too large to be a key (%lld bytes)", path,
                         (long long)st.st_size);
    }
    *n = 0;
    while (err == 0 && *n <= KEYFILE_MAX) {
        ssize_t r = read(fd, buf + *n, KEYFILE_MAX + 1 - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = sbx__error_sys(SBX_EIO, "key file %s: cannot read", path);
        if (r <= 0)
            break;
        *n += (size_t)r;
    }
    close(fd);
    return err;
}

/* 32 raw bytes, or one line of base64 of 32 bytes ("\n" or "\r\n" optional). */
static int
parse_key(uint8_t key[SBX_RECORD_KEY_LEN], uint8_t *buf, size_t n, const char *path)
{
    if (n == SBX_RECORD_KEY_LEN) {
        memcpy(key, buf, SBX_RECORD_KEY_LEN);
        return 0;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    uint8_t tmp[SBX_BASE64_DECODED_MAX(KEYFILE_MAX)];
    size_t len = 0;
    int err = 0;
    if (n != SBX_BASE64_PAD_LEN(SBX_RECORD_KEY_LEN) ||
        sbx_base64_decode(tmp, sizeof tmp, &len, (const char *)buf, n, true) < 0 ||
        len != SBX_RECORD_KEY_LEN)
        err = sbx__error(SBX_EFORMAT,
                         "key file %s is not a record key (32 raw bytes, or one line of base64 of "
                         "32 bytes); make one with `sbx keygen --symmetric -o FILE`",
                         path);
    else
        memcpy(key, tmp, SBX_RECORD_KEY_LEN);
    SBX_WIPE_BUF(tmp);
    return err;
}

/* Load path (canonical) into a new entry. Called with held_lock held. */
static int
load(held_key **out, const char *path)
{
    uint8_t buf[KEYFILE_MAX + 1], id[32];
    size_t n = 0;
    int err;
    held_key *h = calloc(1, sizeof *h);
    if (h == NULL || (h->path = strdup(path)) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    if ((h->key = sbx_secret_alloc(SBX_RECORD_KEY_LEN)) == NULL) {
        err = SBX_ENOMEM;
        goto out;
    }
    if ((err = read_key_file(buf, &n, path)) < 0 || (err = parse_key(h->key, buf, n, path)) < 0)
        goto out;
    if ((err = sbx__hkdf_sha256(id, h->key, SBX_RECORD_KEY_LEN, NULL, 0, "sbx record key id v1")) <
        0)
        goto out;
    memcpy(h->key_id, id, sizeof h->key_id);
    *out = h;
    h = NULL;
out:
    SBX_WIPE_BUF(buf);
    SBX_WIPE_BUF(id);
    if (h != NULL) {
        sbx_secret_free(h->key, SBX_RECORD_KEY_LEN);
        free(h->path);
        free(h);
    }
    return err;
}

/* Whether canon (a canonical path) is one of the colon-separated SBX_RECORD_KEYS. */
static bool
listed_in_env(const char *canon)
{
    const char *list = getenv("SBX_RECORD_KEYS");
    char *copy = list != NULL ? strdup(list) : NULL, *save = NULL;
    bool found = false;
    for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t != NULL && !found;
         t = strtok_r(NULL, ":", &save)) {
        char *c = realpath(t, NULL);
        found = c != NULL && strcmp(c, canon) == 0;
        free(c);
    }
    free(copy);
    return found;
}

int
sbx_record__key_get(const uint8_t **key, const uint8_t **key_id, const char *path, bool named)
{
    *key = NULL;
    if (key_id != NULL)
        *key_id = NULL;
    char *canon = realpath(path, NULL);
    if (canon == NULL)
        return sbx__error_sys(SBX_EIO, "key file %s: cannot open", path);
    int err = 0;
    pthread_mutex_lock(&held_lock);
    held_key *h = held_keys;
    while (h != NULL && strcmp(h->path, canon) != 0)
        h = h->next;
    if (h == NULL && named && !listed_in_env(canon))
        err = sbx__error(SBX_EDENIED,
                         "the record names key file %s, which this process has not loaded: "
                         "list it in SBX_RECORD_KEYS (colon-separated) or load it with "
                         "sbx_record_key_hold() to decrypt with it",
                         path);
    if (h == NULL && err == 0 && (err = load(&h, canon)) == 0) {
        h->next = held_keys;
        held_keys = h;
    }
    pthread_mutex_unlock(&held_lock);
    free(canon);
    if (err < 0)
        return err;
    *key = h->key;
    if (key_id != NULL)
        *key_id = h->key_id;
    return 0;
}

/* see strongbox/records.h */
int
sbx_record_key_hold(const uint8_t **key_out, const char *path)
{
    if (key_out == NULL || path == NULL) {
        if (key_out != NULL)
            *key_out = NULL;
        return sbx__error(SBX_EINVAL, "sbx_record_key_hold: NULL argument");
    }
    return sbx_record__key_get(key_out, NULL, path, false);
}

/* see strongbox/records.h */
int
sbx_record_key_generate(sbx_buf *out)
{
    uint8_t key[SBX_RECORD_KEY_LEN];
    char text[SBX_BASE64_PAD_LEN(SBX_RECORD_KEY_LEN) + 2];
    int err;
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_record_key_generate: NULL argument");
    if ((err = sbx_random_bytes(key, sizeof key)) == 0) {
        long n = sbx_base64_encode(text, sizeof text, key, sizeof key, true);
        text[n] = '\n';
        err = sbx_buf_append(out, text, (size_t)n + 1);
    }
    SBX_WIPE_BUF(key);
    SBX_WIPE_BUF(text);
    return err;
}

void
sbx_record__keys_cleanup(void)
{
    pthread_mutex_lock(&held_lock);
    while (held_keys != NULL) {
        held_key *h = held_keys;
        held_keys = h->next;
        sbx_secret_free(h->key, SBX_RECORD_KEY_LEN);
        free(h->path);
        free(h);
    }
    pthread_mutex_unlock(&held_lock);
}
