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
 * too (RFC 5280 trust anchors need not be self-signed). */
#ifndef CK_CRYPTO_VERIFY_H
#define CK_CRYPTO_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/error.h"
#include "common/util.h"

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

#endif
