/* test_alloc_arena_routed.c — src/common/alloc_arena.c with OpenSSL's allocations routed
 * (ck_alloc_arena_route_openssl, as the daemon's main does): inside a scope OpenSSL's
 * allocations, OpenSSL objects included, come from the cells (small ones) or the second arena
 * and other allocations stay in the thread's; reallocs stay there, frees of every kind work
 * inside and outside, and after the scope everything comes from the thread's arena again. Links
 * jemalloc like the daemon (Makefile); in the sanitizer build there is nothing to route and scopes
 * do nothing. Also: a certificate the edge cache parsed is complete, so its first handshake keeps
 * nothing in the thread's arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/alloc_arena.h"
#include "common/cell_heap.h"
#include "crypto/seal.h"
#include "edge/edge_tables.h"
#include "edge/sni_table.h"
#include "jemalloc_probe.h"
#include "tls_pair.h"

#define COUNT 48

/* Where a scope keeps an OpenSSL allocation: in a cell when it is small, else in its arena. */
static void assert_kept_long(void *p, size_t size, const struct ck_alloc_arena *a)
{
    if (size <= CK_CELL_MAX)
        assert_true(ck_alloc_arena_holds_cell(p));
    else
        assert_int_equal(arena_of(p), a->index);
}

static void check_routed(bool routed)
{
    assert_true(routed);
    struct ck_alloc_arena a;
    ck_alloc_arena_init(&a);
    if (per_cpu_arenas()) {
        assert_false(a.usable);
        return;
    }
    assert_true(a.usable);
    void *before = OPENSSL_malloc(48);
    unsigned home = arena_of(before);
    assert_int_not_equal(home, a.index);

    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&a, &scope);
    assert_true(scope.entered);
    assert_true(scope.routed);
    void *inside[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        inside[i] = OPENSSL_malloc(16 + 80 * i);
        assert_non_null(inside[i]);
        assert_kept_long(inside[i], 16 + 80 * i, &a);
    }
    memset(inside[0], 0x5a, 16);
    inside[0] = OPENSSL_realloc(inside[0], 4000); /* grown out of its cell: the second arena's */
    assert_non_null(inside[0]);
    assert_kept_long(inside[0], 4000, &a);
    assert_int_equal(((unsigned char *)inside[0])[15], 0x5a);
    void *was = inside[2];                       /* 176 bytes */
    inside[2] = OPENSSL_realloc(inside[2], 170); /* within its size class: the same cell */
    assert_ptr_equal(inside[2], was);
    memset(inside[2], 0x3c, 170);
    inside[2] = OPENSSL_realloc(inside[2], 177); /* out of it: another cell, contents kept */
    assert_ptr_not_equal(inside[2], was);
    assert_kept_long(inside[2], 177, &a);
    assert_int_equal(((unsigned char *)inside[2])[169], 0x3c);
    X509 *cert = X509_new(); /* an OpenSSL object, all its parts */
    assert_non_null(cert);
    assert_true(ck_alloc_arena_holds_cell(cert));
    void *plain = malloc(48); /* not OpenSSL's: left where it was */
    assert_false(ck_alloc_arena_holds_cell(plain));
    assert_int_equal(arena_of(plain), home);
    free(plain);
    OPENSSL_free(before); /* the thread's arena's object, freed inside */
    for (size_t i = 0; i < COUNT; i += 2)
        OPENSSL_free(inside[i]);
    assert_null(OPENSSL_malloc(0)); /* as OpenSSL's own allocator */
    ck_alloc_arena_leave(&scope);
    assert_false(scope.entered);

    void *after[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        after[i] = OPENSSL_malloc(16 + 80 * i);
        assert_non_null(after[i]);
        assert_false(ck_alloc_arena_holds_cell(after[i]));
        assert_int_equal(arena_of(after[i]), home);
    }
    inside[1] = OPENSSL_realloc(inside[1], 600); /* a cell grown outside: the thread's arena */
    assert_non_null(inside[1]);
    assert_false(ck_alloc_arena_holds_cell(inside[1]));
    assert_int_equal(arena_of(inside[1]), home);
    for (size_t i = 0; i < COUNT; i++) {
        OPENSSL_free(after[i]);
        if (i % 2 == 1)
            OPENSSL_free(inside[i]); /* the second arena's, freed outside */
    }
    X509_free(cert);
}

static void check_without_jemalloc(bool routed)
{
    assert_false(routed);
    struct ck_alloc_arena a;
    ck_alloc_arena_init(&a);
    assert_false(a.usable);
    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&a, &scope);
    assert_false(scope.entered);
    ck_alloc_arena_leave(&scope);
    void *p = OPENSSL_malloc(64);
    assert_non_null(p);
    OPENSSL_free(p);
}

/* ---- the edge cache's certificates and the thread's arena ---- */

/* A self-signed P-256 certificate for name with the extensions a served certificate has
 * (OpenSSL caches them parsed on first use), its DER in *der, its key in *key. */
static X509 *served_certificate(const char *name, EVP_PKEY **key, unsigned char **der)
{
    char san[64];
    snprintf(san, sizeof(san), "DNS:%s", name);
    X509 *x = tls_pair_self_signed(name, key);
    assert_non_null(x);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct {
        int nid;
        const char *value;
    } extensions[] = {{NID_basic_constraints, "critical,CA:FALSE"},
                      {NID_key_usage, "critical,digitalSignature"},
                      {NID_ext_key_usage, "serverAuth"},
                      {NID_subject_alt_name, san},
                      {NID_subject_key_identifier, "hash"},
                      {NID_authority_key_identifier, "keyid:always"}};
    for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, &ctx, extensions[i].nid, extensions[i].value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, *key, EVP_sha256()) > 0);
    *der = NULL;
    assert_true(i2d_X509(x, der) > 0);
    return x;
}

