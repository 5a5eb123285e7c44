/* monitor.c — expiry monitoring of the watched endpoints (monitor.h). */
#include "server/monitor.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "common/sleeper.h"
#include "common/log.h"
#include "core/probe.h"
#include "core/watch.h"
#include "crypto/x509info.h"

/* One thread's share of the monitoring: its own store connection and lease holder name. All
 * probers walk every enrollment and probe the endpoints whose lease they win, so a slow or
 * unreachable endpoint holds up one prober while the others go on. */
struct prober {
    struct ck_monitor *monitor;
    struct ck_store *store;
    bool owns_store;
    char holder[300]; /* "hostname:pid:monitor:N", the lease holder */
    bool started;
    pthread_t thread;
};

struct ck_monitor {
    int64_t interval;
    int probe_timeout_ms;
    char *production_address;
    struct ck_sleeper sleeper; /* stops every prober; also read by a pass run without threads */
    size_t n_probers;
    struct prober *probers;
};

/* One enrollment during a pass. */
struct target {
    struct prober *prober;
    const struct ck_watch_row *row;
    X509 *deployed;
    int64_t now;
};

/* What to probe for one endpoint key. */
struct probe_spec {
    char address[272];
    char sni[254]; /* "" = the default (the host when it is a name) */
};

static int64_t lease_seconds(const struct ck_monitor *m)
{
    return m->probe_timeout_ms / 1000 + 30;
}

static int probe_spec_of(const struct ck_monitor *m, const char *key, struct probe_spec *out,
                         ck_error *err)
{
    struct ck_watch_endpoint ep;
    size_t prefix = strlen(CK_WATCH_PRODUCTION);
    if (strncmp(key, CK_WATCH_PRODUCTION, prefix) == 0) {
        if (m->production_address == NULL)
            return ck_error_set(err, 400, "no_production_listener",
                                "this daemon has no production listener");
        snprintf(out->address, sizeof(out->address), "%s", m->production_address);
        snprintf(out->sni, sizeof(out->sni), "%s", key + prefix);
        return 0;
    }
    if (ck_watch_endpoint_parse(key, &ep, err) != 0)
        return -1;
    snprintf(out->address, sizeof(out->address), "%s", ep.address);
    snprintf(out->sni, sizeof(out->sni), "%s", ep.sni);
    return 0;
}

/* What one probe found, in words and numbers. */
struct observation {
    enum ck_watch_status status;
    char detail[CK_ERROR_MSG_MAX];
    char serial[132];
    int64_t not_after;
};

/* o->detail: what a person reads in the event and the watch view. */
static void describe(struct observation *o, const char *why_unreachable)
{
    char expiry[32];
    ck_time_format(o->not_after, expiry, sizeof(expiry));
    switch (o->status) {
    case CK_WATCH_UNREACHABLE:
        snprintf(o->detail, sizeof(o->detail), "%s", why_unreachable);
        break;
    case CK_WATCH_MISMATCH:
        snprintf(o->detail, sizeof(o->detail),
                 "serves certificate %.64s (expires %s), not the deployed one", o->serial, expiry);
        break;
    case CK_WATCH_EXPIRING:
        snprintf(o->detail, sizeof(o->detail),
                 "serves the deployed certificate, which expires at %s and is inside its "
                 "renewal window",
                 expiry);
        break;
    default:
        snprintf(o->detail, sizeof(o->detail), "serves the deployed certificate (expires %s)",
                 expiry);
    }
}

static void observe(const struct ck_monitor *m, const struct target *t, const char *key,
                    struct observation *o)
{
    struct probe_spec spec = {0};
    struct ck_probe_result pr = {0};
    ck_error err = {0};
    struct ck_watch_observation obs = {.renew_before = t->row->renew_before,
                                       .validation = t->row->validation,
                                       .seed = (uint64_t)t->row->enrollment_id};
    if (probe_spec_of(m, key, &spec, &err) == 0) {
        const struct ck_probe_request req = {.endpoint = spec.address,
                                             .sni = spec.sni[0] ? spec.sni : NULL,
                                             .no_system_roots = true,
                                             .timeout_ms = m->probe_timeout_ms};
        obs.reached = ck_probe(&req, &pr, &err) == 0 && pr.leaf != NULL;
    }
    if (obs.reached) {
        obs.same_certificate = X509_cmp(pr.leaf, t->deployed) == 0;
        obs.not_before = pr.certificate.not_before;
        obs.not_after = pr.certificate.not_after;
        snprintf(o->serial, sizeof(o->serial), "%s", pr.certificate.serial_hex);
        o->not_after = pr.certificate.not_after;
    }
    if (ck_watch_decide(&obs, t->now, &o->status, &err) != 0) {
        /* renew_before was checked on input; if it no longer parses, judge by the match alone */
        ck_log(CK_LOG_WARN, "monitor: enrollment %s: %s", t->row->name, err.message);
        o->status = CK_WATCH_OK;
    }
    describe(o, err.message);
    ck_probe_result_free(&pr);
}

