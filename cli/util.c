/*
 * cli/util.c - messages, small files, outputs and passphrases for sbx.
 *
 * Secrets read here (identity files, passphrases) go straight from read(2)
 * into an sbx_buf, which is wiped when disposed; stdio is never used for
 * them, so no unwiped copy is left in a FILE buffer.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* ---- messages ---- */

static void
vmessage(const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "sbx: %s: ", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
}

void
cli_warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning", fmt, ap);
    va_end(ap);
}

void
cli_hintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("hint", fmt, ap);
    va_end(ap);
}

void
cli_error_lib(const char *prefix)
{
    const char *msg = sbx_error_last()->message;
    if (prefix != NULL)
        cli_errorf("%s: %s", prefix, msg);
    else
        cli_errorf("%s", msg);
}

int
cli_usage_errorf(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
    return cli_usage(command);
}

static bool
is_long_option(const struct option *longopts, const char *name, size_t len)
{
    for (; longopts->name != NULL; longopts++) {
        if (strncmp(longopts->name, name, len) == 0)
            return true; // getopt_long accepts unique prefixes too
    }
    return false;
}

int
cli_bad_option(const char *command, int c, char **argv, const struct option *longopts)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    size_t len = strcspn(arg, "=");
    if (c == ':' && strncmp(arg, "--", 2) == 0)
        return cli_usage_errorf(command, "option %.*s needs an argument", (int)len, arg);
    if (c == ':')
        return cli_usage_errorf(command, "option -%c needs an argument", optopt);
    if (strncmp(arg, "--", 2) == 0 && arg[len] == '=' && is_long_option(longopts, arg + 2, len - 2))
        return cli_usage_errorf(command, "option %.*s takes no argument", (int)len, arg);
    if (strncmp(arg, "--", 2) == 0)
        return cli_usage_errorf(command, "unknown option %.*s", (int)len, arg);
    if (optopt > 0 && optopt < 128)
        return cli_usage_errorf(command, "unknown option -%c", optopt);
    return cli_usage_errorf(command, "unknown option %s", arg);
}

bool
cli_parse_int(int *out, const char *s, int min, int max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* ---- files ---- */

static int
open_error(const char *what, const char *path)
{
    int e = errno;
    cli_errorf("cannot open %s %s: %s", what, path, strerror(e));
    return e == ENOENT ? SBX_ENOTFOUND : SBX_EIO;
}

static void
check_mode(int fd, const char *what, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0)
        return;
    cli_warnf("%s %s is %s by others (mode %04o); run chmod 600 %s", what, path,
              (st.st_mode & 044) ? "readable" : "accessible", (unsigned)(st.st_mode & 07777), path);
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
 * Atomic replacement is for regular files. A target that exists and is not
 * one (/dev/null, a FIFO, /dev/stdout onto a pipe) is opened and written in
 * place: renaming over it would replace the device node or the link itself.
 * A symbolic link to a regular file is followed, and its target replaced.
 */
static int
open_in_place(sbx_sink **out, const char *path, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, (mode_t)mode);
    if (fd < 0) {
        cli_errorf("cannot open %s for writing: %s", path, strerror(errno));
        return SBX_EIO;
    }
    int err = sbx_sink_fd_new(out, fd, true);
    if (err < 0) {
        close(fd);
        cli_error_lib(NULL);
    }
    return err;
}

static int
open_atomic(sbx_sink **out, const char *path, unsigned mode)
{
    int err = sbx_sink_atomic_file_new(out, path, mode);
    if (err < 0)
        cli_error_lib(NULL);
    return err;
}

int
cli_open_output(sbx_sink **out, const char *path, unsigned mode)
{
    struct stat st, lst;
    *out = NULL;
    if (path == NULL || strcmp(path, "-") == 0) {
        int err = sbx_sink_fd_new(out, STDOUT_FILENO, false);
        if (err < 0)
            cli_error_lib(NULL);
        return err;
    }
    if (lstat(path, &lst) != 0 || S_ISREG(lst.st_mode))
        return open_atomic(out, path, mode); // a new file, or a regular file to replace
    if (!S_ISLNK(lst.st_mode))
        return open_in_place(out, path, mode);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return open_in_place(out, path, mode); // dangling link, or a link to a device
    char *target = realpath(path, NULL);
    if (target == NULL)
        return open_in_place(out, path, mode);
    int err = open_atomic(out, target, mode);
    free(target);
    return err;
}

