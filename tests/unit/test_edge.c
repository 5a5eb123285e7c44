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
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "edge/edge_tables.h"
#include "edge/sni_table.h"

/* ---- certificates made for the tests: root -> intermediate -> leaves ---- */

struct pki {
    ck_master_key master;
    EVP_PKEY *root_key, *inter_key, *key1, *key2;
    X509 *root, *inter, *leaf1, *leaf2;
    uint8_t *inter_der, *leaf1_der, *leaf2_der, *sealed1, *sealed2;
    int inter_len, leaf1_len, leaf2_len;
    size_t sealed1_len, sealed2_len;
};

static X509 *make_cert(const char *cn, const char *sans, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, long serial)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 30);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    assert_int_equal(
        X509_set_issuer_name(cert, issuer == NULL ? name : X509_get_subject_name(issuer)), 1);
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer == NULL ? cert : issuer, cert, NULL, NULL, 0);
    const char *bc = sans == NULL ? "critical,CA:TRUE" : "critical,CA:FALSE";
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc);
    assert_non_null(ext);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (sans != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sans);
        assert_non_null(ext);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, issuer_key == NULL ? key : issuer_key, EVP_sha256()) > 0);
    return cert;
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    assert_non_null(key);
    return key;
}

static void seal(struct pki *p, EVP_PKEY *key, const char *label, uint8_t **out, size_t *len)
{
    assert_int_equal(ck_seal_private_key(&p->master, label, key, out, len, NULL), 0);
}

static struct pki *pki_new(void)
{
    struct pki *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(ck_random_bytes(p->master.bytes, sizeof(p->master.bytes), NULL), 0);
    p->root_key = new_key();
    p->inter_key = new_key();
    p->key1 = new_key();
    p->key2 = new_key();
    p->root = make_cert("Test Root", NULL, p->root_key, NULL, NULL, 1);
    p->inter = make_cert("Test Intermediate", NULL, p->inter_key, p->root, p->root_key, 2);
    p->leaf1 =
        make_cert("a.test", "DNS:a.test,DNS:*.wild.test", p->key1, p->inter, p->inter_key, 3);
    p->leaf2 = make_cert("a.test", "DNS:a.test,DNS:b.test", p->key2, p->inter, p->inter_key, 4);
    p->inter_der = NULL;
    p->inter_len = i2d_X509(p->inter, &p->inter_der);
    p->leaf1_len = i2d_X509(p->leaf1, &p->leaf1_der);
    p->leaf2_len = i2d_X509(p->leaf2, &p->leaf2_der);
    assert_true(p->inter_len > 0 && p->leaf1_len > 0 && p->leaf2_len > 0);
    seal(p, p->key1, "certkeep/test/1/key", &p->sealed1, &p->sealed1_len);
    seal(p, p->key2, "certkeep/test/2/key", &p->sealed2, &p->sealed2_len);
    return p;
}

static void pki_free(struct pki *p)
{
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->inter_key);
    EVP_PKEY_free(p->key1);
    EVP_PKEY_free(p->key2);
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->leaf1);
    X509_free(p->leaf2);
    OPENSSL_free(p->inter_der);
    OPENSSL_free(p->leaf1_der);
    OPENSSL_free(p->leaf2_der);
    OPENSSL_free(p->sealed1);
    OPENSSL_free(p->sealed2);
    ck_master_key_wipe(&p->master);
    free(p);
}

static EVP_PKEY *unseal_loader(void *arg, const char *label, const uint8_t *blob, size_t len,
                               ck_error *err)
{
    const struct pki *p = arg;
    return ck_unseal_private_key(&p->master, label, blob, len, err);
}

static struct ck_sni_entry entry1(const struct pki *p, const char *const *names, size_t count)
{
    return (struct ck_sni_entry){.names = names,
                                 .name_count = count,
                                 .leaf_der = p->leaf1_der,
                                 .leaf_der_len = (size_t)p->leaf1_len,
                                 .chain_der = p->inter_der,
                                 .chain_der_len = (size_t)p->inter_len,
                                 .key_blob = p->sealed1,
                                 .key_blob_len = p->sealed1_len,
                                 .key_label = "certkeep/test/1/key"};
}