static char *event_data(const char *key, enum ck_watch_status before, const struct observation *o)
{
    json_t *data = json_pack(
        "{s:s,s:s,s:s,s:s?,s:o}", "endpoint", key, "status", ck_watch_status_name(o->status),
        "previous", ck_watch_status_name(before), "served_serial", o->serial[0] ? o->serial : NULL,
        "served_not_after", o->not_after ? json_integer(o->not_after) : json_null());
    char *text = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    return text;
}

/* Probes one endpoint if it is due and ours, records it, raises the event of a change.
 * Returns 1 when it probed, 0 when it was not due, -1 on error. */
static int watch_one(const struct target *t, const char *key, struct ck_monitor_report *report,
                     ck_error *err)
{
    char before_text[16], message[CK_ERROR_MSG_MAX];
    struct observation o = {0};
    const struct ck_monitor *m = t->prober->monitor;
    struct ck_store *st = t->prober->store;
    /* Now, not the pass's start: a prober held up by dead endpoints would otherwise take
     * leases that have already run out. */
    int got =
        ck_store_watch_claim(st, t->row->enrollment_id, key, t->prober->holder, ck_clock_now(),
                             m->interval, lease_seconds(m), before_text, sizeof(before_text), err);
    if (got <= 0)
        return got;
    observe(m, t, key, &o);
    enum ck_watch_status before = ck_watch_status_parse(before_text);
    const char *type = ck_watch_event_type(before, o.status);
    snprintf(message, sizeof(message), "endpoint %.200s of %.63s: %.230s", key, t->row->name,
             o.detail);
    char *data = type != NULL ? event_data(key, before, &o) : NULL;
    const struct ck_event_new ev = {.type = type,
                                    .enrollment_id = t->row->enrollment_id,
                                    .order_id = t->row->production_order_id,
                                    .message = message,
                                    .data_json = data};
    const struct ck_watch_result res = {.status = ck_watch_status_name(o.status),
                                        .detail = o.detail,
                                        .served_serial = o.serial[0] ? o.serial : NULL,
                                        .served_not_after = o.not_after};
    /* ck_clock_now(), not t->now: the probe took time, and checked_at says when it ended */
    int rc = ck_store_watch_record(st, t->row->tenant_id, t->row->enrollment_id, key,
                                   t->prober->holder, ck_clock_now(), &res, type ? &ev : NULL, err);
    free(data);
    if (rc != 0)
        return -1;
    report->probed++;
    if (type != NULL) {
        report->events++;
        ck_log(CK_LOG_INFO, "monitor: %s: %s", type, message);
    }
    return 1;
}

