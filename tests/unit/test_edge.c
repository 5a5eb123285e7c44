#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "edge/edge_tables.h"
#include "edge/leaf_parser.h"
#include "edge/listener.h"
#include "edge/sni_table.h"
#include "tls_pair.h"

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
                               OSSL_LIB_CTX *libctx, ck_error *err)
{
    const struct pki *p = arg;
    return ck_unseal_private_key_ex(&p->master, label, blob, len, libctx, err);
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

/* A table of count entries, added in order, keys opened with p's master key. */
static ck_sni_table *table_of(struct pki *p, const struct ck_sni_entry *entries, size_t count)
{
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, p, NULL);
    assert_non_null(b);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(ck_sni_builder_add(b, &entries[i], NULL), 0);
    ck_sni_table *t = ck_sni_builder_finish(b, NULL);
    assert_non_null(t);
    return t;
}

/* Table 1: leaf1 answers a.test and *.wild.test; leaf2 answers b.test (and a.test, but later). */
static ck_sni_table *table_one(struct pki *p)
{
    static const char *const names1[] = {"a.test", "*.Wild.test"};
    static const char *const names2[] = {"b.test", "A.TEST"};
    const struct ck_sni_entry entries[] = {entry1(p, names1, 2), entry2(p, names2, 2)};
    return table_of(p, entries, 2);
}

/* Table 2: leaf2 answers a.test now. */
static ck_sni_table *table_two(struct pki *p)
{
    static const char *const names2[] = {"a.test", "b.test"};
    const struct ck_sni_entry e2 = entry2(p, names2, 2);
    return table_of(p, &e2, 1);
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
    print_message("# built an SNI table of %d certificates in %.3f s, %zu bytes each "
                  "(leaf DER %d, sealed key %zu)\n",
                  COUNT, seconds_since(&start), ck_sni_table_memory(t) / COUNT, p->leaf1_len,
                  p->sealed1_len);
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
    /* The key is the edge's compact one (it signs through ecdsa_signer.c), and the
     * certificate's own key object: one object for the pair. */
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(m.key)),
                        "certkeep-edge-keys");
    assert_ptr_equal(m.key, X509_get0_pubkey(m.leaf));
    ck_edge_material_clear(&m);
    assert_int_equal(ck_edge_tables_select(tables, "a.test", 6, &m, NULL), 0);
    ck_edge_material_clear(&m);
    struct ck_edge_cache_stats stats;
    ck_edge_tables_cache_stats(tables, &stats);
    assert_int_equal(stats.misses, 1); /* the first selection parsed it */
    assert_int_equal(stats.hits, 1);   /* the second found it */
    assert_int_equal(stats.cached, 1); /* both names, one certificate */
    assert_int_equal(stats.capacity, CK_EDGE_CACHE_DEFAULT);

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

static const char *provider_of(X509 *x)
{
    return OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(X509_get0_pubkey(x)));
}

/* Reads der with the leaf parser and checks the X509 against the ordinary one: same encoding,
 * the key matches `key` and not `other`. Returns the provider that holds the public key. */
static const char *parse_like_openssl(ck_leaf_parser *parser, X509 *cert, EVP_PKEY *key,
                                      EVP_PKEY *other)
{
    unsigned char *der = NULL, *again = NULL;
    int len = i2d_X509(cert, &der);
    assert_true(len > 0);
    X509 *x = ck_leaf_parser_parse(parser, der, (size_t)len);
    assert_non_null(x);
    /* Nothing left on the error queue: a stale error fails the connection's next I/O. */
    assert_int_equal(ERR_peek_error(), 0);
    assert_int_equal(X509_cmp(x, cert), 0);
    assert_int_equal(i2d_X509(x, &again), len);
    assert_memory_equal(again, der, (size_t)len);
    assert_int_equal(X509_check_private_key(x, key), 1);
    assert_int_equal(X509_check_private_key(x, other), 0);
    assert_int_equal(EVP_PKEY_get_security_bits(X509_get0_pubkey(x)),
                     EVP_PKEY_get_security_bits(key));
    static char provider[64];
    snprintf(provider, sizeof(provider), "%s", provider_of(x));
    /* Not one byte short, not one byte more. */
    assert_null(ck_leaf_parser_parse(parser, der, (size_t)len - 1));
    unsigned char *longer = malloc((size_t)len + 1);
    assert_non_null(longer);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    assert_null(ck_leaf_parser_parse(parser, longer, (size_t)len + 1));
    free(longer);
    OPENSSL_free(again);
    OPENSSL_free(der);
    X509_free(x);
    ERR_clear_error();
    return provider;
}

/* EC certificates get their public key from the parser's own small provider (the fast way);
 * others, the ordinary way. Either way the X509 is the same certificate and its key checks. */
static void test_leaf_parser(void **state)
{
    struct pki *p = *state;
    ck_error err = {0};
    ck_leaf_parser *parser = ck_leaf_parser_new(&err);
    assert_non_null(parser);
    assert_string_equal(parse_like_openssl(parser, p->leaf1, p->key1, p->key2),
                        "certkeep-edge-keys");
    EVP_PKEY *p384 = ck_key_generate(CK_KEY_EC_P384, NULL);
    EVP_PKEY *rsa = ck_key_generate(CK_KEY_RSA_2048, NULL);
    assert_non_null(p384);
    assert_non_null(rsa);
    X509 *p384_cert = make_cert("p384.test", "DNS:p384.test", p384, p->inter, p->inter_key, 5);
    X509 *rsa_cert = make_cert("rsa.test", "DNS:rsa.test", rsa, p->inter, p->inter_key, 6);
    assert_string_equal(parse_like_openssl(parser, p384_cert, p384, p->key1), "certkeep-edge-keys");
    assert_string_equal(parse_like_openssl(parser, rsa_cert, rsa, p->key1), "default");
    /* A P-256 key against a P-384 certificate: not a match, even by accident of bytes. */
    X509 *x = ck_leaf_parser_parse(parser, p->leaf1_der, (size_t)p->leaf1_len);
    assert_int_equal(X509_check_private_key(x, p384), 0);
    X509_free(x);
    static const uint8_t noise[] = {0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef};
    assert_null(ck_leaf_parser_parse(parser, noise, sizeof(noise)));
    ERR_clear_error();
    X509_free(p384_cert);
    X509_free(rsa_cert);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
    ck_leaf_parser_free(parser);
}

static const unsigned char signed_msg[] = "TLS 1.3, server CertificateVerify";

