/* Unit tests for the scheduler (src/server/scheduler.h): ck_scheduler_tick driven directly on a
 * temporary store with a chosen `now` — no thread, no sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "core/policy.h"
#include "crypto/keys.h"
#include "server/scheduler.h"
#include "store/store.h"
#include "temp_store.h"

#define DAY 86400

static const char csr_pem[] =
    "-----BEGIN CERTIFICATE REQUEST-----\ncsr\n-----END CERTIFICATE REQUEST-----\n";

struct fixture {
    struct temp_store db;
    struct ck_scheduler *sched;
    int64_t t0; /* the real clock at set-up: order times are stamped with it */
};

static int teardown(void **state)
{
    struct fixture *f = *state;
    ck_scheduler_free(f->sched);
    temp_store_remove(&f->db);
    free(f);
    return 0;
}

static int setup_with(void **state, int max_in_flight)
{
    struct fixture *f = calloc(1, sizeof(*f));
    ck_error err = {0};
    const struct ck_scheduler_config cfg = {.max_in_flight = max_in_flight};
    if (f == NULL)
        return -1;
    *state = f;
    f->t0 = ck_clock_now();
    if (temp_store_open(&f->db, "sched") != 0)
        return -1;
    if (ck_scheduler_new(f->db.st, &cfg, &f->sched, &err) != 0) {
        fprintf(stderr, "set-up: %s\n", err.message);
        teardown(state);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_cap2(void **state)
{
    return setup_with(state, 2);
}

static int64_t make_enrollment(struct fixture *f, const char *name, const char *issuer,
                               const char *renew_before, bool always_test)
{
    struct ck_enrollment e = {.tenant_id = CK_OPERATOR_TENANT_ID,
                              .key_type = CK_KEY_EC_P256,
                              .validation = CK_VALIDATION_OV};
    char cn[64];
    ck_error err = {0};
    snprintf(cn, sizeof(cn), "%s.example.com", name);
    e.name = strdup(name);
    e.cn = strdup(cn);
    e.issuer = strdup(issuer);
    e.policy.renew_before = renew_before ? strdup(renew_before) : NULL;
    e.policy.always_test_on_staging = always_test;
    assert_int_equal(ck_strv_push(&e.sans, cn), 0);
    assert_int_equal(ck_store_enrollment_create(f->db.st, &e, &err), 0);
    int64_t id = e.id;
    ck_enrollment_free(&e);
    return id;
}

/* A self-signed certificate valid from not_before to not_after, as PEM (caller frees). */
static char *make_cert(int64_t not_before, int64_t not_after)
{
    ck_error err = {0};
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, &err);
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL, *data = NULL;
    assert_non_null(key);
    assert_non_null(x);
    assert_non_null(bio);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"sched.example.com", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    long len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    return pem;
}

/* An order moved to `state` (issued, staged or deployed) with a certificate of that validity. */
static int64_t make_order(struct fixture *f, int64_t enrollment, enum ck_order_state state,
                          int64_t not_before, int64_t not_after)
{
    ck_error err = {0};
    int64_t order = 0, job = 0;
    char *pem = make_cert(not_before, not_after);
    const struct ck_order_update update = {.cert_pem = pem, .cert_not_after = not_after};
    assert_int_equal(ck_store_order_create_from_csr(f->db.st, CK_OPERATOR_TENANT_ID, enrollment,
                                                    CK_KEY_EC_P256, csr_pem, NULL, &order, &job,
                                                    &err),
                     0);
    assert_int_equal(ck_store_order_transition(f->db.st, CK_OPERATOR_TENANT_ID, order,
                                               CK_ORDER_CSR_READY, CK_ORDER_ISSUED, &update, NULL,
                                               &err),
                     0);
    if (state == CK_ORDER_STAGED || state == CK_ORDER_DEPLOYED)
        assert_int_equal(ck_store_order_stage(f->db.st, CK_OPERATOR_TENANT_ID, order, NULL, &err),
                         0);
    if (state == CK_ORDER_DEPLOYED)
        assert_int_equal(ck_store_order_deploy(f->db.st, CK_OPERATOR_TENANT_ID, order, NULL, &err),
                         0);
    free(pem);
    return order;
}

static struct ck_scheduler_report tick(struct fixture *f, int64_t now)
{
    struct ck_scheduler_report r;
    ck_error err = {0};
    memset(&r, 0xff, sizeof(r));
    if (ck_scheduler_tick(f->sched, now, &r, &err) != 0)
        fail_msg("tick: %s", err.message);
    return r;
}

/* The enrollment's orders, newest first; *n how many. */
static struct ck_order *orders_of(struct fixture *f, const char *name, size_t *n)
{
    const struct ck_order_filter filter = {.enrollment = name, .state = -1};
    struct ck_order *orders = NULL;
    ck_error err = {0};
    assert_int_equal(
        ck_store_order_list(f->db.st, CK_OPERATOR_TENANT_ID, &filter, &orders, n, &err), 0);
    return orders;
}

static enum ck_order_state order_state(struct fixture *f, int64_t order)
{
    struct ck_order o = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    enum ck_order_state state = o.state;
    ck_order_free(&o);
    return state;
}

static size_t count_events(struct fixture *f, const char *type)
{
    struct ck_event *events = NULL;
    size_t n = 0, count = 0;
    ck_error err = {0};
    assert_int_equal(
        ck_store_event_list(f->db.st, CK_OPERATOR_TENANT_ID, 0, 1000, &events, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        count += strcmp(events[i].type, type) == 0;
    ck_event_array_free(events, n);
    return count;
}

/* ---- first orders ---- */

static void test_first_order_for_automatic_issuer(void **state)
{
    struct fixture *f = *state;
    size_t n = 0;
    make_enrollment(f, "api", "mine", NULL, false);
    struct ck_scheduler_report r = tick(f, f->t0);
    assert_int_equal(r.orders_started, 1);
    assert_int_equal(r.renewals_started, 0);
    struct ck_order *orders = orders_of(f, "api", &n);
    assert_int_equal(n, 1);
    assert_int_equal(orders[0].state, CK_ORDER_NEW);
    ck_order_array_free(orders, n);
    /* the open order blocks a second one */
    r = tick(f, f->t0 + 1);
    assert_int_equal(r.orders_started, 0);
    orders = orders_of(f, "api", &n);
    assert_int_equal(n, 1);
    ck_order_array_free(orders, n);
}

static void test_no_order_for_manual_without_certificate(void **state)
{
    struct fixture *f = *state;
    size_t n = 0;
    make_enrollment(f, "shop", "manual", NULL, false);
    struct ck_scheduler_report r = tick(f, f->t0 + 400 * DAY);
    assert_int_equal(r.orders_started + r.renewals_started, 0);
    struct ck_order *orders = orders_of(f, "shop", &n);
    assert_int_equal(n, 0);
    ck_order_array_free(orders, n);
}

/* ---- renewals ---- */

/* A 90-day certificate: the 60-day default is capped at a third (30 d), so renewal starts at
 * day 60 (plus a spread of at most an hour), not at day 30. */
static void test_renewal_window_default_capped(void **state)
{
    struct fixture *f = *state;
    int64_t nb = f->t0 - DAY, na = nb + 90 * DAY;
    int64_t e = make_enrollment(f, "api", "mine", NULL, false);
    int64_t prod = make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    assert_int_equal(tick(f, nb + 31 * DAY).renewals_started, 0);
    assert_int_equal(tick(f, nb + 59 * DAY).renewals_started, 0);
    assert_int_equal(count_events(f, "renewal_started"), 0);
    struct ck_scheduler_report r = tick(f, nb + 60 * DAY + 3601);
    assert_int_equal(r.renewals_started, 1);
    assert_int_equal(r.orders_started, 0);
    assert_int_equal(count_events(f, "renewal_started"), 1);
    size_t n = 0;
    struct ck_order *orders = orders_of(f, "api", &n);
    assert_int_equal(n, 2);
    assert_int_equal(orders[0].state, CK_ORDER_NEW); /* the csr job makes the new key */
    assert_int_equal(orders[1].id, prod);
    assert_int_equal(orders[1].state, CK_ORDER_DEPLOYED);
    ck_order_array_free(orders, n);
}

static void test_renewal_explicit_renew_before(void **state)
{
    struct fixture *f = *state;
    int64_t nb = f->t0 - DAY, na = nb + 90 * DAY;
    int64_t e = make_enrollment(f, "api", "mine", "10d", false);
    make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    assert_int_equal(tick(f, na - 11 * DAY).renewals_started, 0);
    assert_int_equal(tick(f, na - 9 * DAY).renewals_started, 1);
}

/* A manual issuer's renewal starts the same way (its csr job raises certificate_needed). */
static void test_renewal_for_manual_issuer(void **state)
{
    struct fixture *f = *state;
    int64_t nb = f->t0 - DAY, na = nb + 365 * DAY;
    int64_t e = make_enrollment(f, "shop", "manual", NULL, false);
    make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    assert_int_equal(tick(f, na - 61 * DAY).renewals_started, 0);
    assert_int_equal(tick(f, na - 59 * DAY).renewals_started, 1);
    assert_int_equal(count_events(f, "renewal_started"), 1);
}

/* ---- failures ---- */

static int64_t open_order_id(struct fixture *f, const char *name)
{
    size_t n = 0;
    struct ck_order *orders = orders_of(f, name, &n);
    assert_true(n > 0);
    int64_t id = orders[0].id;
    ck_order_array_free(orders, n);
    return id;
}

static int64_t fail_order(struct fixture *f, int64_t order)
{
    struct ck_order o = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_order_fail(f->db.st, order, "the CA said no", &err), 0);
    assert_int_equal(ck_store_order_get(f->db.st, CK_OPERATOR_TENANT_ID, order, &o, &err), 0);
    int64_t at = o.updated_at;
    ck_order_free(&o);
    return at;
}

static void test_retry_backoff(void **state)
{
    struct fixture *f = *state;
    /* due since long ago: 10 days left of a 90-day certificate */
    int64_t na = f->t0 + 10 * DAY, nb = na - 90 * DAY;
    int64_t e = make_enrollment(f, "api", "mine", NULL, false);
    make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    assert_int_equal(tick(f, f->t0).renewals_started, 1);
    int64_t failed_at = fail_order(f, open_order_id(f, "api"));

    /* first failure: the retry comes within CK_POLICY_RETRY_BASE, not at once */
    struct ck_scheduler_report r = tick(f, failed_at);
    assert_int_equal(r.renewals_started, 0);
    assert_int_equal(r.failures_reported, 1);
    assert_int_equal(tick(f, failed_at).failures_reported, 0); /* once per failed order */
    assert_int_equal(count_events(f, "renewal_failed"), 1);
    r = tick(f, failed_at + CK_POLICY_RETRY_BASE);
    assert_int_equal(r.renewals_started, 1);
    assert_int_equal(r.retries_started, 1);

    /* second failure: the wait may be up to twice as long, and is at least a second */
    failed_at = fail_order(f, open_order_id(f, "api"));
    assert_int_equal(tick(f, failed_at).renewals_started, 0);
    assert_int_equal(count_events(f, "renewal_failed"), 2);
    assert_int_equal(tick(f, failed_at + 2 * CK_POLICY_RETRY_BASE).retries_started, 1);
}

/* A failed first order of an automatic issuer is retried the same way. */
static void test_first_order_retried_after_failure(void **state)
{
    struct fixture *f = *state;
    make_enrollment(f, "api", "mine", NULL, false);
    assert_int_equal(tick(f, f->t0).orders_started, 1);
    int64_t failed_at = fail_order(f, open_order_id(f, "api"));
    assert_int_equal(tick(f, failed_at).orders_started, 0);
    assert_int_equal(count_events(f, "renewal_failed"), 1);
    assert_int_equal(tick(f, failed_at + CK_POLICY_RETRY_BASE).orders_started, 1);
}

/* ---- urgency ---- */

static void test_urgent_once(void **state)
{
    struct fixture *f = *state;
    int64_t na = f->t0 + 3 * DAY, nb = na - 90 * DAY;
    int64_t e = make_enrollment(f, "shop", "manual", NULL, false);
    make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    struct ck_scheduler_report r = tick(f, f->t0);
    assert_int_equal(r.urgent_reported, 1);
    assert_int_equal(r.renewals_started, 1); /* long overdue */
    assert_int_equal(tick(f, f->t0 + 60).urgent_reported, 0);
    assert_int_equal(count_events(f, "expiry_near"), 1);
}

static void test_not_urgent_with_plenty_of_time(void **state)
{
    struct fixture *f = *state;
    int64_t na = f->t0 + 8 * DAY, nb = na - 90 * DAY;
    int64_t e = make_enrollment(f, "shop", "manual", NULL, false);
    make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    assert_int_equal(tick(f, f->t0).urgent_reported, 0);
    assert_int_equal(count_events(f, "expiry_near"), 0);
}

/* ---- automatic deployment ---- */

static void test_first_certificate_staged_then_deployed(void **state)
{
    struct fixture *f = *state;
    int64_t e = make_enrollment(f, "api", "mine", NULL, false);
    int64_t order = make_order(f, e, CK_ORDER_ISSUED, f->t0 - 60, f->t0 + 90 * DAY);
    assert_int_equal(tick(f, f->t0).staged, 1);
    assert_int_equal(order_state(f, order), CK_ORDER_STAGED);
    struct ck_scheduler_report r = tick(f, f->t0);
    assert_int_equal(r.deployed, 1);
    assert_int_equal(order_state(f, order), CK_ORDER_DEPLOYED);
    assert_int_equal(count_events(f, "staged"), 1);
    assert_int_equal(count_events(f, "deployed"), 1);
}

/* A staged renewal waits until deploy_before (7 d) before the production certificate expires. */
static void test_staged_renewal_waits_for_deploy_before(void **state)
{
    struct fixture *f = *state;
    int64_t nb = f->t0 - 70 * DAY, na = nb + 90 * DAY; /* 20 days left */
    int64_t e = make_enrollment(f, "api", "mine", NULL, false);
    int64_t prod = make_order(f, e, CK_ORDER_DEPLOYED, nb, na);
    int64_t next = make_order(f, e, CK_ORDER_STAGED, f->t0 - 60, f->t0 + 90 * DAY);
    assert_int_equal(tick(f, f->t0).deployed, 0);
    assert_int_equal(tick(f, na - 7 * DAY - 1).deployed, 0);
    assert_int_equal(tick(f, na - 7 * DAY).deployed, 1);
    assert_int_equal(order_state(f, next), CK_ORDER_DEPLOYED);
    assert_int_equal(order_state(f, prod), CK_ORDER_SUPERSEDED);
}

static void test_always_test_on_staging_needs_ack(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    int64_t e = make_enrollment(f, "api", "mine", NULL, true);
    int64_t order = make_order(f, e, CK_ORDER_STAGED, f->t0 - 60, f->t0 + 90 * DAY);
    assert_int_equal(tick(f, f->t0).deployed, 0);
    assert_int_equal(tick(f, f->t0 + 30 * DAY).deployed, 0);
    assert_int_equal(order_state(f, order), CK_ORDER_STAGED);
    assert_int_equal(ck_store_order_ack_staging(f->db.st, CK_OPERATOR_TENANT_ID, order, &err), 0);
    assert_int_equal(tick(f, f->t0).deployed, 1);
    assert_int_equal(order_state(f, order), CK_ORDER_DEPLOYED);
}

/* ---- concurrency ---- */

static void test_concurrency_cap(void **state)
{
    struct fixture *f = *state;
    char name[16];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "e%d", i);
        make_enrollment(f, name, "mine", NULL, false);
    }
    struct ck_scheduler_report r = tick(f, f->t0);
    assert_int_equal(r.orders_started, 2);
    assert_int_equal(r.skipped_capacity, 3);
    /* the two are still in flight: nothing more starts */
    r = tick(f, f->t0 + 1);
    assert_int_equal(r.orders_started, 0);
    assert_int_equal(r.skipped_capacity, 3);
    /* one finishes (fails here): one more may start */
    fail_order(f, open_order_id(f, "e0"));
    r = tick(f, f->t0 + 2);
    assert_int_equal(r.orders_started, 1);
}

