/* test_tls13_kdf.c — the edge's TLS 1.3 key schedule (src/edge/tls13_kdf.c, in the provider of
 * kex_provider.c): RFC 8448's secrets and keys, agreement with OpenSSL's own TLS13-KDF on random
 * inputs in both modes and with both digests, the parameters it refuses, and real TLS 1.3
 * handshakes (each suite, and a HelloRetryRequest) whose key schedule it computes, with an
 * exporter and a key update after them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "edge/kex_provider.h"
#include "tls_pair.h"

#define OURS        "provider=certkeep-edge-kex"
#define OPENSSL_OWN "provider=default"
#define BIG         600 /* more than any input the KDF takes */

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

/* One derivation's inputs; a NULL pointer leaves that parameter out. */
struct kdf_input {
    const char *digest;
    int mode;
    const unsigned char *key, *salt, *label, *data;
    size_t key_len, salt_len, label_len, data_len;
};

static EVP_KDF_CTX *new_kdf(ck_edge_kex *k, const char *propq)
{
    EVP_KDF *kdf = EVP_KDF_fetch(ck_edge_kex_libctx(k), OSSL_KDF_NAME_TLS1_3_KDF, propq);
    assert_non_null(kdf);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    assert_non_null(ctx);
    return ctx;
}

/* The parameters libssl passes (ssl/tls13_enc.c), "tls13 " as the prefix. */
static void input_params(const struct kdf_input *in, OSSL_PARAM params[8])
{
    static const unsigned char prefix[] = "tls13 ";
    OSSL_PARAM *p = params;
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, (int *)&in->mode);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)in->digest, 0);
    if (in->key != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)in->key, in->key_len);
    if (in->salt != NULL)
        *p++ =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)in->salt, in->salt_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
                                             sizeof(prefix) - 1);
    *p++ =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)in->label, in->label_len);
    if (in->data != NULL)
        *p++ =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, (void *)in->data, in->data_len);
    *p = OSSL_PARAM_construct_end();
}

/* 1 when the derivation succeeded, as EVP_KDF_derive says. */
static int derive(ck_edge_kex *k, const char *propq, const struct kdf_input *in, unsigned char *out,
                  size_t out_len)
{
    OSSL_PARAM params[8];
    input_params(in, params);
    EVP_KDF_CTX *ctx = new_kdf(k, propq);
    int rc = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

static size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
    return n;
}

/* Derives with this provider, checks the result against hex, and that OpenSSL agrees. */
static void assert_derives(ck_edge_kex *k, const struct kdf_input *in, const char *hex)
{
    unsigned char want[64], ours[64], openssl_own[64];
    size_t len = unhex(hex, want);
    uint64_t before = ck_edge_kex_key_schedule_steps(k);
    assert_int_equal(derive(k, OURS, in, ours, len), 1);
    assert_int_equal(ck_edge_kex_key_schedule_steps(k), before + 1);
    assert_memory_equal(ours, want, len);
    assert_int_equal(derive(k, OPENSSL_OWN, in, openssl_own, len), 1);
    assert_memory_equal(openssl_own, want, len);
}

#define LABEL(text) .label = (const unsigned char *)(text), .label_len = sizeof(text) - 1

/* RFC 8448 section 3 (a simple 1-RTT handshake): the early, handshake and master secrets, the
 * handshake traffic secrets and the server's handshake key and IV. */
