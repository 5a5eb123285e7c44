#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "common/util.h"
#include "crypto/csr.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "crypto/x509info.h"

#define TEST_AAD "certkeep/order/42/key"

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static bool contains_bytes(const uint8_t *haystack, size_t len, const void *needle,
                           size_t needle_len)
{
    for (size_t i = 0; needle_len <= len && i <= len - needle_len; i++)
        if (memcmp(haystack + i, needle, needle_len) == 0)
            return true;
    return false;
}

/* ---- keys ---- */

static void test_key_types_generate_and_describe(void **state)
{
    (void)state;
    static const struct {
        enum ck_key_type type;
        const char *name;
        int bits;
    } cases[] = {
        {CK_KEY_RSA_2048, "rsa-2048", 2048}, {CK_KEY_RSA_3072, "rsa-3072", 3072},
        {CK_KEY_RSA_4096, "rsa-4096", 4096}, {CK_KEY_EC_P256, "ec-p256", 256},
        {CK_KEY_EC_P384, "ec-p384", 384},
    };
    for (size_t i = 0; i < CK_ARRAY_LEN(cases); i++) {
        ck_error err = {0};
        enum ck_key_type parsed = CK_KEY_TYPE_COUNT;
        assert_string_equal(ck_key_type_name(cases[i].type), cases[i].name);
        assert_int_equal(ck_key_type_parse(cases[i].name, &parsed, &err), 0);
        assert_int_equal(parsed, cases[i].type);

        EVP_PKEY *key = ck_key_generate(cases[i].type, &err);
        if (key == NULL)
            fail_msg("%s: %s", cases[i].name, err.message);
        char name[32];
        int bits = 0;
        enum ck_key_type described = CK_KEY_TYPE_COUNT;
        assert_int_equal(ck_key_describe(key, name, &bits, &described, &err), 0);
        assert_string_equal(name, cases[i].name);
        assert_int_equal(bits, cases[i].bits);
        assert_int_equal(described, cases[i].type);
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
            BIGNUM *e = NULL;
            assert_int_equal(EVP_PKEY_get_bn_param(key, "e", &e), 1);
            assert_true(BN_is_word(e, 65537));
            BN_free(e);
        } else {
            char format[32] = "";
            assert_int_equal(
                EVP_PKEY_get_utf8_string_param(key, "point-format", format, sizeof(format), NULL),
                1);
            assert_string_equal(format, "uncompressed");
        }
        assert_true(ck_key_public_equal(key, key));
        EVP_PKEY_free(key);
    }
}