/* Signs signed_msg with key the way libssl does: EVP_DigestSign, default library context. */
static bool sign_msg(EVP_PKEY *key, const char *digest, unsigned char sig[512], size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    *sig_len = 0;
    bool ok = EVP_DigestSignInit_ex(ctx, NULL, digest, NULL, NULL, key, NULL) == 1 &&
              EVP_DigestSign(ctx, NULL, sig_len, signed_msg, sizeof(signed_msg)) == 1 &&
              *sig_len <= 512 &&
              EVP_DigestSign(ctx, sig, sig_len, signed_msg, sizeof(signed_msg)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static bool verifies(EVP_PKEY *pub, const char *digest, const unsigned char *msg, size_t len,
                     const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    bool ok = EVP_DigestVerifyInit_ex(ctx, NULL, digest, NULL, NULL, pub, NULL) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* key signs with digest; ordinary's public key verifies it, and not for a message one bit off. */
static void assert_signs_for(EVP_PKEY *key, EVP_PKEY *ordinary, const char *digest)
{
    unsigned char sig[512], other[sizeof(signed_msg)];
    size_t sig_len = 0;
    assert_true(sign_msg(key, digest, sig, &sig_len));
    assert_true(verifies(ordinary, digest, signed_msg, sizeof(signed_msg), sig, sig_len));
    memcpy(other, signed_msg, sizeof(other));
    other[3] ^= 0x01;
    assert_false(verifies(ordinary, digest, other, sizeof(other), sig, sig_len));
}

/* The key, sealed and opened into the parser's library context: an edge key. */
static EVP_PKEY *edge_key_of(struct pki *p, ck_leaf_parser *parser, EVP_PKEY *ordinary)
{
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    seal(p, ordinary, "edge.test", &sealed, &sealed_len);
    EVP_PKEY *edge = ck_unseal_private_key_ex(&p->master, "edge.test", sealed, sealed_len,
                                              ck_leaf_parser_key_libctx(parser), NULL);
    free(sealed);
    assert_non_null(edge);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(edge)),
                        "certkeep-edge-keys");
    return edge;
}

/* A certificate for key from the test CA, read by the leaf parser. */
static X509 *edge_leaf_for(struct pki *p, ck_leaf_parser *parser, EVP_PKEY *key, long serial)
{
    X509 *cert = make_cert("edge.test", "DNS:edge.test", key, p->inter, p->inter_key, serial);
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    assert_true(len > 0);
    X509 *x = ck_leaf_parser_parse(parser, der, (size_t)len);
    assert_non_null(x);
    OPENSSL_free(der);
    X509_free(cert);
    return x;
}

/* The curves the edge's own keys take (leaf_parser.c). */
static const char *const edge_curves[] = {"P-256", "P-384", "P-521"};

/* Private keys opened into the leaf parser's library context are the edge's compact keys: on
 * every curve the edge serves they sign, with every digest TLS pairs with ECDSA, what an ordinary
 * key of the same pair verifies; digests outside those are refused at once. */
static void test_leaf_parser_private_keys_sign(void **state)
{
    struct pki *p = *state;
    ck_leaf_parser *parser = ck_leaf_parser_new(NULL);
    assert_non_null(parser);
    static const char *const digests[] = {"SHA1", "SHA224", "SHA256", "SHA384", "SHA512"};
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *ordinary = EVP_EC_gen(edge_curves[i]);
        assert_non_null(ordinary);
        EVP_PKEY *edge = edge_key_of(p, parser, ordinary);
        assert_int_equal(EVP_PKEY_get_bits(edge), EVP_PKEY_get_bits(ordinary));
        assert_int_equal(EVP_PKEY_get_size(edge), EVP_PKEY_get_size(ordinary));
        assert_int_equal(EVP_PKEY_eq(edge, ordinary), 1);
        for (size_t d = 0; d < sizeof(digests) / sizeof(digests[0]); d++)
            assert_signs_for(edge, ordinary, digests[d]);
        /* It signs, and another key's point does not verify that. */
        unsigned char sig[512];
        size_t sig_len = 0;
        assert_true(sign_msg(edge, "SHA256", sig, &sig_len));
        assert_false(verifies(p->key1, "SHA256", signed_msg, sizeof(signed_msg), sig, sig_len));
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_non_null(ctx);
        assert_int_not_equal(EVP_DigestSignInit_ex(ctx, NULL, "MD5", NULL, NULL, edge, NULL), 1);
        assert_int_not_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA3-256", NULL, NULL, edge, NULL),
                             1);
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        EVP_PKEY_free(edge);
        EVP_PKEY_free(ordinary);
    }
    /* Other key types stay ordinary keys. */
    EVP_PKEY *rsa = ck_key_generate(CK_KEY_RSA_2048, NULL);
    assert_non_null(rsa);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    seal(p, rsa, "rsa.test", &sealed, &sealed_len);
    EVP_PKEY *opened = ck_unseal_private_key_ex(&p->master, "rsa.test", sealed, sealed_len,
                                                ck_leaf_parser_key_libctx(parser), NULL);
    assert_non_null(opened);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(opened)), "default");
    assert_signs_for(opened, rsa, "SHA256");
    EVP_PKEY_free(opened);
    free(sealed);
    EVP_PKEY_free(rsa);
    ck_leaf_parser_free(parser);
}

/* A certificate's key signs only once joined with its own private key, and never takes another
 * key's scalar; an ordinary private key compared with it leaves no scalar behind. */
