/* test_kex.c — the edge's X25519 (src/edge/kex_provider.c): RFC 7748's vectors, agreement with
 * OpenSSL's own X25519 both ways, small-order peers refused, real TLS handshakes whose server key
 * share comes from this provider, and ClientHellos with bad X25519 shares refused with an
 * alert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "edge/kex_provider.h"
#include "tls_pair.h"

#define OUR_DESCRIPTION "X25519 keys (libsodium)"

static int setup(void **state)
{
    *state = ck_edge_kex_new(NULL);
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    ck_edge_kex_free(*state);
    return 0;
}

static void hex_to(const char *hex, unsigned char out[32])
{
    for (size_t i = 0; i < 32; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

static EVP_PKEY *our_private(ck_edge_kex *k, const unsigned char priv[32])
{
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key_ex(ck_edge_kex_libctx(k), "X25519",
                                                    ck_edge_kex_propq(), priv, 32);
    assert_non_null(key);
    assert_string_equal(EVP_PKEY_get0_description(key), OUR_DESCRIPTION);
    return key;
}

static EVP_PKEY *our_public(ck_edge_kex *k, const unsigned char pub[32])
{
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key_ex(ck_edge_kex_libctx(k), "X25519",
                                                   ck_edge_kex_propq(), pub, 32);
    assert_non_null(key);
    return key;
}

/* The shared secret of own and peer, computed in own's library context; -1 when refused.
 * *by_us tells whether this provider did the computation. */
static int derive(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *own, EVP_PKEY *peer,
                  unsigned char out[32], bool *by_us)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, own, propq);
    size_t len = 32;
    int rc = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
                     EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
                     EVP_PKEY_derive(ctx, out, &len) == 1 && len == 32
                 ? 0
                 : -1;
    if (by_us != NULL && ctx != NULL && EVP_PKEY_CTX_get0_provider(ctx) != NULL)
        *by_us = strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(ctx)),
                        "certkeep-edge-kex") == 0;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* derive() in the edge's library context, asserting that this provider did the computation
 * (or the refusal), not a fallback; returns derive()'s result. */
static int derive_here(ck_edge_kex *k, EVP_PKEY *own, EVP_PKEY *peer, unsigned char out[32])
{
    bool by_us = false;
    int rc = derive(ck_edge_kex_libctx(k), ck_edge_kex_propq(), own, peer, out, &by_us);
    assert_true(by_us);
    return rc;
}

/* RFC 7748 section 6.1: both public keys from the private ones, and the shared secret. */
static void test_rfc7748_vectors(void **state)
{
    ck_edge_kex *k = *state;
    unsigned char alice_priv[32], alice_pub[32], bob_priv[32], bob_pub[32], shared[32];
    hex_to("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", alice_priv);
    hex_to("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", alice_pub);
    hex_to("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", bob_priv);
    hex_to("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bob_pub);
    hex_to("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", shared);

    EVP_PKEY *alice = our_private(k, alice_priv), *bob = our_private(k, bob_priv);
    unsigned char pub[32], out[32];
    size_t len = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(alice, pub, &len), 1);
    assert_memory_equal(pub, alice_pub, 32);
    len = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(bob, pub, &len), 1);
    assert_memory_equal(pub, bob_pub, 32);

    EVP_PKEY *bob_public = our_public(k, bob_pub), *alice_public = our_public(k, alice_pub);
    assert_int_equal(derive_here(k, alice, bob_public, out), 0);
    assert_memory_equal(out, shared, 32);
    assert_int_equal(
        derive(ck_edge_kex_libctx(k), ck_edge_kex_propq(), bob, alice_public, out, NULL), 0);
    assert_memory_equal(out, shared, 32);
    EVP_PKEY_free(alice);
    EVP_PKEY_free(bob);
    EVP_PKEY_free(alice_public);
    EVP_PKEY_free(bob_public);
}

/* RFC 7748 section 5.2: scalars and u-coordinates as given (unclamped scalar bits, a u with its
 * top bit set), against their outputs; OpenSSL's own X25519 gives the same. */