static void test_key_public_equal(void **state)
{
    (void)state;
    EVP_PKEY *a = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *b = ck_key_generate(CK_KEY_EC_P256, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_false(ck_key_public_equal(a, b));
    assert_false(ck_key_public_equal(a, NULL));

    /* The public half alone equals the key pair it came from. */
    unsigned char *pub = NULL;
    int pub_len = i2d_PUBKEY(a, &pub);
    assert_true(pub_len > 0);
    const unsigned char *p = pub;
    EVP_PKEY *a_pub = d2i_PUBKEY(NULL, &p, pub_len);
    assert_non_null(a_pub);
    assert_true(ck_key_public_equal(a, a_pub));
    OPENSSL_free(pub);
    EVP_PKEY_free(a_pub);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_key_type_parse_refusals(void **state)
{
    (void)state;
    enum ck_key_type type = CK_KEY_TYPE_COUNT;
    ck_error err = {0};
    assert_int_equal(ck_key_type_parse("rsa-1024", &type, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_key_type");
    assert_contains(err.message, "rsa-1024");
    assert_contains(err.message, "at least 2048 bits");
    assert_contains(err.message, "rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384");

    static const char *const refused[] = {"dsa-2048",  "ec-p521", "RSA-2048",
                                          "rsa-2048 ", "",        "ed25519"};
    for (size_t i = 0; i < CK_ARRAY_LEN(refused); i++) {
        ck_error_clear(&err);
        assert_int_equal(ck_key_type_parse(refused[i], &type, &err), -1);
        assert_int_equal(err.status, 400);
        assert_contains(err.message, "ec-p256, ec-p384");
    }
    assert_int_equal(type, CK_KEY_TYPE_COUNT);
}

static void test_key_describe_rsa_1024(void **state)
{
    (void)state;
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(weak);
    char name[32];
    int bits = 0;
    enum ck_key_type type = CK_KEY_TYPE_COUNT;
    ck_error err = {0};
    assert_int_equal(ck_key_describe(weak, name, &bits, &type, &err), -1);
    assert_string_equal(name, "rsa-1024");
    assert_int_equal(bits, 1024);
    assert_int_equal(type, CK_KEY_TYPE_COUNT);
    assert_int_equal(err.status, 400);
    assert_contains(err.message, "rsa-1024");
    EVP_PKEY_free(weak);

    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    assert_int_equal(ck_key_describe(ed, name, &bits, &type, &err), -1);
    assert_string_equal(name, "ed25519");
    EVP_PKEY_free(ed);
}

/* ---- sealing ---- */

static void test_master_key(ck_master_key *key, uint8_t fill)
{
    memset(key->bytes, fill, sizeof(key->bytes));
}

static void test_seal_round_trip(void **state)
{
    (void)state;
    ck_master_key key;
    test_master_key(&key, 0x42);
    static const char secret[] = "a secret that must not be readable at rest";
    uint8_t *blob = NULL, *plain = NULL;
    size_t blob_len = 0, plain_len = 0;
    ck_error err = {0};
    assert_int_equal(
        ck_seal(&key, TEST_AAD, (const uint8_t *)secret, sizeof(secret), &blob, &blob_len, &err),
        0);
    assert_int_equal(blob_len, 1 + 12 + sizeof(secret) + 16);
    assert_int_equal(blob[0], 0x01);
    assert_false(contains_bytes(blob, blob_len, "secret", 6));
    assert_int_equal(ck_unseal(&key, TEST_AAD, blob, blob_len, &plain, &plain_len, &err), 0);
    assert_int_equal(plain_len, sizeof(secret));
    assert_memory_equal(plain, secret, sizeof(secret));
    OPENSSL_clear_free(plain, plain_len);

    /* Two seals of the same secret differ: a fresh nonce each time. */
    uint8_t *again = NULL;
    size_t again_len = 0;
    assert_int_equal(
        ck_seal(&key, TEST_AAD, (const uint8_t *)secret, sizeof(secret), &again, &again_len, &err),
        0);
    assert_int_equal(again_len, blob_len);
    assert_memory_not_equal(again, blob, blob_len);
    OPENSSL_free(again);

    /* An empty secret round-trips too. */
    uint8_t *empty_blob = NULL;
    size_t empty_len = 0;
    assert_int_equal(ck_seal(&key, TEST_AAD, NULL, 0, &empty_blob, &empty_len, &err), 0);
    assert_int_equal(ck_unseal(&key, TEST_AAD, empty_blob, empty_len, &plain, &plain_len, &err), 0);
    assert_int_equal(plain_len, 0);
    OPENSSL_clear_free(plain, plain_len);
    OPENSSL_free(empty_blob);
    OPENSSL_free(blob);
}

static void assert_unseal_fails(const ck_master_key *key, const char *aad, const uint8_t *blob,
                                size_t blob_len)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    ck_error err = {0};
    assert_int_equal(ck_unseal(key, aad, blob, blob_len, &plain, &plain_len, &err), -1);
    assert_null(plain);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "unseal_failed");
}

static void test_unseal_refuses_tampering(void **state)
{
    (void)state;
    ck_master_key key, other;
    test_master_key(&key, 0x42);
    test_master_key(&other, 0x43);
    static const char secret[] = "top secret";
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_int_equal(
        ck_seal(&key, TEST_AAD, (const uint8_t *)secret, sizeof(secret), &blob, &blob_len, NULL),
        0);
    assert_unseal_fails(&key, "certkeep/order/43/key", blob, blob_len);
    assert_unseal_fails(&key, NULL, blob, blob_len);
    assert_unseal_fails(&other, TEST_AAD, blob, blob_len);
    for (size_t i = 0; i < blob_len; i++) {
        blob[i] ^= 0x01;
        assert_unseal_fails(&key, TEST_AAD, blob, blob_len);
        blob[i] ^= 0x01;
    }
    for (size_t len = 0; len < blob_len; len++)
        assert_unseal_fails(&key, TEST_AAD, blob, len);
    assert_unseal_fails(&key, TEST_AAD, NULL, 0);
    OPENSSL_free(blob);
}

static unsigned char *private_key_info_der(EVP_PKEY *pkey, size_t *der_len)
{
    unsigned char *der = NULL;
    OSSL_ENCODER_CTX *enc =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    assert_non_null(enc);
    assert_int_equal(OSSL_ENCODER_to_data(enc, &der, der_len), 1);
    OSSL_ENCODER_CTX_free(enc);
    return der;
}

/* The private halves are equal: the scalar of an EC key, the raw key of an EdDSA/XDH key, the
 * private exponent of an RSA key. */
static void assert_same_private_key(EVP_PKEY *a, EVP_PKEY *b)
{
    assert_int_equal(EVP_PKEY_get_base_id(a), EVP_PKEY_get_base_id(b));
    unsigned char raw_a[64], raw_b[64];
    size_t len_a = sizeof(raw_a), len_b = sizeof(raw_b);
    if (EVP_PKEY_get_raw_private_key(a, raw_a, &len_a) == 1) {
        assert_int_equal(EVP_PKEY_get_raw_private_key(b, raw_b, &len_b), 1);
        assert_int_equal(len_a, len_b);
        assert_memory_equal(raw_a, raw_b, len_a);
        OPENSSL_cleanse(raw_a, sizeof(raw_a));
        OPENSSL_cleanse(raw_b, sizeof(raw_b));
        return;
    }
    const char *name = EVP_PKEY_is_a(a, "RSA") ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
    BIGNUM *bn_a = NULL, *bn_b = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(a, name, &bn_a), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(b, name, &bn_b), 1);
    assert_int_equal(BN_cmp(bn_a, bn_b), 0);
    BN_clear_free(bn_a);
    BN_clear_free(bn_b);
}

/* Signs with signer and verifies with the public key alone of owner; returns the verdict. */
static bool signature_verifies(EVP_PKEY *signer, EVP_PKEY *owner)
{
    static const unsigned char message[] = "certkeep handshake transcript";
    const EVP_MD *md = EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256();
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(
        EVP_DigestSignInit_ex(ctx, NULL, md ? "SHA256" : NULL, NULL, NULL, signer, NULL), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, message, sizeof(message)), 1);
    EVP_MD_CTX_free(ctx);

    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(owner, &spki);
    assert_true(spki_len > 0);
    const unsigned char *p = spki;
    EVP_PKEY *public_only = d2i_PUBKEY(NULL, &p, spki_len);
    assert_non_null(public_only);
    ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(
        EVP_DigestVerifyInit_ex(ctx, NULL, md ? "SHA256" : NULL, NULL, NULL, public_only, NULL), 1);
    bool verifies = EVP_DigestVerify(ctx, sig, sig_len, message, sizeof(message)) == 1;
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(public_only);
    OPENSSL_free(spki);
    return verifies;
}

/* What a user of the opened key relies on: the same key, public and private, that signs for the
 * certificate of the original. */
static void assert_opened_key_equal(EVP_PKEY *opened, EVP_PKEY *original)
{
    assert_non_null(opened);
    assert_int_equal(EVP_PKEY_eq(opened, original), 1);
    assert_true(ck_key_public_equal(original, opened));
    assert_same_private_key(opened, original);
    assert_true(signature_verifies(opened, original));
}

static EVP_PKEY *seal_and_open_der(const unsigned char *der, size_t der_len, ck_error *err)
{
    ck_master_key key;
    test_master_key(&key, 0x5a);
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_int_equal(ck_seal(&key, TEST_AAD, der, der_len, &blob, &blob_len, err), 0);
    EVP_PKEY *opened = ck_unseal_private_key(&key, TEST_AAD, blob, blob_len, err);
    OPENSSL_free(blob);
    return opened;
}

