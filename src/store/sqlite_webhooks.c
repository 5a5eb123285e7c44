/* sqlite_webhooks.c — store.h's issue 6 part on SQLite: webhooks, the fan-out of events into
 * deliveries, and the leased delivery log the daemon's webhook worker works through. Same rules
 * as sqlite.c: constant SQL, user data only as bound parameters, every change one transaction. */
#include "store/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "store/sqlite_internal.h"

/* ==== rows ==== */

#define WEBHOOK_COLUMNS                                                                            \
    "w.id, w.tenant_id, w.url, w.sealed_secret, w.active, w.last_event_id, "                       \
    "w.created_at"
#define DELIVERY_COLUMNS                                                                           \
    "d.id, d.webhook_id, d.event_id, v.type, d.state, d.attempts, d.next_attempt_at, "             \
    "d.last_status, d.last_error, d.delivered_at, d.created_at"
#define EVENT_COLUMNS                                                                              \
    "v.id, v.tenant_id, v.type, v.enrollment_id, e.name, v.order_id, v.message, v.data_json, "     \
    "v.created_at, v.confirmed_at"
#define WEBHOOK_NCOLS  7
#define DELIVERY_NCOLS 11

const char *ck_delivery_state_name(enum ck_delivery_state s)
{
    return s == CK_DELIVERY_DELIVERED ? "delivered" : "pending";
}

void ck_webhook_free(struct ck_webhook *w)
{
    free(w->url);
    free(w->sealed_secret);
    memset(w, 0, sizeof(*w));
}

void ck_webhook_array_free(struct ck_webhook *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        ck_webhook_free(&a[i]);
    free(a);
}

static void delivery_free(struct ck_webhook_delivery *d)
{
    free(d->event_type);
    free(d->last_error);
    memset(d, 0, sizeof(*d));
}

void ck_webhook_delivery_array_free(struct ck_webhook_delivery *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        delivery_free(&a[i]);
    free(a);
}

void ck_webhook_claim_free(struct ck_webhook_claim *c)
{
    delivery_free(&c->delivery);
    ck_webhook_free(&c->webhook);
    ck_event_free(&c->event);
}

static void webhook_columns(sqlite3_stmt *s, int c, struct ck_webhook *w, bool *ok)
{
    w->id = sqlite3_column_int64(s, c);
    w->tenant_id = sqlite3_column_int64(s, c + 1);
    w->url = ck_sql_col_text(s, c + 2, ok);
    w->sealed_secret = ck_sql_col_blob(s, c + 3, &w->sealed_secret_len, ok);
    w->active = sqlite3_column_int64(s, c + 4) != 0;
    w->last_event_id = sqlite3_column_int64(s, c + 5);
    w->created_at = sqlite3_column_int64(s, c + 6);
}

static void delivery_columns(sqlite3_stmt *s, int c, struct ck_webhook_delivery *d, bool *ok)
{
    const char *state = (const char *)sqlite3_column_text(s, c + 4);
    d->id = sqlite3_column_int64(s, c);
    d->webhook_id = sqlite3_column_int64(s, c + 1);
    d->event_id = sqlite3_column_int64(s, c + 2);
    d->event_type = ck_sql_col_text(s, c + 3, ok);
    d->state = state != NULL && strcmp(state, "delivered") == 0 ? CK_DELIVERY_DELIVERED
                                                                : CK_DELIVERY_PENDING;
    d->attempts = (int)sqlite3_column_int64(s, c + 5);
    d->next_attempt_at = sqlite3_column_int64(s, c + 6);
    d->last_status = (long)sqlite3_column_int64(s, c + 7);
    d->last_error = ck_sql_col_text(s, c + 8, ok);
    d->delivered_at = sqlite3_column_int64(s, c + 9);
    d->created_at = sqlite3_column_int64(s, c + 10);
}

