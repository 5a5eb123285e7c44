/* Strict enrollment input: every field, unknown fields, names, defaults, pre-fill, PATCH. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/enrollment_input.h"

/* Self-signed RSA-1024 certificate: C=de, ST/L=Berlin, O=Live GmbH, OU=Ops, CN=Live.Example.org,
 * SANs live.example.org, www.live.example.org and bad_name.example.org. */
static const char live_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIC/zCCAmigAwIBAgIUXirDWfGseQlwwW04d5+6qyEb+xAwDQYJKoZIhvcNAQEL\n"
                               "BQAwbDELMAkGA1UEBhMCZGUxDzANBgNVBAgMBkJlcmxpbjEPMA0GA1UEBwwGQmVy\n"
                               "bGluMRIwEAYDVQQKDAlMaXZlIEdtYkgxDDAKBgNVBAsMA09wczEZMBcGA1UEAwwQ\n"
                               "TGl2ZS5FeGFtcGxlLm9yZzAeFw0yNjExMjIwODAyMDRaFw0zNjExMTkwODAyMDRa\n"
                               "MGwxCzAJBgNVBAYTAmRlMQ8wDQYDVQQIDAZCZXJsaW4xDzANBgNVBAcMBkJlcmxp\n"
                               "bjESMBAGA1UECgwJTGl2ZSBHbWJIMQwwCgYDVQQLDANPcHMxGTAXBgNVBAMMEExp\n"
                               "dmUuRXhhbXBsZS5vcmcwgZ8wDQYJKoZIhvcNAQEBBQADgY0AMIGJAoGBALXM2m4H\n"
                               "WLAkaPhXYqF879BP5wuoqLr/I5RhmR/OFf4cWfbQvhiUdJg6Ba90xeXZV3CSE26z\n"
                               "e9KkPsN4OGsvqj+yO9bfwEkD6eDyWQ0T3f9H4LkbvsEnbG8C0DsuTw97HmpnNrrf\n"
                               "SuuJ9ZpKArmvtWlOIu40lif8QEI8s6CU86lTAgMBAAGjgZ0wgZowHQYDVR0OBBYE\n"
                               "FNxPtHiyXsI2sj3OnKegFskMGbTIMB8GA1UdIwQYMBaAFNxPtHiyXsI2sj3OnKeg\n"
                               "FskMGbTIMA8GA1UdEwEB/wQFMAMBAf8wRwYDVR0RBEAwPoIQbGl2ZS5leGFtcGxl\n"
                               "Lm9yZ4IUd3d3LmxpdmUuZXhhbXBsZS5vcmeCFGJhZF9uYW1lLmV4YW1wbGUub3Jn\n"
                               "MA0GCSqGSIb3DQEBCwUAA4GBAH5+zCNCNDGDI973EtkBUHzVlurUfeVIQ+qeiGf+\n"
                               "pC0+Q67MRI7gef8GJ/Vnxn4Cf23Tw44NBSTfpH97NMEQlMj9Ac2A0jZdcCt0oDb+\n"
                               "JBuIiPglNNTkWDocEdU4lLaNJmZEEnuIzLa/D94dkpwUZa5ZNfv1vfRgnhKbNgFZ\n"
                               "R6Z+\n"
                               "-----END CERTIFICATE-----\n";

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

/* Creates from text; returns 0 or -1 with errs filled (the caller frees both). */
static int create(const char *text, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    json_t *body = parse(text);
    memset(e, 0, sizeof(*e));
    memset(errs, 0, sizeof(*errs));
    int rc = ck_enrollment_input_create(body, NULL, e, errs);
    json_decref(body);
    return rc;
}

/* Expects a failed create whose first problem has this code and mentions `needle`. */
static void expect_refused(const char *text, const char *code, const char *needle)
{
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create(text, &e, &errs), -1);
    assert_int_equal(errs.first.status, 400);
    assert_string_equal(errs.first.code, code);
    if (strstr(errs.first.message, needle) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", errs.first.message, needle);
    assert_null(e.name);
    ck_input_errors_free(&errs);
}

static void test_minimal_create_has_defaults(void **state)
{
    (void)state;
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create("{\"name\":\"shop\",\"cn\":\"Shop.Example.COM\"}", &e, &errs), 0);
    assert_string_equal(e.name, "shop");
    assert_string_equal(e.cn, "shop.example.com");
    assert_int_equal(e.sans.len, 1);
    assert_string_equal(e.sans.items[0], "shop.example.com");
    assert_int_equal(e.key_type, CK_KEY_RSA_2048);
    assert_int_equal(e.validation, CK_VALIDATION_DV);
    assert_string_equal(e.issuer, "manual");
    assert_null(e.subject.o);
    assert_null(e.policy.lifetime);
    assert_false(e.policy.always_test_on_staging);
    assert_int_equal(errs.count, 0);
    ck_enrollment_free(&e);
}

