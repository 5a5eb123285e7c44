#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "core/import_check.h"
#include "crypto/csr.h"
#include "crypto/keys.h"

#define DAY 86400
/* 2026-09-15: every certificate below is dated relative to this, never to the wall clock. */
#define NOW ((int64_t)1789430400)

struct fixture {
    EVP_PKEY *root_key, *inter_key, *order_key, *other_key, *third_key, *weak_key;
    X509 *root, *inter;
    char *root_pem, *inter_pem, *csr_pem;
    X509_STORE *trust;         /* system roots + the test root */
    X509_STORE *trust_without; /* system roots only */
};

/* What a test certificate looks like; zero fields take the defaults of a good leaf. */
struct cert_spec {
    const char *cn, *o;
    const char *sans;     /* "DNS:a,DNS:b"; NULL for the CSR's names, "" for none */
    const char *eku;      /* NULL: serverAuth; "" for none */
    X509 *issuer;         /* NULL: self-signed */
    EVP_PKEY *issuer_key; /* NULL: subject key */
    EVP_PKEY *key;
    bool ca;
    int64_t not_before, not_after; /* 0: NOW - 1 day, NOW + 90 days */
    const EVP_MD *md;              /* NULL: SHA-256 */
    long serial;
};

/* ---- building certificates ---- */

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static void set_subject(X509 *cert, const struct cert_spec *s)
{
    X509_NAME *name = X509_get_subject_name(cert);
    if (s->ca == false) {
        X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"DE", -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)(s->o ? s->o : "Example Inc"), -1, -1, 0);
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)s->cn, -1, -1, 0);
}

static void add_extensions(X509 *cert, X509 *issuer, const struct cert_spec *s)
{
    add_ext(cert, issuer, NID_subject_key_identifier, "hash");
    if (s->issuer != NULL)
        add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
    if (s->ca) {
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    } else {
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    }
    const char *eku = s->eku ? s->eku : (s->ca ? "" : "serverAuth");
    if (eku[0] != '\0')
        add_ext(cert, issuer, NID_ext_key_usage, eku);
    const char *sans =
        s->sans ? s->sans : (s->ca ? "" : "DNS:shop.example.com,DNS:www.shop.example.com");
    if (sans[0] != '\0')
        add_ext(cert, issuer, NID_subject_alt_name, sans);
}

static X509 *make_cert(const struct cert_spec *s)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), s->serial ? s->serial : 1000);
    ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)(s->not_before ? s->not_before : NOW - DAY));
    ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(s->not_after ? s->not_after : NOW + 90 * DAY));
    assert_int_equal(X509_set_pubkey(cert, s->key), 1);
    set_subject(cert, s);
    X509 *issuer = s->issuer ? s->issuer : cert;
    assert_int_equal(X509_set_issuer_name(cert, X509_get_subject_name(issuer)), 1);
    add_extensions(cert, issuer, s);
    assert_true(
        X509_sign(cert, s->issuer_key ? s->issuer_key : s->key, s->md ? s->md : EVP_sha256()) > 0);
    return cert;
}

static char *pem_of(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *out = calloc(1, (size_t)len + 1);
    memcpy(out, data, (size_t)len);
    BIO_free(bio);
    return out;
}

/* A copy of a and b one after the other; NULL parts count as empty. */
static char *concat(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    char *out = malloc(la + lb + 1);
    memcpy(out, a ? a : "", la);
    memcpy(out + la, b ? b : "", lb);
    out[la + lb] = '\0';
    return out;
}

