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
    if (f == NULL || temp_store_open(&f->db, "issuers") != 0) {
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

/* An enrollment named `name` using issuer and DNS provider (either may be NULL). */
static int64_t make_enrollment(struct ck_store *st, int64_t tenant_id, const char *name,
                               const char *issuer, const char *dns)
{
    struct ck_enrollment e = {0};
    ck_error err = {0};
    char cn[128];
    snprintf(cn, sizeof(cn), "%s.example.com", name);
    e.tenant_id = tenant_id;
    e.name = strdup(name);
    e.cn = strdup(cn);
    assert_int_equal(ck_strv_push(&e.sans, cn), 0);
    e.key_type = CK_KEY_EC_P256;
    e.validation = CK_VALIDATION_DV;
    e.issuer = strdup(issuer ? issuer : "manual");
    e.challenge = dns ? strdup("dns-01") : NULL;
    e.dns = dns ? strdup(dns) : NULL;
    assert_int_equal(ck_store_enrollment_create(st, &e, &err), 0);
    int64_t id = e.id;
    ck_enrollment_free(&e);
    return id;
}

static int64_t make_order(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id)
{
    ck_error err = {0};
    int64_t order_id = 0, job_id = 0;
    assert_int_equal(ck_store_order_create(st, tenant_id, enrollment_id, &order_id, &job_id, &err),
                     0);
    return order_id;
}

/* ---- a seal callback that records what it was asked ---- */

struct seal_record {
    int calls;
    int64_t id;
    char what[16];
    bool fail;
};

/* Returns "sealed:<what>:<id>" (with an embedded NUL, to prove blobs are stored byte for byte)
 * or fails when asked to. */
static int record_seal(void *ctx, int64_t id, const char *what, uint8_t **sealed,
                       size_t *sealed_len, ck_error *err)
{
    struct seal_record *r = ctx;
    char text[64];
    r->calls++;
    r->id = id;
    snprintf(r->what, sizeof(r->what), "%s", what);
    if (r->fail)
        return ck_error_set(err, 500, "seal_failed", "the master key is unavailable");
    int n = snprintf(text, sizeof(text), "sealed:%s:%lld", what, (long long)id);
    *sealed = malloc((size_t)n + 2);
    assert_non_null(*sealed);
    memcpy(*sealed, text, (size_t)n);
    (*sealed)[n] = 0;
    (*sealed)[n + 1] = 0xAB;
    *sealed_len = (size_t)n + 2;
    return 0;
}

static int nothing_to_seal(void *ctx, int64_t id, const char *what, uint8_t **sealed,
                           size_t *sealed_len, ck_error *err)
{
    (void)ctx, (void)id, (void)what, (void)err;
    *sealed = NULL;
    *sealed_len = 0;
    return 0;
}

static void assert_sealed(const uint8_t *blob, size_t len, const char *what, int64_t id)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "sealed:%s:%lld", what, (long long)id);
    assert_non_null(blob);
    assert_int_equal(len, (size_t)n + 2);
    assert_memory_equal(blob, text, (size_t)n);
    assert_int_equal(blob[n], 0);
    assert_int_equal(blob[n + 1], 0xAB);
}

/* ---- issuers ---- */

