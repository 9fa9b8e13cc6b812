/*
 * tests/age/test_plugin.c - age plugins (strongbox/plugin.h) through the
 * public interface, against the test plugin tests/plugin/age-plugin-sbxtest
 * (a Python program written apart from the library): round trips, several
 * files in one run, the UI callbacks, identity files mixing native and
 * plugin keys, and the failures (missing, exits before reading, exits
 * early, garbage, oversized, error, a secret with no UI). After every run
 * no child is left (waitpid says ECHILD), and a plugin that goes away while
 * we write does not kill us with SIGPIPE (its default action is kept here).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <strongbox/strongbox.h>
#include <strongbox/plugin.h>
#include <strongbox/sys/age.h>

#include "helpers.h"

static char identity_str[128], recipient_str[128], other_identity[128];
static char log_path[256];

static void
make_keys(void)
{
    const uint8_t id[8] = {1, 2, 3, 4, 5, 6, 7, 8}, other[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    assert_sbx_ok(
        sbx_bech32_encode(identity_str, sizeof(identity_str), "AGE-PLUGIN-SBXTEST-", id, 8, true));
    assert_sbx_ok(
        sbx_bech32_encode(recipient_str, sizeof(recipient_str), "age1sbxtest", id, 8, false));
    assert_sbx_ok(sbx_bech32_encode(other_identity, sizeof(other_identity), "AGE-PLUGIN-SBXTEST-",
                                    other, 8, true));
}

static int
setup(void **state)
{
    char path[4096];
    (void)state;
    const char *old = getenv("PATH");
    snprintf(path, sizeof(path), "%s:%s", SBX_TEST_PLUGIN_DIR, old ? old : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    unsetenv("SBXTEST_MODE");
    unsetenv("SBXTEST_PIN");
    unsetenv("SBXTEST_MSG");
    unsetenv("SBXTEST_CONFIRM");
    unsetenv("SBXTEST_PUBLIC");
    unsetenv("SBXTEST_GREASE");
    snprintf(log_path, sizeof(log_path), "%s/sbx-plugin-test-%ld.log",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    unlink(log_path);
    unsetenv("SBXTEST_LOG");
    make_keys();
    return 0;
}

static void
assert_no_child(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void
encrypt_to(sbx_buf *file, const char *recipient, const char *text)
{
    sbx_recipient *r = NULL;
    assert_sbx_ok(sbx_recipient_parse(&r, recipient));
    assert_sbx_ok(sbx_age_encrypt_buf(file, text, strlen(text), &r, 1, NULL));
    sbx_recipient_free(r);
    assert_no_child();
}

static int
decrypt_with(sbx_buf *plain, const sbx_buf *file, const char *identity, const sbx_plugin_ui *ui)
{
    sbx_identity *id = NULL;
    assert_sbx_ok(sbx_identity_parse(&id, identity));
    if (ui != NULL)
        assert_true(sbx_plugin_identity_set_ui(id, ui));
    int err = sbx_age_decrypt_buf(plain, file->ptr, file->len, &id, 1, NULL);
    sbx_identity_free(id);
    assert_no_child();
    return err;
}

static bool
log_has(const char *line)
{
    char buf[256];
    bool found = false;
    FILE *f = fopen(log_path, "r");
    if (f == NULL)
        return false;
    while (!found && fgets(buf, sizeof(buf), f) != NULL)
        found = strncmp(buf, line, strlen(line)) == 0;
    fclose(f);
    return found;
}

static void
plugin_keys_parse_and_print(void **state)
{
    sbx_recipient *r = NULL;
    sbx_identity *id = NULL;
    sbx_buf s = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_recipient_parse(&r, recipient_str));
    assert_string_equal(sbx_plugin_recipient_name(r), "sbxtest");
    assert_sbx_ok(sbx_recipient_to_string(r, &s));
    assert_memory_equal(s.ptr, recipient_str, strlen(recipient_str));
    sbx_buf_dispose(&s);
    assert_sbx_ok(sbx_identity_parse(&id, identity_str));
    assert_string_equal(sbx_plugin_identity_name(id), "sbxtest");
    assert_null(sbx_plugin_identity_name(NULL));
    sbx_recipient_free(r);
    assert_sbx_ok(sbx_identity_to_recipient(&r, id));
    assert_sbx_err(sbx_recipient_to_string(r, &s), SBX_EUNSUPPORTED); // never the identity
    sbx_recipient_free(r);
    sbx_identity_free(id);
    char bad[128];
    const uint8_t data[2] = {1, 2};
    assert_sbx_ok(sbx_bech32_encode(bad, sizeof(bad), "age1a/b", data, 2, false));
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT); // a path in the name
    assert_sbx_ok(sbx_bech32_encode(bad, sizeof(bad), "AGE-PLUGIN--", data, 2, true));
    assert_sbx_err(sbx_identity_parse(&id, bad), SBX_EFORMAT); // an empty name
    assert_sbx_err(sbx_identity_parse(&id, "AGE-PLUGIN-SBXTEST-1QQQQQQ"), SBX_EFORMAT);
    sbx_plugin_ui ui = SBX_PLUGIN_UI_INIT;
    ui.version = 99;
    assert_sbx_err(sbx_plugin_recipient_new(&r, recipient_str, &ui), SBX_EINVAL);
}

static void
round_trip_through_the_plugin(void **state)
{
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    (void)state;
    setenv("SBXTEST_LOG", log_path, 1);
    encrypt_to(&file, recipient_str, "hello, plugin");
    assert_non_null(memmem(file.ptr, file.len, "\n-> sbxtest ", 11));
    assert_sbx_ok(decrypt_with(&plain, &file, identity_str, NULL));
    assert_int_equal(plain.len, 13);
    assert_memory_equal(plain.ptr, "hello, plugin", 13);
    assert_true(log_has("cwd /")); // never our working directory
    sbx_buf_dispose(&plain);
    assert_sbx_err(decrypt_with(&plain, &file, other_identity, NULL), SBX_ENOMATCH);
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
}

static void
identity_file_mixes_native_and_plugin_keys(void **state)
{
    sbx_identity **ids = NULL, *x = NULL;
    size_t n = 0;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT, text = SBX_BUF_INIT;
    (void)state;
    encrypt_to(&file, recipient_str, "mixed");
    assert_sbx_ok(sbx_identity_generate(&x));
    assert_sbx_ok(sbx_identity_to_string(x, &text));
    assert_sbx_ok(sbx_buf_append(&text, "\n# the plugin key\n", 18));
    assert_sbx_ok(sbx_buf_append(&text, identity_str, strlen(identity_str)));
    assert_sbx_ok(sbx_identities_parse(&ids, &n, (const char *)text.ptr, text.len));
    assert_int_equal(n, 2);
    assert_null(sbx_plugin_identity_name(ids[0]));
    assert_false(sbx_plugin_identity_set_ui(ids[0], NULL));
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, file.ptr, file.len, ids, n, NULL));
    assert_memory_equal(plain.ptr, "mixed", 5);
    sbx_identities_free(ids, n);
    sbx_identity_free(x);
    assert_no_child();
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&text);
}

static void
a_missing_plugin_lets_the_next_identity_try(void **state)
{
    sbx_identity *ids[2] = {NULL, NULL};
    sbx_recipient *r = NULL;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    char missing[128];
    const uint8_t data[2] = {1, 2};
    (void)state;
    assert_sbx_ok(
        sbx_bech32_encode(missing, sizeof(missing), "AGE-PLUGIN-NOSUCHTHING-", data, 2, true));
    assert_sbx_ok(sbx_identity_parse(&ids[0], missing));
    assert_sbx_ok(sbx_identity_generate(&ids[1]));
    assert_sbx_ok(sbx_identity_to_recipient(&r, ids[1]));
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "x", 1, &r, 1, NULL));
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, file.ptr, file.len, ids, 2, NULL));
    sbx_buf_dispose(&plain);
    // Alone, its absence is what the error says.
    assert_sbx_err(sbx_age_decrypt_buf(&plain, file.ptr, file.len, ids, 1, NULL), SBX_ENOTFOUND);
    assert_non_null(strstr(sbx_error_last()->message, "age-plugin-nosuchthing is not installed"));
    sbx_recipient_free(r);
    assert_sbx_ok(sbx_bech32_encode(missing, sizeof(missing), "age1nosuchthing", data, 2, false));
    assert_sbx_ok(sbx_recipient_parse(&r, missing));
    sbx_buf_dispose(&file);
    assert_sbx_err(sbx_age_encrypt_buf(&file, "x", 1, &r, 1, NULL), SBX_ENOTFOUND);
    sbx_recipient_free(r);
    sbx_identity_free(ids[0]);
    sbx_identity_free(ids[1]);
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
}

/* ---- several files in one run ---- */

