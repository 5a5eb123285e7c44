/* ACME Renewal Information (RFC 9773): the certID of a certificate, the renewalInfo answer, the
 * next check time, and the order state fields that carry notAfter and replaces. No ARI server
 * runs here (Debian's pebble 2.4 has no renewalInfo), so the wire format is checked against the
 * RFC's own example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "issuers/acme/acme.h"

/* RFC 9773 section 4.1's example: AKI keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:
 * AE:2C:DE:01:C8:D4 and serial 00:87:65:43:21 give this certID. */
static const uint8_t RFC_KEY_ID[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                     0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
#define RFC_CERT_ID "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"

/* A self-signed P-256 certificate with that serial and, when key_id is given, an AKI. */
static char *make_cert(uint64_t serial, const uint8_t *key_id, size_t key_id_len)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    assert_non_null(key);
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, 2), 1);
    assert_int_equal(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial), 1);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ari.test", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    if (key_id != NULL) {
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        akid->keyid = ASN1_OCTET_STRING_new();
        assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, key_id, (int)key_id_len), 1);
        assert_int_equal(X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid, 0, 0), 1);
        AUTHORITY_KEYID_free(akid);
    }
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)len);
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return pem;
}

static void test_cert_id_rfc_example(void **state)
{
    (void)state;
    /* 0x87654321 has its high bit set: its DER value keeps the leading zero byte. */
    char *pem = make_cert(0x87654321u, RFC_KEY_ID, sizeof(RFC_KEY_ID));
    char *id = NULL;
    assert_int_equal(ck_acme_ari_cert_id(pem, &id, NULL), 0);
    assert_string_equal(id, RFC_CERT_ID);
    free(id);
    free(pem);
}

static void test_cert_id_small_serial_no_padding(void **state)
{
    (void)state;
    static const uint8_t key_id[] = {0x01, 0x02, 0x03, 0x04, 0xff};
    char *pem = make_cert(0x7f, key_id, sizeof(key_id));
    char *id = NULL;
    assert_int_equal(ck_acme_ari_cert_id(pem, &id, NULL), 0);
    /* base64url without "=": 0102 03 04 ff -> AQIDBP8, serial 7f -> fw */
    assert_string_equal(id, "AQIDBP8.fw");
    free(id);
    free(pem);
}

static void test_cert_id_refusals(void **state)
{
    (void)state;
    ck_error err = {0};
    char *id = NULL;
    char *pem = make_cert(5, NULL, 0);
    assert_int_equal(ck_acme_ari_cert_id(pem, &id, &err), -1);
    assert_null(id);
    assert_string_equal(err.code, "ari_no_key_identifier");
    free(pem);
    memset(&err, 0, sizeof(err));
    assert_int_equal(ck_acme_ari_cert_id("not a certificate", &id, &err), -1);
    assert_string_equal(err.code, "invalid_certificate");
    assert_int_equal(ck_acme_ari_cert_id(NULL, &id, &err), -1);
}

