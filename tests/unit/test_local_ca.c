#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "common/util.h"
#include "core/import_check.h"
#include "crypto/csr.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "crypto/x509info.h"
#include "issuers/local_ca.h"

#define CA_ID    "acme-corp"
#define CA_AAD   "certkeep/ca/" CA_ID "/key"
#define DAY      86400
#define SIGNINGS 16

/* One CA for the whole file: a key generation per test would only cost time. */
struct fixture {
    ck_master_key mk;
    struct ck_local_ca ca;
    int64_t now;
    EVP_PKEY *ec_key;
    EVP_PKEY *rsa_key;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    memset(f->mk.bytes, 0x5a, sizeof(f->mk.bytes));
    f->now = ck_clock_now();
    ck_error err = {0};
    if (ck_local_ca_create(&f->mk, "Acme Corp Lab CA", CA_ID, f->now, &f->ca, &err) != 0) {
        fprintf(stderr, "ca: %s\n", err.message);
        return -1;
    }
    f->ec_key = ck_key_generate(CK_KEY_EC_P256, &err);
    f->rsa_key = ck_key_generate(CK_KEY_RSA_2048, &err);
    *state = f;
    return f->ec_key != NULL && f->rsa_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ck_local_ca_free(&f->ca);
    EVP_PKEY_free(f->ec_key);
    EVP_PKEY_free(f->rsa_key);
    free(f);
    return 0;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static X509 *x509_of(const char *pem)
{
    assert_non_null(pem);
    X509 *cert = ck_x509_from_pem(pem, strlen(pem), NULL);
    assert_non_null(cert);
    return cert;
}

static char *csr_for(EVP_PKEY *key, const char *cn, const char *o, const char *const *sans,
                     size_t n_sans)
{
    ck_strv list = {0};
    for (size_t i = 0; i < n_sans; i++)
        assert_int_equal(ck_strv_push(&list, sans[i]), 0);
    struct ck_csr_request req = {.cn = cn, .sans = &list, .o = o};
    ck_error err = {0};
    char *pem = ck_csr_create(key, &req, &err);
    if (pem == NULL)
        fail_msg("csr: %s", err.message);
    ck_strv_free(&list);
    return pem;
}

/* A CSR built by hand, for what ck_csr_create would never write. san_conf in x509v3_config
 * syntax ("DNS:a.example,email:x@example.com"), NULL for no SAN extension. */
static char *raw_csr(EVP_PKEY *key, const char *subject_cn, const char *san_conf)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (subject_cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                                    MBSTRING_UTF8,
                                                    (const unsigned char *)subject_cn, -1, -1, 0),
                         1);
    if (san_conf != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san_conf);
        assert_non_null(ext);
        sk_X509_EXTENSION_push(exts, ext);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)len);
    BIO_free(bio);
    X509_REQ_free(req);
    return pem;
}

/* X509_verify_cert as a TLS client would: leaf against the root alone, server purpose, the
 * host name checked, at time `at`. Returns the X509_V_ code. */
static int verify_leaf(const struct fixture *f, X509 *leaf, const char *host, int64_t at)
{
    X509 *root = x509_of(f->ca.cert_pem);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, root), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
    X509_VERIFY_PARAM_set_time(param, (time_t)at);
    int ok = X509_verify_cert(ctx);
    int code = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(root);
    return ok == 1 ? X509_V_OK : (code != X509_V_OK ? code : -1);
}