static void test_rfc8448_simple_handshake(void **state)
{
    ck_edge_kex *k = *state;
    unsigned char early[32], handshake[32], ecdhe[32], hello_hash[32], s_hs[32];
    unhex("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a", early);
    unhex("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac", handshake);
    unhex("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d", ecdhe);
    unhex("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8", hello_hash);
    unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38", s_hs);
    const int extract = EVP_KDF_HKDF_MODE_EXTRACT_ONLY, expand = EVP_KDF_HKDF_MODE_EXPAND_ONLY;

    /* early secret: no PSK, no previous secret */
    assert_derives(k, &(struct kdf_input){.digest = "SHA256", .mode = extract, LABEL("derived")},
                   "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a");
    /* handshake secret: the early secret through "derived", then the (EC)DHE secret */
    assert_derives(k,
                   &(struct kdf_input){.digest = "SHA2-256",
                                       .mode = extract,
                                       .key = ecdhe,
                                       .key_len = 32,
                                       .salt = early,
                                       .salt_len = 32,
                                       .label = (const unsigned char *)"derived",
                                       .label_len = 7},
                   "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac");
    /* master secret: no input secret (zeros) */
    assert_derives(k,
                   &(struct kdf_input){.digest = "SHA-256",
                                       .mode = extract,
                                       .salt = handshake,
                                       .salt_len = 32,
                                       .label = (const unsigned char *)"derived",
                                       .label_len = 7},
                   "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919");
    assert_derives(k,
                   &(struct kdf_input){.digest = "SHA256",
                                       .mode = expand,
                                       .key = handshake,
                                       .key_len = 32,
                                       .label = (const unsigned char *)"c hs traffic",
                                       .label_len = 12,
                                       .data = hello_hash,
                                       .data_len = 32},
                   "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21");
    assert_derives(k,
                   &(struct kdf_input){.digest = "SHA256",
                                       .mode = expand,
                                       .key = handshake,
                                       .key_len = 32,
                                       .label = (const unsigned char *)"s hs traffic",
                                       .label_len = 12,
                                       .data = hello_hash,
                                       .data_len = 32},
                   "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
    /* the server's handshake write key and IV: no context at all */
    assert_derives(
        k,
        &(struct kdf_input){
            .digest = "SHA256", .mode = expand, .key = s_hs, .key_len = 32, LABEL("key")},
        "3fce516009c21727d0f2e4e86ee403bc");
    assert_derives(k,
                   &(struct kdf_input){
                       .digest = "SHA256", .mode = expand, .key = s_hs, .key_len = 32, LABEL("iv")},
                   "5d313eb2671276ee13000b30");
}

/* A fixed sequence (splitmix64), so a failing round can be run again as it was. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static unsigned pick(uint64_t *state, unsigned below)
{
    return (unsigned)(next_random(state) % below);
}

static void fill(uint64_t *state, unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)next_random(state);
}

/* 400 derivations of fixed pseudo-random inputs: each mode and digest (under its different
 * names), with and without key, salt and context, keys of up to 300 bytes, labels and contexts
 * up to their limits (249 bytes after "tls13 ", 255) and outputs of 1 to 1000 bytes. */
static void test_agrees_with_openssl(void **state)
{
    ck_edge_kex *k = *state;
    static const char *const digests[] = {"SHA256", "SHA2-256", "sha-256",
                                          "SHA384", "SHA2-384", "SHA-384"};
    unsigned char key[300], salt[48], label[249], data[255], ours[1000], openssl_own[1000];
    uint64_t random = 2026;
    for (int round = 0; round < 400; round++) {
        const char *digest = digests[pick(&random, 6)];
        size_t hash_len = strstr(digest, "384") != NULL ? 48 : 32;
        struct kdf_input in = {.digest = digest,
                               .mode = pick(&random, 2) ? EVP_KDF_HKDF_MODE_EXTRACT_ONLY
                                                        : EVP_KDF_HKDF_MODE_EXPAND_ONLY,
                               .label = label,
                               .label_len = pick(&random, sizeof(label) + 1)};
        fill(&random, key, sizeof(key));
        fill(&random, salt, sizeof(salt));
        fill(&random, label, sizeof(label));
        fill(&random, data, sizeof(data));
        size_t out_len = hash_len;
        if (in.mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY) {
            in.key = key; /* expanding needs a secret */
            in.key_len = 1 + pick(&random, sizeof(key));
            in.data = pick(&random, 4) ? data : NULL;
            in.data_len = pick(&random, sizeof(data) + 1);
            out_len = 1 + pick(&random, sizeof(ours));
        } else {
            in.key = pick(&random, 4) ? key : NULL;
            in.key_len = pick(&random, sizeof(key) + 1);
            in.salt = pick(&random, 4) ? salt : NULL;
            in.salt_len = hash_len;
        }
        assert_int_equal(derive(k, OURS, &in, ours, out_len), 1);
        assert_int_equal(derive(k, OPENSSL_OWN, &in, openssl_own, out_len), 1);
        if (memcmp(ours, openssl_own, out_len) != 0)
            fail_msg("round %d (seed 2026): %s mode %d key %zu salt %s label %zu data %zu out %zu "
                     "differ",
                     round, digest, in.mode, in.key != NULL ? in.key_len : 0,
                     in.salt != NULL ? "yes" : "no", in.label_len,
                     in.data != NULL ? in.data_len : 0, out_len);
    }
    /* every input at its limit, and the longest output SHA-256 allows (255 blocks) */
    static unsigned char big_key[1024], longest_ours[255 * 32], longest_openssl[255 * 32];
    fill(&random, big_key, sizeof(big_key));
    struct kdf_input limits = {.digest = "SHA256",
                               .mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY,
                               .key = big_key,
                               .key_len = sizeof(big_key),
                               .label = label,
                               .label_len = sizeof(label),
                               .data = data,
                               .data_len = sizeof(data)};
    assert_int_equal(derive(k, OURS, &limits, longest_ours, sizeof(longest_ours)), 1);
    assert_int_equal(derive(k, OPENSSL_OWN, &limits, longest_openssl, sizeof(longest_openssl)), 1);
    assert_memory_equal(longest_ours, longest_openssl, sizeof(longest_ours));
    limits.mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
    limits.salt = salt;
    limits.salt_len = 32;
    assert_int_equal(derive(k, OURS, &limits, ours, 32), 1);
    assert_int_equal(derive(k, OPENSSL_OWN, &limits, openssl_own, 32), 1);
    assert_memory_equal(ours, openssl_own, 32);
    /* an empty salt is no salt, for both */
    limits.salt_len = 0;
    assert_int_equal(derive(k, OURS, &limits, ours, 32), 1);
    limits.salt = NULL;
    assert_int_equal(derive(k, OPENSSL_OWN, &limits, openssl_own, 32), 1);
    assert_memory_equal(ours, openssl_own, 32);
}

/* What the KDF refuses, each with an error on the queue and no derivation counted: a mode it
 * does not do, a digest outside TLS 1.3's, an extract of the wrong size, a salt that is not a
 * previous secret, inputs over their limits, an expansion without a secret (also when a refused
 * key replaced a good one). */
/* True when this provider refuses the derivation and says why on the error queue. */
static bool refused(ck_edge_kex *k, const struct kdf_input *in, unsigned char *out, size_t len)
{
    OSSL_PARAM params[8];
    input_params(in, params);
    EVP_KDF_CTX *ctx = new_kdf(k, OURS);
    ERR_clear_error();
    int rc = EVP_KDF_derive(ctx, out, len, params);
    bool said_why = ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_PROV;
    EVP_KDF_CTX_free(ctx);
    ERR_clear_error();
    return rc != 1 && said_why;
}

static void test_refusals(void **state)
{
    ck_edge_kex *k = *state;
    unsigned char big[BIG] = {0}, out[64];
    const int extract = EVP_KDF_HKDF_MODE_EXTRACT_ONLY, expand = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    uint64_t before = ck_edge_kex_key_schedule_steps(k);
    assert_true(refused(k,
                        &(struct kdf_input){.digest = "SHA256",
                                            .mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND,
                                            .key = big,
                                            .key_len = 32,
                                            LABEL("derived")},
                        out, 32));
    static const char *const other_digests[] = {"SHA1", "SHA512", "SHA3-256", "MD5", "SM3", ""};
    for (size_t i = 0; i < sizeof(other_digests) / sizeof(other_digests[0]); i++)
        assert_true(refused(k,
                            &(struct kdf_input){.digest = other_digests[i],
                                                .mode = expand,
                                                .key = big,
                                                .key_len = 32,
                                                LABEL("key")},
                            out, 16));
    struct kdf_input in = {
        .digest = "SHA256", .mode = extract, .key = big, .key_len = 32, LABEL("derived")};
    assert_true(refused(k, &in, out, 16)); /* HashLen is 32 */
    in.key_len = 1025;
    assert_true(refused(k, &in, out, 32));
    in.key_len = 32;
    in.salt = big;
    in.salt_len = 16; /* a previous secret is HashLen bytes */
    assert_true(refused(k, &in, out, 32));
    in.salt_len = 49;
    assert_true(refused(k, &in, out, 32));
    in = (struct kdf_input){.digest = "SHA256",
                            .mode = expand,
                            .key = big,
                            .key_len = 32,
                            .label = big,
                            .label_len = 250}; /* "tls13 " + 250 > 255 */
    assert_true(refused(k, &in, out, 16));
    in = (struct kdf_input){.digest = "SHA256",
                            .mode = expand,
                            .key = big,
                            .key_len = 32,
                            LABEL("key"),
                            .data = big,
                            .data_len = 256};
    assert_true(refused(k, &in, out, 16));
    in = (struct kdf_input){.digest = "SHA256", .mode = expand, LABEL("key")};
    assert_true(refused(k, &in, out, 16));

    /* a refused key takes the place of the good one before it: no secret is left to expand */
    EVP_KDF_CTX *ctx = new_kdf(k, OURS);
    in = (struct kdf_input){
        .digest = "SHA256", .mode = expand, .key = big, .key_len = 32, LABEL("key")};
    OSSL_PARAM params[8];
    input_params(&in, params);
    assert_int_equal(EVP_KDF_CTX_set_params(ctx, params), 1);
    OSSL_PARAM too_long[] = {OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, big, 1025),
                             OSSL_PARAM_construct_end()};
    assert_int_not_equal(EVP_KDF_CTX_set_params(ctx, too_long), 1);
    assert_int_not_equal(EVP_KDF_derive(ctx, out, 16, NULL), 1);
    EVP_KDF_CTX_free(ctx);
    /* a digest but no mode yet */
    ctx = new_kdf(k, OURS);
    OSSL_PARAM digest_only[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end()};
    ERR_clear_error();
    assert_int_not_equal(EVP_KDF_derive(ctx, out, 32, digest_only), 1);
    assert_int_equal(ERR_GET_LIB(ERR_peek_error()), ERR_LIB_PROV);
    EVP_KDF_CTX_free(ctx);
    ERR_clear_error();
    assert_int_equal(ck_edge_kex_key_schedule_steps(k), before);
}