static EVP_PKEY *rsa_key(unsigned bits)
{
    EVP_PKEY *key = EVP_RSA_gen(bits);
    assert_non_null(key);
    return key;
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->root_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    f->inter_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    f->order_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    f->other_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    f->third_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    f->weak_key = rsa_key(1024);
    f->root = make_cert(&(struct cert_spec){.cn = "certkeep Test Root",
                                            .key = f->root_key,
                                            .ca = true,
                                            .serial = 1,
                                            .not_before = NOW - 400 * DAY,
                                            .not_after = NOW + 4000 * DAY});
    f->inter = make_cert(&(struct cert_spec){.cn = "certkeep Test Intermediate",
                                             .key = f->inter_key,
                                             .ca = true,
                                             .issuer = f->root,
                                             .issuer_key = f->root_key,
                                             .serial = 2,
                                             .not_before = NOW - 300 * DAY,
                                             .not_after = NOW + 2000 * DAY});
    f->root_pem = pem_of(f->root);
    f->inter_pem = pem_of(f->inter);
    ck_strv sans = {0};
    ck_strv_push(&sans, "shop.example.com");
    ck_strv_push(&sans, "www.shop.example.com");
    f->csr_pem =
        ck_csr_create(f->order_key,
                      &(struct ck_csr_request){
                          .cn = "shop.example.com", .sans = &sans, .o = "Example Inc", .c = "DE"},
                      NULL);
    ck_strv_free(&sans);
    assert_non_null(f->csr_pem);
    f->trust = ck_trust_store_new(f->root_pem, NULL);
    f->trust_without = ck_trust_store_new(NULL, NULL);
    assert_non_null(f->trust);
    assert_non_null(f->trust_without);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY_free(f->root_key);
    EVP_PKEY_free(f->inter_key);
    EVP_PKEY_free(f->order_key);
    EVP_PKEY_free(f->other_key);
    EVP_PKEY_free(f->third_key);
    EVP_PKEY_free(f->weak_key);
    X509_free(f->root);
    X509_free(f->inter);
    free(f->root_pem);
    free(f->inter_pem);
    free(f->csr_pem);
    X509_STORE_free(f->trust);
    X509_STORE_free(f->trust_without);
    free(f);
    return 0;
}

/* A leaf issued by the test intermediate; spec fields left zero take the good defaults. */
static char *leaf_pem(const struct fixture *f, struct cert_spec s)
{
    if (s.cn == NULL)
        s.cn = "shop.example.com";
    if (s.key == NULL)
        s.key = f->order_key;
    if (s.issuer == NULL) {
        s.issuer = f->inter;
        s.issuer_key = f->inter_key;
    }
    X509 *cert = make_cert(&s);
    char *pem = pem_of(cert);
    X509_free(cert);
    return pem;
}

/* ---- running the check ---- */

static void run_with(const struct fixture *f, const char *cert, const char *chain,
                     X509_STORE *trust, EVP_PKEY *order_key, struct ck_import_result *out)
{
    struct ck_import_input in = {
        .cert_pem = cert,
        .cert_len = cert ? strlen(cert) : 0,
        .chain_pem = chain,
        .chain_len = chain ? strlen(chain) : 0,
        .csr_pem = f->csr_pem,
        .order_key = order_key,
        .trust = trust,
        .now = NOW,
    };
    memset(out, 0, sizeof(*out));
    ck_error err;
    ck_error_clear(&err);
    if (ck_import_check(&in, out, &err) != 0)
        fail_msg("ck_import_check failed: %s: %s", err.code, err.message);
}

static void run(const struct fixture *f, const char *cert, const char *chain,
                struct ck_import_result *out)
{
    run_with(f, cert, chain, f->trust, f->order_key, out);
}

static size_t count_code(const struct ck_findings *fs, const char *code)
{
    size_t n = 0;
    for (size_t i = 0; i < fs->len; i++)
        n += strcmp(fs->items[i].code, code) == 0;
    return n;
}

static const char *message_of(const struct ck_findings *fs, const char *code)
{
    for (size_t i = 0; i < fs->len; i++)
        if (strcmp(fs->items[i].code, code) == 0)
            return fs->items[i].message;
    return NULL;
}

