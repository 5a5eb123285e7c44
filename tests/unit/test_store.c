#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "temp_store.h"

/* Every test gets a fresh database in its own temporary folder. */
struct fixture {
    struct temp_store db;
};

static int teardown(void **state)
{
    struct fixture *f = *state;
    temp_store_remove(&f->db);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || temp_store_open(&f->db, "store") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Runs one statement on a second, raw connection (to look behind the store's back); returns the
 * first column of the first row as an integer, or -1. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t value = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            value = sqlite3_column_int64(s, 0);
        else if (rc == SQLITE_DONE)
            value = sqlite3_changes(db);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return value;
}

static int64_t make_tenant(struct ck_store *st, const char *name)
{
    struct ck_tenant t = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_tenant_create(st, name, &t, &err), 0);
    int64_t id = t.id;
    ck_tenant_free(&t);
    return id;
}

/* An enrollment with every field set. */
static void fill_enrollment(struct ck_enrollment *e, int64_t tenant_id, const char *name)
{
    char cn[128];
    snprintf(cn, sizeof(cn), "%s.example.com", name);
    memset(e, 0, sizeof(*e));
    e->tenant_id = tenant_id;
    e->name = strdup(name);
    e->cn = strdup(cn);
    assert_int_equal(ck_strv_push(&e->sans, cn), 0);
    assert_int_equal(ck_strv_push(&e->sans, "www.example.com"), 0);
    e->subject.o = strdup("Example Ltd");
    e->subject.ou = strdup("Web \"team\"");
    e->subject.l = strdup("Paris");
    e->subject.st = strdup("Île-de-France");
    e->subject.c = strdup("FR");
    e->key_type = CK_KEY_EC_P384;
    e->validation = CK_VALIDATION_OV;
    e->issuer = strdup("manual");
    assert_int_equal(ck_strv_push(&e->contacts, "ops@example.com"), 0);
    assert_int_equal(ck_strv_push(&e->contacts, "sec@example.com"), 0);
    e->policy.lifetime = strdup("90d");
    e->policy.renew_before = strdup("33%");
    e->policy.deploy_before = strdup("7d");
    e->policy.always_test_on_staging = true;
}

static int64_t make_enrollment(struct ck_store *st, int64_t tenant_id, const char *name)
{
    struct ck_enrollment e;
    ck_error err = {0};
    fill_enrollment(&e, tenant_id, name);
    assert_int_equal(ck_store_enrollment_create(st, &e, &err), 0);
    int64_t id = e.id;
    ck_enrollment_free(&e);
    return id;
}

static void make_order(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                       int64_t *order_id, int64_t *job_id)
{
    ck_error err = {0};
    assert_int_equal(ck_store_order_create(st, tenant_id, enrollment_id, order_id, job_id, &err),
                     0);
}

static void assert_error(int rc, const ck_error *err, int status, const char *code)
{
    assert_int_equal(rc, -1);
    assert_int_equal(err->status, status);
    assert_string_equal(err->code, code);
}

static void assert_optional_string(const char *actual, const char *expected)
{
    if (expected == NULL)
        assert_null(actual);
    else
        assert_string_equal(actual, expected);
}

/* ---- opening and migrations ---- */

static void test_migrations_apply_once(void **state)
{
    struct fixture *f = *state;
    size_t count;
    ck_store_migrations(&count);
    assert_int_equal(ck_store_schema_version(f->db.st), (int)count);
    ck_store_close(f->db.st);
    f->db.st = NULL;
    ck_error err = {0};
    assert_int_equal(ck_store_open(f->db.path, &f->db.st, &err), 0);
    assert_int_equal(ck_store_schema_version(f->db.st), (int)count);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM schema_migrations"), (int64_t)count);
    /* The operator tenant was inserted once, as id 1. */
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM tenants"), 1);
    struct ck_tenant t = {0};
    assert_int_equal(ck_store_tenant_get(f->db.st, CK_OPERATOR_TENANT_NAME, &t, &err), 0);
    assert_int_equal(t.id, CK_OPERATOR_TENANT_ID);
    assert_true(t.created_at > 0);
    ck_tenant_free(&t);
}

static void test_newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    ck_store_close(f->db.st);
    f->db.st = NULL;
    assert_int_equal(
        raw_int(f->db.path, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)"),
        1);
    ck_error err = {0};
    assert_error(ck_store_open(f->db.path, &f->db.st, &err), &err, 500, "storage_failed");
    assert_non_null(strstr(err.message, "upgrade certkeep"));
    assert_null(f->db.st);
}

static void test_file_is_private_and_wal(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->db.path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char wal[sizeof(f->db.path) + 8];
    snprintf(wal, sizeof(wal), "%s-wal", f->db.path);
    if (stat(wal, &sb) == 0)
        assert_int_equal(sb.st_mode & 0777, 0600);
    /* The journal mode is stored in the file: a fresh connection sees it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(f->db.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_open_order_states_match_the_model(void **state)
{
    (void)state;
    for (int s = 0; s < CK_ORDER_STATE_COUNT; s++) {
        char quoted[40];
        snprintf(quoted, sizeof(quoted), "'%s'", ck_order_state_name(s));
        assert_int_equal(strstr(CK_STORE_OPEN_ORDER_STATES, quoted) != NULL,
                         ck_order_state_is_open(s));
    }
}

/* ---- tenants and tokens ---- */

static void test_tenants(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    struct ck_tenant t = {0};
    assert_int_equal(ck_store_tenant_create(f->db.st, "acme", &t, &err), 0);
    assert_true(t.id > CK_OPERATOR_TENANT_ID);
    assert_string_equal(t.name, "acme");
    assert_true(t.created_at > 0);
    ck_tenant_free(&t);

    assert_error(ck_store_tenant_create(f->db.st, "acme", &t, &err), &err, 409, "tenant_exists");
    assert_non_null(strstr(err.message, "acme"));
    assert_error(ck_store_tenant_get(f->db.st, "nobody", &t, &err), &err, 404, "not_found");

    struct ck_tenant *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_tenant_list(f->db.st, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "acme");
    assert_string_equal(list[1].name, CK_OPERATOR_TENANT_NAME);
    ck_tenant_array_free(list, n);
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t acme = make_tenant(f->db.st, "acme");
    uint8_t hash_op[32], hash_acme[32], unknown[32];
    memset(hash_op, 1, 32);
    memset(hash_acme, 2, 32);
    memset(unknown, 3, 32);

    struct ck_token t = {0};
    assert_int_equal(ck_store_token_create(f->db.st, CK_OPERATOR_TENANT_ID, CK_ROLE_ADMIN, "init",
                                           hash_op, &t, &err),
                     0);
    int64_t op_token = t.id;
    ck_token_free(&t);
    assert_int_equal(
        ck_store_token_create(f->db.st, acme, CK_ROLE_EDITOR, "ci", hash_acme, &t, &err), 0);
    assert_string_equal(t.tenant_name, "acme");
    assert_int_equal(t.role, CK_ROLE_EDITOR);
    int64_t acme_token = t.id;
    ck_token_free(&t);
    assert_error(ck_store_token_create(f->db.st, 999, CK_ROLE_VIEWER, NULL, unknown, &t, &err),
                 &err, 404, "not_found");

    assert_int_equal(ck_store_token_lookup(f->db.st, hash_acme, &t, &err), 0);
    assert_int_equal(t.id, acme_token);
    assert_int_equal(t.tenant_id, acme);
    assert_string_equal(t.name, "ci");
    assert_true(t.created_at > 0);
    ck_token_free(&t);
    assert_error(ck_store_token_lookup(f->db.st, unknown, &t, &err), &err, 401, "invalid_token");

    struct ck_token *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_token_list(f->db.st, acme, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, acme_token);
    ck_token_array_free(list, n);

    /* Another tenant's token does not exist for acme. */
    assert_error(ck_store_token_delete(f->db.st, acme, op_token, &err), &err, 404, "not_found");
    assert_int_equal(ck_store_token_lookup(f->db.st, hash_op, &t, &err), 0);
    ck_token_free(&t);
    assert_int_equal(ck_store_token_delete(f->db.st, acme, acme_token, &err), 0);
    assert_error(ck_store_token_lookup(f->db.st, hash_acme, &t, &err), &err, 401, "invalid_token");
}

/* ---- enrollments ---- */

static void assert_enrollment_equal(const struct ck_enrollment *a, const struct ck_enrollment *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->tenant_id, b->tenant_id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->cn, b->cn);
    assert_int_equal(a->sans.len, b->sans.len);
    for (size_t i = 0; i < a->sans.len; i++)
        assert_string_equal(a->sans.items[i], b->sans.items[i]);
    assert_optional_string(a->subject.o, b->subject.o);
    assert_optional_string(a->subject.ou, b->subject.ou);
    assert_optional_string(a->subject.l, b->subject.l);
    assert_optional_string(a->subject.st, b->subject.st);
    assert_optional_string(a->subject.c, b->subject.c);
    assert_int_equal(a->key_type, b->key_type);
    assert_int_equal(a->validation, b->validation);
    assert_string_equal(a->issuer, b->issuer);
    assert_int_equal(a->contacts.len, b->contacts.len);
    for (size_t i = 0; i < a->contacts.len; i++)
        assert_string_equal(a->contacts.items[i], b->contacts.items[i]);
    assert_optional_string(a->policy.lifetime, b->policy.lifetime);
    assert_optional_string(a->policy.renew_before, b->policy.renew_before);
    assert_optional_string(a->policy.deploy_before, b->policy.deploy_before);
    assert_int_equal(a->policy.always_test_on_staging, b->policy.always_test_on_staging);
    assert_int_equal(a->staging_order_id, b->staging_order_id);
    assert_int_equal(a->production_order_id, b->production_order_id);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
}

