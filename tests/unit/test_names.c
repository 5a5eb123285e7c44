#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/names.h"

static void assert_hostname_ok(const char *input, const char *normalised)
{
    char buf[300];
    ck_error err = {0};
    snprintf(buf, sizeof(buf), "%s", input);
    if (ck_hostname_check(buf, &err) != 0)
        fail_msg("%s refused: %s", input, err.message);
    assert_string_equal(buf, normalised);
}

static void assert_hostname_refused(const char *input, const char *why_fragment)
{
    char buf[300];
    ck_error err = {0};
    snprintf(buf, sizeof(buf), "%s", input);
    assert_int_equal(ck_hostname_check(buf, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_hostname");
    if (strstr(err.message, why_fragment) == NULL)
        fail_msg("message for %s lacks \"%s\": %s", input, why_fragment, err.message);
}

static void test_valid_hostnames(void **state)
{
    (void)state;
    assert_hostname_ok("shop.example.com", "shop.example.com");
    assert_hostname_ok("WWW.Shop.Example.COM", "www.shop.example.com");
    assert_hostname_ok("*.example.com", "*.example.com");
    assert_hostname_ok("a-b.c1.example", "a-b.c1.example");
    assert_hostname_ok("xn--bcher-kva.example", "xn--bcher-kva.example"); /* bücher */
}

static void test_invalid_hostnames(void **state)
{
    (void)state;
    assert_hostname_refused("", "empty");
    assert_hostname_refused("localhost", "two labels");
    assert_hostname_refused("shop..example.com", "empty label");
    assert_hostname_refused("-shop.example.com", "hyphen");
    assert_hostname_refused("shop-.example.com", "hyphen");
    assert_hostname_refused("sh op.example.com", "letters, digits and hyphens");
    assert_hostname_refused("shop_1.example.com", "letters, digits and hyphens");
    assert_hostname_refused("bücher.example", "A-label");
    assert_hostname_refused("www.*.example.com", "wildcard");
    assert_hostname_refused("w*.example.com", "wildcard");
    assert_hostname_refused("*.com", "wildcard needs");
    assert_hostname_refused("shop.example.com.", "dot");
    assert_hostname_refused("xn--zz.example", "A-label");
    assert_hostname_refused("ab--cd.example", "xn--");
    assert_hostname_refused("example.123", "all digits");
    char long_label[80];
    memset(long_label, 'a', 64);
    strcpy(long_label + 64, ".example");
    assert_hostname_refused(long_label, "63");
    char long_name[300];
    memset(long_name, 'a', 260);
    for (int i = 10; i < 260; i += 10)
        long_name[i] = '.';
    strcpy(long_name + 260, ".com");
    assert_hostname_refused(long_name, "253");
}

static void test_error_names_the_bad_host(void **state)
{
    (void)state;
    char buf[] = "bad_name.example.com";
    ck_error err = {0};
    assert_int_equal(ck_hostname_check(buf, &err), -1);
    assert_non_null(strstr(err.message, "bad_name.example.com"));
}

static void test_san_list_adds_cn_and_dedups(void **state)
{
    (void)state;
    ck_strv sans = {0};
    ck_error err = {0};
    ck_strv_push(&sans, "WWW.shop.example.com");
    ck_strv_push(&sans, "www.shop.example.com");
    ck_strv_push(&sans, "Shop.Example.com");
    assert_int_equal(ck_san_list_normalise("shop.example.com", &sans, &err), 0);
    assert_int_equal(sans.len, 2);
    assert_string_equal(sans.items[0], "shop.example.com");
    assert_string_equal(sans.items[1], "www.shop.example.com");
    ck_strv_free(&sans);
}

static void test_san_list_refuses_bad_name(void **state)
{
    (void)state;
    ck_strv sans = {0};
    ck_error err = {0};
    ck_strv_push(&sans, "ok.example.com");
    ck_strv_push(&sans, "not ok.example.com");
    assert_int_equal(ck_san_list_normalise("shop.example.com", &sans, &err), -1);
    assert_non_null(strstr(err.message, "not ok.example.com"));
    assert_int_equal(sans.len, 2); /* untouched on failure */
    ck_strv_free(&sans);
}

static void test_resource_names(void **state)
{
    (void)state;
    assert_true(ck_resource_name_valid("shop"));
    assert_true(ck_resource_name_valid("Shop.eu_1-b"));
    assert_false(ck_resource_name_valid(""));
    assert_false(ck_resource_name_valid("-shop"));
    assert_false(ck_resource_name_valid("shop/1"));
    assert_false(ck_resource_name_valid("a b"));
    assert_true(ck_tenant_name_valid("acme-2"));
    assert_false(ck_tenant_name_valid("Acme"));
    assert_false(ck_tenant_name_valid("acme.corp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_hostnames),
        cmocka_unit_test(test_invalid_hostnames),
        cmocka_unit_test(test_error_names_the_bad_host),
        cmocka_unit_test(test_san_list_adds_cn_and_dedups),
        cmocka_unit_test(test_san_list_refuses_bad_name),
        cmocka_unit_test(test_resource_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
