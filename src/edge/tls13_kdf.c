/* tls13_kdf.c — TLS 1.3's HKDF-Extract and HKDF-Expand-Label for the edge's provider, computed by
 * Nettle. The contract (OpenSSL's TLS13-KDF parameters) is in tls13_kdf.h. */
#include "edge/tls13_kdf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/proverr.h>

/* The input secret of an extraction ((EC)DHE shared secret or PSK) or the secret an expansion
 * starts from. The edge offers elliptic-curve groups only (listener.c); 1024 bytes would still
 * hold ffdhe8192's shared secret, so adding a finite-field group cannot fail handshakes here. */
#define SECRET_MAX 1024
#define VECTOR_MAX 255 /* HkdfLabel's label and context are vectors of at most 255 bytes */
#define HASH_MAX   SHA384_DIGEST_SIZE

union hmac_state {
    struct hmac_sha256_ctx sha256;
    struct hmac_sha384_ctx sha384;
};

/* Nettle's HMAC for one digest, behind signatures that take the state as void *, which is what
 * its hkdf_extract and hkdf_expand call. */
struct hash_kind {
    size_t size;
    void (*set_key)(void *state, size_t len, const uint8_t *key);
    void (*update)(void *state, size_t len, const uint8_t *data);
    void (*digest)(void *state, size_t len, uint8_t *out);
    void (*hash_of_nothing)(uint8_t *out);
};

static void hmac256_key(void *state, size_t len, const uint8_t *key)
{
    hmac_sha256_set_key(state, len, key);
}
static void hmac256_update(void *state, size_t len, const uint8_t *data)
{
    hmac_sha256_update(state, len, data);
}
static void hmac256_digest(void *state, size_t len, uint8_t *out)
{
    hmac_sha256_digest(state, len, out);
}
static void sha256_of_nothing(uint8_t *out)
{
    struct sha256_ctx hash;
    sha256_init(&hash);
    sha256_digest(&hash, SHA256_DIGEST_SIZE, out);
}
static void hmac384_key(void *state, size_t len, const uint8_t *key)
{
    hmac_sha384_set_key(state, len, key);
}
static void hmac384_update(void *state, size_t len, const uint8_t *data)
{
    hmac_sha384_update(state, len, data);
}
static void hmac384_digest(void *state, size_t len, uint8_t *out)
{
    hmac_sha384_digest(state, len, out);
}
static void sha384_of_nothing(uint8_t *out)
{
    struct sha384_ctx hash;
    sha384_init(&hash);
    sha384_digest(&hash, SHA384_DIGEST_SIZE, out);
}

static const struct hash_kind sha256_kind = {SHA256_DIGEST_SIZE, hmac256_key, hmac256_update,
                                             hmac256_digest, sha256_of_nothing};
static const struct hash_kind sha384_kind = {SHA384_DIGEST_SIZE, hmac384_key, hmac384_update,
                                             hmac384_digest, sha384_of_nothing};

/* Every name OpenSSL 3.0's default provider gives these two digests. */
static const struct {
    const char *name;
    const struct hash_kind *kind;
} digest_names[] = {
    {"SHA2-256", &sha256_kind}, {"SHA-256", &sha256_kind},
    {"SHA256", &sha256_kind},   {"2.16.840.1.101.3.4.2.1", &sha256_kind},
    {"SHA2-384", &sha384_kind}, {"SHA-384", &sha384_kind},
    {"SHA384", &sha384_kind},   {"2.16.840.1.101.3.4.2.2", &sha384_kind},
};

struct bytes {
    size_t len;
    bool set;
};

struct tls13_kdf {
    atomic_uint_least64_t *derivations;
    const struct hash_kind *hash; /* NULL until a digest is set */
    int mode;
    struct bytes key_info, salt_info, prefix_info, label_info, data_info;
    unsigned char key[SECRET_MAX], salt[HASH_MAX]; /* the salt is a previous secret */
    unsigned char prefix[VECTOR_MAX], label[VECTOR_MAX], data[VECTOR_MAX];
};

/* ---- the context ---- */

static void wipe_secrets(struct tls13_kdf *k)
{
    OPENSSL_cleanse(k->key, k->key_info.len);
    OPENSSL_cleanse(k->salt, k->salt_info.len);
    OPENSSL_cleanse(k->data, k->data_info.len);
}

/* Nothing set: no digest, no mode this KDF does, no bytes. */
static void forget_settings(struct tls13_kdf *k)
{
    k->hash = NULL;
    k->mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND;
    k->key_info = k->salt_info = k->prefix_info = k->label_info = k->data_info =
        (struct bytes){0, false};
}

void *ck_tls13_kdf_new(atomic_uint_least64_t *derivations)
{
    /* Not zeroed as a whole: each buffer is read only up to the length set with it. */
    struct tls13_kdf *k = malloc(sizeof(*k));
    if (k == NULL)
        return NULL;
    k->derivations = derivations;
    forget_settings(k);
    return k;
}

void ck_tls13_kdf_free(void *kdf)
{
    if (kdf == NULL)
        return;
    wipe_secrets(kdf);
    free(kdf);
}