static void test_enrollment_round_trip(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    struct ck_enrollment e, got = {0};
    fill_enrollment(&e, CK_OPERATOR_TENANT_ID, "shop");
    assert_int_equal(ck_store_enrollment_create(f->db.st, &e, &err), 0);
    assert_true(e.id > 0);
    assert_true(e.created_at > 0 && e.updated_at == e.created_at);
    assert_int_equal(ck_store_enrollment_get(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &got, &err),
                     0);
    assert_enrollment_equal(&got, &e);
    ck_enrollment_free(&got);

    /* Update: fewer SANs, no contacts, cleared subject and policy fields. */
    ck_strv_free(&e.sans);
    ck_strv_free(&e.contacts);
    assert_int_equal(ck_strv_push(&e.sans, "shop.example.com"), 0);
    free(e.subject.ou);
    e.subject.ou = NULL;
    free(e.policy.lifetime);
    e.policy.lifetime = NULL;
    e.policy.always_test_on_staging = false;
    e.key_type = CK_KEY_RSA_3072;
    assert_int_equal(ck_store_enrollment_update(f->db.st, &e, &err), 0);
    assert_int_equal(ck_store_enrollment_get(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &got, &err),
                     0);
    assert_enrollment_equal(&got, &e);
    assert_int_equal(got.contacts.len, 0);
    ck_enrollment_free(&got);

    struct ck_enrollment dup;
    fill_enrollment(&dup, CK_OPERATOR_TENANT_ID, "shop");
    assert_error(ck_store_enrollment_create(f->db.st, &dup, &err), &err, 409, "enrollment_exists");
    assert_int_equal(dup.id, 0);
    ck_enrollment_free(&dup);

    make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "api");
    struct ck_enrollment *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_enrollment_list(f->db.st, CK_OPERATOR_TENANT_ID, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "api");
    assert_string_equal(list[1].name, "shop");
    assert_enrollment_equal(&list[1], &e);
    ck_enrollment_array_free(list, n);

    assert_int_equal(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), 0);
    assert_error(ck_store_enrollment_get(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &got, &err), &err,
                 404, "not_found");
    assert_string_equal(err.message, "no enrollment named shop");
    assert_error(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), &err,
                 404, "not_found");
    ck_enrollment_free(&e);
}

static void test_tenant_isolation(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t a = make_tenant(f->db.st, "tenant-a"), b = make_tenant(f->db.st, "tenant-b");
    int64_t shop = make_enrollment(f->db.st, a, "shop");
    int64_t order, job;
    make_order(f->db.st, a, shop, &order, &job);

    struct ck_enrollment e = {0};
    assert_error(ck_store_enrollment_get(f->db.st, b, "shop", &e, &err), &err, 404, "not_found");
    struct ck_enrollment *enrollments = NULL;
    size_t n = 1;
    assert_int_equal(ck_store_enrollment_list(f->db.st, b, &enrollments, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_enrollment_array_free(enrollments, n);

    fill_enrollment(&e, b, "shop");
    e.id = shop; /* A's enrollment, addressed as B */
    assert_error(ck_store_enrollment_update(f->db.st, &e, &err), &err, 404, "not_found");
    assert_error(ck_store_enrollment_delete(f->db.st, b, "shop", &err), &err, 404, "not_found");
    int64_t o2, j2;
    assert_error(ck_store_order_create(f->db.st, b, shop, &o2, &j2, &err), &err, 404, "not_found");
    /* B may use the same name for its own enrollment. */
    e.id = 0;
    assert_int_equal(ck_store_enrollment_create(f->db.st, &e, &err), 0);
    ck_enrollment_free(&e);

    struct ck_order o = {0};
    assert_error(ck_store_order_get(f->db.st, b, order, &o, &err), &err, 404, "not_found");
    assert_string_equal(err.message, "no order 1");
    assert_error(ck_store_order_cancel(f->db.st, b, order, &err), &err, 404, "not_found");
    struct ck_order *orders = NULL;
    assert_int_equal(ck_store_order_list(f->db.st, b, NULL, &orders, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_order_array_free(orders, n);

    struct ck_job j = {0};
    assert_error(ck_store_job_get(f->db.st, b, job, &j, &err), &err, 404, "not_found");
    struct ck_job *jobs = NULL;
    const struct ck_job_filter all = {.state = -1, .type = -1};
    assert_int_equal(ck_store_job_list(f->db.st, b, &all, &jobs, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_job_array_free(jobs, n);
    struct ck_job_log_line *lines = NULL;
    assert_error(ck_store_job_log_lines(f->db.st, b, job, &lines, &n, &err), &err, 404,
                 "not_found");
    char *type = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_error(ck_store_job_artifact_get(f->db.st, b, job, "csr", &type, &data, &len, &err), &err,
                 404, "not_found");
    /* A still sees everything. */
    assert_int_equal(ck_store_order_get(f->db.st, a, order, &o, &err), 0);
    ck_order_free(&o);
    assert_int_equal(ck_store_job_get(f->db.st, a, job, &j, &err), 0);
    ck_job_free(&j);
}

/* ---- orders ---- */

static void test_order_create_queues_csr_job(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);

    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_NEW);
    assert_int_equal(o.enrollment_id, shop);
    assert_string_equal(o.enrollment_name, "shop");
    assert_int_equal(o.key_type, CK_KEY_EC_P384);
    assert_null(o.sealed_key);
    assert_null(o.csr_pem);
    assert_null(o.error);
    ck_order_free(&o);

    struct ck_job j = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), 0);
    assert_int_equal(j.type, CK_JOB_CSR);
    assert_int_equal(j.state, CK_JOB_QUEUED);
    assert_int_equal(j.order_id, order);
    assert_int_equal(j.enrollment_id, shop);
    assert_string_equal(j.enrollment_name, "shop");
    assert_true(j.created_at > 0);
    assert_int_equal(j.started_at, 0);
    assert_int_equal(j.artifacts.len, 0);
    ck_job_free(&j);

    int64_t o2, j2;
    assert_error(ck_store_order_create(f->db.st, CK_OPERATOR_TENANT_ID, 999, &o2, &j2, &err), &err,
                 404, "not_found");
}

static void test_second_order_conflicts_until_cancel(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job, o2 = 0, j2 = 0;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);

    assert_error(ck_store_order_create(f->db.st, CK_OPERATOR_TENANT_ID, shop, &o2, &j2, &err), &err,
                 409, "order_open");
    char expected[128];
    snprintf(expected, sizeof(expected),
             "enrollment shop already has open order %lld (new); cancel it first",
             (long long)order);
    assert_string_equal(err.message, expected);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM orders"), 1);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM jobs"), 1);

    /* The unique index alone refuses a second open order (a writer that skipped the check). */
    assert_int_equal(raw_int(f->db.path, "INSERT INTO orders (tenant_id, enrollment_id, state, "
                                         "key_type, created_at, updated_at) "
                                         "VALUES (1, 1, 'staged', 'ec-p256', 0, 0)"),
                     -1);
    assert_int_equal(raw_int(f->db.path, "INSERT INTO orders (tenant_id, enrollment_id, state, "
                                         "key_type, created_at, updated_at) "
                                         "VALUES (1, 1, 'deployed', 'ec-p256', 0, 0)"),
                     1);

    assert_int_equal(ck_store_order_cancel(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), 0);
    struct ck_job j = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), 0);
    assert_int_equal(j.state, CK_JOB_FAILED);
    assert_string_equal(j.error, "order cancelled");
    assert_true(j.finished_at > 0);
    ck_job_free(&j);
    assert_error(ck_store_order_cancel(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), &err, 409,
                 "order_closed");

    assert_int_equal(ck_store_order_create(f->db.st, CK_OPERATOR_TENANT_ID, shop, &o2, &j2, &err),
                     0);
    assert_true(o2 > order && j2 > job);

    struct ck_order *orders = NULL;
    size_t n = 0;
    const struct ck_order_filter open_only = {.enrollment = "shop", .state = CK_ORDER_NEW};
    assert_int_equal(ck_store_order_list(f->db.st, CK_OPERATOR_TENANT_ID, NULL, &orders, &n, &err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(orders[0].id, o2); /* newest first */
    assert_int_equal(orders[1].state, CK_ORDER_DEPLOYED);
    assert_int_equal(orders[2].state, CK_ORDER_CANCELLED);
    ck_order_array_free(orders, n);
    assert_int_equal(
        ck_store_order_list(f->db.st, CK_OPERATOR_TENANT_ID, &open_only, &orders, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(orders[0].id, o2);
    ck_order_array_free(orders, n);
}

static const char csr_pem[] =
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIBfake\n-----END CERTIFICATE REQUEST-----\n";
static const uint8_t sealed[] = {0x01, 0x00, 0xfe, 0x42, 0x00, 0x17};

static void claim(struct ck_store *st, int64_t expected_job)
{
    struct ck_job j = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_job_claim(st, "worker-1", 300, &j, &err), 1);
    assert_int_equal(j.id, expected_job);
    assert_int_equal(j.state, CK_JOB_RUNNING);
    assert_true(j.started_at > 0);
    ck_job_free(&j);
}

static void test_csr_ready(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);
    claim(f->db.st, job);
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, order, job, sealed, sizeof(sealed), csr_pem, NULL, &err),
        0);

    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_CSR_READY);
    assert_int_equal(o.sealed_key_len, sizeof(sealed));
    assert_memory_equal(o.sealed_key, sealed, sizeof(sealed));
    assert_string_equal(o.csr_pem, csr_pem);
    ck_order_free(&o);

    struct ck_job j = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), 0);
    assert_int_equal(j.state, CK_JOB_FINISHED);
    assert_true(j.finished_at >= j.started_at);
    assert_int_equal(j.artifacts.len, 1);
    assert_string_equal(j.artifacts.items[0], "csr");
    ck_job_free(&j);

    char *type = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ck_store_job_artifact_get(f->db.st, CK_OPERATOR_TENANT_ID, job, "csr", &type,
                                               &data, &len, &err),
                     0);
    assert_string_equal(type, "application/pkcs10");
    assert_int_equal(len, strlen(csr_pem));
    assert_memory_equal(data, csr_pem, len);
    free(type);
    free(data);
    assert_error(ck_store_job_artifact_get(f->db.st, CK_OPERATOR_TENANT_ID, job, "key", &type,
                                           &data, &len, &err),
                 &err, 404, "not_found");

    /* A second commit (a job that ran twice) changes nothing. */
    assert_error(ck_store_order_csr_ready(f->db.st, order, job, sealed, 2, "other", NULL, &err),
                 &err, 409, "order_not_new");
    assert_int_equal(ck_store_job_finish(f->db.st, job, NULL, CK_JOB_FAILED, "late", &err), -1);
    assert_string_equal(err.code, "job_closed");
}

static void test_csr_ready_after_cancel_changes_nothing(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);
    claim(f->db.st, job);
    assert_int_equal(ck_store_order_cancel(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), 0);
    assert_error(
        ck_store_order_csr_ready(f->db.st, order, job, sealed, sizeof(sealed), csr_pem, NULL, &err),
        &err, 409, "order_not_new");
    assert_non_null(strstr(err.message, "cancelled"));

    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_CANCELLED);
    assert_null(o.sealed_key);
    assert_null(o.csr_pem);
    ck_order_free(&o);
    struct ck_job j = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), 0);
    assert_int_equal(j.state, CK_JOB_FAILED);
    assert_int_equal(j.artifacts.len, 0);
    ck_job_free(&j);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM job_artifacts"), 0);
}

