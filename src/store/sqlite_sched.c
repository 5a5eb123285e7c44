/* sqlite_sched.c — store.h's scheduler part (issue 6) on SQLite: one paged read of every
 * enrollment with its production and open orders and its run of failures. Nothing is kept
 * between calls: the scheduler's decisions are recomputed from the rows each tick, so several
 * daemons sharing the database agree without talking to each other. */
#include "store/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/sqlite_internal.h"

/* Column 0..: the enrollment; 9..11 its production order; 12..15 its open order (the one-open
 * index makes it unique); 16 the failures since the last order that got anywhere; 17..18 the
 * newest failed order; 19 its issuer's type; 20..22 its production certificate's ARI window and
 * next check. Only constant text: no user data in the SQL. */
static const char page_sql[] =
    "SELECT e.id, e.tenant_id, e.name, e.issuer, e.validation, e.lifetime, e.renew_before,"
    "  e.deploy_before, e.always_test_on_staging,"
    "  p.id, p.cert_pem, p.cert_not_after,"
    "  o.id, o.state, o.staging_acked_at, o.deploy_not_before,"
    "  (SELECT COUNT(*) FROM orders f WHERE f.enrollment_id = e.id AND f.state = 'failed'"
    "    AND f.id > COALESCE((SELECT MAX(g.id) FROM orders g WHERE g.enrollment_id = e.id"
    "      AND g.state NOT IN ('failed', 'cancelled')), 0)),"
    "  lf.id, lf.updated_at,"
    "  i.type, a.window_start, a.window_end, a.next_check_at"
    " FROM enrollments e"
    " LEFT JOIN orders p ON p.id = e.production_order_id"
    " LEFT JOIN orders o ON o.enrollment_id = e.id AND o.state IN " CK_STORE_OPEN_ORDER_STATES
    " LEFT JOIN orders lf ON lf.id = (SELECT MAX(h.id) FROM orders h"
    "   WHERE h.enrollment_id = e.id AND h.state = 'failed')"
    " LEFT JOIN issuers i ON i.tenant_id = e.tenant_id AND i.name = e.issuer"
    " LEFT JOIN ari_status a ON a.order_id = e.production_order_id"
    " WHERE e.id > ?1 ORDER BY e.id LIMIT ?2";

static void sched_row_free(void *row)
{
    struct ck_sched_row *r = row;
    free(r->name);
    free(r->issuer);
    free(r->policy.lifetime);
    free(r->policy.renew_before);
    free(r->policy.deploy_before);
    free(r->production_cert_pem);
    memset(r, 0, sizeof(*r));
}

void ck_sched_row_array_free(struct ck_sched_row *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        sched_row_free(&a[i]);
    free(a);
}

static int col_enum(sqlite3_stmt *s, int col, bool is_state, struct ck_sched_row *r, ck_error *err)
{
    const char *text = (const char *)sqlite3_column_text(s, col);
    int rc = -1;
    if (text != NULL)
        rc = is_state ? ck_order_state_parse(text, &r->open_state, NULL)
                      : ck_validation_parse(text, &r->validation, NULL);
    if (rc != 0)
        return ck_error_set(err, 500, "storage_failed",
                            "enrollment %lld has an unknown %s in the database",
                            (long long)r->enrollment_id, is_state ? "order state" : "validation");
    return 0;
}

static int read_sched_row(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_sched_row *r = row;
    bool ok = true;
    r->enrollment_id = sqlite3_column_int64(s, 0);
    r->tenant_id = sqlite3_column_int64(s, 1);
    r->name = ck_sql_col_text(s, 2, &ok);
    r->issuer = ck_sql_col_text(s, 3, &ok);
    r->policy.lifetime = ck_sql_col_text(s, 5, &ok);
    r->policy.renew_before = ck_sql_col_text(s, 6, &ok);
    r->policy.deploy_before = ck_sql_col_text(s, 7, &ok);
    r->policy.always_test_on_staging = sqlite3_column_int64(s, 8) != 0;
    r->production_order_id = sqlite3_column_int64(s, 9);
    r->production_cert_pem = ck_sql_col_text(s, 10, &ok);
    r->production_not_after = sqlite3_column_int64(s, 11);
    r->open_order_id = sqlite3_column_int64(s, 12);
    r->open_staging_acked_at = sqlite3_column_int64(s, 14);
    r->open_deploy_not_before = sqlite3_column_int64(s, 15);
    r->failures = (int)sqlite3_column_int64(s, 16);
    r->last_failed_order_id = sqlite3_column_int64(s, 17);
    r->last_failure_at = sqlite3_column_int64(s, 18);
    const char *issuer_type = (const char *)sqlite3_column_text(s, 19);
    r->acme_issuer = issuer_type != NULL && strcmp(issuer_type, "acme") == 0;
    r->ari_has_window = sqlite3_column_type(s, 20) != SQLITE_NULL;
    r->ari_window_start = sqlite3_column_int64(s, 20);
    r->ari_window_end = sqlite3_column_int64(s, 21);
    r->ari_next_check_at = sqlite3_column_int64(s, 22);
    if (!ok || r->name == NULL || r->issuer == NULL) {
        sched_row_free(r);
        return ck_sql_out_of_memory(err);
    }
    if (col_enum(s, 4, false, r, err) != 0 ||
        (r->open_order_id != 0 && col_enum(s, 13, true, r, err) != 0)) {
        sched_row_free(r);
        return -1;
    }
    return 0;
}

int ck_store_sched_page(struct ck_store *st, int64_t after_id, size_t limit,
                        struct ck_sched_row **out, size_t *n, ck_error *err)
{
    void *rows = NULL;
    if (ck_sql_query_all(st, page_sql, ARGS(A_INT(after_id), A_INT((int64_t)limit)),
                         "reading enrollments for the scheduler", read_sched_row, sched_row_free,
                         sizeof(struct ck_sched_row), &rows, n, err) != 0)
        return -1;
    *out = rows;
    return 0;
}

int ck_store_sched_orders_in_flight(struct ck_store *st, int64_t *count, ck_error *err)
{
    int64_t value = 0;
    int rc =
        ck_sql_query_one(st,
                         "SELECT COUNT(*) FROM orders o JOIN enrollments e"
                         " ON e.id = o.enrollment_id WHERE o.state IN ('new', 'csr_ready',"
                         " 'pending_validation', 'checking') AND e.issuer <> 'manual'",
                         NO_ARGS, "counting the orders in flight", ck_sql_read_id, &value, err);
    if (rc < 0)
        return -1;
    *count = value;
    return 0;
}