static bool ext_critical(X509 *cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    assert_true(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

static char *sign_ok(const struct fixture *f, const char *csr, int64_t lifetime)
{
    ck_error err = {0};
    char *pem = ck_local_ca_sign(&f->mk, CA_ID, &f->ca, csr, lifetime, f->now, &err);
    if (pem == NULL)
        fail_msg("sign: %s (%s)", err.message, err.code);
    return pem;
}

static void sign_refused(const struct fixture *f, const char *csr, int64_t lifetime, int status,
                         const char *code, const char *says)
{
    ck_error err = {0};
    char *pem = ck_local_ca_sign(&f->mk, CA_ID, &f->ca, csr, lifetime, f->now, &err);
    if (pem != NULL)
        fail_msg("signed although %s was expected", code);
    assert_int_equal(err.status, status);
    assert_string_equal(err.code, code);
    assert_contains(err.message, says);
}

/* ---- the root ---- */

static void test_root_properties(void **state)
{
    struct fixture *f = *state;
    X509 *root = x509_of(f->ca.cert_pem);
    struct ck_cert_info info = {0};
    assert_int_equal(ck_cert_info_from_x509(root, &info, NULL), 0);
    assert_true(info.self_signed);
    assert_true(info.is_ca);
    assert_string_equal(info.subject.cn, "Acme Corp Lab CA");
    assert_string_equal(info.subject.o, "certkeep local CA");
    assert_string_equal(info.issuer.text, info.subject.text);
    assert_string_equal(info.key_name, "ec-p256");
    assert_string_equal(info.sig_alg, "ecdsa-with-SHA256");
    assert_int_equal(info.not_before, f->now - 3600);
    assert_int_equal(info.not_after, f->now + 3652 * (int64_t)DAY);
    assert_true(strlen(info.serial_hex) >= 24 && strlen(info.serial_hex) <= 32);
    ck_cert_info_free(&info);

    assert_int_equal(X509_get_pathlen(root), 0);
    assert_true(ext_critical(root, NID_basic_constraints));
    assert_true(ext_critical(root, NID_key_usage));
    assert_int_equal(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(root));
    assert_int_equal(X509_get_version(root), X509_VERSION_3);
    X509_free(root);
}

static void test_root_key_opens_only_with_its_aad(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    X509 *root = x509_of(f->ca.cert_pem);
    EVP_PKEY *key =
        ck_unseal_private_key(&f->mk, CA_AAD, f->ca.sealed_key, f->ca.sealed_key_len, &err);
    assert_non_null(key);
    assert_int_equal(X509_check_private_key(root, key), 1);
    EVP_PKEY_free(key);

    assert_null(ck_unseal_private_key(&f->mk, "certkeep/ca/other-tenant/key", f->ca.sealed_key,
                                      f->ca.sealed_key_len, &err));
    assert_string_equal(err.code, "unseal_failed");
    ck_master_key other = f->mk;
    other.bytes[0] ^= 1;
    assert_null(
        ck_unseal_private_key(&other, CA_AAD, f->ca.sealed_key, f->ca.sealed_key_len, &err));
    /* Signing with the wrong tenant's id fails the same way. */
    char *csr = csr_for(f->ec_key, "a.example.com", NULL, (const char *[]){"a.example.com"}, 1);
    assert_null(ck_local_ca_sign(&f->mk, "other-tenant", &f->ca, csr, DAY, f->now, &err));
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "unseal_failed");
    free(csr);
    X509_free(root);
}

static void test_root_bad_input_refused(void **state)
{
    struct fixture *f = *state;
    char long_name[CK_LOCAL_CA_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    static const struct {
        const char *name, *id, *code;
    } cases[] = {
        {"", CA_ID, "invalid_ca_name"},
        {NULL, CA_ID, "invalid_ca_name"},
        {"a\nb", CA_ID, "invalid_ca_name"},
        {"Lab", "", "invalid_ca_id"},
        {"Lab", "a/b", "invalid_ca_id"},
        {"Lab", NULL, "invalid_ca_id"},
        {"bad \xff utf8", CA_ID, "invalid_ca_name"},
    };
    for (size_t i = 0; i < CK_ARRAY_LEN(cases); i++) {
        struct ck_local_ca ca = {.cert_pem = (char *)"stale"};
        ck_error err = {0};
        assert_int_equal(ck_local_ca_create(&f->mk, cases[i].name, cases[i].id, f->now, &ca, &err),
                         -1);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, cases[i].code);
        assert_null(ca.cert_pem);
        assert_null(ca.sealed_key);
    }
    struct ck_local_ca ca = {0};
    ck_error err = {0};
    assert_int_equal(ck_local_ca_create(&f->mk, long_name, CA_ID, f->now, &ca, &err), -1);
    assert_string_equal(err.code, "invalid_ca_name");
    ck_local_ca_free(&ca);
    ck_local_ca_free(NULL);
}

/* ---- leaves ---- */

static void assert_serial_sane(X509 *leaf)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_false(BN_is_zero(bn));
    assert_true(BN_num_bits(bn) <= 128);
    /* 128 random bits with the top one cleared: below 2^100 once in 2^27 runs. */
    assert_true(BN_num_bits(bn) > 100);
    BN_free(bn);
}

