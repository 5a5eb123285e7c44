/* tls13_kdf.h — a "TLS13-KDF" for the edge's provider: TLS 1.3's key schedule (RFC 8446 section
 * 7.1) with Nettle's HMAC and HKDF.
 *
 * libssl derives every TLS 1.3 secret, key and IV through this one KDF, about fifteen calls a
 * full handshake, each with a fresh KDF context. OpenSSL 3.0's default implementation fetches
 * its digest by name and builds an HMAC context through the provider layer on every call, and
 * its HKDF-Extract fetches HMAC again (EVP_Q_mac): 1.6 µs a call here, of which the HMAC itself
 * is about 0.25. Nettle's HMAC-SHA-256 and -384 are direct calls; Nettle picks its SHA-256 routine
 * for the CPU at run time (the SHA extensions here), as OpenSSL does. SHA-384 (the suite
 * TLS_AES_256_GCM_SHA384, which the edge ranks after AES-128) has no such instructions and runs
 * Nettle's portable SHA-512 code.
 *
 * The functions follow OpenSSL's TLS13-KDF contract, which libssl relies on:
 *   - "mode": EXTRACT_ONLY or EXPAND_ONLY, as an int (EVP_KDF_HKDF_MODE_*) or a string;
 *     EXTRACT_AND_EXPAND is refused;
 *   - "digest": SHA-256 or SHA-384 under any of OpenSSL's names for them; other digests are
 *     refused (TLS 1.3's suites use only these two), so a derivation fails instead of differing;
 *   - "key", "salt", "prefix", "label", "data" (octet strings); "data" is cleared by every
 *     set_ctx_params call that does not give it, as OpenSSL's is; an empty "salt" is none, and
 *     a salt must be HashLen bytes (it is the previous secret); "properties" is accepted and
 *     ignored (there is nothing to fetch); a refused value leaves its parameter unset;
 *   - EXPAND_ONLY: HKDF-Expand(key, HkdfLabel(length, prefix || label, data), length);
 *   - EXTRACT_ONLY: HKDF-Extract(salt', key), where a missing key is HashLen zeros and salt' is
 *     HashLen zeros without a salt, else Derive-Secret(salt, prefix || label, "") (the "derived"
 *     step), and the output is exactly HashLen bytes.
 * A refusal raises an ERR_LIB_PROV error saying what was refused. Secrets live in the context
 * only while it does and are wiped when it is freed or reset.
 *
 * The provider that lists these functions supplies its own newctx, which calls
 * ck_tls13_kdf_new with the counter the provider exposes for tests (derivations made). */
#ifndef CK_EDGE_TLS13_KDF_H
#define CK_EDGE_TLS13_KDF_H

#include <stdatomic.h>
#include <stddef.h>

#include <openssl/core.h>

/* A new context counting its successful derivations in *derivations (may be NULL). */
void *ck_tls13_kdf_new(atomic_uint_least64_t *derivations);
void ck_tls13_kdf_free(void *kdf);
void *ck_tls13_kdf_dup(void *kdf);
void ck_tls13_kdf_reset(void *kdf);
int ck_tls13_kdf_derive(void *kdf, unsigned char *out, size_t out_len, const OSSL_PARAM params[]);
int ck_tls13_kdf_set_ctx_params(void *kdf, const OSSL_PARAM params[]);
const OSSL_PARAM *ck_tls13_kdf_settable_ctx_params(void *kdf, void *provctx);
int ck_tls13_kdf_get_ctx_params(void *kdf, OSSL_PARAM params[]);
const OSSL_PARAM *ck_tls13_kdf_gettable_ctx_params(void *kdf, void *provctx);

#endif