static void test_every_field(void **state)
{
    (void)state;
    struct ck_enrollment e;
    struct ck_input_errors errs;
    const char *body =
        "{\"name\":\"shop\",\"cn\":\"shop.example.com\","
        "\"sans\":[\"WWW.shop.example.com\",\"shop.example.com\",\"www.shop.example.com\"],"
        "\"subject\":{\"o\":\"Example Ltd\",\"ou\":\"Web\",\"l\":\"Paris\",\"st\":\"IDF\","
        "\"c\":\"fr\"},\"key_type\":\"ec-p256\",\"validation\":\"ov\",\"issuer\":\"manual\","
        "\"contacts\":[\"ops@example.com\"],\"policy\":{\"lifetime\":\"90d\","
        "\"renew_before\":\"33%\",\"deploy_before\":\"7d\",\"always_test_on_staging\":true}}";
    assert_int_equal(create(body, &e, &errs), 0);
    assert_int_equal(e.sans.len, 2); /* the CN first, duplicates gone */
    assert_string_equal(e.sans.items[0], "shop.example.com");
    assert_string_equal(e.sans.items[1], "www.shop.example.com");
    assert_string_equal(e.subject.o, "Example Ltd");
    assert_string_equal(e.subject.ou, "Web");
    assert_string_equal(e.subject.l, "Paris");
    assert_string_equal(e.subject.st, "IDF");
    assert_string_equal(e.subject.c, "FR");
    assert_int_equal(e.key_type, CK_KEY_EC_P256);
    assert_int_equal(e.validation, CK_VALIDATION_OV);
    assert_int_equal(e.contacts.len, 1);
    assert_string_equal(e.policy.lifetime, "90d");
    assert_string_equal(e.policy.renew_before, "33%");
    assert_string_equal(e.policy.deploy_before, "7d");
    assert_true(e.policy.always_test_on_staging);

    json_t *j = ck_enrollment_to_json(&e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "key_type")), "ec-p256");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "subject"), "c")),
                        "FR");
    assert_true(json_is_null(json_object_get(j, "staging_order_id")));
    assert_int_equal(json_array_size(json_object_get(j, "sans")), 2);
    json_decref(j);
    ck_enrollment_free(&e);
}

static void test_unknown_and_missing_fields(void **state)
{
    (void)state;
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"colour\":\"blue\"}", "unknown_field",
                   "colour");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"subject\":{\"email\":\"a\"}}",
                   "unknown_field", "subject.email");
    expect_refused("{\"cn\":\"x.example.com\"}", "missing_field", "name");
    expect_refused("{\"name\":\"x\"}", "missing_field", "cn");
    expect_refused("{\"name\":\"a/b\",\"cn\":\"x.example.com\"}", "invalid_field", "a/b");
}

static void test_wrong_types_name_the_field(void **state)
{
    (void)state;
    expect_refused("{\"name\":\"x\",\"cn\":12}", "invalid_field", "cn");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"sans\":\"a.example.com\"}",
                   "invalid_field", "sans");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"contacts\":[1]}", "invalid_field",
                   "contacts[0]");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"policy\":"
                   "{\"always_test_on_staging\":\"yes\"}}",
                   "invalid_field", "always_test_on_staging");
}

static void test_bad_hostnames_are_named(void **state)
{
    (void)state;
    const char *bad[] = {"bad_name.example.com", "www.*.example.com", "-x.example.com",
                         "xn--zz.example.com", "localhost"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"name\":\"b\",\"cn\":\"ok.example.com\",\"sans\":[\"%s\"]}",
                 bad[i]);
        expect_refused(body, "invalid_hostname", bad[i]);
    }
}

static void test_wildcards(void **state)
{
    (void)state;
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create("{\"name\":\"w\",\"cn\":\"*.example.com\"}", &e, &errs), 0);
    assert_string_equal(e.sans.items[0], "*.example.com");
    ck_enrollment_free(&e);
    expect_refused("{\"name\":\"w\",\"cn\":\"*.com\"}", "invalid_hostname", "*.com");
    expect_refused("{\"name\":\"w\",\"cn\":\"a.example.com\",\"sans\":[\"a*.example.com\"]}",
                   "invalid_hostname", "a*.example.com");
}

static void test_key_types(void **state)
{
    (void)state;
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"key_type\":\"rsa-1024\"}",
                   "invalid_key_type", "2048");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"key_type\":\"dsa-1024\"}",
                   "invalid_key_type", "dsa-1024");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"validation\":\"xv\"}",
                   "invalid_field", "xv");
}

