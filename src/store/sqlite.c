/* sqlite.c — store.h on SQLite: one connection per struct ck_store, WAL so readers never block
 * the writer, BEGIN IMMEDIATE for every write so concurrent writers queue on the busy timeout
 * instead of failing halfway. Every SQL text here is a constant; user data only travels as bound
 * parameters. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/util.h"
#include "store/sqlite_internal.h"

/* SQLite's own message is for the operator's log; the caller gets what failed. */
static int storage_failed(struct ck_store *st, const char *what, ck_error *err)
{
    ck_log(CK_LOG_ERROR, "sqlite: %s: %s", what, sqlite3_errmsg(st->db));
    return ck_error_set(err, 500, "storage_failed", "storage failed while %s; see the daemon log",
                        what);
}

int ck_sql_out_of_memory(ck_error *err)
{
    return ck_error_set(err, 500, "storage_failed", "out of memory while reading the database");
}

static int bad_value(const char *what, const char *value, ck_error *err)
{
    ck_log(CK_LOG_ERROR, "sqlite: the database holds an unknown %s \"%s\"", what,
           value ? value : "(null)");
    return ck_error_set(err, 500, "storage_failed",
                        "the database holds an unknown %s \"%s\"; was it written by a newer "
                        "certkeep?",
                        what, value ? value : "(null)");
}

static int bind_arg(sqlite3_stmt *s, int index, const struct arg *a)
{
    switch (a->kind) {
    case ARG_INT:
        return sqlite3_bind_int64(s, index, a->i);
    case ARG_ID:
        return a->i ? sqlite3_bind_int64(s, index, a->i) : sqlite3_bind_null(s, index);
    case ARG_TEXT:
        return a->text ? sqlite3_bind_text(s, index, a->text, -1, SQLITE_TRANSIENT)
                       : sqlite3_bind_null(s, index);
    case ARG_BLOB:
        return a->blob ? sqlite3_bind_blob64(s, index, a->blob, a->len, SQLITE_TRANSIENT)
                       : sqlite3_bind_null(s, index);
    }
    return SQLITE_MISUSE;
}

static int stmt_prepare(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                        const char *what, sqlite3_stmt **out, ck_error *err)
{
    sqlite3_stmt *s = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        goto cleanup;
    for (size_t i = 0; i < nargs; i++)
        if (bind_arg(s, (int)i + 1, &args[i]) != SQLITE_OK)
            goto cleanup;
    *out = s;
    s = NULL;
    ret = 0;
cleanup:
    if (ret != 0)
        storage_failed(st, what, err);
    sqlite3_finalize(s);
    return ret;
}

/* A failed step: a unique-constraint violation is a conflict the caller names (CONFLICT, with a
 * generic 409 in err); anything else is a storage failure (-1). */
static int step_failed(struct ck_store *st, int rc, const char *what, ck_error *err)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        ck_error_set(err, 409, "conflict", "%s conflicts with existing data", what);
        return CONFLICT;
    }
    return storage_failed(st, what, err);
}

/* Runs a statement that returns no rows; *changes (may be NULL) gets the rows it changed.
 * Returns 0, CONFLICT or -1. */
int ck_sql_exec_args(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                     const char *what, int64_t *changes, ck_error *err)
{
    sqlite3_stmt *s = NULL;
    int ret = -1;
    if (stmt_prepare(st, sql, args, nargs, what, &s, err) != 0)
        goto cleanup;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        ret = step_failed(st, rc, what, err);
        goto cleanup;
    }
    if (changes != NULL)
        *changes = sqlite3_changes64(st->db);
    ret = 0;
cleanup:
    sqlite3_finalize(s);
    return ret;
}

static int exec_sql(struct ck_store *st, const char *sql, const char *what, ck_error *err)
{
    return ck_sql_exec_args(st, sql, NO_ARGS, what, NULL, err);
}

/* Runs a query for at most one row. Returns 1 with *row filled by read, 0 when there is no row,
 * -1 on failure. */
int ck_sql_query_one(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                     const char *what, row_reader read, void *row, ck_error *err)
{
    sqlite3_stmt *s = NULL;
    int ret = -1;
    if (stmt_prepare(st, sql, args, nargs, what, &s, err) != 0)
        goto cleanup;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        ret = read(s, row, err) == 0 ? 1 : -1;
    else if (rc == SQLITE_DONE)
        ret = 0;
    else
        step_failed(st, rc, what, err);
cleanup:
    sqlite3_finalize(s);
    return ret;
}

struct row_array {
    char *items;
    size_t count, cap, size;
};

/* A zeroed slot for one more row, or NULL when out of memory. */
static void *row_array_slot(struct row_array *a)
{
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        char *items = realloc(a->items, cap * a->size);
        if (items == NULL)
            return NULL;
        a->items = items;
        a->cap = cap;
    }
    void *slot = a->items + a->count * a->size;
    memset(slot, 0, a->size);
    return slot;
}

/* Runs a query and reads every row into a new array of elements of `size` bytes. */
int ck_sql_query_all(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                     const char *what, row_reader read, row_free free_row, size_t size, void **out,
                     size_t *n, ck_error *err)
{
    sqlite3_stmt *s = NULL;
    struct row_array rows = {.size = size};
    int ret = -1, rc;
    if (stmt_prepare(st, sql, args, nargs, what, &s, err) != 0)
        goto cleanup;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        void *slot = row_array_slot(&rows);
        if (slot == NULL) {
            ck_sql_out_of_memory(err);
            goto cleanup;
        }
        if (read(s, slot, err) != 0)
            goto cleanup;
        rows.count++;
    }
    if (rc != SQLITE_DONE) {
        step_failed(st, rc, what, err);
        goto cleanup;
    }
    *out = rows.items;
    *n = rows.count;
    rows.items = NULL;
    rows.count = 0;
    ret = 0;
cleanup:
    for (size_t i = 0; i < rows.count; i++)
        free_row(rows.items + i * size);
    free(rows.items);
    sqlite3_finalize(s);
    return ret;
}

int ck_sql_query_each(struct ck_store *st, const char *sql, const struct arg *args, size_t nargs,
                      const char *what, row_visit visit, void *arg, ck_error *err)
{
    sqlite3_stmt *s = NULL;
    int ret = -1, rc;
    if (stmt_prepare(st, sql, args, nargs, what, &s, err) != 0)
        goto cleanup;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (visit(s, arg, err) != 0)
            goto cleanup;
    if (rc != SQLITE_DONE) {
        step_failed(st, rc, what, err);
        goto cleanup;
    }
    ret = 0;
cleanup:
    sqlite3_finalize(s);
    return ret;
}

/* Runs body after `begin`, committing on success and rolling everything back on failure. */
static int run_transaction(struct ck_store *st, const char *begin, tx_body body, void *ctx,
                           ck_error *err)
{
    if (exec_sql(st, begin, "starting a transaction", err) != 0)
        return -1;
    if (body(st, ctx, err) == 0 && exec_sql(st, "COMMIT", "committing a transaction", err) == 0)
        return 0;
    if (!sqlite3_get_autocommit(st->db) &&
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        ck_log(CK_LOG_ERROR, "sqlite: rolling back: %s", sqlite3_errmsg(st->db));
    return -1;
}

/* Runs body in one BEGIN IMMEDIATE transaction: the write lock is taken up front, so a concurrent
 * writer waits (busy timeout) instead of failing halfway, and any failure rolls everything back. */
int ck_sql_in_transaction(struct ck_store *st, tx_body body, void *ctx, ck_error *err)
{
    return run_transaction(st, "BEGIN IMMEDIATE", body, ctx, err);
}

/* Runs body in one deferred transaction, so that all its reads see the same snapshot. */
static int in_read_transaction(struct ck_store *st, tx_body body, void *ctx, ck_error *err)
{
    return run_transaction(st, "BEGIN", body, ctx, err);
}

/* Called inside every transaction that may change what the edge serves: the edge of every
 * process sharing the database sees the new number and rebuilds its table. */
static int edge_bump(struct ck_store *st, ck_error *err)
{
    return exec_sql(st, "UPDATE edge_generation SET generation = generation + 1",
                    "bumping the edge generation", err);
}

/* ==== columns ==== */

/* A copy of a text column, NULL for SQL NULL; clears *ok when out of memory. */
char *ck_sql_col_text(sqlite3_stmt *s, int col, bool *ok)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    const char *text = (const char *)sqlite3_column_text(s, col);
    char *copy = text ? strdup(text) : NULL;
    if (copy == NULL)
        *ok = false;
    return copy;
}

/* A NUL-terminated copy of a blob column (NULL for SQL NULL); clears *ok when out of memory. */
uint8_t *ck_sql_col_blob(sqlite3_stmt *s, int col, size_t *len, bool *ok)
{
    *len = 0;
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    const void *data = sqlite3_column_blob(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    uint8_t *copy = malloc(n + 1);
    if (copy == NULL) {
        *ok = false;
        return NULL;
    }
    if (n > 0)
        memcpy(copy, data, n);
    copy[n] = 0;
    *len = n;
    return copy;
}

static const char *col_str(sqlite3_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(s, col);
}

static int col_role(sqlite3_stmt *s, int col, enum ck_role *out, ck_error *err)
{
    if (col_str(s, col) == NULL || ck_role_parse(col_str(s, col), out, NULL) != 0)
        return bad_value("role", col_str(s, col), err);
    return 0;
}

static int col_key_type(sqlite3_stmt *s, int col, enum ck_key_type *out, ck_error *err)
{
    if (col_str(s, col) == NULL || ck_key_type_parse(col_str(s, col), out, NULL) != 0)
        return bad_value("key type", col_str(s, col), err);
    return 0;
}

static int col_validation(sqlite3_stmt *s, int col, enum ck_validation *out, ck_error *err)
{
    if (col_str(s, col) == NULL || ck_validation_parse(col_str(s, col), out, NULL) != 0)
        return bad_value("validation level", col_str(s, col), err);
    return 0;
}

static int col_order_state(sqlite3_stmt *s, int col, enum ck_order_state *out, ck_error *err)
{
    if (col_str(s, col) == NULL || ck_order_state_parse(col_str(s, col), out, NULL) != 0)
        return bad_value("order state", col_str(s, col), err);
    return 0;
}

static int col_job_type(sqlite3_stmt *s, int col, enum ck_job_type *out, ck_error *err)
{
    if (col_str(s, col) == NULL || ck_job_type_parse(col_str(s, col), out, NULL) != 0)
        return bad_value("job type", col_str(s, col), err);
    return 0;
}

static int col_job_state(sqlite3_stmt *s, int col, enum ck_job_state *out, ck_error *err)
{
    if (col_str(s, col) == NULL || ck_job_state_parse(col_str(s, col), out, NULL) != 0)
        return bad_value("job state", col_str(s, col), err);
    return 0;
}

/* A JSON array of strings (sans, contacts) into out. */
int ck_sql_col_json_strv(sqlite3_stmt *s, int col, ck_strv *out, ck_error *err)
{
    json_error_t jerr;
    json_t *array = col_str(s, col) ? json_loads(col_str(s, col), 0, &jerr) : NULL;
    int ret = -1;
    size_t i;
    json_t *item;
    if (!json_is_array(array)) {
        bad_value("JSON list", col_str(s, col), err);
        goto cleanup;
    }
    json_array_foreach(array, i, item)
    {
        if (!json_is_string(item)) {
            bad_value("JSON list", col_str(s, col), err);
            goto cleanup;
        }
        if (ck_strv_push(out, json_string_value(item)) != 0) {
            ck_sql_out_of_memory(err);
            goto cleanup;
        }
    }
    ret = 0;
cleanup:
    json_decref(array);
    return ret;
}

/* The list as a compact JSON array; NULL when a string is not UTF-8 or memory ran out. */
char *ck_sql_strv_to_json(const ck_strv *v)
{
    json_t *array = json_array();
    char *text = NULL;
    if (array == NULL)
        return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (json_array_append_new(array, json_string(v->items[i])) != 0)
            goto cleanup;
    text = json_dumps(array, JSON_COMPACT);
cleanup:
    json_decref(array);
    return text;
}

static void free_text_row(void *row)
{
    free(*(char **)row);
}

int ck_sql_read_id(sqlite3_stmt *s, void *row, ck_error *err)
{
    (void)err;
    *(int64_t *)row = sqlite3_column_int64(s, 0);
    return 0;
}

int ck_sql_read_text(sqlite3_stmt *s, void *row, ck_error *err)
{
    bool ok = true;
    *(char **)row = ck_sql_col_text(s, 0, &ok);
    return ok ? 0 : ck_sql_out_of_memory(err);
}

/* ==== open, migrations ==== */

/* SQLite would create the file with the process umask (often 0644); the database holds sealed
 * keys and token hashes, so it is created 0600 first. SQLite gives the -wal and -shm files it
 * makes later the database file's mode. */
static int create_private_file(const char *path, ck_error *err)
{
    if (strcmp(path, ":memory:") == 0)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ck_error_set(err, 500, "storage_failed", "cannot create the database %s: %s", path,
                            strerror(errno));
    close(fd);
    return 0;
}

static int configure(struct ck_store *st, const char *path, ck_error *err)
{
    char *mode = NULL;
    int ret = -1;
    /* sqlite3_exec: some of these pragmas answer with a row, which is of no interest. */
    if (sqlite3_exec(st->db,
                     "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; "
                     "PRAGMA synchronous = NORMAL",
                     NULL, NULL, NULL) != SQLITE_OK) {
        storage_failed(st, "configuring the connection", err);
        goto cleanup;
    }
    if (ck_sql_query_one(st, "PRAGMA journal_mode = WAL", NO_ARGS, "enabling the WAL journal",
                         ck_sql_read_text, &mode, err) != 1)
        goto cleanup;
    /* Without WAL, readers would block the writer of another process sharing the file. */
    if (mode == NULL || strcmp(mode, "wal") != 0) {
        ck_error_set(err, 500, "storage_failed",
                     "the database %s cannot use a WAL journal (journal mode %s); put it on a "
                     "local file system",
                     path, mode ? mode : "unknown");
        goto cleanup;
    }
    ret = 0;
cleanup:
    free(mode);
    return ret;
}

struct migration {
    int64_t version;
    const char *sql;
};

static int apply_migration(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct migration *m = ctx;
    char what[64];
    int64_t found;
    snprintf(what, sizeof(what), "applying schema migration %lld", (long long)m->version);
    /* Checked again inside the transaction: another process may have applied it meanwhile. */
    int rc = ck_sql_query_one(st, "SELECT version FROM schema_migrations WHERE version = ?1",
                              ARGS(A_INT(m->version)), what, ck_sql_read_id, &found, err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (ck_sql_exec_args(st, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                         ARGS(A_INT(m->version), A_INT(ck_clock_now())), what, NULL, err) != 0)
        return -1;
    if (sqlite3_exec(st->db, m->sql, NULL, NULL, NULL) != SQLITE_OK)
        return storage_failed(st, what, err);
    ck_log(CK_LOG_INFO, "database schema migrated to version %lld", (long long)m->version);
    return 0;
}

static int migrate(struct ck_store *st, ck_error *err)
{
    size_t count;
    const char *const *scripts = ck_store_migrations(&count);
    int64_t current = 0;
    if (exec_sql(st,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                 "creating the schema_migrations table", err) != 0)
        return -1;
    if (ck_sql_query_one(st, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NO_ARGS,
                         "reading the schema version", ck_sql_read_id, &current, err) != 1)
        return -1;
    if (current > (int64_t)count)
        return ck_error_set(err, 500, "storage_failed",
                            "the database has schema version %lld but this certkeep knows only "
                            "%zu; upgrade certkeep",
                            (long long)current, count);
    for (size_t i = (size_t)current; i < count; i++) {
        struct migration m = {.version = (int64_t)i + 1, .sql = scripts[i]};
        if (ck_sql_in_transaction(st, apply_migration, &m, err) != 0)
            return -1;
    }
    return 0;
}

int ck_store_open(const char *path, struct ck_store **out, ck_error *err)
{
    struct ck_store *st = calloc(1, sizeof(*st));
    int ret = -1;
    if (st == NULL) {
        ck_sql_out_of_memory(err);
        goto cleanup;
    }
    if (create_private_file(path, err) != 0)
        goto cleanup;
    /* NOMUTEX: a connection belongs to one thread (store.h), so SQLite's own locking is waste. */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ck_log(CK_LOG_ERROR, "sqlite: opening %s: %s", path, sqlite3_errmsg(st->db));
        ck_error_set(err, 500, "storage_failed", "cannot open the database %s; see the log", path);
        goto cleanup;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if (configure(st, path, err) != 0 || migrate(st, err) != 0)
        goto cleanup;
    *out = st;
    st = NULL;
    ret = 0;
cleanup:
    ck_store_close(st);
    return ret;
}

void ck_store_close(struct ck_store *st)
{
    if (st == NULL)
        return;
    if (sqlite3_close(st->db) != SQLITE_OK)
        ck_log(CK_LOG_ERROR, "sqlite: closing: %s", sqlite3_errmsg(st->db));
    free(st);
}

int ck_store_schema_version(struct ck_store *st)
{
    int64_t version = 0;
    if (ck_sql_query_one(st, "SELECT COUNT(*) FROM schema_migrations", NO_ARGS,
                         "reading the schema version", ck_sql_read_id, &version, NULL) != 1)
        return -1;
    return (int)version;
}

/* ==== tenants ==== */

#define TENANT_SELECT "SELECT id, name, created_at FROM tenants"

static int read_tenant(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_tenant *t = row;
    bool ok = true;
    t->id = sqlite3_column_int64(s, 0);
    t->name = ck_sql_col_text(s, 1, &ok);
    t->created_at = sqlite3_column_int64(s, 2);
    if (ok)
        return 0;
    ck_tenant_free(t);
    return ck_sql_out_of_memory(err);
}

static void free_tenant_row(void *row)
{
    ck_tenant_free(row);
}

struct tenant_new {
    const char *name;
    struct ck_tenant row;
};

static int tenant_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct tenant_new *t = ctx;
    int rc = ck_sql_exec_args(st, "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)",
                              ARGS(A_TEXT(t->name), A_INT(ck_clock_now())), "creating a tenant",
                              NULL, err);
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "tenant_exists", "tenant %s already exists", t->name);
    if (rc != 0)
        return -1;
    return ck_sql_query_one(st, TENANT_SELECT " WHERE id = ?1",
                            ARGS(A_INT(sqlite3_last_insert_rowid(st->db))),
                            "reading the new tenant", read_tenant, &t->row, err) == 1
               ? 0
               : -1;
}