static void test_rfc7748_function_vectors(void **state)
{
    ck_edge_kex *k = *state;
    static const char *vectors[][3] = {
        {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
        {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
         "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
         "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"}};
    for (size_t i = 0; i < 2; i++) {
        unsigned char scalar[32], u[32], expected[32], out[32];
        hex_to(vectors[i][0], scalar);
        hex_to(vectors[i][1], u);
        hex_to(vectors[i][2], expected);
        EVP_PKEY *own = our_private(k, scalar), *peer = our_public(k, u);
        assert_int_equal(derive_here(k, own, peer, out), 0);
        assert_memory_equal(out, expected, 32);
        EVP_PKEY *theirs = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, scalar, 32);
        EVP_PKEY *their_peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, u, 32);
        assert_int_equal(derive(NULL, NULL, theirs, their_peer, out, NULL), 0);
        assert_memory_equal(out, expected, 32);
        EVP_PKEY_free(theirs);
        EVP_PKEY_free(their_peer);
        EVP_PKEY_free(own);
        EVP_PKEY_free(peer);
    }
}

/* A key generated the way libssl does it (by name, group "x25519"); NULL on failure. No cmocka
 * asserts: a forked child and other threads call it. */
static EVP_PKEY *try_generate(OSSL_LIB_CTX *libctx, const char *propq)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, "X25519", propq);
    EVP_PKEY *key = NULL;
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx, "x25519") != 1 || EVP_PKEY_keygen(ctx, &key) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static EVP_PKEY *generate(OSSL_LIB_CTX *libctx, const char *propq)
{
    EVP_PKEY *key = try_generate(libctx, propq);
    assert_non_null(key);
    return key;
}

/* Keys made here agree with OpenSSL's own X25519 keys, each side computing in its own library,
 * and every generated key is new: 150 of them cross several batches of the provider's. */
static void test_agrees_with_openssl(void **state)
{
    ck_edge_kex *k = *state;
    static unsigned char seen[150][32];
    for (int i = 0; i < 150; i++) {
        EVP_PKEY *ours = generate(ck_edge_kex_libctx(k), ck_edge_kex_propq());
        EVP_PKEY *theirs = generate(NULL, NULL);
        assert_string_equal(EVP_PKEY_get0_description(ours), OUR_DESCRIPTION);
        assert_string_not_equal(EVP_PKEY_get0_description(theirs), OUR_DESCRIPTION);
        unsigned char our_pub[32], their_pub[32], a[32], b[32];
        size_t len = 32;
        assert_int_equal(EVP_PKEY_get_raw_public_key(ours, our_pub, &len), 1);
        len = 32;
        assert_int_equal(EVP_PKEY_get_raw_public_key(theirs, their_pub, &len), 1);
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(our_pub, seen[j], 32);
        memcpy(seen[i], our_pub, 32);

        EVP_PKEY *their_pub_here = our_public(k, their_pub);
        EVP_PKEY *our_pub_there = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, our_pub, 32);
        assert_non_null(our_pub_there);
        assert_int_equal(derive_here(k, ours, their_pub_here, a), 0);
        assert_int_equal(derive(NULL, NULL, theirs, our_pub_there, b, NULL), 0);
        assert_memory_equal(a, b, 32);
        EVP_PKEY_free(their_pub_here);
        EVP_PKEY_free(our_pub_there);
        EVP_PKEY_free(ours);
        EVP_PKEY_free(theirs);
    }
}

#define KEY_THREADS     4
#define KEYS_PER_THREAD 64

struct key_thread {
    ck_edge_kex *kex;
    unsigned char public_values[KEYS_PER_THREAD][32];
    int made;
};

static void *make_keys(void *arg)
{
    struct key_thread *t = arg;
    for (int i = 0; i < KEYS_PER_THREAD; i++) {
        EVP_PKEY *key = try_generate(ck_edge_kex_libctx(t->kex), ck_edge_kex_propq());
        size_t len = 32;
        if (key != NULL && EVP_PKEY_get_raw_public_key(key, t->public_values[i], &len) == 1)
            t->made++;
        EVP_PKEY_free(key);
    }
    return NULL;
}