static struct ck_sni_entry entry2(const struct pki *p, const char *const *names, size_t count)
{
    return (struct ck_sni_entry){.names = names,
                                 .name_count = count,
                                 .leaf_der = p->leaf2_der,
                                 .leaf_der_len = (size_t)p->leaf2_len,
                                 .chain_der = p->inter_der,
                                 .chain_der_len = (size_t)p->inter_len,
                                 .key_blob = p->sealed2,
                                 .key_blob_len = p->sealed2_len,
                                 .key_label = "certkeep/test/2/key"};
}

/* Table 1: leaf1 answers a.test and *.wild.test; leaf2 answers b.test (and a.test, but later). */
static ck_sni_table *table_one(struct pki *p)
{
    static const char *const names1[] = {"a.test", "*.Wild.test"};
    static const char *const names2[] = {"b.test", "A.TEST"};
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    assert_non_null(b);
    struct ck_sni_entry e1 = entry1(p, names1, 2), e2 = entry2(p, names2, 2);
    assert_int_equal(ck_sni_builder_add(b, &e1, NULL), 0);
    assert_int_equal(ck_sni_builder_add(b, &e2, NULL), 0);
    ck_sni_table *t = ck_sni_builder_finish(b, NULL);
    assert_non_null(t);
    return t;
}

/* Table 2: leaf2 answers a.test now. */
static ck_sni_table *table_two(struct pki *p)
{
    static const char *const names2[] = {"a.test", "b.test"};
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    assert_non_null(b);
    struct ck_sni_entry e2 = entry2(p, names2, 2);
    assert_int_equal(ck_sni_builder_add(b, &e2, NULL), 0);
    ck_sni_table *t = ck_sni_builder_finish(b, NULL);
    assert_non_null(t);
    return t;
}

/* Which test leaf a lookup found: 1, 2, or 0 for none. */
static int found_leaf(const struct pki *p, const ck_sni_table *t, const char *name)
{
    const ck_sni_cert *c = ck_sni_table_lookup(t, name, strlen(name));
    if (c == NULL)
        return 0;
    const uint8_t *der;
    size_t len;
    ck_sni_cert_leaf(c, &der, &len);
    if (len == (size_t)p->leaf1_len && memcmp(der, p->leaf1_der, len) == 0)
        return 1;
    if (len == (size_t)p->leaf2_len && memcmp(der, p->leaf2_der, len) == 0)
        return 2;
    fail_msg("lookup of %s returned a certificate that was never added", name);
    return -1;
}

/* ---- SNI table ---- */

static void test_table_lookup_exact_wildcard_and_case(void **state)
{
    struct pki *p = *state;
    ck_sni_table *t = table_one(p);
    assert_int_equal(ck_sni_table_cert_count(t), 2);
    assert_int_equal(found_leaf(p, t, "a.test"), 1); /* added first: wins over leaf2's A.TEST */
    assert_int_equal(found_leaf(p, t, "A.Test"), 1);
    assert_int_equal(found_leaf(p, t, "b.test"), 2);
    assert_int_equal(found_leaf(p, t, "x.wild.test"), 1);
    assert_int_equal(found_leaf(p, t, "X-1.WILD.TEST"), 1);
    assert_int_equal(found_leaf(p, t, "x.y.wild.test"), 0); /* one label only */
    assert_int_equal(found_leaf(p, t, "wild.test"), 0);
    assert_int_equal(found_leaf(p, t, ".wild.test"), 0);
    assert_int_equal(found_leaf(p, t, "*.wild.test"), 0);
    assert_int_equal(found_leaf(p, t, "c.test"), 0);
    assert_int_equal(found_leaf(p, t, "test"), 0);
    assert_int_equal(found_leaf(p, t, "a.test."), 0);
    assert_int_equal(found_leaf(p, t, ""), 0);
    assert_null(ck_sni_table_lookup(t, "a.test\0evil", 11));
    assert_non_null(ck_sni_table_lookup(t, "a.test\0evil", 6));

    ck_sni_table_unref(t);

    /* 253 bytes is the longest name: a wildcard over a 251-byte base matches a 253-byte name,
     * and a 254-byte name never matches. */
    char base[252], wildcard[260], name[300];
    memset(base, 'b', sizeof(base));
    for (size_t i = 50; i < 240; i += 50)
        base[i] = '.';
    base[251] = '\0';
    snprintf(wildcard, sizeof(wildcard), "*.%s", base);
    const char *long_names[] = {wildcard};
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    struct ck_sni_entry e = entry1(p, long_names, 1);
    assert_int_equal(ck_sni_builder_add(b, &e, NULL), 0);
    t = ck_sni_builder_finish(b, NULL);
    snprintf(name, sizeof(name), "x.%s", base);
    assert_int_equal(strlen(name), 253);
    assert_int_equal(found_leaf(p, t, name), 1);
    snprintf(name, sizeof(name), "xy.%s", base);
    assert_int_equal(found_leaf(p, t, name), 0);
    ck_sni_table_unref(t);
}