static void watch_enrollment(struct prober *p, const struct ck_watch_row *row, int64_t now,
                             struct ck_monitor_report *report)
{
    struct ck_monitor *m = p->monitor;
    struct target t = {.prober = p, .row = row, .now = now};
    ck_strv keys = {0};
    ck_error err = {0};
    bool probed = false;
    if (row->production_deployed_at + CK_MONITOR_SETTLE_SECONDS > now)
        return;
    t.deployed = ck_x509_from_pem(row->production_cert_pem, strlen(row->production_cert_pem), &err);
    if (t.deployed == NULL ||
        ck_watch_keys(&row->sans, &row->watch, m->production_address != NULL, &keys) != 0) {
        ck_log(CK_LOG_WARN, "monitor: enrollment %s: %s", row->name,
               err.message[0] ? err.message : "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < keys.len && !ck_sleeper_stopping(&m->sleeper); i++) {
        int rc = watch_one(&t, keys.items[i], report, &err);
        if (rc < 0 && !(err.status == 409 && strcmp(err.code, "lease_lost") == 0))
            ck_log(CK_LOG_WARN, "monitor: enrollment %s, endpoint %s: %s", row->name, keys.items[i],
                   err.message);
        probed = probed || rc > 0;
    }
    /* Once per interval (when something was due): forget endpoints no longer watched. */
    if (probed && ck_store_watch_prune(p->store, row->enrollment_id, &keys, &err) != 0)
        ck_log(CK_LOG_WARN, "monitor: enrollment %s: %s", row->name, err.message);
cleanup:
    X509_free(t.deployed);
    ck_strv_free(&keys);
}

static int prober_pass(struct prober *p, int64_t now, struct ck_monitor_report *report,
                       ck_error *err)
{
    struct ck_monitor *m = p->monitor;
    struct ck_monitor_report r = {0};
    struct ck_watch_row *rows = NULL;
    size_t n = 0;
    int64_t after = 0;
    /* bounded: every page moves `after` forward past ids that exist */
    do {
        if (ck_store_watch_page(p->store, after, CK_MONITOR_PAGE_SIZE, &rows, &n, err) != 0)
            return -1;
        for (size_t i = 0; i < n && !ck_sleeper_stopping(&m->sleeper); i++)
            watch_enrollment(p, &rows[i], now, &r);
        if (n > 0)
            after = rows[n - 1].enrollment_id;
        ck_watch_row_array_free(rows, n);
    } while (n == CK_MONITOR_PAGE_SIZE && !ck_sleeper_stopping(&m->sleeper));
    if (report != NULL)
        *report = r;
    return 0;
}

int ck_monitor_pass(struct ck_monitor *m, int64_t now, struct ck_monitor_report *report,
                    ck_error *err)
{
    return prober_pass(&m->probers[0], now, report, err);
}

/* ---- life cycle ---- */

/* The monitor with n probers and no store yet. */
static int monitor_new(const struct ck_monitor_config *cfg, size_t n, struct ck_monitor **out,
                       ck_error *err)
{
    char host[256] = {0};
    struct ck_monitor *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->probers = calloc(n, sizeof(*m->probers))) == NULL) {
        free(m);
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
    m->n_probers = n;
    m->interval = cfg->interval > 0 ? cfg->interval : CK_MONITOR_INTERVAL_DEFAULT;
    m->probe_timeout_ms =
        cfg->probe_timeout_ms > 0 ? cfg->probe_timeout_ms : CK_MONITOR_PROBE_TIMEOUT_MS;
    if (ck_sleeper_init(&m->sleeper) != 0) {
        free(m->probers);
        free(m);
        return ck_error_set(err, 500, "thread_failed", "could not set up the monitor");
    }
    if (cfg->production_address != NULL &&
        (m->production_address = strdup(cfg->production_address)) == NULL) {
        ck_monitor_free(m);
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
    gethostname(host, sizeof(host) - 1);
    for (size_t i = 0; i < n; i++) {
        m->probers[i].monitor = m;
        snprintf(m->probers[i].holder, sizeof(m->probers[i].holder), "%s:%ld:monitor:%zu", host,
                 (long)getpid(), i + 1);
    }
    *out = m;
    return 0;
}

int ck_monitor_new(struct ck_store *st, const struct ck_monitor_config *cfg,
                   struct ck_monitor **out, ck_error *err)
{
    if (monitor_new(cfg, 1, out, err) != 0)
        return -1;
    (*out)->probers[0].store = st;
    return 0;
}

static int64_t pass_period(const struct ck_monitor *m)
{
    int64_t p = m->interval / 10;
    return p < 1 ? 1 : p > 60 ? 60 : p;
}

static void *prober_main(void *arg)
{
    struct prober *p = arg;
    struct ck_monitor *m = p->monitor;
    do {
        ck_error err = {0};
        if (prober_pass(p, ck_clock_now(), NULL, &err) != 0)
            ck_log(CK_LOG_ERROR, "monitor: %s", err.message);
    } while (ck_sleeper_sleep(&m->sleeper, pass_period(m) * 1000));
    return NULL;
}

int ck_monitor_start(const char *db_path, const struct ck_monitor_config *cfg,
                     struct ck_monitor **out, ck_error *err)
{
    struct ck_monitor *m = NULL;
    if (monitor_new(cfg, CK_MONITOR_PROBERS, &m, err) != 0)
        return -1;
    for (size_t i = 0; i < m->n_probers; i++) {
        struct prober *p = &m->probers[i];
        if (ck_store_open(db_path, &p->store, err) != 0)
            goto failed;
        p->owns_store = true;
        if ((errno = pthread_create(&p->thread, NULL, prober_main, p)) != 0) {
            ck_error_set(err, 500, "thread_failed", "could not start a monitor thread: %s",
                         strerror(errno));
            goto failed;
        }
        p->started = true;
    }
    *out = m;
    return 0;
failed:
    ck_monitor_free(m);
    return -1;
}

void ck_monitor_free(struct ck_monitor *m)
{
    if (m == NULL)
        return;
    ck_sleeper_stop(&m->sleeper);
    for (size_t i = 0; i < m->n_probers; i++) {
        struct prober *p = &m->probers[i];
        if (p->started)
            pthread_join(p->thread, NULL);
        if (p->owns_store)
            ck_store_close(p->store);
    }
    ck_sleeper_destroy(&m->sleeper);
    free(m->probers);
    free(m->production_address);
    free(m);
}