static void assert_key_seal_round_trip(EVP_PKEY *pkey)
{
    ck_master_key key;
    test_master_key(&key, 0x5a);
    ck_error err = {0};
    assert_non_null(pkey);
    size_t der_len = 0;
    unsigned char *der = private_key_info_der(pkey, &der_len);

    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_int_equal(ck_seal_private_key(&key, TEST_AAD, pkey, &blob, &blob_len, &err), 0);
    assert_int_equal(blob_len, der_len + 1 + 12 + 16);
    assert_false(contains_bytes(blob, blob_len, der, der_len));
    /* Not even a piece of it from the middle, where the private part sits. */
    assert_false(contains_bytes(blob, blob_len, der + der_len / 2, 24));

    EVP_PKEY *opened = ck_unseal_private_key(&key, TEST_AAD, blob, blob_len, &err);
    if (opened == NULL)
        fail_msg("unseal: %s", err.message);
    assert_opened_key_equal(opened, pkey);
    assert_int_equal(ERR_peek_error(), 0);
    /* Even its encoding is the original's, byte for byte. */
    size_t again_len = 0;
    unsigned char *again = private_key_info_der(opened, &again_len);
    assert_int_equal(again_len, der_len);
    assert_memory_equal(again, der, der_len);
    OPENSSL_clear_free(again, again_len);
    assert_null(ck_unseal_private_key(&key, "certkeep/order/7/key", blob, blob_len, &err));
    assert_string_equal(err.code, "unseal_failed");

    EVP_PKEY_free(opened);
    EVP_PKEY_free(pkey);
    OPENSSL_free(blob);
    OPENSSL_clear_free(der, der_len);
}

static void test_private_key_seal_round_trip(void **state)
{
    (void)state;
    ck_error err = {0};
    assert_key_seal_round_trip(ck_key_generate(CK_KEY_EC_P256, &err));
    assert_key_seal_round_trip(ck_key_generate(CK_KEY_EC_P384, &err));
    assert_key_seal_round_trip(EVP_EC_gen("P-521"));
    assert_key_seal_round_trip(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
    assert_key_seal_round_trip(ck_key_generate(CK_KEY_RSA_2048, &err));
}

/* An ECPrivateKey without its optional public point (openssl ec -no_public) still opens, through
 * OpenSSL's decoder, which derives the point. */
static void test_unseal_ec_key_without_public_point(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);
    size_t full_len = 0, der_len = 0;
    unsigned char *full = private_key_info_der(pkey, &full_len);
    assert_int_equal(EVP_PKEY_set_int_param(pkey, OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 0), 1);
    unsigned char *der = private_key_info_der(pkey, &der_len);
    /* The 65-byte uncompressed point is gone, with its [1] BIT STRING wrapping. */
    assert_true(der_len < full_len - 65);

    ck_error err = {0};
    EVP_PKEY *opened = seal_and_open_der(der, der_len, &err);
    if (opened == NULL)
        fail_msg("unseal: %s", err.message);
    assert_opened_key_equal(opened, pkey);
    EVP_PKEY_free(opened);
    EVP_PKEY_free(pkey);
    OPENSSL_clear_free(full, full_len);
    OPENSSL_clear_free(der, der_len);
}

/* A PrivateKeyInfo whose public point is another key's: it opens, as it does through OpenSSL's
 * decoder (checking the pair costs more than the decoder, see seal.c), but as what it is, a key
 * that neither equals the original nor signs for the certificate of the point it carries. */
static void test_unseal_ec_key_with_foreign_point(void **state)
{
    (void)state;
    EVP_PKEY *owner = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    assert_non_null(owner);
    assert_non_null(other);
    BIGNUM *priv = NULL;
    unsigned char pub[65];
    size_t pub_len = 0;
    assert_int_equal(EVP_PKEY_get_bn_param(owner, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(other, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &pub_len),
        1);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len),
                     1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *mixed = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &mixed, EVP_PKEY_KEYPAIR, params), 1);
    size_t der_len = 0;
    unsigned char *der = private_key_info_der(mixed, &der_len);

    ck_error err = {0};
    EVP_PKEY *opened = seal_and_open_der(der, der_len, &err);
    if (opened == NULL)
        fail_msg("unseal: %s", err.message);
    assert_int_not_equal(EVP_PKEY_eq(opened, owner), 1);
    assert_false(signature_verifies(opened, other));
    ERR_clear_error();

    EVP_PKEY_free(opened);
    OPENSSL_clear_free(der, der_len);
    EVP_PKEY_free(mixed);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    EVP_PKEY_free(other);
    EVP_PKEY_free(owner);
}

/* OpenSSL's decoder, as certkeep opened every PrivateKeyInfo before the fast paths. */
static EVP_PKEY *decode_with_openssl(const unsigned char *der, size_t der_len)
{
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t left = der_len;
    OSSL_DECODER_CTX *dec = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo", NULL,
                                                          EVP_PKEY_KEYPAIR, NULL, NULL);
    assert_non_null(dec);
    if (OSSL_DECODER_from_data(dec, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dec);
    ERR_clear_error();
    return pkey;
}

/* Every truncation of a PrivateKeyInfo is refused with a clear error (and, under ASan, without a
 * leak); a one-byte change opens exactly when OpenSSL's decoder opens it, and as the same key. */
static void assert_damaged_keys_handled(EVP_PKEY *pkey)
{
    size_t der_len = 0;
    unsigned char *der = private_key_info_der(pkey, &der_len);
    for (size_t len = 0; len < der_len; len++) {
        ck_error err = {0};
        assert_null(seal_and_open_der(der, len, &err));
        assert_string_equal(err.code, "unseal_failed");
    }
    unsigned char *changed = OPENSSL_malloc(der_len);
    assert_non_null(changed);
    for (size_t i = 0; i < der_len; i++) {
        static const unsigned char flips[] = {0x01, 0x80, 0xff};
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(changed, der, der_len);
            changed[i] ^= flips[f];
            ck_error err = {0};
            EVP_PKEY *opened = seal_and_open_der(changed, der_len, &err);
            EVP_PKEY *expected = decode_with_openssl(changed, der_len);
            if ((opened == NULL) != (expected == NULL))
                fail_msg("byte %zu ^ 0x%02x: certkeep %s it, OpenSSL's decoder %s", i, flips[f],
                         opened ? "opens" : "refuses", expected ? "opens" : "refuses");
            if (opened == NULL) {
                assert_string_equal(err.code, "unseal_failed");
            } else {
                assert_int_equal(EVP_PKEY_eq(opened, expected), 1);
                assert_same_private_key(opened, expected);
            }
            EVP_PKEY_free(expected);
            EVP_PKEY_free(opened);
            ERR_clear_error();
        }
    }
    OPENSSL_clear_free(changed, der_len);
    OPENSSL_clear_free(der, der_len);
    EVP_PKEY_free(pkey);
}