static void test_order_fail(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);
    assert_int_equal(ck_store_order_fail(f->db.st, order, "key generation failed", &err), 0);
    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_FAILED);
    assert_string_equal(o.error, "key generation failed");
    ck_order_free(&o);
    assert_error(ck_store_order_fail(f->db.st, order, "again", &err), &err, 409, "order_closed");
    assert_error(ck_store_order_fail(f->db.st, 999, "x", &err), &err, 404, "not_found");
    /* A failed order no longer blocks a new one. */
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);
}

/* ---- jobs ---- */

#define CLAIM_JOBS 20

struct claimer {
    const char *path;
    pthread_barrier_t *start;
    int64_t ids[CLAIM_JOBS + 1];
    size_t count;
    int failed;
};

static void *claim_all(void *arg)
{
    struct claimer *c = arg;
    struct ck_store *st = NULL;
    ck_error err = {0};
    if (ck_store_open(c->path, &st, &err) != 0) {
        c->failed = 1;
        pthread_barrier_wait(c->start);
        return NULL;
    }
    /* Both connections are open before either claims, so they really race. */
    pthread_barrier_wait(c->start);
    for (int i = 0; i < CLAIM_JOBS + 1; i++) {
        struct ck_job j = {0};
        int rc = ck_store_job_claim(st, "racer", 300, &j, &err);
        if (rc < 0)
            c->failed = 1;
        if (rc != 1)
            break;
        c->ids[c->count++] = j.id;
        ck_job_free(&j);
    }
    ck_store_close(st);
    return NULL;
}

static void test_job_claim_from_two_connections(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < CLAIM_JOBS; i++) {
        char name[16];
        int64_t order, job;
        snprintf(name, sizeof(name), "e%02d", i);
        make_order(f->db.st, CK_OPERATOR_TENANT_ID,
                   make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, name), &order, &job);
    }
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    struct claimer c[2] = {{.path = f->db.path, .start = &start},
                           {.path = f->db.path, .start = &start}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, claim_all, &c[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    assert_false(c[0].failed || c[1].failed);
    assert_int_equal(c[0].count + c[1].count, CLAIM_JOBS);
    int seen[CLAIM_JOBS + 1] = {0};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < c[t].count; i++) {
            assert_in_range(c[t].ids[i], 1, CLAIM_JOBS);
            assert_int_equal(seen[c[t].ids[i]]++, 0);
        }
    struct ck_job j = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_job_claim(f->db.st, "late", 300, &j, &err), 0);
}

static void test_expired_lease_is_reclaimed(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID,
               make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop"), &order, &job);
    claim(f->db.st, job);
    struct ck_job j = {0};
    assert_int_equal(ck_store_job_claim(f->db.st, "worker-2", 300, &j, &err), 0);

    /* The first worker died: its lease ran out. Another connection takes the job over. */
    assert_int_equal(raw_int(f->db.path, "UPDATE jobs SET lease_until = lease_until - 600"), 1);
    struct ck_store *other = NULL;
    assert_int_equal(ck_store_open(f->db.path, &other, &err), 0);
    assert_int_equal(ck_store_job_claim(other, "worker-2", 300, &j, &err), 1);
    assert_int_equal(j.id, job);
    assert_int_equal(j.state, CK_JOB_RUNNING);
    assert_string_equal(j.worker, "worker-2");
    ck_job_free(&j);
    assert_int_equal(ck_store_job_claim(other, "worker-3", 300, &j, &err), 0);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM jobs WHERE worker = 'worker-2'"), 1);

    /* The first worker was only slow: its results are refused, the job stays the second's. */
    uint8_t key_blob[] = {1, 2, 3};
    assert_error(ck_store_job_renew(f->db.st, job, "worker-1", 300, &err), &err, 409, "lease_lost");
    assert_error(ck_store_order_csr_ready_then(f->db.st, order, job, "worker-1", key_blob,
                                               sizeof(key_blob), "CSR", NULL, NULL, &err),
                 &err, 409, "lease_lost");
    assert_error(ck_store_job_finish(f->db.st, job, "worker-1", CK_JOB_FAILED, "late", &err), &err,
                 409, "lease_lost");
    const struct ck_job_end late = {.worker = "worker-1", .state = CK_JOB_FINISHED};
    assert_error(ck_store_job_end(f->db.st, job, &late, &err), &err, 409, "lease_lost");
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM jobs WHERE state = 'running'"), 1);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM orders WHERE state = 'new'"), 1);

    /* A renewed lease keeps the job from being taken over, even after its first term. */
    assert_int_equal(raw_int(f->db.path, "UPDATE jobs SET lease_until = lease_until - 600"), 1);
    assert_int_equal(ck_store_job_renew(other, job, "worker-2", 300, &err), 0);
    assert_int_equal(ck_store_job_claim(f->db.st, "worker-3", 300, &j, &err), 0);
    assert_int_equal(ck_store_job_finish(other, job, "worker-2", CK_JOB_FINISHED, NULL, &err), 0);
    assert_error(ck_store_job_renew(other, job, "worker-2", 300, &err), &err, 409, "lease_lost");
    assert_error(ck_store_job_renew(other, job, NULL, 300, &err), &err, 400, "invalid_field");
    ck_store_close(other);
}

static void test_job_logs_and_filters(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t api = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "api");
    int64_t shop_order, shop_job, api_order, api_job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &shop_order, &shop_job);
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, api, &api_order, &api_job);
    claim(f->db.st, shop_job);
    assert_int_equal(ck_store_job_log(f->db.st, shop_job, "info", "generated ec-p384 key", &err),
                     0);
    assert_int_equal(ck_store_job_log(f->db.st, shop_job, "warn", "slow entropy", &err), 0);
    assert_error(ck_store_job_log(f->db.st, shop_job, "debug", "x", &err), &err, 400,
                 "invalid_field");
    assert_error(ck_store_job_log(f->db.st, 999, "info", "x", &err), &err, 404, "not_found");
    assert_int_equal(ck_store_job_finish(f->db.st, shop_job, NULL, CK_JOB_FINISHED, NULL, &err), 0);

    struct ck_job_log_line *lines = NULL;
    size_t n = 0;
    assert_int_equal(
        ck_store_job_log_lines(f->db.st, CK_OPERATOR_TENANT_ID, shop_job, &lines, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(lines[0].level, "info");
    assert_string_equal(lines[0].message, "generated ec-p384 key");
    assert_string_equal(lines[1].level, "warn");
    assert_true(lines[0].at > 0);
    ck_job_log_lines_free(lines, n);

    struct {
        struct ck_job_filter filter;
        size_t count;
        int64_t first;
    } cases[] = {
        {{.state = -1, .type = -1}, 2, api_job},
        {{.state = CK_JOB_FINISHED, .type = -1}, 1, shop_job},
        {{.state = CK_JOB_QUEUED, .type = -1}, 1, api_job},
        {{.state = CK_JOB_RUNNING, .type = -1}, 0, 0},
        {{.state = -1, .type = CK_JOB_CSR}, 2, api_job},
        {{.state = -1, .type = -1, .enrollment = "shop"}, 1, shop_job},
        {{.state = -1, .type = -1, .enrollment = "nope"}, 0, 0},
        {{.state = -1, .type = -1, .order_id = api_order}, 1, api_job},
        {{.state = CK_JOB_QUEUED, .type = -1, .enrollment = "shop"}, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ck_job *jobs = NULL;
        assert_int_equal(
            ck_store_job_list(f->db.st, CK_OPERATOR_TENANT_ID, &cases[i].filter, &jobs, &n, &err),
            0);
        assert_int_equal(n, cases[i].count);
        if (n > 0)
            assert_int_equal(jobs[0].id, cases[i].first);
        ck_job_array_free(jobs, n);
    }
    assert_error(ck_store_job_finish(f->db.st, shop_job, NULL, CK_JOB_QUEUED, NULL, &err), &err,
                 400, "invalid_field");
}

static void test_enrollment_delete_with_orders(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);
    claim(f->db.st, job);
    assert_int_equal(ck_store_job_log(f->db.st, job, "info", "started", &err), 0);
    const struct ck_event_new ev = {.type = "certificate_needed", .message = "buy one"};
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, order, job, sealed, sizeof(sealed), csr_pem, &ev, &err),
        0);

    assert_error(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), &err,
                 409, "order_open");
    assert_non_null(strstr(err.message, "csr_ready"));
    struct ck_enrollment e = {0};
    assert_int_equal(ck_store_enrollment_get(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &e, &err), 0);
    ck_enrollment_free(&e);

    assert_int_equal(ck_store_order_cancel(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), 0);
    assert_int_equal(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), 0);
    struct ck_order o = {0};
    assert_error(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), &err, 404,
                 "not_found");
    struct ck_job j = {0};
    assert_error(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), &err, 404,
                 "not_found");
    assert_int_equal(raw_int(f->db.path, "SELECT (SELECT COUNT(*) FROM orders) + "
                                         "(SELECT COUNT(*) FROM jobs) + "
                                         "(SELECT COUNT(*) FROM job_logs) + "
                                         "(SELECT COUNT(*) FROM job_artifacts) + "
                                         "(SELECT COUNT(*) FROM events)"),
                     0);
}

/* ---- issue 3: migration 2 ---- */

static int setup_no_store(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || temp_store_folder(&f->db, "store") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* A database as a certkeep that knew only migration 1 left it, with an order in it. */
static void write_version_1_database(const char *path)
{
    size_t count;
    const char *const *scripts = ck_store_migrations(&count);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                                  "applied_at INTEGER NOT NULL);"
                                  "INSERT INTO schema_migrations VALUES (1, 1700000000);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, scripts[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO enrollments (tenant_id, name, cn, sans, key_type, "
                                  "validation, issuer, contacts, created_at, updated_at) VALUES "
                                  "(1, 'old', 'old.example.com', '[\"old.example.com\"]', "
                                  "'ec-p256', 'dv', 'manual', '[]', 5, 5);"
                                  "INSERT INTO orders (tenant_id, enrollment_id, state, key_type, "
                                  "csr_pem, created_at, updated_at) "
                                  "VALUES (1, 1, 'csr_ready', 'ec-p256', 'CSR', 5, 5);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

static void test_migration_2_upgrades_version_1(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    size_t count;
    ck_store_migrations(&count);
    write_version_1_database(f->db.path);
    assert_int_equal(ck_store_open(f->db.path, &f->db.st, &err), 0);
    assert_int_equal(ck_store_schema_version(f->db.st), (int)count);

    /* The old order reads with the new fields at their defaults. */
    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, 1, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_CSR_READY);
    assert_string_equal(o.csr_pem, "CSR");
    assert_false(o.csr_uploaded);
    assert_null(o.cert_pem);
    assert_null(o.chain_pem);
    assert_null(o.findings_json);
    assert_int_equal(o.cert_not_after, 0);
    ck_order_free(&o);

    /* The new tables work on the upgraded database. */
    const struct ck_event_new ev = {.type = "certificate_needed", .order_id = 1, .message = "buy"};
    int64_t event_id = 0;
    assert_int_equal(ck_store_event_add(f->db.st, CK_OPERATOR_TENANT_ID, &ev, &event_id, &err), 0);
    assert_true(event_id > 0);
    struct ck_root root = {.subject = "CN=Old Root", .sha256_fingerprint = "AA", .pem = "PEM"};
    assert_int_equal(ck_store_root_add(f->db.st, CK_OPERATOR_TENANT_ID, &root, &err), 0);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM schema_migrations"), (int64_t)count);
}

static void test_fresh_database_has_migration_2(void **state)
{
    struct fixture *f = *state;
    assert_true(ck_store_schema_version(f->db.st) >= 2);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' "
                                         "AND name = 'events_poll'"),
                     1);
}