static void test_subject_limits(void **state)
{
    (void)state;
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"subject\":{\"c\":\"France\"}}",
                   "invalid_field", "subject.c");
    expect_refused("{\"name\":\"x\",\"cn\":\"x.example.com\",\"subject\":{\"c\":\"F1\"}}",
                   "invalid_field", "two-letter");
    char body[512];
    char long_o[66];
    memset(long_o, 'a', 65);
    long_o[65] = '\0';
    snprintf(body, sizeof(body),
             "{\"name\":\"x\",\"cn\":\"x.example.com\",\"subject\":{\"o\":\"%s\"}}", long_o);
    expect_refused(body, "invalid_field", "64");
    /* 64 two-byte characters are 64 characters, not 128. */
    char utf8_o[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(utf8_o, "\xc3\xa9");
    snprintf(body, sizeof(body),
             "{\"name\":\"x\",\"cn\":\"x.example.com\",\"subject\":{\"o\":\"%s\"}}", utf8_o);
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create(body, &e, &errs), 0);
    ck_enrollment_free(&e);
}

static void test_contacts_limit(void **state)
{
    (void)state;
    char body[1024] = "{\"name\":\"x\",\"cn\":\"x.example.com\",\"contacts\":[";
    for (int i = 0; i < 17; i++)
        strcat(body, i ? ",\"a@example.com\"" : "\"a@example.com\"");
    strcat(body, "]}");
    expect_refused(body, "invalid_field", "16");
}

static void test_policy_durations(void **state)
{
    (void)state;
    const char *bad[] = {
        "\"lifetime\":\"90\"",  "\"lifetime\":\"d\"",        "\"lifetime\":\"90dd\"",
        "\"lifetime\":\"33%\"", "\"renew_before\":\"101%\"", "\"renew_before\":\"0%\"",
        "\"lifetime\":\"0s\"",  "\"deploy_before\":\"-1d\"", "\"lifetime\":90"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"name\":\"x\",\"cn\":\"x.example.com\",\"policy\":{%s}}",
                 bad[i]);
        expect_refused(body, "invalid_field", "policy.");
    }
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create("{\"name\":\"x\",\"cn\":\"x.example.com\",\"policy\":{\"lifetime\":"
                            "\"40s\",\"renew_before\":\"90s\",\"deploy_before\":null}}",
                            &e, &errs),
                     0);
    assert_string_equal(e.policy.lifetime, "40s");
    assert_string_equal(e.policy.renew_before, "90s");
    assert_null(e.policy.deploy_before);
    ck_enrollment_free(&e);
}

static void test_every_problem_at_once(void **state)
{
    (void)state;
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create("{\"name\":\"x\",\"cn\":12,\"colour\":1,\"key_type\":\"rsa-1024\","
                            "\"subject\":{\"c\":\"France\"}}",
                            &e, &errs),
                     -1);
    assert_int_equal(errs.count, 4);
    assert_int_equal(json_array_size(errs.details), 4);
    ck_input_errors_free(&errs);
}

static void test_update_keeps_unspecified_fields(void **state)
{
    (void)state;
    struct ck_enrollment e;
    struct ck_input_errors errs;
    assert_int_equal(create("{\"name\":\"shop\",\"cn\":\"shop.example.com\",\"sans\":"
                            "[\"www.shop.example.com\"],\"subject\":{\"o\":\"Example Ltd\","
                            "\"c\":\"FR\"},\"key_type\":\"ec-p256\",\"policy\":{\"lifetime\":"
                            "\"90d\"}}",
                            &e, &errs),
                     0);
    json_t *patch = parse("{\"sans\":[\"api.shop.example.com\"],\"key_type\":\"rsa-3072\","
                          "\"subject\":{\"c\":null},\"policy\":{\"renew_before\":\"30d\"}}");
    assert_int_equal(ck_enrollment_input_update(patch, &e, &errs), 0);
    json_decref(patch);
    assert_string_equal(e.name, "shop");
    assert_int_equal(e.key_type, CK_KEY_RSA_3072);
    assert_int_equal(e.sans.len, 2);
    assert_string_equal(e.sans.items[0], "shop.example.com");
    assert_string_equal(e.sans.items[1], "api.shop.example.com");
    assert_string_equal(e.subject.o, "Example Ltd");
    assert_null(e.subject.c);
    assert_string_equal(e.policy.lifetime, "90d");
    assert_string_equal(e.policy.renew_before, "30d");

    /* A failed update changes nothing. */
    patch = parse("{\"key_type\":\"ec-p384\",\"cn\":\"bad_name.example.com\"}");
    assert_int_equal(ck_enrollment_input_update(patch, &e, &errs), -1);
    json_decref(patch);
    assert_string_equal(errs.first.code, "invalid_hostname");
    assert_int_equal(e.key_type, CK_KEY_RSA_3072);
    assert_string_equal(e.cn, "shop.example.com");
    ck_input_errors_free(&errs);

    /* name and the pre-fill keys are not for updates. */
    patch = parse("{\"name\":\"other\"}");
    assert_int_equal(ck_enrollment_input_update(patch, &e, &errs), -1);
    json_decref(patch);
    assert_string_equal(errs.first.code, "invalid_field");
    assert_string_equal(e.name, "shop");
    ck_input_errors_free(&errs);

    /* A new CN replaces the old one in the SANs. */
    patch = parse("{\"cn\":\"store.example.com\"}");
    assert_int_equal(ck_enrollment_input_update(patch, &e, &errs), 0);
    json_decref(patch);
    assert_int_equal(e.sans.len, 2);
    assert_string_equal(e.sans.items[0], "store.example.com");
    assert_string_equal(e.sans.items[1], "api.shop.example.com");
    ck_enrollment_free(&e);
}

