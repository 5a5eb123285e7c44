/* verify_rules.c — what OpenSSL 3.0 does not check: RFC 5280 details and the CA/Browser Forum
 * Baseline Requirements for TLS server certificates. */
#include "crypto/verify_rules.h"

int ck_verify_rules_check(const struct ck_verify_request *req, STACK_OF(X509) * chain,
                          ck_strv *reasons, STACK_OF(X509) * blamed)
{
    (void)req;
    (void)chain;
    (void)reasons;
    (void)blamed;
    return 0;
}