void ck_tls13_kdf_reset(void *kdf)
{
    wipe_secrets(kdf);
    forget_settings(kdf);
}

void *ck_tls13_kdf_dup(void *kdf)
{
    struct tls13_kdf *copy = malloc(sizeof(*copy));
    if (copy != NULL)
        memcpy(copy, kdf, sizeof(*copy));
    return copy;
}

/* ---- parameters ---- */

/* An octet string into its buffer, in place of the previous value, which is wiped first. A
 * refused one leaves the parameter unset, never the previous value's length over wiped bytes. */
static int take_bytes(const OSSL_PARAM *p, unsigned char *buffer, size_t max, struct bytes *info)
{
    const void *data = NULL;
    size_t len = 0;
    OPENSSL_cleanse(buffer, info->len);
    *info = (struct bytes){0, false};
    if (!OSSL_PARAM_get_octet_string_ptr(p, &data, &len) || len > max) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_DATA, "TLS13-KDF %s: %zu bytes, at most %zu",
                       p->key, len, max);
        return 0;
    }
    if (len > 0)
        memcpy(buffer, data, len);
    *info = (struct bytes){len, true};
    return 1;
}

static int take_mode(const OSSL_PARAM *p, int *mode)
{
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (strcasecmp(p->data, "EXTRACT_ONLY") == 0)
            *mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
        else if (strcasecmp(p->data, "EXPAND_ONLY") == 0)
            *mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
        else
            goto refused;
        return 1;
    }
    int n;
    if (!OSSL_PARAM_get_int(p, &n) ||
        (n != EVP_KDF_HKDF_MODE_EXTRACT_ONLY && n != EVP_KDF_HKDF_MODE_EXPAND_ONLY))
        goto refused;
    *mode = n;
    return 1;
refused:
    ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_MODE,
                   "TLS13-KDF takes EXTRACT_ONLY or EXPAND_ONLY");
    return 0;
}

static int take_digest(const OSSL_PARAM *p, const struct hash_kind **hash)
{
    const char *name = NULL;
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
        return 0;
    for (size_t i = 0; i < sizeof(digest_names) / sizeof(digest_names[0]); i++)
        if (strcasecmp(name, digest_names[i].name) == 0) {
            *hash = digest_names[i].kind;
            return 1;
        }
    ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_DIGEST, "TLS13-KDF: %s is not SHA-256 or SHA-384",
                   name != NULL ? name : "(none)");
    return 0;
}

/* One pass over the parameters, each name compared once. */
int ck_tls13_kdf_set_ctx_params(void *kdf, const OSSL_PARAM params[])
{
    struct tls13_kdf *k = kdf;
    if (params == NULL)
        return 1;
    OPENSSL_cleanse(k->data, k->data_info.len);
    k->data_info = (struct bytes){0, false};
    for (const OSSL_PARAM *p = params; p->key != NULL; p++) {
        int ok = 1;
        if (strcmp(p->key, OSSL_KDF_PARAM_MODE) == 0)
            ok = take_mode(p, &k->mode);
        else if (strcmp(p->key, OSSL_KDF_PARAM_DIGEST) == 0)
            ok = take_digest(p, &k->hash);
        else if (strcmp(p->key, OSSL_KDF_PARAM_KEY) == 0)
            ok = take_bytes(p, k->key, sizeof(k->key), &k->key_info);
        else if (strcmp(p->key, OSSL_KDF_PARAM_SALT) == 0) {
            ok = take_bytes(p, k->salt, sizeof(k->salt), &k->salt_info);
            k->salt_info.set = k->salt_info.len > 0; /* an empty salt is none, as in OpenSSL */
        } else if (strcmp(p->key, OSSL_KDF_PARAM_PREFIX) == 0)
            ok = take_bytes(p, k->prefix, sizeof(k->prefix), &k->prefix_info);
        else if (strcmp(p->key, OSSL_KDF_PARAM_LABEL) == 0)
            ok = take_bytes(p, k->label, sizeof(k->label), &k->label_info);
        else if (strcmp(p->key, OSSL_KDF_PARAM_DATA) == 0)
            ok = take_bytes(p, k->data, sizeof(k->data), &k->data_info);
        if (!ok)
            return 0;
    }
    return 1;
}

const OSSL_PARAM *ck_tls13_kdf_settable_ctx_params(void *kdf, void *provctx)
{
    (void)kdf;
    (void)provctx;
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_MODE, NULL, 0),
        OSSL_PARAM_int(OSSL_KDF_PARAM_MODE, NULL),
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_PREFIX, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_LABEL, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_DATA, NULL, 0),
        OSSL_PARAM_END};
    return settable;
}

int ck_tls13_kdf_get_ctx_params(void *kdf, OSSL_PARAM params[])
{
    const struct tls13_kdf *k = kdf;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_KDF_PARAM_SIZE);
    if (p == NULL)
        return 1;
    if (k->mode != EVP_KDF_HKDF_MODE_EXTRACT_ONLY)
        return OSSL_PARAM_set_size_t(p, SIZE_MAX);
    return k->hash != NULL && OSSL_PARAM_set_size_t(p, k->hash->size);
}