static void
several_files_open_in_one_run(void **state)
{
    sbx_buf files[3] = {SBX_BUF_INIT, SBX_BUF_INIT, SBX_BUF_INIT};
    sbx_age_header *h[3] = {NULL, NULL, NULL};
    sbx_identity *id = NULL;
    char other_recipient[128];
    const uint8_t other[8] = {9, 9, 9, 9, 9, 9, 8, 8};
    int results[3];
    (void)state;
    assert_sbx_ok(sbx_bech32_encode(other_recipient, sizeof(other_recipient), "age1sbxtest", other,
                                    8, false));
    encrypt_to(&files[0], recipient_str, "zero");
    encrypt_to(&files[1], other_recipient, "one");
    encrypt_to(&files[2], recipient_str, "two");
    setenv("SBXTEST_LOG", log_path, 1);
    for (int i = 0; i < 3; i++) {
        sbx_source *src = NULL;
        assert_sbx_ok(sbx_source_mem_new(&src, files[i].ptr, files[i].len));
        assert_sbx_ok(sbx_age_header_read(&h[i], src));
        sbx_source_free(src);
    }
    assert_sbx_ok(sbx_identity_parse(&id, identity_str));
    assert_sbx_ok(sbx_plugin_unwrap_headers(id, h, 3, results));
    assert_no_child();
    assert_int_equal(results[0], 0);
    assert_int_equal(results[1], SBX_ENOMATCH);
    assert_int_equal(results[2], 0);
    uint8_t key[SBX_AGE_FILE_KEY_LEN];
    assert_sbx_ok(sbx_age_header_file_key(h[2], key));
    assert_true(log_has("got recipient-stanza 2 sbxtest"));
    for (int i = 0; i < 3; i++) {
        sbx_age_header_free(h[i]);
        sbx_buf_dispose(&files[i]);
    }
    sbx_identity_free(id);
}