/* The mode may be a string, the size query answers as OpenSSL's does, parameters set before a
 * derivation count but a context ("data") must come with each call, as in OpenSSL, a copy
 * derives what its original does and a reset forgets everything. */
static void test_parameters_as_openssl_reads_them(void **state)
{
    ck_edge_kex *k = *state;
    static const unsigned char secret[32] = {7}, context[32] = {9};
    const char *propqs[] = {OURS, OPENSSL_OWN};
    unsigned char results[2][3][16];
    for (int which = 0; which < 2; which++) {
        EVP_KDF_CTX *ctx = new_kdf(k, propqs[which]);
        OSSL_PARAM setup_params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "EXPAND_ONLY", 0),
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, "tls13 ", 6),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, "key", 3),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, (void *)context, 32),
            OSSL_PARAM_construct_end()};
        assert_int_equal(EVP_KDF_CTX_set_params(ctx, setup_params), 1);
        assert_int_equal(EVP_KDF_CTX_get_kdf_size(ctx), SIZE_MAX);
        assert_int_equal(EVP_KDF_derive(ctx, results[which][0], 16, NULL), 1);
        OSSL_PARAM label_only[] = {OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, "iv", 2),
                                   OSSL_PARAM_construct_end()};
        assert_int_equal(EVP_KDF_derive(ctx, results[which][1], 16, label_only), 1);
        int extract = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
        OSSL_PARAM to_extract[] = {OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &extract),
                                   OSSL_PARAM_construct_end()};
        assert_int_equal(EVP_KDF_CTX_set_params(ctx, to_extract), 1);
        assert_int_equal(EVP_KDF_CTX_get_kdf_size(ctx), 32);
        unsigned char extracted[32];
        assert_int_equal(EVP_KDF_derive(ctx, extracted, 32, NULL), 1);
        memcpy(results[which][2], extracted, 16);
        if (which == 0) { /* OpenSSL 3.0's own TLS13-KDF cannot be copied; this one can */
            unsigned char again[32];
            EVP_KDF_CTX *copy = EVP_KDF_CTX_dup(ctx);
            assert_non_null(copy);
            assert_int_equal(EVP_KDF_derive(copy, again, 32, NULL), 1);
            assert_memory_equal(again, extracted, 32);
            EVP_KDF_CTX_free(copy);
        }
        EVP_KDF_CTX_reset(ctx); /* nothing set: no digest, so no derivation */
        assert_int_not_equal(EVP_KDF_derive(ctx, extracted, 32, NULL), 1);
        EVP_KDF_CTX_free(ctx);
        ERR_clear_error();
    }
    assert_memory_equal(results[0], results[1], sizeof(results[0]));
    /* the second derivation had no context: it differs from one with the context */
    assert_memory_not_equal(results[0][0], results[0][1], 16);
}

