/*
 * tests/core/test_atomic.c - the atomic file sink never destroys what it
 * cannot replace atomically (devices, FIFOs, directories), never writes
 * through a symbolic link (unless asked to follow one), leaves the old file
 * intact when the writer dies mid-way, and leaves no new data behind: none
 * with a name (O_TMPFILE), or, in the weaker case run as core/atomic-named,
 * a named temporary file that a signal handler removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strongbox/strongbox.h"
#include "helpers.h"

static char dir[] = "/tmp/sbx-atomic-XXXXXX";

static int
setup(void **state)
{
    (void)state;
    test_seed_init("core/atomic");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static size_t
count_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void
read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
}

/*
 * A character device (our own node for the null device, so a regression
 * cannot destroy the system's /dev/null) is written to, never replaced.
 */
static void
character_device_stays_a_device(void **state)
{
    (void)state;
    char node[256];
    struct stat st;
    path_in(node, sizeof(node), "null");
    if (mknod(node, S_IFCHR | 0666, makedev(1, 3)) != 0) {
        print_message("[ SKIPPED  ] mknod needs root here; the FIFO test covers non-regular "
                      "targets\n");
        return;
    }
    assert_sbx_ok(sbx_atomic_write_file(node, "data", 4, 0600));
    assert_int_equal(stat(node, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(count_entries(), 1); /* no temporary file was made */
    unlink(node);
}

/* Run under tests/no_tmpfile.c (core/atomic-named): the weaker case, named temporary files. */
static bool
named_mode(void)
{
    return getenv("SBX_TEST_NO_TMPFILE") != NULL;
}

/* Open a sink on path with flags, write text, finish it. */
static void
write_with_flags(const char *path, unsigned flags, const char *text)
{
    sbx_sink *s = NULL;
    assert_sbx_ok(sbx_sink_atomic_file_new_ex(&s, path, 0600, flags));
    assert_sbx_ok(sbx_sink_write(s, (const uint8_t *)text, strlen(text)));
    assert_sbx_ok(sbx_sink_finish(s));
    sbx_sink_free(s);
}

static void
assert_kind(const char *path, mode_t kind)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & S_IFMT, kind);
}

static void
assert_content(const char *path, const char *want)
{
    char buf[64];
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

/* Issue 14 item 6: a link at the output path is never written through. */
static void
symlink_at_path_is_refused_and_its_target_untouched(void **state)
{
    (void)state;
    char target[256], link[256];
    sbx_sink *s = NULL;
    path_in(target, sizeof(target), "target");
    path_in(link, sizeof(link), "link");
    assert_sbx_ok(sbx_atomic_write_file(target, "old", 3, 0600));
    assert_int_equal(symlink(target, link), 0);
    size_t before = count_entries();
    assert_sbx_err(sbx_atomic_write_file(link, "new", 3, 0600), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "symbolic link"));
    assert_non_null(strstr(sbx_error_last()->message, "target's own path"));
    assert_sbx_err(sbx_sink_atomic_file_new(&s, link, 0600), SBX_EINVAL);
    assert_null(s);
    assert_kind(link, S_IFLNK);
    assert_content(target, "old");
    assert_int_equal(count_entries(), before);
    unlink(link);
    unlink(target);
}

static void
dangling_symlink_is_refused_and_nothing_created(void **state)
{
    (void)state;
    char target[256], link[256];
    path_in(target, sizeof(target), "planted-target");
    path_in(link, sizeof(link), "dangling");
    assert_int_equal(symlink(target, link), 0);
    assert_sbx_err(sbx_atomic_write_file(link, "new", 3, 0600), SBX_EINVAL);
    assert_int_equal(access(target, F_OK), -1);
    assert_int_equal(count_entries(), 1);
    unlink(link);
}

/* SBX_ATOMIC_FOLLOW (in-place rewrites of an input): the target is replaced, the link kept. */
static void
follow_flag_replaces_the_link_target_and_keeps_the_link(void **state)
{
    (void)state;
    char target[256], link[256];
    path_in(target, sizeof(target), "target");
    path_in(link, sizeof(link), "link");
    assert_sbx_ok(sbx_atomic_write_file(target, "old", 3, 0600));
    assert_int_equal(symlink(target, link), 0);
    write_with_flags(link, SBX_ATOMIC_FOLLOW, "new");
    assert_kind(link, S_IFLNK);
    assert_content(target, "new");
    assert_int_equal(count_entries(), 2);
    unlink(link);
    unlink(target);
}

