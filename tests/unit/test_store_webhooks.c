#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/clock.h"
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
    if (f == NULL || temp_store_open(&f->db, "webhooks") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* The first column of the first row of a query on a second, raw connection, or -1. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t value = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return value;
}

static void assert_error(int rc, const ck_error *err, int status, const char *code)
{
    assert_int_equal(rc, -1);
    assert_int_equal(err->status, status);
    assert_string_equal(err->code, code);
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

static int64_t add_event(struct ck_store *st, int64_t tenant_id, const char *type)
{
    struct ck_event_new ev = {.type = type, .message = "something happened"};
    ck_error err = {0};
    int64_t id = 0;
    assert_int_equal(ck_store_event_add(st, tenant_id, &ev, &id, &err), 0);
    return id;
}

/* The secret's AAD names the row's id, so the store must ask for it inside the transaction. */
static int fake_seal(void *ctx, int64_t id, const char *what, uint8_t **sealed, size_t *sealed_len,
                     ck_error *err)
{
    (void)err;
    int64_t *seen = ctx;
    *seen = id;
    assert_string_equal(what, "secret");
    *sealed = (uint8_t *)strdup("sealed-secret");
    *sealed_len = strlen("sealed-secret");
    return *sealed != NULL ? 0 : -1;
}

static int64_t make_webhook(struct ck_store *st, int64_t tenant_id, const char *url)
{
    struct ck_webhook w = {.tenant_id = tenant_id, .url = strdup(url)};
    ck_error err = {0};
    int64_t sealed_for = 0;
    assert_int_equal(ck_store_webhook_create(st, &w, fake_seal, &sealed_for, &err), 0);
    assert_true(w.id > 0);
    assert_int_equal(sealed_for, w.id);
    int64_t id = w.id;
    ck_webhook_free(&w);
    return id;
}

static size_t delivery_count(struct ck_store *st, int64_t tenant_id, int64_t webhook_id)
{
    struct ck_webhook_delivery *d = NULL;
    size_t n = 0;
    ck_error err = {0};
    assert_int_equal(ck_store_webhook_deliveries(st, tenant_id, webhook_id, 100, &d, &n, &err), 0);
    ck_webhook_delivery_array_free(d, n);
    return n;
}

static void test_create_get_list_delete(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t t = make_tenant(f->db.st, "acme");
    add_event(f->db.st, t, "certificate_needed");
    int64_t id = make_webhook(f->db.st, t, "https://hooks.example.com/in");
    struct ck_webhook w = {0};
    assert_int_equal(ck_store_webhook_get(f->db.st, t, id, &w, &err), 0);
    assert_string_equal(w.url, "https://hooks.example.com/in");
    assert_memory_equal(w.sealed_secret, "sealed-secret", w.sealed_secret_len);
    assert_true(w.active);
    assert_true(w.last_event_id > 0); /* starts after the events that came before it */
    ck_webhook_free(&w);
    struct ck_webhook *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_webhook_list(f->db.st, t, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    ck_webhook_array_free(list, n);
    assert_int_equal(ck_store_webhook_delete(f->db.st, t, id, &err), 0);
    assert_error(ck_store_webhook_get(f->db.st, t, id, &w, &err), &err, 404, "not_found");
    assert_error(ck_store_webhook_delete(f->db.st, t, id, &err), &err, 404, "not_found");
}

static void test_fan_out_once_per_webhook_and_event(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t t = make_tenant(f->db.st, "acme");
    int64_t before = add_event(f->db.st, t, "certificate_needed");
    int64_t a = make_webhook(f->db.st, t, "https://a.example.com/");
    int64_t b = make_webhook(f->db.st, t, "https://b.example.com/");
    int64_t e1 = add_event(f->db.st, t, "certificate_needed");
    add_event(f->db.st, t, "certificate_issued");
    int64_t added = -1;
    assert_int_equal(ck_store_webhook_fan_out(f->db.st, ck_clock_now(), &added, &err), 0);
    assert_int_equal(added, 4); /* 2 events x 2 webhooks; not the event before them */
    assert_int_equal(ck_store_webhook_fan_out(f->db.st, ck_clock_now(), &added, &err), 0);
    assert_int_equal(added, 0);
    assert_int_equal(delivery_count(f->db.st, t, a), 2);
    assert_int_equal(delivery_count(f->db.st, t, b), 2);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = %lld",
             (long long)before);
    assert_int_equal(raw_int(f->db.path, sql), 0);
    add_event(f->db.st, t, "import_rejected");
    assert_int_equal(ck_store_webhook_fan_out(f->db.st, ck_clock_now(), &added, &err), 0);
    assert_int_equal(added, 2);
    struct ck_webhook_delivery *d = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_webhook_deliveries(f->db.st, t, a, 100, &d, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].event_type, "import_rejected"); /* newest first */
    assert_int_equal(d[2].event_id, e1);
    assert_int_equal(d[2].state, CK_DELIVERY_PENDING);
    assert_int_equal(d[2].attempts, 0);
    ck_webhook_delivery_array_free(d, n);
}