int ck_store_tenant_create(struct ck_store *st, const char *name, struct ck_tenant *out,
                           ck_error *err)
{
    struct tenant_new t = {.name = name};
    if (ck_sql_in_transaction(st, tenant_insert, &t, err) != 0) {
        ck_tenant_free(&t.row);
        return -1;
    }
    *out = t.row;
    return 0;
}

int ck_store_tenant_get(struct ck_store *st, const char *name, struct ck_tenant *out, ck_error *err)
{
    int rc = ck_sql_query_one(st, TENANT_SELECT " WHERE name = ?1", ARGS(A_TEXT(name)),
                              "reading a tenant", read_tenant, out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no tenant named %s", name);
    return rc == 1 ? 0 : -1;
}

int ck_store_tenant_list(struct ck_store *st, struct ck_tenant **out, size_t *n, ck_error *err)
{
    return ck_sql_query_all(st, TENANT_SELECT " ORDER BY name", NO_ARGS, "listing tenants",
                            read_tenant, free_tenant_row, sizeof(**out), (void **)out, n, err);
}

void ck_tenant_array_free(struct ck_tenant *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_tenant_free(&a[i]);
    free(a);
}

/* ==== tokens ==== */

#define TOKEN_SELECT                                                                               \
    "SELECT k.id, k.tenant_id, t.name, k.name, k.role, k.created_at FROM tokens k "                \
    "JOIN tenants t ON t.id = k.tenant_id"

static int read_token(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_token *t = row;
    bool ok = true;
    t->id = sqlite3_column_int64(s, 0);
    t->tenant_id = sqlite3_column_int64(s, 1);
    t->tenant_name = ck_sql_col_text(s, 2, &ok);
    t->name = ck_sql_col_text(s, 3, &ok);
    t->created_at = sqlite3_column_int64(s, 5);
    if (!ok || col_role(s, 4, &t->role, err) != 0) {
        ck_token_free(t);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

static void free_token_row(void *row)
{
    ck_token_free(row);
}

struct token_new {
    int64_t tenant_id;
    enum ck_role role;
    const char *name;
    const uint8_t *hash;
    struct ck_token row;
};

static int token_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct token_new *t = ctx;
    int64_t found;
    int rc = ck_sql_query_one(st, "SELECT id FROM tenants WHERE id = ?1", ARGS(A_INT(t->tenant_id)),
                              "creating a token", ck_sql_read_id, &found, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no tenant %lld", (long long)t->tenant_id);
    if (rc < 0)
        return -1;
    rc = ck_sql_exec_args(st,
                          "INSERT INTO tokens (tenant_id, hash, role, name, created_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
                          ARGS(A_INT(t->tenant_id), A_BLOB(t->hash, 32),
                               A_TEXT(ck_role_name(t->role)), A_TEXT(t->name),
                               A_INT(ck_clock_now())),
                          "creating a token", NULL, err);
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "token_exists", "a token with that secret already exists");
    if (rc != 0)
        return -1;
    return ck_sql_query_one(st, TOKEN_SELECT " WHERE k.id = ?1",
                            ARGS(A_INT(sqlite3_last_insert_rowid(st->db))), "reading the new token",
                            read_token, &t->row, err) == 1
               ? 0
               : -1;
}

int ck_store_token_create(struct ck_store *st, int64_t tenant_id, enum ck_role role,
                          const char *name, const uint8_t hash[32], struct ck_token *out,
                          ck_error *err)
{
    struct token_new t = {.tenant_id = tenant_id, .role = role, .name = name, .hash = hash};
    if (ck_sql_in_transaction(st, token_insert, &t, err) != 0) {
        ck_token_free(&t.row);
        return -1;
    }
    *out = t.row;
    return 0;
}

int ck_store_token_lookup(struct ck_store *st, const uint8_t hash[32], struct ck_token *out,
                          ck_error *err)
{
    int rc = ck_sql_query_one(st, TOKEN_SELECT " WHERE k.hash = ?1", ARGS(A_BLOB(hash, 32)),
                              "looking up a token", read_token, out, err);
    if (rc == 0)
        return ck_error_set(err, 401, "invalid_token", "the token is unknown or was deleted");
    return rc == 1 ? 0 : -1;
}

int ck_store_token_list(struct ck_store *st, int64_t tenant_id, struct ck_token **out, size_t *n,
                        ck_error *err)
{
    return ck_sql_query_all(st, TOKEN_SELECT " WHERE k.tenant_id = ?1 ORDER BY k.id",
                            ARGS(A_INT(tenant_id)), "listing tokens", read_token, free_token_row,
                            sizeof(**out), (void **)out, n, err);
}

struct token_ref {
    int64_t tenant_id, token_id;
};

static int token_remove(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct token_ref *r = ctx;
    int64_t changes = 0;
    if (ck_sql_exec_args(st, "DELETE FROM tokens WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(r->token_id), A_INT(r->tenant_id)), "deleting a token",
                         &changes, err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no token %lld", (long long)r->token_id);
    return 0;
}

int ck_store_token_delete(struct ck_store *st, int64_t tenant_id, int64_t token_id, ck_error *err)
{
    struct token_ref r = {.tenant_id = tenant_id, .token_id = token_id};
    return ck_sql_in_transaction(st, token_remove, &r, err);
}

void ck_token_array_free(struct ck_token *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_token_free(&a[i]);
    free(a);
}

/* ==== enrollments ==== */

#define ENROLLMENT_SELECT                                                                          \
    "SELECT id, tenant_id, name, cn, sans, subject_o, subject_ou, subject_l, subject_st, "         \
    "subject_c, key_type, validation, issuer, contacts, lifetime, renew_before, deploy_before, "   \
    "always_test_on_staging, staging_order_id, production_order_id, created_at, updated_at, "      \
    "challenge, dns, watch FROM enrollments"

static int read_enrollment(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_enrollment *e = row;
    bool ok = true;
    int ret = -1;
    e->id = sqlite3_column_int64(s, 0);
    e->tenant_id = sqlite3_column_int64(s, 1);
    e->name = ck_sql_col_text(s, 2, &ok);
    e->cn = ck_sql_col_text(s, 3, &ok);
    e->subject.o = ck_sql_col_text(s, 5, &ok);
    e->subject.ou = ck_sql_col_text(s, 6, &ok);
    e->subject.l = ck_sql_col_text(s, 7, &ok);
    e->subject.st = ck_sql_col_text(s, 8, &ok);
    e->subject.c = ck_sql_col_text(s, 9, &ok);
    e->issuer = ck_sql_col_text(s, 12, &ok);
    e->policy.lifetime = ck_sql_col_text(s, 14, &ok);
    e->policy.renew_before = ck_sql_col_text(s, 15, &ok);
    e->policy.deploy_before = ck_sql_col_text(s, 16, &ok);
    e->policy.always_test_on_staging = sqlite3_column_int64(s, 17) != 0;
    e->staging_order_id = sqlite3_column_int64(s, 18);
    e->production_order_id = sqlite3_column_int64(s, 19);
    e->created_at = sqlite3_column_int64(s, 20);
    e->updated_at = sqlite3_column_int64(s, 21);
    e->challenge = ck_sql_col_text(s, 22, &ok);
    e->dns = ck_sql_col_text(s, 23, &ok);
    if (!ok) {
        ck_sql_out_of_memory(err);
        goto cleanup;
    }
    if (ck_sql_col_json_strv(s, 4, &e->sans, err) != 0 ||
        col_key_type(s, 10, &e->key_type, err) != 0 ||
        col_validation(s, 11, &e->validation, err) != 0 ||
        ck_sql_col_json_strv(s, 13, &e->contacts, err) != 0 ||
        ck_sql_col_json_strv(s, 24, &e->watch, err) != 0)
        goto cleanup;
    ret = 0;
cleanup:
    if (ret != 0)
        ck_enrollment_free(e);
    return ret;
}

static void free_enrollment_row(void *row)
{
    ck_enrollment_free(row);
}

/* An enrollment on its way in, with its lists encoded as JSON. */
struct enrollment_write {
    struct ck_enrollment *e;
    char *sans, *contacts, *watch;
    int64_t now, id;
};

#define USER_FIELD_COUNT 18

/* The fields a user can change, as ?1..?18 of both the INSERT and the UPDATE below. */
static void user_field_args(const struct enrollment_write *w, struct arg a[USER_FIELD_COUNT])
{
    const struct ck_enrollment *e = w->e;
    const struct arg fields[USER_FIELD_COUNT] = {
        A_TEXT(e->cn),
        A_TEXT(w->sans),
        A_TEXT(e->subject.o),
        A_TEXT(e->subject.ou),
        A_TEXT(e->subject.l),
        A_TEXT(e->subject.st),
        A_TEXT(e->subject.c),
        A_TEXT(ck_key_type_name(e->key_type)),
        A_TEXT(ck_validation_name(e->validation)),
        A_TEXT(e->issuer),
        A_TEXT(w->contacts),
        A_TEXT(e->policy.lifetime),
        A_TEXT(e->policy.renew_before),
        A_TEXT(e->policy.deploy_before),
        A_INT(e->policy.always_test_on_staging ? 1 : 0),
        A_INT(w->now),
        A_TEXT(e->challenge),
        A_TEXT(e->dns),
    };
    memcpy(a, fields, sizeof(fields));
}

static int encode_lists(struct enrollment_write *w, ck_error *err)
{
    w->sans = ck_sql_strv_to_json(&w->e->sans);
    w->contacts = ck_sql_strv_to_json(&w->e->contacts);
    w->watch = ck_sql_strv_to_json(&w->e->watch);
    if (w->sans == NULL || w->contacts == NULL || w->watch == NULL)
        return ck_error_set(err, 400, "invalid_field",
                            "the SANs and contacts of enrollment %s must be UTF-8 text",
                            w->e->name ? w->e->name : "(unnamed)");
    return 0;
}

/* The watch list (migration 6), and the statuses of endpoints no longer on it go. */
static int enrollment_watch_write(struct ck_store *st, int64_t id, const char *watch, ck_error *err)
{
    if (ck_sql_exec_args(st, "UPDATE enrollments SET watch = ?1 WHERE id = ?2",
                         ARGS(A_TEXT(watch), A_INT(id)), "saving the endpoints to watch", NULL,
                         err) != 0)
        return -1;
    return ck_sql_exec_args(st,
                            "DELETE FROM watch_status WHERE enrollment_id = ?1 AND endpoint NOT "
                            "LIKE 'production/%' AND endpoint NOT IN (SELECT value FROM "
                            "json_each(?2))",
                            ARGS(A_INT(id), A_TEXT(watch)), "saving the endpoints to watch", NULL,
                            err);
}

static int enrollment_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct enrollment_write *w = ctx;
    struct arg args[USER_FIELD_COUNT + 5];
    user_field_args(w, args);
    args[USER_FIELD_COUNT] = (struct arg)A_INT(w->e->tenant_id);
    args[USER_FIELD_COUNT + 1] = (struct arg)A_TEXT(w->e->name);
    args[USER_FIELD_COUNT + 2] = (struct arg)A_ID(w->e->staging_order_id);
    args[USER_FIELD_COUNT + 3] = (struct arg)A_ID(w->e->production_order_id);
    args[USER_FIELD_COUNT + 4] = (struct arg)A_INT(w->now);
    int rc = ck_sql_exec_args(
        st,
        "INSERT INTO enrollments (cn, sans, subject_o, subject_ou, subject_l, "
        "subject_st, subject_c, key_type, validation, issuer, contacts, lifetime, "
        "renew_before, deploy_before, always_test_on_staging, updated_at, challenge, dns, "
        "tenant_id, name, staging_order_id, production_order_id, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
        "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
        args, CK_ARRAY_LEN(args), "creating an enrollment", NULL, err);
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "enrollment_exists", "enrollment %s already exists",
                            w->e->name);
    if (rc != 0)
        return -1;
    w->id = sqlite3_last_insert_rowid(st->db);
    return enrollment_watch_write(st, w->id, w->watch, err);
}

static int enrollment_change(struct ck_store *st, void *ctx, ck_error *err)
{
    struct enrollment_write *w = ctx;
    struct arg args[USER_FIELD_COUNT + 2];
    int64_t changes = 0;
    user_field_args(w, args);
    args[USER_FIELD_COUNT] = (struct arg)A_INT(w->e->id);
    args[USER_FIELD_COUNT + 1] = (struct arg)A_INT(w->e->tenant_id);
    if (ck_sql_exec_args(
            st,
            "UPDATE enrollments SET cn = ?1, sans = ?2, subject_o = ?3, subject_ou = ?4, "
            "subject_l = ?5, subject_st = ?6, subject_c = ?7, key_type = ?8, "
            "validation = ?9, issuer = ?10, contacts = ?11, lifetime = ?12, "
            "renew_before = ?13, deploy_before = ?14, always_test_on_staging = ?15, "
            "updated_at = ?16, challenge = ?17, dns = ?18 WHERE id = ?19 AND tenant_id = ?20",
            args, CK_ARRAY_LEN(args), "updating an enrollment", &changes, err) != 0)
        return -1;
    if (changes == 0 && w->e->name != NULL)
        return ck_error_set(err, 404, "not_found", "no enrollment named %s", w->e->name);
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no enrollment %lld", (long long)w->e->id);
    return enrollment_watch_write(st, w->e->id, w->watch, err);
}

/* Encodes w->e's lists and runs body (insert or update) in a transaction. */
static int enrollment_write(struct ck_store *st, struct enrollment_write *w, tx_body body,
                            ck_error *err)
{
    int ret = -1;
    if (encode_lists(w, err) != 0 || ck_sql_in_transaction(st, body, w, err) != 0)
        goto cleanup;
    ret = 0;
cleanup:
    free(w->sans);
    free(w->contacts);
    free(w->watch);
    return ret;
}

int ck_store_enrollment_create(struct ck_store *st, struct ck_enrollment *e, ck_error *err)
{
    struct enrollment_write w = {.e = e, .now = ck_clock_now()};
    if (enrollment_write(st, &w, enrollment_insert, err) != 0)
        return -1;
    e->id = w.id;
    e->created_at = e->updated_at = w.now;
    return 0;
}

int ck_store_enrollment_update(struct ck_store *st, struct ck_enrollment *e, ck_error *err)
{
    struct enrollment_write w = {.e = e, .now = ck_clock_now()};
    if (enrollment_write(st, &w, enrollment_change, err) != 0)
        return -1;
    e->updated_at = w.now;
    return 0;
}

int ck_store_enrollment_get(struct ck_store *st, int64_t tenant_id, const char *name,
                            struct ck_enrollment *out, ck_error *err)
{
    int rc = ck_sql_query_one(st, ENROLLMENT_SELECT " WHERE tenant_id = ?1 AND name = ?2",
                              ARGS(A_INT(tenant_id), A_TEXT(name)), "reading an enrollment",
                              read_enrollment, out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no enrollment named %s", name);
    return rc == 1 ? 0 : -1;
}

/* The SQL LIMIT for a page: one row more than asked, to learn whether more follow; -1 (no
 * limit) for every row. The page's bound is always a plain comparison (no "? IS NULL OR"), so
 * that SQLite seeks to it in the index instead of walking there from the list's start. */
static int64_t page_sql_limit(const struct ck_page *page)
{
    return page->limit == 0 ? -1 : (int64_t)page->limit + 1;
}

/* The id every row of the page is below. */
static int64_t page_before_id(const struct ck_page *page)
{
    return page->before_id > 0 ? page->before_id : INT64_MAX;
}

/* Drops the extra row page_sql_limit asked for, if it came, and sets page->more. */
static void page_trim(struct ck_page *page, void *rows, size_t size, size_t *n, row_free free_row)
{
    page->more = page->limit > 0 && *n > page->limit;
    if (page->more) {
        free_row((char *)rows + (*n - 1) * size);
        *n = page->limit;
    }
}

int ck_store_enrollment_list_page(struct ck_store *st, int64_t tenant_id, struct ck_page *page,
                                  struct ck_enrollment **out, size_t *n, ck_error *err)
{
    if (ck_sql_query_all(
            st, ENROLLMENT_SELECT " WHERE tenant_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
            ARGS(A_INT(tenant_id), A_TEXT(page->after_name ? page->after_name : ""),
                 A_INT(page_sql_limit(page))),
            "listing enrollments", read_enrollment, free_enrollment_row, sizeof(**out),
            (void **)out, n, err) != 0)
        return -1;
    page_trim(page, *out, sizeof(**out), n, free_enrollment_row);
    return 0;
}

int ck_store_enrollment_list(struct ck_store *st, int64_t tenant_id, struct ck_enrollment **out,
                             size_t *n, ck_error *err)
{
    struct ck_page all = {0};
    return ck_store_enrollment_list_page(st, tenant_id, &all, out, n, err);
}

void ck_enrollment_array_free(struct ck_enrollment *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_enrollment_free(&a[i]);
    free(a);
}

/* An order reduced to what state checks need. */
struct order_brief {
    int64_t id;
    enum ck_order_state state;
    int64_t tenant_id;
};

static int read_order_brief(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct order_brief *o = row;
    o->id = sqlite3_column_int64(s, 0);
    o->tenant_id = sqlite3_column_int64(s, 2);
    return col_order_state(s, 1, &o->state, err);
}

/* 409 "order_open" when the enrollment has an open order, naming it and what to do. */
static int refuse_open_order(struct ck_store *st, int64_t enrollment_id, const char *name,
                             const char *advice, ck_error *err)
{
    struct order_brief open;
    int rc = ck_sql_query_one(st,
                              "SELECT id, state, tenant_id FROM orders WHERE enrollment_id = ?1 "
                              "AND state IN " CK_STORE_OPEN_ORDER_STATES,
                              ARGS(A_INT(enrollment_id)), "looking for an open order",
                              read_order_brief, &open, err);
    if (rc == 1)
        return ck_error_set(err, 409, "order_open",
                            "enrollment %s already has open order %lld (%s); %s", name,
                            (long long)open.id, ck_order_state_name(open.state), advice);
    return rc;
}

struct enrollment_ref {
    int64_t tenant_id;
    const char *name;
};

static int enrollment_remove(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct enrollment_ref *r = ctx;
    int64_t id;
    int rc = ck_sql_query_one(st, "SELECT id FROM enrollments WHERE tenant_id = ?1 AND name = ?2",
                              ARGS(A_INT(r->tenant_id), A_TEXT(r->name)), "deleting an enrollment",
                              ck_sql_read_id, &id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no enrollment named %s", r->name);
    if (rc < 0 ||
        refuse_open_order(st, id, r->name, "cancel it before deleting the enrollment", err) != 0)
        return -1;
    /* Orders, jobs, logs, artifacts and targets go with it (ON DELETE CASCADE); its deployed
     * order leaves the edge with it. */
    if (ck_sql_exec_args(st, "DELETE FROM enrollments WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(id), A_INT(r->tenant_id)), "deleting an enrollment", NULL,
                         err) != 0)
        return -1;
    return edge_bump(st, err);
}

int ck_store_enrollment_delete(struct ck_store *st, int64_t tenant_id, const char *name,
                               ck_error *err)
{
    struct enrollment_ref r = {.tenant_id = tenant_id, .name = name};
    return ck_sql_in_transaction(st, enrollment_remove, &r, err);
}

/* ==== job rows written by orders and imports ==== */

struct job_row {
    int64_t tenant_id, enrollment_id, order_id;
    enum ck_job_type type;
    enum ck_job_state state;
    const char *error;
    const char *params_json;
};

/* Inserts a job; one inserted already over (finished or failed) started and ended now. */
static int job_insert(struct ck_store *st, const struct job_row *j, int64_t *job_id, ck_error *err)
{
    int64_t now = ck_clock_now();
    bool over = j->state == CK_JOB_FINISHED || j->state == CK_JOB_FAILED;
    char what[48];
    snprintf(what, sizeof(what), "recording the order's %s job", ck_job_type_name(j->type));
    if (ck_sql_exec_args(
            st,
            "INSERT INTO jobs (tenant_id, enrollment_id, order_id, type, state, created_at, "
            "started_at, finished_at, error, params_json) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
            ARGS(A_INT(j->tenant_id), A_ID(j->enrollment_id), A_ID(j->order_id),
                 A_TEXT(ck_job_type_name(j->type)), A_TEXT(ck_job_state_name(j->state)), A_INT(now),
                 A_ID(over ? now : 0), A_TEXT(j->error), A_TEXT(j->params_json)),
            what, NULL, err) != 0)
        return -1;
    *job_id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

static int log_insert(struct ck_store *st, int64_t job_id, const char *level, const char *message,
                      ck_error *err)
{
    return ck_sql_exec_args(
        st, "INSERT INTO job_logs (job_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
        ARGS(A_INT(job_id), A_INT(ck_clock_now()), A_TEXT(level), A_TEXT(message)),
        "appending to a job's log", NULL, err);
}

static int csr_artifact_insert(struct ck_store *st, int64_t job_id, const char *csr_pem,
                               ck_error *err)
{
    return ck_sql_exec_args(
        st,
        "INSERT INTO job_artifacts (job_id, name, content_type, data, created_at) "
        "VALUES (?1, 'csr', 'application/pkcs10', ?2, ?3)",
        ARGS(A_INT(job_id), A_BLOB(csr_pem, strlen(csr_pem)), A_INT(ck_clock_now())),
        "saving the CSR artifact", NULL, err);
}

static int job_params_check(const char *params, ck_error *err);

/* Queues the jobs that follow a change of the order, inside the caller's transaction. */
static int order_jobs_queue(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                            const struct ck_job_new *jobs, size_t n_jobs, ck_error *err)
{
    struct job_row job = {.tenant_id = tenant_id, .order_id = order_id, .state = CK_JOB_QUEUED};
    int64_t job_id;
    if (n_jobs == 0)
        return 0;
    int rc =
        ck_sql_query_one(st, "SELECT enrollment_id FROM orders WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(order_id), A_INT(tenant_id)), "queueing the order's jobs",
                         ck_sql_read_id, &job.enrollment_id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)order_id);
    for (size_t i = 0; rc > 0 && i < n_jobs; i++) {
        if ((int)jobs[i].type < 0 || jobs[i].type >= CK_JOB_TYPE_COUNT)
            return ck_error_set(err, 400, "invalid_field", "unknown job type %d",
                                (int)jobs[i].type);
        job.type = jobs[i].type;
        job.params_json = jobs[i].params_json;
        if (job_params_check(job.params_json, err) != 0 || job_insert(st, &job, &job_id, err) != 0)
            return -1;
    }
    return rc > 0 ? 0 : -1;
}

/* ==== events ==== */

#define EVENT_COLUMNS                                                                              \
    "SELECT v.id, v.tenant_id, v.type, v.enrollment_id, e.name, v.order_id, v.message, "           \
    "v.data_json, v.created_at, v.confirmed_at"
#define EVENT_FROM " FROM events v LEFT JOIN enrollments e ON e.id = v.enrollment_id"

static int read_event(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_event *v = row;
    bool ok = true;
    v->id = sqlite3_column_int64(s, 0);
    v->tenant_id = sqlite3_column_int64(s, 1);
    v->type = ck_sql_col_text(s, 2, &ok);
    v->enrollment_id = sqlite3_column_int64(s, 3);
    v->enrollment_name = ck_sql_col_text(s, 4, &ok);
    v->order_id = sqlite3_column_int64(s, 5);
    v->message = ck_sql_col_text(s, 6, &ok);
    v->data_json = ck_sql_col_text(s, 7, &ok);
    v->created_at = sqlite3_column_int64(s, 8);
    v->confirmed_at = sqlite3_column_int64(s, 9);
    if (ok)
        return 0;
    ck_event_free(v);
    return ck_sql_out_of_memory(err);
}

static void free_event_row(void *row)
{
    ck_event_free(row);
}

/* The order and enrollment an event names must be the tenant's (404 otherwise, as if other
 * tenants' rows did not exist). An event about an order is also about its enrollment, so that is
 * filled in when missing. */
static int event_refs_resolve(struct ck_store *st, int64_t tenant_id, struct ck_event_new *ev,
                              ck_error *err)
{
    int64_t enrollment_id;
    int rc;
    if (ev->order_id != 0) {
        rc = ck_sql_query_one(st,
                              "SELECT enrollment_id FROM orders WHERE id = ?1 AND tenant_id = ?2",
                              ARGS(A_INT(ev->order_id), A_INT(tenant_id)), "adding an event",
                              ck_sql_read_id, &enrollment_id, err);
        if (rc == 0)
            return ck_error_set(err, 404, "not_found", "no order %lld", (long long)ev->order_id);
        if (rc < 0)
            return -1;
        if (ev->enrollment_id != 0 && ev->enrollment_id != enrollment_id)
            return ck_error_set(err, 400, "invalid_field",
                                "event names order %lld, which is not of enrollment %lld",
                                (long long)ev->order_id, (long long)ev->enrollment_id);
        ev->enrollment_id = enrollment_id;
        return 0;
    }
    if (ev->enrollment_id == 0)
        return 0;
    rc = ck_sql_query_one(st, "SELECT id FROM enrollments WHERE id = ?1 AND tenant_id = ?2",
                          ARGS(A_INT(ev->enrollment_id), A_INT(tenant_id)), "adding an event",
                          ck_sql_read_id, &enrollment_id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no enrollment %lld",
                            (long long)ev->enrollment_id);
    return rc < 0 ? -1 : 0;
}

static int event_insert(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *given,
                        int64_t *event_id, ck_error *err)
{
    struct ck_event_new ev = *given;
    if (ev.type == NULL || ev.message == NULL)
        return ck_error_set(err, 400, "invalid_field", "an event needs a type and a message");
    if (event_refs_resolve(st, tenant_id, &ev, err) != 0)
        return -1;
    /* data_json is stored as given: the caller built it with jansson. */
    if (ck_sql_exec_args(st,
                         "INSERT INTO events (tenant_id, type, enrollment_id, order_id, message, "
                         "data_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                         ARGS(A_INT(tenant_id), A_TEXT(ev.type), A_ID(ev.enrollment_id),
                              A_ID(ev.order_id), A_TEXT(ev.message), A_TEXT(ev.data_json),
                              A_INT(ck_clock_now())),
                         "adding an event", NULL, err) != 0)
        return -1;
    if (event_id != NULL)
        *event_id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ck_sql_event_insert(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *ev,
                        ck_error *err)
{
    return event_insert(st, tenant_id, ev, NULL, err);
}

/* The event (may be NULL) of a change to an order; it is about that order unless it names one. */
static int order_event(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                       const struct ck_event_new *event, ck_error *err)
{
    if (event == NULL)
        return 0;
    struct ck_event_new ev = *event;
    if (ev.order_id == 0)
        ev.order_id = order_id;
    return event_insert(st, tenant_id, &ev, NULL, err);
}

struct event_write {
    int64_t tenant_id;
    const struct ck_event_new *ev;
    int64_t id;
};

static int event_add_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct event_write *w = ctx;
    return event_insert(st, w->tenant_id, w->ev, &w->id, err);
}

int ck_store_event_add(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *ev,
                       int64_t *event_id, ck_error *err)
{
    struct event_write w = {.tenant_id = tenant_id, .ev = ev};
    if (ev == NULL)
        return ck_error_set(err, 400, "invalid_field", "an event needs a type and a message");
    if (ck_sql_in_transaction(st, event_add_body, &w, err) != 0)
        return -1;
    if (event_id != NULL)
        *event_id = w.id;
    return 0;
}

struct event_poll {
    struct ck_event event;
    int64_t remaining;
};

struct event_once {
    int64_t tenant_id;
    const struct ck_event_new *ev;
    bool added;
};

static int event_once_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct event_once *o = ctx;
    int64_t id;
    int rc = ck_sql_query_one(st, "SELECT id FROM events WHERE order_id = ?1 AND type = ?2 LIMIT 1",
                              ARGS(A_INT(o->ev->order_id), A_TEXT(o->ev->type)),
                              "looking for an event", ck_sql_read_id, &id, err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    o->added = true;
    return event_insert(st, o->tenant_id, o->ev, NULL, err);
}

int ck_store_event_add_once(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *ev,
                            bool *added, ck_error *err)
{
    struct event_once o = {.tenant_id = tenant_id, .ev = ev};
    if (ev == NULL || ev->order_id == 0 || ev->type == NULL)
        return ck_error_set(err, 400, "invalid_field",
                            "an event raised once per order needs its order and type");
    if (ck_sql_in_transaction(st, event_once_body, &o, err) != 0)
        return -1;
    if (added != NULL)
        *added = o.added;
    return 0;
}

static int read_event_poll(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct event_poll *p = row;
    if (read_event(s, &p->event, err) != 0)
        return -1;
    p->remaining = sqlite3_column_int64(s, 10);
    return 0;
}

int ck_store_event_poll(struct ck_store *st, int64_t tenant_id, struct ck_event *out,
                        int64_t *remaining, ck_error *err)
{
    struct event_poll p = {0};
    /* One statement, so the count and the event come from the same snapshot. */
    int rc = ck_sql_query_one(st,
                              EVENT_COLUMNS ", (SELECT COUNT(*) FROM events WHERE tenant_id = ?1 "
                                            "AND confirmed_at IS NULL) - 1" EVENT_FROM
                                            " WHERE v.tenant_id = ?1 AND v.confirmed_at IS NULL "
                                            "ORDER BY v.id LIMIT 1",
                              ARGS(A_INT(tenant_id)), "polling events", read_event_poll, &p, err);
    if (rc == 1) {
        *out = p.event;
        *remaining = p.remaining;
    }
    return rc;
}

struct event_ref {
    int64_t tenant_id, event_id;
};

static int event_confirm_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct event_ref *r = ctx;
    int64_t changes = 0;
    /* A second confirmation keeps the time of the first. */
    if (ck_sql_exec_args(st,
                         "UPDATE events SET confirmed_at = COALESCE(confirmed_at, ?3) "
                         "WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(r->event_id), A_INT(r->tenant_id), A_INT(ck_clock_now())),
                         "confirming an event", &changes, err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no event %lld", (long long)r->event_id);
    return 0;
}

int ck_store_event_confirm(struct ck_store *st, int64_t tenant_id, int64_t event_id, ck_error *err)
{
    struct event_ref r = {.tenant_id = tenant_id, .event_id = event_id};
    return ck_sql_in_transaction(st, event_confirm_body, &r, err);
}

int ck_store_event_list(struct ck_store *st, int64_t tenant_id, int64_t order_id, size_t limit,
                        struct ck_event **out, size_t *n, ck_error *err)
{
    int64_t max = limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
    return ck_sql_query_all(st,
                            EVENT_COLUMNS EVENT_FROM " WHERE v.tenant_id = ?1 AND (?2 = 0 OR "
                                                     "v.order_id = ?2) ORDER BY v.id DESC LIMIT ?3",
                            ARGS(A_INT(tenant_id), A_INT(order_id), A_INT(max)), "listing events",
                            read_event, free_event_row, sizeof(**out), (void **)out, n, err);
}

void ck_event_array_free(struct ck_event *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_event_free(&a[i]);
    free(a);
}

/* ==== orders ==== */

#define ORDER_SELECT                                                                               \
    "SELECT o.id, o.tenant_id, o.enrollment_id, e.name, o.state, o.key_type, o.sealed_key, "       \
    "o.csr_pem, o.error, o.created_at, o.updated_at, o.csr_uploaded, o.cert_pem, o.chain_pem, "    \
    "o.findings_json, o.cert_not_after, o.staging_acked_at, o.deploy_not_before, o.staged_at, "    \
    "o.deployed_at, o.acme_state_json FROM orders o "                                              \
    "JOIN enrollments e ON e.id = o.enrollment_id"

static int read_order(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_order *o = row;
    bool ok = true;
    o->id = sqlite3_column_int64(s, 0);
    o->tenant_id = sqlite3_column_int64(s, 1);
    o->enrollment_id = sqlite3_column_int64(s, 2);
    o->enrollment_name = ck_sql_col_text(s, 3, &ok);
    o->sealed_key = ck_sql_col_blob(s, 6, &o->sealed_key_len, &ok);
    o->csr_pem = ck_sql_col_text(s, 7, &ok);
    o->error = ck_sql_col_text(s, 8, &ok);
    o->created_at = sqlite3_column_int64(s, 9);
    o->updated_at = sqlite3_column_int64(s, 10);
    o->csr_uploaded = sqlite3_column_int64(s, 11) != 0;
    o->cert_pem = ck_sql_col_text(s, 12, &ok);
    o->chain_pem = ck_sql_col_text(s, 13, &ok);
    o->findings_json = ck_sql_col_text(s, 14, &ok);
    o->cert_not_after = sqlite3_column_int64(s, 15);
    o->staging_acked_at = sqlite3_column_int64(s, 16);
    o->deploy_not_before = sqlite3_column_int64(s, 17);
    o->staged_at = sqlite3_column_int64(s, 18);
    o->deployed_at = sqlite3_column_int64(s, 19);
    o->acme_state_json = ck_sql_col_text(s, 20, &ok);
    if (!ok || col_order_state(s, 4, &o->state, err) != 0 ||
        col_key_type(s, 5, &o->key_type, err) != 0) {
        ck_order_free(o);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

static void free_order_row(void *row)
{
    ck_order_free(row);
}

/* The order's id and state: of that tenant, or of any tenant when tenant_id is 0 (the job
 * runner's entry points, which no request reaches). Returns 0, or -1 with 404. */
static int order_brief_get(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                           struct order_brief *out, ck_error *err)
{
    int rc = tenant_id != 0
                 ? ck_sql_query_one(st,
                                    "SELECT id, state, tenant_id FROM orders WHERE id = ?1 "
                                    "AND tenant_id = ?2",
                                    ARGS(A_INT(order_id), A_INT(tenant_id)), "reading an order",
                                    read_order_brief, out, err)
                 : ck_sql_query_one(st, "SELECT id, state, tenant_id FROM orders WHERE id = ?1",
                                    ARGS(A_INT(order_id)), "reading an order", read_order_brief,
                                    out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)order_id);
    return rc == 1 ? 0 : -1;
}

struct enrollment_brief {
    char *name, *key_type;
};

static int read_enrollment_brief(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct enrollment_brief *e = row;
    bool ok = true;
    e->name = ck_sql_col_text(s, 0, &ok);
    e->key_type = ck_sql_col_text(s, 1, &ok);
    return ok ? 0 : ck_sql_out_of_memory(err);
}

struct order_new {
    int64_t tenant_id, enrollment_id, order_id, job_id;
    const char *csr_pem;       /* an uploaded CSR, or NULL: the csr job makes key and CSR */
    enum ck_key_type key_type; /* the uploaded CSR's; otherwise the enrollment's is taken */
    const struct ck_event_new *event;
};

static int order_row_insert(struct ck_store *st, struct order_new *o, const char *name,
                            const char *key_type, ck_error *err)
{
    bool uploaded = o->csr_pem != NULL;
    enum ck_order_state state = uploaded ? CK_ORDER_CSR_READY : CK_ORDER_NEW;
    int rc = ck_sql_exec_args(
        st,
        "INSERT INTO orders (tenant_id, enrollment_id, state, key_type, csr_pem, "
        "csr_uploaded, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        ARGS(A_INT(o->tenant_id), A_INT(o->enrollment_id), A_TEXT(ck_order_state_name(state)),
             A_TEXT(uploaded ? ck_key_type_name(o->key_type) : key_type), A_TEXT(o->csr_pem),
             A_INT(uploaded ? 1 : 0), A_INT(ck_clock_now())),
        "creating an order", NULL, err);
    /* The partial unique index, for a writer that got past the check some other way. */
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "order_open",
                            "enrollment %s already has an open order; cancel it first", name);
    if (rc != 0)
        return -1;
    o->order_id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

/* The order with its csr job: queued, or for an uploaded CSR already finished with the CSR as
 * its artifact. */
static int order_insert_rows(struct ck_store *st, struct order_new *o, const char *name,
                             const char *key_type, ck_error *err)
{
    bool uploaded = o->csr_pem != NULL;
    if (order_row_insert(st, o, name, key_type, err) != 0)
        return -1;
    struct job_row job = {.tenant_id = o->tenant_id,
                          .enrollment_id = o->enrollment_id,
                          .order_id = o->order_id,
                          .type = CK_JOB_CSR,
                          .state = uploaded ? CK_JOB_FINISHED : CK_JOB_QUEUED};
    if (job_insert(st, &job, &o->job_id, err) != 0)
        return -1;
    if (uploaded && (csr_artifact_insert(st, o->job_id, o->csr_pem, err) != 0 ||
                     log_insert(st, o->job_id, "info", "CSR uploaded", err) != 0))
        return -1;
    return order_event(st, o->tenant_id, o->order_id, o->event, err);
}

static int order_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct order_new *o = ctx;
    struct enrollment_brief e = {0};
    int ret = -1;
    int rc = ck_sql_query_one(
        st, "SELECT name, key_type FROM enrollments WHERE id = ?1 AND tenant_id = ?2",
        ARGS(A_INT(o->enrollment_id), A_INT(o->tenant_id)), "creating an order",
        read_enrollment_brief, &e, err);
    if (rc == 0)
        ck_error_set(err, 404, "not_found", "no enrollment %lld", (long long)o->enrollment_id);
    if (rc != 1 || refuse_open_order(st, o->enrollment_id, e.name, "cancel it first", err) != 0 ||
        order_insert_rows(st, o, e.name, e.key_type, err) != 0)
        goto cleanup;
    ret = 0;
cleanup:
    free(e.name);
    free(e.key_type);
    return ret;
}

static int order_create(struct ck_store *st, struct order_new *o, int64_t *order_id,
                        int64_t *job_id, ck_error *err)
{
    if (ck_sql_in_transaction(st, order_insert, o, err) != 0)
        return -1;
    *order_id = o->order_id;
    *job_id = o->job_id;
    return 0;
}

int ck_store_order_create(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                          int64_t *order_id, int64_t *job_id, ck_error *err)
{
    return ck_store_order_create_event(st, tenant_id, enrollment_id, NULL, order_id, job_id, err);
}

int ck_store_order_create_event(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                                const struct ck_event_new *event, int64_t *order_id,
                                int64_t *job_id, ck_error *err)
{
    struct order_new o = {.tenant_id = tenant_id, .enrollment_id = enrollment_id, .event = event};
    return order_create(st, &o, order_id, job_id, err);
}

int ck_store_order_create_from_csr(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                                   enum ck_key_type key_type, const char *csr_pem,
                                   const struct ck_event_new *event, int64_t *order_id,
                                   int64_t *job_id, ck_error *err)
{
    struct order_new o = {.tenant_id = tenant_id,
                          .enrollment_id = enrollment_id,
                          .csr_pem = csr_pem,
                          .key_type = key_type,
                          .event = event};
    if (csr_pem == NULL)
        return ck_error_set(err, 400, "invalid_field", "an uploaded order needs its CSR");
    return order_create(st, &o, order_id, job_id, err);
}

int ck_store_order_get(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                       struct ck_order *out, ck_error *err)
{
    int rc = ck_sql_query_one(st, ORDER_SELECT " WHERE o.id = ?1 AND o.tenant_id = ?2",
                              ARGS(A_INT(order_id), A_INT(tenant_id)), "reading an order",
                              read_order, out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)order_id);
    return rc == 1 ? 0 : -1;
}

/* A list's filter term: the column test when the filter is given, else a test of the parameter
 * alone. Never "?N IS NULL OR column = ?N": SQLite cannot pick the filter's index through that
 * OR, and would walk every row of the tenant (an order's jobs, an enrollment's orders) to find a
 * few. Both forms name the parameter, so the same arguments bind either way. */
static const char *list_term(bool given, const char *column_test, const char *absent)
{
    return given ? column_test : absent;
}

int ck_store_order_list_page(struct ck_store *st, int64_t tenant_id,
                             const struct ck_order_filter *f, struct ck_page *page,
                             struct ck_order **out, size_t *n, ck_error *err)
{
    const char *state = f && f->state >= 0 ? ck_order_state_name(f->state) : NULL;
    const char *enrollment = f ? f->enrollment : NULL;
    char sql[1024];
    snprintf(sql, sizeof(sql),
             ORDER_SELECT " WHERE o.tenant_id = ?1 AND %s AND %s AND o.id < ?4 "
                          "ORDER BY o.id DESC LIMIT ?5",
             list_term(enrollment != NULL,
                       "o.enrollment_id = (SELECT id FROM enrollments WHERE tenant_id = ?1 "
                       "AND name = ?2)",
                       "?2 IS NULL"),
             list_term(state != NULL, "o.state = ?3", "?3 IS NULL"));
    if (ck_sql_query_all(st, sql,
                         ARGS(A_INT(tenant_id), A_TEXT(enrollment), A_TEXT(state),
                              A_INT(page_before_id(page)), A_INT(page_sql_limit(page))),
                         "listing orders", read_order, free_order_row, sizeof(**out), (void **)out,
                         n, err) != 0)
        return -1;
    page_trim(page, *out, sizeof(**out), n, free_order_row);
    return 0;
}

int ck_store_order_list(struct ck_store *st, int64_t tenant_id, const struct ck_order_filter *f,
                        struct ck_order **out, size_t *n, ck_error *err)
{
    struct ck_page all = {0};
    return ck_store_order_list_page(st, tenant_id, f, &all, out, n, err);
}

void ck_order_array_free(struct ck_order *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_order_free(&a[i]);
    free(a);
}

/* Fails the order's queued jobs, and its running ones too when running_too. */
static int fail_order_jobs(struct ck_store *st, int64_t order_id, const char *reason,
                           bool running_too, ck_error *err)
{
    return ck_sql_exec_args(
        st,
        "UPDATE jobs SET state = 'failed', error = ?2, finished_at = ?3, "
        "lease_until = NULL WHERE order_id = ?1 "
        "AND (state = 'queued' OR (?4 = 1 AND state = 'running'))",
        ARGS(A_INT(order_id), A_TEXT(reason), A_INT(ck_clock_now()), A_INT(running_too ? 1 : 0)),
        "failing the order's jobs", NULL, err);
}

struct order_end {
    int64_t tenant_id, order_id; /* tenant 0: any (job runner) */
    enum ck_order_state to;
    const char *reason;
};

/* Moves an open order to cancelled or failed and fails its jobs that can no longer matter: on
 * cancel the running ones too, on failure only the queued ones (the running job is the caller,
 * which finishes itself). */
static int order_end(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct order_end *r = ctx;
    struct order_brief o;
    if (order_brief_get(st, r->tenant_id, r->order_id, &o, err) != 0)
        return -1;
    if (!ck_order_state_is_open(o.state))
        return ck_error_set(err, 409, "order_closed", "order %lld is %s, no longer open",
                            (long long)o.id, ck_order_state_name(o.state));
    if (ck_sql_exec_args(st,
                         "UPDATE orders SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                         ARGS(A_INT(o.id), A_TEXT(ck_order_state_name(r->to)), A_TEXT(r->reason),
                              A_INT(ck_clock_now())),
                         "closing an order", NULL, err) != 0)
        return -1;
    bool cancelled = r->to == CK_ORDER_CANCELLED;
    return fail_order_jobs(st, o.id, cancelled ? "order cancelled" : "order failed", cancelled,
                           err);
}

int ck_store_order_cancel(struct ck_store *st, int64_t tenant_id, int64_t order_id, ck_error *err)
{
    struct order_end r = {.tenant_id = tenant_id, .order_id = order_id, .to = CK_ORDER_CANCELLED};
    return ck_sql_in_transaction(st, order_end, &r, err);
}

int ck_store_order_fail(struct ck_store *st, int64_t order_id, const char *reason, ck_error *err)
{
    struct order_end r = {.order_id = order_id, .to = CK_ORDER_FAILED, .reason = reason};
    return ck_sql_in_transaction(st, order_end, &r, err);
}

/* A job reduced to what state checks need. */
struct job_brief {
    int64_t order_id;
    enum ck_job_state state;
};

static int read_job_brief(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct job_brief *j = row;
    j->order_id = sqlite3_column_int64(s, 0);
    return col_job_state(s, 1, &j->state, err);
}

/* 0 when worker is NULL or holds the running job's lease, else -1 with 409 "lease_lost": the
 * lease ran out and another worker took the job over, so this one's results must not land. */
static int job_lease_check(struct ck_store *st, int64_t job_id, const char *worker, ck_error *err)
{
    int64_t id = 0;
    if (worker == NULL)
        return 0;
    int rc = ck_sql_query_one(
        st, "SELECT id FROM jobs WHERE id = ?1 AND state = 'running' AND worker = ?2",
        ARGS(A_INT(job_id), A_TEXT(worker)), "checking a job's lease", ck_sql_read_id, &id, err);
    if (rc == 0)
        return ck_error_set(err, 409, "lease_lost",
                            "job %lld is no longer leased to %s (it ended, or another worker took "
                            "it over when the lease ran out)",
                            (long long)job_id, worker);
    return rc == 1 ? 0 : -1;
}

/* The job's order and state, of any tenant (job runner entry points). 0, or -1 with 404. */
static int job_brief_get(struct ck_store *st, int64_t job_id, struct job_brief *out, ck_error *err)
{
    int rc = ck_sql_query_one(st, "SELECT order_id, state FROM jobs WHERE id = ?1",
                              ARGS(A_INT(job_id)), "reading a job", read_job_brief, out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no job %lld", (long long)job_id);
    return rc == 1 ? 0 : -1;
}

struct csr_commit {
    int64_t order_id, job_id;
    const char *worker;
    const uint8_t *sealed_key;
    size_t sealed_key_len;
    const char *csr_pem;
    const struct ck_event_new *event;
    const struct ck_job_new *next;
};

static int csr_commit_check(struct ck_store *st, const struct csr_commit *c, struct order_brief *o,
                            ck_error *err)
{
    struct job_brief j;
    if (order_brief_get(st, 0, c->order_id, o, err) != 0 ||
        job_brief_get(st, c->job_id, &j, err) != 0 ||
        job_lease_check(st, c->job_id, c->worker, err) != 0)
        return -1;
    if (j.order_id != c->order_id)
        return ck_error_set(err, 404, "not_found", "job %lld does not belong to order %lld",
                            (long long)c->job_id, (long long)c->order_id);
    if (o->state != CK_ORDER_NEW)
        return ck_error_set(err, 409, "order_not_new",
                            "order %lld is %s, no longer new; its key and CSR were not saved",
                            (long long)o->id, ck_order_state_name(o->state));
    return 0;
}

static int csr_commit(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct csr_commit *c = ctx;
    struct order_brief o;
    if (csr_commit_check(st, c, &o, err) != 0)
        return -1;
    if (ck_sql_exec_args(
            st,
            "UPDATE orders SET state = ?2, sealed_key = ?3, csr_pem = ?4, updated_at = ?5 "
            "WHERE id = ?1",
            ARGS(A_INT(c->order_id), A_TEXT(ck_order_state_name(CK_ORDER_CSR_READY)),
                 A_BLOB(c->sealed_key, c->sealed_key_len), A_TEXT(c->csr_pem),
                 A_INT(ck_clock_now())),
            "saving the order's key and CSR", NULL, err) != 0 ||
        csr_artifact_insert(st, c->job_id, c->csr_pem, err) != 0)
        return -1;
    int64_t changed = 0;
    if (ck_sql_exec_args(st,
                         "UPDATE jobs SET state = ?2, finished_at = ?3, lease_until = NULL "
                         "WHERE id = ?1 AND (?4 IS NULL OR (state = 'running' AND worker = ?4))",
                         ARGS(A_INT(c->job_id), A_TEXT(ck_job_state_name(CK_JOB_FINISHED)),
                              A_INT(ck_clock_now()), A_TEXT(c->worker)),
                         "finishing the csr job", &changed, err) != 0)
        return -1;
    if (changed != 1) /* see job_finish_body */
        return ck_error_set(err, 409, "lease_lost", "job %lld changed hands meanwhile",
                            (long long)c->job_id);
    if (order_jobs_queue(st, o.tenant_id, c->order_id, c->next, c->next ? 1 : 0, err) != 0)
        return -1;
    return order_event(st, o.tenant_id, c->order_id, c->event, err);
}

int ck_store_order_csr_ready_then(struct ck_store *st, int64_t order_id, int64_t job_id,
                                  const char *worker, const uint8_t *sealed_key,
                                  size_t sealed_key_len, const char *csr_pem,
                                  const struct ck_event_new *event, const struct ck_job_new *next,
                                  ck_error *err)
{
    struct csr_commit c = {.order_id = order_id,
                           .job_id = job_id,
                           .worker = worker,
                           .sealed_key = sealed_key,
                           .sealed_key_len = sealed_key_len,
                           .csr_pem = csr_pem,
                           .event = event,
                           .next = next};
    return ck_sql_in_transaction(st, csr_commit, &c, err);
}

int ck_store_order_csr_ready(struct ck_store *st, int64_t order_id, int64_t job_id,
                             const uint8_t *sealed_key, size_t sealed_key_len, const char *csr_pem,
                             const struct ck_event_new *event, ck_error *err)
{
    return ck_store_order_csr_ready_then(st, order_id, job_id, NULL, sealed_key, sealed_key_len,
                                         csr_pem, event, NULL, err);
}

struct order_move {
    int64_t tenant_id, order_id;
    enum ck_order_state from, to;
    const struct ck_order_update *update;
    const struct ck_event_new *event;
};

/* Why a conditional UPDATE of an order changed nothing: no such order (404), or it is not
 * `expected` (409). */
static int order_refused(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                         const char *expected, ck_error *err)
{
    struct order_brief o;
    if (order_brief_get(st, tenant_id, order_id, &o, err) != 0)
        return -1;
    return ck_error_set(err, 409, "order_state_changed",
                        "order %lld is %s, not %s: another request or daemon moved it "
                        "meanwhile; read it again before retrying",
                        (long long)o.id, ck_order_state_name(o.state), expected);
}

static int order_move_refused(struct ck_store *st, const struct order_move *m, ck_error *err)
{
    return order_refused(st, m->tenant_id, m->order_id, ck_order_state_name(m->from), err);
}

/* The state check is in the UPDATE itself, so two writers cannot both move the order from the
 * same state. */
static int order_move_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct order_move *m = ctx;
    const struct ck_order_update none = {0}, *u = m->update ? m->update : &none;
    int64_t changes = 0;
    if (ck_sql_exec_args(
            st,
            "UPDATE orders SET state = ?4, cert_pem = COALESCE(?5, cert_pem), "
            "chain_pem = COALESCE(?6, chain_pem), "
            "findings_json = COALESCE(?7, findings_json), "
            "cert_not_after = COALESCE(?8, cert_not_after), updated_at = ?9 "
            "WHERE id = ?1 AND tenant_id = ?2 AND state = ?3",
            ARGS(A_INT(m->order_id), A_INT(m->tenant_id), A_TEXT(ck_order_state_name(m->from)),
                 A_TEXT(ck_order_state_name(m->to)), A_TEXT(u->cert_pem), A_TEXT(u->chain_pem),
                 A_TEXT(u->findings_json), A_ID(u->cert_not_after), A_INT(ck_clock_now())),
            "changing an order's state", &changes, err) != 0)
        return -1;
    if (changes == 0)
        return order_move_refused(st, m, err);
    return order_event(st, m->tenant_id, m->order_id, m->event, err);
}

int ck_store_order_transition(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                              enum ck_order_state from, enum ck_order_state to,
                              const struct ck_order_update *update,
                              const struct ck_event_new *event, ck_error *err)
{
    struct order_move m = {.tenant_id = tenant_id,
                           .order_id = order_id,
                           .from = from,
                           .to = to,
                           .update = update,
                           .event = event};
    /* tenant 0 would mean "any tenant" to order_brief_get; no tenant has that id. */
    if (tenant_id == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)order_id);
    return ck_sql_in_transaction(st, order_move_body, &m, err);
}