/* ---- issue 3: orders with events, uploaded CSRs, transitions ---- */

static int64_t count_rows(const struct fixture *f, const char *table)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    return raw_int(f->db.path, sql);
}

static void test_csr_ready_adds_its_event(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order, job;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, shop, &order, &job);
    claim(f->db.st, job);
    const struct ck_event_new ev = {.type = "certificate_needed",
                                    .message = "The CSR for shop is ready: buy a certificate.",
                                    .data_json = "{\"cn\": \"shop.example.com\"}"};
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, order, job, sealed, sizeof(sealed), csr_pem, &ev, &err),
        0);
    assert_int_equal(count_rows(f, "events"), 1);

    struct ck_event got = {0};
    int64_t remaining = -1;
    assert_int_equal(ck_store_event_poll(f->db.st, CK_OPERATOR_TENANT_ID, &got, &remaining, &err),
                     1);
    assert_int_equal(remaining, 0);
    assert_int_equal(got.tenant_id, CK_OPERATOR_TENANT_ID);
    assert_string_equal(got.type, "certificate_needed");
    assert_string_equal(got.message, ev.message);
    assert_string_equal(got.data_json, ev.data_json); /* stored as given */
    /* An event without an order is about the order that changed, and its enrollment. */
    assert_int_equal(got.order_id, order);
    assert_int_equal(got.enrollment_id, shop);
    assert_string_equal(got.enrollment_name, "shop");
    assert_true(got.created_at > 0);
    assert_int_equal(got.confirmed_at, 0);
    ck_event_free(&got);

    /* A refused commit adds no event either. */
    assert_error(
        ck_store_order_csr_ready(f->db.st, order, job, sealed, sizeof(sealed), csr_pem, &ev, &err),
        &err, 409, "order_not_new");
    assert_int_equal(count_rows(f, "events"), 1);
}

static void test_order_create_from_csr(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    const struct ck_event_new ev = {.type = "certificate_needed", .message = "buy one"};
    int64_t order = 0, job = 0;
    assert_int_equal(ck_store_order_create_from_csr(f->db.st, CK_OPERATOR_TENANT_ID, shop,
                                                    CK_KEY_RSA_2048, csr_pem, &ev, &order, &job,
                                                    &err),
                     0);

    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_CSR_READY);
    assert_true(o.csr_uploaded);
    assert_null(o.sealed_key);
    assert_int_equal(o.sealed_key_len, 0);
    assert_string_equal(o.csr_pem, csr_pem);
    assert_int_equal(o.key_type, CK_KEY_RSA_2048); /* the CSR's, not the enrollment's */
    ck_order_free(&o);

    struct ck_job j = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), 0);
    assert_int_equal(j.type, CK_JOB_CSR);
    assert_int_equal(j.state, CK_JOB_FINISHED);
    assert_int_equal(j.order_id, order);
    assert_true(j.started_at > 0 && j.finished_at >= j.started_at);
    assert_int_equal(j.artifacts.len, 1);
    assert_string_equal(j.artifacts.items[0], "csr");
    ck_job_free(&j);
    char *type = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ck_store_job_artifact_get(f->db.st, CK_OPERATOR_TENANT_ID, job, "csr", &type,
                                               &data, &len, &err),
                     0);
    assert_string_equal(type, "application/pkcs10");
    assert_int_equal(len, strlen(csr_pem));
    assert_memory_equal(data, csr_pem, len);
    free(type);
    free(data);
    struct ck_job_log_line *lines = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_job_log_lines(f->db.st, CK_OPERATOR_TENANT_ID, job, &lines, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(lines[0].level, "info");
    assert_string_equal(lines[0].message, "CSR uploaded");
    ck_job_log_lines_free(lines, n);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM events WHERE order_id = 1 "
                                         "AND type = 'certificate_needed'"),
                     1);
    /* The finished csr job leaves the job runner nothing to do. */
    assert_int_equal(ck_store_job_claim(f->db.st, "worker-1", 300, &j, &err), 0);

    /* A second order, uploaded or generated, waits until this one is closed. */
    int64_t o2 = 0, j2 = 0;
    assert_error(ck_store_order_create_from_csr(f->db.st, CK_OPERATOR_TENANT_ID, shop,
                                                CK_KEY_RSA_2048, csr_pem, &ev, &o2, &j2, &err),
                 &err, 409, "order_open");
    assert_non_null(strstr(err.message, "csr_ready"));
    assert_error(ck_store_order_create(f->db.st, CK_OPERATOR_TENANT_ID, shop, &o2, &j2, &err), &err,
                 409, "order_open");
    assert_int_equal(count_rows(f, "orders") + count_rows(f, "jobs") + count_rows(f, "events"), 3);
    assert_error(ck_store_order_create_from_csr(f->db.st, 999, shop, CK_KEY_RSA_2048, csr_pem, NULL,
                                                &o2, &j2, &err),
                 &err, 404, "not_found");
}

/* An order of the operator tenant in csr_ready, from an uploaded CSR, with updated_at zeroed so
 * a test can see whether a write touched it. */
static int64_t make_csr_ready_order(struct fixture *f, int64_t enrollment_id)
{
    ck_error err = {0};
    int64_t order = 0, job = 0;
    assert_int_equal(ck_store_order_create_from_csr(f->db.st, CK_OPERATOR_TENANT_ID, enrollment_id,
                                                    CK_KEY_EC_P256, csr_pem, NULL, &order, &job,
                                                    &err),
                     0);
    assert_int_equal(raw_int(f->db.path, "UPDATE orders SET updated_at = 0"), 1);
    return order;
}

static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n";
static const char chain_pem[] = "-----BEGIN CERTIFICATE-----\nica\n-----END CERTIFICATE-----\n";
static const char findings[] = "{\"errors\":[],\"warnings\":[\"key usage\"]}";

static void test_order_transition(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order = make_csr_ready_order(f, shop);
    const struct ck_order_update update = {.cert_pem = cert_pem,
                                           .chain_pem = chain_pem,
                                           .findings_json = findings,
                                           .cert_not_after = 1900000000};
    const struct ck_event_new ev = {.type = "warnings_to_acknowledge", .message = "1 warning"};
    assert_int_equal(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, order,
                                               CK_ORDER_CSR_READY, CK_ORDER_AWAITING_ACK, &update,
                                               &ev, &err),
                     0);
    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_AWAITING_ACK);
    assert_string_equal(o.cert_pem, cert_pem);
    assert_string_equal(o.chain_pem, chain_pem);
    assert_string_equal(o.findings_json, findings);
    assert_int_equal(o.cert_not_after, 1900000000);
    assert_true(o.updated_at > 0);
    ck_order_free(&o);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM events WHERE order_id = 1 AND "
                                         "type = 'warnings_to_acknowledge' AND enrollment_id = 1"),
                     1);

    /* Without an update or event only the state (and updated_at) changes. */
    assert_int_equal(raw_int(f->db.path, "UPDATE orders SET updated_at = 0"), 1);
    assert_int_equal(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, order,
                                               CK_ORDER_AWAITING_ACK, CK_ORDER_ISSUED, NULL, NULL,
                                               &err),
                     0);
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_ISSUED);
    assert_string_equal(o.cert_pem, cert_pem);
    assert_string_equal(o.findings_json, findings);
    assert_int_equal(o.cert_not_after, 1900000000);
    assert_true(o.updated_at > 0);
    ck_order_free(&o);
    assert_int_equal(count_rows(f, "events"), 1);
}

static void assert_order_untouched(struct fixture *f, int64_t order)
{
    struct ck_order o = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_CSR_READY);
    assert_null(o.cert_pem);
    assert_null(o.chain_pem);
    assert_null(o.findings_json);
    assert_int_equal(o.cert_not_after, 0);
    assert_int_equal(o.updated_at, 0);
    ck_order_free(&o);
    assert_int_equal(count_rows(f, "events"), 0);
}

static void test_order_transition_refused(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order = make_csr_ready_order(f, shop);
    const struct ck_order_update update = {.cert_pem = cert_pem, .cert_not_after = 1900000000};
    const struct ck_event_new ev = {.type = "certificate_issued", .message = "issued"};

    /* Someone else already moved it: 409, and neither the update nor the event is written. */
    assert_error(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, order,
                                           CK_ORDER_AWAITING_ACK, CK_ORDER_ISSUED, &update, &ev,
                                           &err),
                 &err, 409, "order_state_changed");
    assert_non_null(strstr(err.message, "csr_ready"));
    assert_order_untouched(f, order);

    assert_error(ck_store_order_transition(f->db.st, other, order, CK_ORDER_CSR_READY,
                                           CK_ORDER_AWAITING_ACK, &update, &ev, &err),
                 &err, 404, "not_found");
    assert_error(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, 999, CK_ORDER_CSR_READY,
                                           CK_ORDER_AWAITING_ACK, &update, &ev, &err),
                 &err, 404, "not_found");
    assert_order_untouched(f, order);

    /* An event that cannot be written takes the state change back with it. */
    int64_t their = make_enrollment(f->db.st, other, "theirs");
    const struct ck_event_new foreign = {.type = "x", .enrollment_id = their, .message = "m"};
    assert_error(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, order,
                                           CK_ORDER_CSR_READY, CK_ORDER_AWAITING_ACK, &update,
                                           &foreign, &err),
                 &err, 400, "invalid_field");
    assert_order_untouched(f, order);
}

/* ---- issue 3: import jobs ---- */

static void assert_log(struct fixture *f, int64_t job, size_t n_expected,
                       const char *const expected[][2])
{
    struct ck_job_log_line *lines = NULL;
    size_t n = 0;
    ck_error err = {0};
    assert_int_equal(ck_store_job_log_lines(f->db.st, CK_OPERATOR_TENANT_ID, job, &lines, &n, &err),
                     0);
    assert_int_equal(n, n_expected);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(lines[i].level, expected[i][0]);
        assert_string_equal(lines[i].message, expected[i][1]);
    }
    ck_job_log_lines_free(lines, n);
}

