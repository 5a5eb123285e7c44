/* monitor.h — private to src/server: expiry monitoring (issue 6, item 5). On threads of its own
 * (CK_MONITOR_PROBERS, each with its own store connection), it probes every watched endpoint
 * (core/watch.h) of every enrollment with a deployed certificate once per interval and compares
 * what the endpoint serves with that certificate. The status of each endpoint is kept in the
 * store; an event ("endpoint_mismatch", "endpoint_expiring", "endpoint_unreachable",
 * "endpoint_ok") is raised only when it changes, so webhooks and /v1/poll hear about it once.
 *
 * Several threads or daemons sharing one database: a probe is leased in the store
 * (ck_store_watch_claim), so each endpoint is probed once per interval by one of them, and the
 * status change and its event are written in one transaction under that lease. The production
 * listener's endpoints are probed on the address of whichever daemon holds the lease.
 *
 * Right after a deployment (CK_MONITOR_SETTLE_SECONDS) an enrollment is left alone: the edges
 * and targets are still switching to the new certificate. */
#ifndef CK_SERVER_MONITOR_H
#define CK_SERVER_MONITOR_H

#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

#define CK_MONITOR_INTERVAL_DEFAULT 3600        /* 1 h */
#define CK_MONITOR_INTERVAL_MIN     1           /* tests */
#define CK_MONITOR_INTERVAL_MAX     (7 * 86400) /* a week */
#define CK_MONITOR_SETTLE_SECONDS   10
#define CK_MONITOR_PROBE_TIMEOUT_MS 5000
#define CK_MONITOR_PAGE_SIZE        256
/* Threads probing at once: an unreachable endpoint holds one for a whole probe timeout. */
#define CK_MONITOR_PROBERS 4

struct ck_monitor_config {
    int64_t interval;               /* seconds between two probes of one endpoint; <= 0: 1 h */
    const char *production_address; /* the production listener to probe, or NULL; copied */
    int probe_timeout_ms;           /* <= 0: CK_MONITOR_PROBE_TIMEOUT_MS */
};

/* What one pass did (for logs and tests). */
struct ck_monitor_report {
    int probed;
    int events; /* status changes that raised an event */
};

struct ck_monitor;

/* A monitor on a store connection the caller owns (no thread): for ck_monitor_pass. */
int ck_monitor_new(struct ck_store *st, const struct ck_monitor_config *cfg,
                   struct ck_monitor **out, ck_error *err);

/* Probes every endpoint due at `now`. A failure for one endpoint is logged and the pass goes
 * on; -1 only when the enrollments cannot be read. report may be NULL. */
int ck_monitor_pass(struct ck_monitor *m, int64_t now, struct ck_monitor_report *report,
                    ck_error *err);

/* A monitor with CK_MONITOR_PROBERS threads, each with its own store connection on db_path, each
 * making a pass every interval / 10 (at least 1 s, at most 60 s) with ck_clock_now(). Every
 * thread walks every enrollment and probes the endpoints whose lease it wins, so they share the
 * endpoints without dividing them up front, and one slow endpoint holds up one thread. */
int ck_monitor_start(const char *db_path, const struct ck_monitor_config *cfg,
                     struct ck_monitor **out, ck_error *err);

/* Stops and joins the threads (a pass in progress finishes its current probe first), closes the
 * stores it opened, frees everything. NULL is fine. */
void ck_monitor_free(struct ck_monitor *m);

#endif