struct import_record {
    int64_t tenant_id, order_id;
    bool accepted;
    const char *const *levels, *const *lines;
    size_t n_lines;
    const char *summary;
    int64_t job_id;
};

static int import_record_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct import_record *r = ctx;
    struct job_row job = {.tenant_id = r->tenant_id,
                          .order_id = r->order_id,
                          .type = CK_JOB_IMPORT,
                          .state = r->accepted ? CK_JOB_FINISHED : CK_JOB_FAILED,
                          .error = r->accepted ? NULL : r->summary};
    int rc =
        ck_sql_query_one(st, "SELECT enrollment_id FROM orders WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(r->order_id), A_INT(r->tenant_id)), "recording an import",
                         ck_sql_read_id, &job.enrollment_id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)r->order_id);
    if (rc < 0 || job_insert(st, &job, &r->job_id, err) != 0)
        return -1;
    for (size_t i = 0; i < r->n_lines; i++)
        if (log_insert(st, r->job_id, r->levels[i], r->lines[i], err) != 0)
            return -1;
    return log_insert(st, r->job_id, r->accepted ? "info" : "error", r->summary, err);
}

/* 400 unless every finding has level "error" or "warn" and a text. */
static int import_lines_check(const struct import_record *r, ck_error *err)
{
    for (size_t i = 0; i < r->n_lines; i++) {
        const char *level = r->levels[i];
        if (level == NULL || (strcmp(level, "error") != 0 && strcmp(level, "warn") != 0))
            return ck_error_set(err, 400, "invalid_field",
                                "import finding %zu has level %s, not error or warn", i + 1,
                                level ? level : "(none)");
        if (r->lines[i] == NULL)
            return ck_error_set(err, 400, "invalid_field", "import finding %zu has no text", i + 1);
    }
    return 0;
}