static void test_leaf_parser_join(void **state)
{
    struct pki *p = *state;
    ck_leaf_parser *parser = ck_leaf_parser_new(NULL);
    assert_non_null(parser);
    OSSL_LIB_CTX *libctx = ck_leaf_parser_key_libctx(parser);
    unsigned char sig[512];
    size_t sig_len = 0;
    X509 *x = ck_leaf_parser_parse(parser, p->leaf1_der, (size_t)p->leaf1_len);
    assert_non_null(x);
    assert_false(sign_msg(X509_get0_pubkey(x), "SHA256", sig, &sig_len));
    /* OpenSSL copies the ordinary key whole into the edge's key manager to compare them. */
    assert_int_equal(X509_check_private_key(x, p->key1), 1);
    assert_false(sign_msg(X509_get0_pubkey(x), "SHA256", sig, &sig_len));
    EVP_PKEY *key1 = ck_unseal_private_key_ex(&p->master, "certkeep/test/1/key", p->sealed1,
                                              p->sealed1_len, libctx, NULL);
    EVP_PKEY *key2 = ck_unseal_private_key_ex(&p->master, "certkeep/test/2/key", p->sealed2,
                                              p->sealed2_len, libctx, NULL);
    assert_non_null(key1);
    assert_non_null(key2);
    assert_int_equal(ck_leaf_parser_join_private_key(parser, x, key2), -1);
    assert_int_equal(ck_leaf_parser_join_private_key(parser, x, p->key1), -1); /* ordinary */
    assert_false(sign_msg(X509_get0_pubkey(x), "SHA256", sig, &sig_len));
    assert_int_equal(ck_leaf_parser_join_private_key(parser, x, key1), 0);
    EVP_PKEY_free(key1);
    assert_signs_for(X509_get0_pubkey(x), p->key1, "SHA256");
    assert_int_equal(X509_check_private_key(x, X509_get0_pubkey(x)), 1);
    assert_int_equal(ck_leaf_parser_join_private_key(parser, x, key2), -1);
    /* The generic way of asking for a private half gets nothing from it. */
    BIGNUM *priv = NULL;
    assert_int_not_equal(EVP_PKEY_get_bn_param(X509_get0_pubkey(x), "priv", &priv), 1);
    assert_null(priv);
    ERR_clear_error();
    EVP_PKEY_free(key2);
    X509_free(x);

    /* P-384, and P-521 with a scalar whose first byte is zero (one key in two has one). */
    EVP_PKEY *p384 = EVP_EC_gen("P-384"), *p521 = NULL;
    for (int i = 0; i < 64 && p521 == NULL; i++) {
        p521 = EVP_EC_gen("P-521");
        BIGNUM *d = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(p521, "priv", &d), 1);
        if (BN_num_bytes(d) == 66) {
            EVP_PKEY_free(p521);
            p521 = NULL;
        }
        BN_clear_free(d);
    }
    assert_non_null(p384);
    assert_non_null(p521);
    EVP_PKEY *pairs[] = {p384, p521};
    for (size_t i = 0; i < 2; i++) {
        X509 *leaf = edge_leaf_for(p, parser, pairs[i], 40 + (long)i);
        EVP_PKEY *edge = edge_key_of(p, parser, pairs[i]);
        assert_int_equal(ck_leaf_parser_join_private_key(parser, leaf, edge), 0);
        EVP_PKEY_free(edge);
        assert_signs_for(X509_get0_pubkey(leaf), pairs[i], i == 0 ? "SHA384" : "SHA512");
        X509_free(leaf);
    }
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    assert_int_equal(ERR_peek_error(), 0);
    ck_leaf_parser_free(parser);
}

#define SIGNING_THREADS 4
#define SIGNATURES      150

struct signing_thread {
    EVP_PKEY *edge, *ordinary;
    int verified;
};

static void *sign_many(void *arg)
{
    struct signing_thread *t = arg;
    for (int i = 0; i < SIGNATURES; i++) {
        unsigned char sig[512];
        size_t sig_len = 0;
        if (sign_msg(t->edge, "SHA256", sig, &sig_len) &&
            verifies(t->ordinary, "SHA256", signed_msg, sizeof(signed_msg), sig, sig_len))
            t->verified++;
    }
    return NULL;
}

/* Threads signing at once with different keys of one curve share the signer's pool of curve
 * keys: each signature is made with its own thread's scalar. */
static void test_leaf_parser_keys_sign_concurrently(void **state)
{
    struct pki *p = *state;
    ck_leaf_parser *parser = ck_leaf_parser_new(NULL);
    assert_non_null(parser);
    struct signing_thread threads[SIGNING_THREADS];
    pthread_t ids[SIGNING_THREADS];
    for (int i = 0; i < SIGNING_THREADS; i++) {
        threads[i].ordinary = EVP_EC_gen("P-256");
        assert_non_null(threads[i].ordinary);
        threads[i].edge = edge_key_of(p, parser, threads[i].ordinary);
        threads[i].verified = 0;
    }
    for (int i = 0; i < SIGNING_THREADS; i++)
        assert_int_equal(pthread_create(&ids[i], NULL, sign_many, &threads[i]), 0);
    for (int i = 0; i < SIGNING_THREADS; i++) {
        assert_int_equal(pthread_join(ids[i], NULL), 0);
        assert_int_equal(threads[i].verified, SIGNATURES);
        EVP_PKEY_free(threads[i].edge);
        EVP_PKEY_free(threads[i].ordinary);
    }
    ck_leaf_parser_free(parser);
}

/* One client and one server handshake through a BIO pair; the client checks the server's
 * signature (CertificateVerify, or ServerKeyExchange in TLS 1.2) against the certificate. */
static bool handshake_with(X509 *leaf, EVP_PKEY *key, int version)
{
    SSL_CTX *server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(server_ctx);
    assert_non_null(client_ctx);
    SSL_CTX_set_min_proto_version(client_ctx, version);
    SSL_CTX_set_max_proto_version(client_ctx, version);
    SSL_CTX_set_cipher_list(client_ctx, "ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL *server = SSL_new(server_ctx), *client = SSL_new(client_ctx);
    assert_non_null(server);
    assert_non_null(client);
    bool both_done =
        SSL_use_cert_and_key(server, leaf, key, NULL, 1) == 1 && tls_pair_handshake(client, server);
    bool ok = both_done && SSL_version(client) == version;
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    ERR_clear_error();
    return ok;
}

/* Real TLS 1.2 and 1.3 handshakes on every curve with the certificate's joined key. */
static void test_leaf_parser_keys_in_handshakes(void **state)
{
    struct pki *p = *state;
    ck_leaf_parser *parser = ck_leaf_parser_new(NULL);
    assert_non_null(parser);
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *ordinary = EVP_EC_gen(edge_curves[i]);
        assert_non_null(ordinary);
        X509 *leaf = edge_leaf_for(p, parser, ordinary, 50 + (long)i);
        EVP_PKEY *edge = edge_key_of(p, parser, ordinary);
        assert_int_equal(ck_leaf_parser_join_private_key(parser, leaf, edge), 0);
        EVP_PKEY_free(edge);
        EVP_PKEY *pair = X509_get0_pubkey(leaf);
        assert_true(handshake_with(leaf, pair, TLS1_3_VERSION));
        assert_true(handshake_with(leaf, pair, TLS1_2_VERSION));
        /* and not with another key: the certificate does not match it */
        assert_false(handshake_with(leaf, p->key1, TLS1_3_VERSION));
        X509_free(leaf);
        EVP_PKEY_free(ordinary);
    }
    ck_leaf_parser_free(parser);
}

/* A key that encodes its public point compressed still serves its certificate (the leaf
 * parser compares uncompressed points, so the edge parses that leaf the ordinary way). */