static void test_unseal_damaged_private_key(void **state)
{
    (void)state;
    assert_damaged_keys_handled(EVP_EC_gen("P-256"));
    assert_damaged_keys_handled(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
}

/* A key sealed in another structure than PrivateKeyInfo (here SEC1 ECPrivateKey) still opens,
 * and opening a PrivateKeyInfo leaves nothing on OpenSSL's error queue. */
static void test_unseal_private_key_other_structures(void **state)
{
    (void)state;
    ck_master_key key;
    test_master_key(&key, 0x5a);
    ck_error err = {0};
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);
    unsigned char *der = NULL;
    size_t der_len = 0;
    OSSL_ENCODER_CTX *enc =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER", "type-specific", NULL);
    assert_non_null(enc);
    assert_int_equal(OSSL_ENCODER_to_data(enc, &der, &der_len), 1);
    OSSL_ENCODER_CTX_free(enc);
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_int_equal(ck_seal(&key, TEST_AAD, der, der_len, &blob, &blob_len, &err), 0);
    EVP_PKEY *opened = ck_unseal_private_key(&key, TEST_AAD, blob, blob_len, &err);
    if (opened == NULL)
        fail_msg("unseal: %s", err.message);
    assert_true(ck_key_public_equal(pkey, opened));
    EVP_PKEY_free(opened);
    OPENSSL_free(blob);

    ERR_clear_error();
    assert_int_equal(ck_seal_private_key(&key, TEST_AAD, pkey, &blob, &blob_len, &err), 0);
    opened = ck_unseal_private_key(&key, TEST_AAD, blob, blob_len, &err);
    assert_non_null(opened);
    assert_int_equal(ERR_peek_error(), 0);
    EVP_PKEY_free(opened);
    OPENSSL_free(blob);
    EVP_PKEY_free(pkey);
    OPENSSL_clear_free(der, der_len);
}

/* ---- master key file ---- */

struct temp_dir {
    char path[64];
};

static void temp_dir_make(struct temp_dir *dir)
{
    snprintf(dir->path, sizeof(dir->path), "/tmp/ck-test-crypto-XXXXXX");
    assert_non_null(mkdtemp(dir->path));
}

static void temp_dir_remove(struct temp_dir *dir, const char *file)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir->path, file);
    unlink(path);
    rmdir(dir->path);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_master_key_file(void **state)
{
    (void)state;
    unsetenv("CERTKEEP_MASTER_KEY");
    struct temp_dir dir;
    temp_dir_make(&dir);
    char path[128];
    snprintf(path, sizeof(path), "%s/master.key", dir.path);

    ck_master_key created, loaded;
    ck_error err = {0};
    assert_int_equal(ck_master_key_create(path, &created, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);

    char text[128] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    assert_int_equal(n, 65);
    assert_int_equal(text[64], '\n');
    assert_int_equal(strspn(text, "0123456789abcdef"), 64);

    assert_int_equal(ck_master_key_load(path, &loaded, &err), 0);
    assert_memory_equal(created.bytes, loaded.bytes, CK_MASTER_KEY_LEN);

    ck_error_clear(&err);
    assert_int_equal(ck_master_key_create(path, &loaded, &err), -1);
    assert_int_equal(err.status, 409);
    assert_contains(err.message, "already exists");
    /* The refused create did not touch the file. */
    assert_int_equal(ck_master_key_load(path, &loaded, &err), 0);
    assert_memory_equal(created.bytes, loaded.bytes, CK_MASTER_KEY_LEN);

    assert_int_equal(chmod(path, 0644), 0);
    ck_error_clear(&err);
    assert_int_equal(ck_master_key_load(path, &loaded, &err), -1);
    assert_contains(err.message, "chmod 600");
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(ck_master_key_load(path, &loaded, &err), -1);

    ck_master_key_wipe(&created);
    static const uint8_t zero[CK_MASTER_KEY_LEN] = {0};
    assert_memory_equal(created.bytes, zero, CK_MASTER_KEY_LEN);
    temp_dir_remove(&dir, "master.key");
}

static void test_master_key_bad_content(void **state)
{
    (void)state;
    unsetenv("CERTKEEP_MASTER_KEY");
    struct temp_dir dir;
    temp_dir_make(&dir);
    char path[128];
    snprintf(path, sizeof(path), "%s/master.key", dir.path);
    static const char *const bad[] = {
        "",
        "0123\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",
        "0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef\n",
    };
    ck_master_key key;
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++) {
        ck_error err = {0};
        write_text(path, bad[i], 0600);
        assert_int_equal(ck_master_key_load(path, &key, &err), -1);
        assert_string_equal(err.code, "invalid_master_key");
    }
    write_text(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    assert_int_equal(ck_master_key_load(path, &key, NULL), 0);
    assert_int_equal(key.bytes[1], 0x11);
    assert_int_equal(key.bytes[31], 0xff);

    /* The environment overrides the file, and is checked as strictly. */
    setenv("CERTKEEP_MASTER_KEY",
           "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 1);
    assert_int_equal(ck_master_key_load(path, &key, NULL), 0);
    assert_int_equal(key.bytes[0], 0xff);
    assert_int_equal(ck_master_key_load("/nonexistent/master.key", &key, NULL), 0);
    setenv("CERTKEEP_MASTER_KEY", "ffee", 1);
    ck_error err = {0};
    assert_int_equal(ck_master_key_load(path, &key, &err), -1);
    assert_contains(err.message, "CERTKEEP_MASTER_KEY");
    unsetenv("CERTKEEP_MASTER_KEY");

    ck_error_clear(&err);
    assert_int_equal(ck_master_key_load("/nonexistent/master.key", &key, &err), -1);
    assert_contains(err.message, "/nonexistent/master.key");
    temp_dir_remove(&dir, "master.key");
}

/* ---- CSRs ---- */

static const char *const csr_sans[] = {"shop.example.com", "www.shop.example.com",
                                       "*.api.example.com", "192.0.2.1", "2001:db8::1"};

static char *make_test_csr(EVP_PKEY *key)
{
    ck_strv sans = {0};
    for (size_t i = 0; i < CK_ARRAY_LEN(csr_sans); i++)
        assert_int_equal(ck_strv_push(&sans, csr_sans[i]), 0);
    struct ck_csr_request req = {
        .cn = "shop.example.com",
        .sans = &sans,
        .o = "Example Ltd",
        .ou = "Web",
        .l = "Paris",
        .st = "\xc3\x8e"
              "le-de-France",
        .c = "FR",
    };
    ck_error err = {0};
    char *pem = ck_csr_create(key, &req, &err);
    if (pem == NULL)
        fail_msg("ck_csr_create: %s", err.message);
    ck_strv_free(&sans);
    return pem;
}

/* The subject is written C, ST, L, O, OU, CN, in that order, as UTF-8. */
static void assert_subject_order(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req);
    assert_int_equal(X509_REQ_get_version(req), X509_REQ_VERSION_1);
    const X509_NAME *name = X509_REQ_get_subject_name(req);
    static const int order[] = {NID_countryName,      NID_stateOrProvinceName,    NID_localityName,
                                NID_organizationName, NID_organizationalUnitName, NID_commonName};
    assert_int_equal(X509_NAME_entry_count(name), CK_ARRAY_LEN(order));
    for (size_t i = 0; i < CK_ARRAY_LEN(order); i++) {
        const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, (int)i);
        assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)), order[i]);
    }
    X509_REQ_free(req);
    BIO_free(bio);
}