/* Four threads taking keys at once from the same batches: every key is made, none twice. */
static void test_threads_get_distinct_keys(void **state)
{
    static struct key_thread threads[KEY_THREADS];
    pthread_t ids[KEY_THREADS];
    for (int i = 0; i < KEY_THREADS; i++) {
        memset(&threads[i], 0, sizeof(threads[i]));
        threads[i].kex = *state;
        assert_int_equal(pthread_create(&ids[i], NULL, make_keys, &threads[i]), 0);
    }
    for (int i = 0; i < KEY_THREADS; i++) {
        assert_int_equal(pthread_join(ids[i], NULL), 0);
        assert_int_equal(threads[i].made, KEYS_PER_THREAD);
    }
    for (int a = 0; a < KEY_THREADS * KEYS_PER_THREAD; a++)
        for (int b = a + 1; b < KEY_THREADS * KEYS_PER_THREAD; b++)
            assert_memory_not_equal(threads[a / KEYS_PER_THREAD].public_values[a % KEYS_PER_THREAD],
                                    threads[b / KEYS_PER_THREAD].public_values[b % KEYS_PER_THREAD],
                                    32);
}

/* Each generated key pair is whole: its private value, given to OpenSSL's own X25519, gives its
 * public value. */
static void test_generated_pairs_are_whole(void **state)
{
    ck_edge_kex *k = *state;
    for (int i = 0; i < 70; i++) {
        EVP_PKEY *ours = generate(ck_edge_kex_libctx(k), ck_edge_kex_propq());
        OSSL_PARAM *params = NULL;
        assert_int_equal(EVP_PKEY_todata(ours, EVP_PKEY_KEYPAIR, &params), 1);
        const OSSL_PARAM *priv = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY);
        const OSSL_PARAM *pub = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
        assert_non_null(priv);
        assert_non_null(pub);
        assert_int_equal(priv->data_size, 32);
        assert_int_equal(pub->data_size, 32);
        EVP_PKEY *theirs = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv->data, 32);
        unsigned char expected[32];
        size_t len = sizeof(expected);
        assert_non_null(theirs);
        assert_int_equal(EVP_PKEY_get_raw_public_key(theirs, expected, &len), 1);
        assert_memory_equal(pub->data, expected, 32);
        EVP_PKEY_free(theirs);
        OSSL_PARAM_free(params);
        EVP_PKEY_free(ours);
    }
}

/* A forked child does not hand out the key pairs its parent made ahead: the next share of each
 * differs. */
static void test_forked_child_makes_its_own(void **state)
{
    ck_edge_kex *k = *state;
    EVP_PKEY *first = generate(ck_edge_kex_libctx(k), ck_edge_kex_propq());
    EVP_PKEY_free(first);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        EVP_PKEY *child = try_generate(ck_edge_kex_libctx(k), ck_edge_kex_propq());
        unsigned char pub[32];
        size_t len = sizeof(pub);
        int ok = child != NULL && EVP_PKEY_get_raw_public_key(child, pub, &len) == 1 &&
                 write(fds[1], pub, 32) == 32;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    unsigned char child_pub[32], parent_pub[32];
    assert_int_equal(read(fds[0], child_pub, 32), 32);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EVP_PKEY *parent = generate(ck_edge_kex_libctx(k), ck_edge_kex_propq());
    size_t len = sizeof(parent_pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(parent, parent_pub, &len), 1);
    assert_memory_not_equal(child_pub, parent_pub, 32);
    EVP_PKEY_free(parent);
}

/* Peer values of small order make an all-zero secret: refused (RFC 8446 section 7.4.2). So are a
 * public value of the wrong size and a group other than x25519. */
