/*
 * tests/fileops/test_destroy.c - sbx_destroy(): the report fields, the
 * refusals (hard links, symbolic links, non-regular files, bad options), the
 * force semantics, and the honest warnings on tmpfs (/dev/shm). No timing
 * assertions (spec/seeds.md §1.10 fix): behaviour only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "strongbox/fileops.h"
#include "helpers.h"

static char dir[256];

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sbx-destroy-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
make_file(const char *path, size_t n)
{
    uint8_t *data = test_malloc_rand(n);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(data);
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static size_t
count_entries(const char *d)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", d);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return (size_t)n;
}

static void
destroy_reports_what_it_did(void **state)
{
    char path[300];
    struct stat st;
    sbx_destroy_report r;
    sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;
    (void)state;
    snprintf(path, sizeof(path), "%s/report.bin", dir);
    make_file(path, 300000);
    assert_int_equal(stat(path, &st), 0);
    o.passes = 3;
    assert_sbx_ok(sbx_destroy(&r, path, &o));
    assert_false(exists(path));
    assert_int_equal(count_entries(dir), 0); // the random-name rename left nothing
    assert_int_equal(r.size, 300000);
    assert_int_equal(r.bytes_overwritten, 900000);
    assert_int_equal(r.passes, 3);
    assert_int_equal(r.inode, st.st_ino);
    assert_int_equal(r.links, 1);
    assert_true(r.overwritten);
    assert_true(r.unlinked);
    assert_true(r.seconds >= 0.0);
    assert_true(strlen(r.fs_type) > 0);
    assert_true(strchr(r.device, ':') != NULL);
    assert_true(r.rotational >= -1 && r.rotational <= 1);
    assert_true(r.discard >= -1 && r.discard <= 1);
    assert_true(r.mount_point[0] == '/');
    // Never "reliable" with a warning; an unknown device is never reliable.
    if (r.nwarnings > 0 || r.rotational != 1)
        assert_false(r.reliable);
}

static void
destroy_handles_an_empty_file(void **state)
{
    char path[300];
    sbx_destroy_report r;
    (void)state;
    snprintf(path, sizeof(path), "%s/empty", dir);
    make_file(path, 0);
    assert_sbx_ok(sbx_destroy(&r, path, NULL));
    assert_false(exists(path));
    assert_int_equal(r.bytes_overwritten, 0);
    assert_int_equal(r.passes, 1);
}

static void
destroy_refuses_other_hard_links(void **state)
{
    char path[300], other[300], third[300];
    sbx_destroy_report r;
    sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;
    (void)state;
    snprintf(path, sizeof(path), "%s/linked", dir);
    snprintf(other, sizeof(other), "%s/linked2", dir);
    snprintf(third, sizeof(third), "%s/linked3", dir);
    make_file(path, 1000);
    assert_int_equal(link(path, other), 0);
    assert_int_equal(link(path, third), 0);
    assert_sbx_err(sbx_destroy(&r, path, NULL), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "3 hard links"));
    assert_non_null(strstr(sbx_error_last()->message, "-inum"));
    assert_int_equal(r.links, 3); // seed: orig_links == 3 with two extra links
    assert_true(exists(path));
    assert_false(r.unlinked);

    // force: only this name goes, the data is untouched under the others
    FILE *f = fopen(other, "rb");
    uint8_t before[1000], after[1000];
    assert_int_equal(fread(before, 1, sizeof(before), f), sizeof(before));
    fclose(f);
    o.force = true;
    assert_sbx_ok(sbx_destroy(&r, path, &o));
    assert_false(exists(path));
    assert_int_equal(count_entries(dir), 2); // the other names, and no renamed leftover
    assert_true(r.unlinked);
    assert_false(r.overwritten);
    assert_int_equal(r.bytes_overwritten, 0);
    assert_int_equal(r.passes, 0);
    assert_false(r.reliable);
    assert_true(r.nwarnings >= 1);
    assert_non_null(strstr(r.warnings[0], "NOT overwritten"));
    f = fopen(other, "rb");
    assert_int_equal(fread(after, 1, sizeof(after), f), sizeof(after));
    fclose(f);
    assert_memory_equal(before, after, sizeof(before));
}

static void
destroy_refuses_symlinks_and_never_follows_them(void **state)
{
    char target[300], link_path[300];
    sbx_destroy_report r;
    struct stat st;
    (void)state;
    snprintf(target, sizeof(target), "%s/target", dir);
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    make_file(target, 500);
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(symlink(target, link_path), 0);
    assert_sbx_err(sbx_destroy(&r, link_path, NULL), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "symbolic link"));
    assert_true(exists(link_path));
    struct stat after;
    assert_int_equal(stat(target, &after), 0);
    assert_int_equal(after.st_size, 500);
    assert_int_equal(after.st_mtime, st.st_mtime);
    // a dangling link is refused too
    assert_int_equal(unlink(target), 0);
    assert_sbx_err(sbx_destroy(&r, link_path, NULL), SBX_EINVAL);
}

static void
destroy_refuses_non_regular_files(void **state)
{
    char fifo[300];
    sbx_destroy_report r;
    (void)state;
    assert_sbx_err(sbx_destroy(&r, dir, NULL), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "not a regular file"));
    assert_sbx_err(sbx_destroy(&r, "/dev/null", NULL), SBX_EINVAL);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_sbx_err(sbx_destroy(&r, fifo, NULL), SBX_EINVAL);
    assert_true(exists(fifo));
}

static void
destroy_reports_missing_files_and_bad_options(void **state)
{
    char path[300];
    sbx_destroy_report r;
    sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;
    (void)state;
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_sbx_err(sbx_destroy(&r, path, NULL), SBX_ENOTFOUND);
    make_file(path, 10);
    o.passes = 0;
    assert_sbx_err(sbx_destroy(&r, path, &o), SBX_EINVAL);
    o.passes = SBX_DESTROY_MAX_PASSES + 1;
    assert_sbx_err(sbx_destroy(&r, path, &o), SBX_EINVAL);
    o.passes = 1;
    o.version = 99;
    assert_sbx_err(sbx_destroy(&r, path, &o), SBX_EINVAL);
    assert_true(exists(path));
}

static void
destroy_warns_honestly_on_tmpfs(void **state)
{
    char path[64];
    struct statfs sfs;
    sbx_destroy_report r;
    (void)state;
    if (statfs("/dev/shm", &sfs) != 0 || (uint64_t)sfs.f_type != 0x01021994) {
        print_message("SKIP: /dev/shm is not a tmpfs here\n");
        skip();
    }
    snprintf(path, sizeof(path), "/dev/shm/sbx-destroy-%d", (int)getpid());
    make_file(path, 4096);
    assert_sbx_ok(sbx_destroy(&r, path, NULL));
    assert_false(exists(path));
    assert_string_equal(r.fs_type, "tmpfs");
    assert_false(r.reliable);
    assert_true(r.nwarnings >= 1);
    assert_non_null(strstr(r.warnings[0], "swap"));
    assert_non_null(strstr(r.warnings[0], "encrypt"));
    assert_int_equal(r.rotational, -1); // no block device behind a tmpfs
}

static void
fs_type_names_cover_the_honesty_cases(void **state)
{
    (void)state;
    assert_string_equal(sbx_fs_type_name(0xEF53), "ext4");
    assert_string_equal(sbx_fs_type_name(0x58465342), "xfs");
    assert_string_equal(sbx_fs_type_name(0x9123683E), "btrfs");
    assert_string_equal(sbx_fs_type_name(0x2FC12FC1), "zfs");
    assert_string_equal(sbx_fs_type_name(0xF2F52010), "f2fs");
    assert_string_equal(sbx_fs_type_name(0x01021994), "tmpfs");
    assert_string_equal(sbx_fs_type_name(0x794C7630), "overlay");
    assert_string_equal(sbx_fs_type_name(0x6969), "nfs");
    assert_string_equal(sbx_fs_type_name(0xFF534D42), "cifs");
    assert_string_equal(sbx_fs_type_name(0x12345678), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(destroy_reports_what_it_did, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_handles_an_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_refuses_other_hard_links, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_refuses_symlinks_and_never_follows_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(destroy_refuses_non_regular_files, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_reports_missing_files_and_bad_options, setup,
                                        teardown),
        cmocka_unit_test(destroy_warns_honestly_on_tmpfs),
        cmocka_unit_test(fs_type_names_cover_the_honesty_cases),
    };
    test_seed_init("fileops/destroy");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