/* Two daemons' schedulers on one database never start two orders for one enrollment. */
static void test_two_schedulers_one_order(void **state)
{
    struct fixture *f = *state;
    struct ck_store *other_store = NULL;
    struct ck_scheduler *other = NULL;
    const struct ck_scheduler_config cfg = {0};
    struct ck_scheduler_report r;
    ck_error err = {0};
    size_t n = 0;
    make_enrollment(f, "api", "mine", NULL, false);
    assert_int_equal(ck_store_open(f->db.path, &other_store, &err), 0);
    assert_int_equal(ck_scheduler_new(other_store, &cfg, &other, &err), 0);
    assert_int_equal(tick(f, f->t0).orders_started, 1);
    assert_int_equal(ck_scheduler_tick(other, f->t0, &r, &err), 0);
    assert_int_equal(r.orders_started, 0);
    struct ck_order *orders = orders_of(f, "api", &n);
    assert_int_equal(n, 1);
    ck_order_array_free(orders, n);
    ck_scheduler_free(other);
    ck_store_close(other_store);
}

/* ---- ACME Renewal Information (RFC 9773) ---- */

/* An ACME issuer whose directory nobody serves (port 1 on loopback refuses at once). */
static void make_acme_issuer(struct fixture *f, const char *name)
{
    struct ck_issuer issuer = {.tenant_id = CK_OPERATOR_TENANT_ID};
    ck_error err = {0};
    issuer.name = strdup(name);
    issuer.type = strdup("acme");
    issuer.directory_url = strdup("https://127.0.0.1:1/dir");
    assert_int_equal(ck_store_issuer_create(f->db.st, &issuer, NULL, NULL, &err), 0);
    ck_issuer_free(&issuer);
}

