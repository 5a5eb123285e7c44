/* verify_rules.h — internal to the verifier (verify.c): the RFC 5280 and CA/Browser Forum
 * Baseline Requirements rules checked on a path OpenSSL has built, and the reason helpers. */
#ifndef CK_CRYPTO_VERIFY_RULES_H
#define CK_CRYPTO_VERIFY_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "common/util.h"
#include "crypto/verify.h"

/* Checks chain (leaf first, anchor last) against the rules; adds one reason per broken rule and
 * pushes onto blamed (not owned) the CA certificates a different path might avoid. Returns 0
 * when every rule holds, 1 when one does not. */
int ck_verify_rules_check(const struct ck_verify_request *req, STACK_OF(X509) * chain,
                          ck_strv *reasons, STACK_OF(X509) * blamed);

/* The subject, RFC 2253 style, cut to fit buf. */
void ck_verify_describe_cert(X509 *cert, char *buf, size_t len);

/* Adds "leaf certificate (SUBJECT): what" or "CA certificate at depth N (SUBJECT): what" (just
 * `what` for depth < 0) unless that very line is already there. */
int ck_verify_add_reason(ck_strv *reasons, int depth, X509 *cert, const char *what);

/* Whether the caller asked to skip finding `what` (enum ck_verify_skip) on cert: set in
 * req->skip, and cert is the leaf or one of req->untrusted, which the caller judges itself. */
bool ck_verify_caller_reports(const struct ck_verify_request *req, unsigned what, X509 *cert);

#endif