/* A link to a FIFO or device (as /dev/stdout is) is written through: nothing is replaced. */
static void
link_to_a_fifo_is_written_through(void **state)
{
    (void)state;
    char fifo[256], link[256], buf[16] = {0};
    struct stat st;
    path_in(fifo, sizeof(fifo), "fifo2");
    path_in(link, sizeof(link), "stdout-like");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(symlink(fifo, link), 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    assert_sbx_ok(sbx_atomic_write_file(link, "pipe", 4, 0600));
    assert_int_equal(read(rfd, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "pipe");
    close(rfd);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    unlink(link);
    unlink(fifo);
}

/* A link planted at the path while writing is replaced by the commit, never followed. */
static void
link_planted_while_writing_is_replaced_not_followed(void **state)
{
    (void)state;
    char victim[256], path[256];
    sbx_sink *s = NULL;
    path_in(victim, sizeof(victim), "victim2");
    path_in(path, sizeof(path), "out.txt");
    assert_sbx_ok(sbx_atomic_write_file(victim, "precious", 8, 0600));
    assert_sbx_ok(sbx_sink_atomic_file_new(&s, path, 0600));
    assert_sbx_ok(sbx_sink_write(s, (const uint8_t *)"plaintext", 9));
    assert_int_equal(symlink(victim, path), 0); // the race: planted after the check
    assert_sbx_ok(sbx_sink_finish(s));
    sbx_sink_free(s);
    assert_content(victim, "precious");
    assert_kind(path, S_IFREG);
    assert_content(path, "plaintext");
    assert_int_equal(count_entries(), 2);
    unlink(path);
    unlink(victim);
}

/*
 * Issue 14 item 2: until finish(), the data has no name (O_TMPFILE), so no
 * death can leave it behind. Under the shim, the weaker case: one named
 * temporary file, removed by free().
 */
static void
unfinished_output_has_no_name(void **state)
{
    (void)state;
    char path[256];
    sbx_sink *s = NULL;
    path_in(path, sizeof(path), "pending");
    size_t before = count_entries();
    assert_sbx_ok(sbx_sink_atomic_file_new(&s, path, 0600));
    assert_sbx_ok(sbx_sink_write(s, (const uint8_t *)"plaintext", 9));
    assert_int_equal(count_entries(), before + (named_mode() ? 1 : 0));
    sbx_sink_free(s);
    assert_int_equal(count_entries(), before);
}

static void
cleanup_then_die(int sig)
{
    sbx_atomic_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A signal handler calling sbx_atomic_cleanup() leaves no temporary file, in either case. */
static void
signal_cleanup_leaves_no_temporary_file(void **state)
{
    (void)state;
    char path[256];
    path_in(path, sizeof(path), "signalled");
    size_t before = count_entries();
    for (int noreplace = 0; noreplace < 2; noreplace++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            sbx_sink *s;
            signal(SIGTERM, cleanup_then_die);
            if (sbx_sink_atomic_file_new_ex(&s, path, 0600, noreplace ? SBX_ATOMIC_NOREPLACE : 0) !=
                    0 ||
                sbx_sink_write(s, (const uint8_t *)"plaintext", 9) != 0)
                _exit(3);
            raise(SIGTERM);
            _exit(4);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
        assert_int_equal(count_entries(), before);
    }
}

/* NOREPLACE: an existing file or a (dangling) symlink is refused up front. */
static void
noreplace_refuses_existing_files_and_links(void **state)
{
    (void)state;
    char target[256], link[256], fresh[256], buf[64];
    sbx_sink *s = NULL;
    path_in(target, sizeof(target), "nr-target");
    path_in(link, sizeof(link), "nr-link");
    path_in(fresh, sizeof(fresh), "nr-fresh");
    assert_sbx_ok(sbx_atomic_write_file(target, "old", 3, 0600));
    assert_sbx_err(sbx_sink_atomic_file_new_ex(&s, target, 0600, SBX_ATOMIC_NOREPLACE),
                   SBX_EEXISTS);
    assert_null(s);
    assert_int_equal(symlink("/nonexistent/sbx-victim", link), 0); // dangling
    assert_sbx_err(sbx_sink_atomic_file_new_ex(&s, link, 0600, SBX_ATOMIC_NOREPLACE), SBX_EEXISTS);
    assert_sbx_err(sbx_sink_atomic_file_new_ex(&s, fresh, 0600, 0x80), SBX_EINVAL);
    assert_sbx_ok(sbx_sink_atomic_file_new_ex(&s, fresh, 0600, SBX_ATOMIC_NOREPLACE));
    assert_sbx_ok(sbx_sink_write(s, (const uint8_t *)"new", 3));
    assert_sbx_ok(sbx_sink_finish(s));
    sbx_sink_free(s);
    read_file(fresh, buf, sizeof(buf));
    assert_string_equal(buf, "new");
    read_file(target, buf, sizeof(buf));
    assert_string_equal(buf, "old");
    unlink(target);
    unlink(link);
    unlink(fresh);
}

/* NOREPLACE: a symlink planted while writing is neither followed nor replaced. */
static void
noreplace_commit_fails_when_a_link_appears_meanwhile(void **state)
{
    (void)state;
    char victim[256], path[256], buf[64];
    sbx_sink *s = NULL;
    struct stat st;
    path_in(victim, sizeof(victim), "victim");
    path_in(path, sizeof(path), "out.age");
    assert_sbx_ok(sbx_atomic_write_file(victim, "precious", 8, 0600));
    size_t before = count_entries();
    assert_sbx_ok(sbx_sink_atomic_file_new_ex(&s, path, 0600, SBX_ATOMIC_NOREPLACE));
    assert_sbx_ok(sbx_sink_write(s, (const uint8_t *)"ciphertext", 10));
    assert_int_equal(symlink(victim, path), 0); // the race: planted after the check
    assert_sbx_err(sbx_sink_finish(s), SBX_EEXISTS);
    sbx_sink_free(s);
    read_file(victim, buf, sizeof(buf));
    assert_string_equal(buf, "precious");
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(count_entries(), before + 1); // the link; no temporary file left
    unlink(path);
    unlink(victim);
}

static void
fifo_is_written_directly(void **state)
{
    (void)state;
    char fifo[256], buf[16] = {0};
    struct stat st;
    path_in(fifo, sizeof(fifo), "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    assert_sbx_ok(sbx_atomic_write_file(fifo, "pipe", 4, 0600));
    assert_int_equal(read(rfd, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "pipe");
    close(rfd);
    assert_int_equal(stat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    unlink(fifo);
}

static void
directory_target_is_refused(void **state)
{
    (void)state;
    sbx_sink *s = NULL;
    assert_sbx_err(sbx_sink_atomic_file_new(&s, dir, 0600), SBX_EIO);
    assert_null(s);
}

static void
new_file_gets_mode_at_creation(void **state)
{
    (void)state;
    char path[256];
    struct stat st;
    mode_t old = umask(0);
    path_in(path, sizeof(path), "secret");
    assert_sbx_ok(sbx_atomic_write_file(path, "k", 1, 0600));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    umask(old);
    unlink(path);
}

/* A writer killed before finish() leaves the old content in place, whatever the moment. */
static void
killed_writer_never_loses_the_file(void **state)
{
    (void)state;
    char path[256], buf[64];
    path_in(path, sizeof(path), "precious");
    assert_sbx_ok(sbx_atomic_write_file(path, "old content", 11, 0600));
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (;;) { /* replace the file over and over until killed */
                sbx_sink *s;
                if (sbx_sink_atomic_file_new(&s, path, 0600) != 0)
                    _exit(3);
                if (sbx_sink_write(s, (const uint8_t *)"new content", 11) != 0 ||
                    sbx_sink_finish(s) != 0)
                    _exit(4);
                sbx_sink_free(s);
            }
        }
        usleep((useconds_t)(1000 + test_rand_below(20000)));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        read_file(path, buf, sizeof(buf));
        if (strcmp(buf, "old content") != 0 && strcmp(buf, "new content") != 0)
            fail_msg("round %d: file holds \"%s\"", round, buf);
    }
    /* A kill in the instant of a rename (or any, in the weaker case) leaves a temporary file. */
    assert_true(count_entries() >= 1);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -f %s/.precious.tmp-*", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(count_entries(), 1);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(character_device_stays_a_device),
        cmocka_unit_test(symlink_at_path_is_refused_and_its_target_untouched),
        cmocka_unit_test(dangling_symlink_is_refused_and_nothing_created),
        cmocka_unit_test(follow_flag_replaces_the_link_target_and_keeps_the_link),
        cmocka_unit_test(link_to_a_fifo_is_written_through),
        cmocka_unit_test(link_planted_while_writing_is_replaced_not_followed),
        cmocka_unit_test(unfinished_output_has_no_name),
        cmocka_unit_test(signal_cleanup_leaves_no_temporary_file),
        cmocka_unit_test(fifo_is_written_directly),
        cmocka_unit_test(noreplace_refuses_existing_files_and_links),
        cmocka_unit_test(noreplace_commit_fails_when_a_link_appears_meanwhile),
        cmocka_unit_test(directory_target_is_refused),
        cmocka_unit_test(new_file_gets_mode_at_creation),
        cmocka_unit_test(killed_writer_never_loses_the_file),
    };
    return cmocka_run_group_tests_name("core/atomic", tests, setup, teardown);
}