static void assert_import_job(struct fixture *f, int64_t job, int64_t order,
                              enum ck_job_state state, const char *error)
{
    struct ck_job j = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, job, &j, &err), 0);
    assert_int_equal(j.type, CK_JOB_IMPORT);
    assert_int_equal(j.state, state);
    assert_int_equal(j.order_id, order);
    assert_string_equal(j.enrollment_name, "shop");
    assert_true(j.finished_at > 0);
    assert_optional_string(j.error, error);
    ck_job_free(&j);
}

static void test_import_job_record(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t order =
        make_csr_ready_order(f, make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop"));
    const char *const refused_levels[] = {"error", "warn"};
    const char *const refused_lines[] = {"the certificate's key is not the CSR's", "no OCSP URL"};
    int64_t refused = 0, accepted = 0;
    assert_int_equal(ck_store_import_job_record(f->db.st, CK_OPERATOR_TENANT_ID, order, false,
                                                refused_levels, refused_lines, 2,
                                                "import refused: 1 error", &refused, &err),
                     0);
    assert_import_job(f, refused, order, CK_JOB_FAILED, "import refused: 1 error");
    const char *const refused_log[][2] = {{"error", "the certificate's key is not the CSR's"},
                                          {"warn", "no OCSP URL"},
                                          {"error", "import refused: 1 error"}};
    assert_log(f, refused, 3, refused_log);
    assert_order_untouched(f, order); /* a refused import changes nothing else */

    const char *const warn_levels[] = {"warn"};
    const char *const warn_lines[] = {"no OCSP URL"};
    assert_int_equal(ck_store_import_job_record(
                         f->db.st, CK_OPERATOR_TENANT_ID, order, true, warn_levels, warn_lines, 1,
                         "certificate accepted with 1 warning", &accepted, &err),
                     0);
    assert_true(accepted > refused);
    assert_import_job(f, accepted, order, CK_JOB_FINISHED, NULL);
    const char *const accepted_log[][2] = {{"warn", "no OCSP URL"},
                                           {"info", "certificate accepted with 1 warning"}};
    assert_log(f, accepted, 2, accepted_log);

    /* Levels are error or warn; other tenants' orders do not exist. Neither adds a job. */
    const char *const info_level[] = {"info"};
    int64_t job = 0;
    assert_error(ck_store_import_job_record(f->db.st, CK_OPERATOR_TENANT_ID, order, true,
                                            info_level, warn_lines, 1, "x", &job, &err),
                 &err, 400, "invalid_field");
    assert_error(
        ck_store_import_job_record(f->db.st, other, order, true, NULL, NULL, 0, "x", &job, &err),
        &err, 404, "not_found");
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM jobs WHERE type = 'import'"), 2);
    const struct ck_job_filter imports = {.state = -1, .type = CK_JOB_IMPORT, .order_id = order};
    struct ck_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_job_list(f->db.st, CK_OPERATOR_TENANT_ID, &imports, &jobs, &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(jobs[0].id, accepted);
    ck_job_array_free(jobs, n);
}

/* ---- issue 3: events ---- */

static int64_t add_event(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                         const char *message)
{
    const struct ck_event_new ev = {.type = "certificate_needed",
                                    .order_id = order_id,
                                    .message = message,
                                    .data_json = "{\"n\":1}"};
    int64_t id = 0;
    ck_error err = {0};
    assert_int_equal(ck_store_event_add(st, tenant_id, &ev, &id, &err), 0);
    return id;
}

static void assert_poll(struct ck_store *st, int64_t tenant_id, int64_t expected_id,
                        int64_t expected_remaining)
{
    struct ck_event ev = {0};
    int64_t remaining = -1;
    ck_error err = {0};
    int rc = ck_store_event_poll(st, tenant_id, &ev, &remaining, &err);
    assert_int_equal(rc, expected_id != 0 ? 1 : 0);
    if (rc == 1) {
        assert_int_equal(ev.id, expected_id);
        assert_int_equal(remaining, expected_remaining);
        assert_int_equal(ev.confirmed_at, 0);
    }
    ck_event_free(&ev);
}

static void test_events_poll_and_confirm(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t b = make_tenant(f->db.st, "tenant-b");
    int64_t order =
        make_csr_ready_order(f, make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop"));
    int64_t e1 = add_event(f->db.st, CK_OPERATOR_TENANT_ID, order, "first");
    int64_t theirs = add_event(f->db.st, b, 0, "b's");
    int64_t e2 = add_event(f->db.st, CK_OPERATOR_TENANT_ID, 0, "second");
    int64_t e3 = add_event(f->db.st, CK_OPERATOR_TENANT_ID, order, "third");

    assert_poll(f->db.st, CK_OPERATOR_TENANT_ID, e1, 2);
    assert_poll(f->db.st, CK_OPERATOR_TENANT_ID, e1, 2); /* polling alone confirms nothing */
    assert_poll(f->db.st, b, theirs, 0);
    assert_int_equal(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, e1, &err), 0);
    assert_poll(f->db.st, CK_OPERATOR_TENANT_ID, e2, 1);
    assert_int_equal(raw_int(f->db.path, "UPDATE events SET confirmed_at = 42 WHERE id = 1"), 1);
    assert_int_equal(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, e1, &err), 0);
    assert_int_equal(raw_int(f->db.path, "SELECT confirmed_at FROM events WHERE id = 1"), 42);

    assert_error(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, theirs, &err), &err, 404,
                 "not_found");
    assert_error(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, 999, &err), &err, 404,
                 "not_found");
    assert_poll(f->db.st, b, theirs, 0);
    assert_int_equal(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, e3, &err), 0);
    assert_int_equal(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, e2, &err), 0);
    assert_poll(f->db.st, CK_OPERATOR_TENANT_ID, 0, 0);

    /* Events must name the tenant's own orders and enrollments, and say something. */
    const struct ck_event_new foreign = {.type = "x", .order_id = order, .message = "m"};
    const struct ck_event_new empty = {.type = "x"};
    int64_t id = 0;
    assert_error(ck_store_event_add(f->db.st, b, &foreign, &id, &err), &err, 404, "not_found");
    assert_error(ck_store_event_add(f->db.st, b, &empty, &id, &err), &err, 400, "invalid_field");
    assert_int_equal(count_rows(f, "events"), 4);
}

