/* sqlite_watch.c — store.h's expiry monitoring, metrics and health parts on SQLite (issue 6).
 * An endpoint's probe is leased like a webhook delivery: the claim is one conditional UPDATE
 * (due, and no live lease), the record another (still our lease) in the transaction that adds
 * the event, so of several daemons sharing the database exactly one probes an endpoint per
 * interval and raises its event once. */
#include "store/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/sqlite_internal.h"

/* ==== the monitor's page ==== */

static const char page_sql[] =
    "SELECT e.id, e.tenant_id, e.name, e.sans, e.watch, e.renew_before, e.validation,"
    "  p.id, p.cert_pem, p.deployed_at"
    " FROM enrollments e JOIN orders p ON p.id = e.production_order_id"
    " WHERE e.id > ?1 AND p.cert_pem IS NOT NULL ORDER BY e.id LIMIT ?2";

static void watch_row_free(void *row)
{
    struct ck_watch_row *r = row;
    free(r->name);
    ck_strv_free(&r->sans);
    ck_strv_free(&r->watch);
    free(r->renew_before);
    free(r->production_cert_pem);
    memset(r, 0, sizeof(*r));
}

void ck_watch_row_array_free(struct ck_watch_row *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        watch_row_free(&a[i]);
    free(a);
}

static int read_watch_row(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_watch_row *r = row;
    bool ok = true;
    const char *validation = (const char *)sqlite3_column_text(s, 6);
    r->enrollment_id = sqlite3_column_int64(s, 0);
    r->tenant_id = sqlite3_column_int64(s, 1);
    r->name = ck_sql_col_text(s, 2, &ok);
    r->renew_before = ck_sql_col_text(s, 5, &ok);
    r->production_order_id = sqlite3_column_int64(s, 7);
    r->production_cert_pem = ck_sql_col_text(s, 8, &ok);
    r->production_deployed_at = sqlite3_column_int64(s, 9);
    if (!ok || r->name == NULL) {
        watch_row_free(r);
        return ck_sql_out_of_memory(err);
    }
    if (ck_sql_col_json_strv(s, 3, &r->sans, err) != 0 ||
        ck_sql_col_json_strv(s, 4, &r->watch, err) != 0) {
        watch_row_free(r);
        return -1;
    }
    if (validation == NULL || ck_validation_parse(validation, &r->validation, NULL) != 0) {
        watch_row_free(r);
        return ck_error_set(err, 500, "storage_failed",
                            "enrollment %lld has an unknown validation in the database",
                            (long long)r->enrollment_id);
    }
    return 0;
}

int ck_store_watch_page(struct ck_store *st, int64_t after_id, size_t limit,
                        struct ck_watch_row **out, size_t *n, ck_error *err)
{
    void *rows = NULL;
    if (ck_sql_query_all(st, page_sql, ARGS(A_INT(after_id), A_INT((int64_t)limit)),
                         "reading enrollments for the monitor", read_watch_row, watch_row_free,
                         sizeof(struct ck_watch_row), &rows, n, err) != 0)
        return -1;
    *out = rows;
    return 0;
}

/* ==== claim, record, prune ==== */

struct watch_claim {
    int64_t enrollment_id, now, interval, lease_seconds;
    const char *endpoint, *holder;
    char *status_before;
    size_t status_len;
    bool claimed;
};