int ck_store_import_job_record(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                               bool accepted, const char *const *levels, const char *const *lines,
                               size_t n_lines, const char *summary, int64_t *job_id, ck_error *err)
{
    struct import_record r = {.tenant_id = tenant_id,
                              .order_id = order_id,
                              .accepted = accepted,
                              .levels = levels,
                              .lines = lines,
                              .n_lines = n_lines,
                              .summary = summary};
    if (summary == NULL)
        r.summary = accepted ? "certificate accepted" : "certificate refused";
    if (import_lines_check(&r, err) != 0 ||
        ck_sql_in_transaction(st, import_record_body, &r, err) != 0)
        return -1;
    *job_id = r.job_id;
    return 0;
}

struct import_accept {
    struct order_move move;
    struct import_record record;
};

/* The move first: an order that left `from` meanwhile records no accepted import. */
static int import_accept_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct import_accept *a = ctx;
    if (order_move_body(st, &a->move, err) != 0)
        return -1;
    return import_record_body(st, &a->record, err);
}

int ck_store_import_accept(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                           const struct ck_import_log *log, enum ck_order_state from,
                           enum ck_order_state to, const struct ck_order_update *update,
                           const struct ck_event_new *event, int64_t *job_id, ck_error *err)
{
    static const struct ck_import_log none = {0};
    const struct ck_import_log *l = log ? log : &none;
    struct import_accept a = {
        .move = {.tenant_id = tenant_id,
                 .order_id = order_id,
                 .from = from,
                 .to = to,
                 .update = update,
                 .event = event},
        .record = {.tenant_id = tenant_id,
                   .order_id = order_id,
                   .accepted = true,
                   .levels = l->levels,
                   .lines = l->lines,
                   .n_lines = l->n_lines,
                   .summary = l->summary ? l->summary : "certificate accepted"}};
    if (tenant_id == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)order_id);
    if (import_lines_check(&a.record, err) != 0 ||
        ck_sql_in_transaction(st, import_accept_body, &a, err) != 0)
        return -1;
    if (job_id != NULL)
        *job_id = a.record.job_id;
    return 0;
}

