/*
 * tests/kms/kms_server.h - start and stop a real `sbx kms serve` on loopback
 * for the client tests (header-only; include once per test program).
 *
 *     test_kms_server s;
 *     assert_int_equal(test_kms_server_start(&s, true, NULL), 0);   // --dev
 *     ... s.url ("https://127.0.0.1:PORT"), s.cacert, s.fingerprint, s.admin_token
 *     test_kms_server_stop(&s);
 *
 * The sbx binary comes from SBX_TEST_SBX (set by tests/kms/CMakeLists.txt).
 * A non-dev server keeps its data in s.dir, so stop + start with the same
 * struct (keep_dir) restarts it with the same keys, token and certificate.
 */
#ifndef SBX_TEST_KMS_SERVER_H
#define SBX_TEST_KMS_SERVER_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_KMS_DEV_TOKEN "sbxt_dev-insecure-admin-token"

typedef struct test_kms_server {
    pid_t pid;
    int port;
    bool dev;
    char dir[256];         /* data directory (created by start, removed by cleanup) */
    char url[64];          /* https://127.0.0.1:PORT */
    char cacert[320];      /* DIR/tls/cert.pem */
    char fingerprint[128]; /* "AB:CD:..." as printed by the server */
    char admin_token[128];
    char log[320]; /* DIR/server.log: the server's stdout and stderr */
} test_kms_server;

static inline void
test_kms__sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Read the first line of a file into buf; 0 or -1. */
static inline int
test_kms__read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char *ok = fgets(buf, (int)size, f);
    fclose(f);
    if (ok == NULL)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/*
 * Start a server (dev: --dev, in memory, fixed admin token) on a free port.
 * On a restart (s->dir already set, s->pid 0) the same data directory is
 * used. extra: more arguments (NULL-terminated array) or NULL.
 * Returns 0 when it is ready, -1 otherwise (its log is printed).
 */
static inline int
test_kms_server_start_args(test_kms_server *s, bool dev, const char *const *extra)
{
    const char *sbx = getenv("SBX_TEST_SBX");
    if (sbx == NULL || sbx[0] == '\0') {
        fprintf(stderr, "SBX_TEST_SBX is not set (path of the sbx binary)\n");
        return -1;
    }
    if (s->dir[0] == '\0') {
        memset(s, 0, sizeof *s);
        const char *tmp = getenv("TMPDIR");
        snprintf(s->dir, sizeof s->dir, "%s/sbx-kms-test.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(s->dir) == NULL)
            return -1;
    }
    s->dev = dev;
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    char ready[320];
    snprintf(ready, sizeof ready, "%s/ready", s->dir);
    unlink(ready);

    const char *argv[64];
    size_t n = 0;
    argv[n++] = sbx;
    argv[n++] = "kms";
    argv[n++] = "serve";
    argv[n++] = "--data-dir";
    argv[n++] = s->dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    argv[n++] = "--threads";
    argv[n++] = "2";
    if (dev)
        argv[n++] = "--dev";
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *log = fopen(s->log, "a");
        if (log != NULL) {
            dup2(fileno(log), 1);
            dup2(fileno(log), 2);
        }
        execv(sbx, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 300; i++) {
        struct stat st;
        if (stat(ready, &st) == 0 && st.st_size > 0)
            break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            break;
        }
        test_kms__sleep_ms(50);
    }
    char line[64];
    if (s->pid == 0 || test_kms__read_line(ready, line, sizeof line) < 0) {
        fprintf(stderr, "sbx kms serve did not start; its log:\n");
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat '%s' >&2", s->log);
        if (system(cmd) != 0) {
        }
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
        return -1;
    }
    s->port = atoi(line);
    snprintf(s->url, sizeof s->url, "https://127.0.0.1:%d", s->port);
    snprintf(s->cacert, sizeof s->cacert, "%s/tls/cert.pem", s->dir);
    if (dev) {
        snprintf(s->admin_token, sizeof s->admin_token, "%s", TEST_KMS_DEV_TOKEN);
    } else {
        char path[320];
        snprintf(path, sizeof path, "%s/admin.token", s->dir);
        if (test_kms__read_line(path, s->admin_token, sizeof s->admin_token) < 0)
            return -1;
    }
    /* The fingerprint field of the JSON log line: ..."fingerprint":"AB:CD:..."... */
    FILE *f = fopen(s->log, "r");
    char buf[1024];
    while (f != NULL && fgets(buf, sizeof buf, f) != NULL) {
        const char *p = strstr(buf, "\"fingerprint\":\"");
        if (p != NULL) {
            snprintf(s->fingerprint, sizeof s->fingerprint, "%s", p + strlen("\"fingerprint\":\""));
            s->fingerprint[strcspn(s->fingerprint, "\"\r\n")] = '\0';
        }
    }
    if (f != NULL)
        fclose(f);
    return 0;
}

static inline int
test_kms_server_start(test_kms_server *s, bool dev, const char *const *extra)
{
    s->dir[0] = '\0';
    return test_kms_server_start_args(s, dev, extra);
}

/* Restart a stopped server with its data directory (non-dev keeps its keys). */
static inline int
test_kms_server_restart(test_kms_server *s, const char *const *extra)
{
    return test_kms_server_start_args(s, s->dev, extra);
}

/* SIGTERM and wait; returns the exit status or -1. The data directory stays. */
static inline int
test_kms_server_stop(test_kms_server *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        test_kms__sleep_ms(50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* Stop if running and remove the data directory. */
static inline void
test_kms_server_cleanup(test_kms_server *s)
{
    if (s->pid > 0)
        test_kms_server_stop(s);
    if (s->dir[0] != '\0') {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0) {
        }
        s->dir[0] = '\0';
    }
}

/*
 * The server's count of requests for one operation (sum over status codes of
 * sbx_kms_requests_total{op="OP",...} in /metrics), read with curl and the
 * admin token; -1 on failure.
 */
static inline long
test_kms_server_requests(const test_kms_server *s, const char *op)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "curl -sS --cacert '%s' -H 'Authorization: Bearer %s' '%s/metrics' | "
             "awk '/^sbx_kms_requests_total\\{/ && /op=\"%s\"/ { n += $NF } END { print n + 0 }'",
             s->cacert, s->admin_token, s->url, op);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    char line[64] = "";
    char *ok = fgets(line, sizeof line, p);
    int rc = pclose(p);
    if (ok == NULL || rc != 0)
        return -1;
    return atol(line);
}

#endif
