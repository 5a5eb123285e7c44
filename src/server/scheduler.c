/* scheduler.c — renewals, automatic deployment, retries and urgency (scheduler.h). */
#include "server/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/sleeper.h"
#include "common/log.h"
#include "core/ari_check.h"
#include "core/order_flow.h"
#include "core/policy.h"
#include "crypto/x509info.h"

/* The production certificates' not_before, parsed once per order rather than every second. */
#define NOT_BEFORE_CACHE 1024

struct not_before_slot {
    int64_t order_id; /* 0 = empty */
    int64_t not_before;
};

struct ck_scheduler {
    struct ck_store *store;
    bool owns_store;
    int max_in_flight;
    char *staging_address, *production_address;
    struct ck_job_runner *runner;
    struct not_before_slot cache[NOT_BEFORE_CACHE];
    /* the thread, when started */
    bool started;
    pthread_t thread;
    struct ck_sleeper sleeper;
};

/* One tick's state: what it may still start, what it did. */
struct tick {
    int64_t now;
    int64_t in_flight;
    int started;
    int ari_checks; /* made this tick, up to CK_SCHED_ARI_PER_TICK */
    struct ck_scheduler_report report;
};

static void wake_runner(void *ctx)
{
    ck_job_runner_wake(ctx);
}

static struct ck_order_flow flow_of(const struct ck_scheduler *s)
{
    /* No edge_changed: this thread may not touch the event loop's edge; the edge's 1 s
     * generation watch picks the change up, and the probe job waits for it. */
    return (struct ck_order_flow){.store = s->store,
                                  .staging_address = s->staging_address,
                                  .production_address = s->production_address,
                                  .job_queued = s->runner ? wake_runner : NULL,
                                  .ctx = s->runner};
}

/* A 409 that means another daemon or request got there first: nothing to report. */
static bool lost_race(const ck_error *err)
{
    return err->status == 409 &&
           (strcmp(err->code, "order_state_changed") == 0 || strcmp(err->code, "order_open") == 0);
}

static void log_failure(const struct ck_sched_row *r, const char *what, const ck_error *err)
{
    if (!lost_race(err))
        ck_log(CK_LOG_WARN, "scheduler: enrollment %s (tenant %lld): %s: %s", r->name,
               (long long)r->tenant_id, what, err->message);
}

static int production_not_before(struct ck_scheduler *s, const struct ck_sched_row *r, int64_t *out,
                                 ck_error *err)
{
    struct not_before_slot *slot = &s->cache[(uint64_t)r->production_order_id % NOT_BEFORE_CACHE];
    struct ck_cert_info info = {0};
    if (slot->order_id == r->production_order_id) {
        *out = slot->not_before;
        return 0;
    }
    if (r->production_cert_pem == NULL)
        return ck_error_set(err, 500, "no_certificate", "production order %lld has no certificate",
                            (long long)r->production_order_id);
    if (ck_cert_info_from_pem(r->production_cert_pem, strlen(r->production_cert_pem), &info, err) !=
        0)
        return -1;
    *slot = (struct not_before_slot){r->production_order_id, info.not_before};
    *out = info.not_before;
    ck_cert_info_free(&info);
    return 0;
}

/* Adds the event unless the order already has one of that type: once per order, whichever
 * daemon gets there first (the check and the write are one transaction). */
static int event_once(struct ck_scheduler *s, const struct ck_sched_row *r, int64_t order_id,
                      const char *type, const char *message, bool *added, ck_error *err)
{
    const struct ck_event_new ev = {
        .type = type, .enrollment_id = r->enrollment_id, .order_id = order_id, .message = message};
    return ck_store_event_add_once(s->store, r->tenant_id, &ev, added, err);
}

static bool ready_for_production(const struct ck_sched_row *r)
{
    return r->open_order_id != 0 &&
           (r->open_state == CK_ORDER_ISSUED || r->open_state == CK_ORDER_STAGED);
}