/* ---- the UI ---- */

struct ui_seen {
    char message[256];
    char confirm[256];
    int requests;
    const char *pin;
};

static int
ui_message(const char *plugin, const char *message, void *payload)
{
    struct ui_seen *seen = payload;
    assert_string_equal(plugin, "sbxtest");
    snprintf(seen->message, sizeof(seen->message), "%s", message);
    return 0;
}

static int
ui_confirm(const char *plugin, const char *message, const char *yes, const char *no,
           bool *chose_yes, void *payload)
{
    struct ui_seen *seen = payload;
    (void)plugin;
    snprintf(seen->confirm, sizeof(seen->confirm), "%s [%s/%s]", message, yes, no ? no : "-");
    *chose_yes = true;
    return 0;
}

static int
ui_request(sbx_buf *out, const char *plugin, const char *message, bool secret, void *payload)
{
    struct ui_seen *seen = payload;
    (void)plugin;
    (void)message;
    seen->requests++;
    if (!secret)
        return sbx_buf_append(out, "Ada", 3);
    if (seen->pin == NULL)
        return sbx_error_set(SBX_ECANCELED, "no PIN today");
    return sbx_buf_append(out, seen->pin, strlen(seen->pin));
}

static void
the_plugin_talks_through_the_ui(void **state)
{
    struct ui_seen seen = {.pin = "2468"};
    sbx_plugin_ui ui = {SBX_PLUGIN_UI_VERSION, ui_message, ui_confirm, ui_request, &seen};
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    (void)state;
    encrypt_to(&file, recipient_str, "ui");
    setenv("SBXTEST_LOG", log_path, 1);
    setenv("SBXTEST_MSG", "touch the key\x1b[2J", 1);
    setenv("SBXTEST_CONFIRM", "really?", 1);
    setenv("SBXTEST_PUBLIC", "1", 1);
    setenv("SBXTEST_GREASE", "1", 1);
    setenv("SBXTEST_PIN", "2468", 1);
    assert_sbx_ok(decrypt_with(&plain, &file, identity_str, &ui));
    assert_string_equal(seen.message, "touch the key?[2J"); // no terminal escapes get through
    assert_string_equal(seen.confirm, "really? [go on/stop]");
    assert_int_equal(seen.requests, 2);
    assert_true(log_has("answer unsupported")); // grease
    assert_true(log_has("public ok Ada"));
    sbx_buf_dispose(&plain);
    // A UI that cannot give the PIN: the plugin's error, and why it could not be given.
    seen.pin = NULL;
    assert_sbx_err(decrypt_with(&plain, &file, identity_str, &ui), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message, "the PIN is needed"));
    assert_non_null(strstr(sbx_error_last()->message, "no PIN today"));
    // No UI at all: every request is answered "fail".
    assert_sbx_err(decrypt_with(&plain, &file, identity_str, NULL), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message, "no user interface"));
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
}