static void test_events_list_keeps_history(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t b = make_tenant(f->db.st, "tenant-b");
    int64_t order =
        make_csr_ready_order(f, make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop"));
    int64_t e1 = add_event(f->db.st, CK_OPERATOR_TENANT_ID, order, "first");
    int64_t e2 = add_event(f->db.st, CK_OPERATOR_TENANT_ID, 0, "second");
    int64_t e3 = add_event(f->db.st, CK_OPERATOR_TENANT_ID, order, "third");
    add_event(f->db.st, b, 0, "b's");
    assert_int_equal(ck_store_event_confirm(f->db.st, CK_OPERATOR_TENANT_ID, e1, &err), 0);

    struct ck_event *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_event_list(f->db.st, CK_OPERATOR_TENANT_ID, 0, 10, &list, &n, &err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, e3); /* newest first */
    assert_int_equal(list[1].id, e2);
    assert_int_equal(list[2].id, e1);
    assert_true(list[2].confirmed_at > 0); /* confirmed ones stay as history */
    assert_string_equal(list[2].message, "first");
    assert_string_equal(list[2].data_json, "{\"n\":1}");
    assert_string_equal(list[2].enrollment_name, "shop");
    assert_null(list[1].enrollment_name);
    assert_int_equal(list[1].order_id, 0);
    ck_event_array_free(list, n);

    assert_int_equal(ck_store_event_list(f->db.st, CK_OPERATOR_TENANT_ID, 0, 2, &list, &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(list[1].id, e2);
    ck_event_array_free(list, n);
    assert_int_equal(
        ck_store_event_list(f->db.st, CK_OPERATOR_TENANT_ID, order, 10, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, e3);
    assert_int_equal(list[1].id, e1);
    ck_event_array_free(list, n);
    assert_int_equal(ck_store_event_list(f->db.st, b, order, 10, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_event_array_free(list, n);
}

/* ---- issue 3: trusted roots ---- */

static void test_roots(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t b = make_tenant(f->db.st, "tenant-b");
    struct ck_root root = {.subject = "CN=Example Private Root,O=Example",
                           .sha256_fingerprint = "AB:CD:EF",
                           .pem = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n",
                           .not_after = 2000000000};
    assert_int_equal(ck_store_root_add(f->db.st, CK_OPERATOR_TENANT_ID, &root, &err), 0);
    int64_t ours = root.id;
    assert_true(ours > 0);
    assert_true(root.created_at > 0);

    assert_error(ck_store_root_add(f->db.st, CK_OPERATOR_TENANT_ID, &root, &err), &err, 409,
                 "root_exists");
    assert_non_null(strstr(err.message, "AB:CD:EF"));
    /* Another tenant may trust the same root; it gets its own row. */
    assert_int_equal(ck_store_root_add(f->db.st, b, &root, &err), 0);
    int64_t theirs = root.id;
    assert_true(theirs != ours);

    struct ck_root *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_root_list(f->db.st, CK_OPERATOR_TENANT_ID, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, ours);
    assert_int_equal(list[0].tenant_id, CK_OPERATOR_TENANT_ID);
    assert_string_equal(list[0].subject, root.subject);
    assert_string_equal(list[0].sha256_fingerprint, root.sha256_fingerprint);
    assert_string_equal(list[0].pem, root.pem);
    assert_int_equal(list[0].not_after, 2000000000);
    assert_true(list[0].created_at > 0);
    ck_root_array_free(list, n);

    assert_error(ck_store_root_delete(f->db.st, b, ours, &err), &err, 404, "not_found");
    assert_int_equal(ck_store_root_delete(f->db.st, CK_OPERATOR_TENANT_ID, ours, &err), 0);
    assert_error(ck_store_root_delete(f->db.st, CK_OPERATOR_TENANT_ID, ours, &err), &err, 404,
                 "not_found");
    assert_int_equal(ck_store_root_list(f->db.st, CK_OPERATOR_TENANT_ID, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_root_array_free(list, n);
    assert_int_equal(ck_store_root_list(f->db.st, b, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, theirs);
    ck_root_array_free(list, n);
}

/* ---- issue 4: migration 3 ---- */

/* A database as a certkeep that knew only migrations 1 and 2 left it: an issued order with a key
 * and certificate, and a queued job. */
static void write_version_2_database(const char *path)
{
    size_t count;
    const char *const *scripts = ck_store_migrations(&count);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                                  "applied_at INTEGER NOT NULL);"
                                  "INSERT INTO schema_migrations VALUES (1, 1700000000);"
                                  "INSERT INTO schema_migrations VALUES (2, 1700000001);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, scripts[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, scripts[1], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO enrollments (tenant_id, name, cn, sans, key_type, "
                                  "validation, issuer, contacts, created_at, updated_at) VALUES "
                                  "(1, 'old', 'old.example.com', '[\"old.example.com\"]', "
                                  "'ec-p256', 'dv', 'manual', '[]', 5, 5);"
                                  "INSERT INTO orders (tenant_id, enrollment_id, state, key_type, "
                                  "sealed_key, csr_pem, cert_pem, chain_pem, cert_not_after, "
                                  "created_at, updated_at) VALUES (1, 1, 'issued', 'ec-p256', "
                                  "X'0102', 'CSR', 'CERT', 'CHAIN', 2000000000, 5, 5);"
                                  "INSERT INTO jobs (tenant_id, enrollment_id, order_id, type, "
                                  "state, created_at) VALUES (1, 1, 1, 'import', 'queued', 5);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

static int64_t edge_generation(struct ck_store *st)
{
    int64_t generation = -1;
    ck_error err = {0};
    assert_int_equal(ck_store_edge_generation(st, &generation, &err), 0);
    return generation;
}

/* Counts the entries the edge would serve and keeps the first one's first name. */
struct edge_names {
    size_t count;
    char first[64];
};

static int note_first_name(const struct ck_edge_entry *entry, void *arg, ck_error *err)
{
    (void)err;
    struct edge_names *seen = arg;
    if (seen->count++ == 0 && entry->names.len > 0)
        snprintf(seen->first, sizeof(seen->first), "%s", entry->names.items[0]);
    return 0;
}

static void test_migration_3_upgrades_version_2(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    size_t count;
    ck_store_migrations(&count);
    write_version_2_database(f->db.path);
    assert_int_equal(ck_store_open(f->db.path, &f->db.st, &err), 0);
    assert_int_equal(ck_store_schema_version(f->db.st), (int)count);

    /* The old rows read with the new fields at their defaults. */
    struct ck_order o = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, 1, &o, &err), 0);
    assert_int_equal(o.state, CK_ORDER_ISSUED);
    assert_string_equal(o.cert_pem, "CERT");
    assert_int_equal(o.staging_acked_at, 0);
    assert_int_equal(o.deploy_not_before, 0);
    assert_int_equal(o.staged_at, 0);
    assert_int_equal(o.deployed_at, 0);
    ck_order_free(&o);
    struct ck_job j = {0};
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, 1, &j, &err), 0);
    assert_null(j.params_json);
    ck_job_free(&j);
    assert_int_equal(edge_generation(f->db.st), 0);

    /* The old order can go to staging, and the new tables work. */
    assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, 1, NULL, &err), 0);
    assert_int_equal(edge_generation(f->db.st), 1);
    struct edge_names seen = {0};
    int64_t generation = -1;
    assert_int_equal(
        ck_store_edge_each(f->db.st, CK_ENV_STAGING, note_first_name, &seen, &generation, &err), 0);
    assert_int_equal(seen.count, 1);
    assert_string_equal(seen.first, "old.example.com");
    struct ck_target t = {.tenant_id = CK_OPERATOR_TENANT_ID,
                          .enrollment_id = 1,
                          .environment = CK_ENV_PRODUCTION,
                          .directory = "/srv/old"};
    assert_int_equal(ck_store_target_add(f->db.st, &t, &err), 0);
    assert_true(t.id > 0);
}

static void test_fresh_database_has_migration_3(void **state)
{
    struct fixture *f = *state;
    assert_true(ck_store_schema_version(f->db.st) >= 3);
    assert_int_equal(edge_generation(f->db.st), 0);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM edge_generation"), 1);
    /* The table holds one row: a second one is refused. */
    assert_int_equal(raw_int(f->db.path, "INSERT INTO edge_generation VALUES (2, 0)"), -1);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM targets"), 0);
}

/* ---- issue 4: staging and production ---- */

static void order_cert(int64_t order, char *buf, size_t len)
{
    snprintf(buf, len, "-----BEGIN CERTIFICATE-----\norder %lld\n-----END CERTIFICATE-----\n",
             (long long)order);
}

/* An issued order of the enrollment with a sealed key; its certificate names the order and is
 * valid until not_after. */
static int64_t make_issued_order(struct fixture *f, int64_t tenant_id, int64_t enrollment_id,
                                 int64_t not_after)
{
    ck_error err = {0};
    int64_t order = 0, job = 0;
    char cert[128];
    make_order(f->db.st, tenant_id, enrollment_id, &order, &job);
    claim(f->db.st, job);
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, order, job, sealed, sizeof(sealed), csr_pem, NULL, &err),
        0);
    order_cert(order, cert, sizeof(cert));
    const struct ck_order_update update = {
        .cert_pem = cert, .chain_pem = chain_pem, .cert_not_after = not_after};
    assert_int_equal(ck_store_order_transition(f->db.st, tenant_id, order, CK_ORDER_CSR_READY,
                                               CK_ORDER_ISSUED, &update, NULL, &err),
                     0);
    return order;
}

static void stage_and_deploy(struct fixture *f, int64_t tenant_id, int64_t order)
{
    ck_error err = {0};
    assert_int_equal(ck_store_order_stage(f->db.st, tenant_id, order, NULL, &err), 0);
    assert_int_equal(ck_store_order_ack_staging(f->db.st, tenant_id, order, &err), 0);
    assert_int_equal(ck_store_order_deploy(f->db.st, tenant_id, order, NULL, &err), 0);
}

static struct ck_order get_order(struct fixture *f, int64_t tenant_id, int64_t order)
{
    struct ck_order o = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_order_get(f->db.st, tenant_id, order, &o, &err), 0);
    return o;
}

static void assert_state(struct fixture *f, int64_t order, enum ck_order_state expected)
{
    struct ck_order o = get_order(f, CK_OPERATOR_TENANT_ID, order);
    assert_string_equal(ck_order_state_name(o.state), ck_order_state_name(expected));
    ck_order_free(&o);
}

/* Asserts the enrollment's staging and production pointers. */
static void assert_pointers(struct fixture *f, int64_t tenant_id, const char *name, int64_t staging,
                            int64_t production)
{
    struct ck_enrollment e = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_enrollment_get(f->db.st, tenant_id, name, &e, &err), 0);
    assert_int_equal(e.staging_order_id, staging);
    assert_int_equal(e.production_order_id, production);
    ck_enrollment_free(&e);
}

static void test_stage(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, 2000000000);
    int64_t before = edge_generation(f->db.st);
    const struct ck_event_new ev = {.type = "staged", .message = "shop is on staging"};
    assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, order, &ev, &err), 0);

    struct ck_order o = get_order(f, CK_OPERATOR_TENANT_ID, order);
    assert_int_equal(o.state, CK_ORDER_STAGED);
    assert_true(o.staged_at > 0);
    assert_int_equal(o.deployed_at, 0);
    assert_int_equal(o.staging_acked_at, 0);
    ck_order_free(&o);
    assert_pointers(f, CK_OPERATOR_TENANT_ID, "shop", order, 0);
    assert_int_equal(edge_generation(f->db.st), before + 1);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM events WHERE order_id = 1 AND "
                                         "type = 'staged' AND enrollment_id = 1"),
                     1);

    /* An order that is not issued is refused, and nothing is written. */
    int64_t blog = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "blog");
    int64_t pending = 0, job = 0;
    make_order(f->db.st, CK_OPERATOR_TENANT_ID, blog, &pending, &job);
    assert_error(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, pending, &ev, &err), &err,
                 409, "order_state_changed");
    assert_non_null(strstr(err.message, "new"));
    assert_error(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, order, &ev, &err), &err, 409,
                 "order_state_changed");
    assert_state(f, pending, CK_ORDER_NEW);
    assert_pointers(f, CK_OPERATOR_TENANT_ID, "blog", 0, 0);
    assert_int_equal(edge_generation(f->db.st), before + 1);
    assert_int_equal(count_rows(f, "events"), 1);

    /* Another tenant's order does not exist. */
    assert_error(ck_store_order_stage(f->db.st, other, order, NULL, &err), &err, 404, "not_found");
    assert_error(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, 999, NULL, &err), &err, 404,
                 "not_found");
}

static void test_ack_staging_and_not_before(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, 2000000000);

    /* Only a staged order can be acknowledged. */
    assert_error(ck_store_order_ack_staging(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), &err,
                 409, "order_state_changed");
    assert_int_equal(
        ck_store_order_set_not_before(f->db.st, CK_OPERATOR_TENANT_ID, order, 1900000000, &err), 0);
    struct ck_order o = get_order(f, CK_OPERATOR_TENANT_ID, order);
    assert_int_equal(o.deploy_not_before, 1900000000);
    assert_int_equal(o.staging_acked_at, 0);
    ck_order_free(&o);

    assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, order, NULL, &err), 0);
    int64_t generation = edge_generation(f->db.st);
    assert_int_equal(ck_store_order_ack_staging(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), 0);
    o = get_order(f, CK_OPERATOR_TENANT_ID, order);
    assert_true(o.staging_acked_at > 0);
    assert_int_equal(o.deploy_not_before, 1900000000);
    ck_order_free(&o);
    /* Acknowledging again keeps the first time. */
    assert_int_equal(raw_int(f->db.path, "UPDATE orders SET staging_acked_at = 5"), 1);
    assert_int_equal(ck_store_order_ack_staging(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), 0);
    assert_int_equal(ck_store_order_set_not_before(f->db.st, CK_OPERATOR_TENANT_ID, order, 0, &err),
                     0);
    o = get_order(f, CK_OPERATOR_TENANT_ID, order);
    assert_int_equal(o.staging_acked_at, 5);
    assert_int_equal(o.deploy_not_before, 0);
    ck_order_free(&o);
    /* Neither changes what the edge serves. */
    assert_int_equal(edge_generation(f->db.st), generation);

    assert_error(ck_store_order_ack_staging(f->db.st, other, order, &err), &err, 404, "not_found");
    assert_error(ck_store_order_set_not_before(f->db.st, other, order, 7, &err), &err, 404,
                 "not_found");
    /* A deployed order is no longer open. */
    assert_int_equal(ck_store_order_deploy(f->db.st, CK_OPERATOR_TENANT_ID, order, NULL, &err), 0);
    assert_error(ck_store_order_set_not_before(f->db.st, CK_OPERATOR_TENANT_ID, order, 7, &err),
                 &err, 409, "order_state_changed");
    assert_non_null(strstr(err.message, "deployed"));
}