static void fill_acme_issuer(struct ck_issuer *i, int64_t tenant_id, const char *name)
{
    memset(i, 0, sizeof(*i));
    i->tenant_id = tenant_id;
    i->name = strdup(name);
    i->type = strdup("acme");
    i->directory_url = strdup("https://127.0.0.1:14000/dir");
    i->ca_bundle_pem = strdup("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    i->eab_kid = strdup("kid-1");
    assert_int_equal(ck_strv_push(&i->contacts, "mailto:ops@example.com"), 0);
    assert_int_equal(ck_strv_push(&i->contacts, "mailto:sec@example.com"), 0);
}

static void test_issuer_create_seals_with_row_id(void **state)
{
    struct fixture *f = *state;
    struct ck_issuer i, got = {0};
    struct seal_record rec = {0};
    ck_error err = {0};
    fill_acme_issuer(&i, CK_OPERATOR_TENANT_ID, "le");
    assert_int_equal(ck_store_issuer_create(f->db.st, &i, record_seal, &rec, &err), 0);
    assert_true(i.id > 0);
    assert_true(i.created_at > 0);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.id, i.id);
    assert_string_equal(rec.what, "eab");

    assert_int_equal(ck_store_issuer_get(f->db.st, CK_OPERATOR_TENANT_ID, "le", &got, &err), 0);
    assert_int_equal(got.id, i.id);
    assert_int_equal(got.tenant_id, CK_OPERATOR_TENANT_ID);
    assert_string_equal(got.name, "le");
    assert_string_equal(got.type, "acme");
    assert_string_equal(got.directory_url, i.directory_url);
    assert_string_equal(got.ca_bundle_pem, i.ca_bundle_pem);
    assert_string_equal(got.eab_kid, "kid-1");
    assert_sealed(got.sealed_eab_hmac, got.sealed_eab_hmac_len, "eab", i.id);
    assert_int_equal(got.contacts.len, 2);
    assert_string_equal(got.contacts.items[0], "mailto:ops@example.com");
    assert_string_equal(got.contacts.items[1], "mailto:sec@example.com");
    assert_null(got.account_url);
    assert_null(got.sealed_account_key);
    assert_int_equal(got.created_at, i.created_at);
    ck_issuer_free(&got);
    ck_issuer_free(&i);
}

static void test_issuer_local_without_secret(void **state)
{
    struct fixture *f = *state;
    struct ck_issuer i = {0}, got = {0};
    ck_error err = {0};
    i.tenant_id = CK_OPERATOR_TENANT_ID;
    i.name = strdup("internal");
    i.type = strdup("local");
    assert_int_equal(ck_store_issuer_create(f->db.st, &i, nothing_to_seal, NULL, &err), 0);
    assert_int_equal(ck_store_issuer_get(f->db.st, CK_OPERATOR_TENANT_ID, "internal", &got, &err),
                     0);
    assert_string_equal(got.type, "local");
    assert_null(got.directory_url);
    assert_null(got.sealed_eab_hmac);
    assert_int_equal(got.contacts.len, 0);
    ck_issuer_free(&got);
    ck_issuer_free(&i);
}

static void test_issuer_duplicate_and_failed_seal(void **state)
{
    struct fixture *f = *state;
    struct ck_issuer i, dup;
    struct seal_record rec = {0}, failing = {.fail = true};
    ck_error err = {0};
    fill_acme_issuer(&i, CK_OPERATOR_TENANT_ID, "le");
    assert_int_equal(ck_store_issuer_create(f->db.st, &i, record_seal, &rec, &err), 0);
    fill_acme_issuer(&dup, CK_OPERATOR_TENANT_ID, "le");
    assert_error(ck_store_issuer_create(f->db.st, &dup, record_seal, &rec, &err), &err, 409,
                 "issuer_exists");
    ck_issuer_free(&dup);

    /* A failing seal leaves nothing behind, and its error reaches the caller. */
    fill_acme_issuer(&dup, CK_OPERATOR_TENANT_ID, "zerossl");
    assert_error(ck_store_issuer_create(f->db.st, &dup, record_seal, &failing, &err), &err, 500,
                 "seal_failed");
    assert_int_equal(failing.calls, 1);
    assert_error(ck_store_issuer_get(f->db.st, CK_OPERATOR_TENANT_ID, "zerossl", NULL, &err), &err,
                 404, "not_found");
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM issuers"), 1);
    ck_issuer_free(&dup);
    ck_issuer_free(&i);
}