static void assert_csr_round_trip(enum ck_key_type type, const char *key_name, const char *sig_alg)
{
    EVP_PKEY *key = ck_key_generate(type, NULL);
    assert_non_null(key);
    char *pem = make_test_csr(key);
    assert_true(strncmp(pem, "-----BEGIN CERTIFICATE REQUEST-----\n", 36) == 0);
    assert_subject_order(pem);

    struct ck_csr_info info;
    ck_error err = {0};
    if (ck_csr_info_from_pem(pem, strlen(pem), &info, &err) != 0)
        fail_msg("parse: %s", err.message);
    assert_string_equal(info.subject.cn, "shop.example.com");
    assert_string_equal(info.subject.o, "Example Ltd");
    assert_string_equal(info.subject.ou, "Web");
    assert_string_equal(info.subject.l, "Paris");
    assert_string_equal(info.subject.st, "\xc3\x8e"
                                         "le-de-France");
    assert_string_equal(info.subject.c, "FR");
    assert_contains(info.subject.text, "CN=shop.example.com");
    assert_int_equal(info.dns_sans.len, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(info.dns_sans.items[i], csr_sans[i]);
    assert_int_equal(info.ip_sans.len, 2);
    assert_string_equal(info.ip_sans.items[0], "192.0.2.1");
    assert_string_equal(info.ip_sans.items[1], "2001:db8::1");
    assert_string_equal(info.key_name, key_name);
    assert_string_equal(info.sig_alg, sig_alg);
    assert_true(info.signature_valid);

    json_t *json = ck_csr_info_to_json(&info);
    assert_non_null(json);
    assert_string_equal(json_string_value(json_object_get(json, "key_type")), key_name);
    assert_true(json_is_true(json_object_get(json, "signature_valid")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(json, "subject"), "cn")),
                        "shop.example.com");
    assert_int_equal(json_array_size(json_object_get(json, "dns_sans")), 3);
    assert_int_equal(json_array_size(json_object_get(json, "ip_sans")), 2);
    json_decref(json);

    ck_csr_info_free(&info);
    free(pem);
    EVP_PKEY_free(key);
}

static void test_csr_round_trip(void **state)
{
    (void)state;
    assert_csr_round_trip(CK_KEY_EC_P256, "ec-p256", "ecdsa-with-SHA256");
    assert_csr_round_trip(CK_KEY_RSA_2048, "rsa-2048", "sha256WithRSAEncryption");
}

static void test_csr_tampered(void **state)
{
    (void)state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    assert_non_null(key);
    char *pem = make_test_csr(key);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req);
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(req, &der);
    assert_true(der_len > 0);

    /* The DER form parses too, with a good signature. */
    struct ck_csr_info info;
    ck_error err = {0};
    assert_int_equal(ck_csr_info_from_pem((const char *)der, (size_t)der_len, &info, &err), 0);
    assert_true(info.signature_valid);
    ck_csr_info_free(&info);

    /* Change the CN "shop" into "shap": still parses, the signature no longer holds. */
    bool changed = false;
    for (int i = 0; i + 4 <= der_len && !changed; i++) {
        if (memcmp(der + i, "shop", 4) == 0) {
            der[i + 2] = 'a';
            changed = true;
        }
    }
    assert_true(changed);
    assert_int_equal(ck_csr_info_from_pem((const char *)der, (size_t)der_len, &info, &err), 0);
    assert_string_equal(info.subject.cn, "shap.example.com");
    assert_false(info.signature_valid);
    json_t *json = ck_csr_info_to_json(&info);
    assert_true(json_is_false(json_object_get(json, "signature_valid")));
    json_decref(json);
    ck_csr_info_free(&info);

    OPENSSL_free(der);
    X509_REQ_free(req);
    BIO_free(bio);
    free(pem);
    EVP_PKEY_free(key);
}

static void test_csr_refuses_bad_fields(void **state)
{
    (void)state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    assert_non_null(key);
    ck_error err = {0};
    struct ck_csr_request bad_country = {.cn = "a.example.com", .c = "FRA"};
    assert_null(ck_csr_create(key, &bad_country, &err));
    assert_int_equal(err.status, 400);
    assert_contains(err.message, "C");

    char long_cn[80];
    memset(long_cn, 'a', sizeof(long_cn) - 1);
    long_cn[sizeof(long_cn) - 1] = '\0';
    struct ck_csr_request too_long = {.cn = long_cn};
    ck_error_clear(&err);
    assert_null(ck_csr_create(key, &too_long, &err));
    assert_int_equal(err.status, 400);

    struct ck_csr_request empty = {0};
    ck_error_clear(&err);
    assert_null(ck_csr_create(key, &empty, &err));
    assert_int_equal(err.status, 400);

    /* Without SANs there is no SAN extension, and the CN alone is kept. */
    struct ck_csr_request cn_only = {.cn = "only.example.com"};
    char *pem = ck_csr_create(key, &cn_only, &err);
    assert_non_null(pem);
    struct ck_csr_info info;
    assert_int_equal(ck_csr_info_from_pem(pem, strlen(pem), &info, &err), 0);
    assert_string_equal(info.subject.cn, "only.example.com");
    assert_null(info.subject.o);
    assert_int_equal(info.dns_sans.len, 0);
    assert_true(info.signature_valid);
    ck_csr_info_free(&info);
    free(pem);
    EVP_PKEY_free(key);
}

/* ---- certificates ---- */

struct cert_spec {
    const char *cn, *o;
    const char *san_conf; /* "DNS:a,IP:1.2.3.4", or NULL */
    bool ca;
    int64_t not_before, not_after;
    uint64_t serial;
};