static void test_prefill_from_pem(void **state)
{
    (void)state;
    json_t *body =
        json_pack("{s:s,s:s,s:s}", "name", "live", "from_pem", live_pem, "validation", "ov");
    struct ck_enrollment e = {0};
    struct ck_input_errors errs = {0};
    assert_int_equal(ck_enrollment_input_create(body, NULL, &e, &errs), 0);
    assert_string_equal(e.cn, "live.example.org");
    assert_int_equal(e.sans.len, 2); /* bad_name.example.org is left out */
    assert_string_equal(e.sans.items[1], "www.live.example.org");
    assert_string_equal(e.subject.o, "Live GmbH");
    assert_string_equal(e.subject.ou, "Ops");
    assert_string_equal(e.subject.c, "DE");
    assert_int_equal(e.key_type, CK_KEY_RSA_2048); /* rsa-1024 in the certificate */
    assert_int_equal(e.validation, CK_VALIDATION_OV);
    ck_enrollment_free(&e);

    /* The body's own fields win. */
    json_object_set_new(body, "key_type", json_string("ec-p384"));
    json_object_set_new(body, "subject", json_pack("{s:s}", "o", "Mine"));
    assert_int_equal(ck_enrollment_input_create(body, NULL, &e, &errs), 0);
    assert_int_equal(e.key_type, CK_KEY_EC_P384);
    assert_string_equal(e.subject.o, "Mine");
    assert_string_equal(e.subject.l, "Berlin");
    ck_enrollment_free(&e);

    json_object_set_new(body, "from_host", json_string("127.0.0.1:1"));
    assert_int_equal(ck_enrollment_input_create(body, NULL, &e, &errs), -1);
    assert_string_equal(errs.first.code, "invalid_field");
    ck_input_errors_free(&errs);
    json_decref(body);

    expect_refused("{\"name\":\"x\",\"from_pem\":\"not a certificate\"}", "invalid_certificate",
                   "");
}

/* Only a from_host the create will really connect to sends it off the event loop; a wrong one
 * is a plain input error found at once. */
static void test_needs_network(void **state)
{
    (void)state;
    static const struct {
        const char *body, *query;
        bool network;
    } cases[] = {
        {"{\"name\":\"a\",\"cn\":\"a.example.com\"}", NULL, false},
        {"{\"name\":\"a\",\"from_host\":\"127.0.0.1:443\"}", NULL, true},
        {"{\"name\":\"a\"}", "127.0.0.1:443", true},
        {"{\"name\":\"a\"}", "", false},
        {"{\"name\":\"a\",\"from_host\":443}", "127.0.0.1:443", false},
        {"{\"name\":\"a\",\"from_host\":null}", NULL, false},
        {"{\"name\":\"a\",\"from_pem\":\"x\"}", NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = json_loads(cases[i].body, 0, NULL);
        assert_non_null(body);
        assert_int_equal(ck_enrollment_input_needs_network(body, cases[i].query), cases[i].network);
        json_decref(body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_create_has_defaults),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_unknown_and_missing_fields),
        cmocka_unit_test(test_wrong_types_name_the_field),
        cmocka_unit_test(test_bad_hostnames_are_named),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_subject_limits),
        cmocka_unit_test(test_contacts_limit),
        cmocka_unit_test(test_policy_durations),
        cmocka_unit_test(test_every_problem_at_once),
        cmocka_unit_test(test_update_keeps_unspecified_fields),
        cmocka_unit_test(test_prefill_from_pem),
        cmocka_unit_test(test_needs_network),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