static void test_issuer_list_delete_in_use_isolation(void **state)
{
    struct fixture *f = *state;
    int64_t other = make_tenant(f->db.st, "other");
    const char *names[] = {"zeta", "alpha"};
    ck_error err = {0};
    for (size_t k = 0; k < 2; k++) {
        struct ck_issuer i;
        fill_acme_issuer(&i, CK_OPERATOR_TENANT_ID, names[k]);
        assert_int_equal(ck_store_issuer_create(f->db.st, &i, nothing_to_seal, NULL, &err), 0);
        ck_issuer_free(&i);
    }
    struct ck_issuer *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_issuer_list(f->db.st, CK_OPERATOR_TENANT_ID, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "alpha");
    assert_string_equal(list[1].name, "zeta");
    ck_issuer_array_free(list, n);

    /* Another tenant sees none of them and cannot delete them. */
    assert_int_equal(ck_store_issuer_list(f->db.st, other, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_issuer_array_free(list, n);
    assert_error(ck_store_issuer_get(f->db.st, other, "alpha", NULL, &err), &err, 404, "not_found");
    assert_error(ck_store_issuer_delete(f->db.st, other, "alpha", &err), &err, 404, "not_found");
    /* ...and may use the same name for its own. */
    struct ck_issuer mine;
    fill_acme_issuer(&mine, other, "alpha");
    assert_int_equal(ck_store_issuer_create(f->db.st, &mine, nothing_to_seal, NULL, &err), 0);
    ck_issuer_free(&mine);

    make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop", "alpha", NULL);
    assert_error(ck_store_issuer_delete(f->db.st, CK_OPERATOR_TENANT_ID, "alpha", &err), &err, 409,
                 "issuer_in_use");
    assert_non_null(strstr(err.message, "shop"));
    /* The other tenant's enrollment-free "alpha" is not held by it. */
    assert_int_equal(ck_store_issuer_delete(f->db.st, other, "alpha", &err), 0);
    assert_int_equal(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), 0);
    assert_int_equal(ck_store_issuer_delete(f->db.st, CK_OPERATOR_TENANT_ID, "alpha", &err), 0);
    assert_error(ck_store_issuer_delete(f->db.st, CK_OPERATOR_TENANT_ID, "alpha", &err), &err, 404,
                 "not_found");
}

static void test_issuer_set_account(void **state)
{
    struct fixture *f = *state;
    int64_t other = make_tenant(f->db.st, "other");
    struct ck_issuer i, got = {0};
    ck_error err = {0};
    static const uint8_t key[] = {1, 0, 2, 0, 3};
    fill_acme_issuer(&i, CK_OPERATOR_TENANT_ID, "le");
    assert_int_equal(ck_store_issuer_create(f->db.st, &i, nothing_to_seal, NULL, &err), 0);
    assert_error(ck_store_issuer_set_account(f->db.st, other, i.id, "https://x/acct/1", key,
                                             sizeof(key), &err),
                 &err, 404, "not_found");
    assert_int_equal(ck_store_issuer_set_account(f->db.st, CK_OPERATOR_TENANT_ID, i.id,
                                                 "https://127.0.0.1:14000/acct/1", key, sizeof(key),
                                                 &err),
                     0);
    assert_int_equal(ck_store_issuer_get(f->db.st, CK_OPERATOR_TENANT_ID, "le", &got, &err), 0);
    assert_string_equal(got.account_url, "https://127.0.0.1:14000/acct/1");
    assert_int_equal(got.sealed_account_key_len, sizeof(key));
    assert_memory_equal(got.sealed_account_key, key, sizeof(key));
    ck_issuer_free(&got);
    ck_issuer_free(&i);
}

/* ---- DNS providers ---- */

static void fill_dns(struct ck_dns_provider *d, int64_t tenant_id, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->tenant_id = tenant_id;
    d->name = strdup(name);
    d->mode = strdup("rfc2136");
    d->server = strdup("127.0.0.1:5353");
    d->zone = strdup("example.com");
    d->tsig_name = strdup("certkeep.");
    d->tsig_alg = strdup("hmac-sha256");
    assert_int_equal(ck_strv_push(&d->check_servers, "127.0.0.1:5353"), 0);
    assert_int_equal(ck_strv_push(&d->check_servers, "[::1]:5353"), 0);
    d->ttl = 60;
}

static void test_dns_create_get_seal(void **state)
{
    struct fixture *f = *state;
    struct ck_dns_provider d, got = {0};
    struct seal_record rec = {0};
    ck_error err = {0};
    fill_dns(&d, CK_OPERATOR_TENANT_ID, "bind");
    assert_int_equal(ck_store_dns_create(f->db.st, &d, record_seal, &rec, &err), 0);
    assert_true(d.id > 0);
    assert_true(d.created_at > 0);
    assert_int_equal(rec.id, d.id);
    assert_string_equal(rec.what, "tsig");
    assert_int_equal(ck_store_dns_get(f->db.st, CK_OPERATOR_TENANT_ID, "bind", &got, &err), 0);
    assert_int_equal(got.id, d.id);
    assert_string_equal(got.mode, "rfc2136");
    assert_string_equal(got.server, "127.0.0.1:5353");
    assert_string_equal(got.zone, "example.com");
    assert_string_equal(got.tsig_name, "certkeep.");
    assert_string_equal(got.tsig_alg, "hmac-sha256");
    assert_null(got.hook_path);
    assert_int_equal(got.ttl, 60);
    assert_sealed(got.sealed_tsig_secret, got.sealed_tsig_secret_len, "tsig", d.id);
    assert_int_equal(got.check_servers.len, 2);
    assert_string_equal(got.check_servers.items[0], "127.0.0.1:5353");
    assert_string_equal(got.check_servers.items[1], "[::1]:5353");
    ck_dns_provider_free(&got);

    /* A hook provider without check servers keeps an empty list. */
    struct ck_dns_provider hook = {0};
    hook.tenant_id = CK_OPERATOR_TENANT_ID;
    hook.name = strdup("hook");
    hook.mode = strdup("hook");
    hook.hook_path = strdup("/usr/local/bin/dns-hook");
    assert_int_equal(ck_store_dns_create(f->db.st, &hook, nothing_to_seal, NULL, &err), 0);
    assert_int_equal(ck_store_dns_get(f->db.st, CK_OPERATOR_TENANT_ID, "hook", &got, &err), 0);
    assert_string_equal(got.hook_path, "/usr/local/bin/dns-hook");
    assert_int_equal(got.check_servers.len, 0);
    assert_null(got.sealed_tsig_secret);
    ck_dns_provider_free(&got);
    ck_dns_provider_free(&hook);
    ck_dns_provider_free(&d);
}

static void test_dns_duplicate_failed_seal_list_delete(void **state)
{
    struct fixture *f = *state;
    int64_t other = make_tenant(f->db.st, "other");
    struct ck_dns_provider d, dup;
    struct seal_record failing = {.fail = true};
    ck_error err = {0};
    fill_dns(&d, CK_OPERATOR_TENANT_ID, "bind");
    assert_int_equal(ck_store_dns_create(f->db.st, &d, nothing_to_seal, NULL, &err), 0);
    fill_dns(&dup, CK_OPERATOR_TENANT_ID, "bind");
    assert_error(ck_store_dns_create(f->db.st, &dup, nothing_to_seal, NULL, &err), &err, 409,
                 "dns_exists");
    ck_dns_provider_free(&dup);
    fill_dns(&dup, CK_OPERATOR_TENANT_ID, "other-bind");
    assert_error(ck_store_dns_create(f->db.st, &dup, record_seal, &failing, &err), &err, 500,
                 "seal_failed");
    ck_dns_provider_free(&dup);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM dns_providers"), 1);

    struct ck_dns_provider *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_dns_list(f->db.st, CK_OPERATOR_TENANT_ID, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "bind");
    assert_int_equal(list[0].check_servers.len, 2);
    ck_dns_provider_array_free(list, n);
    assert_int_equal(ck_store_dns_list(f->db.st, other, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_dns_provider_array_free(list, n);
    assert_error(ck_store_dns_get(f->db.st, other, "bind", NULL, &err), &err, 404, "not_found");
    assert_error(ck_store_dns_delete(f->db.st, other, "bind", &err), &err, 404, "not_found");

    make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop", "manual", "bind");
    assert_error(ck_store_dns_delete(f->db.st, CK_OPERATOR_TENANT_ID, "bind", &err), &err, 409,
                 "dns_in_use");
    assert_non_null(strstr(err.message, "shop"));
    assert_int_equal(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &err), 0);
    assert_int_equal(ck_store_dns_delete(f->db.st, CK_OPERATOR_TENANT_ID, "bind", &err), 0);
    assert_error(ck_store_dns_get(f->db.st, CK_OPERATOR_TENANT_ID, "bind", NULL, &err), &err, 404,
                 "not_found");
    ck_dns_provider_free(&d);
}

/* ---- local CAs ---- */

static void test_local_ca_own_then_shared_then_none(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_tenant(f->db.st, "a"), b = make_tenant(f->db.st, "b");
    struct ck_local_ca_record ca = {0}, got = {0};
    struct seal_record rec = {0};
    ck_error err = {0};

    assert_error(ck_store_local_ca_get(f->db.st, a, &got, &err), &err, 404, "no_local_ca");

    assert_int_equal(
        ck_store_local_ca_create(f->db.st, 0, "SHARED PEM", record_seal, &rec, &ca, &err), 0);
    assert_int_equal(rec.id, ca.id);
    assert_string_equal(rec.what, "key");
    assert_int_equal(ca.tenant_id, 0);
    assert_string_equal(ca.cert_pem, "SHARED PEM");
    assert_sealed(ca.sealed_key, ca.sealed_key_len, "key", ca.id);
    assert_true(ca.created_at > 0);
    int64_t shared_id = ca.id;
    ck_local_ca_record_free(&ca);
    assert_error(ck_store_local_ca_create(f->db.st, 0, "AGAIN", record_seal, &rec, &ca, &err), &err,
                 409, "ca_exists");

    assert_int_equal(ck_store_local_ca_create(f->db.st, a, "A PEM", record_seal, &rec, &ca, &err),
                     0);
    int64_t a_id = ca.id;
    ck_local_ca_record_free(&ca);
    assert_error(ck_store_local_ca_create(f->db.st, a, "A AGAIN", record_seal, &rec, &ca, &err),
                 &err, 409, "ca_exists");

    /* a has its own; b falls back to the shared one. */
    assert_int_equal(ck_store_local_ca_get(f->db.st, a, &got, &err), 0);
    assert_int_equal(got.id, a_id);
    assert_int_equal(got.tenant_id, a);
    assert_string_equal(got.cert_pem, "A PEM");
    assert_sealed(got.sealed_key, got.sealed_key_len, "key", a_id);
    ck_local_ca_record_free(&got);
    assert_int_equal(ck_store_local_ca_get(f->db.st, b, &got, &err), 0);
    assert_int_equal(got.id, shared_id);
    assert_int_equal(got.tenant_id, 0);
    assert_string_equal(got.cert_pem, "SHARED PEM");
    ck_local_ca_record_free(&got);
}

static void test_local_ca_failed_seal_and_unknown_tenant(void **state)
{
    struct fixture *f = *state;
    struct ck_local_ca_record ca = {0}, got = {0};
    struct seal_record failing = {.fail = true};
    ck_error err = {0};
    assert_error(ck_store_local_ca_create(f->db.st, CK_OPERATOR_TENANT_ID, "PEM", record_seal,
                                          &failing, &ca, &err),
                 &err, 500, "seal_failed");
    assert_error(ck_store_local_ca_get(f->db.st, CK_OPERATOR_TENANT_ID, &got, &err), &err, 404,
                 "no_local_ca");
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM local_cas"), 0);
    assert_error(ck_store_local_ca_create(f->db.st, 999, "PEM", nothing_to_seal, NULL, &ca, &err),
                 &err, 404, "not_found");
}

/* ---- orders: ACME state and http-01 tokens ---- */

static void test_acme_state_round_trip(void **state)
{
    struct fixture *f = *state;
    int64_t e = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop", NULL, NULL);
    int64_t order_id = make_order(f->db.st, CK_OPERATOR_TENANT_ID, e);
    struct ck_order o = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order_id, &o, &err), 0);
    assert_null(o.acme_state_json);
    ck_order_free(&o);
    const char *json = "{\"step\":\"authorizing\",\"order_url\":\"https://127.0.0.1/o/1\"}";
    assert_int_equal(ck_store_order_set_acme_state(f->db.st, order_id, json, &err), 0);
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order_id, &o, &err), 0);
    assert_string_equal(o.acme_state_json, json);
    ck_order_free(&o);
    /* It shows in lists too. */
    struct ck_order *list = NULL;
    size_t n = 0;
    struct ck_order_filter filter = {.enrollment = NULL, .state = -1};
    assert_int_equal(ck_store_order_list(f->db.st, CK_OPERATOR_TENANT_ID, &filter, &list, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].acme_state_json, json);
    ck_order_array_free(list, n);
    assert_error(ck_store_order_set_acme_state(f->db.st, order_id + 100, json, &err), &err, 404,
                 "not_found");
}

