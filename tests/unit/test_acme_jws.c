#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "crypto/keys.h"
#include "issuers/acme/jws.h"

/* RFC 7638 section 3.1: the example RSA key and its thumbprint. */
#define RFC7638_N                                                                                  \
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"      \
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"     \
    "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"            \
    "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC7638_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* pebble's example EAB key (docs/examples/pebble-config-external-account-bindings.json). */
#define EAB_KEY "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"

static uint8_t *decode(const char *text, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(ck_acme_b64url_decode(text, &out, len, NULL), 0);
    return out;
}

static json_t *decode_json(const char *b64)
{
    size_t len = 0;
    uint8_t *raw = decode(b64, &len);
    json_error_t jerr;
    json_t *value = json_loadb((const char *)raw, len, 0, &jerr);
    free(raw);
    assert_non_null(value);
    return value;
}

static void test_b64url_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
        const char *b64;
    } cases[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        {"\xfb\xff", 2, "-_8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *enc = ck_acme_b64url((const uint8_t *)cases[i].raw, cases[i].len);
        assert_string_equal(enc, cases[i].b64);
        free(enc);
        size_t len = 0;
        uint8_t *dec = decode(cases[i].b64, &len);
        assert_int_equal(len, cases[i].len);
        assert_memory_equal(dec, cases[i].raw, len);
        free(dec);
    }
    size_t len = 0;
    uint8_t *padded = decode("Zg==", &len);
    assert_int_equal(len, 1);
    free(padded);
    uint8_t *out = NULL;
    ck_error err = {0};
    assert_int_equal(ck_acme_b64url_decode("ab+/", &out, &len, &err), -1);
    assert_string_equal(err.code, "invalid_base64url");
    assert_int_equal(ck_acme_b64url_decode("abcde", &out, &len, NULL), -1);
    assert_null(out);
}

static EVP_PKEY *rfc7638_key(void)
{
    size_t n_len = 0;
    uint8_t *n_raw = decode(RFC7638_N, &n_len);
    BIGNUM *n = BN_bin2bn(n_raw, (int)n_len, NULL);
    BIGNUM *e = BN_new();
    assert_non_null(n);
    assert_int_equal(BN_set_word(e, 65537), 1);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *key = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(n_raw);
    return key;
}

static void test_thumbprint_rfc7638_example(void **state)
{
    (void)state;
    EVP_PKEY *key = rfc7638_key();
    char thumb[CK_ACME_B64_SHA256_LEN];
    assert_int_equal(ck_acme_jwk_thumbprint(key, thumb, NULL), 0);
    assert_string_equal(thumb, RFC7638_THUMBPRINT);
    json_t *jwk = ck_acme_jwk(key, NULL);
    assert_string_equal(json_string_value(json_object_get(jwk, "n")), RFC7638_N);
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    json_decref(jwk);
    EVP_PKEY_free(key);
}

static void test_jwk_ec_and_refused_keys(void **state)
{
    (void)state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    json_t *jwk = ck_acme_jwk(key, NULL);
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
    /* 32-byte coordinates, always padded: 43 base64url characters. */
    assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
    assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))), 43);
    assert_int_equal(json_object_size(jwk), 4);
    json_decref(jwk);
    EVP_PKEY_free(key);

    key = ck_key_generate(CK_KEY_EC_P384, NULL);
    ck_error err = {0};
    assert_null(ck_acme_jwk(key, &err));
    assert_string_equal(err.code, "unsupported_account_key");
    EVP_PKEY_free(key);
}