static void test_table_refuses_bad_names(void **state)
{
    struct pki *p = *state;
    char long_name[260];
    memset(long_name, 'a', sizeof(long_name));
    for (size_t i = 50; i < 250; i += 50)
        long_name[i] = '.';
    long_name[254] = '\0';
    const char *bad[] = {"",        "a..test", "*.*.test", "a.*.test", "*test",  "exa mple.test",
                         "a.test.", ".a.test", "*.",       "a_b.test", long_name};
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    assert_non_null(b);
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++) {
        const char *names[] = {"good.test", bad[i]};
        struct ck_sni_entry e = entry1(p, names, 2);
        ck_error err = {0};
        if (ck_sni_builder_add(b, &e, &err) == 0)
            fail_msg("the name \"%s\" was accepted", bad[i]);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_hostname");
    }
    struct ck_sni_entry no_names = entry1(p, NULL, 0);
    assert_int_equal(ck_sni_builder_add(b, &no_names, NULL), -1);
    const char *ok[] = {"good.test"};
    struct ck_sni_entry no_key = entry1(p, ok, 1);
    no_key.key_blob_len = 0;
    assert_int_equal(ck_sni_builder_add(b, &no_key, NULL), -1);

    /* Refused entries left nothing behind; the builder still works. */
    struct ck_sni_entry good = entry1(p, ok, 1);
    assert_int_equal(ck_sni_builder_add(b, &good, NULL), 0);
    ck_sni_table *t = ck_sni_builder_finish(b, NULL);
    assert_non_null(t);
    assert_int_equal(ck_sni_table_cert_count(t), 1);
    assert_int_equal(found_leaf(p, t, "good.test"), 1);
    ck_sni_table_unref(t);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void test_table_hundred_thousand_entries(void **state)
{
    struct pki *p = *state;
    enum { COUNT = 100000 };
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    assert_non_null(b);
    for (unsigned i = 0; i < COUNT; i++) {
        char name[64], wildcard[64];
        snprintf(name, sizeof(name), "host%u.example.test", i);
        snprintf(wildcard, sizeof(wildcard), "*.zone%u.example.test", i);
        const char *names[] = {name, wildcard};
        struct ck_sni_entry e = entry1(p, names, 2);
        assert_int_equal(ck_sni_builder_add(b, &e, NULL), 0);
    }
    ck_sni_table *t = ck_sni_builder_finish(b, NULL);
    assert_non_null(t);
    print_message("# built an SNI table of %d certificates in %.3f s\n", COUNT,
                  seconds_since(&start));
    assert_int_equal(ck_sni_table_cert_count(t), COUNT);
    assert_int_equal(found_leaf(p, t, "host0.example.test"), 1);
    assert_int_equal(found_leaf(p, t, "HOST99999.example.test"), 1);
    assert_int_equal(found_leaf(p, t, "www.zone54321.example.test"), 1);
    assert_int_equal(found_leaf(p, t, "host100000.example.test"), 0);
    assert_int_equal(found_leaf(p, t, "a.www.zone54321.example.test"), 0);
    ck_sni_table_unref(t);
}