static struct ck_event *last_event(struct fixture *f, const char *type, struct ck_event **all,
                                   size_t *n)
{
    ck_error err = {0};
    assert_int_equal(ck_store_event_list(f->db.st, CK_OPERATOR_TENANT_ID, 0, 1000, all, n, &err),
                     0);
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*all)[i].type, type) == 0)
            return &(*all)[i];
    return NULL;
}

/* A stored window from the CA beats the policy: a 90-day certificate renews inside the window
 * the CA suggested (days 10 to 11), not at day 60, and the event says so. */
static void test_ari_window_wins(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    struct ck_event *events = NULL;
    size_t n = 0;
    make_acme_issuer(f, "le");
    int64_t e = make_enrollment(f, "api", "le", NULL, false);
    int64_t prod = make_order(f, e, CK_ORDER_DEPLOYED, f->t0, f->t0 + 90 * DAY);
    struct ck_ari_status window = {.order_id = prod,
                                   .offered = true,
                                   .has_window = true,
                                   .window_start = f->t0 + 10 * DAY,
                                   .window_end = f->t0 + 11 * DAY,
                                   .checked_at = f->t0,
                                   .next_check_at = f->t0 + 365 * DAY};
    assert_int_equal(ck_store_ari_claim(f->db.st, prod, f->t0, f->t0 + 60, &err), 1);
    assert_int_equal(ck_store_ari_save(f->db.st, &window, &err), 0);

    struct ck_scheduler_report r = tick(f, f->t0 + 10 * DAY - 1);
    assert_int_equal(r.renewals_started, 0);
    assert_int_equal(r.ari_checked, 0); /* not due: no request */
    r = tick(f, f->t0 + 11 * DAY);
    assert_int_equal(r.renewals_started, 1);
    struct ck_event *ev = last_event(f, "renewal_started", &events, &n);
    assert_non_null(ev);
    char expected[128];
    snprintf(expected, sizeof(expected), "\"ari_window\":{\"start\":%lld,\"end\":%lld}",
             (long long)(f->t0 + 10 * DAY), (long long)(f->t0 + 11 * DAY));
    assert_non_null(strstr(ev->data_json, "\"basis\":\"ari\""));
    assert_non_null(strstr(ev->data_json, expected));
    ck_event_array_free(events, n);
}