static int claim_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct watch_claim *c = ctx;
    int64_t changes = 0;
    char *status = NULL;
    if (ck_sql_exec_args(st,
                         "INSERT INTO watch_status (enrollment_id, endpoint) VALUES (?1, ?2) "
                         "ON CONFLICT (enrollment_id, endpoint) DO NOTHING",
                         ARGS(A_INT(c->enrollment_id), A_TEXT(c->endpoint)),
                         "claiming an endpoint to probe", NULL, err) != 0 ||
        ck_sql_exec_args(st,
                         "UPDATE watch_status SET lease_holder = ?1, lease_until = ?2 "
                         "WHERE enrollment_id = ?3 AND endpoint = ?4 AND checked_at <= ?5 "
                         "AND lease_until <= ?6",
                         ARGS(A_TEXT(c->holder), A_INT(c->now + c->lease_seconds),
                              A_INT(c->enrollment_id), A_TEXT(c->endpoint),
                              A_INT(c->now - c->interval), A_INT(c->now)),
                         "claiming an endpoint to probe", &changes, err) != 0)
        return -1;
    if (changes == 0)
        return 0;
    int rc = ck_sql_query_one(st,
                              "SELECT status FROM watch_status WHERE enrollment_id = ?1 AND "
                              "endpoint = ?2",
                              ARGS(A_INT(c->enrollment_id), A_TEXT(c->endpoint)),
                              "claiming an endpoint to probe", ck_sql_read_text, &status, err);
    if (rc < 0)
        return -1;
    snprintf(c->status_before, c->status_len, "%s", status != NULL ? status : "none");
    free(status);
    c->claimed = true;
    return 0;
}