static void test_http01_tokens(void **state)
{
    struct fixture *f = *state;
    int64_t e1 = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "one", NULL, NULL);
    int64_t e2 = make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "two", NULL, NULL);
    int64_t o1 = make_order(f->db.st, CK_OPERATOR_TENANT_ID, e1);
    int64_t o2 = make_order(f->db.st, CK_OPERATOR_TENANT_ID, e2);
    int64_t now = ck_clock_now();
    char *ka = NULL;
    ck_error err = {0};

    assert_error(ck_store_http01_get(f->db.st, "tok-a", now, &ka, &err), &err, 404, "not_found");
    assert_int_equal(ck_store_http01_put(f->db.st, "tok-a", "tok-a.thumb1", o1, now + 600, &err),
                     0);
    assert_int_equal(ck_store_http01_put(f->db.st, "tok-b", "tok-b.thumb2", o2, now + 600, &err),
                     0);
    assert_int_equal(ck_store_http01_get(f->db.st, "tok-a", now, &ka, &err), 0);
    assert_string_equal(ka, "tok-a.thumb1");
    free(ka);

    /* Put replaces. */
    assert_int_equal(ck_store_http01_put(f->db.st, "tok-a", "tok-a.thumb3", o1, now + 900, &err),
                     0);
    assert_int_equal(ck_store_http01_get(f->db.st, "tok-a", now, &ka, &err), 0);
    assert_string_equal(ka, "tok-a.thumb3");
    free(ka);

    /* Expired tokens are not answered. */
    assert_error(ck_store_http01_get(f->db.st, "tok-a", now + 900, &ka, &err), &err, 404,
                 "not_found");
    assert_error(ck_store_http01_put(f->db.st, "tok-c", "x", o2 + 100, now + 600, &err), &err, 404,
                 "not_found");

    /* Deleting an order's tokens leaves the others. */
    assert_int_equal(ck_store_http01_delete_order(f->db.st, o1, &err), 0);
    assert_error(ck_store_http01_get(f->db.st, "tok-a", now, &ka, &err), &err, 404, "not_found");
    assert_int_equal(ck_store_http01_get(f->db.st, "tok-b", now, &ka, &err), 0);
    assert_string_equal(ka, "tok-b.thumb2");
    free(ka);
    /* Deleting the enrollment (and so its order) removes its tokens too. */
    assert_int_equal(ck_store_order_cancel(f->db.st, CK_OPERATOR_TENANT_ID, o2, &err), 0);
    assert_int_equal(ck_store_enrollment_delete(f->db.st, CK_OPERATOR_TENANT_ID, "two", &err), 0);
    assert_int_equal(raw_int(f->db.path, "SELECT COUNT(*) FROM http01_tokens"), 0);
}