static void check_urgency(struct ck_scheduler *s, const struct ck_sched_row *r, struct tick *t)
{
    bool urgent = false, added = false;
    char message[CK_ERROR_MSG_MAX], expiry[32];
    ck_error err = {0};
    if (r->production_order_id == 0 || r->production_not_after == 0)
        return;
    if (ck_policy_is_urgent(r->policy.deploy_before, r->production_not_after,
                            ready_for_production(r), t->now, &urgent, &err) != 0) {
        log_failure(r, "checking its expiry", &err);
        return;
    }
    if (!urgent)
        return;
    ck_time_format(r->production_not_after, expiry, sizeof(expiry));
    snprintf(message, sizeof(message),
             "URGENT: the production certificate of %s expires at %s and no new certificate is "
             "ready to replace it",
             r->name, expiry);
    if (event_once(s, r, r->production_order_id, "expiry_near", message, &added, &err) != 0)
        log_failure(r, "raising expiry_near", &err);
    else if (added)
        t->report.urgent_reported++;
}

/* ---- open orders: stage, deploy ---- */

static void stage(struct ck_scheduler *s, const struct ck_sched_row *r, struct tick *t)
{
    struct ck_order o = {0};
    ck_error err = {0};
    const struct ck_order_flow f = flow_of(s);
    if (ck_store_order_get(s->store, r->tenant_id, r->open_order_id, &o, &err) != 0 ||
        ck_order_flow_stage(&f, &o, &err) != 0) {
        log_failure(r, "staging its issued order", &err);
    } else {
        ck_log(CK_LOG_INFO, "scheduler: order %lld (%s) staged", (long long)o.id, r->name);
        t->report.staged++;
    }
    ck_order_free(&o);
}

static void deploy_if_due(struct ck_scheduler *s, const struct ck_sched_row *r, struct tick *t)
{
    const struct ck_deploy_input in = {.deploy_before = r->policy.deploy_before,
                                       .production_not_after = r->production_not_after,
                                       .deploy_not_before = r->open_deploy_not_before,
                                       .always_test_on_staging = r->policy.always_test_on_staging,
                                       .staging_acked_at = r->open_staging_acked_at};
    struct ck_deploy_decision decision;
    struct ck_order o = {0};
    ck_error err = {0};
    const struct ck_order_flow f = flow_of(s);
    if (ck_policy_deploy_decision(&in, t->now, &decision, &err) != 0) {
        log_failure(r, "deciding when to deploy", &err);
        return;
    }
    if (decision.action != CK_DEPLOY_NOW)
        return;
    if (ck_store_order_get(s->store, r->tenant_id, r->open_order_id, &o, &err) != 0 ||
        ck_order_flow_deploy_allowed(s->store, &o, &err) != 0 ||
        ck_order_flow_deploy(&f, &o, &err) != 0) {
        log_failure(r, "deploying its staged order", &err);
    } else {
        ck_log(CK_LOG_INFO, "scheduler: order %lld (%s) deployed", (long long)o.id, r->name);
        t->report.deployed++;
    }
    ck_order_free(&o);
}

/* ---- no open order: first order, renewal, retry ---- */

static bool is_manual(const struct ck_sched_row *r)
{
    return strcmp(r->issuer, "manual") == 0;
}

/* Whether a new order is due now; *basis names why, for the event. */
static int renewal_due(struct ck_scheduler *s, const struct ck_sched_row *r, int64_t now, bool *due,
                       const char **basis, ck_error *err)
{
    const struct ck_ari_window ari = {r->ari_window_start, r->ari_window_end};
    struct ck_renewal_input in = {.renew_before = r->policy.renew_before,
                                  .validation = r->validation,
                                  .ari = r->ari_has_window ? &ari : NULL,
                                  .seed = (uint64_t)r->enrollment_id};
    struct ck_renewal_time when;
    *due = false;
    *basis = ck_renewal_basis_name(CK_RENEWAL_NO_CERTIFICATE);
    if (r->production_order_id == 0) {
        *due = !is_manual(r); /* a manual issuer's first order is a person's decision */
        return 0;
    }
    in.not_after = r->production_not_after;
    if (production_not_before(s, r, &in.not_before, err) != 0 ||
        ck_policy_renewal_time(&in, &when, err) != 0)
        return -1;
    *due = when.at <= now;
    *basis = ck_renewal_basis_name(when.basis);
    return 0;
}

/* After a failed order: "renewal_failed" once for it, and whether the backoff has passed. */
static bool retry_due(struct ck_scheduler *s, const struct ck_sched_row *r, struct tick *t)
{
    char message[CK_ERROR_MSG_MAX], at_text[32];
    bool added = false;
    ck_error err = {0};
    int64_t at =
        ck_policy_retry_after(r->failures, r->last_failure_at, (uint64_t)r->last_failed_order_id);
    ck_time_format(at, at_text, sizeof(at_text));
    snprintf(message, sizeof(message),
             "order %lld of %s failed (%d failure%s in a row); the next attempt starts at %s",
             (long long)r->last_failed_order_id, r->name, r->failures, r->failures == 1 ? "" : "s",
             at_text);
    if (event_once(s, r, r->last_failed_order_id, "renewal_failed", message, &added, &err) != 0)
        log_failure(r, "raising renewal_failed", &err);
    else if (added)
        t->report.failures_reported++;
    return at <= t->now;
}