static void assert_same_key_id(X509 *leaf, X509 *root)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(leaf);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(root);
    assert_non_null(aki);
    assert_non_null(ski);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
    assert_non_null(X509_get0_subject_key_id(leaf));
}

static void test_sign_ec_csr(void **state)
{
    struct fixture *f = *state;
    const char *sans[] = {"shop.example.com", "www.example.com", "192.0.2.7"};
    char *csr = csr_for(f->ec_key, "shop.example.com", "Example Inc", sans, 3);
    char *pem = sign_ok(f, csr, 90 * DAY);
    X509 *leaf = x509_of(pem), *root = x509_of(f->ca.cert_pem);
    struct ck_cert_info info = {0};
    assert_int_equal(ck_cert_info_from_x509(leaf, &info, NULL), 0);
    assert_string_equal(info.subject.cn, "shop.example.com");
    assert_string_equal(info.subject.o, "Example Inc");
    assert_null(info.subject.ou);
    assert_string_equal(info.issuer.cn, "Acme Corp Lab CA");
    assert_int_equal(info.dns_sans.len, 2);
    assert_string_equal(info.dns_sans.items[0], "shop.example.com");
    assert_string_equal(info.dns_sans.items[1], "www.example.com");
    assert_int_equal(info.ip_sans.len, 1);
    assert_string_equal(info.ip_sans.items[0], "192.0.2.7");
    assert_false(info.is_ca);
    assert_false(info.self_signed);
    assert_string_equal(info.key_name, "ec-p256");
    assert_string_equal(info.sig_alg, "ecdsa-with-SHA256");
    assert_int_equal(info.not_before, f->now - 60);
    assert_int_equal(info.not_after, f->now + 90 * DAY);
    ck_cert_info_free(&info);

    assert_true(ext_critical(leaf, NID_basic_constraints));
    assert_true(ext_critical(leaf, NID_key_usage));
    assert_false(ext_critical(leaf, NID_subject_alt_name));
    assert_false(ext_critical(leaf, NID_ext_key_usage));
    assert_int_equal(X509_check_ca(leaf), 0);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    assert_serial_sane(leaf);
    assert_same_key_id(leaf, root);

    assert_int_equal(verify_leaf(f, leaf, "www.example.com", f->now), X509_V_OK);
    assert_int_equal(verify_leaf(f, leaf, "shop.example.com", f->now), X509_V_OK);
    assert_int_equal(verify_leaf(f, leaf, "other.example.com", f->now),
                     X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify_leaf(f, leaf, "www.example.com", f->now + 91 * DAY),
                     X509_V_ERR_CERT_HAS_EXPIRED);
    X509_free(leaf);
    X509_free(root);
    free(pem);
    free(csr);
}