static void event_columns(sqlite3_stmt *s, int c, struct ck_event *v, bool *ok)
{
    v->id = sqlite3_column_int64(s, c);
    v->tenant_id = sqlite3_column_int64(s, c + 1);
    v->type = ck_sql_col_text(s, c + 2, ok);
    v->enrollment_id = sqlite3_column_int64(s, c + 3);
    v->enrollment_name = ck_sql_col_text(s, c + 4, ok);
    v->order_id = sqlite3_column_int64(s, c + 5);
    v->message = ck_sql_col_text(s, c + 6, ok);
    v->data_json = ck_sql_col_text(s, c + 7, ok);
    v->created_at = sqlite3_column_int64(s, c + 8);
    v->confirmed_at = sqlite3_column_int64(s, c + 9);
}

static int read_webhook(sqlite3_stmt *s, void *row, ck_error *err)
{
    bool ok = true;
    webhook_columns(s, 0, row, &ok);
    if (ok)
        return 0;
    ck_webhook_free(row);
    return ck_sql_out_of_memory(err);
}

static void free_webhook_row(void *row)
{
    ck_webhook_free(row);
}

static int read_delivery(sqlite3_stmt *s, void *row, ck_error *err)
{
    bool ok = true;
    delivery_columns(s, 0, row, &ok);
    if (ok)
        return 0;
    delivery_free(row);
    return ck_sql_out_of_memory(err);
}

static void free_delivery_row(void *row)
{
    delivery_free(row);
}

static int read_claim(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_webhook_claim *c = row;
    bool ok = true;
    delivery_columns(s, 0, &c->delivery, &ok);
    webhook_columns(s, DELIVERY_NCOLS, &c->webhook, &ok);
    event_columns(s, DELIVERY_NCOLS + WEBHOOK_NCOLS, &c->event, &ok);
    if (ok)
        return 0;
    ck_webhook_claim_free(c);
    return ck_sql_out_of_memory(err);
}

/* ==== webhooks ==== */

struct webhook_create {
    struct ck_webhook *w;
    ck_store_seal_fn seal;
    void *seal_ctx;
    int64_t now;
};

/* The secret's AAD names the row's id, so it is sealed after the INSERT, in the same
 * transaction; a failing seal leaves no webhook behind. */
static int webhook_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct webhook_create *c = ctx;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    int ret = -1;
    if (ck_sql_exec_args(st,
                         "INSERT INTO webhooks (tenant_id, url, active, last_event_id, created_at) "
                         "VALUES (?1, ?2, 1, COALESCE((SELECT MAX(id) FROM events "
                         "WHERE tenant_id = ?1), 0), ?3)",
                         ARGS(A_INT(c->w->tenant_id), A_TEXT(c->w->url), A_INT(c->now)),
                         "creating a webhook", NULL, err) != 0)
        goto cleanup;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    if (c->seal != NULL && c->seal(c->seal_ctx, id, "secret", &sealed, &sealed_len, err) != 0)
        goto cleanup;
    if (sealed != NULL &&
        ck_sql_exec_args(st, "UPDATE webhooks SET sealed_secret = ?1 WHERE id = ?2",
                         ARGS(A_BLOB(sealed, sealed_len), A_INT(id)), "storing a webhook secret",
                         NULL, err) != 0)
        goto cleanup;
    if (ck_sql_query_one(st, "SELECT last_event_id FROM webhooks WHERE id = ?1", ARGS(A_INT(id)),
                         "creating a webhook", ck_sql_read_id, &c->w->last_event_id, err) != 1)
        goto cleanup;
    c->w->id = id;
    ret = 0;
cleanup:
    free(sealed);
    return ret;
}

int ck_store_webhook_create(struct ck_store *st, struct ck_webhook *w, ck_store_seal_fn seal,
                            void *seal_ctx, ck_error *err)
{
    struct webhook_create c = {.w = w, .seal = seal, .seal_ctx = seal_ctx, .now = ck_clock_now()};
    if (ck_sql_in_transaction(st, webhook_insert, &c, err) != 0)
        return -1;
    w->created_at = c.now;
    w->active = true;
    return 0;
}

