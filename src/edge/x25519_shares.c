/* x25519_shares.c — X25519 ephemeral key pairs made in batches (see x25519_shares.h). */
#include "edge/x25519_shares.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <sodium.h>

#define BATCH       16 /* one inversion for 16 keys: 0.3 ms a refill, 2.3 µs a key */
#define MAX_AGE_SEC 60

struct batch {
    size_t ready;         /* private_values[0 .. ready - 1] not handed out yet */
    pid_t pid;            /* the process that made them (checked without MADV_WIPEONFORK) */
    struct timespec made; /* CLOCK_MONOTONIC_COARSE */
    uint8_t private_values[BATCH][CK_X25519_BYTES];
    uint8_t public_values[BATCH][CK_X25519_BYTES];
};

struct ck_x25519_shares {
    pthread_mutex_t lock; /* guards *current */
    OSSL_LIB_CTX *libctx;
    struct batch *current; /* in a page of its own, mapped_len bytes */
    size_t mapped_len;
    bool wiped_in_child; /* MADV_WIPEONFORK took: a forked child finds the batch empty */
};

/* 2^255 - 19, little-endian */
static const uint8_t field_prime_le[CK_X25519_BYTES] = {
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};

/* u[i] = (1 + y[i]) / (1 - y[i]) mod p for the Edwards encodings edwards[i] (little-endian y, the
 * sign of x in the top bit), with one inversion: the product of the denominators is inverted
 * once, then each factor is peeled off. */
static bool edwards_to_montgomery(uint8_t u[BATCH][CK_X25519_BYTES],
                                  const uint8_t edwards[BATCH][CK_X25519_BYTES])
{
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p, *inverse, *value, *num[BATCH], *den[BATCH], *prefix[BATCH];
    bool ok = false;
    if (ctx == NULL)
        return false;
    BN_CTX_start(ctx);
    p = BN_CTX_get(ctx);
    inverse = BN_CTX_get(ctx);
    value = BN_CTX_get(ctx);
    for (size_t i = 0; i < BATCH; i++) {
        num[i] = BN_CTX_get(ctx);
        den[i] = BN_CTX_get(ctx);
        prefix[i] = BN_CTX_get(ctx);
    }
    if (prefix[BATCH - 1] == NULL || BN_lebin2bn(field_prime_le, CK_X25519_BYTES, p) == NULL)
        goto cleanup;
    for (size_t i = 0; i < BATCH; i++) {
        uint8_t y[CK_X25519_BYTES];
        memcpy(y, edwards[i], CK_X25519_BYTES);
        y[CK_X25519_BYTES - 1] &= 0x7f;
        /* with y < p, 1 - y is p + 1 - y; it is p (zero) only for y = 1, the neutral point, which
         * no clamped scalar gives (none is a multiple of the group order) */
        if (BN_lebin2bn(y, CK_X25519_BYTES, num[i]) == NULL || BN_cmp(num[i], p) >= 0 ||
            BN_sub(den[i], p, num[i]) != 1 || BN_add_word(den[i], 1) != 1 ||
            BN_add_word(num[i], 1) != 1 || BN_cmp(den[i], p) == 0 ||
            (i == 0 ? BN_copy(prefix[i], den[i]) == NULL
                    : BN_mod_mul(prefix[i], prefix[i - 1], den[i], p, ctx) != 1))
            goto cleanup;
    }
    if (BN_mod_inverse(inverse, prefix[BATCH - 1], p, ctx) == NULL)
        goto cleanup;
    for (size_t i = BATCH; i-- > 0;) {
        /* inverse is 1 / (den[0] ... den[i]); times prefix[i - 1] it is 1 / den[i] */
        if ((i == 0 ? BN_copy(value, inverse) == NULL
                    : BN_mod_mul(value, inverse, prefix[i - 1], p, ctx) != 1) ||
            BN_mod_mul(inverse, inverse, den[i], p, ctx) != 1 ||
            BN_mod_mul(value, value, num[i], p, ctx) != 1 ||
            BN_bn2lebinpad(value, u[i], CK_X25519_BYTES) != CK_X25519_BYTES)
            goto cleanup;
    }
    ok = true;
cleanup:
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return ok;
}

static void clamp(uint8_t scalar[CK_X25519_BYTES])
{
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
}

/* The public values of b's (clamped) private values. */
static bool compute_public_values(struct batch *b)
{
    uint8_t edwards[BATCH][CK_X25519_BYTES];
    for (size_t i = 0; i < BATCH; i++)
        if (crypto_scalarmult_ed25519_base_noclamp(edwards[i], b->private_values[i]) != 0)
            return false;
    return edwards_to_montgomery(b->public_values, edwards);
}

static bool make_batch(const ck_x25519_shares *s, struct batch *b)
{
    if (RAND_priv_bytes_ex(s->libctx, b->private_values[0], sizeof(b->private_values), 0) != 1)
        return false;
    for (size_t i = 0; i < BATCH; i++)
        clamp(b->private_values[i]);
    if (!compute_public_values(b))
        return false;
    b->ready = BATCH;
    b->pid = getpid();
    clock_gettime(CLOCK_MONOTONIC_COARSE, &b->made);
    return true;
}

