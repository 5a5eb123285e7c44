/* kex_provider.c — X25519 for the edge's handshakes, computed by libsodium (see kex_provider.h).
 *
 * What libssl asks of an X25519 key, server side: a key with no value yet ("param" generation)
 * that then takes the client's share as its encoded public key; a key pair generated with the
 * group name "x25519" (the ephemeral key) whose encoded public key goes into the ServerHello or
 * ServerKeyExchange; the public key checked before it is used as a peer; then one derivation.
 * The key manager also imports and exports raw keys, so that OpenSSL can move a key between this
 * provider and its own when it needs to (EVP_PKEY_copy_parameters, a peer key from elsewhere). */
#include "edge/kex_provider.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/prov_ssl.h>
#include <sodium.h>

#include "edge/tls13_kdf.h"
#include "edge/x25519_shares.h"

#define PROVIDER_NAME "certkeep-edge-kex"
/* The names OpenSSL's own X25519 goes by, so that both are one algorithm to the library. */
#define X25519_NAMES "X25519:1.3.101.110"
#define GROUP_NAME   "x25519"
#define KEY_BYTES    32

struct ck_edge_kex {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *default_provider, *kex_provider;
};

/* The provider's own context. */
struct provider_ctx {
    atomic_uint_least64_t derivations, key_schedule_steps;
    ck_x25519_shares *shares; /* the ephemeral keys */
};

/* ---- keys ---- */

struct x25519_key {
    unsigned char public_value[KEY_BYTES], private_value[KEY_BYTES];
    bool has_public, has_private;
};

static void *key_new(void *provctx)
{
    (void)provctx;
    return OPENSSL_zalloc(sizeof(struct x25519_key));
}

static void key_free(void *keydata)
{
    OPENSSL_clear_free(keydata, sizeof(struct x25519_key));
}

static void *key_dup(const void *keydata, int selection)
{
    const struct x25519_key *from = keydata;
    struct x25519_key *to = key_new(NULL);
    if (to == NULL)
        return NULL;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && from->has_public) {
        memcpy(to->public_value, from->public_value, KEY_BYTES);
        to->has_public = true;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && from->has_private) {
        memcpy(to->private_value, from->private_value, KEY_BYTES);
        to->has_private = true;
    }
    return to;
}

static int key_has(const void *keydata, int selection)
{
    const struct x25519_key *key = keydata;
    if (key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && !key->has_public)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !key->has_private)
        return 0;
    return 1; /* X25519 has no domain parameters: always "present" */
}

/* Keys match by public value; a key without one matches nothing. */
static int key_match(const void *keydata1, const void *keydata2, int selection)
{
    const struct x25519_key *a = keydata1, *b = keydata2;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1;
    return a->has_public && b->has_public &&
           sodium_memcmp(a->public_value, b->public_value, KEY_BYTES) == 0;
}

/* Any 32 bytes are an X25519 public value (RFC 7748 section 5): a small-order peer shows at
 * derivation, as an all-zero secret. A key pair is checked whole: its public value must be the
 * one its private value gives. */
static int key_validate(const void *keydata, int selection, int checktype)
{
    (void)checktype;
    const struct x25519_key *key = keydata;
    unsigned char expected[KEY_BYTES];
    if (!key_has(keydata, selection))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != OSSL_KEYMGMT_SELECT_KEYPAIR)
        return 1;
    return crypto_scalarmult_curve25519_base(expected, key->private_value) == 0 &&
           sodium_memcmp(expected, key->public_value, KEY_BYTES) == 0;
}

static bool octets_of(const OSSL_PARAM *p, unsigned char out[KEY_BYTES])
{
    const void *value = NULL;
    size_t len = 0;
    if (OSSL_PARAM_get_octet_string_ptr(p, &value, &len) != 1 || value == NULL || len != KEY_BYTES)
        return false;
    memcpy(out, value, KEY_BYTES);
    return true;
}

/* A private value gets its public value computed, as OpenSSL's own X25519 does; a public value
 * given with it must be that one. */
static int key_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    struct x25519_key *key = keydata;
    const OSSL_PARAM *pub = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
    const OSSL_PARAM *priv = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY);
    unsigned char given_public[KEY_BYTES];
    if (key == NULL || key->has_public)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1;
    if (pub != NULL && !octets_of(pub, given_public))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && priv != NULL) {
        if (!octets_of(priv, key->private_value) ||
            crypto_scalarmult_curve25519_base(key->public_value, key->private_value) != 0 ||
            (pub != NULL && sodium_memcmp(given_public, key->public_value, KEY_BYTES) != 0)) {
            sodium_memzero(key, sizeof(*key));
            return 0;
        }
        key->has_private = key->has_public = true;
        return 1;
    }
    if (pub == NULL)
        return 0;
    memcpy(key->public_value, given_public, KEY_BYTES);
    key->has_public = true;
    return 1;
}