static void test_tenant_isolation(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t t1 = make_tenant(f->db.st, "one"), t2 = make_tenant(f->db.st, "two");
    int64_t w1 = make_webhook(f->db.st, t1, "https://one.example.com/");
    int64_t w2 = make_webhook(f->db.st, t2, "https://two.example.com/");
    add_event(f->db.st, t1, "certificate_needed");
    add_event(f->db.st, t1, "certificate_issued");
    add_event(f->db.st, t2, "certificate_needed");
    assert_int_equal(ck_store_webhook_fan_out(f->db.st, ck_clock_now(), NULL, &err), 0);
    assert_int_equal(delivery_count(f->db.st, t1, w1), 2);
    assert_int_equal(delivery_count(f->db.st, t2, w2), 1);
    struct ck_webhook w = {0};
    struct ck_webhook_delivery *d = NULL;
    size_t n = 0;
    assert_error(ck_store_webhook_get(f->db.st, t2, w1, &w, &err), &err, 404, "not_found");
    assert_error(ck_store_webhook_deliveries(f->db.st, t2, w1, 10, &d, &n, &err), &err, 404,
                 "not_found");
    assert_error(ck_store_webhook_delete(f->db.st, t2, w1, &err), &err, 404, "not_found");
    struct ck_webhook *list = NULL;
    assert_int_equal(ck_store_webhook_list(f->db.st, t2, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, w2);
    ck_webhook_array_free(list, n);
}

static void test_claim_lease_and_record(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t t = make_tenant(f->db.st, "acme");
    int64_t w = make_webhook(f->db.st, t, "https://a.example.com/");
    int64_t ev = add_event(f->db.st, t, "certificate_needed");
    int64_t now = 1800000000;
    assert_int_equal(ck_store_webhook_fan_out(f->db.st, now, NULL, &err), 0);

    struct ck_webhook_claim c = {0}, other = {0};
    assert_int_equal(ck_store_webhook_claim(f->db.st, "d1", now, 60, &c, &err), 1);
    assert_int_equal(c.event.id, ev);
    assert_string_equal(c.event.type, "certificate_needed");
    assert_int_equal(c.webhook.id, w);
    assert_string_equal(c.webhook.url, "https://a.example.com/");
    assert_int_equal(c.webhook.sealed_secret_len, strlen("sealed-secret"));
    /* leased: another daemon gets nothing until the lease runs out */
    assert_int_equal(ck_store_webhook_claim(f->db.st, "d2", now + 59, 60, &other, &err), 0);

    /* a failure: retried at the given time, not before */
    assert_int_equal(ck_store_webhook_record(f->db.st, c.delivery.id, "d1", false, 500, "HTTP 500",
                                             now, now + 30, &err),
                     0);
    assert_int_equal(ck_store_webhook_claim(f->db.st, "d2", now + 29, 60, &other, &err), 0);
    assert_int_equal(ck_store_webhook_claim(f->db.st, "d2", now + 30, 60, &other, &err), 1);
    assert_int_equal(other.delivery.attempts, 1);
    assert_int_equal(other.delivery.last_status, 500);
    assert_string_equal(other.delivery.last_error, "HTTP 500");
    /* d1 lost its lease to d2 when it expired: its late answer is refused */
    assert_error(
        ck_store_webhook_record(f->db.st, c.delivery.id, "d1", true, 200, NULL, now + 31, 0, &err),
        &err, 409, "lease_lost");
    assert_int_equal(ck_store_webhook_record(f->db.st, other.delivery.id, "d2", true, 204, NULL,
                                             now + 31, 0, &err),
                     0);
    ck_webhook_claim_free(&c);
    ck_webhook_claim_free(&other);
    /* delivered: never claimed again */
    assert_int_equal(ck_store_webhook_claim(f->db.st, "d1", now + 100000, 60, &c, &err), 0);

    struct ck_webhook_delivery *d = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_webhook_deliveries(f->db.st, t, w, 10, &d, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].state, CK_DELIVERY_DELIVERED);
    assert_string_equal(ck_delivery_state_name(d[0].state), "delivered");
    assert_int_equal(d[0].attempts, 2);
    assert_int_equal(d[0].last_status, 204);
    assert_null(d[0].last_error);
    assert_int_equal(d[0].delivered_at, now + 31);
    ck_webhook_delivery_array_free(d, n);
}

static void test_deleted_webhook_takes_its_log(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t t = make_tenant(f->db.st, "acme");
    int64_t w = make_webhook(f->db.st, t, "https://a.example.com/");
    add_event(f->db.st, t, "certificate_needed");
    assert_int_equal(ck_store_webhook_fan_out(f->db.st, ck_clock_now(), NULL, &err), 0);
    assert_int_equal(ck_store_webhook_delete(f->db.st, t, w, &err), 0);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM webhook_deliveries"), 0);
    struct ck_webhook_claim c = {0};
    assert_int_equal(ck_store_webhook_claim(f->db.st, "d1", ck_clock_now() + 10, 60, &c, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fan_out_once_per_webhook_and_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_lease_and_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_webhook_takes_its_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
