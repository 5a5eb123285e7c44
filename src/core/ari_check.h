/* ari_check.h — asks an ACME CA when to renew a production certificate (ACME Renewal
 * Information, RFC 9773) and stores its answer (store.h ck_store_ari_*), for the scheduler.
 *
 * One check: claim the certificate's row (so one daemon of several asks), read the issuer's
 * directory, and when it offers renewalInfo GET <renewalInfo>/<certID> without an account. The
 * answer's window is stored; a failure is stored as last_error and keeps the window from before.
 * Either way the next check is at least 12 hours later (twice a day at most), later when the
 * CA's Retry-After says so (up to a day). Blocking: one check makes two HTTPS requests with a
 * CK_ARI_CHECK_TIMEOUT_S timeout each. */
#ifndef CK_CORE_ARI_CHECK_H
#define CK_CORE_ARI_CHECK_H

#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

#define CK_ARI_CHECK_TIMEOUT_S 10
#define CK_ARI_CHECK_LEASE_S   60 /* a daemon that died mid-check frees it after this */

struct ck_ari_check_input {
    int64_t tenant_id;
    const char *issuer;   /* the enrollment's issuer (an ACME one) */
    int64_t order_id;     /* the production certificate's order */
    const char *cert_pem; /* its certificate */
    int64_t now;
};

/* 1 when this call checked (*out holds what was stored; free with ck_ari_status_free), 0 when
 * the check was not due or another daemon holds it, -1 when the store failed. A CA that cannot
 * be reached or answers badly is a stored result (out->last_error), not a failure here. */
int ck_ari_check(struct ck_store *st, const struct ck_ari_check_input *in,
                 struct ck_ari_status *out, ck_error *err);

#endif
