/* policy.h — when to renew, when to deploy, when to retry: pure decisions, no I/O.
 *
 * Every function here is a function of its arguments only; `now` comes from the caller, who
 * reads it from ck_clock_now(), so one clock drives every decision and tests need no sleep.
 * Randomness is a deterministic mix of a seed (the enrollment or order id), so the same inputs
 * always give the same answer and the scheduler can recompute it after a restart.
 *
 * The rules, their numbers and why they were chosen are in docs/DESIGN.md, "Renewal and
 * deployment decisions". In short:
 *   - renewal: ARI window (RFC 9773) if the CA offers one; else an explicit renew_before as given
 *     (a duration, or a share of the lifetime); else 60 d before expiry (20 d for DV) but never
 *     earlier than two thirds into the certificate's life. A small spread (1 % of the window, at
 *     most 1 h, always later) keeps thousands of enrollments from starting in the same second.
 *   - deployment (seed 002): deploy_before (7 d) before production expiry, or the not-before
 *     date when one is set instead; plus the staging acknowledgement with always-test-on-staging.
 *   - retries: exponential backoff with full jitter, base 1 min, cap 6 h.
 *   - urgency: less than deploy_before to production expiry and no certificate ready. */
#ifndef CK_CORE_POLICY_H
#define CK_CORE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "core/model.h"

#define CK_POLICY_RENEW_BEFORE_DEFAULT    (60 * 86400) /* seed 002 */
#define CK_POLICY_RENEW_BEFORE_DEFAULT_DV (20 * 86400) /* seed 002 */
#define CK_POLICY_DEPLOY_BEFORE_DEFAULT   (7 * 86400)  /* seed 002 */
#define CK_POLICY_SPREAD_MAX              3600         /* the renewal spread, at most 1 h */
#define CK_POLICY_RECHECK_MAX             (6 * 3600)   /* look again at least this often */
#define CK_POLICY_RETRY_BASE              60           /* first retry within 1 min */
#define CK_POLICY_RETRY_CAP               (6 * 3600)   /* retries never wait more than 6 h */

/* The renewal window a CA suggests through ACME Renewal Information (RFC 9773). */
struct ck_ari_window {
    int64_t start, end;
};

struct ck_renewal_input {
    const char *renew_before;        /* the enrollment's policy.renew_before; NULL = default */
    enum ck_validation validation;   /* DV takes the 20-day default */
    int64_t not_before, not_after;   /* the production certificate; not_after 0 = none yet */
    const struct ck_ari_window *ari; /* NULL = the CA offers none (or it could not be fetched) */
    uint64_t seed;                   /* the enrollment id: spreads renewals, picks the ARI point */
};

/* Why the renewal time is what it is; for job logs and events. */
enum ck_renewal_basis {
    CK_RENEWAL_NO_CERTIFICATE,    /* no production certificate: at once */
    CK_RENEWAL_DEFAULT,           /* 60 d (20 d for DV) before expiry */
    CK_RENEWAL_DEFAULT_CAPPED,    /* the default would exceed a third of the lifetime: at 2/3 */
    CK_RENEWAL_EXPLICIT,          /* policy.renew_before as given */
    CK_RENEWAL_EXPLICIT_TOO_LONG, /* renew_before >= the lifetime: at 2/3 instead of forever */
    CK_RENEWAL_ARI,               /* a point inside the CA's suggested window */
};
const char *ck_renewal_basis_name(enum ck_renewal_basis b); /* "default_capped", "ari", ... */

struct ck_renewal_time {
    int64_t at; /* when the renewal order should start (may be in the past: start at once) */
    enum ck_renewal_basis basis;
};

/* When renewal should start. Fails (400 invalid_duration) only if renew_before does not parse. */
int ck_policy_renewal_time(const struct ck_renewal_input *in, struct ck_renewal_time *out,
                           ck_error *err);

/* Whether to start a renewal order now, and when the scheduler should look again: the renewal
 * time when it is in the future, but no later than CK_POLICY_RECHECK_MAX from now (the ARI
 * window and the policy can change); `now` when *renew is true. */
int ck_policy_should_renew(const struct ck_renewal_input *in, int64_t now, bool *renew,
                           int64_t *next_check, ck_error *err);

struct ck_deploy_input {
    const char *deploy_before;    /* the enrollment's policy.deploy_before; NULL = 7 d */
    int64_t production_not_after; /* 0 = no production certificate yet */
    int64_t deploy_not_before;    /* the order's not-before date; 0 = none */
    bool always_test_on_staging;  /* the enrollment's policy */
    int64_t staging_acked_at;     /* 0 = the staging test was not acknowledged */
};

enum ck_deploy_action {
    CK_DEPLOY_NOW,       /* push the staged certificate to production now */
    CK_DEPLOY_WAIT,      /* wait until .at */
    CK_DEPLOY_NEEDS_ACK, /* a person must acknowledge the staging test first */
};
const char *ck_deploy_action_name(enum ck_deploy_action a); /* "deploy_now", "wait", "needs_ack" */

struct ck_deploy_decision {
    enum ck_deploy_action action;
    /* WAIT: when the time rule holds. NEEDS_ACK: the earliest time it may deploy once
     * acknowledged (<= now: at once). NOW: now. */
    int64_t at;
};

/* Whether a staged certificate goes to production (seed 002). Fails (400 invalid_duration) only
 * if deploy_before does not parse. */
int ck_policy_deploy_decision(const struct ck_deploy_input *in, int64_t now,
                              struct ck_deploy_decision *out, ck_error *err);

/* The upper bound of the wait before retry number `attempt` (1 = after the first failure):
 * min(CK_POLICY_RETRY_CAP, CK_POLICY_RETRY_BASE * 2^(attempt-1)). attempt < 1 counts as 1. */
int64_t ck_policy_retry_ceiling(int attempt);

/* When to retry after `attempt` failures: now + a delay drawn uniformly from
 * [1, ck_policy_retry_ceiling(attempt)] ("full jitter"), the same for the same seed and attempt. */
int64_t ck_policy_retry_after(int attempt, int64_t now, uint64_t seed);

/* True when the production certificate has less than deploy_before (7 d) left, or has expired,
 * and no new certificate is ready (issued or staged) to replace it. No production certificate
 * (not_after 0) is never urgent. Fails only if deploy_before does not parse. */
int ck_policy_is_urgent(const char *deploy_before, int64_t production_not_after,
                        bool certificate_ready, int64_t now, bool *urgent, ck_error *err);

#endif
