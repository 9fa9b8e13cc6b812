/*
 * src/age/plugin_exec.c - finding, starting, talking to and reaping an
 * `age-plugin-NAME` program (strongbox/plugin.h, "Running a plugin").
 *
 * Implementation notes:
 *  - PATH is searched for age-plugin-NAME; empty and relative entries are
 *    skipped (C2SP age-plugin: never the working directory). The program
 *    is started with posix_spawn, its working directory "/", the signal
 *    mask emptied and SIGPIPE reset to default (we may have blocked or
 *    ignored them), and only its three pipes open (ours are O_CLOEXEC).
 *  - Reading its stdout and writing its stdin both poll its stderr too and
 *    drain it (the first kilobyte is kept for messages): a plugin blocked
 *    on a full stderr pipe cannot deadlock us.
 *  - Writes happen with SIGPIPE blocked in this thread; a SIGPIPE our write
 *    raised is consumed with sigtimedwait before the mask is restored, so a
 *    plugin that exits early gives EPIPE, never a signal to the process.
 *  - finish() always reaps: pipes closed, then, if the plugin still runs,
 *    SIGINT after a complete run (as age does) or SIGKILL after a failed one
 *    (nothing can make us wait), then waitpid. Its stderr is what it wrote before we hung
 *    up (a plugin that ended the protocol by exiting wrote it before its
 *    stdout closed); what it says about the hang-up is not kept.
 */
#include "age/plugin.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* see age/plugin.h */
bool
sbx__plugin_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 32)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '+';
        if (!ok)
            return false;
    }
    return true;
}

/* The first executable regular file age-plugin-NAME in an absolute PATH directory. */
static bool
find_program(char *path, size_t cap, const char *program)
{
    const char *p = getenv("PATH");
    if (p == NULL)
        p = DEFAULT_PATH;
    while (*p != '\0') {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        struct stat st;
        if (n > 0 && p[0] == '/' &&
            (size_t)snprintf(path, cap, "%.*s/%s", (int)n, p, program) < cap &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
            return true;
        p += n + (colon != NULL);
    }
    return false;
}

/* Keep the start of what the plugin wrote to stderr: 1 read some, 2 none yet, 0 its end. */
static int
drain_stderr(sbx__plugin_proc *p)
{
    char buf[512];
    ssize_t n = read(p->err, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
        return 1;
    if (n < 0 && errno == EAGAIN)
        return 2;
    if (n <= 0) {
        close(p->err);
        p->err = -1;
        return 0;
    }
    size_t room = sizeof(p->stderr_head) - 1 - p->stderr_len,
           take = (size_t)n < room ? (size_t)n : room;
    memcpy(p->stderr_head + p->stderr_len, buf, take);
    p->stderr_len += take;
    return 1;
}

/* Wait until fd is ready for events, draining stderr meanwhile. */
static int
wait_for(sbx__plugin_proc *p, int fd, short events)
{
    for (;;) {
        struct pollfd fds[2] = {{fd, events, 0}, {p->err, POLLIN, 0}};
        int r = poll(fds, p->err >= 0 ? 2 : 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sbx__error_sys(SBX_EIO, "poll on the plugin's pipes failed");
        if (p->err >= 0 && fds[1].revents != 0)
            drain_stderr(p);
        if (fds[0].revents != 0)
            return 0;
    }
}

static int
proc_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    sbx__plugin_proc *p = ctx;
    int err;
    *got = 0;
    for (;;) {
        if ((err = wait_for(p, p->from, POLLIN)) < 0)
            return err;
        ssize_t n = read(p->from, buf, cap);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return sbx__error_sys(SBX_EIO, "cannot read from the plugin");
        *got = (size_t)n;
        return 0;
    }
}

/* write(2) with SIGPIPE blocked in this thread; a SIGPIPE it raised is consumed. */
static ssize_t
write_nosigpipe(int fd, const uint8_t *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = write(fd, buf, len);
    int e = errno;
    if (n < 0 && e == EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

static int
proc_write(void *ctx, const uint8_t *buf, size_t len)
{
    sbx__plugin_proc *p = ctx;
    int err;
    while (len > 0) {
        if ((err = wait_for(p, p->to, POLLOUT)) < 0)
            return err;
        ssize_t n = write_nosigpipe(p->to, buf, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0 && errno == EPIPE)
            return sbx__error(SBX_EIO, "the plugin stopped reading its input");
        if (n < 0)
            return sbx__error_sys(SBX_EIO, "cannot write to the plugin");
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int
spawn(sbx__plugin_proc *p, const char *path, const char *machine, int in[2], int out[2],
      int errp[2])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, deflt;
    char arg[64];
    snprintf(arg, sizeof(arg), "--age-plugin=%s", machine);
    char *argv[] = {p->program, arg, NULL};
    sigemptyset(&none);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGINT);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, "/");
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &deflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(&p->pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return sbx__error_sys(SBX_EIO, "cannot start %s", path);
    }
    return 0;
}

/* see age/plugin.h */
int
sbx__plugin_start(sbx__plugin_proc *p, const char *name, const char *machine)
{
    char path[4096];
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
    int err = 0;
    memset(p, 0, sizeof(*p));
    p->pid = -1;
    p->to = p->from = p->err = -1;
    snprintf(p->program, sizeof(p->program), "age-plugin-%s", name);
    if (!find_program(path, sizeof(path), p->program))
        return sbx__error(SBX_ENOTFOUND,
                          "%s is not installed: no such program in PATH (install the plugin, or "
                          "add its directory to PATH)",
                          p->program);
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        err = sbx__error_sys(SBX_EIO, "cannot make pipes for %s", p->program);
        goto out;
    }
    if ((err = spawn(p, path, machine, in, out, errp)) < 0)
        goto out;
    p->to = in[1];
    p->from = out[0];
    p->err = errp[0];
    in[1] = out[0] = errp[0] = -1;
    fcntl(p->err, F_SETFL, fcntl(p->err, F_GETFL) | O_NONBLOCK);
    p->io.read = proc_read;
    p->io.write = proc_write;
    p->io.ctx = p;
out:
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&out[i]);
        close_fd(&errp[i]);
    }
    return err;
}