static void test_refuses_bad_peers_and_groups(void **state)
{
    ck_edge_kex *k = *state;
    static const char *small_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        /* the same points, not reduced: p, p + 1, and 0 with the top bit set */
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000080"};
    EVP_PKEY *ours = generate(ck_edge_kex_libctx(k), ck_edge_kex_propq());
    for (size_t i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++) {
        unsigned char pub[32], out[32];
        hex_to(small_order[i], pub);
        EVP_PKEY *peer = our_public(k, pub);
        assert_int_equal(derive_here(k, ours, peer, out), -1); /* refused here */
        EVP_PKEY_free(peer);
    }
    unsigned char short_value[31] = {9};
    assert_null(EVP_PKEY_new_raw_public_key_ex(ck_edge_kex_libctx(k), "X25519", ck_edge_kex_propq(),
                                               short_value, 31));
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_name(ck_edge_kex_libctx(k), "X25519", ck_edge_kex_propq());
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_group_name(ctx, "x448") <= 0);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(ours);
    ERR_clear_error();
}

/* One handshake through a BIO pair: the server's SSL_CTX in the edge's library context, the
 * client an ordinary OpenSSL one offering only groups. Returns the description of the server's
 * key share ("(freed)" once libssl has let it go), or NULL when the handshake failed. */
static const char *handshake(ck_edge_kex *k, int version, const char *groups, char *description,
                             size_t size)
{
    EVP_PKEY *key = NULL;
    X509 *cert = tls_pair_self_signed("kex.test", &key);
    assert_non_null(cert);
    SSL_CTX *server_ctx =
        SSL_CTX_new_ex(ck_edge_kex_libctx(k), ck_edge_kex_propq(), TLS_server_method());
    SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(server_ctx);
    assert_non_null(client_ctx);
    assert_int_equal(SSL_CTX_set1_groups_list(server_ctx, "X25519:P-256:P-384"), 1);
    assert_int_equal(SSL_CTX_set1_groups_list(client_ctx, groups), 1);
    SSL_CTX_set_min_proto_version(client_ctx, version);
    SSL_CTX_set_max_proto_version(client_ctx, version);
    SSL *server = SSL_new(server_ctx), *client = SSL_new(client_ctx);
    assert_non_null(server);
    assert_non_null(client);
    assert_int_equal(SSL_use_certificate(server, cert), 1);
    assert_int_equal(SSL_use_PrivateKey(server, key), 1);
    bool both_done = tls_pair_handshake(client, server);
    const char *result = NULL;
    EVP_PKEY *share = NULL;
    if (both_done && SSL_version(client) == version) {
        bool known = SSL_get_tmp_key(server, &share) == 1;
        snprintf(description, size, "%s", known ? EVP_PKEY_get0_description(share) : "(freed)");
        result = description;
    }
    EVP_PKEY_free(share);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return result;
}

/* TLS 1.3 and 1.2 with X25519 use this provider (its key share and its derivation); P-256 and
 * P-384 still work, through OpenSSL's own. */
static void test_handshakes(void **state)
{
    ck_edge_kex *k = *state;
    char description[128];
    uint64_t before = ck_edge_kex_derivations(k);
    assert_string_equal(handshake(k, TLS1_3_VERSION, "X25519", description, sizeof(description)),
                        OUR_DESCRIPTION);
    assert_int_equal(ck_edge_kex_derivations(k), before + 1);
    /* TLS 1.2 frees the server's share before the handshake ends: count the derivation. A TLS
     * 1.2 client must also list the certificate's curve (RFC 8422 section 5.1). */
    assert_non_null(handshake(k, TLS1_2_VERSION, "X25519:P-256", description, sizeof(description)));
    assert_int_equal(ck_edge_kex_derivations(k), before + 2);
    const char *p256 = handshake(k, TLS1_3_VERSION, "P-256", description, sizeof(description));
    assert_non_null(p256);
    assert_string_not_equal(p256, OUR_DESCRIPTION);
    assert_non_null(handshake(k, TLS1_2_VERSION, "P-384:P-256", description, sizeof(description)));
    assert_int_equal(ck_edge_kex_derivations(k), before + 2);
    /* a first share on a group the edge does not take: a HelloRetryRequest to X25519 */
    uint64_t before_retry = ck_edge_kex_derivations(k);
    assert_non_null(handshake(k, TLS1_3_VERSION, "P-521:X25519", description, sizeof(description)));
    assert_int_equal(ck_edge_kex_derivations(k), before_retry + 1);
    /* a group the edge does not offer: no handshake */
    assert_null(handshake(k, TLS1_3_VERSION, "P-521", description, sizeof(description)));
}