static void test_deploy_supersedes_the_previous_order(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t first = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, 2000000000);
    /* Only a staged order can be deployed. */
    int64_t generation = edge_generation(f->db.st);
    assert_error(ck_store_order_deploy(f->db.st, CK_OPERATOR_TENANT_ID, first, NULL, &err), &err,
                 409, "order_state_changed");
    assert_int_equal(edge_generation(f->db.st), generation);
    assert_state(f, first, CK_ORDER_ISSUED);

    stage_and_deploy(f, CK_OPERATOR_TENANT_ID, first);
    struct ck_order o = get_order(f, CK_OPERATOR_TENANT_ID, first);
    assert_int_equal(o.state, CK_ORDER_DEPLOYED);
    assert_true(o.deployed_at >= o.staged_at && o.staged_at > 0);
    ck_order_free(&o);
    assert_pointers(f, CK_OPERATOR_TENANT_ID, "shop", first, first);
    assert_int_equal(edge_generation(f->db.st), generation + 2);

    /* A renewal: staging moves first, production stays until the new one is deployed. */
    int64_t second = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, 2100000000);
    assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, second, NULL, &err), 0);
    assert_pointers(f, CK_OPERATOR_TENANT_ID, "shop", second, first);
    const struct ck_event_new ev = {.type = "deployed", .message = "shop is in production"};
    assert_int_equal(ck_store_order_deploy(f->db.st, CK_OPERATOR_TENANT_ID, second, &ev, &err), 0);
    assert_state(f, second, CK_ORDER_DEPLOYED);
    assert_state(f, first, CK_ORDER_SUPERSEDED);
    assert_pointers(f, CK_OPERATOR_TENANT_ID, "shop", second, second);
    assert_int_equal(edge_generation(f->db.st), generation + 4);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM events WHERE type = 'deployed' AND "
                                         "order_id = 2"),
                     1);

    assert_error(ck_store_order_deploy(f->db.st, CK_OPERATOR_TENANT_ID, second, &ev, &err), &err,
                 409, "order_state_changed");
    assert_int_equal(count_rows(f, "events"), 1);
}

static void test_rollback(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t rollback_to = 0;
    int64_t now = ck_clock_now();
    assert_error(ck_store_enrollment_rollback(f->db.st, CK_OPERATOR_TENANT_ID, "shop", now, NULL,
                                              &rollback_to, &err),
                 &err, 409, "nothing_to_roll_back");
    int64_t first = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, now + 1000);
    stage_and_deploy(f, CK_OPERATOR_TENANT_ID, first);
    assert_error(ck_store_enrollment_rollback(f->db.st, CK_OPERATOR_TENANT_ID, "shop", now, NULL,
                                              &rollback_to, &err),
                 &err, 409, "nothing_to_roll_back");
    int64_t second = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, now + 2000);
    stage_and_deploy(f, CK_OPERATOR_TENANT_ID, second);

    /* Once the previous certificate has expired at `now`, there is nothing to go back to. */
    int64_t generation = edge_generation(f->db.st);
    assert_error(ck_store_enrollment_rollback(f->db.st, CK_OPERATOR_TENANT_ID, "shop", now + 1000,
                                              NULL, &rollback_to, &err),
                 &err, 409, "nothing_to_roll_back");
    assert_state(f, second, CK_ORDER_DEPLOYED);
    assert_state(f, first, CK_ORDER_SUPERSEDED);
    assert_int_equal(edge_generation(f->db.st), generation);
    assert_error(
        ck_store_enrollment_rollback(f->db.st, other, "shop", now, NULL, &rollback_to, &err), &err,
        404, "not_found");
    assert_error(ck_store_enrollment_rollback(f->db.st, CK_OPERATOR_TENANT_ID, "nope", now, NULL,
                                              &rollback_to, &err),
                 &err, 404, "not_found");

    const struct ck_event_new ev = {.type = "rolled_back", .message = "shop rolled back"};
    assert_int_equal(ck_store_enrollment_rollback(f->db.st, CK_OPERATOR_TENANT_ID, "shop", now, &ev,
                                                  &rollback_to, &err),
                     0);
    assert_int_equal(rollback_to, first);
    assert_state(f, first, CK_ORDER_DEPLOYED);
    assert_state(f, second, CK_ORDER_SUPERSEDED);
    assert_pointers(f, CK_OPERATOR_TENANT_ID, "shop", second, first);
    assert_int_equal(edge_generation(f->db.st), generation + 1);
    assert_int_equal(raw_int(f->db.path,
                             "SELECT COUNT(*) FROM events WHERE type = 'rolled_back' AND "
                             "order_id = 1"),
                     1);
}

/* Asserts that entry is order's, of that tenant and enrollment, with everything the edge needs. */
static void assert_edge_entry(const struct ck_edge_entry *e, int64_t tenant_id,
                              int64_t enrollment_id, int64_t order, const char *cn)
{
    char cert[128];
    order_cert(order, cert, sizeof(cert));
    assert_int_equal(e->tenant_id, tenant_id);
    assert_int_equal(e->enrollment_id, enrollment_id);
    assert_int_equal(e->order_id, order);
    assert_int_equal(e->names.len, 2);
    assert_string_equal(e->names.items[0], cn);
    assert_string_equal(e->names.items[1], "www.example.com");
    assert_string_equal(e->cert_pem, cert);
    assert_string_equal(e->chain_pem, chain_pem);
    assert_int_equal(e->sealed_key_len, sizeof(sealed));
    assert_memory_equal(e->sealed_key, sealed, sizeof(sealed));
    assert_int_equal(e->cert_not_after, 2000000000);
}

/* What the edge should get, in order: each entry as assert_edge_entry checks it. */
struct edge_want {
    int64_t tenant_id, enrollment_id, order_id;
    const char *cn;
};

struct edge_visits {
    const struct edge_want *want;
    size_t want_n, count, stop_at; /* stop_at 0: never */
};

static int visit_edge_entry(const struct ck_edge_entry *entry, void *arg, ck_error *err)
{
    struct edge_visits *v = arg;
    assert_true(v->count < v->want_n);
    const struct edge_want *w = &v->want[v->count++];
    assert_edge_entry(entry, w->tenant_id, w->enrollment_id, w->order_id, w->cn);
    if (v->stop_at != 0 && v->count == v->stop_at)
        return ck_error_set(err, 500, "stopped", "the visitor stopped");
    return 0;
}

/* Walks what the store says env serves and checks it is exactly want, read at the current
 * generation. */
static void list_edge(struct fixture *f, enum ck_environment env, const struct edge_want *want,
                      size_t n)
{
    struct edge_visits v = {.want = want, .want_n = n};
    ck_error err = {0};
    int64_t generation = -1;
    assert_int_equal(ck_store_edge_each(f->db.st, env, visit_edge_entry, &v, &generation, &err), 0);
    assert_int_equal(generation, edge_generation(f->db.st));
    assert_int_equal(v.count, n);
}

static void test_edge_entries(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t theirs = make_enrollment(f->db.st, other, "theirs");
    int64_t plain = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "plain");
    int64_t uploaded = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "uploaded");
    int64_t live = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, 2000000000);
    stage_and_deploy(f, CK_OPERATOR_TENANT_ID, live);
    int64_t renewal = make_issued_order(f, CK_OPERATOR_TENANT_ID, shop, 2000000000);
    assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, renewal, NULL, &err), 0);
    int64_t their_order = make_issued_order(f, other, theirs, 2000000000);
    assert_int_equal(ck_store_order_stage(f->db.st, other, their_order, NULL, &err), 0);
    make_issued_order(f, CK_OPERATOR_TENANT_ID, plain, 2000000000); /* issued only */
    /* Staged, but without a key inside certkeep: the edge cannot serve it. */
    int64_t no_key = 0, job = 0;
    assert_int_equal(ck_store_order_create_from_csr(f->db.st, CK_OPERATOR_TENANT_ID, uploaded,
                                                    CK_KEY_EC_P256, csr_pem, NULL, &no_key, &job,
                                                    &err),
                     0);
    const struct ck_order_update update = {.cert_pem = cert_pem, .cert_not_after = 2000000000};
    assert_int_equal(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, no_key,
                                               CK_ORDER_CSR_READY, CK_ORDER_ISSUED, &update, NULL,
                                               &err),
                     0);
    assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, no_key, NULL, &err), 0);

    const struct edge_want staging[] = {{CK_OPERATOR_TENANT_ID, shop, renewal, "shop.example.com"},
                                        {other, theirs, their_order, "theirs.example.com"}};
    list_edge(f, CK_ENV_STAGING, staging, 2);
    const struct edge_want production[] = {{CK_OPERATOR_TENANT_ID, shop, live, "shop.example.com"}};
    list_edge(f, CK_ENV_PRODUCTION, production, 1);

    /* Deploying the renewal and the other tenant's order changes production. */
    assert_int_equal(ck_store_order_deploy(f->db.st, CK_OPERATOR_TENANT_ID, renewal, NULL, &err),
                     0);
    assert_int_equal(ck_store_order_deploy(f->db.st, other, their_order, NULL, &err), 0);
    list_edge(f, CK_ENV_PRODUCTION, staging, 2); /* the same two orders */

    /* A visitor that stops makes the walk fail with its error. */
    struct edge_visits visits = {.want = staging, .want_n = 2, .stop_at = 1};
    int64_t generation = -1;
    assert_int_equal(ck_store_edge_each(f->db.st, CK_ENV_PRODUCTION, visit_edge_entry, &visits,
                                        &generation, &err),
                     -1);
    assert_string_equal(err.code, "stopped");
    assert_int_equal(visits.count, 1);
}

static void test_job_enqueue_with_params(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t order = make_csr_ready_order(f, shop); /* its csr job is finished */
    const char params[] = "{\"environment\":\"staging\",\"names\":[\"shop.example.com\"]}";
    int64_t job = 0, bare = 0;
    assert_int_equal(ck_store_job_enqueue(f->db.st, CK_OPERATOR_TENANT_ID, order,
                                          CK_JOB_STAGING_TEST, params, &job, &err),
                     0);
    assert_int_equal(ck_store_job_enqueue(f->db.st, CK_OPERATOR_TENANT_ID, order, CK_JOB_PROBE,
                                          NULL, &bare, &err),
                     0);

    struct ck_job j = {0};
    assert_int_equal(ck_store_job_claim(f->db.st, "worker-1", 300, &j, &err), 1);
    assert_int_equal(j.id, job);
    assert_int_equal(j.type, CK_JOB_STAGING_TEST);
    assert_int_equal(j.order_id, order);
    assert_int_equal(j.enrollment_id, shop);
    assert_string_equal(j.params_json, params);
    ck_job_free(&j);
    assert_int_equal(ck_store_job_get(f->db.st, CK_OPERATOR_TENANT_ID, bare, &j, &err), 0);
    assert_int_equal(j.state, CK_JOB_QUEUED);
    assert_int_equal(j.type, CK_JOB_PROBE);
    assert_null(j.params_json);
    ck_job_free(&j);

    int64_t refused = 0;
    assert_error(ck_store_job_enqueue(f->db.st, CK_OPERATOR_TENANT_ID, order, CK_JOB_DEPLOY, "[1]",
                                      &refused, &err),
                 &err, 400, "invalid_field");
    assert_error(ck_store_job_enqueue(f->db.st, other, order, CK_JOB_DEPLOY, NULL, &refused, &err),
                 &err, 404, "not_found");
    assert_int_equal(count_rows(f, "jobs"), 3);
}

