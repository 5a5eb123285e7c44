#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/util.h"

#include "crypto/keys.h"
#include "crypto/seal.h"

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

static void assert_key_seal_round_trip(enum ck_key_type type)
{
    ck_master_key key;
    test_master_key(&key, 0x5a);
    ck_error err = {0};
    EVP_PKEY *pkey = ck_key_generate(type, &err);
    assert_non_null(pkey);

    unsigned char *der = NULL;
    size_t der_len = 0;
    OSSL_ENCODER_CTX *enc =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    assert_non_null(enc);
    assert_int_equal(OSSL_ENCODER_to_data(enc, &der, &der_len), 1);
    OSSL_ENCODER_CTX_free(enc);

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
    assert_true(ck_key_public_equal(pkey, opened));
    assert_int_equal(EVP_PKEY_get_base_id(opened), EVP_PKEY_get_base_id(pkey));
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
    assert_key_seal_round_trip(CK_KEY_EC_P256);
    assert_key_seal_round_trip(CK_KEY_EC_P384);
    assert_key_seal_round_trip(CK_KEY_RSA_2048);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_types_generate_and_describe),
        cmocka_unit_test(test_key_public_equal),
        cmocka_unit_test(test_key_type_parse_refusals),
        cmocka_unit_test(test_key_describe_rsa_1024),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_unseal_refuses_tampering),
        cmocka_unit_test(test_private_key_seal_round_trip),
        cmocka_unit_test(test_master_key_file),
        cmocka_unit_test(test_master_key_bad_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