/* ==== staging and production ==== */

struct order_step {
    int64_t tenant_id, order_id, now;
    const struct ck_event_new *event;
    const struct ck_job_new *jobs; /* the follow-up jobs of the order */
    size_t n_jobs;
};

/* Runs sql (?1 order, ?2 tenant, ?3 now, ?4 the new state, ?5 the state it must be in) and
 * refuses with 409 when the order was not in `from`: the state check is in the UPDATE itself,
 * so two writers cannot both take the order out of the same state. */
static int order_step_update(struct ck_store *st, const struct order_step *s, const char *sql,
                             enum ck_order_state from, enum ck_order_state to, ck_error *err)
{
    int64_t changes = 0;
    if (ck_sql_exec_args(st, sql,
                         ARGS(A_INT(s->order_id), A_INT(s->tenant_id), A_INT(s->now),
                              A_TEXT(ck_order_state_name(to)), A_TEXT(ck_order_state_name(from))),
                         "changing an order's state", &changes, err) != 0)
        return -1;
    if (changes == 0)
        return order_refused(st, s->tenant_id, s->order_id, ck_order_state_name(from), err);
    return 0;
}

/* Points the order's enrollment's staging_order_id or production_order_id (a constant column
 * name) at it. */
static int enrollment_point(struct ck_store *st, int64_t order_id, const char *sql, ck_error *err)
{
    return ck_sql_exec_args(st, sql, ARGS(A_INT(order_id)), "pointing the enrollment at the order",
                            NULL, err);
}