static void test_sign_rsa_csr(void **state)
{
    struct fixture *f = *state;
    const char *sans[] = {"*.apps.example.net", "apps.example.net"};
    char *csr = csr_for(f->rsa_key, "apps.example.net", NULL, sans, 2);
    char *pem = sign_ok(f, csr, 30 * DAY);
    X509 *leaf = x509_of(pem);
    struct ck_cert_info info = {0};
    assert_int_equal(ck_cert_info_from_x509(leaf, &info, NULL), 0);
    assert_string_equal(info.key_name, "rsa-2048");
    assert_string_equal(info.subject.cn, "apps.example.net");
    assert_null(info.subject.o);
    assert_int_equal(info.dns_sans.len, 2);
    assert_string_equal(info.dns_sans.items[0], "*.apps.example.net");
    assert_int_equal(info.not_after, f->now + 30 * DAY);
    ck_cert_info_free(&info);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
    assert_serial_sane(leaf);
    assert_int_equal(verify_leaf(f, leaf, "api.apps.example.net", f->now), X509_V_OK);
    assert_int_equal(verify_leaf(f, leaf, "apps.example.net", f->now), X509_V_OK);
    X509_free(leaf);
    free(pem);
    free(csr);
}

/* What every issued certificate goes through before certkeep relies on it. */
static void test_leaf_passes_the_import_checks(void **state)
{
    struct fixture *f = *state;
    const char *sans[] = {"shop.example.com", "www.example.com"};
    char *csr = csr_for(f->ec_key, "shop.example.com", "Example Inc", sans, 2);
    char *pem = sign_ok(f, csr, 90 * DAY);
    ck_error err = {0};
    X509_STORE *trust = ck_trust_store_new(f->ca.cert_pem, &err);
    assert_non_null(trust);
    struct ck_import_input in = {
        .cert_pem = pem,
        .cert_len = strlen(pem),
        .chain_pem = f->ca.cert_pem,
        .chain_len = strlen(f->ca.cert_pem),
        .csr_pem = csr,
        .order_key = f->ec_key,
        .trust = trust,
        .now = f->now,
    };
    struct ck_import_result r = {0};
    assert_int_equal(ck_import_check(&in, &r, &err), 0);
    for (size_t i = 0; i < r.errors.len; i++)
        fprintf(stderr, "# import error %s: %s\n", r.errors.items[i].code,
                r.errors.items[i].message);
    assert_int_equal(r.errors.len, 0);
    for (size_t i = 0; i < r.warnings.len; i++)
        assert_string_equal(r.warnings.items[i].code, "chain_extras_removed");
    assert_non_null(r.fullchain_pem);
    ck_import_result_free(&r);
    X509_STORE_free(trust);
    free(pem);
    free(csr);
}

static void test_serials_never_repeat(void **state)
{
    struct fixture *f = *state;
    char *csr = csr_for(f->ec_key, "a.example.com", NULL, (const char *[]){"a.example.com"}, 1);
    char serials[SIGNINGS][132];
    for (int i = 0; i < SIGNINGS; i++) {
        char *pem = sign_ok(f, csr, DAY);
        struct ck_cert_info info = {0};
        assert_int_equal(ck_cert_info_from_pem(pem, strlen(pem), &info, NULL), 0);
        snprintf(serials[i], sizeof(serials[i]), "%s", info.serial_hex);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(serials[i], serials[j]);
        ck_cert_info_free(&info);
        free(pem);
    }
    free(csr);
}

static void test_lifetimes(void **state)
{
    struct fixture *f = *state;
    char *csr = csr_for(f->ec_key, "a.example.com", NULL, (const char *[]){"a.example.com"}, 1);
    char *pem = sign_ok(f, csr, 40);
    X509 *leaf = x509_of(pem);
    struct ck_cert_info info = {0};
    assert_int_equal(ck_cert_info_from_x509(leaf, &info, NULL), 0);
    assert_int_equal(info.not_after, f->now + 40);
    ck_cert_info_free(&info);
    assert_int_equal(verify_leaf(f, leaf, "a.example.com", f->now + 39), X509_V_OK);
    assert_int_equal(verify_leaf(f, leaf, "a.example.com", f->now + 41),
                     X509_V_ERR_CERT_HAS_EXPIRED);
    X509_free(leaf);
    free(pem);

    pem = sign_ok(f, csr, CK_LOCAL_CA_LIFETIME_MAX);
    free(pem);
    sign_refused(f, csr, 0, 400, "invalid_lifetime", "0 seconds");
    sign_refused(f, csr, -40, 400, "invalid_lifetime", "-40 seconds");
    sign_refused(f, csr, 400 * DAY, 400, "invalid_lifetime", "398 days");
    sign_refused(f, csr, CK_LOCAL_CA_LIFETIME_MAX + 1, 400, "invalid_lifetime", "398 days");
    free(csr);
}

