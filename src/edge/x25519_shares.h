/* x25519_shares.h — X25519 ephemeral key pairs for the edge's handshakes, made ahead in small
 * batches because that is cheaper than one at a time.
 *
 * An X25519 public value is the u-coordinate of [s]B. The Montgomery ladder (OpenSSL's and
 * libsodium's curve25519 base) takes 28-39 µs here; libsodium's constant-time Edwards fixed-base
 * multiplication, with precomputed tables, takes 17 µs and gives the same point on the
 * birationally equivalent Edwards curve, whose affine y maps to u = (1 + y) / (1 - y) (RFC 7748
 * section 4.1). That map needs a field inversion, 14 µs in OpenSSL's BN; one inversion serves a
 * whole batch (Montgomery's trick), about 2.3 µs a key for batches of 16. Only public values go
 * through BN: y is a function of the public u.
 *
 * Each private value is 32 bytes of the library context's DRBG, clamped (RFC 7748 section 5), and
 * is handed out once, then wiped from the batch. The batch lives in a page of its own: locked in
 * memory when the system allows it, left out of core dumps, zeroed in a forked child
 * (MADV_WIPEONFORK; a pid check as well, for kernels without it), and dropped once older than a
 * minute, so keys for future handshakes do not linger. A batch is made outside the lock, so a
 * refill holds up only the thread that needs it, for about 0.3 ms once in 16 handshakes.
 *
 * ck_x25519_shares_new checks the whole path once against RFC 7748's keys and libsodium's ladder
 * and fails if they disagree. */
#ifndef CK_EDGE_X25519_SHARES_H
#define CK_EDGE_X25519_SHARES_H

#include <stdint.h>

#include <openssl/types.h>

#define CK_X25519_BYTES 32

typedef struct ck_x25519_shares ck_x25519_shares;

/* Draws its private values from libctx's DRBG (NULL: the default context). Needs sodium_init()
 * done. NULL when out of memory or when the self-check fails. */
ck_x25519_shares *ck_x25519_shares_new(OSSL_LIB_CTX *libctx);

/* Wipes what is left. NULL is allowed. */
void ck_x25519_shares_free(ck_x25519_shares *s);

/* A fresh key pair: 0, or -1 when the DRBG or the arithmetic failed (nothing written).
 * Thread-safe. */
int ck_x25519_shares_take(ck_x25519_shares *s, uint8_t private_value[CK_X25519_BYTES],
                          uint8_t public_value[CK_X25519_BYTES]);

#endif