/* How the plugin ended (unless by our signal sent), and the first line of its stderr. */
static void
describe_end(char *out, size_t cap, const sbx__plugin_proc *p, int status, int sent)
{
    char first[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < p->stderr_len && p->stderr_head[i] != '\n' && n + 1 < sizeof(first); i++)
        first[n++] = ((unsigned char)p->stderr_head[i] < 0x20 || p->stderr_head[i] == 0x7f)
                         ? '?'
                         : p->stderr_head[i];
    first[n] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        snprintf(out, cap, "; it exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status) && WTERMSIG(status) != sent)
        snprintf(out, cap, "; it was killed by signal %d", WTERMSIG(status));
    else
        out[0] = '\0';
    if (first[0] != '\0') {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s: %s", used ? "" : "; it said", first);
    }
}

/* see age/plugin.h */
int
sbx__plugin_finish(sbx__plugin_proc *p, int err)
{
    int status = 0, sent = 0;
    char end[512] = "";
    // What it wrote to stderr until now; what it writes once we hang up is about the hang-up.
    while (p->err >= 0 && drain_stderr(p) == 1)
        ;
    close_fd(&p->err);
    close_fd(&p->to);
    close_fd(&p->from);
    if (p->pid > 0) {
        pid_t r;
        while ((r = waitpid(p->pid, &status, WNOHANG)) < 0 && errno == EINTR)
            ;
        if (r == 0) {
            // Done: SIGINT, as age sends. Abandoned mid-protocol: SIGKILL, so that a plugin
            // that ignores signals cannot keep us waiting. Either way it is reaped here.
            sent = err < 0 ? SIGKILL : SIGINT;
            kill(p->pid, sent);
            while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
                ;
        }
        p->pid = -1;
    }
    if (err < 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s", sbx_error_last()->message);
        describe_end(end, sizeof(end), p, status, sent);
        err = sbx__error(err, "%s: %s%s", p->program, why, end);
    }
    return err;
}