static void test_ca_expiring_first_refused(void **state)
{
    struct fixture *f = *state;
    char *csr = csr_for(f->ec_key, "a.example.com", NULL, (const char *[]){"a.example.com"}, 1);
    ck_error err = {0};
    int64_t late = f->now + 3650 * (int64_t)DAY;
    assert_null(ck_local_ca_sign(&f->mk, CA_ID, &f->ca, csr, 90 * DAY, late, &err));
    assert_int_equal(err.status, 409);
    assert_string_equal(err.code, "ca_expires_first");
    char *pem = ck_local_ca_sign(&f->mk, CA_ID, &f->ca, csr, DAY, late, &err);
    assert_non_null(pem);
    free(pem);
    free(csr);
}

static char *with_broken_signature(const char *csr_pem)
{
    BIO *in = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    assert_non_null(req);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    assert_true(len > 10);
    der[len - 3] ^= 0x01; /* inside the signature value, the last field of the request */
    const unsigned char *p = der;
    X509_REQ *broken = d2i_X509_REQ(NULL, &p, len);
    assert_non_null(broken);
    BIO *out = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(out, broken), 1);
    char *data = NULL;
    long out_len = BIO_get_mem_data(out, &data);
    char *pem = strndup(data, (size_t)out_len);
    BIO_free(out);
    X509_REQ_free(broken);
    OPENSSL_free(der);
    X509_REQ_free(req);
    BIO_free(in);
    return pem;
}

static void test_bad_csrs_refused(void **state)
{
    struct fixture *f = *state;
    char *good = csr_for(f->rsa_key, "a.example.com", NULL, (const char *[]){"a.example.com"}, 1);
    char *broken = with_broken_signature(good);
    sign_refused(f, broken, DAY, 400, "csr_signature_invalid", "signature does not verify");
    sign_refused(f, "hello, I am a CSR", DAY, 400, "invalid_csr", "not a PEM certificate request");
    sign_refused(f, "", DAY, 400, "invalid_csr", "empty");
    sign_refused(f, NULL, DAY, 400, "invalid_csr", "empty");
    sign_refused(f, f->ca.cert_pem, DAY, 400, "invalid_csr", "BEGIN CERTIFICATE REQUEST");
    /* Truncated: the first half of a good CSR. */
    char *half = strndup(good, strlen(good) / 2);
    sign_refused(f, half, DAY, 400, "invalid_csr", "not a PEM");
    free(half);
    free(broken);
    free(good);
}

static void test_csr_names_checked(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *cn, *sans, *says;
    } cases[] = {
        {"a.example.com", NULL, "no subjectAltName"},
        {"a.example.com", "DNS:a.example.com,email:admin@example.com", "only DNS names and IP"},
        {"a.example.com", "DNS:a.example.com,URI:https://evil.example/", "only DNS names and IP"},
        {"a.example.com", "DNS:bad_name..example.com", "bad_name..example.com"},
        {"a.example.com", "DNS:*.*.example.com", "*.*.example.com"},
    };
    for (size_t i = 0; i < CK_ARRAY_LEN(cases); i++) {
        char *csr = raw_csr(f->ec_key, cases[i].cn, cases[i].sans);
        sign_refused(f, csr, DAY, 400, "csr_names_invalid", cases[i].says);
        free(csr);
    }
}

static void test_weak_csr_key_refused(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY *weak = EVP_RSA_gen(1024);
    assert_non_null(weak);
    char *csr = raw_csr(weak, "a.example.com", "DNS:a.example.com");
    sign_refused(f, csr, DAY, 400, "invalid_key_type", "rsa-1024");
    free(csr);
    EVP_PKEY_free(weak);
}