/* What every staging and production change ends with. */
static int order_step_end(struct ck_store *st, const struct order_step *s, ck_error *err)
{
    if (edge_bump(st, err) != 0 ||
        order_jobs_queue(st, s->tenant_id, s->order_id, s->jobs, s->n_jobs, err) != 0)
        return -1;
    return order_event(st, s->tenant_id, s->order_id, s->event, err);
}

static int order_stage_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct order_step *s = ctx;
    if (order_step_update(st, s,
                          "UPDATE orders SET state = ?4, staged_at = ?3, updated_at = ?3 "
                          "WHERE id = ?1 AND tenant_id = ?2 AND state = ?5",
                          CK_ORDER_ISSUED, CK_ORDER_STAGED, err) != 0 ||
        enrollment_point(st, s->order_id,
                         "UPDATE enrollments SET staging_order_id = ?1 "
                         "WHERE id = (SELECT enrollment_id FROM orders WHERE id = ?1)",
                         err) != 0)
        return -1;
    return order_step_end(st, s, err);
}

/* Runs body (given ctx, which holds s) on a step of the tenant's order; tenant 0 would let
 * order_refused see any tenant's order, and no tenant has that id. */
static int order_step_run(struct ck_store *st, struct order_step *s, tx_body body, void *ctx,
                          ck_error *err)
{
    if (s->tenant_id == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)s->order_id);
    s->now = ck_clock_now();
    return ck_sql_in_transaction(st, body, ctx, err);
}

int ck_store_order_stage_then(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                              const struct ck_event_new *event, const struct ck_job_new *jobs,
                              size_t n_jobs, ck_error *err)
{
    struct order_step s = {.tenant_id = tenant_id,
                           .order_id = order_id,
                           .event = event,
                           .jobs = jobs,
                           .n_jobs = n_jobs};
    return order_step_run(st, &s, order_stage_body, &s, err);
}

int ck_store_order_stage(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                         const struct ck_event_new *event, ck_error *err)
{
    return ck_store_order_stage_then(st, tenant_id, order_id, event, NULL, 0, err);
}

/* The first acknowledgement's time stays: it is when a person looked. The edge serves the same
 * certificates, so the generation does not move. */
static int order_ack_body(struct ck_store *st, void *ctx, ck_error *err)
{
    return order_step_update(st, ctx,
                             "UPDATE orders SET staging_acked_at = COALESCE(staging_acked_at, ?3), "
                             "updated_at = ?3 WHERE id = ?1 AND tenant_id = ?2 AND state = ?5",
                             CK_ORDER_STAGED, CK_ORDER_STAGED, err);
}

int ck_store_order_ack_staging(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                               ck_error *err)
{
    struct order_step s = {.tenant_id = tenant_id, .order_id = order_id};
    return order_step_run(st, &s, order_ack_body, &s, err);
}

struct not_before_set {
    struct order_step step;
    int64_t not_before;
};

static int order_not_before_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct not_before_set *n = ctx;
    int64_t changes = 0;
    if (ck_sql_exec_args(
            st,
            "UPDATE orders SET deploy_not_before = ?3, updated_at = ?4 "
            "WHERE id = ?1 AND tenant_id = ?2 AND state IN " CK_STORE_OPEN_ORDER_STATES,
            ARGS(A_INT(n->step.order_id), A_INT(n->step.tenant_id), A_ID(n->not_before),
                 A_INT(n->step.now)),
            "setting an order's not-before date", &changes, err) != 0)
        return -1;
    if (changes == 0)
        return order_refused(st, n->step.tenant_id, n->step.order_id, "open", err);
    return 0;
}

int ck_store_order_set_not_before(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                                  int64_t not_before, ck_error *err)
{
    struct not_before_set n = {.step = {.tenant_id = tenant_id, .order_id = order_id},
                               .not_before = not_before};
    if (not_before < 0)
        return ck_error_set(err, 400, "invalid_field", "a not-before date cannot be negative");
    return order_step_run(st, &n.step, order_not_before_body, &n, err);
}

/* Any other deployed order of the enrollment gives way to order_id. */
static int supersede_others(struct ck_store *st, int64_t order_id, int64_t now, ck_error *err)
{
    return ck_sql_exec_args(
        st,
        /* "+state": an enrollment has a few orders and state 'deployed' has one per
         * enrollment, so the enrollment's index, not the one by state (migration 8), finds them */
        "UPDATE orders SET state = ?3, updated_at = ?2 WHERE id <> ?1 AND +state = ?4 "
        "AND enrollment_id = (SELECT enrollment_id FROM orders WHERE id = ?1)",
        ARGS(A_INT(order_id), A_INT(now), A_TEXT(ck_order_state_name(CK_ORDER_SUPERSEDED)),
             A_TEXT(ck_order_state_name(CK_ORDER_DEPLOYED))),
        "superseding the previous production order", NULL, err);
}

#define POINT_PRODUCTION                                                                           \
    "UPDATE enrollments SET production_order_id = ?1 "                                             \
    "WHERE id = (SELECT enrollment_id FROM orders WHERE id = ?1)"

static int order_deploy_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct order_step *s = ctx;
    if (order_step_update(st, s,
                          "UPDATE orders SET state = ?4, deployed_at = ?3, updated_at = ?3 "
                          "WHERE id = ?1 AND tenant_id = ?2 AND state = ?5",
                          CK_ORDER_STAGED, CK_ORDER_DEPLOYED, err) != 0 ||
        supersede_others(st, s->order_id, s->now, err) != 0 ||
        enrollment_point(st, s->order_id, POINT_PRODUCTION, err) != 0)
        return -1;
    return order_step_end(st, s, err);
}

int ck_store_order_deploy_then(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                               const struct ck_event_new *event, const struct ck_job_new *jobs,
                               size_t n_jobs, ck_error *err)
{
    struct order_step s = {.tenant_id = tenant_id,
                           .order_id = order_id,
                           .event = event,
                           .jobs = jobs,
                           .n_jobs = n_jobs};
    return order_step_run(st, &s, order_deploy_body, &s, err);
}

int ck_store_order_deploy(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                          const struct ck_event_new *event, ck_error *err)
{
    return ck_store_order_deploy_then(st, tenant_id, order_id, event, NULL, 0, err);
}

struct rollback {
    struct order_step step; /* order_id: found inside the transaction */
    const char *enrollment;
    int64_t valid_at;
};

/* The newest superseded order of the enrollment whose certificate is still valid at `at`.
 * Returns 1 with *order_id, 0 when there is none, -1 on failure. */
static int rollback_candidate(struct ck_store *st, int64_t enrollment_id, int64_t at,
                              int64_t *order_id, ck_error *err)
{
    return ck_sql_query_one(
        st,
        "SELECT id FROM orders WHERE enrollment_id = ?1 AND +state = ?2 " /* as above */
        "AND cert_pem IS NOT NULL AND cert_not_after > ?3 ORDER BY id DESC LIMIT 1",
        ARGS(A_INT(enrollment_id), A_TEXT(ck_order_state_name(CK_ORDER_SUPERSEDED)), A_INT(at)),
        "looking for the previous production order", ck_sql_read_id, order_id, err);
}

static int rollback_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct rollback *r = ctx;
    int64_t enrollment_id;
    int rc = ck_sql_query_one(st, "SELECT id FROM enrollments WHERE tenant_id = ?1 AND name = ?2",
                              ARGS(A_INT(r->step.tenant_id), A_TEXT(r->enrollment)),
                              "rolling back an enrollment", ck_sql_read_id, &enrollment_id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no enrollment named %s", r->enrollment);
    if (rc == 1)
        rc = rollback_candidate(st, enrollment_id, r->valid_at, &r->step.order_id, err);
    if (rc == 0)
        return ck_error_set(err, 409, "nothing_to_roll_back",
                            "enrollment %s has no earlier deployed certificate that is still "
                            "valid to put back",
                            r->enrollment);
    if (rc < 0)
        return -1;
    if (ck_sql_exec_args(st, "UPDATE orders SET state = ?2, updated_at = ?3 WHERE id = ?1",
                         ARGS(A_INT(r->step.order_id),
                              A_TEXT(ck_order_state_name(CK_ORDER_DEPLOYED)), A_INT(r->step.now)),
                         "putting the previous order back", NULL, err) != 0 ||
        supersede_others(st, r->step.order_id, r->step.now, err) != 0 ||
        enrollment_point(st, r->step.order_id, POINT_PRODUCTION, err) != 0)
        return -1;
    return order_step_end(st, &r->step, err);
}

int ck_store_enrollment_rollback(struct ck_store *st, int64_t tenant_id, const char *enrollment,
                                 int64_t now, const struct ck_event_new *event, int64_t *order_id,
                                 ck_error *err)
{
    return ck_store_enrollment_rollback_then(st, tenant_id, enrollment, now, event, NULL, 0,
                                             order_id, err);
}

int ck_store_enrollment_rollback_then(struct ck_store *st, int64_t tenant_id,
                                      const char *enrollment, int64_t now,
                                      const struct ck_event_new *event,
                                      const struct ck_job_new *jobs, size_t n_jobs,
                                      int64_t *order_id, ck_error *err)
{
    struct rollback r = {.step = {.tenant_id = tenant_id,
                                  .now = ck_clock_now(),
                                  .event = event,
                                  .jobs = jobs,
                                  .n_jobs = n_jobs},
                         .enrollment = enrollment,
                         .valid_at = now};
    if (enrollment == NULL)
        return ck_error_set(err, 400, "invalid_field", "a rollback needs the enrollment's name");
    if (ck_sql_in_transaction(st, rollback_body, &r, err) != 0)
        return -1;
    *order_id = r.step.order_id;
    return 0;
}

/* ==== what the edge serves ==== */

int ck_store_edge_generation(struct ck_store *st, int64_t *generation, ck_error *err)
{
    int rc = ck_sql_query_one(st, "SELECT generation FROM edge_generation WHERE id = 1", NO_ARGS,
                              "reading the edge generation", ck_sql_read_id, generation, err);
    if (rc == 0)
        return ck_error_set(err, 500, "storage_failed",
                            "the database has no edge generation row; was it edited by hand?");
    return rc == 1 ? 0 : -1;
}