int ck_store_watch_claim(struct ck_store *st, int64_t enrollment_id, const char *endpoint,
                         const char *holder, int64_t now, int64_t interval, int64_t lease_seconds,
                         char *status_before, size_t status_len, ck_error *err)
{
    struct watch_claim c = {.enrollment_id = enrollment_id,
                            .now = now,
                            .interval = interval,
                            .lease_seconds = lease_seconds,
                            .endpoint = endpoint,
                            .holder = holder,
                            .status_before = status_before,
                            .status_len = status_len};
    /* A read first: an endpoint probed lately or leased now needs no write transaction. Every
     * prober of every daemon walks every endpoint on every pass, and most are not due. */
    int64_t busy = 0;
    int rc = ck_sql_query_one(
        st,
        "SELECT 1 FROM watch_status WHERE enrollment_id = ?1 AND endpoint = ?2 "
        "AND (checked_at > ?3 OR lease_until > ?4)",
        ARGS(A_INT(enrollment_id), A_TEXT(endpoint), A_INT(now - interval), A_INT(now)),
        "claiming an endpoint to probe", ck_sql_read_id, &busy, err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (ck_sql_in_transaction(st, claim_body, &c, err) != 0)
        return -1;
    return c.claimed ? 1 : 0;
}

struct watch_record {
    int64_t tenant_id, enrollment_id, now;
    const char *endpoint, *holder;
    const struct ck_watch_result *res;
    const struct ck_event_new *event;
};

static int record_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct watch_record *w = ctx;
    int64_t changes = 0;
    if (ck_sql_exec_args(
            st,
            "UPDATE watch_status SET changed_at = CASE WHEN status = ?1 THEN changed_at ELSE ?2 "
            "END, status = ?1, detail = ?3, served_serial = ?4, served_not_after = ?5, "
            "checked_at = ?2, lease_holder = NULL, lease_until = 0 "
            "WHERE enrollment_id = ?6 AND endpoint = ?7 AND lease_holder = ?8",
            ARGS(A_TEXT(w->res->status), A_INT(w->now), A_TEXT(w->res->detail),
                 A_TEXT(w->res->served_serial), A_ID(w->res->served_not_after),
                 A_INT(w->enrollment_id), A_TEXT(w->endpoint), A_TEXT(w->holder)),
            "recording a probe", &changes, err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 409, "lease_lost",
                            "the probe of %s is no longer leased to %s (another daemon took it "
                            "over)",
                            w->endpoint, w->holder);
    return w->event != NULL ? ck_sql_event_insert(st, w->tenant_id, w->event, err) : 0;
}

int ck_store_watch_record(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                          const char *endpoint, const char *holder, int64_t now,
                          const struct ck_watch_result *res, const struct ck_event_new *event,
                          ck_error *err)
{
    struct watch_record w = {.tenant_id = tenant_id,
                             .enrollment_id = enrollment_id,
                             .now = now,
                             .endpoint = endpoint,
                             .holder = holder,
                             .res = res,
                             .event = event};
    return ck_sql_in_transaction(st, record_body, &w, err);
}

int ck_store_watch_prune(struct ck_store *st, int64_t enrollment_id, const ck_strv *keep,
                         ck_error *err)
{
    char *list = ck_sql_strv_to_json(keep);
    if (list == NULL)
        return ck_sql_out_of_memory(err);
    int rc = ck_sql_exec_args(st,
                              "DELETE FROM watch_status WHERE enrollment_id = ?1 AND endpoint "
                              "NOT IN (SELECT value FROM json_each(?2))",
                              ARGS(A_INT(enrollment_id), A_TEXT(list)),
                              "forgetting endpoints no longer watched", NULL, err);
    free(list);
    return rc;
}

/* ==== the API's view ==== */

static void watch_state_free(void *row)
{
    struct ck_watch_state *w = row;
    free(w->endpoint);
    free(w->status);
    free(w->detail);
    free(w->served_serial);
    memset(w, 0, sizeof(*w));
}

void ck_watch_state_array_free(struct ck_watch_state *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        watch_state_free(&a[i]);
    free(a);
}

static int read_watch_state(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_watch_state *w = row;
    bool ok = true;
    w->endpoint = ck_sql_col_text(s, 0, &ok);
    w->status = ck_sql_col_text(s, 1, &ok);
    w->detail = ck_sql_col_text(s, 2, &ok);
    w->served_serial = ck_sql_col_text(s, 3, &ok);
    w->served_not_after = sqlite3_column_int64(s, 4);
    w->checked_at = sqlite3_column_int64(s, 5);
    w->changed_at = sqlite3_column_int64(s, 6);
    if (!ok || w->endpoint == NULL || w->status == NULL) {
        watch_state_free(w);
        return ck_sql_out_of_memory(err);
    }
    return 0;
}

int ck_store_watch_list(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                        struct ck_watch_state **out, size_t *n, ck_error *err)
{
    void *rows = NULL;
    if (ck_sql_query_all(st,
                         "SELECT w.endpoint, w.status, w.detail, w.served_serial, "
                         "w.served_not_after, w.checked_at, w.changed_at FROM watch_status w "
                         "JOIN enrollments e ON e.id = w.enrollment_id "
                         "WHERE e.tenant_id = ?1 AND e.id = ?2 ORDER BY w.endpoint",
                         ARGS(A_INT(tenant_id), A_INT(enrollment_id)),
                         "reading the watched endpoints", read_watch_state, watch_state_free,
                         sizeof(struct ck_watch_state), &rows, n, err) != 0)
        return -1;
    *out = rows;
    return 0;
}

/* ==== metrics and health ==== */

static void metric_count_free(void *row)
{
    struct ck_metric_count *c = row;
    free(c->tenant);
    free(c->key);
    memset(c, 0, sizeof(*c));
}

static void metric_counts_free(struct ck_metric_count *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        metric_count_free(&a[i]);
    free(a);
}

/* Columns: tenant (or NULL), key (or NULL), value. */
static int read_metric_count(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_metric_count *c = row;
    bool ok = true;
    c->tenant = ck_sql_col_text(s, 0, &ok);
    c->key = ck_sql_col_text(s, 1, &ok);
    c->value = sqlite3_column_int64(s, 2);
    if (!ok) {
        metric_count_free(c);
        return ck_sql_out_of_memory(err);
    }
    return 0;
}

/* sql takes ?1, the tenant id, 0 for every tenant. */
static int read_counts(struct ck_store *st, int64_t tenant_id, const char *sql, const char *what,
                       struct ck_metric_count **out, size_t *n, ck_error *err)
{
    void *rows = NULL;
    if (ck_sql_query_all(st, sql, ARGS(A_INT(tenant_id)), what, read_metric_count,
                         metric_count_free, sizeof(struct ck_metric_count), &rows, n, err) != 0)
        return -1;
    *out = rows;
    return 0;
}

/* Plain reads, no transaction: a write lock for a scrape would stall every daemon, and numbers
 * a moment apart are what a scrape expects anyway. */
static int metrics_body(struct ck_store *st, int64_t tenant_id, struct ck_store_metrics *m,
                        ck_error *err)
{
    if (read_counts(st, tenant_id,
                    "SELECT t.name, e.name, p.cert_not_after FROM enrollments e "
                    "JOIN tenants t ON t.id = e.tenant_id JOIN orders p "
                    "ON p.id = e.production_order_id WHERE p.cert_not_after IS NOT NULL "
                    "AND (?1 = 0 OR t.id = ?1) ORDER BY t.name, e.name",
                    "reading certificate expiries", &m->expiries, &m->n_expiries, err) != 0 ||
        read_counts(st, tenant_id,
                    "SELECT t.name, o.state, COUNT(*) FROM orders o JOIN tenants t "
                    "ON t.id = o.tenant_id WHERE ?1 = 0 OR t.id = ?1 "
                    "GROUP BY t.name, o.state ORDER BY t.name, o.state",
                    "counting orders", &m->orders, &m->n_orders, err) != 0 ||
        read_counts(st, tenant_id,
                    "SELECT NULL, type, COUNT(*) FROM jobs WHERE state = 'failed' "
                    "AND (?1 = 0 OR tenant_id = ?1) GROUP BY type ORDER BY type",
                    "counting failed jobs", &m->job_failures, &m->n_job_failures, err) != 0 ||
        read_counts(st, tenant_id,
                    "SELECT t.name, NULL, SUM(CASE WHEN d.state = 'delivered' THEN "
                    "d.attempts - 1 ELSE d.attempts END) FROM webhook_deliveries d "
                    "JOIN webhooks w ON w.id = d.webhook_id JOIN tenants t ON t.id = w.tenant_id "
                    "WHERE ?1 = 0 OR t.id = ?1 GROUP BY t.name ORDER BY t.name",
                    "counting webhook failures", &m->webhook_failures, &m->n_webhook_failures,
                    err) != 0 ||
        read_counts(st, tenant_id,
                    "SELECT t.name, w.status, COUNT(*) FROM watch_status w JOIN enrollments e "
                    "ON e.id = w.enrollment_id JOIN tenants t ON t.id = e.tenant_id "
                    "WHERE ?1 = 0 OR t.id = ?1 GROUP BY t.name, w.status ORDER BY t.name, w.status",
                    "counting watched endpoints", &m->watch, &m->n_watch, err) != 0)
        return -1;
    return 0;
}

int ck_store_metrics_read(struct ck_store *st, int64_t tenant_id, struct ck_store_metrics *out,
                          ck_error *err)
{
    struct ck_store_metrics m = {0};
    if (metrics_body(st, tenant_id, &m, err) != 0) {
        ck_store_metrics_free(&m);
        return -1;
    }
    *out = m;
    return 0;
}

void ck_store_metrics_free(struct ck_store_metrics *m)
{
    metric_counts_free(m->expiries, m->n_expiries);
    metric_counts_free(m->orders, m->n_orders);
    metric_counts_free(m->job_failures, m->n_job_failures);
    metric_counts_free(m->webhook_failures, m->n_webhook_failures);
    metric_counts_free(m->watch, m->n_watch);
    memset(m, 0, sizeof(*m));
}

int ck_store_ping(struct ck_store *st, ck_error *err)
{
    int64_t one = 0;
    int rc = ck_sql_query_one(st, "SELECT COUNT(*) FROM tenants", NO_ARGS, "checking the database",
                              ck_sql_read_id, &one, err);
    return rc == 1 ? 0 : -1;
}
