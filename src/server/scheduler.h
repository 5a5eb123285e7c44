/* scheduler.h — private to src/server: the daemon's scheduler (issue 6). Once a second it reads
 * every enrollment of every tenant (in pages) and, by core/policy.h's rules at ck_clock_now():
 *   - starts the first order of an enrollment with an automatic issuer (not "manual") and no
 *     certificate yet, and a renewal order (event "renewal_started") for any enrollment whose
 *     production certificate entered its renewal window; the csr job (new key, same subject
 *     and names) and the issue job follow by themselves, or certificate_needed for manual;
 *   - stages an issued order, and deploys a staged one when ck_policy_deploy_decision says so,
 *     through core/order_flow.h like the API;
 *   - after a failed order, starts a new one at ck_policy_retry_after (event "renewal_failed"
 *     once for each failed order), and raises "expiry_near" once per production certificate
 *     when ck_policy_is_urgent;
 *   - for an ACME issuer, asks the CA's Renewal Information (RFC 9773, core/ari_check.h) for
 *     the production certificate at most twice a day, CK_SCHED_ARI_PER_TICK a tick (blocking
 *     HTTPS in this thread), and lets its window decide the renewal time.
 * At most max_in_flight orders of automatic issuers are worked on at once across the database
 * (and no more are started in one tick). Nothing is remembered between ticks that is not in the
 * store, so several daemons sharing one database agree: the store's one-open-order rule
 * refuses a second order (409, "someone else did it"), and a state change another daemon made
 * first is a 409 order_state_changed, both silent. */
#ifndef CK_SERVER_SCHEDULER_H
#define CK_SERVER_SCHEDULER_H

#include <stdint.h>

#include "common/error.h"
#include "server/jobs.h"
#include "store/store.h"

#define CK_SCHED_IN_FLIGHT_DEFAULT 8
#define CK_SCHED_IN_FLIGHT_MAX     10000
#define CK_SCHED_PAGE_SIZE         256
#define CK_SCHED_TICK_MS           1000
/* ACME Renewal Information checks one tick may make (each is up to two HTTPS requests): at
 * twice a day per certificate, 2 a second covers 86,000 ACME certificates. */
#define CK_SCHED_ARI_PER_TICK 2

struct ck_scheduler_config {
    int max_in_flight;              /* <= 0: CK_SCHED_IN_FLIGHT_DEFAULT */
    const char *staging_address;    /* the staging listener for staging tests, or NULL; copied */
    const char *production_address; /* the production listener for probes, or NULL; copied */
    struct ck_job_runner *runner;   /* woken when a job is queued; may be NULL; not owned */
};

/* What one tick did (for logs and tests). */
struct ck_scheduler_report {
    int orders_started;   /* first orders */
    int renewals_started; /* renewal orders, retries included */
    int retries_started;  /* of which after a failure */
    int staged, deployed;
    int failures_reported; /* renewal_failed events */
    int urgent_reported;   /* expiry_near events */
    int skipped_capacity;  /* due, but max_in_flight orders are in flight */
    int ari_checked;       /* ACME Renewal Information checks made (answered or not) */
};

struct ck_scheduler;

/* A scheduler on a store connection the caller owns (no thread): for ck_scheduler_tick. */
int ck_scheduler_new(struct ck_store *st, const struct ck_scheduler_config *cfg,
                     struct ck_scheduler **out, ck_error *err);

/* One pass over every enrollment at `now`. A failure for one enrollment is logged and the pass
 * goes on; -1 only when the enrollments cannot be read. report may be NULL. */
int ck_scheduler_tick(struct ck_scheduler *s, int64_t now, struct ck_scheduler_report *report,
                      ck_error *err);

/* A scheduler with its own store connection on db_path and its own thread, ticking every
 * CK_SCHED_TICK_MS with ck_clock_now(). */
int ck_scheduler_start(const char *db_path, const struct ck_scheduler_config *cfg,
                       struct ck_scheduler **out, ck_error *err);

/* Stops and joins the thread (a tick in progress finishes first), closes the store it opened,
 * frees everything. NULL is fine. */
void ck_scheduler_free(struct ck_scheduler *s);

#endif