static int key_export(void *keydata, int selection, OSSL_CALLBACK *callback, void *cbarg)
{
    const struct x25519_key *key = keydata;
    OSSL_PARAM params[3], *p = params;
    if (key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && key->has_public)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)key->public_value,
                                                 KEY_BYTES);
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && key->has_private)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY,
                                                 (void *)key->private_value, KEY_BYTES);
    *p = OSSL_PARAM_construct_end();
    return callback(params, cbarg);
}

static const OSSL_PARAM *key_io_types(int selection)
{
    static const OSSL_PARAM none[] = {OSSL_PARAM_END};
    static const OSSL_PARAM keypair[] = {OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                                         OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
                                         OSSL_PARAM_END};
    return (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0 ? keypair : none;
}

static int set_int(OSSL_PARAM params[], const char *name, int value)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, name);
    return p == NULL || OSSL_PARAM_set_int(p, value) == 1;
}

/* Also answers a size query (data NULL), which EVP_PKEY_get1_encoded_public_key makes first. */
static int set_public(OSSL_PARAM params[], const char *name, const struct x25519_key *key)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, name);
    return p == NULL ||
           (key->has_public && OSSL_PARAM_set_octet_string(p, key->public_value, KEY_BYTES) == 1);
}

static int key_get_params(void *keydata, OSSL_PARAM params[])
{
    const struct x25519_key *key = keydata;
    return set_int(params, OSSL_PKEY_PARAM_BITS, 253) &&
           set_int(params, OSSL_PKEY_PARAM_SECURITY_BITS, 128) &&
           set_int(params, OSSL_PKEY_PARAM_MAX_SIZE, KEY_BYTES) &&
           set_public(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, key) &&
           set_public(params, OSSL_PKEY_PARAM_PUB_KEY, key);
}

static const OSSL_PARAM *key_gettable_params(void *provctx)
{
    (void)provctx;
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END};
    return gettable;
}

/* The peer's share arrives this way (EVP_PKEY_set1_encoded_public_key on an empty key). */
static int key_set_params(void *keydata, const OSSL_PARAM params[])
{
    struct x25519_key *key = keydata;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
    if (p == NULL)
        return 1;
    if (key->has_private || !octets_of(p, key->public_value))
        return 0;
    key->has_public = true;
    return 1;
}

static const OSSL_PARAM *key_settable_params(void *provctx)
{
    (void)provctx;
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0), OSSL_PARAM_END};
    return settable;
}

static const char *key_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_KEYEXCH ? "X25519" : NULL;
}

/* ---- key generation ---- */

struct x25519_gen {
    struct provider_ctx *provider;
    int selection;
};

static int gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    (void)genctx;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    const char *name = NULL;
    return p == NULL ||
           (OSSL_PARAM_get_utf8_string_ptr(p, &name) == 1 && strcasecmp(name, GROUP_NAME) == 0);
}

static void *gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    struct x25519_gen *gen = OPENSSL_zalloc(sizeof(*gen));
    if (gen == NULL)
        return NULL;
    gen->provider = provctx;
    gen->selection = selection;
    if (!gen_set_params(gen, params)) {
        OPENSSL_free(gen);
        return NULL;
    }
    return gen;
}

static const OSSL_PARAM *gen_settable_params(void *genctx, void *provctx)
{
    (void)genctx;
    (void)provctx;
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0), OSSL_PARAM_END};
    return settable;
}

/* X25519 has no parameters a template could carry. */
static int gen_set_template(void *genctx, void *templ)
{
    (void)genctx;
    (void)templ;
    return 1;
}

static void *gen_key(void *genctx, OSSL_CALLBACK *callback, void *cbarg)
{
    (void)callback;
    (void)cbarg;
    const struct x25519_gen *gen = genctx;
    struct x25519_key *key = key_new(NULL);
    if (key == NULL || (gen->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return key; /* "parameters" only: an empty key for a peer's share */
    if (ck_x25519_shares_take(gen->provider->shares, key->private_value, key->public_value) != 0) {
        key_free(key);
        return NULL;
    }
    key->has_private = key->has_public = true;
    return key;
}

static void gen_cleanup(void *genctx)
{
    OPENSSL_free(genctx);
}

static const OSSL_DISPATCH key_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))key_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))key_free},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))key_dup},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))key_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))key_match},
    {OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))key_validate},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))key_import},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))key_io_types},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))key_export},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))key_io_types},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))key_get_params},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))key_gettable_params},
    {OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))key_set_params},
    {OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))key_settable_params},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))key_operation_name},
    {OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))gen_init},
    {OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))gen_set_params},
    {OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))gen_settable_params},
    {OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))gen_set_template},
    {OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))gen_key},
    {OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))gen_cleanup},
    {0, NULL}};