/* Checks a JWS signature made by key over "protected.payload". */
static void assert_es256_valid(EVP_PKEY *key, json_t *jws)
{
    const char *prot = json_string_value(json_object_get(jws, "protected"));
    const char *payload = json_string_value(json_object_get(jws, "payload"));
    size_t sig_len = 0;
    uint8_t *raw = decode(json_string_value(json_object_get(jws, "signature")), &sig_len);
    assert_int_equal(sig_len, 64);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)),
                     1);
    uint8_t *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    assert_true(der_len > 0);
    char input[4096];
    snprintf(input, sizeof(input), "%s.%s", prot, payload);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(
        EVP_DigestVerify(md, der, (size_t)der_len, (const uint8_t *)input, strlen(input)), 1);
    /* A changed payload must not verify. */
    input[strlen(input) - 1] ^= 1;
    assert_int_not_equal(
        EVP_DigestVerify(md, der, (size_t)der_len, (const uint8_t *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    free(raw);
}

static void test_jws_with_kid(void **state)
{
    (void)state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    char *text = ck_acme_jws_sign(key, "https://ca/acct/1", "nonce-1", "https://ca/new-order",
                                  "{\"identifiers\":[]}", NULL);
    assert_non_null(text);
    json_t *jws = json_loads(text, 0, NULL);
    assert_int_equal(json_object_size(jws), 3);
    json_t *header = decode_json(json_string_value(json_object_get(jws, "protected")));
    assert_string_equal(json_string_value(json_object_get(header, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(header, "kid")), "https://ca/acct/1");
    assert_string_equal(json_string_value(json_object_get(header, "nonce")), "nonce-1");
    assert_string_equal(json_string_value(json_object_get(header, "url")), "https://ca/new-order");
    assert_null(json_object_get(header, "jwk"));
    json_t *payload = decode_json(json_string_value(json_object_get(jws, "payload")));
    assert_true(json_is_array(json_object_get(payload, "identifiers")));
    assert_es256_valid(key, jws);
    json_decref(payload);
    json_decref(header);
    json_decref(jws);
    free(text);
    EVP_PKEY_free(key);
}

static void test_jws_with_jwk_and_post_as_get(void **state)
{
    (void)state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    char *text = ck_acme_jws_sign(key, NULL, "n", "https://ca/new-acct", NULL, NULL);
    json_t *jws = json_loads(text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(jws, "payload")), "");
    json_t *header = decode_json(json_string_value(json_object_get(jws, "protected")));
    assert_null(json_object_get(header, "kid"));
    json_t *expected = ck_acme_jwk(key, NULL);
    assert_true(json_equal(json_object_get(header, "jwk"), expected));
    assert_es256_valid(key, jws);
    json_decref(expected);
    json_decref(header);
    json_decref(jws);
    free(text);
    EVP_PKEY_free(key);
}

static void test_eab(void **state)
{
    (void)state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    json_t *eab = ck_acme_eab_jws(key, "kid-1", EAB_KEY, "https://ca/new-acct", NULL);
    assert_non_null(eab);
    json_t *header = decode_json(json_string_value(json_object_get(eab, "protected")));
    assert_string_equal(json_string_value(json_object_get(header, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(header, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_object_get(header, "url")), "https://ca/new-acct");
    assert_null(json_object_get(header, "nonce"));
    json_t *payload = decode_json(json_string_value(json_object_get(eab, "payload")));
    json_t *jwk = ck_acme_jwk(key, NULL);
    assert_true(json_equal(payload, jwk));

    char input[2048];
    snprintf(input, sizeof(input), "%s.%s", json_string_value(json_object_get(eab, "protected")),
             json_string_value(json_object_get(eab, "payload")));
    size_t mac_key_len = 0;
    uint8_t *mac_key = decode(EAB_KEY, &mac_key_len);
    assert_int_equal(mac_key_len, 48);
    uint8_t mac[32];
    size_t mac_len = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, mac_key, mac_key_len,
                              (const uint8_t *)input, strlen(input), mac, sizeof(mac), &mac_len));
    char *expected = ck_acme_b64url(mac, mac_len);
    assert_string_equal(json_string_value(json_object_get(eab, "signature")), expected);

    ck_error err = {0};
    assert_null(ck_acme_eab_jws(key, "kid-1", "not base64!", "https://ca/new-acct", &err));
    assert_string_equal(err.code, "invalid_eab_key");

    free(expected);
    free(mac_key);
    json_decref(jwk);
    json_decref(payload);
    json_decref(header);
    json_decref(eab);
    EVP_PKEY_free(key);
}

static void test_key_authorization_and_dns_value(void **state)
{
    (void)state;
    char *ka = ck_acme_key_authorization("tok-123", RFC7638_THUMBPRINT);
    assert_string_equal(ka, "tok-123." RFC7638_THUMBPRINT);
    free(ka);
    char txt[CK_ACME_B64_SHA256_LEN];
    /* SHA-256("abc") from FIPS 180-2, in base64url. */
    assert_int_equal(ck_acme_dns_txt_value("abc", txt, NULL), 0);
    assert_string_equal(txt, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_thumbprint_rfc7638_example),
        cmocka_unit_test(test_jwk_ec_and_refused_keys),
        cmocka_unit_test(test_jws_with_kid),
        cmocka_unit_test(test_jws_with_jwk_and_post_as_get),
        cmocka_unit_test(test_eab),
        cmocka_unit_test(test_key_authorization_and_dns_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