static void test_tables_key_with_compressed_point(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *compressed = EVP_PKEY_dup(p->key1);
    assert_non_null(compressed);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(
                         compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
                     1);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    seal(p, compressed, "certkeep/test/c/key", &sealed, &sealed_len);
    static const char *const names[] = {"c.test"};
    struct ck_sni_entry e = entry1(p, names, 1);
    e.key_blob = sealed;
    e.key_blob_len = sealed_len;
    e.key_label = "certkeep/test/c/key";
    ck_edge_tables *tables = ck_edge_tables_new(0, NULL);
    assert_non_null(tables);
    ck_edge_tables_publish(tables, table_of(p, &e, 1));
    struct ck_edge_material m;
    ck_error err = {0};
    assert_int_equal(ck_edge_tables_select(tables, "c.test", 6, &m, &err), 0);
    assert_int_equal(X509_cmp(m.leaf, p->leaf1), 0);
    assert_int_equal(X509_check_private_key(m.leaf, m.key), 1);
    ck_edge_material_clear(&m);
    ck_edge_tables_free(tables);
    OPENSSL_free(sealed);
    EVP_PKEY_free(compressed);
}

/* Certificates issued by one CA share one parsed chain: the same X509 objects, not copies. */
static void test_tables_share_one_parsed_chain(void **state)
{
    struct pki *p = *state;
    ck_edge_tables *tables = ck_edge_tables_new(0, NULL);
    assert_non_null(tables);
    ck_edge_tables_publish(tables, table_one(p));
    struct ck_edge_material m1, m2;
    assert_int_equal(ck_edge_tables_select(tables, "a.test", 6, &m1, NULL), 0);
    assert_int_equal(ck_edge_tables_select(tables, "b.test", 6, &m2, NULL), 0);
    assert_int_equal(X509_cmp(m1.leaf, m2.leaf) != 0, 1);
    assert_int_equal(sk_X509_num(m1.chain), 1);
    assert_int_equal(sk_X509_num(m2.chain), 1);
    assert_ptr_equal(sk_X509_value(m1.chain, 0), sk_X509_value(m2.chain, 0));
    ck_edge_material_clear(&m1);
    ck_edge_material_clear(&m2);
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
    struct ck_edge_cache_stats stats;
    ck_edge_tables_cache_stats(tables, &stats);
    assert_int_equal(stats.cached, 1);

    /* leaf1 with leaf2's key: refused at first use, not served. */
    const char *names[] = {"mismatch.test"};
    struct ck_sni_entry e = entry1(p, names, 1);
    e.key_blob = p->sealed2;
    e.key_blob_len = p->sealed2_len;
    e.key_label = "certkeep/test/2/key";
    ck_edge_tables_publish(tables, table_of(p, &e, 1));
    ck_error err = {0};
    assert_int_equal(ck_edge_tables_select(tables, "mismatch.test", 13, &m, &err), -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "certificate_unusable");
    assert_null(m.leaf);
    ck_edge_tables_free(tables);
}

/* A certificate whose extensions OpenSSL cannot read (a truncated subjectAltName) parses, but
 * clients would refuse it: refused at first use with a clear error instead, the others served. */
static void test_tables_refuse_unreadable_extensions(void **state)
{
    struct pki *p = *state;
    X509 *leaf = make_cert("bad.test", "DNS:bad.test", p->key1, p->inter, p->inter_key, 9);
    int san = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1);
    assert_true(san >= 0);
    X509_EXTENSION_free(X509_delete_ext(leaf, san));
    ASN1_OCTET_STRING *truncated = ASN1_OCTET_STRING_new();
    assert_non_null(truncated);
    assert_int_equal(ASN1_OCTET_STRING_set(truncated, (const unsigned char *)"\x30\x0a\x82\x08", 4),
                     1);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, truncated);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(leaf, ext, -1), 1);
    assert_true(X509_sign(leaf, p->inter_key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int der_len = i2d_X509(leaf, &der);
    assert_true(der_len > 0);

    const char *names[] = {"bad.test"};
    const char *good_names[] = {"good.test"};
    struct ck_sni_entry entries[] = {entry1(p, names, 1), entry2(p, good_names, 1)};
    entries[0].leaf_der = der;
    entries[0].leaf_der_len = (size_t)der_len;
    ck_edge_tables *tables = ck_edge_tables_new(4, NULL);
    assert_non_null(tables);
    ck_edge_tables_publish(tables, table_of(p, entries, 2));
    struct ck_edge_material m;
    ck_error err = {0};
    assert_int_equal(ck_edge_tables_select(tables, "bad.test", 8, &m, &err), -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "certificate_unusable");
    assert_non_null(strstr(err.message, "extensions"));
    assert_null(m.leaf);
    assert_int_equal(ck_edge_tables_select(tables, "good.test", 9, &m, NULL), 0); /* the others */
    assert_int_equal(X509_cmp(m.leaf, p->leaf2), 0);
    ck_edge_material_clear(&m);
    struct ck_edge_cache_stats stats;
    ck_edge_tables_cache_stats(tables, &stats);
    assert_int_equal(stats.cached, 1);
    ck_edge_tables_free(tables);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(truncated);
    OPENSSL_free(der);
    X509_free(leaf);
}

/* ---- the listener, with its event loop in a thread and real TLS clients ---- */

struct server {
    struct event_base *base;
    ck_edge_tables *tables;
    ck_edge_listener *listener, *listener2; /* listener2: only with a shared budget */
    ck_edge_kex *kex; /* the listeners' library context, freed after the loop's last turn */
    pthread_t thread;
    int port, port2;
};

static void *run_loop(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static struct server *server_start(struct pki *p, int handshake_timeout_ms, size_t max_connections)
{
    struct server *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->base = event_base_new();
    assert_non_null(s->base);
    s->tables = ck_edge_tables_new(0, NULL);
    assert_non_null(s->tables);
    s->kex = ck_edge_kex_new(NULL);
    assert_non_null(s->kex);
    ck_edge_tables_publish(s->tables, table_one(p));
    struct ck_edge_listener_options opts = {.address = "127.0.0.1:0",
                                            .tables = s->tables,
                                            .handshake_timeout_ms = handshake_timeout_ms,
                                            .idle_timeout_ms = 5000,
                                            .max_connections = max_connections,
                                            .kex = s->kex};
    ck_error err = {0};
    s->listener = ck_edge_listener_new(s->base, &opts, &err);
    if (s->listener == NULL)
        fail_msg("listener: %s", err.message);
    s->port = ck_edge_listener_port(s->listener);
    assert_true(s->port > 0);
    assert_int_equal(pthread_create(&s->thread, NULL, run_loop, s), 0);
    return s;
}

/* Like server_start, with two listeners on the same tables sharing budget. */
static struct server *server_start_budget(struct pki *p, struct ck_edge_conn_budget *budget)
{
    struct server *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->base = event_base_new();
    assert_non_null(s->base);
    s->tables = ck_edge_tables_new(0, NULL);
    assert_non_null(s->tables);
    s->kex = ck_edge_kex_new(NULL);
    assert_non_null(s->kex);
    ck_edge_tables_publish(s->tables, table_one(p));
    struct ck_edge_listener_options opts = {
        .address = "127.0.0.1:0", .tables = s->tables, .budget = budget, .kex = s->kex};
    ck_error err = {0};
    s->listener = ck_edge_listener_new(s->base, &opts, &err);
    s->listener2 = ck_edge_listener_new(s->base, &opts, &err);
    if (s->listener == NULL || s->listener2 == NULL)
        fail_msg("listener: %s", err.message);
    s->port = ck_edge_listener_port(s->listener);
    s->port2 = ck_edge_listener_port(s->listener2);
    assert_int_equal(pthread_create(&s->thread, NULL, run_loop, s), 0);
    return s;
}

static void server_stop(struct server *s)
{
    event_base_loopbreak(s->base);
    pthread_join(s->thread, NULL);
    ck_edge_listener_free(s->listener);
    ck_edge_listener_free(s->listener2);
    /* libevent finishes freeing closed connections in the loop: give it one more turn. */
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    event_base_free(s->base);
    ck_edge_kex_free(s->kex);
    ck_edge_tables_free(s->tables);
    free(s);
}

/* rcvbuf > 0 shrinks the client's socket buffers, so a client that does not read soon stops
 * the server's writes instead of the kernel absorbing them. */
static int tcp_connect_rcvbuf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof(rcvbuf));
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static int tcp_connect(int port)
{
    return tcp_connect_rcvbuf(port, 0);
}

struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
    int error_reason; /* why the handshake failed: an SSL_R_ reason */
};