#define EDGE_SELECT                                                                                \
    "SELECT e.tenant_id, e.id, o.id, e.sans, o.cert_pem, o.chain_pem, o.sealed_key, "              \
    "o.cert_not_after FROM enrollments e JOIN orders o ON o.id = "
#define EDGE_WHERE " WHERE o.cert_pem IS NOT NULL AND o.sealed_key IS NOT NULL ORDER BY e.id"

static const char *const edge_queries[] = {
    [CK_ENV_STAGING] = EDGE_SELECT "e.staging_order_id" EDGE_WHERE,
    [CK_ENV_PRODUCTION] = EDGE_SELECT "e.production_order_id" EDGE_WHERE,
};

static int read_edge_entry(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_edge_entry *e = row;
    bool ok = true;
    e->tenant_id = sqlite3_column_int64(s, 0);
    e->enrollment_id = sqlite3_column_int64(s, 1);
    e->order_id = sqlite3_column_int64(s, 2);
    e->cert_pem = ck_sql_col_text(s, 4, &ok);
    e->chain_pem = ck_sql_col_text(s, 5, &ok);
    e->sealed_key = ck_sql_col_blob(s, 6, &e->sealed_key_len, &ok);
    e->cert_not_after = sqlite3_column_int64(s, 7);
    if (!ok || ck_sql_col_json_strv(s, 3, &e->names, err) != 0) {
        ck_edge_entry_free(e);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

struct edge_walk {
    enum ck_environment env;
    int64_t generation;
    ck_edge_entry_visit visit;
    void *arg;
};

static int edge_walk_row(sqlite3_stmt *s, void *arg, ck_error *err)
{
    struct edge_walk *w = arg;
    struct ck_edge_entry entry = {0};
    int rc = read_edge_entry(s, &entry, err);
    if (rc == 0)
        rc = w->visit(&entry, w->arg, err);
    ck_edge_entry_free(&entry);
    return rc;
}

static int edge_walk_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct edge_walk *w = ctx;
    if (ck_store_edge_generation(st, &w->generation, err) != 0)
        return -1;
    return ck_sql_query_each(st, edge_queries[w->env], NO_ARGS, "listing what the edge serves",
                             edge_walk_row, w, err);
}

int ck_store_edge_each(struct ck_store *st, enum ck_environment env, ck_edge_entry_visit visit,
                       void *arg, int64_t *generation, ck_error *err)
{
    struct edge_walk w = {.env = env, .visit = visit, .arg = arg};
    if (env != CK_ENV_STAGING && env != CK_ENV_PRODUCTION)
        return ck_error_set(err, 400, "invalid_field", "unknown environment %d", (int)env);
    if (in_read_transaction(st, edge_walk_body, &w, err) != 0)
        return -1;
    *generation = w.generation;
    return 0;
}

/* ==== queued jobs ==== */

struct job_enqueue {
    int64_t tenant_id, order_id, job_id;
    enum ck_job_type type;
    const char *params_json;
};

static int job_enqueue_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct job_enqueue *q = ctx;
    struct job_row job = {.tenant_id = q->tenant_id,
                          .order_id = q->order_id,
                          .type = q->type,
                          .state = CK_JOB_QUEUED,
                          .params_json = q->params_json};
    int rc =
        ck_sql_query_one(st, "SELECT enrollment_id FROM orders WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(q->order_id), A_INT(q->tenant_id)), "queueing a job",
                         ck_sql_read_id, &job.enrollment_id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)q->order_id);
    if (rc < 0)
        return -1;
    return job_insert(st, &job, &q->job_id, err);
}

/* 400 unless params is NULL or a JSON object: the job reads its parameters by name. */
static int job_params_check(const char *params, ck_error *err)
{
    if (params == NULL)
        return 0;
    json_t *value = json_loads(params, JSON_REJECT_DUPLICATES, NULL);
    bool is_object = json_is_object(value);
    json_decref(value);
    if (!is_object)
        return ck_error_set(err, 400, "invalid_field", "job parameters must be a JSON object");
    return 0;
}

int ck_store_job_enqueue(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                         enum ck_job_type type, const char *params_json, int64_t *job_id,
                         ck_error *err)
{
    struct job_enqueue q = {
        .tenant_id = tenant_id, .order_id = order_id, .type = type, .params_json = params_json};
    if ((int)type < 0 || type >= CK_JOB_TYPE_COUNT)
        return ck_error_set(err, 400, "invalid_field", "unknown job type %d", (int)type);
    if (job_params_check(params_json, err) != 0 ||
        ck_sql_in_transaction(st, job_enqueue_body, &q, err) != 0)
        return -1;
    *job_id = q.job_id;
    return 0;
}

/* ==== file targets ==== */

#define TARGET_SELECT                                                                              \
    "SELECT id, tenant_id, enrollment_id, environment, directory, reload_command, "                \
    "timeout_seconds, probe_endpoint, created_at FROM targets"