int
cli_load_identities(sbx_identity ***ids, size_t *count, const char *path)
{
    sbx_buf text = SBX_BUF_INIT;
    sbx_identity **list = NULL;
    size_t n = 0;
    int err;
    if ((err = cli_read_small_file(&text, path, "identity file", true)) < 0)
        goto out;
    if ((err = sbx_identities_parse(&list, &n, (const char *)text.ptr, text.len)) < 0) {
        cli_errorf("identity file %s: %s", path, sbx_error_last()->message);
        goto out;
    }
    sbx_identity **grown = realloc(*ids, (*count + n + 1) * sizeof(*grown));
    if (grown == NULL) {
        cli_errorf("out of memory");
        err = SBX_ENOMEM;
        sbx_identities_free(list, n);
        goto out;
    }
    memcpy(grown + *count, list, n * sizeof(*list));
    *ids = grown;
    *count += n;
    sbx_identities_free(list, 0); // the identities now belong to *ids
out:
    sbx_buf_dispose(&text);
    return err;
}

/* ---- passphrases ---- */

static struct termios saved_tty;
static volatile sig_atomic_t echo_off_fd = -1;

static void
restore_tty_on_signal(int sig)
{
    if (echo_off_fd >= 0)
        tcsetattr(echo_off_fd, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};

static void
set_signal_handlers(void (*handler)(int))
{
    for (size_t i = 0; i < sizeof(tty_signals) / sizeof(tty_signals[0]); i++)
        signal(tty_signals[i], handler);
}

/* Read one line byte by byte (so nothing after it is consumed). 1 = got a line, 0 = EOF at once. */
static int
read_line(sbx_buf *out, int fd, char *err, size_t errlen)
{
    bool any = false;
    for (;;) {
        uint8_t c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read the passphrase: %s", strerror(errno));
            return SBX_EIO;
        }
        if (n == 0 || c == '\n')
            break;
        any = true;
        if (out->len >= CLI_MAX_PASSPHRASE) {
            snprintf(err, errlen, "the passphrase is longer than %d bytes", CLI_MAX_PASSPHRASE);
            return SBX_ETOOBIG;
        }
        if (sbx_buf_append(out, &c, 1) < 0) {
            snprintf(err, errlen, "out of memory");
            return SBX_ENOMEM;
        }
    }
    if (out->len > 0 && out->ptr[out->len - 1] == '\r')
        out->len--;
    return any ? 1 : 0;
}

static int
prompt_tty(sbx_buf *out, int fd, const char *prompt, char *err, size_t errlen)
{
    struct termios quiet;
    int rc = 0;
    bool echo_off = tcgetattr(fd, &saved_tty) == 0;
    // Echo goes off before the prompt appears: whatever is typed after the prompt is kept.
    if (echo_off) {
        quiet = saved_tty;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        echo_off_fd = fd;
        set_signal_handlers(restore_tty_on_signal);
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        snprintf(err, errlen, "cannot write to the terminal: %s", strerror(errno));
        rc = SBX_EIO;
    }
    if (rc == 0)
        rc = read_line(out, fd, err, errlen);
    if (echo_off) {
        tcsetattr(fd, TCSANOW, &saved_tty);
        echo_off_fd = -1;
        set_signal_handlers(SIG_DFL);
    }
    if (write(fd, "\n", 1) < 0) {
        // the passphrase was read; a lost newline on the terminal is harmless
    }
    return rc < 0 ? rc : 0;
}

static int
passphrase_from_tty(sbx_buf *out, bool confirm, char *err, size_t errlen)
{
    sbx_buf again = SBX_BUF_INIT;
    int rc;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen,
                 "cannot ask for a passphrase: no terminal (%s); use --passphrase-file FILE",
                 strerror(errno));
        return SBX_ECANCELED;
    }
    rc = prompt_tty(out, fd, "Enter passphrase: ", err, errlen);
    if (rc == 0 && out->len > 0 && confirm) {
        rc = prompt_tty(&again, fd, "Confirm passphrase: ", err, errlen);
        if (rc == 0 && (again.len != out->len || !sbx_equal(again.ptr, out->ptr, out->len))) {
            snprintf(err, errlen, "the passphrases do not match");
            rc = SBX_ECANCELED;
        }
    }
    sbx_buf_dispose(&again);
    close(fd);
    return rc;
}

static int
passphrase_from_file(sbx_buf *out, const char *path, char *err, size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open passphrase file %s: %s", path, strerror(errno));
        return errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO;
    }
    int rc = read_line(out, fd, err, errlen);
    if (!is_stdin)
        close(fd);
    return rc < 0 ? rc : 0;
}

int
cli_read_passphrase(sbx_buf *out, const char *file, bool confirm, char *err, size_t errlen)
{
    int rc = file != NULL ? passphrase_from_file(out, file, err, errlen)
                          : passphrase_from_tty(out, confirm, err, errlen);
    if (rc == 0 && out->len == 0) {
        if (file != NULL)
            snprintf(err, errlen, "the passphrase file %s is empty (its first line is used)", file);
        else
            snprintf(err, errlen, "no passphrase entered");
        rc = SBX_ECANCELED;
    }
    if (rc < 0)
        sbx_buf_dispose(out);
    return rc;
}
