/* verify.h — certificate chain verification for TLS servers, offline.
 *
 * One verifier for `certkeep verify`, the import checks and the conformance runner. OpenSSL
 * builds the path and checks signatures, validity, name constraints and the host name; on top of
 * that certkeep applies the RFC 5280 and CA/Browser Forum Baseline Requirements rules OpenSSL
 * does not (leaf must not be a CA, serverAuth EKU required, no Common Name fallback, SAN and
 * AKI/SKI presence, serial numbers, key sizes, ...). When the first path OpenSSL builds breaks
 * one of those rules, other paths through the given certificates are tried (a bounded number).
 *
 * Trust anchors are exactly the certificates in `roots`: a trusted intermediate is an anchor
 * too (RFC 5280 trust anchors need not be self-signed).
 *
 * A caller that reports some problems in its own words (the import checks: expired,
 * weak_key, ...) sets `skip` so that those problems neither appear in the reasons nor make the
 * chain invalid; every other reason stays, so the two never say the same thing twice. */
#ifndef CK_CRYPTO_VERIFY_H
#define CK_CRYPTO_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/error.h"
#include "common/util.h"

/* Bits of ck_verify_request.skip: each names findings the caller checks and reports itself.
 * Only exactly that finding is skipped: a leaf whose EKU is malformed or critical, or an RSA key
 * of 2049 bits, is still a reason. "Not the anchor" because the caller cannot report on a root
 * it did not give. */
enum ck_verify_skip {
    CK_VERIFY_SKIP_LEAF_VALIDITY = 1 << 0,    /* the leaf expired or is not yet valid */
    CK_VERIFY_SKIP_LEAF_CA = 1 << 1,          /* the leaf has basicConstraints cA=TRUE */
    CK_VERIFY_SKIP_LEAF_SERVER_AUTH = 1 << 2, /* the leaf has no EKU, or one without serverAuth */
    CK_VERIFY_SKIP_WEAK_KEY = 1 << 3,         /* RSA under 2048 bits or EC under 256 bits, on the
                                                 leaf or an intermediate (not the anchor) */
    CK_VERIFY_SKIP_WEAK_SIGNATURE = 1 << 4,   /* a signature under 112 bits of security (SHA-1,
                                                 MD5) on the leaf or an intermediate */
    CK_VERIFY_SKIP_ROOT_EKU = 1 << 5,         /* a self-issued anchor with an extended key usage
                                                 (BR 7.1.2.1): private roots such as pebble's */
};

struct ck_verify_request {
    X509 *leaf;                 /* required */
    STACK_OF(X509) * untrusted; /* intermediates in any order, duplicates allowed; may be NULL */
    STACK_OF(X509) * roots;     /* trust anchors; required, may be empty (then nothing verifies) */
    STACK_OF(X509_CRL) * crls;  /* NULL: no revocation check; else every CA's CRL must be here */
    const char *dns_name;       /* expected DNS name, or NULL */
    const char *ip;             /* expected IP address as text, or NULL (not both) */
    bool has_time;              /* false: verify at ck_clock_now() */
    int64_t time;               /* seconds since the epoch, UTC */
    bool has_max_intermediates; /* false: no limit beyond OpenSSL's default (32) */
    int max_intermediates;      /* CA certificates between leaf and anchor; self-issued ones
                                   (key rollover) do not count, as for pathLenConstraint */
    unsigned skip;              /* enum ck_verify_skip bits; 0 for a complete verdict */
};

struct ck_verify_result {
    bool valid;
    ck_strv reasons;        /* why not, one sentence each; empty when valid */
    STACK_OF(X509) * chain; /* leaf first, trust anchor last; NULL when no path was built.
                               Owned: ck_verify_result_free releases it. */
};

/* Verifies req into *out (zero-initialise it). Returns 0 when a verdict was reached (valid or
 * not: see out->valid), -1 on a bad request or allocation failure (err says which). */
int ck_verify_chain(const struct ck_verify_request *req, struct ck_verify_result *out,
                    ck_error *err);

void ck_verify_result_free(struct ck_verify_result *res);

/* Reads every certificate of a PEM bundle (no certificate at all is allowed: an empty stack).
 * Any block that is not a readable certificate is an error. Caller frees with
 * sk_X509_pop_free(*out, X509_free). */
int ck_verify_load_certs(const char *pem, size_t len, STACK_OF(X509) * *out, ck_error *err);

/* Same for X509 CRLs. */
int ck_verify_load_crls(const char *pem, size_t len, STACK_OF(X509_CRL) * *out, ck_error *err);

#define CK_VERIFY_MAX_SYSTEM_ROOTS 2000

/* The system's trusted roots, as OpenSSL's default paths name them: the bundle file
 * ($SSL_CERT_FILE, else X509_get_default_cert_file()); when it holds none, the hashed directory
 * ($SSL_CERT_DIR's first entry, else X509_get_default_cert_dir(), files named HASH.N). At most
 * CK_VERIFY_MAX_SYSTEM_ROOTS; blocks that are not certificates are skipped, and a system without
 * roots gives an empty stack. Caller frees with sk_X509_pop_free(*out, X509_free). -1 only when
 * out of memory. */
int ck_verify_load_system_roots(STACK_OF(X509) * *out, ck_error *err);

#endif