static void assert_target_equal(const struct ck_target *a, const struct ck_target *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->tenant_id, b->tenant_id);
    assert_int_equal(a->enrollment_id, b->enrollment_id);
    assert_int_equal(a->environment, b->environment);
    assert_string_equal(a->directory, b->directory);
    assert_optional_string(a->reload_command, b->reload_command);
    assert_int_equal(a->timeout_seconds, b->timeout_seconds);
    assert_optional_string(a->probe_endpoint, b->probe_endpoint);
    assert_int_equal(a->created_at, b->created_at);
}

static void test_targets(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t shop = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop");
    int64_t theirs = make_enrollment(f->db.st, other, "theirs");
    struct ck_target prod = {.tenant_id = CK_OPERATOR_TENANT_ID,
                             .enrollment_id = shop,
                             .environment = CK_ENV_PRODUCTION,
                             .directory = "/srv/tls/shop",
                             .reload_command = "[\"systemctl\",\"reload\",\"nginx\"]",
                             .timeout_seconds = 30,
                             .probe_endpoint = "shop.example.com:443"};
    struct ck_target staging = {.tenant_id = CK_OPERATOR_TENANT_ID,
                                .enrollment_id = shop,
                                .environment = CK_ENV_STAGING,
                                .directory = "/srv/tls/shop-staging",
                                .timeout_seconds = 10};
    assert_int_equal(ck_store_target_add(f->db.st, &prod, &err), 0);
    assert_int_equal(ck_store_target_add(f->db.st, &staging, &err), 0);
    assert_true(prod.id > 0 && staging.id > prod.id);
    assert_true(prod.created_at > 0);
    assert_string_equal(ck_environment_name(CK_ENV_PRODUCTION), "production");
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM targets WHERE environment = "
                                         "'production' AND id = 1"),
                     1);

    struct ck_target *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_target_list(f->db.st, CK_OPERATOR_TENANT_ID, shop, &list, &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_target_equal(&list[0], &prod);
    assert_target_equal(&list[1], &staging);
    ck_target_array_free(list, n);

    /* Another tenant's enrollment and targets do not exist. */
    struct ck_target foreign = {.tenant_id = CK_OPERATOR_TENANT_ID,
                                .enrollment_id = theirs,
                                .environment = CK_ENV_PRODUCTION,
                                .directory = "/srv/x"};
    assert_error(ck_store_target_add(f->db.st, &foreign, &err), &err, 404, "not_found");
    assert_error(ck_store_target_list(f->db.st, CK_OPERATOR_TENANT_ID, theirs, &list, &n, &err),
                 &err, 404, "not_found");
    assert_error(ck_store_target_list(f->db.st, other, shop, &list, &n, &err), &err, 404,
                 "not_found");
    assert_error(ck_store_target_delete(f->db.st, other, prod.id, &err), &err, 404, "not_found");
    assert_int_equal(count_rows(f, "targets"), 2);

    assert_int_equal(ck_store_target_delete(f->db.st, CK_OPERATOR_TENANT_ID, prod.id, &err), 0);
    assert_error(ck_store_target_delete(f->db.st, CK_OPERATOR_TENANT_ID, prod.id, &err), &err, 404,
                 "not_found");
    assert_int_equal(ck_store_target_list(f->db.st, CK_OPERATOR_TENANT_ID, shop, &list, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_target_equal(&list[0], &staging);
    ck_target_array_free(list, n);

    /* The targets go with their enrollment, and the edge is told to look again. */
    int64_t generation = edge_generation(f->db.st);
    assert_int_equal(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), 0);
    assert_int_equal(count_rows(f, "targets"), 0);
    assert_int_equal(edge_generation(f->db.st), generation + 1);
}

/* ---- paging ---- */

#define PAGED_ROWS 25
#define PAGE_SIZE  10

/* Walks the tenant's enrollments page by page: names in order, each once, more until the last. */
static void assert_enrollment_pages(struct ck_store *st, int64_t tenant_id)
{
    ck_error err = {0};
    struct ck_page page = {.limit = PAGE_SIZE};
    char last[32] = "";
    size_t seen = 0, pages = 0;
    do {
        struct ck_enrollment *list = NULL;
        size_t n = 0;
        page.after_name = last[0] != '\0' ? last : NULL;
        assert_int_equal(ck_store_enrollment_list_page(st, tenant_id, &page, &list, &n, &err), 0);
        assert_int_equal(n, pages < 2 ? PAGE_SIZE : PAGED_ROWS - 2 * PAGE_SIZE);
        assert_int_equal(page.more, pages < 2);
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "e%02zu", seen++);
            assert_string_equal(list[i].name, want);
        }
        snprintf(last, sizeof(last), "%s", list[n - 1].name);
        ck_enrollment_array_free(list, n);
        pages++;
    } while (page.more && pages < 10);
    assert_int_equal(seen, PAGED_ROWS);
}

static void test_list_pages(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t other = make_tenant(f->db.st, "other");
    int64_t order_ids[PAGED_ROWS], job_ids[PAGED_ROWS];
    for (int i = 0; i < PAGED_ROWS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "e%02d", i);
        int64_t e = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, name);
        make_order(f->db.st, CK_OPERATOR_TENANT_ID, e, &order_ids[i], &job_ids[i]);
        if (i % 5 == 0) { /* the other tenant's rows sit between ours and never show */
            int64_t o, j;
            make_order(f->db.st, other, make_enrollment(f->db.st, other, name), &o, &j);
        }
    }
    assert_enrollment_pages(f->db.st, CK_OPERATOR_TENANT_ID);

    /* Orders and jobs: newest first, each page below the previous page's last id. */
    struct ck_page page = {.limit = PAGE_SIZE};
    int at = PAGED_ROWS - 1;
    for (int pages = 0; pages < 3; pages++) {
        struct ck_order *orders = NULL;
        struct ck_job *jobs = NULL;
        size_t n_orders = 0, n_jobs = 0;
        struct ck_page job_page = page;
        assert_int_equal(ck_store_order_list_page(f->db.st, CK_OPERATOR_TENANT_ID, NULL, &page,
                                                  &orders, &n_orders, &err),
                         0);
        assert_int_equal(ck_store_job_list_page(f->db.st, CK_OPERATOR_TENANT_ID, NULL, &job_page,
                                                &jobs, &n_jobs, &err),
                         0);
        assert_int_equal(n_orders, pages < 2 ? PAGE_SIZE : PAGED_ROWS - 2 * PAGE_SIZE);
        assert_int_equal(n_jobs, n_orders);
        assert_int_equal(page.more, pages < 2);
        assert_int_equal(job_page.more, page.more);
        for (size_t i = 0; i < n_orders; i++, at--) {
            assert_int_equal(orders[i].id, order_ids[at]);
            assert_int_equal(jobs[i].id, job_ids[at]);
        }
        page.before_id = orders[n_orders - 1].id;
        ck_order_array_free(orders, n_orders);
        ck_job_array_free(jobs, n_jobs);
    }
    assert_int_equal(at, -1);

    /* A filter applies before the page; limit 0 is every row. */
    struct ck_order_filter only = {.enrollment = "e07", .state = -1};
    struct ck_order *orders = NULL;
    size_t n = 0;
    page = (struct ck_page){.limit = 1};
    assert_int_equal(
        ck_store_order_list_page(f->db.st, CK_OPERATOR_TENANT_ID, &only, &page, &orders, &n, &err),
        0);
    assert_int_equal(n, 1);
    assert_false(page.more);
    assert_int_equal(orders[0].id, order_ids[7]);
    ck_order_array_free(orders, n);
    page = (struct ck_page){0};
    assert_int_equal(
        ck_store_order_list_page(f->db.st, CK_OPERATOR_TENANT_ID, NULL, &page, &orders, &n, &err),
        0);
    assert_int_equal(n, PAGED_ROWS);
    assert_false(page.more);
    ck_order_array_free(orders, n);
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_migrations_apply_once),
        STORE_TEST(test_newer_schema_is_refused),
        STORE_TEST(test_file_is_private_and_wal),
        cmocka_unit_test(test_open_order_states_match_the_model),
        STORE_TEST(test_tenants),
        STORE_TEST(test_tokens),
        STORE_TEST(test_enrollment_round_trip),
        STORE_TEST(test_tenant_isolation),
        STORE_TEST(test_order_create_queues_csr_job),
        STORE_TEST(test_second_order_conflicts_until_cancel),
        STORE_TEST(test_csr_ready),
        STORE_TEST(test_csr_ready_after_cancel_changes_nothing),
        STORE_TEST(test_order_fail),
        STORE_TEST(test_job_claim_from_two_connections),
        STORE_TEST(test_expired_lease_is_reclaimed),
        STORE_TEST(test_job_logs_and_filters),
        STORE_TEST(test_enrollment_delete_with_orders),
        cmocka_unit_test_setup_teardown(test_migration_2_upgrades_version_1, setup_no_store,
                                        teardown),
        STORE_TEST(test_fresh_database_has_migration_2),
        STORE_TEST(test_csr_ready_adds_its_event),
        STORE_TEST(test_order_create_from_csr),
        STORE_TEST(test_order_transition),
        STORE_TEST(test_order_transition_refused),
        STORE_TEST(test_import_job_record),
        STORE_TEST(test_events_poll_and_confirm),
        STORE_TEST(test_events_list_keeps_history),
        STORE_TEST(test_roots),
        cmocka_unit_test_setup_teardown(test_migration_3_upgrades_version_2, setup_no_store,
                                        teardown),
        STORE_TEST(test_fresh_database_has_migration_3),
        STORE_TEST(test_stage),
        STORE_TEST(test_ack_staging_and_not_before),
        STORE_TEST(test_deploy_supersedes_the_previous_order),
        STORE_TEST(test_rollback),
        STORE_TEST(test_edge_entries),
        STORE_TEST(test_job_enqueue_with_params),
        STORE_TEST(test_targets),
        STORE_TEST(test_list_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
