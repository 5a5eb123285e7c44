/* sqlite_internal.h — what sqlite.c shares with migrations.c and sqlite_issuers.c; nothing
 * outside src/store/ (and its unit tests) includes it. */
#ifndef CK_STORE_SQLITE_INTERNAL_H
#define CK_STORE_SQLITE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "common/error.h"
#include "common/util.h"

/* The order states ck_order_state_is_open() calls open, as an SQL list. The partial unique index
 * and every "is there an open order" query use this one list, so they cannot disagree. */
#define CK_STORE_OPEN_ORDER_STATES                                                                 \
    "('new', 'csr_ready', 'pending_validation', 'checking', 'awaiting_ack', 'issued', 'staged')"

/* The schema scripts in order: script i brings the schema to version i + 1. Scripts are fixed
 * text (no user data) and use only SQL that PostgreSQL also accepts. */
const char *const *ck_store_migrations(size_t *count);

/* ==== statements (sqlite.c) ==== */

/* One connection (store.h): the struct store.h leaves opaque. */
struct ck_store {
    sqlite3 *db;
};

enum arg_kind { ARG_INT, ARG_ID, ARG_TEXT, ARG_BLOB };

/* One bound parameter (?1 is the first). A NULL text or blob, or an ARG_ID of 0, binds SQL NULL. */
struct arg {
    enum arg_kind kind;
    int64_t i;
    const char *text;
    const void *blob;
    size_t len;
};

#define A_INT(v)                                                                                   \
    {                                                                                              \
        .kind = ARG_INT, .i = (v)                                                                  \
    }
#define A_ID(v)                                                                                    \
    {                                                                                              \
        .kind = ARG_ID, .i = (v)                                                                   \
    }
#define A_TEXT(v)                                                                                  \
    {                                                                                              \
        .kind = ARG_TEXT, .text = (v)                                                              \
    }
#define A_BLOB(p, n)                                                                               \
    {                                                                                              \
        .kind = ARG_BLOB, .blob = (p), .len = (n)                                                  \
    }
#define ARGS(...)                                                                                  \
    (const struct arg[]){__VA_ARGS__}, CK_ARRAY_LEN(((const struct arg[]){__VA_ARGS__}))
#define NO_ARGS NULL, 0

/* The status -2 of ck_sql_exec_args: a unique constraint refused the write, which callers turn into
 * their own 409. */
#define CONFLICT (-2)

typedef int (*row_reader)(sqlite3_stmt *s, void *row, ck_error *err);
typedef void (*row_free)(void *row);
typedef int (*tx_body)(struct ck_store *st, void *ctx, ck_error *err);

int ck_sql_out_of_memory(ck_error *err); /* sets a 500 and returns -1 */
/* Runs a statement that returns no rows; *changes (may be NULL) gets the rows it changed.
 * Returns 0, CONFLICT or -1. */
int ck_sql_exec_args(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                     const char *what, int64_t *changes, ck_error *err);
/* Runs a query for at most one row: 1 with *row filled by read, 0 when there is no row, -1. */
int ck_sql_query_one(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                     const char *what, row_reader read, void *row, ck_error *err);
/* Runs a query and reads every row into a new array of elements of `size` bytes. */
int ck_sql_query_all(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                     const char *what, row_reader read, row_free free_row, size_t size, void **out,
                     size_t *n, ck_error *err);
/* Runs a query and hands each row to visit as it is read, without keeping it; visit returns 0
 * to go on, -1 (with err set) to stop, and then the query fails. */
typedef int (*row_visit)(sqlite3_stmt *s, void *arg, ck_error *err);
int ck_sql_query_each(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                      const char *what, row_visit visit, void *arg, ck_error *err);
/* Runs body in one BEGIN IMMEDIATE transaction; any failure rolls everything back. */
int ck_sql_in_transaction(struct ck_store *st, tx_body body, void *ctx, ck_error *err);

/* Column readers: copies (NULL for SQL NULL) that clear *ok when out of memory. */
char *ck_sql_col_text(sqlite3_stmt *s, int col, bool *ok);
uint8_t *ck_sql_col_blob(sqlite3_stmt *s, int col, size_t *len, bool *ok); /* NUL-terminated */
/* A JSON array of strings into out (500 when the column holds anything else). */
int ck_sql_col_json_strv(sqlite3_stmt *s, int col, ck_strv *out, ck_error *err);
/* The list as a compact JSON array; NULL when a string is not UTF-8 or memory ran out. */
char *ck_sql_strv_to_json(const ck_strv *v);
/* Row readers for a single column 0: an int64_t, or a char * copy. */
int ck_sql_read_id(sqlite3_stmt *s, void *row, ck_error *err);
int ck_sql_read_text(sqlite3_stmt *s, void *row, ck_error *err);

/* Adds an event inside the caller's transaction (sqlite.c's own event writer). */
struct ck_event_new;
int ck_sql_event_insert(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *ev,
                        ck_error *err);

#endif
