/*
 * cli/passphrase.c - passphrases from a file or from the terminal, with echo
 * off and the terminal restored on a signal.
 *
 * A passphrase goes straight from read(2) into an sbx_buf, which is wiped
 * when disposed; stdio is never used for it.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_tty;
static volatile sig_atomic_t echo_off_fd = -1;

static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
#define NTTY_SIGNALS (sizeof(tty_signals) / sizeof(tty_signals[0]))
static struct sigaction saved_actions[NTTY_SIGNALS]; // sbx's own (cli/signals.c) or default

/* Echo back on, then the signal does what it did before the prompt (cleanup and exit, stop). */
static void
restore_tty_on_signal(int sig)
{
    if (echo_off_fd >= 0)
        tcsetattr(echo_off_fd, TCSAFLUSH, &saved_tty);
    for (size_t i = 0; i < NTTY_SIGNALS; i++) {
        if (tty_signals[i] == sig)
            sigaction(sig, &saved_actions[i], NULL);
    }
    raise(sig); // delivered when this handler returns
}

static void
catch_tty_signals(void)
{
    struct sigaction sa;
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = restore_tty_on_signal;
    sa.sa_flags = 0;
    for (size_t i = 0; i < NTTY_SIGNALS; i++)
        sigaction(tty_signals[i], &sa, &saved_actions[i]);
}

static void
release_tty_signals(void)
{
    for (size_t i = 0; i < NTTY_SIGNALS; i++)
        sigaction(tty_signals[i], &saved_actions[i], NULL);
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
prompt_tty(sbx_buf *out, int fd, const char *prompt, bool secret, char *err, size_t errlen)
{
    struct termios quiet;
    int rc = 0;
    bool echo_off = secret && tcgetattr(fd, &saved_tty) == 0;
    // Echo goes off before the prompt appears: whatever is typed after the prompt is kept.
    if (echo_off) {
        quiet = saved_tty;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        echo_off_fd = fd;
        catch_tty_signals();
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
        release_tty_signals();
    }
    if (secret && write(fd, "\n", 1) < 0) {
        // the passphrase was read; a lost newline on the terminal is harmless
    }
    return rc < 0 ? rc : 0;
}

static int
passphrase_from_tty(sbx_buf *out, const char *prompt, bool confirm, char *err, size_t errlen)
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
    rc = prompt_tty(out, fd, prompt, true, err, errlen);
    if (rc == 0 && out->len > 0 && confirm) {
        rc = prompt_tty(&again, fd, "Confirm passphrase: ", true, err, errlen);
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

static int
read_passphrase(sbx_buf *out, const char *file, const char *prompt, bool confirm, char *err,
                size_t errlen)
{
    int rc = file != NULL ? passphrase_from_file(out, file, err, errlen)
                          : passphrase_from_tty(out, prompt, confirm, err, errlen);
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

int
cli_read_passphrase(sbx_buf *out, const char *file, bool confirm, char *err, size_t errlen)
{
    return read_passphrase(out, file, "Enter passphrase: ", confirm, err, errlen);
}

int
cli_read_passphrase_for(sbx_buf *out, const char *file, const char *what, char *err, size_t errlen)
{
    char prompt[512];
    snprintf(prompt, sizeof(prompt), "Enter passphrase for %s: ", what);
    return read_passphrase(out, file, prompt, false, err, errlen);
}

int
cli_tty_ask(sbx_buf *out, const char *prompt, bool secret, char *err, size_t errlen)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "no terminal to ask on (%s)", strerror(errno));
        return SBX_ECANCELED;
    }
    int rc = prompt_tty(out, fd, prompt, secret, err, errlen);
    close(fd);
    if (rc < 0)
        sbx_buf_dispose(out);
    return rc;
}
