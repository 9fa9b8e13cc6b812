/*
 * tests/kms/test_json.c - reading key server answers (sbx_kms_json_*:
 * values by JSON Pointer, counts, refusals) and the server that
 * sbx_kms_client_new_from_env() picks without a base URL (no server needed:
 * a client connects on its first call only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "strongbox/kms.h"

static const char META[] =
    "{\"name\":\"app\",\"latest_version\":2,\"dev\":false,\"gone\":null,"
    "\"versions\":[{\"version\":1,\"state\":\"destroyed\"},{\"version\":2,\"state\":\"active\"}],"
    "\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty\",\"ctl\":\"x\\u001by\"}";

/* The text at pointer, or NULL when there is none (the returned string is static). */
static const char *
text(const sbx_kms_json *j, const char *pointer)
{
    static char out[256];
    sbx_buf b = SBX_BUF_INIT;
    int err = sbx_kms_json_text(j, pointer, &b);
    if (err == 0) {
        assert_true(b.len < sizeof out);
        assert_int_equal(b.ptr[b.len], '\0');
        memcpy(out, b.ptr, b.len + 1);
    }
    sbx_buf_dispose(&b);
    return err == 0 ? out : NULL;
}

static void
values_by_pointer(void **state)
{
    (void)state;
    sbx_kms_json *j;
    assert_sbx_ok(sbx_kms_json_parse(&j, META, strlen(META)));
    assert_string_equal(text(j, "/name"), "app");
    assert_string_equal(text(j, "/latest_version"), "2");
    assert_string_equal(text(j, "/dev"), "false");
    assert_string_equal(text(j, "/gone"), "null");
    assert_string_equal(text(j, "/versions/1/state"), "active");
    assert_string_equal(text(j, "/versions/0"), "{\"version\":1,\"state\":\"destroyed\"}");
    assert_string_equal(text(j, "/a~1b"), "slash");
    assert_string_equal(text(j, "/m~0n"), "tilde");
    assert_string_equal(text(j, "/"), "empty");
    assert_non_null(text(j, ""));
    assert_int_equal(text(j, "")[0], '{');
    assert_string_equal(text(j, "/ctl"), "x\033y"); // as sent: a printer sanitizes
    sbx_kms_json_free(j);
}

static void
missing_values_and_bad_pointers_are_not_found(void **state)
{
    (void)state;
    sbx_kms_json *j;
    sbx_buf b = SBX_BUF_INIT;
    assert_sbx_ok(sbx_kms_json_parse(&j, META, strlen(META)));
    const char *bad[] = {
        "/nope",   "/versions/2", "/versions/01", "/versions/-1", "/versions/x",
        "/name/0", "name",        "/m~2n",        "/a~",          "/versions/99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_sbx_err(sbx_kms_json_text(j, bad[i], &b), SBX_ENOTFOUND);
        assert_int_equal(sbx_kms_json_count(j, bad[i]), 0);
    }
    assert_sbx_err(sbx_kms_json_text(j, NULL, &b), SBX_ENOTFOUND);
    assert_int_equal(b.len, 0);
    sbx_kms_json_free(j);
}

static void
counts_of_arrays_and_objects(void **state)
{
    (void)state;
    sbx_kms_json *j;
    assert_sbx_ok(sbx_kms_json_parse(&j, META, strlen(META)));
    assert_int_equal(sbx_kms_json_count(j, "/versions"), 2);
    assert_int_equal(sbx_kms_json_count(j, "/versions/0"), 2);
    assert_int_equal(sbx_kms_json_count(j, "/name"), 0);
    assert_int_equal(sbx_kms_json_count(j, ""), 9);
    assert_int_equal(sbx_kms_json_count(NULL, ""), 0);
    sbx_kms_json_free(j);
    sbx_kms_json_free(NULL);
}

static void
parse_refuses_what_is_not_a_json_document(void **state)
{
    (void)state;
    const char *bad[] = {"",   "{",           "{\"a\":1,\"a\":2}", "\"text\"",
                         "12", "{\"a\":1} x", "{'a':1}",           "{\"a\":\"x\\u0000\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sbx_kms_json *j = (sbx_kms_json *)1;
        assert_sbx_err(sbx_kms_json_parse(&j, bad[i], strlen(bad[i])), SBX_EFORMAT);
        assert_null(j);
    }
    sbx_kms_json *j;
    assert_sbx_err(sbx_kms_json_parse(&j, "{\n\"a\": }", 8), SBX_EFORMAT);
    assert_non_null(strstr(sbx_error_last()->message, "line 2"));
    assert_sbx_ok(sbx_kms_json_parse(&j, "{\"a\":1}trailing", 7)); // len bytes only
    sbx_kms_json_free(j);
}

static const char *const VARS[] = {
    "SBX_KMS_URL",         "SBX_KMS_TOKEN",    "SBX_KMS_TOKEN_FILE",  "SBX_KMS_CACERT",
    "SBX_KMS_FINGERPRINT", "SBX_KMS_FAILOVER", "SBX_KMS_CLIENT_CERT", "SBX_KMS_CLIENT_KEY"};

static void
from_env_without_base_url_uses_the_first_of_sbx_kms_url(void **state)
{
    (void)state;
    sbx_kms_client *c = NULL;
    for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++)
        unsetenv(VARS[i]);
    assert_sbx_err(sbx_kms_client_new_from_env(&c, NULL, NULL), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "SBX_KMS_URL"));
    assert_null(c);

    setenv("SBX_KMS_URL", " https://KMS.example:8443/prefix/key , https://other:1", 1);
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, NULL, NULL));
    assert_string_equal(sbx_kms_client_url(c, 0), "https://kms.example:8443");
    assert_null(sbx_kms_client_url(c, 1)); // the rest of the list is not failover
    sbx_kms_client_free(c);

    setenv("SBX_KMS_URL", "https://kms.example", 1);
    setenv("SBX_KMS_FAILOVER", "https://backup:9", 1);
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, NULL, NULL));
    assert_string_equal(sbx_kms_client_url(c, 0), "https://kms.example:443");
    assert_string_equal(sbx_kms_client_url(c, 1), "https://backup:9");
    sbx_kms_client_free(c);
    unsetenv("SBX_KMS_FAILOVER");

    sbx_kms_client_options ov = SBX_KMS_CLIENT_OPTIONS_INIT;
    const char *flag[] = {"https://flag:7"};
    ov.urls = flag;
    ov.url_count = 1;
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, NULL, &ov));
    assert_string_equal(sbx_kms_client_url(c, 0), "https://flag:7");
    sbx_kms_client_free(c);
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, "https://given:5", &ov)); // urls ignored
    assert_string_equal(sbx_kms_client_url(c, 0), "https://given:5");
    sbx_kms_client_free(c);

    setenv("SBX_KMS_URL", "http://plain:80", 1);
    assert_sbx_err(sbx_kms_client_new_from_env(&c, NULL, NULL), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "http://plain:80"));
    assert_null(c);
    unsetenv("SBX_KMS_URL");
}

int
main(void)
{
    sbx_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_by_pointer),
        cmocka_unit_test(missing_values_and_bad_pointers_are_not_found),
        cmocka_unit_test(counts_of_arrays_and_objects),
        cmocka_unit_test(parse_refuses_what_is_not_a_json_document),
        cmocka_unit_test(from_env_without_base_url_uses_the_first_of_sbx_kms_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