/* ---- key exchange ---- */

/* Copies of both values, so the context does not depend on how long the keys live. */
struct x25519_exchange {
    struct provider_ctx *provider;
    struct x25519_key own, peer;
};

static void *exchange_new(void *provctx)
{
    struct x25519_exchange *x = OPENSSL_zalloc(sizeof(*x));
    if (x != NULL)
        x->provider = provctx;
    return x;
}

static void exchange_free(void *ctx)
{
    OPENSSL_clear_free(ctx, sizeof(struct x25519_exchange));
}

static void *exchange_dup(void *ctx)
{
    struct x25519_exchange *copy = OPENSSL_malloc(sizeof(*copy));
    if (copy != NULL)
        memcpy(copy, ctx, sizeof(*copy));
    return copy;
}

static int exchange_init(void *ctx, void *keydata, const OSSL_PARAM params[])
{
    (void)params;
    struct x25519_exchange *x = ctx;
    const struct x25519_key *key = keydata;
    if (key == NULL || !key->has_private)
        return 0;
    x->own = *key;
    return 1;
}

static int exchange_set_peer(void *ctx, void *keydata)
{
    struct x25519_exchange *x = ctx;
    const struct x25519_key *peer = keydata;
    if (peer == NULL || !peer->has_public)
        return 0;
    x->peer = *peer;
    return 1;
}

static int exchange_derive(void *ctx, unsigned char *secret, size_t *secret_len, size_t out_size)
{
    const struct x25519_exchange *x = ctx;
    if (!x->own.has_private || !x->peer.has_public)
        return 0;
    *secret_len = KEY_BYTES;
    if (secret == NULL)
        return 1;
    /* libsodium refuses (-1) a result of all zeros: a peer value of small order. */
    if (out_size < KEY_BYTES ||
        crypto_scalarmult_curve25519(secret, x->own.private_value, x->peer.public_value) != 0)
        return 0;
    atomic_fetch_add(&x->provider->derivations, 1);
    return 1;
}

static const OSSL_DISPATCH exchange_functions[] = {
    {OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))exchange_new},
    {OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))exchange_free},
    {OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))exchange_dup},
    {OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))exchange_init},
    {OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))exchange_set_peer},
    {OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))exchange_derive},
    {0, NULL}};

/* ---- the TLS 1.3 key schedule (tls13_kdf.h) ---- */

static void *kdf_new(void *provctx)
{
    struct provider_ctx *ctx = provctx;
    return ck_tls13_kdf_new(&ctx->key_schedule_steps);
}

static const OSSL_DISPATCH kdf_functions[] = {
    {OSSL_FUNC_KDF_NEWCTX, (void (*)(void))kdf_new},
    {OSSL_FUNC_KDF_DUPCTX, (void (*)(void))ck_tls13_kdf_dup},
    {OSSL_FUNC_KDF_FREECTX, (void (*)(void))ck_tls13_kdf_free},
    {OSSL_FUNC_KDF_RESET, (void (*)(void))ck_tls13_kdf_reset},
    {OSSL_FUNC_KDF_DERIVE, (void (*)(void))ck_tls13_kdf_derive},
    {OSSL_FUNC_KDF_SETTABLE_CTX_PARAMS, (void (*)(void))ck_tls13_kdf_settable_ctx_params},
    {OSSL_FUNC_KDF_SET_CTX_PARAMS, (void (*)(void))ck_tls13_kdf_set_ctx_params},
    {OSSL_FUNC_KDF_GETTABLE_CTX_PARAMS, (void (*)(void))ck_tls13_kdf_gettable_ctx_params},
    {OSSL_FUNC_KDF_GET_CTX_PARAMS, (void (*)(void))ck_tls13_kdf_get_ctx_params},
    {0, NULL}};

/* ---- the provider ---- */