static void print_findings(const char *what, const struct ck_findings *fs)
{
    for (size_t i = 0; i < fs->len; i++)
        print_message("# %s %s: %s\n", what, fs->items[i].code, fs->items[i].message);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

/* The import was refused for exactly one reason, `code`, and the user is told nothing else. */
static void assert_only_error(const struct ck_import_result *r, const char *code)
{
    if (r->errors.len != 1 || strcmp(r->errors.items[0].code, code) != 0) {
        print_findings("error", &r->errors);
        fail_msg("expected only error %s, got %zu errors", code, r->errors.len);
    }
    assert_null(r->fullchain_pem);
}

static void assert_only_warning(const struct ck_import_result *r, const char *code)
{
    if (r->errors.len != 0 || r->warnings.len != 1 ||
        strcmp(r->warnings.items[0].code, code) != 0) {
        print_findings("error", &r->errors);
        print_findings("warning", &r->warnings);
        fail_msg("expected only warning %s", code);
    }
}

/* ---- a clean import ---- */

static void test_clean_import(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    print_findings("error", &r.errors);
    print_findings("warning", &r.warnings);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(r.warnings.len, 0);
    assert_non_null(r.leaf);
    assert_int_equal(sk_X509_num(r.chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(r.chain, 0), f->inter), 0);
    char *expected = concat(leaf, f->inter_pem);
    assert_string_equal(r.fullchain_pem, expected);
    free(expected);
    ck_import_result_free(&r);
    free(leaf);
}

/* An order started from an uploaded CSR has no key of its own: the CSR's key is the reference. */
static void test_clean_import_with_csr_key(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    struct ck_import_result r;
    run_with(f, leaf, f->inter_pem, f->trust, NULL, &r);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(r.warnings.len, 0);
    ck_import_result_free(&r);
    free(leaf);
    char *stranger = leaf_pem(f, (struct cert_spec){.key = f->other_key});
    run_with(f, stranger, f->inter_pem, f->trust, NULL, &r);
    assert_only_error(&r, "key_mismatch");
    ck_import_result_free(&r);
    free(stranger);
}

/* The user pasted the whole fullchain into the certificate field and nothing in the chain. */
static void test_chain_pasted_in_body(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    char *body = concat(leaf, f->inter_pem);
    struct ck_import_result r;
    run(f, body, NULL, &r);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(r.warnings.len, 0);
    assert_string_equal(r.fullchain_pem, body);
    ck_import_result_free(&r);
    free(body);
    free(leaf);
}

static void test_der_body(void **state)
{
    struct fixture *f = *state;
    X509 *cert = make_cert(&(struct cert_spec){.cn = "shop.example.com",
                                               .key = f->order_key,
                                               .issuer = f->inter,
                                               .issuer_key = f->inter_key});
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    assert_true(len > 0);
    struct ck_import_input in = {.cert_pem = (const char *)der,
                                 .cert_len = (size_t)len,
                                 .chain_pem = f->inter_pem,
                                 .chain_len = strlen(f->inter_pem),
                                 .csr_pem = f->csr_pem,
                                 .order_key = f->order_key,
                                 .trust = f->trust,
                                 .now = NOW};
    struct ck_import_result r = {0};
    assert_int_equal(ck_import_check(&in, &r, NULL), 0);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(X509_cmp(r.leaf, cert), 0);
    ck_import_result_free(&r);
    OPENSSL_free(der);
    X509_free(cert);
}

/* ---- the chain as users paste it ---- */

static void test_chain_reversed_duplicated_with_root(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    /* root, intermediate, intermediate again, the leaf again */
    char *a = concat(f->root_pem, f->inter_pem);
    char *b = concat(a, f->inter_pem);
    char *chain = concat(b, leaf);
    struct ck_import_result r;
    run(f, leaf, chain, &r);
    print_findings("warning", &r.warnings);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(count_code(&r.warnings, "chain_reordered"), 1);
    assert_int_equal(count_code(&r.warnings, "chain_extras_removed"), 1);
    assert_int_equal(r.warnings.len, 2);
    const char *removed = message_of(&r.warnings, "chain_extras_removed");
    assert_contains(removed, "1 duplicate");
    assert_contains(removed, "1 root");
    assert_contains(removed, "certkeep Test Root");
    assert_contains(removed, "the certificate itself given again");
    /* what servers will send: the leaf and the intermediate, once each, no root */
    assert_int_equal(sk_X509_num(r.chain), 1);
    char *expected = concat(leaf, f->inter_pem);
    assert_string_equal(r.fullchain_pem, expected);
    free(expected);
    ck_import_result_free(&r);
    free(chain);
    free(b);
    free(a);
    free(leaf);
}

/* Two intermediates given top first: certkeep puts them in leaf-to-root order. */
static void test_two_intermediates_reordered(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY *key2 = ck_key_generate(CK_KEY_EC_P256, NULL);
    X509 *inter2 = make_cert(&(struct cert_spec){.cn = "certkeep Test Issuing CA",
                                                 .key = key2,
                                                 .ca = true,
                                                 .issuer = f->inter,
                                                 .issuer_key = f->inter_key,
                                                 .serial = 3,
                                                 .not_before = NOW - 200 * DAY,
                                                 .not_after = NOW + 1000 * DAY});
    char *leaf = leaf_pem(f, (struct cert_spec){.issuer = inter2, .issuer_key = key2});
    char *inter2_pem = pem_of(inter2);
    char *chain = concat(f->inter_pem, inter2_pem);
    struct ck_import_result r;
    run(f, leaf, chain, &r);
    assert_only_warning(&r, "chain_reordered");
    assert_contains(r.warnings.items[0].message,
                    "CN=certkeep Test Issuing CA, CN=certkeep Test Intermediate");
    assert_int_equal(sk_X509_num(r.chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(r.chain, 0), inter2), 0);
    assert_int_equal(X509_cmp(sk_X509_value(r.chain, 1), f->inter), 0);
    ck_import_result_free(&r);
    /* the same two in the right order: nothing to say */
    char *ordered = concat(inter2_pem, f->inter_pem);
    run(f, leaf, ordered, &r);
    assert_int_equal(r.errors.len + r.warnings.len, 0);
    ck_import_result_free(&r);
    free(ordered);
    free(chain);
    free(inter2_pem);
    free(leaf);
    X509_free(inter2);
    EVP_PKEY_free(key2);
}

static void test_unrelated_certificate_in_chain(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    char *stranger = leaf_pem(
        f, (struct cert_spec){.cn = "other.example.net", .key = f->other_key, .serial = 77});
    char *chain = concat(f->inter_pem, stranger);
    struct ck_import_result r;
    run(f, leaf, chain, &r);
    assert_only_warning(&r, "chain_extras_removed");
    assert_contains(r.warnings.items[0].message, "1 unrelated certificate (CN=other.example.net");
    ck_import_result_free(&r);
    free(chain);
    free(stranger);
    free(leaf);
}

/* ---- each error on its own ---- */

static void check_one_error(const struct fixture *f, struct cert_spec spec, const char *code,
                            const char *says)
{
    char *leaf = leaf_pem(f, spec);
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_only_error(&r, code);
    assert_contains(r.errors.items[0].message, says);
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_wrong_key(void **state)
{
    check_one_error(*state, (struct cert_spec){.key = ((struct fixture *)*state)->other_key},
                    "key_mismatch", "does not match this order's private key");
}

static void test_error_wrong_cn(void **state)
{
    check_one_error(*state, (struct cert_spec){.cn = "shop.example.org"}, "cn_mismatch",
                    "certificate CN shop.example.org does not match the CSR's CN "
                    "shop.example.com");
}

static void test_cn_case_does_not_matter(void **state)
{
    struct fixture *f = *state;
    /* the CN is written as its SAN entry is (BR 7.1.4.3); both differ from the CSR in case */
    char *leaf = leaf_pem(f, (struct cert_spec){.cn = "Shop.Example.COM",
                                                .sans = "DNS:Shop.Example.COM,"
                                                        "DNS:www.shop.EXAMPLE.com"});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_int_equal(r.errors.len + r.warnings.len, 0);
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_expired(void **state)
{
    check_one_error(*state,
                    (struct cert_spec){.not_before = NOW - 400 * DAY, .not_after = NOW - DAY},
                    "expired", "expired on 2026-09-14");
}

static void test_error_not_yet_valid(void **state)
{
    check_one_error(*state,
                    (struct cert_spec){.not_before = NOW + 2 * DAY, .not_after = NOW + 92 * DAY},
                    "not_yet_valid", "not valid before 2026-09-17");
}

static void test_error_sha1_signature(void **state)
{
    check_one_error(*state, (struct cert_spec){.md = EVP_sha1()}, "weak_signature", "SHA1");
}

static void test_error_rsa_1024_key(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.key = f->weak_key});
    struct ck_import_result r;
    run_with(f, leaf, f->inter_pem, f->trust, f->weak_key, &r);
    assert_only_error(&r, "weak_key");
    assert_contains(r.errors.items[0].message, "rsa-1024");
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_ca_leaf(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.ca = true,
                                                .sans = "DNS:shop.example.com,"
                                                        "DNS:www.shop.example.com",
                                                .eku = "serverAuth",
                                                .o = "Example Inc"});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    /* the CA test certificates carry no O or C; only the error matters here */
    assert_int_equal(r.errors.len, 1);
    assert_string_equal(r.errors.items[0].code, "ca_certificate");
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_eku_without_server_auth(void **state)
{
    check_one_error(*state, (struct cert_spec){.eku = "clientAuth,emailProtection"},
                    "missing_server_auth", "serverAuth");
}

/* The Baseline Requirements want serverAuth stated; `certkeep verify` refuses it too. */
/* The issue refuses "missing serverAuth in an extended key usage that is present": an absent
 * EKU allows every use, so it is only a warning. */
static void test_warning_no_eku(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.eku = ""});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_only_warning(&r, "no_extended_key_usage");
    assert_non_null(r.fullchain_pem);
    ck_import_result_free(&r);
    free(leaf);
}