/* A CA that cannot be reached: the check is stored with its error, not repeated for 12 hours,
 * and the policy decides meanwhile. */
static void test_ari_unreachable_twice_a_day(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    struct ck_ari_status got = {0};
    make_acme_issuer(f, "le");
    int64_t e = make_enrollment(f, "api", "le", NULL, false);
    int64_t prod = make_order(f, e, CK_ORDER_DEPLOYED, f->t0, f->t0 + 90 * DAY);
    int64_t now = f->t0 + DAY;
    struct ck_scheduler_report r = tick(f, now);
    assert_int_equal(r.ari_checked, 1);
    assert_int_equal(r.renewals_started, 0);
    assert_int_equal(ck_store_ari_get(f->db.st, prod, &got, &err), 1);
    assert_false(got.has_window);
    assert_non_null(got.last_error);
    assert_int_equal(got.checked_at, now);
    assert_int_equal(got.next_check_at, now + 12 * 3600);
    ck_ari_status_free(&got);
    r = tick(f, now + 12 * 3600 - 1);
    assert_int_equal(r.ari_checked, 0);
    r = tick(f, now + 12 * 3600);
    assert_int_equal(r.ari_checked, 1);
    /* the policy still renews at day 60 */
    r = tick(f, f->t0 + 61 * DAY);
    assert_int_equal(r.renewals_started, 1);
}