static EVP_PKEY *unseal_loader(void *arg, const char *label, const uint8_t *blob, size_t len,
                               OSSL_LIB_CTX *libctx, ck_error *err)
{
    return ck_unseal_private_key_ex(arg, label, blob, len, libctx, err);
}

/* Adds name's certificate, with chain_len bytes of chain_der as its chain; its DER in *leaf_der
 * (caller frees), its length returned. */
static size_t add_served(ck_sni_builder *b, const ck_master_key *master, const char *name,
                         const unsigned char *chain_der, size_t chain_len, unsigned char **leaf_der)
{
    EVP_PKEY *key = NULL;
    X509 *x = served_certificate(name, &key, leaf_der);
    size_t leaf_len = (size_t)i2d_X509(x, NULL);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    assert_int_equal(ck_seal_private_key(master, name, key, &sealed, &sealed_len, NULL), 0);
    const char *names[1] = {name};
    const struct ck_sni_entry entry = {.names = names,
                                       .name_count = 1,
                                       .leaf_der = *leaf_der,
                                       .leaf_der_len = leaf_len,
                                       .chain_der =
                                           chain_der != NULL ? chain_der : (const uint8_t *)"",
                                       .chain_der_len = chain_len,
                                       .key_blob = sealed,
                                       .key_blob_len = sealed_len,
                                       .key_label = name};
    assert_int_equal(ck_sni_builder_add(b, &entry, NULL), 0);
    OPENSSL_free(sealed);
    X509_free(x);
    EVP_PKEY_free(key);
    return leaf_len;
}

/* What the thread's allocations grow by (jemalloc's per-thread counts, all arenas) while name's
 * certificate and chain are set on a new SSL, as the edge's ClientHello callback does, and the
 * SSL freed. With in_cells (routed), also checks that the leaf and its cached extensions were
 * kept in cells. */
static int64_t kept_by_one_use(ck_edge_tables *tables, SSL_CTX *ctx, const char *name,
                               bool in_cells)
{
    struct ck_edge_material m;
    assert_int_equal(ck_edge_tables_select(tables, name, strlen(name), &m, NULL), 0);
    assert_int_equal(ERR_peek_error(), 0); /* parsed and cached without a leftover error */
    if (in_cells) {
        assert_true(ck_alloc_arena_holds_cell(m.leaf));
        assert_true(ck_alloc_arena_holds_cell(X509_get0_subject_key_id(m.leaf)));
    }
    uint64_t allocated = thread_counter("thread.allocated"),
             freed = thread_counter("thread.deallocated");
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(SSL_use_cert_and_key(ssl, m.leaf, m.key, m.chain, 1), 1);
    SSL_free(ssl);
    int64_t kept = (int64_t)(thread_counter("thread.allocated") - allocated) -
                   (int64_t)(thread_counter("thread.deallocated") - freed);
    ck_edge_material_clear(&m);
    return kept;
}

/* A certificate the edge cache parsed is complete, its chain's too: the first handshake keeps
 * nothing more in the thread's allocations (libssl's extension caches were made at parse time,
 * in the cache's arena when OpenSSL is routed). */
static void test_cached_certificate_complete_at_parse(void **state)
{
    bool routed = *(const bool *)*state;
    if (mallctl == NULL)
        return; /* the sanitizer build: no per-thread counts to read (check_without_jemalloc) */
    ck_master_key master;
    assert_int_equal(RAND_bytes(master.bytes, sizeof(master.bytes)), 1);
    ck_sni_builder *b = ck_sni_builder_new(unseal_loader, &master, NULL);
    assert_non_null(b);
    unsigned char *first_der = NULL, *second_der = NULL;
    size_t first_len = add_served(b, &master, "first.test", NULL, 0, &first_der);
    (void)add_served(b, &master, "second.test", first_der, first_len, &second_der); /* chained */
    ck_sni_table *table = ck_sni_builder_finish(b, NULL);
    assert_non_null(table);
    ck_edge_tables *tables = ck_edge_tables_new(4, NULL);
    assert_non_null(tables);
    ck_edge_tables_publish(tables, table);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);

    /* Routed, the parsed leaf (an X509 is small) and its parts are kept in cells. */
    bool in_cells = routed && !per_cpu_arenas();
    (void)kept_by_one_use(tables, ctx, "first.test", in_cells); /* the context's first use */
    assert_int_equal(kept_by_one_use(tables, ctx, "first.test", in_cells), 0);
    assert_int_equal(kept_by_one_use(tables, ctx, "second.test", in_cells), 0); /* new, chained */
    SSL_CTX_free(ctx);
    ck_edge_tables_free(tables);
    OPENSSL_free(first_der);
    OPENSSL_free(second_der);
    ck_master_key_wipe(&master);
}

/* state: whether routing was set up at the start of main */
static void test_routed_scope_moves_openssl_allocations(void **state)
{
    bool routed = *(const bool *)*state;
    if (mallctl == NULL)
        check_without_jemalloc(routed);
    else
        check_routed(routed);
}

int main(void)
{
    bool routed = ck_alloc_arena_route_openssl(); /* first, as in certkeep's main */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_routed_scope_moves_openssl_allocations, &routed),
        cmocka_unit_test_prestate(test_cached_certificate_complete_at_parse, &routed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