/* A rule only the shared verifier knows is refused as untrusted_chain, in its words. */
static void test_error_verifier_rule(void **state)
{
    check_one_error(*state, (struct cert_spec){.eku = "serverAuth,anyExtendedKeyUsage"},
                    "untrusted_chain",
                    "leaf certificate (CN=shop.example.com,O=Example Inc,C=DE): has "
                    "anyExtendedKeyUsage, which server certificates must not");
}

/* Every problem of the leaf that has its own code, all at once: none of them is repeated as
 * untrusted_chain, and the chain itself is fine. */
static void test_leaf_problems_not_repeated_as_untrusted(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.key = f->weak_key,
                                                .ca = true,
                                                .o = "Example Inc",
                                                .sans = "DNS:shop.example.com,"
                                                        "DNS:www.shop.example.com",
                                                .eku = "clientAuth",
                                                .md = EVP_sha1(),
                                                .not_before = NOW - 400 * DAY,
                                                .not_after = NOW - DAY});
    struct ck_import_result r;
    run_with(f, leaf, f->inter_pem, f->trust, f->weak_key, &r);
    print_findings("error", &r.errors);
    const char *codes[] = {"weak_key", "ca_certificate", "missing_server_auth", "weak_signature",
                           "expired"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(count_code(&r.errors, codes[i]), 1);
    assert_int_equal(count_code(&r.errors, "untrusted_chain"), 0);
    assert_int_equal(r.errors.len, 5);
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_unknown_root(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    struct ck_import_result r;
    run_with(f, leaf, f->inter_pem, f->trust_without, f->order_key, &r);
    assert_only_error(&r, "untrusted_chain");
    assert_contains(r.errors.items[0].message, "unable to get local issuer certificate");
    assert_contains(r.errors.items[0].message,
                    "no trusted root or given intermediate is the issuer CN=certkeep Test Root "
                    "of CN=certkeep Test Intermediate");
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_missing_intermediate(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    struct ck_import_result r;
    run(f, leaf, "", &r);
    assert_only_error(&r, "untrusted_chain");
    assert_contains(r.errors.items[0].message, "CN=certkeep Test Intermediate");
    assert_int_equal(sk_X509_num(r.chain), 0);
    ck_import_result_free(&r);
    free(leaf);
}

static void test_error_garbage(void **state)
{
    struct fixture *f = *state;
    struct ck_import_result r;
    run(f, "hello, this is my certificate!", NULL, &r);
    assert_only_error(&r, "not_pem");
    assert_null(r.leaf);
    ck_import_result_free(&r);
    run(f, "   \n", NULL, &r);
    assert_only_error(&r, "not_pem");
    ck_import_result_free(&r);
    run(f, "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n", NULL, &r);
    assert_only_error(&r, "not_pem");
    ck_import_result_free(&r);
}

static void test_error_csr_pasted(void **state)
{
    struct fixture *f = *state;
    struct ck_import_result r;
    run(f, f->csr_pem, NULL, &r);
    assert_only_error(&r, "not_certificate");
    assert_contains(r.errors.items[0].message, "CERTIFICATE REQUEST");
    assert_contains(r.errors.items[0].message, "CSR");
    assert_null(r.leaf);
    ck_import_result_free(&r);
}

/* A CSR in the chain does not stop the certificate itself from being judged. */
static void test_error_csr_in_chain_and_certificate_judged(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.cn = "shop.example.org"});
    char *chain = concat(f->inter_pem, f->csr_pem);
    struct ck_import_result r;
    run(f, leaf, chain, &r);
    assert_int_equal(count_code(&r.errors, "not_certificate"), 1);
    assert_contains(message_of(&r.errors, "not_certificate"), "block 2 of the chain");
    assert_int_equal(count_code(&r.errors, "cn_mismatch"), 1);
    assert_int_equal(r.errors.len, 2);
    ck_import_result_free(&r);
    free(chain);
    free(leaf);
}