static void add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(const struct cert_spec *spec, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), spec->serial), 1);
    X509_NAME *name = X509_get_subject_name(cert);
    if (spec->o != NULL)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)spec->o, -1, -1,
                                   0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)spec->cn, -1, -1,
                               0);
    assert_int_equal(X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)spec->not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)spec->not_after));
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    add_ext(cert, &ctx, NID_basic_constraints, spec->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (spec->san_conf != NULL)
        add_ext(cert, &ctx, NID_subject_alt_name, spec->san_conf);
    assert_true(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return cert;
}

static char *cert_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)len);
    BIO_free(bio);
    return pem;
}

static void expected_fingerprint(X509 *cert, char out[96])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert_int_equal(X509_digest(cert, EVP_sha256(), md, &md_len), 1);
    assert_int_equal(md_len, 32);
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(out + 3 * i, 4, i + 1 < md_len ? "%02X:" : "%02X", md[i]);
}

static void test_cert_info_self_signed(void **state)
{
    (void)state;
    int64_t now = ck_clock_now();
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    assert_non_null(key);
    struct cert_spec spec = {
        .cn = "cert.example.com",
        .o = "Example Ltd",
        .san_conf = "DNS:cert.example.com,DNS:www.cert.example.com,IP:127.0.0.1,IP:::1",
        .not_before = now - 86400,
        .not_after = now + 30 * 86400 + 3600,
        .serial = 0x0123456789abcdefULL,
    };
    X509 *cert = make_cert(&spec, key, NULL, NULL);
    char *pem = cert_pem(cert);

    struct ck_cert_info info;
    ck_error err = {0};
    if (ck_cert_info_from_pem(pem, strlen(pem), &info, &err) != 0)
        fail_msg("parse: %s", err.message);
    assert_string_equal(info.subject.cn, "cert.example.com");
    assert_string_equal(info.subject.o, "Example Ltd");
    assert_null(info.subject.ou);
    assert_string_equal(info.issuer.cn, "cert.example.com");
    assert_string_equal(info.subject.text, "CN=cert.example.com,O=Example Ltd");
    assert_int_equal(info.dns_sans.len, 2);
    assert_string_equal(info.dns_sans.items[0], "cert.example.com");
    assert_string_equal(info.dns_sans.items[1], "www.cert.example.com");
    assert_int_equal(info.ip_sans.len, 2);
    assert_string_equal(info.ip_sans.items[0], "127.0.0.1");
    assert_string_equal(info.ip_sans.items[1], "::1");
    assert_string_equal(info.key_name, "ec-p256");
    assert_int_equal(info.key_bits, 256);
    assert_string_equal(info.sig_alg, "ecdsa-with-SHA256");
    assert_string_equal(info.serial_hex, "0123456789abcdef");
    assert_int_equal(info.not_before, spec.not_before);
    assert_int_equal(info.not_after, spec.not_after);
    char fingerprint[96];
    expected_fingerprint(cert, fingerprint);
    assert_string_equal(info.sha256_fingerprint, fingerprint);
    assert_int_equal(strlen(info.sha256_fingerprint), 95);
    assert_false(info.is_ca);
    assert_true(info.self_signed);

    json_t *json = ck_cert_info_to_json(&info, now);
    assert_non_null(json);
    assert_int_equal(json_integer_value(json_object_get(json, "days_left")), 30);
    assert_string_equal(json_string_value(json_object_get(json, "sha256_fingerprint")),
                        fingerprint);
    assert_string_equal(json_string_value(json_object_get(json, "serial")), "0123456789abcdef");
    assert_string_equal(json_string_value(json_object_get(json, "key_type")), "ec-p256");
    assert_true(json_is_false(json_object_get(json, "is_ca")));
    assert_true(json_is_true(json_object_get(json, "self_signed")));
    assert_true(json_is_null(json_object_get(json_object_get(json, "subject"), "ou")));
    char expected_time[32];
    ck_time_format(spec.not_after, expected_time, sizeof(expected_time));
    assert_string_equal(json_string_value(json_object_get(json, "not_after")), expected_time);
    json_decref(json);

    /* One second after expiry is day -1, not day 0. */
    json = ck_cert_info_to_json(&info, spec.not_after + 1);
    assert_int_equal(json_integer_value(json_object_get(json, "days_left")), -1);
    json_decref(json);
    ck_cert_info_free(&info);

    /* DER, and PEM with text before it, give the same certificate. */
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    assert_int_equal(ck_cert_info_from_pem((const char *)der, (size_t)der_len, &info, &err), 0);
    assert_string_equal(info.sha256_fingerprint, fingerprint);
    ck_cert_info_free(&info);
    size_t with_text_len = strlen(pem) + 64;
    char *with_text = malloc(with_text_len);
    snprintf(with_text, with_text_len, "Bag Attributes\n    friendlyName: test\n%s", pem);
    assert_int_equal(ck_cert_info_from_pem(with_text, strlen(with_text), &info, &err), 0);
    assert_string_equal(info.sha256_fingerprint, fingerprint);
    ck_cert_info_free(&info);

    free(with_text);
    OPENSSL_free(der);
    free(pem);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void test_cert_info_issued(void **state)
{
    (void)state;
    int64_t now = ck_clock_now();
    EVP_PKEY *ca_key = ck_key_generate(CK_KEY_RSA_2048, NULL);
    EVP_PKEY *leaf_key = ck_key_generate(CK_KEY_EC_P384, NULL);
    struct cert_spec ca_spec = {.cn = "Test Root CA",
                                .o = "certkeep tests",
                                .ca = true,
                                .not_before = now - 86400,
                                .not_after = now + 3650 * 86400,
                                .serial = 1};
    struct cert_spec leaf_spec = {.cn = "leaf.example.com",
                                  .san_conf = "DNS:leaf.example.com",
                                  .not_before = now - 10 * 86400,
                                  .not_after = now - 86400 - 60,
                                  .serial = 2};
    X509 *ca = make_cert(&ca_spec, ca_key, NULL, NULL);
    X509 *leaf = make_cert(&leaf_spec, leaf_key, ca, ca_key);

    struct ck_cert_info info;
    ck_error err = {0};
    assert_int_equal(ck_cert_info_from_x509(ca, &info, &err), 0);
    assert_true(info.is_ca);
    assert_true(info.self_signed);
    assert_string_equal(info.key_name, "rsa-2048");
    assert_string_equal(info.sig_alg, "sha256WithRSAEncryption");
    assert_int_equal(info.dns_sans.len, 0);
    ck_cert_info_free(&info);

    assert_int_equal(ck_cert_info_from_x509(leaf, &info, &err), 0);
    assert_false(info.is_ca);
    assert_false(info.self_signed);
    assert_string_equal(info.issuer.cn, "Test Root CA");
    assert_string_equal(info.issuer.o, "certkeep tests");
    assert_string_equal(info.key_name, "ec-p384");
    assert_string_equal(info.serial_hex, "02");
    json_t *json = ck_cert_info_to_json(&info, now);
    assert_int_equal(json_integer_value(json_object_get(json, "days_left")), -2);
    json_decref(json);
    ck_cert_info_free(&info);

    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(ca_key);
}

static void assert_cert_refused(const char *text, size_t len)
{
    struct ck_cert_info info;
    struct ck_csr_info csr;
    ck_error err = {0};
    assert_int_equal(ck_cert_info_from_pem(text, len, &info, &err), -1);
    assert_int_equal(err.status, 400);
    assert_true(err.message[0] != '\0');
    ck_error_clear(&err);
    assert_int_equal(ck_csr_info_from_pem(text, len, &csr, &err), -1);
    assert_int_equal(err.status, 400);
}

static void test_garbage_input(void **state)
{
    (void)state;
    /* An "encrypted" block must be refused, never answered with a password prompt. */
    static const char encrypted_pem[] =
        "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
        "AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END CERTIFICATE-----\n";
    static const char *const garbage[] = {
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        encrypted_pem,
        "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
        "\x30\x82\xff\xff",
        "\x30\x80\x30\x80\x30\x80",
    };
    for (size_t i = 0; i < CK_ARRAY_LEN(garbage); i++)
        assert_cert_refused(garbage[i], strlen(garbage[i]));
    assert_cert_refused(NULL, 0);

    /* Every truncation of a real certificate is refused, and bit flips never crash. */
    int64_t now = ck_clock_now();
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct cert_spec spec = {.cn = "trunc.example.com",
                             .san_conf = "DNS:trunc.example.com,IP:10.0.0.1",
                             .not_before = now,
                             .not_after = now + 86400,
                             .serial = 7};
    X509 *cert = make_cert(&spec, key, NULL, NULL);
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    assert_true(der_len > 0);
    for (int len = 0; len < der_len; len++)
        assert_cert_refused((const char *)der, (size_t)len);
    for (int i = 0; i < der_len; i++) {
        struct ck_cert_info info;
        der[i] ^= 0x80;
        if (ck_cert_info_from_pem((const char *)der, (size_t)der_len, &info, NULL) == 0) {
            json_t *json = ck_cert_info_to_json(&info, now);
            json_decref(json);
            ck_cert_info_free(&info);
        }
        der[i] ^= 0x80;
    }
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- fetching a live certificate ---- */

#define SERVER_MAX_CONNECTIONS 4

struct tls_server {
    int family;
    int listen_fd;
    int port;
    int connections; /* how many handshakes to serve before the thread ends */
    SSL_CTX *ctx;
    X509 *default_cert, *other_cert, *ca_cert;
    EVP_PKEY *default_key, *other_key;
    char sni_seen[SERVER_MAX_CONNECTIONS][64];
    int served;
    pthread_t thread;
};

/* Called for every handshake, with or without SNI. */
static int server_pick_cert(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    struct tls_server *server = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (server->served < SERVER_MAX_CONNECTIONS)
        snprintf(server->sni_seen[server->served], sizeof(server->sni_seen[0]), "%s",
                 name ? name : "");
    if (name != NULL && strcmp(name, "other.test") == 0) {
        SSL_use_certificate(ssl, server->other_cert);
        SSL_use_PrivateKey(ssl, server->other_key);
    }
    return SSL_TLSEXT_ERR_OK;
}

static void *server_main(void *arg)
{
    struct tls_server *server = arg;
    for (int i = 0; i < server->connections; i++) {
        struct pollfd pfd = {.fd = server->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        int fd = accept(server->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        SSL *ssl = SSL_new(server->ctx);
        SSL_set_fd(ssl, fd);
        SSL_accept(ssl);
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
        server->served++;
    }
    return NULL;
}

/* Listens on the loopback address of family, port chosen by the system. */
static int listen_loopback(int family, int *port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage addr = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        len = sizeof(*in6);
    }
    if (bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&addr)->sin_port
                                    : ((struct sockaddr_in6 *)&addr)->sin6_port);
    return fd;
}

static int server_start(struct tls_server *server, int family, int connections)
{
    memset(server, 0, sizeof(*server));
    server->family = family;
    server->connections = connections;
    server->listen_fd = listen_loopback(family, &server->port);
    if (server->listen_fd < 0)
        return -1;
    int64_t now = ck_clock_now();
    EVP_PKEY *ca_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct cert_spec ca_spec = {
        .cn = "Fetch Test CA", .ca = true, .not_before = now - 60, .not_after = now + 86400};
    struct cert_spec default_spec = {.cn = "default.test",
                                     .san_conf = "DNS:default.test",
                                     .not_before = now - 60,
                                     .not_after = now + 86400,
                                     .serial = 10};
    struct cert_spec other_spec = {.cn = "other.test",
                                   .san_conf = "DNS:other.test",
                                   .not_before = now - 60,
                                   .not_after = now + 86400,
                                   .serial = 11};
    server->ca_cert = make_cert(&ca_spec, ca_key, NULL, NULL);
    server->default_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    server->other_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    server->default_cert = make_cert(&default_spec, server->default_key, server->ca_cert, ca_key);
    server->other_cert = make_cert(&other_spec, server->other_key, NULL, NULL);
    EVP_PKEY_free(ca_key);

    server->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(server->ctx);
    assert_int_equal(SSL_CTX_use_certificate(server->ctx, server->default_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(server->ctx, server->default_key), 1);
    assert_int_equal(SSL_CTX_add1_chain_cert(server->ctx, server->ca_cert), 1);
    SSL_CTX_set_num_tickets(server->ctx, 0);
    SSL_CTX_set_tlsext_servername_callback(server->ctx, server_pick_cert);
    SSL_CTX_set_tlsext_servername_arg(server->ctx, server);
    assert_int_equal(pthread_create(&server->thread, NULL, server_main, server), 0);
    return 0;
}

static void server_stop(struct tls_server *server)
{
    pthread_join(server->thread, NULL);
    close(server->listen_fd);
    SSL_CTX_free(server->ctx);
    X509_free(server->default_cert);
    X509_free(server->other_cert);
    X509_free(server->ca_cert);
    EVP_PKEY_free(server->default_key);
    EVP_PKEY_free(server->other_key);
}

static void fetch_ok(const char *host_port, const char *sni, X509 **leaf, STACK_OF(X509) * *chain)
{
    ck_error err = {0};
    if (ck_fetch_peer_certificate(host_port, sni, 5000, leaf, chain, &err) != 0)
        fail_msg("fetch %s: %s", host_port, err.message);
    assert_non_null(*leaf);
}

static void test_fetch_peer_certificate(void **state)
{
    (void)state;
    struct tls_server server;
    assert_int_equal(server_start(&server, AF_INET, 3), 0);
    char target[64];
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;

    /* An IP literal sends no SNI: the default certificate and its chain come back. */
    snprintf(target, sizeof(target), "127.0.0.1:%d", server.port);
    fetch_ok(target, NULL, &leaf, &chain);
    assert_int_equal(X509_cmp(leaf, server.default_cert), 0);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), server.ca_cert), 0);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);

    /* An explicit SNI selects the other certificate. */
    fetch_ok(target, "other.test", &leaf, NULL);
    assert_int_equal(X509_cmp(leaf, server.other_cert), 0);
    X509_free(leaf);

    /* A host name is sent as SNI. */
    snprintf(target, sizeof(target), "localhost:%d", server.port);
    fetch_ok(target, NULL, &leaf, &chain);
    assert_int_equal(X509_cmp(leaf, server.default_cert), 0);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);

    server_stop(&server);
    assert_int_equal(server.served, 3);
    assert_string_equal(server.sni_seen[0], "");
    assert_string_equal(server.sni_seen[1], "other.test");
    assert_string_equal(server.sni_seen[2], "localhost");
}

