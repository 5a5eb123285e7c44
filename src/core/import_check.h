/* import_check.h — the checks every certificate passes before certkeep relies on it.
 *
 * Used when a user imports a certificate bought with certkeep's CSR, and on every certificate
 * any issuer (ACME, local CA) returns. A pure module: no storage, no network, no clock of its
 * own (the caller gives `now`).
 *
 * The check never stops at the first problem: every check that can run does, and the result
 * lists all errors (the certificate is refused) and all warnings (the user must acknowledge
 * them). Each finding has a stable `code` and a sentence for a person.
 *
 * Error codes:   not_pem, not_certificate, too_many_certificates, multiple_leaves, no_leaf,
 *                key_mismatch, cn_mismatch, untrusted_chain, not_yet_valid, expired,
 *                weak_signature, weak_key, ca_certificate, missing_server_auth
 * Warning codes: subject_mismatch (one per differing O, OU, L, ST, C), san_missing, san_extra
 *                (one per name), expires_soon, chain_reordered, chain_extras_removed
 *
 * The chain is judged by ck_verify_chain (src/crypto/verify.h), the verifier of `certkeep
 * verify`, without a host name (the names are compared with the CSR's instead). Problems of the
 * certificates that have a code here (expired, not_yet_valid, ca_certificate,
 * missing_server_auth, weak_key, weak_signature) are left out of the verifier's verdict through
 * ck_verify_request.skip, so each problem is reported once; every other reason of the verifier
 * (a missing issuer, an expired intermediate, a Baseline Requirements rule) is one
 * untrusted_chain whose message lists them.
 *
 * Input limits: at most CK_IMPORT_MAX_CERTS PEM blocks in the body and the chain together
 * (more is refused with too_many_certificates before any block is decoded); the scan of the
 * text is linear, so a multi-megabyte paste of garbage costs one pass. */
#ifndef CK_CORE_IMPORT_CHECK_H
#define CK_CORE_IMPORT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"

#define CK_IMPORT_MAX_CERTS 20
/* Beyond this many findings of one code (a certificate with thousands of unrequested SANs),
 * one last finding of that code says how many more there are. */
#define CK_IMPORT_MAX_PER_CODE 50

struct ck_finding {
    char code[48];
    char message[512];
};

/* Zero-initialise; ck_import_result_free releases it. */
struct ck_findings {
    struct ck_finding *items;
    size_t len, cap;
};

struct ck_import_input {
    /* The body pasted: one certificate in PEM (or a single DER certificate). A whole chain
     * pasted here is tolerated: the leaf is found and the rest joins the chain. */
    const char *cert_pem;
    size_t cert_len;
    /* The chain: PEM certificates in any order, may repeat the leaf, hold duplicates, a root or
     * unrelated certificates (all dropped with a warning). NULL or empty for none. */
    const char *chain_pem;
    size_t chain_len;
    /* The order's CSR, PEM, NUL-terminated; required. */
    const char *csr_pem;
    /* The order's key (the public part is enough). NULL for an order started from an uploaded
     * CSR: the CSR's public key is used instead. */
    EVP_PKEY *order_key;
    /* Roots the chain must reach: every certificate held in this store is a trust anchor
     * (X509_STORE_get1_all_certs); lookup directories are not searched, so build it with
     * ck_trust_store_new. Required. Not modified. */
    X509_STORE *trust;
    /* Seconds since the epoch (ck_clock_now()); validity and the chain are judged at this time. */
    int64_t now;
};

struct ck_import_result {
    struct ck_findings errors;
    struct ck_findings warnings;
    /* The certificate judged; NULL when no leaf could be chosen (then errors says why). */
    X509 *leaf;
    /* The issuer chain in leaf->root direction, without the leaf, without duplicates and
     * without any self-signed root (servers send intermediates only; the root is trusted by the
     * client's own store). Empty (never NULL) when leaf is set and no intermediate was given. */
    STACK_OF(X509) * chain;
    /* Leaf then chain, PEM; set only when there are no errors. */
    char *fullchain_pem;
};

/* Runs every check of in into *out (zero-initialise it; free with ck_import_result_free, also
 * after a failure). Returns 0 when the checks ran — the verdict is out->errors.len == 0 — and
 * -1 only when they could not (missing argument, unreadable CSR, out of memory; err says which). */
int ck_import_check(const struct ck_import_input *in, struct ck_import_result *out, ck_error *err);

void ck_import_result_free(struct ck_import_result *r);

/* [{"code": "...", "message": "..."}, ...]; NULL on allocation failure. */
json_t *ck_findings_to_json(const struct ck_findings *f);

/* {"errors": [...], "warnings": [...]}; NULL on allocation failure. */
json_t *ck_import_result_to_json(const struct ck_import_result *r);

/* A trust store with the system's roots (ck_verify_load_system_roots) plus every certificate
 * of extra_roots_pem (a tenant's private roots; NULL or empty for none). A block in
 * extra_roots_pem that is not a certificate is a 400 error. Caller frees with X509_STORE_free. */
X509_STORE *ck_trust_store_new(const char *extra_roots_pem, ck_error *err);

/* The same with the system's roots already parsed (a daemon parses them once: reading the
 * system's bundle costs more than the rest of an import's checks together). The store takes its
 * own references; system_roots is not modified and may be shared between threads. */
X509_STORE *ck_trust_store_with(const STACK_OF(X509) * system_roots, const char *extra_roots_pem,
                                ck_error *err);

#endif
