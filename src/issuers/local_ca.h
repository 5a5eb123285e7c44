/* local_ca.h — certkeep's own certificate authority: a root per tenant (or one shared) that
 * signs CSRs directly, for internal names, labs and tests (lifetimes down to seconds let a test
 * watch renewals happen).
 *
 * What it issues is made to pass the import checks (core/import_check.h) that every issued
 * certificate goes through: a leaf with CA:FALSE, serverAuth, SHA-256, the CSR's subject and
 * SANs, and a chain (the CA certificate alone) that verifies to the root.
 *
 * The CA key exists in plaintext only inside these functions; at rest it is sealed under the
 * master key with the associated data "certkeep/ca/<aad_id>/key", so a sealed key copied to
 * another tenant's row does not open. Neither function keeps state between calls. */
#ifndef CK_ISSUERS_LOCAL_CA_H
#define CK_ISSUERS_LOCAL_CA_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "crypto/seal.h"

/* Lifetimes a leaf may be given, in seconds. No lower bound beyond one second on purpose: tests
 * issue 40 s certificates to watch renewals. 398 days is the CA/Browser Forum maximum. */
#define CK_LOCAL_CA_LIFETIME_MIN (1)
#define CK_LOCAL_CA_LIFETIME_MAX (398 * 86400)
/* The root is valid this long (ten years, two of them leap) from one hour before its creation. */
#define CK_LOCAL_CA_ROOT_DAYS     3652
#define CK_LOCAL_CA_ROOT_BACKDATE 3600
/* A leaf starts this long before `now`, for clients whose clock is a little behind. */
#define CK_LOCAL_CA_LEAF_BACKDATE 60
/* CSRs longer than this are refused before parsing. */
#define CK_LOCAL_CA_CSR_MAX (1024 * 1024)
/* Longest CA name: the X.509 upper bound for a common name. */
#define CK_LOCAL_CA_NAME_MAX 64

/* A CA: its certificate (PEM, what GET /v1/ca/root serves and trust stores import) and its key
 * sealed under the master key. Both owned by the struct: cert_pem is malloc'd, sealed_key is
 * OPENSSL_malloc'd (as ck_seal_private_key returns it). A caller loading a CA from storage fills
 * the fields the same way, or keeps its own copies and passes a struct it frees itself. */
struct ck_local_ca {
    char *cert_pem;
    uint8_t *sealed_key;
    size_t sealed_key_len;
};

/* Makes a self-signed root: a fresh ECDSA P-256 key, subject "CN=<name>, O=certkeep local CA",
 * serial of 128 random bits, valid from now - CK_LOCAL_CA_ROOT_BACKDATE for
 * CK_LOCAL_CA_ROOT_DAYS, signed with SHA-256, extensions basicConstraints critical CA:TRUE
 * pathlen:0 (it signs leaves only), keyUsage critical keyCertSign + cRLSign, subjectKeyIdentifier.
 * name: 1 to CK_LOCAL_CA_NAME_MAX bytes of UTF-8 text without control characters (400
 * "invalid_ca_name" otherwise). aad_id: which CA this is ("shared", or the tenant's name);
 * non-empty, no '/'. On success fills *out (free with ck_local_ca_free); on failure *out is left
 * zeroed. */
int ck_local_ca_create(const ck_master_key *mk, const char *name, const char *aad_id, int64_t now,
                       struct ck_local_ca *out, ck_error *err);

/* Signs a CSR (PEM, at most CK_LOCAL_CA_CSR_MAX bytes) and returns the leaf certificate's PEM
 * (caller frees with free()); the chain to send with it is ca->cert_pem. NULL on failure.
 *
 * Refused with 400: text that is not a PEM CSR ("invalid_csr"); a CSR whose self-signature does
 * not verify ("csr_signature_invalid"); a key type not allowed (see ck_key_describe:
 * "invalid_key_type"); no subjectAltName extension, a name that is not a valid
 * hostname, an IP address of the wrong size, or a SAN of another type such as an e-mail address
 * ("csr_names_invalid"); a lifetime outside [CK_LOCAL_CA_LIFETIME_MIN,
 * CK_LOCAL_CA_LIFETIME_MAX] ("invalid_lifetime"). Refused with 409 "ca_expires_first" when the
 * root expires before the leaf would. A sealed key that does not open under mk with this aad_id,
 * or does not match the CA certificate, is a 500.
 *
 * The leaf: subject = the CSR subject's CN, O, OU, L, ST and C entries in the CSR's order (any
 * other attribute is dropped); SANs = exactly the CSR's dNSName and iPAddress entries; serial =
 * 128 random bits with the top bit cleared, never zero; notBefore = now -
 * CK_LOCAL_CA_LEAF_BACKDATE; notAfter = now + lifetime_seconds; signed with SHA-256 by the CA key;
 * extensions basicConstraints critical CA:FALSE, keyUsage critical digitalSignature (plus
 * keyEncipherment for RSA keys), extendedKeyUsage serverAuth, subjectKeyIdentifier,
 * authorityKeyIdentifier (the CA's key id), subjectAltName (critical when the subject is
 * empty, as RFC 5280 asks). */
char *ck_local_ca_sign(const ck_master_key *mk, const char *aad_id, const struct ck_local_ca *ca,
                       const char *csr_pem, int64_t lifetime_seconds, int64_t now, ck_error *err);

/* Frees the fields and zeroes *ca; NULL and a zeroed struct are fine. */
void ck_local_ca_free(struct ck_local_ca *ca);

#endif