/* ---- published tables and the material cache ---- */

static void test_tables_select_publish_and_cache(void **state)
{
    struct pki *p = *state;
    ck_edge_tables *tables = ck_edge_tables_new(0, NULL);
    assert_non_null(tables);
    struct ck_edge_material m;
    ck_error err = {0};
    assert_int_equal(ck_edge_tables_select(tables, "a.test", 6, &m, &err), -1);
    assert_int_equal(err.status, 404);

    ck_edge_tables_publish(tables, table_one(p));
    assert_int_equal(ck_edge_tables_select(tables, "x.wild.test", 11, &m, NULL), 0);
    assert_int_equal(X509_cmp(m.leaf, p->leaf1), 0);
    assert_int_equal(sk_X509_num(m.chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(m.chain, 0), p->inter), 0);
    assert_int_equal(EVP_PKEY_eq(m.key, p->key1), 1);
    ck_edge_material_clear(&m);
    assert_int_equal(ck_edge_tables_select(tables, "a.test", 6, &m, NULL), 0);
    ck_edge_material_clear(&m);
    assert_int_equal(ck_edge_tables_cached(tables), 1); /* both names, one certificate */

    /* A reader holding the old table keeps it usable across the swap. */
    ck_sni_table *old = ck_edge_tables_acquire(tables);
    ck_edge_tables_publish(tables, table_two(p));
    assert_int_equal(found_leaf(p, old, "a.test"), 1);
    ck_sni_table_unref(old);
    assert_int_equal(ck_edge_tables_select(tables, "a.test", 6, &m, NULL), 0);
    assert_int_equal(X509_cmp(m.leaf, p->leaf2), 0);
    ck_edge_material_clear(&m);
    assert_int_equal(ck_edge_tables_select(tables, "x.wild.test", 11, &m, &err), -1);
    assert_string_equal(err.code, "unknown_name");
    ck_edge_tables_free(tables);
}

static void test_tables_cache_is_bounded_and_refuses_wrong_key(void **state)
{
    struct pki *p = *state;
    ck_edge_tables *tables = ck_edge_tables_new(1, NULL);
    assert_non_null(tables);
    ck_edge_tables_publish(tables, table_one(p));
    struct ck_edge_material m;
    assert_int_equal(ck_edge_tables_select(tables, "a.test", 6, &m, NULL), 0);
    ck_edge_material_clear(&m);
    assert_int_equal(ck_edge_tables_select(tables, "b.test", 6, &m, NULL), 0);
    assert_int_equal(X509_cmp(m.leaf, p->leaf2), 0);
    ck_edge_material_clear(&m);
    assert_int_equal(ck_edge_tables_cached(tables), 1);

    /* leaf1 with leaf2's key: refused at first use, not served. */
    const char *names[] = {"mismatch.test"};
    struct ck_sni_entry e = entry1(p, names, 1);
    e.key_blob = p->sealed2;
    e.key_blob_len = p->sealed2_len;
    e.key_label = "certkeep/test/2/key";
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    assert_int_equal(ck_sni_builder_add(b, &e, NULL), 0);
    ck_edge_tables_publish(tables, ck_sni_builder_finish(b, NULL));
    ck_error err = {0};
    assert_int_equal(ck_edge_tables_select(tables, "mismatch.test", 13, &m, &err), -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "certificate_unusable");
    assert_null(m.leaf);
    ck_edge_tables_free(tables);
}

static int setup_pki(void **state)
{
    *state = pki_new();
    return 0;
}

static int teardown_pki(void **state)
{
    pki_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lookup_exact_wildcard_and_case),
        cmocka_unit_test(test_table_refuses_bad_names),
        cmocka_unit_test(test_table_hundred_thousand_entries),
        cmocka_unit_test(test_tables_select_publish_and_cache),
        cmocka_unit_test(test_tables_cache_is_bounded_and_refuses_wrong_key),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