/* An X25519-only TLS 1.3 client's first record (its ClientHello), made by OpenSSL. */
static size_t client_hello(unsigned char *out, size_t size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), 1);
    assert_int_equal(SSL_CTX_set1_groups_list(ctx, "X25519"), 1);
    SSL *client = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *sent = BIO_new(BIO_s_mem());
    assert_non_null(client);
    assert_non_null(in);
    assert_non_null(sent);
    SSL_set_bio(client, in, sent);
    SSL_set_connect_state(client);
    assert_int_equal(SSL_do_handshake(client), -1); /* waits for the server */
    int len = BIO_read(sent, out, (int)size);
    assert_true(len > 9 && out[0] == 22 && out[5] == 1); /* a handshake record, a ClientHello */
    SSL_free(client);
    SSL_CTX_free(ctx);
    return (size_t)len;
}

static size_t get_u16(const unsigned char *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* Adds delta to the big-endian length of width bytes at p. */
static void grow_length(unsigned char *p, int width, long delta)
{
    long v = 0;
    for (int i = 0; i < width; i++)
        v = v << 8 | p[i];
    v += delta;
    for (int i = width - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

/* Where a ClientHello record's parts are: the extensions' total length, the key_share extension
 * and its X25519 entry (group, length, value). */
struct hello_layout {
    size_t extensions, key_share, entry;
};

static struct hello_layout layout_of(const unsigned char *hello, size_t len)
{
    struct hello_layout at = {0};
    size_t p = 9 + 2 + 32;       /* record and handshake headers, version, random */
    p += 1 + hello[p];           /* session id */
    p += 2 + get_u16(hello + p); /* cipher suites */
    p += 1 + hello[p];           /* compression methods */
    at.extensions = p;
    for (p += 2; p + 4 <= len; p += 4 + get_u16(hello + p + 2))
        if (get_u16(hello + p) == 51) /* key_share */
            at.key_share = p;
    assert_int_not_equal(at.key_share, 0);
    size_t shares_end = at.key_share + 4 + get_u16(hello + at.key_share + 2);
    for (p = at.key_share + 6; p + 4 <= shares_end; p += 4 + get_u16(hello + p + 2))
        if (get_u16(hello + p) == 0x001d) /* x25519 */
            at.entry = p;
    assert_int_not_equal(at.entry, 0);
    return at;
}

/* hello (one record, one ClientHello) with its X25519 key share replaced by share (share_len
 * bytes, any length) and every enclosing length adjusted, written to out; returns its length. */
static size_t with_share(const unsigned char *hello, size_t len, const unsigned char *share,
                         size_t share_len, unsigned char *out)
{
    struct hello_layout at = layout_of(hello, len);
    size_t old_len = get_u16(hello + at.entry + 2), rest = at.entry + 4 + old_len;
    long delta = (long)share_len - (long)old_len;
    memcpy(out, hello, at.entry + 2);
    out[at.entry + 2] = (unsigned char)(share_len >> 8);
    out[at.entry + 3] = (unsigned char)(share_len & 0xff);
    memcpy(out + at.entry + 4, share, share_len);
    memcpy(out + at.entry + 4 + share_len, hello + rest, len - rest);
    grow_length(out + 3, 2, delta);                /* record */
    grow_length(out + 6, 3, delta);                /* ClientHello */
    grow_length(out + at.extensions, 2, delta);    /* all extensions */
    grow_length(out + at.key_share + 2, 2, delta); /* the key_share extension */
    grow_length(out + at.key_share + 4, 2, delta); /* its client shares */
    return (size_t)((long)len + delta);
}

/* Feeds one ClientHello record to a new server SSL of ctx and returns what it answered (up to
 * size bytes) and whether its handshake failed. */
static size_t server_answer(SSL_CTX *ctx, const unsigned char *hello, size_t len,
                            unsigned char *out, size_t size, bool *failed)
{
    SSL *server = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *sent = BIO_new(BIO_s_mem());
    assert_non_null(server);
    assert_non_null(in);
    assert_non_null(sent);
    assert_int_equal(BIO_write(in, hello, (int)len), (int)len);
    SSL_set_bio(server, in, sent);
    SSL_set_accept_state(server);
    int rc = SSL_do_handshake(server);
    *failed = rc <= 0 && SSL_get_error(server, rc) == SSL_ERROR_SSL;
    int n = BIO_read(sent, out, (int)size);
    SSL_free(server);
    ERR_clear_error();
    return n > 0 ? (size_t)n : 0;
}

/* What a hostile client can put in a ClientHello's X25519 share: 31 or 33 bytes, or a point of
 * small order. The edge's server answers each with one fatal alert and nothing more (no
 * ServerHello, no certificate), derives nothing, and the next ordinary client is served. */
static void test_refuses_bad_shares_in_client_hellos(void **state)
{
    ck_edge_kex *k = *state;
    EVP_PKEY *key = NULL;
    X509 *cert = tls_pair_self_signed("kex.test", &key);
    assert_non_null(cert);
    SSL_CTX *ctx = SSL_CTX_new_ex(ck_edge_kex_libctx(k), ck_edge_kex_propq(), TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set1_groups_list(ctx, "X25519:P-256"), 1);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    unsigned char hello[2048], bad[2048], answer[4096];
    size_t hello_len = client_hello(hello, sizeof(hello));
    unsigned char base_point[33] = {9}, zero[32] = {0}, one[32] = {1}, order8[32];
    hex_to("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", order8);
    const struct {
        const unsigned char *share;
        size_t len;
    } cases[] = {
        {base_point, 31}, /* one byte short */
        {base_point, 33}, /* one byte long */
        {zero, 32},       /* small order (RFC 8446 section 7.4.2's all-zero secret) */
        {one, 32},        /* small order */
        {order8, 32},     /* small order */
    };
    bool failed = false;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t before = ck_edge_kex_derivations(k);
        size_t bad_len = with_share(hello, hello_len, cases[i].share, cases[i].len, bad);
        size_t n = server_answer(ctx, bad, bad_len, answer, sizeof(answer), &failed);
        assert_true(failed);
        assert_int_equal(n, 7); /* one record of one alert: nothing else was sent */
        assert_int_equal(answer[0], 21);
        assert_int_equal(answer[5], 2);  /* fatal */
        assert_int_equal(answer[6], 47); /* illegal_parameter, RFC 8446 section 4.2.8.2 */
        assert_int_equal(ck_edge_kex_derivations(k), before);
    }
    /* The untouched ClientHello, on the same context: a ServerHello, derived here. */
    uint64_t before = ck_edge_kex_derivations(k);
    size_t n = server_answer(ctx, hello, hello_len, answer, sizeof(answer), &failed);
    assert_false(failed);
    assert_true(n > 5 && answer[0] == 22);
    assert_int_equal(ck_edge_kex_derivations(k), before + 1);
    /* with_share changes nothing but the share: the client's own share put back gives the
     * client's bytes, and a 33-byte share taken out again gives them too. */
    unsigned char own[32], longer[2048];
    memcpy(own, hello + layout_of(hello, hello_len).entry + 4, 32);
    assert_int_equal(with_share(hello, hello_len, own, 32, bad), hello_len);
    assert_memory_equal(bad, hello, hello_len);
    size_t longer_len = with_share(hello, hello_len, base_point, 33, longer);
    assert_int_equal(longer_len, hello_len + 1);
    assert_int_equal(with_share(longer, longer_len, own, 32, bad), hello_len);
    assert_memory_equal(bad, hello, hello_len);
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rfc7748_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agrees_with_openssl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rfc7748_function_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_get_distinct_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_pairs_are_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_makes_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_bad_peers_and_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_bad_shares_in_client_hellos, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