/* ---- a plugin that misbehaves ---- */

static void
expect_failure(const char *mode, int code, const char *text)
{
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    sbx_recipient *r = NULL;
    encrypt_to(&file, recipient_str, "victim");
    setenv("SBXTEST_MODE", mode, 1);
    assert_sbx_err(decrypt_with(&plain, &file, identity_str, NULL), code);
    assert_non_null(strstr(sbx_error_last()->message, text));
    assert_int_equal(plain.len, 0);
    sbx_buf_dispose(&file);
    assert_sbx_ok(sbx_recipient_parse(&r, recipient_str));
    assert_sbx_err(sbx_age_encrypt_buf(&file, "x", 1, &r, 1, NULL), code);
    assert_non_null(strstr(sbx_error_last()->message, text));
    assert_int_equal(file.len, 0);
    assert_no_child();
    sbx_recipient_free(r);
    unsetenv("SBXTEST_MODE");
}

static void
a_plugin_that_exits_early_is_reported_with_its_message(void **state)
{
    (void)state;
    expect_failure("exit-early", SBX_EIO, "exited with status 3: sbxtest: broken on purpose");
}

static void
a_plugin_that_writes_garbage_is_refused(void **state)
{
    (void)state;
    expect_failure("garbage", SBX_EFORMAT, "malformed stanza");
}

static void
an_oversized_stanza_is_refused(void **state)
{
    (void)state;
    expect_failure("oversized", SBX_ETOOBIG, "larger than 65536 bytes");
}

static void
the_plugins_error_is_the_message(void **state)
{
    (void)state;
    expect_failure("error", SBX_EIO, "sbxtest refuses on purpose");
}

static void
a_plugin_gone_before_reading_gives_no_sigpipe(void **state)
{
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    enum { N = 1000 };
    sbx_recipient **rs = calloc(N, sizeof(*rs));
    (void)state;
    assert_non_null(rs);
    signal(SIGPIPE, SIG_DFL); // a SIGPIPE would end this test
    // Many recipients: a phase 1 far larger than a pipe's buffer (64 KiB), to a plugin
    // that never reads it.
    assert_sbx_ok(sbx_recipient_parse(&rs[0], recipient_str));
    for (int i = 1; i < N; i++) {
        sbx_identity *x = NULL;
        assert_sbx_ok(sbx_identity_generate(&x));
        assert_sbx_ok(sbx_identity_to_recipient(&rs[i], x));
        sbx_identity_free(x);
    }
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "x", 1, rs, N, NULL));
    assert_true(file.len > 90000);
    sbx_recipients_free(rs, N);
    setenv("SBXTEST_MODE", "exit-now", 1);
    assert_sbx_err(decrypt_with(&plain, &file, identity_str, NULL), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message, "sbxtest"));
    unsetenv("SBXTEST_MODE");
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(plugin_keys_parse_and_print, setup),
        cmocka_unit_test_setup(round_trip_through_the_plugin, setup),
        cmocka_unit_test_setup(identity_file_mixes_native_and_plugin_keys, setup),
        cmocka_unit_test_setup(a_missing_plugin_lets_the_next_identity_try, setup),
        cmocka_unit_test_setup(several_files_open_in_one_run, setup),
        cmocka_unit_test_setup(the_plugin_talks_through_the_ui, setup),
        cmocka_unit_test_setup(a_plugin_that_exits_early_is_reported_with_its_message, setup),
        cmocka_unit_test_setup(a_plugin_that_writes_garbage_is_refused, setup),
        cmocka_unit_test_setup(an_oversized_stanza_is_refused, setup),
        cmocka_unit_test_setup(the_plugins_error_is_the_message, setup),
        cmocka_unit_test_setup(a_plugin_gone_before_reading_gives_no_sigpipe, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc;
}