/* Client side: counts ServerHellos (a HelloRetryRequest is one too). */
static void count_server_hellos(int write_p, int version, int content_type, const void *buf,
                                size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    const unsigned char *message = buf;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        message[0] == SSL3_MT_SERVER_HELLO)
        ++*(int *)arg;
}

/* Both ends export the same keying material, with the longest label TLS 1.3 allows. */
static void assert_same_export(SSL *client, SSL *server)
{
    char label[249];
    memset(label, 'x', sizeof(label));
    memcpy(label, "EXPORTER-certkeep", 17);
    static const unsigned char context[32] = {1};
    unsigned char from_client[100], from_server[100];
    assert_int_equal(SSL_export_keying_material(client, from_client, sizeof(from_client), label,
                                                sizeof(label), context, sizeof(context), 1),
                     1);
    assert_int_equal(SSL_export_keying_material(server, from_server, sizeof(from_server), label,
                                                sizeof(label), context, sizeof(context), 1),
                     1);
    assert_memory_equal(from_client, from_server, sizeof(from_client));
}

static void pass_text(SSL *from, SSL *to, const char *text)
{
    char got[32];
    int len = (int)strlen(text);
    assert_int_equal(SSL_write(from, text, len), len);
    assert_int_equal(SSL_read(to, got, sizeof(got)), len);
    assert_memory_equal(got, text, (size_t)len);
}