/* Handshakes over fd (connected). max_version 0: the client's defaults (TLS 1.2 and 1.3). */
static bool client_handshake(struct client *c, int fd, const char *sni, int max_version,
                             SSL_SESSION *resume)
{
    memset(c, 0, sizeof(*c));
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    if (max_version != 0) {
        /* Let the client really offer old versions, so the refusal is the server's. */
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
        SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0");
    }
    c->fd = fd;
    c->ssl = SSL_new(c->ctx);
    assert_non_null(c->ssl);
    SSL_set_fd(c->ssl, c->fd);
    if (sni != NULL)
        assert_int_equal(SSL_set_tlsext_host_name(c->ssl, sni), 1);
    if (resume != NULL)
        SSL_set_session(c->ssl, resume);
    ERR_clear_error();
    if (SSL_connect(c->ssl) == 1)
        return true;
    c->error_reason = ERR_GET_REASON(ERR_peek_last_error());
    ERR_clear_error();
    return false;
}

static bool client_open(struct client *c, int port, const char *sni, int max_version,
                        SSL_SESSION *resume)
{
    return client_handshake(c, tcp_connect(port), sni, max_version, resume);
}

static void client_close(struct client *c)
{
    /* A clean close: OpenSSL marks the session of an unclean one not resumable. */
    if (SSL_is_init_finished(c->ssl))
        SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

/* Sends a request and reads one whole answer (head and Content-Length body) into out. */
static size_t http_exchange(struct client *c, const char *request, char *out, size_t cap)
{
    assert_int_equal(SSL_write(c->ssl, request, (int)strlen(request)), (int)strlen(request));
    size_t len = 0;
    for (int reads = 0; reads < 50 && len < cap - 1; reads++) {
        int n = SSL_read(c->ssl, out + len, (int)(cap - 1 - len));
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
        const char *end = strstr(out, "\r\n\r\n"), *cl = strstr(out, "Content-Length: ");
        bool head_only = strncmp(request, "HEAD ", 5) == 0 || cl == NULL;
        size_t body = head_only ? 0 : strtoul(cl + 16, NULL, 10);
        if (end != NULL && len >= (size_t)(end + 4 - out) + body)
            break;
    }
    out[len] = '\0';
    return len;
}

static const char ok_response[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";

static void assert_get_ok(struct client *c)
{
    char buf[1024];
    http_exchange(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", buf, sizeof(buf));
    assert_string_equal(buf, ok_response);
}

static void assert_serves(struct server *s, const char *sni, X509 *leaf)
{
    struct client c;
    if (!client_open(&c, s->port, sni, 0, NULL))
        fail_msg("handshake for %s failed (reason %d)", sni, c.error_reason);
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(c.ssl), leaf), 0);
    assert_get_ok(&c);
    client_close(&c);
}

static void test_listener_serves_by_sni_with_full_chain(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    struct client c;
    assert_true(client_open(&c, s->port, "a.test", 0, NULL));
    assert_int_equal(SSL_version(c.ssl), TLS1_3_VERSION);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c.ssl); /* the client's view: leaf first */
    assert_int_equal(sk_X509_num(chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), p->leaf1), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 1), p->inter), 0);
    assert_get_ok(&c);
    assert_get_ok(&c); /* keep-alive */
    char buf[1024];
    http_exchange(&c, "GET /elsewhere HTTP/1.1\r\nHost: a.test\r\n\r\n", buf, sizeof(buf));
    assert_true(strncmp(buf, "HTTP/1.1 404 ", 13) == 0);
    http_exchange(&c, "HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n", buf, sizeof(buf));
    assert_true(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    http_exchange(&c, "BREW /pot\r\n\r\n", buf, sizeof(buf));
    assert_true(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_true(SSL_read(c.ssl, buf, sizeof(buf)) <= 0); /* and the connection is closed */
    client_close(&c);

    /* Two requests in one write both get answers; HTTP/1.0 closes after its answer. */
    assert_true(client_open(&c, s->port, "x.wild.test", 0, NULL));
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(c.ssl), p->leaf1), 0);
    http_exchange(&c, "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n", buf, sizeof(buf));
    size_t len = strlen(buf);
    for (int reads = 0; reads < 20; reads++) {
        int n = SSL_read(c.ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    assert_non_null(strstr(buf, "OKHTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    client_close(&c);

    assert_serves(s, "b.test", p->leaf2);
    server_stop(s);
}

/* Counts complete OK answers in a stream that may split them anywhere. */
static size_t count_ok(const char *data, size_t len, size_t *matched)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        *matched = data[i] == ok_response[*matched] ? *matched + 1 : (data[i] == ok_response[0]);
        if (*matched == sizeof(ok_response) - 1) {
            count++;
            *matched = 0;
        }
    }
    return count;
}

static void test_listener_pipelining_client_that_reads_late(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    enum { REQUESTS = 150000 }; /* 10 MB of answers: more than kernel buffers and server queue */
    static const char request[] = "GET / HTTP/1.1\r\n\r\n";
    size_t total = REQUESTS * (sizeof(request) - 1), sent = 0, answered = 0, matched = 0;
    char *burst = malloc(total), buf[16384];
    assert_non_null(burst);
    for (size_t i = 0; i < REQUESTS; i++)
        memcpy(burst + i * (sizeof(request) - 1), request, sizeof(request) - 1);
    struct client c;
    assert_true(client_handshake(&c, tcp_connect_rcvbuf(s->port, 4096), "a.test", 0, NULL));
    int flags = fcntl(c.fd, F_GETFL);
    fcntl(c.fd, F_SETFL, flags | O_NONBLOCK);
    SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Write without reading until the server stops taking requests for 300 ms: its answers
     * filled the kernel buffers and its own queue, so it paused reading. Then read. */
    for (int i = 0; i < 1000000 && sent < total; i++) {
        int n = SSL_write(c.ssl, burst + sent, (int)(total - sent < 4096 ? total - sent : 4096));
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        ERR_clear_error();
        struct pollfd pfd = {.fd = c.fd, .events = POLLOUT};
        if (poll(&pfd, 1, 300) == 0)
            break;
    }
    assert_true(sent < total);
    for (int i = 0; i < 1000000 && answered < REQUESTS; i++) {
        struct pollfd pfd = {.fd = c.fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        assert_true(poll(&pfd, 1, 5000) > 0);
        int n = sent < total ? SSL_write(c.ssl, burst + sent,
                                         (int)(total - sent < 4096 ? total - sent : 4096))
                             : 0;
        if (n > 0)
            sent += (size_t)n;
        n = SSL_read(c.ssl, buf, sizeof(buf));
        if (n > 0)
            answered += count_ok(buf, (size_t)n, &matched);
        ERR_clear_error();
    }
    free(burst);
    assert_int_equal(answered, REQUESTS);
    fcntl(c.fd, F_SETFL, flags);
    assert_get_ok(&c); /* and the connection still takes requests */
    client_close(&c);
    server_stop(s);
}

static void test_listener_refuses_unknown_names_and_old_tls(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    struct client c;
    assert_false(client_open(&c, s->port, "c.test", 0, NULL));
    assert_int_equal(c.error_reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    client_close(&c);
    assert_false(client_open(&c, s->port, "x.y.wild.test", 0, NULL));
    assert_int_equal(c.error_reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    client_close(&c);
    assert_false(client_open(&c, s->port, NULL, 0, NULL));
    assert_int_equal(c.error_reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    client_close(&c);
    assert_false(client_open(&c, s->port, "a.test", TLS1_1_VERSION, NULL));
    assert_int_equal(c.error_reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    client_close(&c);

    /* TLS 1.2 works, with an ECDHE AEAD suite, and a second connection resumes the session. */
    assert_true(client_open(&c, s->port, "a.test", TLS1_2_VERSION, NULL));
    assert_int_equal(SSL_version(c.ssl), TLS1_2_VERSION);
    const char *cipher = SSL_get_cipher_name(c.ssl);
    assert_true(strncmp(cipher, "ECDHE-", 6) == 0);
    assert_true(strstr(cipher, "GCM") != NULL || strstr(cipher, "CHACHA20") != NULL);
    assert_null(SSL_get_current_compression(c.ssl));
    SSL_SESSION *session = SSL_get1_session(c.ssl);
    assert_get_ok(&c);
    client_close(&c);
    assert_true(client_open(&c, s->port, "a.test", TLS1_2_VERSION, session));
    assert_int_equal(SSL_session_reused(c.ssl), 1);
    assert_get_ok(&c);
    client_close(&c);
    SSL_SESSION_free(session);
    server_stop(s);
}

/* TLS 1.3: a full handshake, then one that resumes with the ticket the server sent after it (a
 * PSK handshake: its binder and secrets come from the edge's key schedule, tls13_kdf.h). */
static void test_listener_resumes_tls13_sessions(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    struct client c;
    uint64_t before = ck_edge_kex_key_schedule_steps(s->kex);
    assert_true(client_open(&c, s->port, "a.test", 0, NULL));
    assert_int_equal(SSL_version(c.ssl), TLS1_3_VERSION);
    assert_get_ok(&c); /* the tickets came after the handshake, before the answer */
    SSL_SESSION *session = SSL_get1_session(c.ssl);
    assert_int_equal(SSL_SESSION_is_resumable(session), 1);
    client_close(&c);
    uint64_t after_full = ck_edge_kex_key_schedule_steps(s->kex);
    assert_true(after_full > before + 10);

    assert_true(client_open(&c, s->port, "a.test", 0, session));
    assert_int_equal(SSL_version(c.ssl), TLS1_3_VERSION);
    assert_int_equal(SSL_session_reused(c.ssl), 1);
    assert_get_ok(&c);
    client_close(&c);
    assert_true(ck_edge_kex_key_schedule_steps(s->kex) > after_full + 10);
    SSL_SESSION_free(session);
    server_stop(s);
}

/* A TLS 1.2 client that asks for no session ticket, so resumption can only be by session ID;
 * with groups set, it offers only those key exchange groups. */
static bool client_open_custom(struct client *c, int port, SSL_SESSION *resume, const char *groups)
{
    memset(c, 0, sizeof(*c));
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    if (groups != NULL)
        assert_int_equal(SSL_CTX_set1_groups_list(c->ctx, groups), 1);
    else
        SSL_CTX_set_max_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET);
    c->fd = tcp_connect(port);
    c->ssl = SSL_new(c->ctx);
    assert_non_null(c->ssl);
    SSL_set_fd(c->ssl, c->fd);
    assert_int_equal(SSL_set_tlsext_host_name(c->ssl, "a.test"), 1);
    if (resume != NULL)
        SSL_set_session(c->ssl, resume);
    bool ok = SSL_connect(c->ssl) == 1;
    ERR_clear_error();
    return ok;
}

/* Resumption by session ID: the server keeps the session of a connection the client closed
 * cleanly, even after the server freed that connection. And a client offering only a
 * finite-field group is refused: the edge does elliptic-curve key exchange only. */
static void test_listener_resumes_by_session_id_and_refuses_ffdhe(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    struct client c;
    assert_true(client_open_custom(&c, s->port, NULL, NULL));
    SSL_SESSION *session = SSL_get1_session(c.ssl);
    unsigned id_len = 0;
    SSL_SESSION_get_id(session, &id_len);
    assert_true(id_len > 0);
    assert_get_ok(&c);
    client_close(&c);
    usleep(200 * 1000); /* let the loop see the end of stream and free the connection */
    assert_true(client_open_custom(&c, s->port, session, NULL));
    assert_int_equal(SSL_session_reused(c.ssl), 1);
    assert_get_ok(&c);
    client_close(&c);
    SSL_SESSION_free(session);

    assert_false(client_open_custom(&c, s->port, NULL, "ffdhe2048:ffdhe8192"));
    client_close(&c);
    assert_serves(s, "a.test", p->leaf1);
    server_stop(s);
}

static void test_listener_hot_swap_keeps_open_connections(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    struct client before;
    assert_true(client_open(&before, s->port, "a.test", 0, NULL));
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(before.ssl), p->leaf1), 0);
    assert_get_ok(&before);

    ck_edge_tables_publish(s->tables, table_two(p)); /* while the loop serves */
    assert_serves(s, "a.test", p->leaf2);
    struct client gone;
    assert_false(client_open(&gone, s->port, "x.wild.test", 0, NULL));
    assert_int_equal(gone.error_reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    client_close(&gone);

    assert_get_ok(&before); /* the connection opened before the swap still answers */
    client_close(&before);
    server_stop(s);
}

/* A minimal TLS 1.2 ClientHello record offering an ECDHE-ECDSA suite, with one SNI name. */
static size_t client_hello(uint8_t *buf, size_t cap, const char *sni, size_t sni_len)
{
    static const uint8_t exts_tail[] = {
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, /* supported_groups: secp256r1 */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,             /* ec_point_formats: uncompressed */
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, /* signature_algorithms: ecdsa_sha256 */
    };
    size_t sni_ext = 4 + 2 + 3 + sni_len, exts = sni_ext + sizeof(exts_tail);
    size_t body = 2 + 32 + 1 + 2 + 4 + 2 + 2 + exts;
    assert_true(5 + 4 + body <= cap);
    uint8_t *q = buf;
    *q++ = 0x16, *q++ = 0x03, *q++ = 0x01, *q++ = (uint8_t)((4 + body) >> 8);
    *q++ = (uint8_t)(4 + body);
    *q++ = 0x01, *q++ = 0, *q++ = (uint8_t)(body >> 8), *q++ = (uint8_t)body;
    *q++ = 0x03, *q++ = 0x03;
    memset(q, 0x5a, 32), q += 32;
    *q++ = 0;                                                               /* no session id */
    *q++ = 0, *q++ = 4, *q++ = 0xc0, *q++ = 0x2b, *q++ = 0xc0, *q++ = 0x2f; /* suites */
    *q++ = 1, *q++ = 0; /* null compression only */
    *q++ = (uint8_t)(exts >> 8), *q++ = (uint8_t)exts;
    *q++ = 0, *q++ = 0, *q++ = (uint8_t)((sni_ext - 4) >> 8), *q++ = (uint8_t)(sni_ext - 4);
    *q++ = (uint8_t)((3 + sni_len) >> 8), *q++ = (uint8_t)(3 + sni_len);
    *q++ = 0, *q++ = (uint8_t)(sni_len >> 8), *q++ = (uint8_t)sni_len;
    memcpy(q, sni, sni_len), q += sni_len;
    memcpy(q, exts_tail, sizeof(exts_tail)), q += sizeof(exts_tail);
    return (size_t)(q - buf);
}

/* Sends raw bytes and reads the answer: its length, 0 when the server closed (or reset) the
 * connection, -1 when it said nothing for 5 s. */
static ssize_t raw_exchange(int port, const uint8_t *data, size_t len, uint8_t *answer, size_t cap)
{
    int fd = tcp_connect(port);
    assert_int_equal(send(fd, data, len, 0), (ssize_t)len);
    ssize_t n = recv(fd, answer, cap, MSG_WAITALL);
    if (n < 0 && errno == ECONNRESET)
        n = 0;
    close(fd);
    return n;
}

static void test_listener_survives_hostile_clients(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 500, 0);
    uint8_t hello[1024], answer[7];
    char name[300];
    memset(name, 'a', sizeof(name));
    memcpy(name + sizeof(name) - 7, ".a.test", 7);

    /* The hand-made hello is good: with a known name it gets a ServerHello. */
    size_t len = client_hello(hello, sizeof(hello), "a.test", 6);
    assert_int_equal(raw_exchange(s->port, hello, len, answer, 1), 1);
    assert_int_equal(answer[0], 0x16);
    /* The same hello with a 300-byte name: a fatal unrecognized_name alert. */
    len = client_hello(hello, sizeof(hello), name, sizeof(name));
    assert_int_equal(raw_exchange(s->port, hello, len, answer, 7), 7);
    assert_int_equal(answer[0], 0x15);
    assert_int_equal(answer[5], 2);
    assert_int_equal(answer[6], 112);
    /* A malformed hello (lengths that do not add up) and plain garbage: refused, closed. */
    len = client_hello(hello, sizeof(hello), "a.test", 6);
    hello[9 + 2 + 32 + 1 + 1] = 0x40; /* cipher suites length runs past the message */
    ssize_t n = raw_exchange(s->port, hello, len, answer, 7);
    assert_true(n == 0 || (n > 0 && answer[0] == 0x15));
    static const char garbage[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    n = raw_exchange(s->port, (const uint8_t *)garbage, strlen(garbage), answer, 7);
    assert_true(n == 0 || (n > 0 && answer[0] == 0x15));

    /* A client that never finishes its handshake is dropped after the handshake timeout, and
     * others are served meanwhile. */
    int slow = tcp_connect(s->port);
    assert_int_equal(send(slow, hello, 20, 0), 20);
    assert_serves(s, "a.test", p->leaf1);
    assert_int_equal(recv(slow, answer, sizeof(answer), 0), 0);
    close(slow);
    assert_serves(s, "b.test", p->leaf2);
    server_stop(s);
}

/* After the handshake, a request head that trickles in is cut off by the same deadline as the
 * handshake, however regularly its bytes come; a client that waits before its request is not. */
static void test_listener_slow_request_head_is_dropped(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 500, 0);
    struct client c;
    assert_true(client_open(&c, s->port, "a.test", 0, NULL));
    usleep(700 * 1000); /* longer than the deadline, before any request: still fine */
    assert_get_ok(&c);
    static const char head[] = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Slow: 1";
    bool closed = false;
    for (size_t i = 0; i < sizeof(head) - 1 && !closed; i++) {
        closed = SSL_write(c.ssl, head + i, 1) != 1;
        usleep(100 * 1000);
    }
    ERR_clear_error();
    /* 39 bytes at 10 per second: the server must have closed long before the last one. */
    assert_true(closed);
    client_close(&c);
    assert_serves(s, "a.test", p->leaf1);
    server_stop(s);
}

/* Whether a handshake for a.test on port succeeds within a second: once connections are freed,
 * the loop needs a moment to notice there is room again. */
static bool serves_again(int port)
{
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; attempt++) {
        struct client c;
        served = client_open(&c, port, "a.test", 0, NULL);
        client_close(&c);
        if (!served)
            usleep(20 * 1000);
    }
    return served;
}

static void test_listener_caps_connections(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 2);
    int idle1 = tcp_connect(s->port), idle2 = tcp_connect(s->port);
    usleep(100 * 1000); /* let the loop accept both */
    int over = tcp_connect(s->port);
    uint8_t byte;
    assert_int_equal(recv(over, &byte, 1, 0), 0); /* closed at once, not after a timeout */
    close(over);
    close(idle1);
    close(idle2);
    /* Once the idle ones are gone there is room again (the loop needs a moment to notice). */
    assert_true(serves_again(s->port));
    server_stop(s);
}

/* A handshake from another thread (no cmocka asserts there): 1 for leaf1, 2 for leaf2, 0 when
 * it failed. */
static int handshake_which(const struct pki *p, int port, const char *sni)
{
    int which = 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx == NULL ? NULL : SSL_new(ctx);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (ssl != NULL && fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        SSL_set_fd(ssl, fd) == 1 && SSL_set_tlsext_host_name(ssl, sni) == 1 &&
        SSL_connect(ssl) == 1) {
        X509 *leaf = SSL_get0_peer_certificate(ssl);
        which = X509_cmp(leaf, p->leaf1) == 0 ? 1 : X509_cmp(leaf, p->leaf2) == 0 ? 2 : 0;
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return which;
}

struct load {
    const struct pki *pki;
    int port;
    int handshakes, failures, saw_leaf1, saw_leaf2;
};

static void *handshake_load(void *arg)
{
    struct load *load = arg;
    for (int i = 0; i < load->handshakes; i++) {
        int which = handshake_which(load->pki, load->port, "a.test");
        load->failures += which == 0;
        load->saw_leaf1 += which == 1;
        load->saw_leaf2 += which == 2;
    }
    return NULL;
}

/* Two listeners sharing a budget of two connections: the third, on either, is closed at once,
 * and closing one makes room on the other. */
static void test_listener_shared_budget(void **state)
{
    struct pki *p = *state;
    struct ck_edge_conn_budget budget = {.max = 2};
    struct server *s = server_start_budget(p, &budget);
    int idle1 = tcp_connect(s->port), idle2 = tcp_connect(s->port);
    usleep(100 * 1000); /* let the loop accept both */
    int over = tcp_connect(s->port2);
    uint8_t byte;
    assert_int_equal(recv(over, &byte, 1, 0), 0);
    close(over);
    close(idle1);
    assert_true(serves_again(s->port2));
    close(idle2);
    server_stop(s);
}

static long cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
}

/* Out of descriptors, the listener neither spins nor dies: it pauses, and accepts the waiting
 * connections once descriptors are free again. */
static void test_listener_pauses_when_out_of_descriptors(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    enum { CLIENTS = 8 };
    int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(clients[i] >= 0);
    }
    /* The lowest free descriptor and the one after it are all the server may take. */
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit saved, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    tight = saved;
    tight.rlim_cur = (rlim_t)lowest + 2;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(connect(clients[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
    usleep(200 * 1000);
    long before = cpu_ms();
    usleep(500 * 1000);
    long used = cpu_ms() - before;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    if (used > 200)
        fail_msg("the loop used %ld ms of CPU in 500 ms out of descriptors: it spins", used);
    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    assert_serves(s, "a.test", p->leaf1);
    server_stop(s);
}

static void test_listener_reload_under_load_fails_no_handshake(void **state)
{
    struct pki *p = *state;
    struct server *s = server_start(p, 0, 0);
    struct load loads[2] = {{.pki = p, .port = s->port, .handshakes = 150},
                            {.pki = p, .port = s->port, .handshakes = 150}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, handshake_load, &loads[i]), 0);
    for (int swap = 0; swap < 200; swap++) {
        ck_edge_tables_publish(s->tables, swap % 2 == 0 ? table_two(p) : table_one(p));
        usleep(1000);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(loads[i].failures, 0);
        assert_int_equal(loads[i].saw_leaf1 + loads[i].saw_leaf2, loads[i].handshakes);
    }
    print_message("# 300 handshakes during 200 reloads: %d got the old certificate, %d the new\n",
                  loads[0].saw_leaf1 + loads[1].saw_leaf1, loads[0].saw_leaf2 + loads[1].saw_leaf2);
    server_stop(s);
}

static void test_listener_addresses(void **state)
{
    struct pki *p = *state;
    struct event_base *base = event_base_new();
    ck_edge_tables *tables = ck_edge_tables_new(0, NULL);
    const char *bad[] = {"localhost:8444", "127.0.0.1", "127.0.0.1:99999", "", "[::1]"};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++) {
        struct ck_edge_listener_options opts = {.address = bad[i], .tables = tables};
        ck_error err = {0};
        assert_null(ck_edge_listener_new(base, &opts, &err));
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_address");
    }
    /* IPv6 loopback, when the machine has it. */
    struct ck_edge_listener_options v6 = {.address = "[::1]:0", .tables = tables};
    ck_error err = {0};
    ck_edge_listener *l = ck_edge_listener_new(base, &v6, &err);
    if (l != NULL)
        assert_true(ck_edge_listener_port(l) > 0);
    else
        assert_string_equal(err.code, "listen_failed");
    ck_edge_listener_free(l);
    (void)p;
    event_base_free(base);
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
        cmocka_unit_test(test_leaf_parser),
        cmocka_unit_test(test_leaf_parser_private_keys_sign),
        cmocka_unit_test(test_leaf_parser_join),
        cmocka_unit_test(test_leaf_parser_keys_sign_concurrently),
        cmocka_unit_test(test_leaf_parser_keys_in_handshakes),
        cmocka_unit_test(test_tables_key_with_compressed_point),
        cmocka_unit_test(test_tables_share_one_parsed_chain),
        cmocka_unit_test(test_tables_cache_is_bounded_and_refuses_wrong_key),
        cmocka_unit_test(test_tables_refuse_unreadable_extensions),
        cmocka_unit_test(test_listener_serves_by_sni_with_full_chain),
        cmocka_unit_test(test_listener_pipelining_client_that_reads_late),
        cmocka_unit_test(test_listener_refuses_unknown_names_and_old_tls),
        cmocka_unit_test(test_listener_resumes_by_session_id_and_refuses_ffdhe),
        cmocka_unit_test(test_listener_resumes_tls13_sessions),
        cmocka_unit_test(test_listener_hot_swap_keeps_open_connections),
        cmocka_unit_test(test_listener_survives_hostile_clients),
        cmocka_unit_test(test_listener_slow_request_head_is_dropped),
        cmocka_unit_test(test_listener_caps_connections),
        cmocka_unit_test(test_listener_shared_budget),
        cmocka_unit_test(test_listener_pauses_when_out_of_descriptors),
        cmocka_unit_test(test_listener_reload_under_load_fails_no_handshake),
        cmocka_unit_test(test_listener_addresses),
    };
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    if (evthread_use_pthreads() != 0)
        return 1;
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