/* getpid() is a system call (glibc no longer caches it): asked only when the kernel does not
 * empty the batch in a forked child itself. */
static bool usable(const ck_x25519_shares *s)
{
    const struct batch *b = s->current;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return b->ready > 0 && now.tv_sec - b->made.tv_sec < MAX_AGE_SEC &&
           (s->wiped_in_child || b->pid == getpid());
}

static void hand_out(struct batch *b, uint8_t private_value[CK_X25519_BYTES],
                     uint8_t public_value[CK_X25519_BYTES])
{
    size_t i = --b->ready;
    memcpy(private_value, b->private_values[i], CK_X25519_BYTES);
    memcpy(public_value, b->public_values[i], CK_X25519_BYTES);
    sodium_memzero(b->private_values[i], CK_X25519_BYTES);
}

int ck_x25519_shares_take(ck_x25519_shares *s, uint8_t private_value[CK_X25519_BYTES],
                          uint8_t public_value[CK_X25519_BYTES])
{
    struct batch fresh;
    bool taken = false;
    pthread_mutex_lock(&s->lock);
    if (usable(s)) {
        hand_out(s->current, private_value, public_value);
        taken = true;
    } else if (s->current->ready > 0) {
        sodium_memzero(s->current, sizeof(*s->current)); /* stale, or the parent's */
    }
    pthread_mutex_unlock(&s->lock);
    if (taken)
        return 0;
    /* made without the lock: another thread needing a key meanwhile makes its own batch */
    int rc = -1;
    if (make_batch(s, &fresh)) {
        hand_out(&fresh, private_value, public_value);
        pthread_mutex_lock(&s->lock);
        if (!usable(s))
            memcpy(s->current, &fresh, sizeof(fresh));
        pthread_mutex_unlock(&s->lock);
        rc = 0;
    }
    sodium_memzero(&fresh, sizeof(fresh));
    return rc;
}

/* RFC 7748 section 6.1's two private keys must give its two public keys, and the other keys of
 * the batch what libsodium's ladder gives. */
static bool self_check(void)
{
    static const uint8_t rfc_private[2][CK_X25519_BYTES] = {
        {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
         0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
         0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a},
        {0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f,
         0x8b, 0x83, 0x80, 0x0e, 0xe6, 0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18,
         0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb}};
    static const uint8_t rfc_public[2][CK_X25519_BYTES] = {
        {0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d,
         0xdc, 0xb4, 0x3e, 0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38,
         0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a},
        {0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61,
         0xc2, 0xec, 0xe4, 0x35, 0x37, 0x3f, 0x83, 0x43, 0xc8, 0x5b, 0x78,
         0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f}};
    struct batch b;
    bool ok;
    memset(&b, 0, sizeof(b));
    for (size_t i = 0; i < BATCH; i++) {
        memcpy(b.private_values[i], rfc_private[i % 2], CK_X25519_BYTES);
        b.private_values[i][1] ^= (uint8_t)(i / 2); /* a different key in every slot past 1 */
        clamp(b.private_values[i]);
    }
    ok = compute_public_values(&b) &&
         memcmp(b.public_values[0], rfc_public[0], CK_X25519_BYTES) == 0 &&
         memcmp(b.public_values[1], rfc_public[1], CK_X25519_BYTES) == 0;
    for (size_t i = 2; ok && i < BATCH; i++) {
        uint8_t ladder[CK_X25519_BYTES];
        ok = crypto_scalarmult_curve25519_base(ladder, b.private_values[i]) == 0 &&
             memcmp(ladder, b.public_values[i], CK_X25519_BYTES) == 0;
    }
    sodium_memzero(&b, sizeof(b));
    return ok;
}

ck_x25519_shares *ck_x25519_shares_new(OSSL_LIB_CTX *libctx)
{
    ck_x25519_shares *s = calloc(1, sizeof(*s));
    long page = sysconf(_SC_PAGESIZE);
    if (s == NULL || page <= 0 || !self_check())
        goto failed;
    s->libctx = libctx;
    s->mapped_len = (sizeof(struct batch) + (size_t)page - 1) / (size_t)page * (size_t)page;
    void *mapped =
        mmap(NULL, s->mapped_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED)
        goto failed;
    s->current = mapped;
    /* best effort, each: kernels before 4.14 lack MADV_WIPEONFORK (the pid check stands in),
     * and RLIMIT_MEMLOCK may refuse the lock */
    (void)madvise(mapped, s->mapped_len, MADV_DONTDUMP);
    s->wiped_in_child = madvise(mapped, s->mapped_len, MADV_WIPEONFORK) == 0;
    (void)mlock(mapped, s->mapped_len);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        munmap(mapped, s->mapped_len);
        goto failed;
    }
    return s;
failed:
    free(s);
    return NULL;
}

void ck_x25519_shares_free(ck_x25519_shares *s)
{
    if (s == NULL)
        return;
    sodium_memzero(s->current, sizeof(*s->current));
    munlock(s->current, s->mapped_len);
    munmap(s->current, s->mapped_len);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