static const OSSL_ALGORITHM key_algorithms[] = {
    {X25519_NAMES, "provider=" PROVIDER_NAME, key_functions, "X25519 keys (libsodium)"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM exchange_algorithms[] = {
    {X25519_NAMES, "provider=" PROVIDER_NAME, exchange_functions, "X25519 (libsodium)"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM kdf_algorithms[] = {
    {OSSL_KDF_NAME_TLS1_3_KDF, "provider=" PROVIDER_NAME, kdf_functions, "TLS13-KDF (Nettle)"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    if (operation_id == OSSL_OP_KEYMGMT)
        return key_algorithms;
    if (operation_id == OSSL_OP_KEYEXCH)
        return exchange_algorithms;
    if (operation_id == OSSL_OP_KDF)
        return kdf_algorithms;
    return NULL;
}

/* libssl offers a group only when the provider that announces it is the one whose key manager
 * its property query finds; once this provider is preferred, x25519 has to be announced here
 * (as the default provider does: TLS 1.0 and up, DTLS 1.0 and up). */
static int provider_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *callback,
                                 void *cbarg)
{
    (void)provctx;
    /* Read-only: OSSL_PARAM's data pointer is just not const. */
    static const unsigned int group_id = 0x001d, security_bits = 128, is_kem = 0;
    static const int min_tls = TLS1_VERSION, max_tls = 0, min_dtls = DTLS1_VERSION, max_dtls = 0;
    static const OSSL_PARAM x25519[] = {
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME, GROUP_NAME, sizeof(GROUP_NAME)),
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL, "X25519", sizeof("X25519")),
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_ALG, "X25519", sizeof("X25519")),
        OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_ID, (void *)&group_id),
        OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS, (void *)&security_bits),
        OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_IS_KEM, (void *)&is_kem),
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, (void *)&min_tls),
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, (void *)&max_tls),
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, (void *)&min_dtls),
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, (void *)&max_dtls),
        OSSL_PARAM_END};
    if (strcasecmp(capability, "TLS-GROUP") != 0)
        return 1;
    return callback(x25519, cbarg);
}

static void provider_teardown(void *provctx)
{
    struct provider_ctx *ctx = provctx;
    ck_x25519_shares_free(ctx->shares);
    free(ctx);
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))provider_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))provider_query},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))provider_capabilities},
    {0, NULL}};

static int provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                         const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_libctx_fn *get_libctx = NULL;
    for (; in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_LIBCTX)
            get_libctx = OSSL_FUNC_core_get_libctx(in);
    struct provider_ctx *ctx = NULL;
    if (get_libctx == NULL || sodium_init() < 0 || (ctx = calloc(1, sizeof(*ctx))) == NULL)
        return 0; /* sodium_init: 1 means already started */
    /* A built-in provider's core context is its library context: keys come from its DRBG. */
    ctx->shares = ck_x25519_shares_new((OSSL_LIB_CTX *)get_libctx(handle));
    if (ctx->shares == NULL) {
        free(ctx);
        return 0;
    }
    *out = provider_functions;
    *provctx = ctx;
    return 1;
}

/* ---- the library context ---- */

ck_edge_kex *ck_edge_kex_new(ck_error *err)
{
    ck_edge_kex *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->libctx = OSSL_LIB_CTX_new()) == NULL ||
        OSSL_PROVIDER_add_builtin(k->libctx, PROVIDER_NAME, provider_init) != 1 ||
        (k->default_provider = OSSL_PROVIDER_load(k->libctx, "default")) == NULL ||
        (k->kex_provider = OSSL_PROVIDER_load(k->libctx, PROVIDER_NAME)) == NULL) {
        ck_error_openssl(err, 500, "tls_setup_failed",
                         "cannot set up the edge's key exchange (OpenSSL and libsodium)");
        ck_edge_kex_free(k);
        return NULL;
    }
    return k;
}

void ck_edge_kex_free(ck_edge_kex *k)
{
    if (k == NULL)
        return;
    if (k->kex_provider != NULL)
        OSSL_PROVIDER_unload(k->kex_provider);
    if (k->default_provider != NULL)
        OSSL_PROVIDER_unload(k->default_provider);
    OSSL_LIB_CTX_free(k->libctx);
    free(k);
}

OSSL_LIB_CTX *ck_edge_kex_libctx(const ck_edge_kex *k)
{
    return k->libctx;
}

uint64_t ck_edge_kex_derivations(const ck_edge_kex *k)
{
    const struct provider_ctx *ctx = OSSL_PROVIDER_get0_provider_ctx(k->kex_provider);
    return atomic_load(&ctx->derivations);
}

uint64_t ck_edge_kex_key_schedule_steps(const ck_edge_kex *k)
{
    const struct provider_ctx *ctx = OSSL_PROVIDER_get0_provider_ctx(k->kex_provider);
    return atomic_load(&ctx->key_schedule_steps);
}

const char *ck_edge_kex_propq(void)
{
    return "?provider=" PROVIDER_NAME;
}
