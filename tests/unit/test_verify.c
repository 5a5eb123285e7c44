/* Unit tests for crypto/verify and `certkeep verify`: chains made here (root -> intermediate ->
 * leaf, P-256 keys) checked the way a user would. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli/verify_cmd.h"
#include "crypto/verify.h"

#define NOW 1800000000LL /* 2027-01-15 */
#define DAY 86400LL

struct issued {
    X509 *cert;
    EVP_PKEY *key;
};

struct fixture {
    struct issued root, inter, leaf;
};

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for cn signed by issuer (self-signed when issuer is NULL), valid from 30 days
 * before NOW to not_after; san and eku (NULL: none) use openssl.cnf syntax. */
static struct issued make_cert(const char *cn, const struct issued *issuer, bool ca,
                               const char *san, const char *eku, long long not_after)
{
    struct issued out = {X509_new(), EVP_EC_gen("P-256")};
    assert_non_null(out.cert);
    assert_non_null(out.key);
    X509 *cert = out.cert;
    X509_set_version(cert, X509_VERSION_3);
    BIGNUM *serial = BN_new();
    assert_int_equal(BN_rand(serial, 120, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
    assert_non_null(BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)));
    BN_free(serial);
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer->cert) : name);
    X509_NAME_free(name);
    ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)(NOW - 30 * DAY));
    ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after);
    X509_set_pubkey(cert, out.key);
    X509 *issuer_cert = issuer != NULL ? issuer->cert : cert;
    add_ext(cert, issuer_cert, NID_basic_constraints,
            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(cert, issuer_cert, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(cert, issuer_cert, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(cert, issuer_cert, NID_authority_key_identifier, "keyid:always");
    if (san != NULL)
        add_ext(cert, issuer_cert, NID_subject_alt_name, san);
    if (eku != NULL)
        add_ext(cert, issuer_cert, NID_ext_key_usage, eku);
    assert_true(X509_sign(cert, issuer != NULL ? issuer->key : out.key, EVP_sha256()) > 0);
    return out;
}

static void free_issued(struct issued *i)
{
    X509_free(i->cert);
    EVP_PKEY_free(i->key);
    i->cert = NULL;
    i->key = NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->root = make_cert("Test Root", NULL, true, NULL, NULL, NOW + 3650 * DAY);
    f->inter = make_cert("Test Intermediate", &f->root, true, NULL, NULL, NOW + 1000 * DAY);
    f->leaf = make_cert("www.example.com", &f->inter, false, "DNS:www.example.com,IP:192.0.2.10",
                        "serverAuth", NOW + 90 * DAY);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free_issued(&f->root);
    free_issued(&f->inter);
    free_issued(&f->leaf);
    free(f);
    return 0;
}

/* Runs the verifier at NOW over (leaf, intermediates..., NULL) with root as the only anchor. */
static bool verify(X509 *leaf, X509 *root, const char *host, const char *ip, long long at,
                   X509 **inters, size_t n_inters, struct ck_verify_result *res)
{
    STACK_OF(X509) *roots = sk_X509_new_null();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    sk_X509_push(roots, root);
    for (size_t i = 0; i < n_inters; i++)
        sk_X509_push(untrusted, inters[i]);
    struct ck_verify_request req = {
        .leaf = leaf,
        .untrusted = untrusted,
        .roots = roots,
        .dns_name = host,
        .ip = ip,
        .has_time = true,
        .time = at,
    };
    ck_error err = {0};
    assert_int_equal(ck_verify_chain(&req, res, &err), 0);
    sk_X509_free(roots);
    sk_X509_free(untrusted);
    return res->valid;
}

static bool reasons_mention(const struct ck_verify_result *res, const char *text)
{
    for (size_t i = 0; i < res->reasons.len; i++)
        if (strstr(res->reasons.items[i], text) != NULL)
            return true;
    return false;
}

static void test_valid_chain(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    assert_true(
        verify(f->leaf.cert, f->root.cert, "www.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    assert_int_equal(res.reasons.len, 0);
    assert_int_equal(sk_X509_num(res.chain), 3);
    assert_int_equal(X509_cmp(sk_X509_value(res.chain, 0), f->leaf.cert), 0);
    assert_int_equal(X509_cmp(sk_X509_value(res.chain, 2), f->root.cert), 0);
    ck_verify_result_free(&res);
}

static void test_wrong_host(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    assert_false(
        verify(f->leaf.cert, f->root.cert, "shop.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    assert_true(reasons_mention(&res, "hostname mismatch"));
    ck_verify_result_free(&res);
    /* The CN is never a fallback: a leaf whose SAN lacks the CN's name does not match it. */
    struct issued leaf = make_cert("cn-only.example.com", &f->inter, false, "DNS:other.example.com",
                                   "serverAuth", NOW + 90 * DAY);
    assert_false(
        verify(leaf.cert, f->root.cert, "cn-only.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    ck_verify_result_free(&res);
    free_issued(&leaf);
}

static void test_ip_san(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    assert_true(
        verify(f->leaf.cert, f->root.cert, NULL, "192.0.2.10", NOW, &f->inter.cert, 1, &res));
    ck_verify_result_free(&res);
    assert_false(
        verify(f->leaf.cert, f->root.cert, NULL, "192.0.2.11", NOW, &f->inter.cert, 1, &res));
    assert_true(reasons_mention(&res, "IP address mismatch"));
    ck_verify_result_free(&res);
}

static void test_expired_at_time(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    long long not_after = NOW + 90 * DAY;
    /* RFC 5280: notAfter itself is still inside the validity period. */
    assert_true(verify(f->leaf.cert, f->root.cert, "www.example.com", NULL, not_after,
                       &f->inter.cert, 1, &res));
    ck_verify_result_free(&res);
    assert_false(verify(f->leaf.cert, f->root.cert, "www.example.com", NULL, not_after + 1,
                        &f->inter.cert, 1, &res));
    assert_true(reasons_mention(&res, "expired"));
    ck_verify_result_free(&res);
}

static void test_unknown_root(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    struct issued other = make_cert("Other Root", NULL, true, NULL, NULL, NOW + 3650 * DAY);
    assert_false(
        verify(f->leaf.cert, other.cert, "www.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    assert_true(res.reasons.len > 0);
    ck_verify_result_free(&res);
    /* Without the intermediate the path cannot be built either. */
    assert_false(verify(f->leaf.cert, f->root.cert, "www.example.com", NULL, NOW, NULL, 0, &res));
    ck_verify_result_free(&res);
    free_issued(&other);
}

static void test_leaf_is_ca(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    struct issued leaf = make_cert("www.example.com", &f->inter, true, "DNS:www.example.com",
                                   "serverAuth", NOW + 90 * DAY);
    assert_false(
        verify(leaf.cert, f->root.cert, "www.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    assert_true(reasons_mention(&res, "is a CA certificate"));
    ck_verify_result_free(&res);
    free_issued(&leaf);
}

static void test_missing_server_auth(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    struct issued client = make_cert("www.example.com", &f->inter, false, "DNS:www.example.com",
                                     "clientAuth", NOW + 90 * DAY);
    assert_false(
        verify(client.cert, f->root.cert, "www.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    assert_true(reasons_mention(&res, "serverAuth"));
    ck_verify_result_free(&res);
    struct issued none =
        make_cert("www.example.com", &f->inter, false, "DNS:www.example.com", NULL, NOW + 90 * DAY);
    assert_false(
        verify(none.cert, f->root.cert, "www.example.com", NULL, NOW, &f->inter.cert, 1, &res));
    ck_verify_result_free(&res);
    free_issued(&client);
    free_issued(&none);
}

static void test_intermediates_any_order_and_duplicated(void **state)
{
    struct fixture *f = *state;
    struct ck_verify_result res = {0};
    struct issued inter2 =
        make_cert("Test Issuing CA", &f->inter, true, NULL, NULL, NOW + 500 * DAY);
    struct issued leaf = make_cert("api.example.com", &inter2, false, "DNS:api.example.com",
                                   "serverAuth", NOW + 90 * DAY);
    X509 *bundle[] = {f->inter.cert, inter2.cert, f->inter.cert, inter2.cert, f->root.cert};
    assert_true(verify(leaf.cert, f->root.cert, "api.example.com", NULL, NOW, bundle,
                       CK_ARRAY_LEN(bundle), &res));
    assert_int_equal(sk_X509_num(res.chain), 4);
    assert_int_equal(X509_cmp(sk_X509_value(res.chain, 1), inter2.cert), 0);
    ck_verify_result_free(&res);
    free_issued(&inter2);
    free_issued(&leaf);
}

static void test_max_intermediates(void **state)
{
    struct fixture *f = *state;
    STACK_OF(X509) *roots = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    sk_X509_push(roots, f->root.cert);
    sk_X509_push(untrusted, f->inter.cert);
    struct ck_verify_request req = {.leaf = f->leaf.cert,
                                    .untrusted = untrusted,
                                    .roots = roots,
                                    .has_time = true,
                                    .time = NOW,
                                    .has_max_intermediates = true};
    struct ck_verify_result res = {0};
    assert_int_equal(ck_verify_chain(&req, &res, NULL), 0);
    assert_false(res.valid);
    assert_true(reasons_mention(&res, "intermediates"));
    ck_verify_result_free(&res);
    req.max_intermediates = 1;
    assert_int_equal(ck_verify_chain(&req, &res, NULL), 0);
    assert_true(res.valid);
    ck_verify_result_free(&res);
    sk_X509_free(roots);
    sk_X509_free(untrusted);
}

static void test_load_certs(void **state)
{
    struct fixture *f = *state;
    STACK_OF(X509) *certs = NULL;
    ck_error err = {0};
    assert_int_equal(ck_verify_load_certs("", 0, &certs, &err), 0);
    assert_int_equal(sk_X509_num(certs), 0);
    sk_X509_free(certs);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, f->leaf.cert);
    PEM_write_bio_X509(bio, f->inter.cert);
    char *pem = NULL;
    long len = BIO_get_mem_data(bio, &pem);
    assert_int_equal(ck_verify_load_certs(pem, (size_t)len, &certs, &err), 0);
    assert_int_equal(sk_X509_num(certs), 2);
    sk_X509_pop_free(certs, X509_free);
    const char broken[] = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
    assert_int_equal(ck_verify_load_certs(broken, sizeof(broken) - 1, &certs, &err), -1);
    assert_string_equal(err.code, "invalid_certificate");
    BIO_free(bio);
}

/* ---- the command ---- */

static void write_pem(const char *path, X509 *a, X509 *b)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (a != NULL)
        PEM_write_X509(fp, a);
    if (b != NULL)
        PEM_write_X509(fp, b);
    fclose(fp);
}

static int run_verify(const char *roots, const char *untrusted, const char *host, const char *leaf)
{
    char *argv[12];
    int argc = 0;
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)NOW);
    argv[argc++] = (char *)"verify";
    argv[argc++] = (char *)"--roots";
    argv[argc++] = (char *)roots;
    if (untrusted != NULL) {
        argv[argc++] = (char *)"--untrusted";
        argv[argc++] = (char *)untrusted;
    }
    argv[argc++] = (char *)"--host";
    argv[argc++] = (char *)host;
    argv[argc++] = (char *)"--at";
    argv[argc++] = at;
    if (leaf != NULL)
        argv[argc++] = (char *)leaf;
    argv[argc] = NULL;
    return ck_cmd_verify(argc, argv);
}

static void test_command_exit_codes(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/ck-verify-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char roots[64], inters[64], empty[64], leaf[64], missing[64];
    snprintf(roots, sizeof(roots), "%s/roots.pem", dir);
    snprintf(inters, sizeof(inters), "%s/inters.pem", dir);
    snprintf(empty, sizeof(empty), "%s/empty.pem", dir);
    snprintf(leaf, sizeof(leaf), "%s/leaf.pem", dir);
    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
    write_pem(roots, f->root.cert, NULL);
    write_pem(inters, f->inter.cert, NULL);
    write_pem(empty, NULL, NULL);
    write_pem(leaf, f->leaf.cert, NULL);
    assert_int_equal(run_verify(roots, inters, "www.example.com", leaf), 0);
    assert_int_equal(run_verify(roots, inters, "wrong.example.com", leaf), 1);
    assert_int_equal(run_verify(roots, empty, "www.example.com", leaf), 1); /* no intermediates */
    assert_int_equal(run_verify(roots, inters, "www.example.com", NULL), 2);
    assert_int_equal(run_verify(missing, inters, "www.example.com", leaf), 2);
    assert_int_equal(run_verify(roots, inters, "www.example.com", missing), 2);
    char *bad_at[] = {(char *)"verify",
                      (char *)"--roots",
                      roots,
                      (char *)"--at",
                      (char *)"yesterday",
                      leaf,
                      NULL};
    assert_int_equal(ck_cmd_verify(6, bad_at), 2);
    unlink(roots);
    unlink(inters);
    unlink(empty);
    unlink(leaf);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_chain),
        cmocka_unit_test(test_wrong_host),
        cmocka_unit_test(test_ip_san),
        cmocka_unit_test(test_expired_at_time),
        cmocka_unit_test(test_unknown_root),
        cmocka_unit_test(test_leaf_is_ca),
        cmocka_unit_test(test_missing_server_auth),
        cmocka_unit_test(test_intermediates_any_order_and_duplicated),
        cmocka_unit_test(test_max_intermediates),
        cmocka_unit_test(test_load_certs),
        cmocka_unit_test(test_command_exit_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