/* A renewal's "renewal_started" (what it replaces and why now), in *message and *data. */
static void renewal_text(const struct ck_sched_row *r, const char *basis, char *message,
                         size_t message_len, char *data, size_t data_len)
{
    snprintf(message, message_len, "renewal of %s started (%s)", r->name, basis);
    if (r->ari_has_window && strcmp(basis, "ari") == 0)
        snprintf(data, data_len,
                 "{\"basis\":\"%s\",\"failures\":%d,\"replaces\":%lld,"
                 "\"ari_window\":{\"start\":%lld,\"end\":%lld}}",
                 basis, r->failures, (long long)r->production_order_id,
                 (long long)r->ari_window_start, (long long)r->ari_window_end);
    else
        snprintf(data, data_len, "{\"basis\":\"%s\",\"failures\":%d,\"replaces\":%lld}", basis,
                 r->failures, (long long)r->production_order_id);
}

/* The order, its csr job and (for a renewal) its "renewal_started" event in one transaction. */
static void start_order(struct ck_scheduler *s, const struct ck_sched_row *r, const char *basis,
                        struct tick *t)
{
    int64_t order_id = 0, job_id = 0;
    char message[CK_ERROR_MSG_MAX], data[256];
    ck_error err = {0};
    bool renewal = r->production_order_id != 0;
    renewal_text(r, basis, message, sizeof(message), data, sizeof(data));
    const struct ck_event_new started = {.type = "renewal_started",
                                         .enrollment_id = r->enrollment_id,
                                         .message = message,
                                         .data_json = data};
    if (ck_store_order_create_event(s->store, r->tenant_id, r->enrollment_id,
                                    renewal ? &started : NULL, &order_id, &job_id, &err) != 0) {
        log_failure(r, "starting an order", &err);
        return;
    }
    t->started++;
    t->in_flight++;
    if (s->runner != NULL)
        ck_job_runner_wake(s->runner);
    if (!renewal) {
        t->report.orders_started++;
        ck_log(CK_LOG_INFO, "scheduler: first order %lld for %s", (long long)order_id, r->name);
        return;
    }
    t->report.renewals_started++;
    t->report.retries_started += r->failures > 0;
    ck_log(CK_LOG_INFO, "scheduler: %s: order %lld", message, (long long)order_id);
}

static void maybe_start(struct ck_scheduler *s, const struct ck_sched_row *r, struct tick *t)
{
    bool due = false;
    const char *basis = NULL;
    ck_error err = {0};
    if (renewal_due(s, r, t->now, &due, &basis, &err) != 0) {
        log_failure(r, "computing its renewal time", &err);
        return;
    }
    if (!due || (r->failures > 0 && !retry_due(s, r, t)))
        return;
    if (t->started >= s->max_in_flight || t->in_flight >= s->max_in_flight) {
        t->report.skipped_capacity++;
        return;
    }
    start_order(s, r, r->failures > 0 ? "retry" : basis, t);
}

/* RFC 9773: asks an ACME CA for the production certificate's renewal window when the last
 * answer is older than the CA asked (twice a day at most), a few certificates per tick. The
 * window found is used at once. */
static void refresh_ari(struct ck_scheduler *s, struct ck_sched_row *r, struct tick *t)
{
    struct ck_ari_status got = {0};
    ck_error err = {0};
    if (!r->acme_issuer || r->production_order_id == 0 || r->production_cert_pem == NULL ||
        r->ari_next_check_at > t->now || t->ari_checks >= CK_SCHED_ARI_PER_TICK)
        return;
    const struct ck_ari_check_input in = {.tenant_id = r->tenant_id,
                                          .issuer = r->issuer,
                                          .order_id = r->production_order_id,
                                          .cert_pem = r->production_cert_pem,
                                          .now = t->now};
    int rc = ck_ari_check(s->store, &in, &got, &err);
    if (rc < 0)
        log_failure(r, "checking its ACME renewal information", &err);
    if (rc != 1)
        return;
    t->ari_checks++;
    t->report.ari_checked++;
    if (got.has_window || !got.offered) {
        r->ari_has_window = got.has_window;
        r->ari_window_start = got.window_start;
        r->ari_window_end = got.window_end;
    }
    ck_ari_status_free(&got);
}