static int col_environment(sqlite3_stmt *s, int col, enum ck_environment *out, ck_error *err)
{
    static const enum ck_environment all[] = {CK_ENV_STAGING, CK_ENV_PRODUCTION};
    for (size_t i = 0; col_str(s, col) != NULL && i < CK_ARRAY_LEN(all); i++)
        if (strcmp(col_str(s, col), ck_environment_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return bad_value("environment", col_str(s, col), err);
}

static int read_target(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_target *t = row;
    bool ok = true;
    t->id = sqlite3_column_int64(s, 0);
    t->tenant_id = sqlite3_column_int64(s, 1);
    t->enrollment_id = sqlite3_column_int64(s, 2);
    t->directory = ck_sql_col_text(s, 4, &ok);
    t->reload_command = ck_sql_col_text(s, 5, &ok);
    t->timeout_seconds = sqlite3_column_int(s, 6);
    t->probe_endpoint = ck_sql_col_text(s, 7, &ok);
    t->created_at = sqlite3_column_int64(s, 8);
    if (!ok || col_environment(s, 3, &t->environment, err) != 0) {
        ck_target_free(t);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

static void free_target_row(void *row)
{
    ck_target_free(row);
}

/* 0 when the enrollment is the tenant's, -1 with 404 otherwise. */
static int enrollment_visible(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                              ck_error *err)
{
    int64_t id;
    int rc = ck_sql_query_one(st, "SELECT id FROM enrollments WHERE id = ?1 AND tenant_id = ?2",
                              ARGS(A_INT(enrollment_id), A_INT(tenant_id)), "reading an enrollment",
                              ck_sql_read_id, &id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no enrollment %lld", (long long)enrollment_id);
    return rc == 1 ? 0 : -1;
}

struct target_new {
    struct ck_target *t;
    int64_t now;
};

static int target_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct target_new *n = ctx;
    const struct ck_target *t = n->t;
    if (enrollment_visible(st, t->tenant_id, t->enrollment_id, err) != 0 ||
        ck_sql_exec_args(st,
                         "INSERT INTO targets (tenant_id, enrollment_id, environment, directory, "
                         "reload_command, timeout_seconds, probe_endpoint, created_at) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         ARGS(A_INT(t->tenant_id), A_INT(t->enrollment_id),
                              A_TEXT(ck_environment_name(t->environment)), A_TEXT(t->directory),
                              A_TEXT(t->reload_command), A_INT(t->timeout_seconds),
                              A_TEXT(t->probe_endpoint), A_INT(n->now)),
                         "adding a target", NULL, err) != 0)
        return -1;
    n->t->id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ck_store_target_add(struct ck_store *st, struct ck_target *t, ck_error *err)
{
    struct target_new n = {.t = t, .now = ck_clock_now()};
    if (t->directory == NULL)
        return ck_error_set(err, 400, "invalid_field", "a target needs its directory");
    if (t->environment != CK_ENV_STAGING && t->environment != CK_ENV_PRODUCTION)
        return ck_error_set(err, 400, "invalid_field", "unknown environment %d",
                            (int)t->environment);
    if (ck_sql_in_transaction(st, target_insert, &n, err) != 0) {
        t->id = 0;
        return -1;
    }
    t->created_at = n.now;
    return 0;
}

int ck_store_target_list(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                         struct ck_target **out, size_t *n, ck_error *err)
{
    if (enrollment_visible(st, tenant_id, enrollment_id, err) != 0)
        return -1;
    return ck_sql_query_all(
        st, TARGET_SELECT " WHERE tenant_id = ?1 AND enrollment_id = ?2 ORDER BY id",
        ARGS(A_INT(tenant_id), A_INT(enrollment_id)), "listing targets", read_target,
        free_target_row, sizeof(**out), (void **)out, n, err);
}

struct target_ref {
    int64_t tenant_id, target_id;
};

static int target_remove(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct target_ref *r = ctx;
    int64_t changes = 0;
    if (ck_sql_exec_args(st, "DELETE FROM targets WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(r->target_id), A_INT(r->tenant_id)), "deleting a target",
                         &changes, err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no target %lld", (long long)r->target_id);
    return 0;
}

int ck_store_target_delete(struct ck_store *st, int64_t tenant_id, int64_t target_id, ck_error *err)
{
    struct target_ref r = {.tenant_id = tenant_id, .target_id = target_id};
    return ck_sql_in_transaction(st, target_remove, &r, err);
}

void ck_target_array_free(struct ck_target *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_target_free(&a[i]);
    free(a);
}

/* ==== jobs ==== */

#define JOB_SELECT                                                                                 \
    "SELECT j.id, j.tenant_id, j.enrollment_id, e.name, j.order_id, j.type, j.state, "             \
    "j.created_at, j.started_at, j.finished_at, j.error, j.params_json, j.worker FROM jobs j "     \
    "LEFT JOIN enrollments e ON e.id = j.enrollment_id"

static int read_job(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_job *j = row;
    bool ok = true;
    j->id = sqlite3_column_int64(s, 0);
    j->tenant_id = sqlite3_column_int64(s, 1);
    j->enrollment_id = sqlite3_column_int64(s, 2);
    j->enrollment_name = ck_sql_col_text(s, 3, &ok);
    j->order_id = sqlite3_column_int64(s, 4);
    j->created_at = sqlite3_column_int64(s, 7);
    j->started_at = sqlite3_column_int64(s, 8);
    j->finished_at = sqlite3_column_int64(s, 9);
    j->error = ck_sql_col_text(s, 10, &ok);
    j->params_json = ck_sql_col_text(s, 11, &ok);
    j->worker = ck_sql_col_text(s, 12, &ok);
    if (!ok || col_job_type(s, 5, &j->type, err) != 0 || col_job_state(s, 6, &j->state, err) != 0) {
        ck_job_free(j);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

static void free_job_row(void *row)
{
    ck_job_free(row);
}

static int load_artifact_names(struct ck_store *st, struct ck_job *j, ck_error *err)
{
    char **names = NULL;
    size_t n = 0;
    int ret = -1;
    if (ck_sql_query_all(st, "SELECT name FROM job_artifacts WHERE job_id = ?1 ORDER BY name",
                         ARGS(A_INT(j->id)), "listing a job's artifacts", ck_sql_read_text,
                         free_text_row, sizeof(*names), (void **)&names, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (ck_strv_push(&j->artifacts, names[i]) != 0) {
            ck_sql_out_of_memory(err);
            goto cleanup;
        }
    ret = 0;
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

/* The job with that id (and of that tenant unless tenant_id is 0), with its artifact names.
 * Returns 1, 0 when there is no such job, -1 on failure. */
static int job_read(struct ck_store *st, int64_t tenant_id, int64_t job_id, struct ck_job *out,
                    ck_error *err)
{
    int rc = ck_sql_query_one(st, JOB_SELECT " WHERE j.id = ?1 AND (?2 = 0 OR j.tenant_id = ?2)",
                              ARGS(A_INT(job_id), A_INT(tenant_id)), "reading a job", read_job, out,
                              err);
    if (rc == 1 && load_artifact_names(st, out, err) != 0) {
        ck_job_free(out);
        return -1;
    }
    return rc;
}

int ck_store_job_get(struct ck_store *st, int64_t tenant_id, int64_t job_id, struct ck_job *out,
                     ck_error *err)
{
    /* tenant 0 would mean "any tenant" to job_read; no tenant has that id. */
    int rc = tenant_id != 0 ? job_read(st, tenant_id, job_id, out, err) : 0;
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no job %lld", (long long)job_id);
    return rc == 1 ? 0 : -1;
}

int ck_store_job_list_page(struct ck_store *st, int64_t tenant_id, const struct ck_job_filter *f,
                           struct ck_page *page, struct ck_job **out, size_t *n, ck_error *err)
{
    const struct ck_job_filter all = {.state = -1, .type = -1};
    struct ck_job *jobs = NULL;
    size_t count = 0;
    char sql[1024];
    if (f == NULL)
        f = &all;
    snprintf(sql, sizeof(sql),
             JOB_SELECT " WHERE j.tenant_id = ?1 AND %s AND %s AND %s AND %s AND j.id < ?6 "
                        "ORDER BY j.id DESC LIMIT ?7",
             list_term(f->state >= 0, "j.state = ?2", "?2 IS NULL"),
             list_term(f->type >= 0, "j.type = ?3", "?3 IS NULL"),
             list_term(f->enrollment != NULL,
                       "j.enrollment_id = (SELECT id FROM enrollments WHERE tenant_id = ?1 "
                       "AND name = ?4)",
                       "?4 IS NULL"),
             list_term(f->order_id > 0, "j.order_id = ?5", "?5 = 0"));
    if (ck_sql_query_all(
            st, sql,
            ARGS(A_INT(tenant_id), A_TEXT(f->state >= 0 ? ck_job_state_name(f->state) : NULL),
                 A_TEXT(f->type >= 0 ? ck_job_type_name(f->type) : NULL), A_TEXT(f->enrollment),
                 A_INT(f->order_id), A_INT(page_before_id(page)), A_INT(page_sql_limit(page))),
            "listing jobs", read_job, free_job_row, sizeof(*jobs), (void **)&jobs, &count,
            err) != 0)
        return -1;
    page_trim(page, jobs, sizeof(*jobs), &count, free_job_row);
    for (size_t i = 0; i < count; i++)
        if (load_artifact_names(st, &jobs[i], err) != 0) {
            ck_job_array_free(jobs, count);
            return -1;
        }
    *out = jobs;
    *n = count;
    return 0;
}

int ck_store_job_list(struct ck_store *st, int64_t tenant_id, const struct ck_job_filter *f,
                      struct ck_job **out, size_t *n, ck_error *err)
{
    struct ck_page all = {0};
    return ck_store_job_list_page(st, tenant_id, f, &all, out, n, err);
}

void ck_job_array_free(struct ck_job *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_job_free(&a[i]);
    free(a);
}

struct job_claim {
    const char *worker;
    int64_t lease_seconds;
    int found;
    struct ck_job job;
};

/* One UPDATE picks and takes the job, inside BEGIN IMMEDIATE: no other connection can claim
 * between the choice and the write. */
static int job_claim_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct job_claim *c = ctx;
    int64_t now = ck_clock_now(), id = 0;
    int rc =
        ck_sql_query_one(st,
                         "UPDATE jobs SET state = 'running', started_at = ?1, worker = ?2, "
                         "lease_until = ?3 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
                         "OR (state = 'running' AND lease_until < ?1) ORDER BY id LIMIT 1) "
                         "RETURNING id",
                         ARGS(A_INT(now), A_TEXT(c->worker), A_INT(now + c->lease_seconds)),
                         "claiming a job", ck_sql_read_id, &id, err);
    if (rc <= 0)
        return rc;
    c->found = job_read(st, 0, id, &c->job, err);
    return c->found == 1 ? 0 : -1;
}

int ck_store_job_claim(struct ck_store *st, const char *worker, int64_t lease_seconds,
                       struct ck_job *out, ck_error *err)
{
    struct job_claim c = {.worker = worker, .lease_seconds = lease_seconds};
    if (ck_sql_in_transaction(st, job_claim_body, &c, err) != 0) {
        ck_job_free(&c.job);
        return -1;
    }
    if (c.found)
        *out = c.job;
    return c.found;
}

int ck_store_job_renew(struct ck_store *st, int64_t job_id, const char *worker,
                       int64_t lease_seconds, ck_error *err)
{
    int64_t changed = 0;
    if (worker == NULL || lease_seconds <= 0)
        return ck_error_set(err, 400, "invalid_field", "a lease needs its holder and a duration");
    if (ck_sql_exec_args(st,
                         "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND state = 'running' "
                         "AND worker = ?2",
                         ARGS(A_INT(job_id), A_TEXT(worker), A_INT(ck_clock_now() + lease_seconds)),
                         "renewing a job's lease", &changed, err) != 0)
        return -1;
    if (changed == 0)
        return ck_error_set(err, 409, "lease_lost", "job %lld is no longer leased to %s",
                            (long long)job_id, worker);
    return 0;
}

struct job_line {
    int64_t job_id;
    const char *level, *message;
};

static int job_log_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct job_line *l = ctx;
    struct job_brief j;
    if (job_brief_get(st, l->job_id, &j, err) != 0)
        return -1;
    return log_insert(st, l->job_id, l->level, l->message, err);
}

int ck_store_job_log(struct ck_store *st, int64_t job_id, const char *level, const char *message,
                     ck_error *err)
{
    static const char *const levels[] = {"info", "warn", "error"};
    struct job_line l = {.job_id = job_id, .level = level, .message = message ? message : ""};
    for (size_t i = 0; level != NULL && i < CK_ARRAY_LEN(levels); i++)
        if (strcmp(level, levels[i]) == 0)
            return ck_sql_in_transaction(st, job_log_body, &l, err);
    return ck_error_set(err, 400, "invalid_field", "log level %s is not one of: info, warn, error",
                        level ? level : "(none)");
}

struct job_end {
    int64_t job_id;
    const char *worker; /* NULL: no lease check */
    enum ck_job_state state;
    const char *error;
};

static int job_finish_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct job_end *e = ctx;
    struct job_brief j;
    if (job_brief_get(st, e->job_id, &j, err) != 0)
        return -1;
    if (j.state != CK_JOB_QUEUED && j.state != CK_JOB_RUNNING)
        return ck_error_set(err, 409, "job_closed", "job %lld is already %s", (long long)e->job_id,
                            ck_job_state_name(j.state));
    /* The lease is checked in the write itself, so that no other writer can slip in between,
     * even in a store whose transactions do not serialize writers as SQLite's BEGIN IMMEDIATE
     * does. */
    int64_t changed = 0;
    if (ck_sql_exec_args(st,
                         "UPDATE jobs SET state = ?2, error = ?3, finished_at = ?4, "
                         "lease_until = NULL WHERE id = ?1 AND state IN ('queued', 'running') "
                         "AND (?5 IS NULL OR (state = 'running' AND worker = ?5))",
                         ARGS(A_INT(e->job_id), A_TEXT(ck_job_state_name(e->state)),
                              A_TEXT(e->state == CK_JOB_FAILED ? e->error : NULL),
                              A_INT(ck_clock_now()), A_TEXT(e->worker)),
                         "finishing a job", &changed, err) != 0)
        return -1;
    return changed == 1 ? 0
                        : ck_error_set(err, 409, "lease_lost",
                                       "job %lld is no longer leased to %s (another worker took "
                                       "it over when the lease ran out)",
                                       (long long)e->job_id, e->worker ? e->worker : "its caller");
}

int ck_store_job_finish(struct ck_store *st, int64_t job_id, const char *worker,
                        enum ck_job_state state, const char *error, ck_error *err)
{
    struct job_end e = {.job_id = job_id, .worker = worker, .state = state, .error = error};
    if (state != CK_JOB_FINISHED && state != CK_JOB_FAILED)
        return ck_error_set(err, 400, "invalid_field", "a job ends finished or failed, not %s",
                            ck_job_state_name(state));
    return ck_sql_in_transaction(st, job_finish_body, &e, err);
}

struct job_end_with {
    struct job_end end;
    const struct ck_job_end *with;
};

/* The job's order fails unless it is closed already (cancelled, or moved on by another job). */
static int job_order_fail(struct ck_store *st, int64_t order_id, const char *reason, ck_error *err)
{
    struct order_brief o;
    if (order_brief_get(st, 0, order_id, &o, err) != 0)
        return -1;
    if (!ck_order_state_is_open(o.state))
        return 0;
    struct order_end r = {.order_id = order_id, .to = CK_ORDER_FAILED, .reason = reason};
    return order_end(st, &r, err);
}

static int job_end_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct job_end_with *j = ctx;
    const struct ck_job_end *w = j->with;
    int64_t tenant_id = 0, order_id = 0;
    if (job_finish_body(st, &j->end, err) != 0)
        return -1;
    int rc =
        ck_sql_query_one(st, "SELECT tenant_id FROM jobs WHERE id = ?1", ARGS(A_INT(j->end.job_id)),
                         "reading a job", ck_sql_read_id, &tenant_id, err);
    if (rc == 1)
        rc = ck_sql_query_one(st, "SELECT order_id FROM jobs WHERE id = ?1 AND order_id > 0",
                              ARGS(A_INT(j->end.job_id)), "reading a job", ck_sql_read_id,
                              &order_id, err);
    if (rc < 0)
        return -1;
    if (order_id == 0)
        return w->fail_order || w->event || w->next
                   ? ck_error_set(err, 400, "invalid_field", "job %lld has no order",
                                  (long long)j->end.job_id)
                   : 0;
    if ((w->fail_order != NULL && job_order_fail(st, order_id, w->fail_order, err) != 0) ||
        order_jobs_queue(st, tenant_id, order_id, w->next, w->next ? 1 : 0, err) != 0)
        return -1;
    return order_event(st, tenant_id, order_id, w->event, err);
}

int ck_store_job_end(struct ck_store *st, int64_t job_id, const struct ck_job_end *end,
                     ck_error *err)
{
    if (end == NULL || (end->state != CK_JOB_FINISHED && end->state != CK_JOB_FAILED))
        return ck_error_set(err, 400, "invalid_field", "a job ends finished or failed");
    struct job_end_with j = {
        .end = {.job_id = job_id, .worker = end->worker, .state = end->state, .error = end->error},
        .with = end};
    return ck_sql_in_transaction(st, job_end_body, &j, err);
}

/* 0 when the job exists for that tenant, -1 with 404 otherwise. */
static int job_visible(struct ck_store *st, int64_t tenant_id, int64_t job_id, ck_error *err)
{
    int64_t id;
    int rc = ck_sql_query_one(st, "SELECT id FROM jobs WHERE id = ?1 AND tenant_id = ?2",
                              ARGS(A_INT(job_id), A_INT(tenant_id)), "reading a job",
                              ck_sql_read_id, &id, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no job %lld", (long long)job_id);
    return rc == 1 ? 0 : -1;
}

static int read_log_line(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_job_log_line *l = row;
    bool ok = true;
    l->at = sqlite3_column_int64(s, 0);
    l->level = ck_sql_col_text(s, 1, &ok);
    l->message = ck_sql_col_text(s, 2, &ok);
    if (ok)
        return 0;
    free(l->level);
    free(l->message);
    return ck_sql_out_of_memory(err);
}

static void free_log_line_row(void *row)
{
    struct ck_job_log_line *l = row;
    free(l->level);
    free(l->message);
}

int ck_store_job_log_lines(struct ck_store *st, int64_t tenant_id, int64_t job_id,
                           struct ck_job_log_line **out, size_t *n, ck_error *err)
{
    if (job_visible(st, tenant_id, job_id, err) != 0)
        return -1;
    return ck_sql_query_all(st,
                            "SELECT at, level, message FROM job_logs WHERE job_id = ?1 ORDER BY id",
                            ARGS(A_INT(job_id)), "reading a job's log", read_log_line,
                            free_log_line_row, sizeof(**out), (void **)out, n, err);
}

struct artifact {
    char *content_type;
    uint8_t *data;
    size_t len;
};

static int read_artifact(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct artifact *a = row;
    bool ok = true;
    a->content_type = ck_sql_col_text(s, 0, &ok);
    a->data = ck_sql_col_blob(s, 1, &a->len, &ok);
    if (ok && a->data != NULL)
        return 0;
    free(a->content_type);
    free(a->data);
    return ck_sql_out_of_memory(err);
}

int ck_store_job_artifact_get(struct ck_store *st, int64_t tenant_id, int64_t job_id,
                              const char *name, char **content_type, uint8_t **data, size_t *len,
                              ck_error *err)
{
    struct artifact a = {0};
    if (job_visible(st, tenant_id, job_id, err) != 0)
        return -1;
    int rc = ck_sql_query_one(st,
                              "SELECT content_type, data FROM job_artifacts WHERE job_id = ?1 "
                              "AND name = ?2",
                              ARGS(A_INT(job_id), A_TEXT(name)), "reading a job artifact",
                              read_artifact, &a, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "job %lld has no artifact named %s",
                            (long long)job_id, name);
    if (rc < 0)
        return -1;
    *content_type = a.content_type;
    *data = a.data;
    *len = a.len;
    return 0;
}

/* ==== trusted roots ==== */

#define ROOT_SELECT                                                                                \
    "SELECT id, tenant_id, subject, sha256_fingerprint, pem, not_after, created_at FROM roots"

static int read_root(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_root *r = row;
    bool ok = true;
    r->id = sqlite3_column_int64(s, 0);
    r->tenant_id = sqlite3_column_int64(s, 1);
    r->subject = ck_sql_col_text(s, 2, &ok);
    r->sha256_fingerprint = ck_sql_col_text(s, 3, &ok);
    r->pem = ck_sql_col_text(s, 4, &ok);
    r->not_after = sqlite3_column_int64(s, 5);
    r->created_at = sqlite3_column_int64(s, 6);
    if (ok)
        return 0;
    ck_root_free(r);
    return ck_sql_out_of_memory(err);
}

static void free_root_row(void *row)
{
    ck_root_free(row);
}

struct root_new {
    int64_t tenant_id, id, now;
    const struct ck_root *root;
};

static int root_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct root_new *n = ctx;
    const struct ck_root *r = n->root;
    int rc = ck_sql_exec_args(
        st,
        "INSERT INTO roots (tenant_id, subject, sha256_fingerprint, pem, not_after, "
        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ARGS(A_INT(n->tenant_id), A_TEXT(r->subject), A_TEXT(r->sha256_fingerprint), A_TEXT(r->pem),
             A_INT(r->not_after), A_INT(n->now)),
        "adding a trusted root", NULL, err);
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "root_exists",
                            "a root with fingerprint %s (%s) is already trusted",
                            r->sha256_fingerprint, r->subject);
    if (rc != 0)
        return -1;
    n->id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ck_store_root_add(struct ck_store *st, int64_t tenant_id, struct ck_root *root, ck_error *err)
{
    struct root_new n = {.tenant_id = tenant_id, .now = ck_clock_now(), .root = root};
    if (root->subject == NULL || root->sha256_fingerprint == NULL || root->pem == NULL)
        return ck_error_set(err, 400, "invalid_field",
                            "a trusted root needs its subject, fingerprint and PEM");
    if (ck_sql_in_transaction(st, root_insert, &n, err) != 0)
        return -1;
    root->id = n.id;
    root->tenant_id = tenant_id;
    root->created_at = n.now;
    return 0;
}

int ck_store_root_list(struct ck_store *st, int64_t tenant_id, struct ck_root **out, size_t *n,
                       ck_error *err)
{
    return ck_sql_query_all(st, ROOT_SELECT " WHERE tenant_id = ?1 ORDER BY id",
                            ARGS(A_INT(tenant_id)), "listing trusted roots", read_root,
                            free_root_row, sizeof(**out), (void **)out, n, err);
}

struct root_ref {
    int64_t tenant_id, root_id;
};

static int root_remove(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct root_ref *r = ctx;
    int64_t changes = 0;
    if (ck_sql_exec_args(st, "DELETE FROM roots WHERE id = ?1 AND tenant_id = ?2",
                         ARGS(A_INT(r->root_id), A_INT(r->tenant_id)), "deleting a trusted root",
                         &changes, err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no trusted root %lld", (long long)r->root_id);
    return 0;
}

int ck_store_root_delete(struct ck_store *st, int64_t tenant_id, int64_t root_id, ck_error *err)
{
    struct root_ref r = {.tenant_id = tenant_id, .root_id = root_id};
    return ck_sql_in_transaction(st, root_remove, &r, err);
}

void ck_root_array_free(struct ck_root *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_root_free(&a[i]);
    free(a);
}