/* Two daemons: a claimed check is not claimed again until its lease ends or it is saved; a
 * failed check keeps the window from before. */
static void test_ari_store_claim_and_keep(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    struct ck_ari_status got = {0};
    int64_t e = make_enrollment(f, "api", "mine", NULL, false);
    int64_t prod = make_order(f, e, CK_ORDER_DEPLOYED, f->t0, f->t0 + 90 * DAY);
    int64_t now = f->t0;
    assert_int_equal(ck_store_ari_get(f->db.st, prod, &got, &err), 0);
    assert_int_equal(ck_store_ari_claim(f->db.st, prod, now, now + 60, &err), 1);
    assert_int_equal(ck_store_ari_claim(f->db.st, prod, now + 1, now + 61, &err), 0);
    struct ck_ari_status answer = {.order_id = prod,
                                   .cert_id = "a.b",
                                   .offered = true,
                                   .has_window = true,
                                   .window_start = now + 5,
                                   .window_end = now + 9,
                                   .explanation_url = "https://ca.example/why",
                                   .checked_at = now,
                                   .next_check_at = now + 100};
    assert_int_equal(ck_store_ari_save(f->db.st, &answer, &err), 0);
    assert_int_equal(ck_store_ari_claim(f->db.st, prod, now + 99, now + 159, &err), 0);
    assert_int_equal(ck_store_ari_claim(f->db.st, prod, now + 100, now + 160, &err), 1);
    const struct ck_ari_status failed = {.order_id = prod,
                                         .cert_id = "a.b",
                                         .offered = true,
                                         .last_error = "HTTP 500",
                                         .checked_at = now + 100,
                                         .next_check_at = now + 200};
    assert_int_equal(ck_store_ari_save(f->db.st, &failed, &err), 0);
    assert_int_equal(ck_store_ari_get(f->db.st, prod, &got, &err), 1);
    assert_true(got.has_window);
    assert_int_equal(got.window_start, now + 5);
    assert_int_equal(got.window_end, now + 9);
    assert_string_equal(got.explanation_url, "https://ca.example/why");
    assert_string_equal(got.last_error, "HTTP 500");
    assert_int_equal(got.next_check_at, now + 200);
    ck_ari_status_free(&got);
    /* the CA stops offering ARI: the window goes */
    assert_int_equal(ck_store_ari_claim(f->db.st, prod, now + 200, now + 260, &err), 1);
    const struct ck_ari_status gone = {
        .order_id = prod, .offered = false, .checked_at = now + 200, .next_check_at = now + 300};
    assert_int_equal(ck_store_ari_save(f->db.st, &gone, &err), 0);
    assert_int_equal(ck_store_ari_get(f->db.st, prod, &got, &err), 1);
    assert_false(got.has_window);
    assert_false(got.offered);
    ck_ari_status_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_order_for_automatic_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_order_for_manual_without_certificate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renewal_window_default_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_explicit_renew_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_for_manual_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_order_retried_after_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgent_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_urgent_with_plenty_of_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_certificate_staged_then_deployed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_staged_renewal_waits_for_deploy_before, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_always_test_on_staging_needs_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_cap, setup_cap2, teardown),
        cmocka_unit_test_setup_teardown(test_two_schedulers_one_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ari_window_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ari_unreachable_twice_a_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ari_store_claim_and_keep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