static void test_fetch_ipv6(void **state)
{
    (void)state;
    struct tls_server server;
    if (server_start(&server, AF_INET6, 1) != 0)
        skip(); /* no IPv6 loopback on this machine */
    char target[64];
    snprintf(target, sizeof(target), "[::1]:%d", server.port);
    X509 *leaf = NULL;
    fetch_ok(target, NULL, &leaf, NULL);
    assert_int_equal(X509_cmp(leaf, server.default_cert), 0);
    X509_free(leaf);
    server_stop(&server);
    assert_string_equal(server.sni_seen[0], "");
}

static int64_t elapsed_ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void test_fetch_failures(void **state)
{
    (void)state;
    /* A port bound but not listening refuses at once. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(addr.sin_port));
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    ck_error err = {0};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(ck_fetch_peer_certificate(target, NULL, 5000, &leaf, &chain, &err), -1);
    assert_true(elapsed_ms_since(&start) < 2000);
    assert_null(leaf);
    assert_null(chain);
    assert_string_equal(err.code, "connect_failed");
    assert_contains(err.message, "127.0.0.1");
    assert_contains(err.message, "refused");
    close(fd);

    /* A listener that never answers the handshake is given up on after the timeout. */
    int port = 0;
    int silent = listen_loopback(AF_INET, &port);
    assert_true(silent >= 0);
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ck_error_clear(&err);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(ck_fetch_peer_certificate(target, NULL, 300, &leaf, NULL, &err), -1);
    int64_t elapsed = elapsed_ms_since(&start);
    assert_true(elapsed >= 250 && elapsed < 2000);
    assert_string_equal(err.code, "timeout");
    close(silent);

    static const char *const bad_targets[] = {"",     "127.0.0.1:0", "127.0.0.1:99999",
                                              "[::1", "[::1]x",      "host:12ab"};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad_targets); i++) {
        ck_error_clear(&err);
        assert_int_equal(ck_fetch_peer_certificate(bad_targets[i], NULL, 1000, &leaf, NULL, &err),
                         -1);
        assert_int_equal(err.status, 400);
    }
}