/* The server updates its keys and asks the client to update too; data still flows both ways. */
static void assert_key_update_round_trip(ck_edge_kex *k, SSL *client, SSL *server)
{
    uint64_t before = ck_edge_kex_key_schedule_steps(k);
    assert_int_equal(SSL_key_update(server, SSL_KEY_UPDATE_REQUESTED), 1);
    pass_text(server, client, "under new keys");
    pass_text(client, server, "and the client's");
    pass_text(server, client, "still");
    /* each direction: a new traffic secret, key and IV */
    assert_true(ck_edge_kex_key_schedule_steps(k) >= before + 6);
}

struct handshake_result {
    long steps;        /* key-schedule steps of the edge's KDF during the handshake; -1: failed */
    int server_hellos; /* 2 with a HelloRetryRequest */
};

/* A whole handshake, the server in the edge's library context, the client an ordinary OpenSSL
 * one that checks the server's Finished (and the server the client's); then, both ways, an
 * exporter and, in TLS 1.3, a key update. */
static struct handshake_result handshake(ck_edge_kex *k, int version, const char *suite,
                                         const char *groups)
{
    EVP_PKEY *key = NULL;
    X509 *cert = tls_pair_self_signed("kdf.test", &key);
    assert_non_null(cert);
    SSL_CTX *server_ctx =
        SSL_CTX_new_ex(ck_edge_kex_libctx(k), ck_edge_kex_propq(), TLS_server_method());
    SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(server_ctx);
    assert_non_null(client_ctx);
    assert_int_equal(SSL_CTX_set1_groups_list(server_ctx, "X25519:P-256:P-384"), 1);
    assert_int_equal(SSL_CTX_set1_groups_list(client_ctx, groups), 1);
    assert_int_equal(SSL_CTX_set_ciphersuites(client_ctx, suite), 1);
    SSL_CTX_set_min_proto_version(client_ctx, version);
    SSL_CTX_set_max_proto_version(client_ctx, version);
    SSL *server = SSL_new(server_ctx), *client = SSL_new(client_ctx);
    assert_non_null(server);
    assert_non_null(client);
    assert_int_equal(SSL_use_certificate(server, cert), 1);
    assert_int_equal(SSL_use_PrivateKey(server, key), 1);
    struct handshake_result result = {-1, 0};
    SSL_set_msg_callback(client, count_server_hellos);
    SSL_set_msg_callback_arg(client, &result.server_hellos);
    uint64_t before = ck_edge_kex_key_schedule_steps(k);
    if (tls_pair_handshake(client, server) && SSL_version(client) == version) {
        result.steps = (long)(ck_edge_kex_key_schedule_steps(k) - before);
        assert_same_export(client, server);
        if (version == TLS1_3_VERSION) {
            assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(client)), suite);
            assert_key_update_round_trip(k, client, server);
        }
    }
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return result;
}

static void test_handshakes_use_it(void **state)
{
    ck_edge_kex *k = *state;
    static const char *const suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                         "TLS_CHACHA20_POLY1305_SHA256"};
    for (size_t i = 0; i < 3; i++) {
        struct handshake_result x25519 = handshake(k, TLS1_3_VERSION, suites[i], "X25519");
        assert_true(x25519.steps > 10);
        assert_int_equal(x25519.server_hellos, 1);
        assert_true(handshake(k, TLS1_3_VERSION, suites[i], "P-384").steps > 10);
    }
    /* the client's one share is for a group the edge does not take: a HelloRetryRequest */
    struct handshake_result retried = handshake(k, TLS1_3_VERSION, suites[1], "P-521:X25519");
    assert_true(retried.steps > 10);
    assert_int_equal(retried.server_hellos, 2);
    /* TLS 1.2 has a key schedule of its own (TLS1-PRF, OpenSSL's) */
    assert_int_equal(handshake(k, TLS1_2_VERSION, suites[0], "X25519:P-256").steps, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rfc8448_simple_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agrees_with_openssl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters_as_openssl_reads_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshakes_use_it, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
