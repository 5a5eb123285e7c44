/* sqlite_ari.c — store.h's ACME Renewal Information part (RFC 9773) on SQLite: one row per
 * production certificate's order, claimed with a lease so that of several daemons sharing the
 * database one asks the CA. */
#include "store/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/sqlite_internal.h"

void ck_ari_status_free(struct ck_ari_status *a)
{
    free(a->cert_id);
    free(a->explanation_url);
    free(a->last_error);
    memset(a, 0, sizeof(*a));
}

int ck_store_ari_claim(struct ck_store *st, int64_t order_id, int64_t now, int64_t lease_until,
                       ck_error *err)
{
    int64_t changes = 0;
    if (ck_sql_exec_args(st,
                         "INSERT INTO ari_status (order_id) VALUES (?1)"
                         " ON CONFLICT (order_id) DO NOTHING",
                         ARGS(A_INT(order_id)), "recording an ARI check", NULL, err) != 0)
        return -1;
    if (ck_sql_exec_args(st,
                         "UPDATE ari_status SET lease_until = ?3"
                         " WHERE order_id = ?1 AND next_check_at <= ?2 AND lease_until <= ?2",
                         ARGS(A_INT(order_id), A_INT(now), A_INT(lease_until)),
                         "claiming an ARI check", &changes, err) != 0)
        return -1;
    return changes == 1 ? 1 : 0;
}

int ck_store_ari_save(struct ck_store *st, const struct ck_ari_status *a, ck_error *err)
{
    /* ?3 has_window: the new window; else kept while offered (a failed check), cleared when not */
    return ck_sql_exec_args(
        st,
        "UPDATE ari_status SET cert_id = ?2, offered = ?4,"
        " window_start = CASE WHEN ?3 = 1 THEN ?5 WHEN ?4 = 0 THEN NULL ELSE window_start END,"
        " window_end = CASE WHEN ?3 = 1 THEN ?6 WHEN ?4 = 0 THEN NULL ELSE window_end END,"
        " explanation_url = CASE WHEN ?3 = 1 OR ?4 = 0 THEN ?7 ELSE explanation_url END,"
        " last_error = ?8, checked_at = ?9, next_check_at = ?10, lease_until = 0"
        " WHERE order_id = ?1",
        ARGS(A_INT(a->order_id), A_TEXT(a->cert_id), A_INT(a->has_window ? 1 : 0),
             A_INT(a->offered ? 1 : 0), A_INT(a->window_start), A_INT(a->window_end),
             A_TEXT(a->explanation_url), A_TEXT(a->last_error), A_INT(a->checked_at),
             A_INT(a->next_check_at)),
        "storing an ARI check", NULL, err);
}

static int read_ari(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_ari_status *a = row;
    bool ok = true;
    a->order_id = sqlite3_column_int64(s, 0);
    a->cert_id = ck_sql_col_text(s, 1, &ok);
    a->offered = sqlite3_column_int64(s, 2) != 0;
    a->has_window = sqlite3_column_type(s, 3) != SQLITE_NULL;
    a->window_start = sqlite3_column_int64(s, 3);
    a->window_end = sqlite3_column_int64(s, 4);
    a->explanation_url = ck_sql_col_text(s, 5, &ok);
    a->last_error = ck_sql_col_text(s, 6, &ok);
    a->checked_at = sqlite3_column_int64(s, 7);
    a->next_check_at = sqlite3_column_int64(s, 8);
    if (!ok) {
        ck_ari_status_free(a);
        return ck_sql_out_of_memory(err);
    }
    return 0;
}

int ck_store_ari_get(struct ck_store *st, int64_t order_id, struct ck_ari_status *out,
                     ck_error *err)
{
    memset(out, 0, sizeof(*out));
    return ck_sql_query_one(st,
                            "SELECT order_id, cert_id, offered, window_start, window_end,"
                            " explanation_url, last_error, checked_at, next_check_at"
                            " FROM ari_status WHERE order_id = ?1",
                            ARGS(A_INT(order_id)), "reading an ARI check", read_ari, out, err);
}