static void test_error_two_leaves(void **state)
{
    struct fixture *f = *state;
    char *a = leaf_pem(f, (struct cert_spec){.key = f->other_key, .cn = "a.example.com"});
    char *b = leaf_pem(f, (struct cert_spec){.key = f->third_key, .cn = "b.example.com"});
    char *body = concat(a, b);
    struct ck_import_result r;
    run(f, body, f->inter_pem, &r);
    assert_only_error(&r, "multiple_leaves");
    assert_contains(r.errors.items[0].message, "a.example.com");
    assert_contains(r.errors.items[0].message, "b.example.com");
    assert_null(r.leaf);
    ck_import_result_free(&r);
    free(body);
    free(a);
    free(b);
}

/* One of the two is the order's: refused all the same, and the right one is still judged. */
static void test_error_two_leaves_one_ours(void **state)
{
    struct fixture *f = *state;
    char *ours = leaf_pem(f, (struct cert_spec){.not_after = NOW - DAY});
    char *stranger = leaf_pem(f, (struct cert_spec){.key = f->other_key, .cn = "b.example.com"});
    char *body = concat(stranger, ours);
    struct ck_import_result r;
    run(f, body, f->inter_pem, &r);
    assert_int_equal(count_code(&r.errors, "multiple_leaves"), 1);
    assert_int_equal(count_code(&r.errors, "expired"), 1);
    assert_int_equal(count_code(&r.errors, "key_mismatch"), 0);
    ck_import_result_free(&r);
    free(body);
    free(ours);
    free(stranger);
}