static void consider(struct ck_scheduler *s, struct ck_sched_row *r, struct tick *t)
{
    check_urgency(s, r, t);
    if (r->open_order_id == 0)
        refresh_ari(s, r, t);
    if (r->open_order_id == 0)
        maybe_start(s, r, t);
    else if (r->open_state == CK_ORDER_ISSUED)
        stage(s, r, t);
    else if (r->open_state == CK_ORDER_STAGED)
        deploy_if_due(s, r, t);
}

int ck_scheduler_tick(struct ck_scheduler *s, int64_t now, struct ck_scheduler_report *report,
                      ck_error *err)
{
    struct tick t = {.now = now};
    struct ck_sched_row *rows = NULL;
    size_t n = 0;
    int64_t after = 0;
    if (ck_store_sched_orders_in_flight(s->store, &t.in_flight, err) != 0)
        return -1;
    /* bounded: every page moves `after` forward past ids that exist */
    do {
        if (ck_store_sched_page(s->store, after, CK_SCHED_PAGE_SIZE, &rows, &n, err) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            consider(s, &rows[i], &t);
        if (n > 0)
            after = rows[n - 1].enrollment_id;
        ck_sched_row_array_free(rows, n);
    } while (n == CK_SCHED_PAGE_SIZE);
    if (report != NULL)
        *report = t.report;
    return 0;
}

/* ---- life cycle ---- */

static int copy_config(struct ck_scheduler *s, const struct ck_scheduler_config *cfg, ck_error *err)
{
    s->max_in_flight = cfg->max_in_flight > 0 ? cfg->max_in_flight : CK_SCHED_IN_FLIGHT_DEFAULT;
    s->runner = cfg->runner;
    if (cfg->staging_address != NULL && (s->staging_address = strdup(cfg->staging_address)) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    if (cfg->production_address != NULL &&
        (s->production_address = strdup(cfg->production_address)) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    return 0;
}

int ck_scheduler_new(struct ck_store *st, const struct ck_scheduler_config *cfg,
                     struct ck_scheduler **out, ck_error *err)
{
    struct ck_scheduler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    s->store = st;
    if (copy_config(s, cfg, err) != 0) {
        ck_scheduler_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

static void *scheduler_main(void *arg)
{
    struct ck_scheduler *s = arg;
    do {
        ck_error err = {0};
        struct ck_scheduler_report report;
        if (ck_scheduler_tick(s, ck_clock_now(), &report, &err) != 0)
            ck_log(CK_LOG_ERROR, "scheduler: %s", err.message);
    } while (ck_sleeper_sleep(&s->sleeper, CK_SCHED_TICK_MS));
    return NULL;
}

static int start_thread(struct ck_scheduler *s, ck_error *err)
{
    if (ck_sleeper_init(&s->sleeper) != 0)
        return ck_error_set(err, 500, "thread_failed", "could not start the scheduler");
    if ((errno = pthread_create(&s->thread, NULL, scheduler_main, s)) != 0) {
        ck_sleeper_destroy(&s->sleeper);
        return ck_error_set(err, 500, "thread_failed", "could not start the scheduler thread: %s",
                            strerror(errno));
    }
    s->started = true;
    return 0;
}

int ck_scheduler_start(const char *db_path, const struct ck_scheduler_config *cfg,
                       struct ck_scheduler **out, ck_error *err)
{
    struct ck_scheduler *s = NULL;
    struct ck_store *st = NULL;
    if (ck_store_open(db_path, &st, err) != 0)
        return -1;
    if (ck_scheduler_new(st, cfg, &s, err) != 0) {
        ck_store_close(st);
        return -1;
    }
    s->owns_store = true;
    if (start_thread(s, err) != 0) {
        ck_scheduler_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void ck_scheduler_free(struct ck_scheduler *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        ck_sleeper_stop(&s->sleeper);
        pthread_join(s->thread, NULL);
        ck_sleeper_destroy(&s->sleeper);
    }
    if (s->owns_store)
        ck_store_close(s->store);
    free(s->staging_address);
    free(s->production_address);
    free(s);
}