const OSSL_PARAM *ck_tls13_kdf_gettable_ctx_params(void *kdf, void *provctx)
{
    (void)kdf;
    (void)provctx;
    static const OSSL_PARAM gettable[] = {OSSL_PARAM_size_t(OSSL_KDF_PARAM_SIZE, NULL),
                                          OSSL_PARAM_END};
    return gettable;
}

/* ---- the derivations ---- */

/* HKDF-Expand-Label (RFC 8446 7.1) with k's digest and its label split in prefix and label. */
static int expand_label(const struct tls13_kdf *k, const unsigned char *secret, size_t secret_len,
                        const unsigned char *context, size_t context_len, unsigned char *out,
                        size_t out_len)
{
    const struct hash_kind *hash = k->hash;
    size_t label_len = k->prefix_info.len + k->label_info.len;
    if (label_len > VECTOR_MAX || context_len > VECTOR_MAX || out_len == 0 ||
        out_len > 255 * hash->size) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_DATA,
                       "TLS13-KDF: label %zu, context %zu, output %zu bytes", label_len,
                       context_len, out_len);
        return 0;
    }
    /* struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel */
    unsigned char info[2 + 1 + VECTOR_MAX + 1 + VECTOR_MAX];
    size_t n = 0;
    info[n++] = (unsigned char)(out_len >> 8);
    info[n++] = (unsigned char)out_len;
    info[n++] = (unsigned char)label_len;
    memcpy(info + n, k->prefix, k->prefix_info.len);
    n += k->prefix_info.len;
    memcpy(info + n, k->label, k->label_info.len);
    n += k->label_info.len;
    info[n++] = (unsigned char)context_len;
    if (context_len > 0)
        memcpy(info + n, context, context_len);
    n += context_len;

    union hmac_state mac;
    hash->set_key(&mac, secret_len, secret);
    hkdf_expand(&mac, hash->update, hash->digest, hash->size, n, info, out_len, out);
    OPENSSL_cleanse(&mac, sizeof(mac));
    OPENSSL_cleanse(info, n);
    return 1;
}

/* The early, handshake and master secrets: HKDF-Extract(salt', key), where salt' is the previous
 * secret after Derive-Secret(., "derived", ""), or zeros for the first. */
static int extract(const struct tls13_kdf *k, unsigned char *out, size_t out_len)
{
    const struct hash_kind *hash = k->hash;
    static const unsigned char zeros[HASH_MAX];
    unsigned char derived[HASH_MAX], empty_hash[HASH_MAX];
    /* the salt is a previous secret: exactly HashLen, which OpenSSL's own reads regardless */
    if (out_len != hash->size || (k->salt_info.set && k->salt_info.len != hash->size)) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_WRONG_OUTPUT_BUFFER_SIZE,
                       "TLS13-KDF extract: output %zu and salt %zu bytes, HashLen %zu", out_len,
                       k->salt_info.len, hash->size);
        return 0;
    }
    const unsigned char *salt = zeros;
    if (k->salt_info.set) {
        hash->hash_of_nothing(empty_hash);
        if (!expand_label(k, k->salt, k->salt_info.len, empty_hash, hash->size, derived,
                          hash->size))
            return 0;
        salt = derived;
    }
    const unsigned char *ikm = k->key_info.set ? k->key : zeros;
    size_t ikm_len = k->key_info.set ? k->key_info.len : hash->size;

    union hmac_state mac;
    hash->set_key(&mac, hash->size, salt);
    hkdf_extract(&mac, hash->update, hash->digest, hash->size, ikm_len, ikm, out);
    OPENSSL_cleanse(&mac, sizeof(mac));
    OPENSSL_cleanse(derived, sizeof(derived));
    return 1;
}

int ck_tls13_kdf_derive(void *kdf, unsigned char *out, size_t out_len, const OSSL_PARAM params[])
{
    struct tls13_kdf *k = kdf;
    if (!ck_tls13_kdf_set_ctx_params(k, params))
        return 0;
    if (k->hash == NULL || out == NULL) {
        ERR_raise(ERR_LIB_PROV,
                  k->hash == NULL ? PROV_R_MISSING_MESSAGE_DIGEST : PROV_R_OUTPUT_BUFFER_TOO_SMALL);
        return 0;
    }
    if (k->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY && !k->key_info.set) {
        ERR_raise(ERR_LIB_PROV, PROV_R_MISSING_KEY);
        return 0;
    }
    int ok = 0;
    if (k->mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY)
        ok = extract(k, out, out_len);
    else if (k->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY)
        ok = expand_label(k, k->key, k->key_info.len, k->data, k->data_info.len, out, out_len);
    else
        ERR_raise(ERR_LIB_PROV, PROV_R_INVALID_MODE); /* no mode set yet */
    if (ok && k->derivations != NULL)
        atomic_fetch_add_explicit(k->derivations, 1, memory_order_relaxed);
    return ok;
}