static void test_parse_window(void **state)
{
    (void)state;
    /* The RFC's example answer (section 4.2), with fractional seconds on one side. */
    static const char body[] = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
                               "\"end\":\"2025-01-03T04:00:00.123Z\"},"
                               "\"explanationURL\":\"https://acme.example.com/docs/ari\"}";
    struct ck_acme_renewal_info ri = {.retry_after_s = 21600};
    int64_t start = 0, end = 0;
    assert_int_equal(ck_time_parse("2025-01-02T04:00:00Z", &start), 0);
    assert_int_equal(ck_time_parse("2025-01-03T04:00:00Z", &end), 0);
    assert_int_equal(ck_acme_renewal_info_parse(body, strlen(body), &ri, NULL), 0);
    assert_int_equal(ri.window_start, start);
    assert_int_equal(ri.window_end, end);
    assert_string_equal(ri.explanation_url, "https://acme.example.com/docs/ari");
    assert_int_equal(ri.retry_after_s, 21600); /* left as the caller set it */
    ck_acme_renewal_info_free(&ri);

    static const char no_url[] = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00+02:00\","
                                 "\"end\":\"2025-01-02T05:00:00+02:00\"}}";
    assert_int_equal(ck_acme_renewal_info_parse(no_url, strlen(no_url), &ri, NULL), 0);
    assert_null(ri.explanation_url);
    assert_int_equal(ri.window_end - ri.window_start, 3600);
    assert_int_equal(ri.window_start, start - 7200);
    ck_acme_renewal_info_free(&ri);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"suggestedWindow\":{}}",
        "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\"}}",
        "{\"suggestedWindow\":{\"start\":\"yesterday\",\"end\":\"2025-01-03T04:00:00Z\"}}",
        "{\"suggestedWindow\":{\"start\":1735790400,\"end\":1735876800}}",
        /* RFC 9773 4.3.3: a window that ends before (or when) it starts is ignored */
        "{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\",\"end\":\"2025-01-02T04:00:00Z\"}"
        "}",
        "{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\",\"end\":\"2025-01-03T04:00:00Z\"}"
        "}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ck_acme_renewal_info ri = {.retry_after_s = -1};
        ck_error err = {0};
        assert_int_equal(ck_acme_renewal_info_parse(bad[i], strlen(bad[i]), &ri, &err), -1);
        assert_string_equal(err.code, "acme_bad_renewal_info");
        assert_int_equal(ri.window_start, 0);
        assert_null(ri.explanation_url);
    }
}

static void test_next_check_twice_a_day(void **state)
{
    (void)state;
    const int64_t now = 1800000000;
    /* No Retry-After, or a short one (Let's Encrypt's 6 h): not before 12 h. */
    assert_int_equal(ck_acme_ari_next_check(now, -1), now + 12 * 3600);
    assert_int_equal(ck_acme_ari_next_check(now, 0), now + 12 * 3600);
    assert_int_equal(ck_acme_ari_next_check(now, 6 * 3600), now + 12 * 3600);
    /* A longer one is honoured, up to a day. */
    assert_int_equal(ck_acme_ari_next_check(now, 18 * 3600), now + 18 * 3600);
    assert_int_equal(ck_acme_ari_next_check(now, 86400), now + 86400);
    assert_int_equal(ck_acme_ari_next_check(now, 30 * 86400), now + 86400);
}

static void test_state_round_trip(void **state)
{
    (void)state;
    ck_strv names = {0};
    struct ck_acme_order_state s, back;
    assert_int_equal(ck_strv_push(&names, "api.example.test"), 0);
    assert_int_equal(ck_acme_order_state_init(&s, &names, "http-01", NULL, NULL), 0);
    s.lifetime_s = 60;
    s.replaces = strdup(RFC_CERT_ID);
    s.not_after_sent = strdup("2026-12-07T04:10:35Z");
    s.replaces_sent = true;
    s.extensions_refused = true;
    json_t *doc = ck_acme_order_state_to_json(&s);
    assert_non_null(doc);
    assert_int_equal(ck_acme_order_state_from_json(doc, &back, NULL), 0);
    assert_int_equal(back.lifetime_s, 60);
    assert_string_equal(back.replaces, RFC_CERT_ID);
    assert_string_equal(back.not_after_sent, "2026-12-07T04:10:35Z");
    assert_true(back.replaces_sent);
    assert_true(back.extensions_refused);
    json_decref(doc);
    ck_acme_order_state_free(&back);
    ck_acme_order_state_free(&s);
    ck_strv_free(&names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_id_rfc_example),
        cmocka_unit_test(test_cert_id_small_serial_no_padding),
        cmocka_unit_test(test_cert_id_refusals),
        cmocka_unit_test(test_parse_window),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_next_check_twice_a_day),
        cmocka_unit_test(test_state_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