/* ---- enrollments: challenge and DNS provider ---- */

static void test_enrollment_challenge_dns_round_trip(void **state)
{
    struct fixture *f = *state;
    struct ck_enrollment e = {0};
    ck_error err = {0};
    make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "shop", "le", "bind");
    make_enrollment(f->db.st, CK_OPERATOR_TENANT_ID, "plain", NULL, NULL);
    assert_int_equal(ck_store_enrollment_get(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &e, &err), 0);
    assert_string_equal(e.issuer, "le");
    assert_string_equal(e.challenge, "dns-01");
    assert_string_equal(e.dns, "bind");

    /* Update replaces both. */
    free(e.challenge);
    free(e.dns);
    e.challenge = strdup("http-01");
    e.dns = NULL;
    assert_int_equal(ck_store_enrollment_update(f->db.st, &e, &err), 0);
    ck_enrollment_free(&e);
    assert_int_equal(ck_store_enrollment_get(f->db.st, CK_OPERATOR_TENANT_ID, "shop", &e, &err), 0);
    assert_string_equal(e.challenge, "http-01");
    assert_null(e.dns);
    ck_enrollment_free(&e);

    struct ck_enrollment *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_enrollment_list(f->db.st, CK_OPERATOR_TENANT_ID, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "plain");
    assert_null(list[0].challenge);
    assert_null(list[0].dns);
    assert_string_equal(list[1].challenge, "http-01");
    ck_enrollment_array_free(list, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_issuer_create_seals_with_row_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issuer_local_without_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issuer_duplicate_and_failed_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issuer_list_delete_in_use_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issuer_set_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_create_get_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_duplicate_failed_seal_list_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_local_ca_own_then_shared_then_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_ca_failed_seal_and_unknown_tenant, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acme_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http01_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrollment_challenge_dns_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