/* A fetch from a listener that never answers gives up as soon as its cancel pipe is readable,
 * long before its timeout; an unwritten pipe changes nothing. */
static void test_fetch_cancelled(void **state)
{
    (void)state;
    int port = 0, cancel[2];
    int silent = listen_loopback(AF_INET, &port);
    assert_true(silent >= 0);
    assert_int_equal(pipe(cancel), 0);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    X509 *leaf = NULL;
    ck_error err = {0};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(
        ck_fetch_peer_certificate_cancellable(target, NULL, 300, cancel[0], &leaf, NULL, &err), -1);
    assert_true(elapsed_ms_since(&start) >= 250);
    assert_string_equal(err.code, "timeout");

    assert_int_equal(write(cancel[1], "x", 1), 1);
    ck_error_clear(&err);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(
        ck_fetch_peer_certificate_cancellable(target, NULL, 10000, cancel[0], &leaf, NULL, &err),
        -1);
    assert_true(elapsed_ms_since(&start) < 2000);
    assert_null(leaf);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.code, "cancelled");
    assert_contains(err.message, "127.0.0.1");
    close(cancel[0]);
    close(cancel[1]);
    close(silent);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_types_generate_and_describe),
        cmocka_unit_test(test_key_public_equal),
        cmocka_unit_test(test_key_type_parse_refusals),
        cmocka_unit_test(test_key_describe_rsa_1024),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_unseal_refuses_tampering),
        cmocka_unit_test(test_private_key_seal_round_trip),
        cmocka_unit_test(test_unseal_private_key_other_structures),
        cmocka_unit_test(test_unseal_ec_key_without_public_point),
        cmocka_unit_test(test_unseal_ec_key_with_foreign_point),
        cmocka_unit_test(test_unseal_damaged_private_key),
        cmocka_unit_test(test_master_key_file),
        cmocka_unit_test(test_master_key_bad_content),
        cmocka_unit_test(test_csr_round_trip),
        cmocka_unit_test(test_csr_tampered),
        cmocka_unit_test(test_csr_refuses_bad_fields),
        cmocka_unit_test(test_cert_info_self_signed),
        cmocka_unit_test(test_cert_info_issued),
        cmocka_unit_test(test_garbage_input),
        cmocka_unit_test(test_fetch_peer_certificate),
        cmocka_unit_test(test_fetch_ipv6),
        cmocka_unit_test(test_fetch_cancelled),
        cmocka_unit_test(test_fetch_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
