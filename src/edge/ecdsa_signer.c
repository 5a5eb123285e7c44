/* ecdsa_signer.c — OpenSSL's ECDSA over pooled EC keys (see ecdsa_signer.h for why).
 *
 * This file is written against OpenSSL's 1.1.1 API level: EC_KEY, EC_KEY_set_private_key and
 * ECDSA_do_sign are deprecated in 3.0 without a replacement that keeps a group while the scalar
 * changes. The level is set here only, so the rest of certkeep still gets 3.0's deprecation
 * warnings. */
#define OPENSSL_API_COMPAT 10101

#include "edge/ecdsa_signer.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/opensslconf.h>

#ifndef OPENSSL_NO_DEPRECATED_3_0

#define POOL_MAX 32 /* idle keys kept per curve: more than the edge's threads ever sign at once */

static const int pooled_curves[] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
#define CURVE_COUNT (sizeof(pooled_curves) / sizeof(pooled_curves[0]))

struct pool {
    pthread_mutex_t lock;
    EC_KEY *idle[POOL_MAX]; /* group set, no private key */
    size_t count;
};

struct ck_ecdsa_signer {
    struct pool pools[CURVE_COUNT];
};

bool ck_ecdsa_signer_available(void)
{
    return true;
}

ck_ecdsa_signer *ck_ecdsa_signer_new(void)
{
    ck_ecdsa_signer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t ready = 0;
    for (; ready < CURVE_COUNT; ready++)
        if (pthread_mutex_init(&s->pools[ready].lock, NULL) != 0)
            break;
    if (ready == CURVE_COUNT)
        return s;
    while (ready-- > 0)
        pthread_mutex_destroy(&s->pools[ready].lock);
    free(s);
    return NULL;
}

void ck_ecdsa_signer_free(ck_ecdsa_signer *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < CURVE_COUNT; i++) {
        for (size_t k = 0; k < s->pools[i].count; k++)
            EC_KEY_free(s->pools[i].idle[k]);
        pthread_mutex_destroy(&s->pools[i].lock);
    }
    free(s);
}

bool ck_ecdsa_signer_has_curve(int nid)
{
    for (size_t i = 0; i < CURVE_COUNT; i++)
        if (pooled_curves[i] == nid)
            return true;
    return false;
}

static struct pool *pool_for(ck_ecdsa_signer *s, int nid)
{
    for (size_t i = 0; i < CURVE_COUNT; i++)
        if (pooled_curves[i] == nid)
            return &s->pools[i];
    return NULL;
}

/* An idle key of the pool's curve, or a new one. */
static EC_KEY *pool_take(struct pool *pool, int nid)
{
    EC_KEY *key = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->count > 0)
        key = pool->idle[--pool->count];
    pthread_mutex_unlock(&pool->lock);
    return key != NULL ? key : EC_KEY_new_by_curve_name(nid);
}

/* Takes back a key that holds no private scalar any more. */
static void pool_give_back(struct pool *pool, EC_KEY *key)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->count < POOL_MAX) {
        pool->idle[pool->count++] = key;
        key = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    EC_KEY_free(key);
}

int ck_ecdsa_signer_sign(ck_ecdsa_signer *s, int nid, const uint8_t *scalar, size_t scalar_len,
                         const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len,
                         size_t sig_size)
{
    int rc = -1;
    ECDSA_SIG *value = NULL;
    struct pool *pool = pool_for(s, nid);
    EC_KEY *key = pool == NULL ? NULL : pool_take(pool, nid);
    BIGNUM *d = BN_secure_new();
    if (key == NULL || d == NULL || digest_len > 64 || scalar_len > INT_MAX ||
        BN_bin2bn(scalar, (int)scalar_len, d) == NULL)
        goto cleanup;
    /* The key's own copy is made constant-time (and fixed-width) by EC_KEY_set_private_key. */
    if (EC_KEY_set_private_key(key, d) != 1)
        goto cleanup;
    value = ECDSA_do_sign(digest, (int)digest_len, key);
    /* Wipes the scalar's copy (and returns 0 for NULL by design) before the key goes back. */
    (void)EC_KEY_set_private_key(key, NULL);
    int len = value == NULL ? -1 : i2d_ECDSA_SIG(value, NULL);
    if (len <= 0 || (size_t)len > sig_size)
        goto cleanup;
    unsigned char *out = sig;
    if (i2d_ECDSA_SIG(value, &out) != len)
        goto cleanup;
    *sig_len = (size_t)len;
    rc = 0;
cleanup:
    BN_clear_free(d);
    ECDSA_SIG_free(value);
    if (key != NULL && EC_KEY_get0_private_key(key) == NULL)
        pool_give_back(pool, key);
    else
        EC_KEY_free(key); /* clears whatever scalar it still holds */
    return rc;
}

#else /* OpenSSL without its deprecated 3.0 API: the edge keeps ordinary keys */

bool ck_ecdsa_signer_available(void)
{
    return false;
}

bool ck_ecdsa_signer_has_curve(int nid)
{
    (void)nid;
    return false;
}

ck_ecdsa_signer *ck_ecdsa_signer_new(void)
{
    return NULL;
}

void ck_ecdsa_signer_free(ck_ecdsa_signer *s)
{
    (void)s;
}

int ck_ecdsa_signer_sign(ck_ecdsa_signer *s, int nid, const uint8_t *scalar, size_t scalar_len,
                         const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len,
                         size_t sig_size)
{
    (void)s, (void)nid, (void)scalar, (void)scalar_len, (void)digest, (void)digest_len, (void)sig,
        (void)sig_len, (void)sig_size;
    return -1;
}

#endif