static void test_error_only_ca_pasted(void **state)
{
    struct fixture *f = *state;
    struct ck_import_result r;
    run(f, f->inter_pem, NULL, &r);
    assert_only_error(&r, "no_leaf");
    ck_import_result_free(&r);
}

static void test_error_500_certificates_fast(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    size_t len = strlen(leaf);
    char *body = malloc(500 * len + 1);
    for (size_t i = 0; i < 500; i++)
        memcpy(body + i * len, leaf, len);
    body[500 * len] = '\0';
    struct ck_import_result r;
    clock_t start = clock();
    run(f, body, NULL, &r);
    double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    assert_only_error(&r, "too_many_certificates");
    assert_contains(r.errors.items[0].message, "500");
    assert_true(seconds < 0.5);
    ck_import_result_free(&r);
    /* 21 split over body and chain is refused too; 20 is not */
    run(f, leaf, body + 480 * len, &r);
    assert_only_error(&r, "too_many_certificates");
    ck_import_result_free(&r);
    run(f, leaf, body + 481 * len, &r);
    assert_int_equal(count_code(&r.errors, "too_many_certificates"), 0);
    ck_import_result_free(&r);
    free(body);
    free(leaf);
}

static void test_error_5mib_paste(void **state)
{
    struct fixture *f = *state;
    size_t len = 5u << 20;
    char *body = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        body[i] = "-ABCDEFGHIJ\n"[i % 12];
    body[len] = '\0';
    struct ck_import_result r;
    run(f, body, NULL, &r);
    assert_only_error(&r, "not_pem");
    ck_import_result_free(&r);
    /* one enormous block that claims to be a certificate */
    static const char head[] = "-----BEGIN CERTIFICATE-----\n";
    memcpy(body, head, sizeof(head) - 1);
    for (size_t i = sizeof(head) - 1; i < len; i++)
        body[i] = (i % 65 == 64) ? '\n' : 'A';
    strcpy(body + len - 30, "\n-----END CERTIFICATE-----\n");
    run(f, body, NULL, &r);
    assert_int_equal(r.errors.len, 1);
    assert_null(r.leaf);
    ck_import_result_free(&r);
    free(body);
}

/* Intermediates are judged too: a SHA-1 signature, or one that expired, refuses the import. */
static void check_with_intermediate(const struct fixture *f, struct cert_spec inter_spec,
                                    const char *code, const char *says)
{
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    inter_spec.cn = "certkeep Test Old CA";
    inter_spec.key = key;
    inter_spec.ca = true;
    inter_spec.issuer = f->root;
    inter_spec.issuer_key = f->root_key;
    inter_spec.serial = 4;
    X509 *inter = make_cert(&inter_spec);
    char *inter_pem = pem_of(inter);
    char *leaf = leaf_pem(f, (struct cert_spec){.issuer = inter, .issuer_key = key});
    struct ck_import_result r;
    run(f, leaf, inter_pem, &r);
    assert_only_error(&r, code);
    assert_contains(r.errors.items[0].message, says);
    ck_import_result_free(&r);
    free(leaf);
    free(inter_pem);
    X509_free(inter);
    EVP_PKEY_free(key);
}

static void test_error_sha1_intermediate(void **state)
{
    check_with_intermediate(*state, (struct cert_spec){.md = EVP_sha1()}, "weak_signature",
                            "the intermediate CN=certkeep Test Old CA");
}

static void test_error_expired_intermediate(void **state)
{
    check_with_intermediate(
        *state, (struct cert_spec){.not_before = NOW - 900 * DAY, .not_after = NOW - 2 * DAY},
        "untrusted_chain",
        "CA certificate at depth 1 (CN=certkeep Test Old CA): certificate has expired");
}