int ck_store_webhook_get(struct ck_store *st, int64_t tenant_id, int64_t webhook_id,
                         struct ck_webhook *out, ck_error *err)
{
    int rc = ck_sql_query_one(st,
                              "SELECT " WEBHOOK_COLUMNS " FROM webhooks w "
                              "WHERE w.id = ?1 AND w.tenant_id = ?2",
                              ARGS(A_INT(webhook_id), A_INT(tenant_id)), "reading a webhook",
                              read_webhook, out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no webhook %lld", (long long)webhook_id);
    return rc == 1 ? 0 : -1;
}

int ck_store_webhook_list(struct ck_store *st, int64_t tenant_id, struct ck_webhook **out,
                          size_t *n, ck_error *err)
{
    return ck_sql_query_all(st,
                            "SELECT " WEBHOOK_COLUMNS " FROM webhooks w WHERE w.tenant_id = ?1 "
                            "ORDER BY w.id",
                            ARGS(A_INT(tenant_id)), "listing webhooks", read_webhook,
                            free_webhook_row, sizeof(struct ck_webhook), (void **)out, n, err);
}

int ck_store_webhook_delete(struct ck_store *st, int64_t tenant_id, int64_t webhook_id,
                            ck_error *err)
{
    int64_t changes = 0;
    if (ck_sql_exec_args(st, "DELETE FROM webhooks WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(webhook_id), A_INT(tenant_id)), "deleting a webhook", &changes,
                         err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no webhook %lld", (long long)webhook_id);
    return 0;
}

int ck_store_webhook_deliveries(struct ck_store *st, int64_t tenant_id, int64_t webhook_id,
                                size_t limit, struct ck_webhook_delivery **out, size_t *n,
                                ck_error *err)
{
    int64_t found;
    int rc = ck_sql_query_one(st, "SELECT id FROM webhooks WHERE id = ?1 AND tenant_id = ?2",
                              ARGS(A_INT(webhook_id), A_INT(tenant_id)), "reading a webhook",
                              ck_sql_read_id, &found, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no webhook %lld", (long long)webhook_id);
    if (rc < 0)
        return -1;
    return ck_sql_query_all(st,
                            "SELECT " DELIVERY_COLUMNS " FROM webhook_deliveries d "
                            "JOIN events v ON v.id = d.event_id WHERE d.webhook_id = ?1 "
                            "ORDER BY d.id DESC LIMIT ?2",
                            ARGS(A_INT(webhook_id), A_INT((int64_t)limit)),
                            "listing webhook deliveries", read_delivery, free_delivery_row,
                            sizeof(struct ck_webhook_delivery), (void **)out, n, err);
}

/* ==== the worker's side ==== */

struct fan_out {
    int64_t now;
    int64_t added;
};

/* Both statements run in one write transaction, so no event can arrive between the INSERT that
 * reads the events after each cursor and the UPDATE that moves the cursor past them. */
static int fan_out_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct fan_out *f = ctx;
    if (ck_sql_exec_args(st,
                         "INSERT INTO webhook_deliveries (webhook_id, event_id, state, attempts, "
                         "next_attempt_at, created_at) "
                         "SELECT w.id, v.id, 'pending', 0, ?1, ?1 FROM webhooks w "
                         "JOIN events v ON v.tenant_id = w.tenant_id AND v.id > w.last_event_id "
                         "WHERE w.active = 1 ORDER BY w.id, v.id "
                         "ON CONFLICT (webhook_id, event_id) DO NOTHING",
                         ARGS(A_INT(f->now)), "adding webhook deliveries", &f->added, err) != 0)
        return -1;
    return ck_sql_exec_args(st,
                            "UPDATE webhooks SET last_event_id = (SELECT MAX(id) FROM events "
                            "WHERE tenant_id = webhooks.tenant_id) "
                            "WHERE active = 1 AND EXISTS (SELECT 1 FROM events "
                            "WHERE tenant_id = webhooks.tenant_id AND id > webhooks.last_event_id)",
                            NO_ARGS, "moving the webhook cursors", NULL, err);
}

int ck_store_webhook_fan_out(struct ck_store *st, int64_t now, int64_t *added, ck_error *err)
{
    struct fan_out f = {.now = now};
    int64_t behind;
    /* A read first: the worker calls this every second, and most seconds there is nothing new,
     * which should not cost every daemon sharing the database a write lock. */
    int rc = ck_sql_query_one(st,
                              "SELECT w.id FROM webhooks w WHERE w.active = 1 AND EXISTS "
                              "(SELECT 1 FROM events v WHERE v.tenant_id = w.tenant_id "
                              "AND v.id > w.last_event_id) LIMIT 1",
                              NO_ARGS, "looking for new events", ck_sql_read_id, &behind, err);
    if (rc < 0)
        return -1;
    if (rc == 1 && ck_sql_in_transaction(st, fan_out_body, &f, err) != 0)
        return -1;
    if (added != NULL)
        *added = f.added;
    return 0;
}

struct claim {
    const char *worker;
    int64_t now, lease_seconds;
    struct ck_webhook_claim *out;
    int found;
};

static int claim_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct claim *c = ctx;
    int64_t id;
    int rc = ck_sql_query_one(
        st,
        "SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
        "WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 AND w.active = 1 "
        "AND (d.lease_until IS NULL OR d.lease_until <= ?1) "
        "ORDER BY d.next_attempt_at, d.id LIMIT 1",
        ARGS(A_INT(c->now)), "claiming a webhook delivery", ck_sql_read_id, &id, err);
    if (rc <= 0)
        return rc;
    if (ck_sql_exec_args(st,
                         "UPDATE webhook_deliveries SET lease_holder = ?1, lease_until = ?2 "
                         "WHERE id = ?3",
                         ARGS(A_TEXT(c->worker), A_INT(c->now + c->lease_seconds), A_INT(id)),
                         "claiming a webhook delivery", NULL, err) != 0)
        return -1;
    rc = ck_sql_query_one(st,
                          "SELECT " DELIVERY_COLUMNS ", " WEBHOOK_COLUMNS ", " EVENT_COLUMNS
                          " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
                          "JOIN events v ON v.id = d.event_id "
                          "LEFT JOIN enrollments e ON e.id = v.enrollment_id WHERE d.id = ?1",
                          ARGS(A_INT(id)), "claiming a webhook delivery", read_claim, c->out, err);
    if (rc == 0)
        return ck_error_set(err, 500, "storage_failed", "webhook delivery %lld vanished",
                            (long long)id);
    c->found = rc == 1;
    return rc == 1 ? 0 : -1;
}

int ck_store_webhook_claim(struct ck_store *st, const char *worker, int64_t now,
                           int64_t lease_seconds, struct ck_webhook_claim *out, ck_error *err)
{
    struct ck_webhook_claim got = {0};
    struct claim c = {.worker = worker, .now = now, .lease_seconds = lease_seconds, .out = &got};
    if (ck_sql_in_transaction(st, claim_body, &c, err) != 0) {
        ck_webhook_claim_free(&got);
        return -1;
    }
    if (c.found)
        *out = got;
    return c.found;
}

int ck_store_webhook_record(struct ck_store *st, int64_t delivery_id, const char *worker,
                            bool acknowledged, long status, const char *error, int64_t now,
                            int64_t next_attempt_at, ck_error *err)
{
    int64_t changes = 0;
    int rc = ck_sql_exec_args(
        st,
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?1, "
        "last_error = ?2, state = CASE WHEN ?3 = 1 THEN 'delivered' ELSE 'pending' END, "
        "delivered_at = CASE WHEN ?3 = 1 THEN ?4 ELSE NULL END, "
        "next_attempt_at = CASE WHEN ?3 = 1 THEN next_attempt_at ELSE ?5 END, "
        "lease_holder = NULL, lease_until = NULL "
        "WHERE id = ?6 AND state = 'pending' AND lease_holder = ?7",
        ARGS(A_INT(status), A_TEXT(acknowledged ? NULL : error), A_INT(acknowledged ? 1 : 0),
             A_INT(now), A_INT(next_attempt_at), A_INT(delivery_id), A_TEXT(worker)),
        "recording a webhook delivery", &changes, err);
    if (rc != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 409, "lease_lost",
                            "webhook delivery %lld is no longer leased to %s (another daemon "
                            "took it over after the lease ran out)",
                            (long long)delivery_id, worker);
    return 0;
}
