/* kex_provider.h — the library context the edge's TLS contexts run in: OpenSSL's default provider
 * and "certkeep-edge-kex", which does the two parts of a full handshake where OpenSSL 3.0 spends
 * far more than the arithmetic needs: the X25519 key exchange (libsodium) and the TLS 1.3 key
 * schedule (Nettle, tls13_kdf.h).
 *
 * Every full handshake costs the server two X25519 operations: making its ephemeral key and
 * combining it with the client's share. They are the largest part of a handshake's cryptography
 * (the signature is the other), and OpenSSL 3.0 spends more on the first than the arithmetic
 * needs: its key generation runs the Montgomery ladder on the base point and goes through the
 * provider layer twice, about 39 µs here. This provider takes its ephemeral keys from
 * x25519_shares.h (libsodium's Edwards fixed-base multiplication, in batches: about 20 µs each)
 * and derives with libsodium's ladder (30 µs against OpenSSL's 34). Its "TLS13-KDF" makes the
 * fifteen key-schedule steps of a handshake at about 0.5 µs each instead of 1.6. In-process a
 * whole handshake costs the server 131-148 µs against 167-192 with OpenSSL alone
 * (bench/edge/hsinproc.c).
 *
 * The provider has an "X25519" key manager and key exchange and a "TLS13-KDF", and libssl finds
 * them by name: the context's property query prefers this provider
 * ("?provider=certkeep-edge-kex"), and takes the default provider's implementation of
 * everything else (P-256 and P-384 key shares, the ciphers, digests, HMAC and TLS 1.2's PRF).
 * The private value is 32 random bytes from OpenSSL's DRBG, clamped
 * as RFC 7748 section 5 says (see x25519_shares.h for how they are kept). A shared secret of all
 * zeros (a peer's share of small order) fails the derivation, which ends the handshake as RFC
 * 8446 section 7.4.2 requires.
 *
 * The library context is certkeep's own: it does not read openssl.cnf, so a system-wide provider
 * configuration (FIPS, default properties) does not apply to the edge's handshakes. */
#ifndef CK_EDGE_KEX_PROVIDER_H
#define CK_EDGE_KEX_PROVIDER_H

#include <stdint.h>

#include <openssl/types.h>

#include "common/error.h"

typedef struct ck_edge_kex ck_edge_kex;

/* A library context with both providers loaded. Fails with 500 "tls_setup_failed" when libsodium
 * cannot start, OpenSSL cannot load a provider or the key batches' self-check fails
 * (x25519_shares.h). */
ck_edge_kex *ck_edge_kex_new(ck_error *err);

/* Every object made in its library context (SSL_CTX, SSL, keys) must be freed first; libevent
 * frees a closed connection's SSL in a later loop turn, so free this after the loop's last
 * turn. NULL is allowed. */
void ck_edge_kex_free(ck_edge_kex *k);

/* For SSL_CTX_new_ex(ck_edge_kex_libctx(k), ck_edge_kex_propq(), method). Valid as long as k. */
OSSL_LIB_CTX *ck_edge_kex_libctx(const ck_edge_kex *k);
const char *ck_edge_kex_propq(void);

/* X25519 shared secrets this provider has computed (handshakes that used it). Any thread. */
uint64_t ck_edge_kex_derivations(const ck_edge_kex *k);

/* TLS 1.3 key-schedule steps (TLS13-KDF derivations) this provider has made. Any thread. */
uint64_t ck_edge_kex_key_schedule_steps(const ck_edge_kex *k);

#endif