static void test_findings_json(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.cn = "shop.example.org", .o = "Other"});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    json_t *errors = ck_findings_to_json(&r.errors);
    json_t *warnings = ck_findings_to_json(&r.warnings);
    assert_int_equal(json_array_size(errors), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "code")),
                        "cn_mismatch");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                        "certificate CN shop.example.org does not match the CSR's CN "
                        "shop.example.com");
    assert_int_equal(json_array_size(warnings), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(warnings, 0), "code")),
                        "subject_mismatch");
    json_decref(errors);
    json_decref(warnings);
    ck_import_result_free(&r);
    free(leaf);
}

/* ---- several errors at once ---- */

static void test_all_errors_listed(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.cn = "shop.example.org",
                                                .not_before = NOW - 400 * DAY,
                                                .not_after = NOW - 10 * DAY,
                                                .md = EVP_sha1()});
    struct ck_import_result r;
    run_with(f, leaf, f->inter_pem, f->trust_without, f->order_key, &r);
    print_findings("error", &r.errors);
    assert_int_equal(count_code(&r.errors, "cn_mismatch"), 1);
    assert_int_equal(count_code(&r.errors, "expired"), 1);
    assert_int_equal(count_code(&r.errors, "untrusted_chain"), 1);
    assert_int_equal(count_code(&r.errors, "weak_signature"), 1);
    assert_int_equal(r.errors.len, 4);
    assert_null(r.fullchain_pem);
    json_t *json = ck_import_result_to_json(&r);
    assert_non_null(json);
    assert_int_equal(json_array_size(json_object_get(json, "errors")), 4);
    json_t *first = json_array_get(json_object_get(json, "errors"), 0);
    assert_non_null(json_string_value(json_object_get(first, "code")));
    assert_non_null(json_string_value(json_object_get(first, "message")));
    assert_int_equal(json_array_size(json_object_get(json, "warnings")), 0);
    json_decref(json);
    ck_import_result_free(&r);
    free(leaf);
}

/* ---- warnings ---- */

static void test_warning_o_differs(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.o = "Example GmbH"});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_only_warning(&r, "subject_mismatch");
    const char *msg = r.warnings.items[0].message;
    assert_contains(msg, "field O ");
    assert_contains(msg, "Example Inc");
    assert_contains(msg, "Example GmbH");
    assert_non_null(r.fullchain_pem);
    ck_import_result_free(&r);
    free(leaf);
}

static void test_warning_san_missing(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.sans = "DNS:shop.example.com"});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_only_warning(&r, "san_missing");
    assert_contains(r.warnings.items[0].message, "www.shop.example.com");
    ck_import_result_free(&r);
    free(leaf);
}

static void test_warning_san_extra(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(f, (struct cert_spec){.sans = "DNS:shop.example.com,"
                                                        "DNS:www.shop.example.com,"
                                                        "DNS:api.shop.example.com,"
                                                        "DNS:example.com"});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(r.warnings.len, 2);
    assert_int_equal(count_code(&r.warnings, "san_extra"), 2);
    assert_contains(r.warnings.items[0].message, "api.shop.example.com");
    assert_contains(r.warnings.items[1].message, "example.com");
    ck_import_result_free(&r);
    free(leaf);
}

/* A certificate with hundreds of names the CSR did not ask for: listed up to a bound, then
 * counted. */
static void test_warning_san_extra_bounded(void **state)
{
    struct fixture *f = *state;
    size_t cap = 300 * 32;
    char *sans = malloc(cap);
    int used = snprintf(sans, cap, "DNS:shop.example.com,DNS:www.shop.example.com");
    for (int i = 0; i < 300; i++)
        used += snprintf(sans + used, cap - (size_t)used, ",DNS:n%d.example.net", i);
    char *leaf = leaf_pem(f, (struct cert_spec){.sans = sans});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_int_equal(r.errors.len, 0);
    assert_int_equal(count_code(&r.warnings, "san_extra"), CK_IMPORT_MAX_PER_CODE);
    assert_contains(r.warnings.items[r.warnings.len - 1].message, "251 more names");
    ck_import_result_free(&r);
    free(leaf);
    free(sans);
}

static void test_warning_10_days_left(void **state)
{
    struct fixture *f = *state;
    char *leaf = leaf_pem(
        f, (struct cert_spec){.not_before = NOW - 80 * DAY, .not_after = NOW + 10 * DAY + 3600});
    struct ck_import_result r;
    run(f, leaf, f->inter_pem, &r);
    assert_only_warning(&r, "expires_soon");
    assert_contains(r.warnings.items[0].message, "10 days");
    ck_import_result_free(&r);
    free(leaf);
}