static void test_subject_filtered_and_empty_subject(void **state)
{
    struct fixture *f = *state;
    /* Only CN, O, OU, L, ST and C reach the certificate. */
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_REQ_set_pubkey(req, f->ec_key), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                                                (const unsigned char *)"DE", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "emailAddress", MBSTRING_UTF8,
                                                (const unsigned char *)"x@example.com", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"b.example.com", -1, -1, 0),
                     1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(
        exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:b.example.com"));
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, f->ec_key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(bio, req);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *csr = strndup(data, (size_t)len);
    BIO_free(bio);
    X509_REQ_free(req);

    char *pem = sign_ok(f, csr, DAY);
    X509 *leaf = x509_of(pem);
    char text[256];
    X509_NAME_oneline(X509_get_subject_name(leaf), text, sizeof(text));
    assert_string_equal(text, "/C=DE/CN=b.example.com");
    X509_free(leaf);
    free(pem);
    free(csr);

    /* No subject at all: the SAN carries the names and is critical. */
    csr = raw_csr(f->ec_key, NULL, "DNS:c.example.com");
    pem = sign_ok(f, csr, DAY);
    leaf = x509_of(pem);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
    assert_true(ext_critical(leaf, NID_subject_alt_name));
    assert_int_equal(verify_leaf(f, leaf, "c.example.com", f->now), X509_V_OK);
    X509_free(leaf);
    free(pem);
    free(csr);
}

static void test_damaged_ca_refused(void **state)
{
    struct fixture *f = *state;
    char *csr = csr_for(f->ec_key, "a.example.com", NULL, (const char *[]){"a.example.com"}, 1);
    ck_error err = {0};
    /* The key of another CA, sealed for this one's place: it opens but does not match. */
    struct ck_local_ca other = {0};
    assert_int_equal(ck_local_ca_create(&f->mk, "Other", CA_ID, f->now, &other, &err), 0);
    struct ck_local_ca mixed = {.cert_pem = f->ca.cert_pem,
                                .sealed_key = other.sealed_key,
                                .sealed_key_len = other.sealed_key_len};
    assert_null(ck_local_ca_sign(&f->mk, CA_ID, &mixed, csr, DAY, f->now, &err));
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "ca_invalid");
    assert_contains(err.message, "does not match");

    struct ck_local_ca no_cert = {.cert_pem = (char *)"garbage",
                                  .sealed_key = other.sealed_key,
                                  .sealed_key_len = other.sealed_key_len};
    assert_null(ck_local_ca_sign(&f->mk, CA_ID, &no_cert, csr, DAY, f->now, &err));
    assert_string_equal(err.code, "ca_invalid");
    struct ck_local_ca empty = {0};
    assert_null(ck_local_ca_sign(&f->mk, CA_ID, &empty, csr, DAY, f->now, &err));
    assert_string_equal(err.code, "ca_invalid");
    assert_null(ck_local_ca_sign(&f->mk, CA_ID, NULL, csr, DAY, f->now, &err));
    assert_string_equal(err.code, "ca_invalid");
    ck_local_ca_free(&other);
    free(csr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_properties),
        cmocka_unit_test(test_root_key_opens_only_with_its_aad),
        cmocka_unit_test(test_root_bad_input_refused),
        cmocka_unit_test(test_sign_ec_csr),
        cmocka_unit_test(test_sign_rsa_csr),
        cmocka_unit_test(test_leaf_passes_the_import_checks),
        cmocka_unit_test(test_serials_never_repeat),
        cmocka_unit_test(test_lifetimes),
        cmocka_unit_test(test_ca_expiring_first_refused),
        cmocka_unit_test(test_bad_csrs_refused),
        cmocka_unit_test(test_csr_names_checked),
        cmocka_unit_test(test_weak_csr_key_refused),
        cmocka_unit_test(test_subject_filtered_and_empty_subject),
        cmocka_unit_test(test_damaged_ca_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
