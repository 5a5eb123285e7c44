/* ecdsa_signer.h — ECDSA signatures from a bare private scalar, for the edge's cached keys.
 *
 * An OpenSSL 3.0 EC private key (EVP_PKEY) carries its own copy of the curve group: about 1.5 KB
 * and most of the 20-60 µs it takes to make one. The edge keeps tens of thousands of keys parsed,
 * so it keeps only their scalars and signs through this module instead: a small pool of OpenSSL
 * EC keys per curve, each made once, into which a signature puts the scalar for the time it takes
 * to sign and then wipes it. The signing itself is OpenSSL's ECDSA (its constant-time scalar
 * multiplication and nonce generation); this module only hands it the scalar.
 *
 * That needs OpenSSL's EC_KEY API, deprecated since 3.0 and the only one in which a key's group
 * can be kept while its scalar changes. When the library is built without it
 * (OPENSSL_NO_DEPRECATED_3_0), ck_ecdsa_signer_available() is false and the edge keeps ordinary
 * OpenSSL keys. */
#ifndef CK_EDGE_ECDSA_SIGNER_H
#define CK_EDGE_ECDSA_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ck_ecdsa_signer ck_ecdsa_signer;

/* Whether this build can sign this way at all. */
bool ck_ecdsa_signer_available(void);

/* Whether ck_ecdsa_signer_sign takes keys on the curve nid. */
bool ck_ecdsa_signer_has_curve(int nid);

/* NULL when out of memory or unavailable. */
ck_ecdsa_signer *ck_ecdsa_signer_new(void);

/* No signature may be in progress. NULL is allowed. */
void ck_ecdsa_signer_free(ck_ecdsa_signer *s);

/* Signs digest with the private scalar (big-endian, scalar_len bytes) on the curve nid
 * (NID_X9_62_prime256v1, NID_secp384r1 or NID_secp521r1) and writes the DER ECDSA-Sig-Value to
 * sig (sig_size bytes available), its length to *sig_len. Returns 0, or -1 on an unknown curve,
 * a short buffer or an OpenSSL failure. Thread-safe. */
int ck_ecdsa_signer_sign(ck_ecdsa_signer *s, int nid, const uint8_t *scalar, size_t scalar_len,
                         const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len,
                         size_t sig_size);

#endif
