/*
 * cli/files.c - the small files sbx reads (keys, recipients, signatures),
 * the output it writes, and identity files.
 *
 * Secrets read here (identity files) go straight from read(2) into an
 * sbx_buf, which is wiped when disposed; stdio is never used for them, so no
 * unwiped copy is left in a FILE buffer.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int
open_error(const char *what, const char *path)
{
    int e = errno;
    cli_errorf("cannot open %s %s: %s", what, path, strerror(e));
    return e == ENOENT ? SBX_ENOTFOUND : SBX_EIO;
}

/* The one rule for secret files: a regular file that group or others may access is named. */
static void
warn_mode(const struct stat *st, const char *what, const char *path)
{
    if (!S_ISREG(st->st_mode) || (st->st_mode & 077) == 0)
        return;
    cli_warnf("%s %s is %s by others (mode %04o); run chmod 600 %s", what, path,
              (st->st_mode & 044) ? "readable" : "accessible", (unsigned)(st->st_mode & 07777),
              path);
}

static void
check_mode(int fd, const char *what, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) == 0)
        warn_mode(&st, what, path);
}

void
cli_warn_if_exposed(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        warn_mode(&st, what, path);
}

static int
read_fd_all(sbx_buf *buf, int fd, const char *what, const char *path)
{
    for (;;) {
        if (buf->len >= CLI_MAX_KEY_FILE) {
            cli_errorf("%s %s is larger than %u bytes", what, path, CLI_MAX_KEY_FILE);
            return SBX_ETOOBIG;
        }
        if (sbx_buf_reserve(buf, 4096) < 0) {
            cli_error_lib(NULL);
            return SBX_ENOMEM;
        }
        ssize_t n = read(fd, buf->ptr + buf->len, buf->cap - buf->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_errorf("cannot read %s %s: %s", what, path, strerror(errno));
            return SBX_EIO;
        }
        if (n == 0)
            return 0;
        buf->len += (size_t)n;
    }
}

int
cli_read_small_file(sbx_buf *buf, const char *path, const char *what, bool warn_mode)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return open_error(what, path);
    if (warn_mode)
        check_mode(fd, what, path);
    int err = read_fd_all(buf, fd, what, is_stdin ? "(standard input)" : path);
    if (!is_stdin)
        close(fd);
    return err;
}

/*
 * The library's atomic sink decides how a path is written (strongbox/stream.h):
 * a new or regular file atomically, through an unnamed file until complete;
 * a device or FIFO (/dev/null, /dev/stdout onto a pipe) in place; a symbolic
 * link to anything else refused, never written through.
 */
int
cli_open_output(sbx_sink **out, const char *path, unsigned mode)
{
    int err;
    *out = NULL;
    if (path == NULL || strcmp(path, "-") == 0)
        err = sbx_sink_fd_new(out, STDOUT_FILENO, false);
    else
        err = sbx_sink_atomic_file_new(out, path, mode);
    if (err < 0)
        cli_error_lib(NULL);
    return err;
}

/* The passphrase of a protected identity file: from a file, or asked naming the identity file. */
struct id_pass {
    const char *file, *path;
};

static int
ask_identity_passphrase(sbx_buf *out, void *payload)
{
    const struct id_pass *p = payload;
    char what[400], why[256];
    snprintf(what, sizeof(what), "identity file %s", p->path);
    int rc = cli_read_passphrase_for(out, p->file, what, why, sizeof(why));
    return rc < 0 ? sbx_error_set(rc, "%s", why) : 0;
}

/* The argument of -i is a public key, or a file of them: say where it belongs. */
static bool
recipient_hint(const char *path, const sbx_buf *text)
{
    const char *give = "give it with -r (a file of them with -R), and the identity file with -i";
    sbx_recipient *r = NULL, **rs = NULL;
    size_t n = 0;
    if (text == NULL && sbx_recipient_parse(&r, path) == 0) {
        sbx_recipient_free(r);
        cli_hintf("this is a recipient (public key), not a file: %s", give);
        return true;
    }
    if (text != NULL && sbx_recipients_parse(&rs, &n, (const char *)text->ptr, text->len) == 0) {
        sbx_recipients_free(rs, n);
        cli_hintf("%s holds recipients (public keys), not identities: give it with -R (a single "
                  "key with -r), and the identity file (secret key) with -i",
                  path);
        return true;
    }
    return false;
}

int
cli_load_identities_pass(sbx_identity ***ids, size_t *count, const char *path,
                         const char *passphrase_file)
{
    sbx_buf text = SBX_BUF_INIT;
    sbx_identity **list = NULL;
    struct id_pass pass = {passphrase_file, path};
    size_t n = 0;
    int err;
    if (strncasecmp(path, "AGE-SECRET-KEY-", 15) == 0 && access(path, F_OK) != 0) {
        cli_errorf("-i takes an identity file, and this is a secret key (not shown): put it in a "
                   "file only you can read, and give that file");
        return SBX_ENOTFOUND;
    }
    if ((err = cli_read_small_file(&text, path, "identity file", true)) < 0) {
        if (err == SBX_ENOTFOUND)
            recipient_hint(path, NULL);
        goto out;
    }
    if ((err = sbx_identities_parse_ex(&list, &n, (const char *)text.ptr, text.len,
                                       ask_identity_passphrase, &pass)) < 0) {
        cli_errorf("identity file %s: %s", path, sbx_error_last()->message);
        recipient_hint(path, &text);
        goto out;
    }
    sbx_identity **grown = realloc(*ids, (*count + n + 1) * sizeof(*grown));
    if (grown == NULL) {
        cli_errorf("out of memory");
        err = SBX_ENOMEM;
        sbx_identities_free(list, n);
        goto out;
    }
    cli_plugin_ui_identities(list, n);
    memcpy(grown + *count, list, n * sizeof(*list));
    *ids = grown;
    *count += n;
    sbx_identities_free(list, 0); // the identities now belong to *ids
out:
    sbx_buf_dispose(&text);
    return err;
}

int
cli_load_identities(sbx_identity ***ids, size_t *count, const char *path)
{
    return cli_load_identities_pass(ids, count, path, NULL);
}