static void test_trust_store_refuses_non_certificate(void **state)
{
    struct fixture *f = *state;
    ck_error err;
    assert_null(ck_trust_store_new(f->csr_pem, &err));
    assert_string_equal(err.code, "invalid_roots");
}

static void write_file(const char *path, const char *text)
{
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(fputs(text, out) >= 0, 1);
    assert_int_equal(fclose(out), 0);
}

static void assert_clean_with_system_trust(const struct fixture *f, const char *leaf)
{
    X509_STORE *system = ck_trust_store_new(NULL, NULL);
    assert_non_null(system);
    struct ck_import_result r;
    run_with(f, leaf, f->inter_pem, system, f->order_key, &r);
    print_findings("error", &r.errors);
    assert_int_equal(r.errors.len, 0);
    ck_import_result_free(&r);
    X509_STORE_free(system);
}

/* The system's roots come from where OpenSSL looks: $SSL_CERT_FILE, else the hashed directory
 * $SSL_CERT_DIR when the file holds none. */
static void test_trust_store_reads_system_roots(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/ck-import-roots-XXXXXX", bundle[64], hashed[80], missing[64];
    assert_non_null(mkdtemp(dir));
    snprintf(bundle, sizeof(bundle), "%s/bundle.pem", dir);
    snprintf(hashed, sizeof(hashed), "%s/%08lx.0", dir, X509_subject_name_hash(f->root));
    snprintf(missing, sizeof(missing), "%s/none.pem", dir);
    write_file(bundle, f->root_pem);
    write_file(hashed, f->root_pem);
    char *leaf = leaf_pem(f, (struct cert_spec){0});
    assert_int_equal(setenv("SSL_CERT_FILE", bundle, 1), 0);
    assert_clean_with_system_trust(f, leaf);
    assert_int_equal(setenv("SSL_CERT_FILE", missing, 1), 0);
    assert_int_equal(setenv("SSL_CERT_DIR", dir, 1), 0);
    assert_clean_with_system_trust(f, leaf);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    remove(bundle);
    remove(hashed);
    remove(dir);
    free(leaf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_import),
        cmocka_unit_test(test_clean_import_with_csr_key),
        cmocka_unit_test(test_chain_pasted_in_body),
        cmocka_unit_test(test_der_body),
        cmocka_unit_test(test_chain_reversed_duplicated_with_root),
        cmocka_unit_test(test_two_intermediates_reordered),
        cmocka_unit_test(test_unrelated_certificate_in_chain),
        cmocka_unit_test(test_error_wrong_key),
        cmocka_unit_test(test_error_wrong_cn),
        cmocka_unit_test(test_cn_case_does_not_matter),
        cmocka_unit_test(test_error_expired),
        cmocka_unit_test(test_error_not_yet_valid),
        cmocka_unit_test(test_error_sha1_signature),
        cmocka_unit_test(test_error_rsa_1024_key),
        cmocka_unit_test(test_error_ca_leaf),
        cmocka_unit_test(test_error_eku_without_server_auth),
        cmocka_unit_test(test_warning_no_eku),
        cmocka_unit_test(test_error_verifier_rule),
        cmocka_unit_test(test_leaf_problems_not_repeated_as_untrusted),
        cmocka_unit_test(test_error_unknown_root),
        cmocka_unit_test(test_error_missing_intermediate),
        cmocka_unit_test(test_error_garbage),
        cmocka_unit_test(test_error_csr_pasted),
        cmocka_unit_test(test_error_csr_in_chain_and_certificate_judged),
        cmocka_unit_test(test_error_two_leaves),
        cmocka_unit_test(test_error_two_leaves_one_ours),
        cmocka_unit_test(test_error_only_ca_pasted),
        cmocka_unit_test(test_error_500_certificates_fast),
        cmocka_unit_test(test_error_5mib_paste),
        cmocka_unit_test(test_error_sha1_intermediate),
        cmocka_unit_test(test_error_expired_intermediate),
        cmocka_unit_test(test_all_errors_listed),
        cmocka_unit_test(test_findings_json),
        cmocka_unit_test(test_warning_o_differs),
        cmocka_unit_test(test_warning_san_missing),
        cmocka_unit_test(test_warning_san_extra),
        cmocka_unit_test(test_warning_san_extra_bounded),
        cmocka_unit_test(test_warning_10_days_left),
        cmocka_unit_test(test_trust_store_refuses_non_certificate),
        cmocka_unit_test(test_trust_store_reads_system_roots),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
