/* Expiry monitoring and metrics (issue 6, items 5 and 6): watch endpoints, probe decisions,
 * the Prometheus text, and the store's leased status per endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/prom.h"
#include "core/enrollment_input.h"
#include "core/watch.h"
#include "server/metrics.h"
#include "store/store.h"
#include "temp_store.h"

/* ---- endpoints ---- */

static void assert_endpoint(const char *text, const char *key, const char *address, const char *sni)
{
    struct ck_watch_endpoint ep;
    ck_error err = {0};
    assert_int_equal(ck_watch_endpoint_parse(text, &ep, &err), 0);
    assert_string_equal(ep.text, key);
    assert_string_equal(ep.address, address);
    assert_string_equal(ep.sni, sni);
}

static void test_endpoints_good(void **state)
{
    (void)state;
    assert_endpoint("127.0.0.1:443", "127.0.0.1:443", "127.0.0.1:443", "");
    assert_endpoint("Shop.Example.COM:8443", "shop.example.com:8443", "shop.example.com:8443", "");
    assert_endpoint("[::1]:443/API.example.com", "[::1]:443/api.example.com", "[::1]:443",
                    "api.example.com");
    assert_endpoint("localhost:1", "localhost:1", "localhost:1", "");
    assert_endpoint("10.0.0.1:65535/www.example.org", "10.0.0.1:65535/www.example.org",
                    "10.0.0.1:65535", "www.example.org");
}

static void assert_bad_endpoint(const char *text, const char *needle)
{
    struct ck_watch_endpoint ep;
    ck_error err = {0};
    assert_int_equal(ck_watch_endpoint_parse(text, &ep, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_watch");
    if (strstr(err.message, needle) == NULL)
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err.message, needle);
}

static void test_endpoints_bad(void **state)
{
    (void)state;
    assert_bad_endpoint("", "empty");
    assert_bad_endpoint("example.com", "port is missing");
    assert_bad_endpoint("example.com:", "from 1 to 65535");
    assert_bad_endpoint("example.com:0", "from 1 to 65535");
    assert_bad_endpoint("example.com:65536", "from 1 to 65535");
    assert_bad_endpoint("example.com:123456", "from 1 to 65535");
    assert_bad_endpoint("example.com:-1", "from 1 to 65535");
    assert_bad_endpoint("example.com:44x", "from 1 to 65535");
    assert_bad_endpoint(":443", "host is empty");
    assert_bad_endpoint("::1:443", "brackets");
    assert_bad_endpoint("[127.0.0.1]:443", "not an IPv6 address");
    assert_bad_endpoint("[::1]443", "brackets");
    assert_bad_endpoint("300.1.1.1:443", "not a valid IPv4");
    assert_bad_endpoint("exa_mple.com:443", "exa_mple.com:443");
    assert_bad_endpoint("*.example.com:443", "wildcard");
    assert_bad_endpoint("a.example.com:443/", "SNI");
    assert_bad_endpoint("a.example.com:443/*.example.com", "wildcard");
    assert_bad_endpoint("a.example.com:443/bad_name.example", "SNI");
    assert_bad_endpoint("a example.com:443", "spaces");
}

static void test_keys(void **state)
{
    (void)state;
    ck_strv names = {0}, watch = {0}, keys = {0};
    assert_int_equal(ck_strv_push(&names, "api.example.com"), 0);
    assert_int_equal(ck_strv_push(&names, "*.example.com"), 0);
    assert_int_equal(ck_strv_push(&names, "www.example.com"), 0);
    assert_int_equal(ck_strv_push(&watch, "127.0.0.1:443"), 0);
    assert_int_equal(ck_watch_keys(&names, &watch, true, &keys), 0);
    assert_int_equal(keys.len, 3);
    assert_string_equal(keys.items[0], "production/api.example.com");
    assert_string_equal(keys.items[1], "production/www.example.com");
    assert_string_equal(keys.items[2], "127.0.0.1:443");
    ck_strv_free(&keys);
    assert_int_equal(ck_watch_keys(&names, &watch, false, &keys), 0);
    assert_int_equal(keys.len, 1);
    assert_string_equal(keys.items[0], "127.0.0.1:443");
    ck_strv_free(&keys);
    ck_strv_free(&names);
    ck_strv_free(&watch);
}

/* ---- the enrollment's watch field ---- */

static void test_enrollment_watch_field(void **state)
{
    (void)state;
    struct ck_enrollment e = {0};
    struct ck_input_errors errs = {0};
    json_t *body =
        json_pack("{s:s,s:s,s:[s,s,s]}", "name", "api", "cn", "api.example.com", "watch",
                  "10.0.0.1:443/API.Example.com", "[::1]:8443", "10.0.0.1:443/api.example.com");
    assert_int_equal(ck_enrollment_input_create(body, NULL, &e, &errs), 0);
    assert_int_equal(e.watch.len, 2); /* normalised, then de-duplicated */
    assert_string_equal(e.watch.items[0], "10.0.0.1:443/api.example.com");
    assert_string_equal(e.watch.items[1], "[::1]:8443");
    json_t *out = ck_enrollment_to_json(&e);
    assert_int_equal(json_array_size(json_object_get(out, "watch")), 2);
    json_decref(out);
    json_decref(body);

    /* every bad endpoint is reported, and the enrollment keeps its list */
    body = json_pack("{s:[s,s,s]}", "watch", "10.0.0.1:0", "ok.example.com:443", "bad host:1");
    assert_int_equal(ck_enrollment_input_update(body, &e, &errs), -1);
    assert_int_equal(errs.count, 2);
    assert_string_equal(errs.first.code, "invalid_watch");
    assert_non_null(strstr(errs.first.message, "10.0.0.1:0"));
    assert_int_equal(e.watch.len, 2);
    ck_input_errors_free(&errs);
    json_decref(body);

    body = json_pack("{s:[]}", "watch");
    assert_int_equal(ck_enrollment_input_update(body, &e, &errs), 0);
    assert_int_equal(e.watch.len, 0);
    json_decref(body);
    ck_enrollment_free(&e);
}

/* ---- decisions ---- */

#define DAY 86400

static enum ck_watch_status decide(bool reached, bool same, int64_t not_after, int64_t now)
{
    const struct ck_watch_observation obs = {.reached = reached,
                                             .same_certificate = same,
                                             .not_before = not_after - 90 * DAY,
                                             .not_after = not_after,
                                             .renew_before = "30d",
                                             .validation = CK_VALIDATION_DV,
                                             .seed = 7};
    enum ck_watch_status s = CK_WATCH_NONE;
    ck_error err = {0};
    assert_int_equal(ck_watch_decide(&obs, now, &s, &err), 0);
    return s;
}

static void test_decide(void **state)
{
    (void)state;
    const int64_t now = 1800000000;
    assert_int_equal(decide(false, false, 0, now), CK_WATCH_UNREACHABLE);
    /* another certificate is a mismatch whatever its dates */
    assert_int_equal(decide(true, false, now + 80 * DAY, now), CK_WATCH_MISMATCH);
    assert_int_equal(decide(true, false, now + 2 * DAY, now), CK_WATCH_MISMATCH);
    assert_int_equal(decide(true, true, now + 80 * DAY, now), CK_WATCH_OK);
    /* inside the 30-day renewal window (plus the scheduler's spread of at most 1 h) */
    assert_int_equal(decide(true, true, now + 29 * DAY, now), CK_WATCH_EXPIRING);
    assert_int_equal(decide(true, true, now - 1, now), CK_WATCH_EXPIRING);

    const struct ck_watch_observation bad = {.reached = true,
                                             .same_certificate = true,
                                             .not_before = now - DAY,
                                             .not_after = now + DAY,
                                             .renew_before = "soon"};
    enum ck_watch_status s;
    ck_error err = {0};
    assert_int_equal(ck_watch_decide(&bad, now, &s, &err), -1);
}

static void test_event_types(void **state)
{
    (void)state;
    assert_null(ck_watch_event_type(CK_WATCH_NONE, CK_WATCH_OK));
    assert_null(ck_watch_event_type(CK_WATCH_OK, CK_WATCH_OK));
    assert_null(ck_watch_event_type(CK_WATCH_MISMATCH, CK_WATCH_MISMATCH));
    assert_string_equal(ck_watch_event_type(CK_WATCH_NONE, CK_WATCH_MISMATCH), "endpoint_mismatch");
    assert_string_equal(ck_watch_event_type(CK_WATCH_OK, CK_WATCH_EXPIRING), "endpoint_expiring");
    assert_string_equal(ck_watch_event_type(CK_WATCH_EXPIRING, CK_WATCH_UNREACHABLE),
                        "endpoint_unreachable");
    assert_string_equal(ck_watch_event_type(CK_WATCH_UNREACHABLE, CK_WATCH_OK), "endpoint_ok");
    for (int s = CK_WATCH_NONE; s <= CK_WATCH_UNREACHABLE; s++)
        assert_int_equal(ck_watch_status_parse(ck_watch_status_name((enum ck_watch_status)s)), s);
    assert_int_equal(ck_watch_status_parse("bogus"), CK_WATCH_NONE);
}

/* ---- the Prometheus text ---- */

static void test_prom_escaping(void **state)
{
    (void)state;
    struct ck_prom p = {0};
    const struct ck_prom_label labels[] = {{"tenant", "a\\b\"c\nd"}, {"enrollment", "plain"}};
    ck_prom_family(&p, "x_total", "counter", "Help with \\ and\nnewline \"kept\".");
    ck_prom_sample(&p, "x_total", labels, 2, 42);
    ck_prom_sample(&p, "x_total", NULL, 0, -3);
    const char *text = ck_prom_text(&p, NULL);
    assert_string_equal(text, "# HELP x_total Help with \\\\ and\\nnewline \"kept\".\n"
                              "# TYPE x_total counter\n"
                              "x_total{tenant=\"a\\\\b\\\"c\\nd\",enrollment=\"plain\"} 42\n"
                              "x_total -3\n");
    ck_prom_free(&p);
    assert_null(p.buf);
}

static void test_metrics_render(void **state)
{
    (void)state;
    struct ck_metric_count expiries[] = {{"default", "api", 1900000000}};
    struct ck_metric_count orders[] = {{"default", "deployed", 1}, {"acme", "failed", 2}};
    struct ck_metric_count jobs[] = {{NULL, "issue", 3}};
    struct ck_metric_count hooks[] = {{"acme", NULL, 5}};
    const struct ck_store_metrics m = {.expiries = expiries,
                                       .n_expiries = 1,
                                       .orders = orders,
                                       .n_orders = 2,
                                       .job_failures = jobs,
                                       .n_job_failures = 1,
                                       .webhook_failures = hooks,
                                       .n_webhook_failures = 1};
    const struct ck_edge_counts edge = {.handshakes = {1, 20}, .errors = {0, 4}};
    struct ck_prom p = {0};
    ck_metrics_render(&m, &edge, &p);
    const char *text = ck_prom_text(&p, NULL);
    static const char *const lines[] = {
        "# TYPE certkeep_certificate_expiry_timestamp_seconds gauge\n",
        "\ncertkeep_certificate_expiry_timestamp_seconds{tenant=\"default\",enrollment=\"api\"} "
        "1900000000\n",
        "\n# TYPE certkeep_orders gauge\n",
        "\ncertkeep_orders{tenant=\"default\",state=\"deployed\"} 1\n",
        "\ncertkeep_orders{tenant=\"acme\",state=\"failed\"} 2\n",
        "\n# TYPE certkeep_job_failures_total counter\n",
        "\ncertkeep_job_failures_total{type=\"issue\"} 3\n",
        "\ncertkeep_job_failures_total{type=\"csr\"} 0\n",
        "\ncertkeep_webhook_delivery_failures_total{tenant=\"acme\"} 5\n",
        "\ncertkeep_edge_handshakes_total{listener=\"staging\"} 1\n",
        "\ncertkeep_edge_handshakes_total{listener=\"production\"} 20\n",
        "\ncertkeep_edge_handshake_errors_total{listener=\"production\"} 4\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (strstr(text, lines[i]) == NULL)
            fail_msg("missing %s in:\n%s", lines[i], text);
    /* every family has its HELP right before its TYPE */
    assert_non_null(strstr(text, "# HELP certkeep_orders Orders by tenant and state.\n"
                                 "# TYPE certkeep_orders gauge\n"));
    ck_prom_free(&p);
}

/* ---- the store: one probe per interval, one event per change ---- */

struct fixture {
    struct temp_store db;
    int64_t tenant_id, enrollment_id;
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
    struct ck_tenant t = {0};
    struct ck_enrollment e = {0};
    ck_error err = {0};
    if (f == NULL)
        return -1;
    if (temp_store_open(&f->db, "monitor") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    e.name = strdup("api");
    e.cn = strdup("api.example.com");
    e.issuer = strdup("manual");
    if (ck_store_tenant_create(f->db.st, "acme", &t, &err) != 0 || e.name == NULL || e.cn == NULL ||
        e.issuer == NULL || ck_strv_push(&e.sans, "api.example.com") != 0 ||
        ck_strv_push(&e.watch, "127.0.0.1:443") != 0 ||
        ck_strv_push(&e.watch, "127.0.0.1:444") != 0) {
        fprintf(stderr, "setup: %s\n", err.message);
        ck_enrollment_free(&e);
        ck_tenant_free(&t);
        teardown(state);
        return -1;
    }
    e.tenant_id = f->tenant_id = t.id;
    ck_tenant_free(&t);
    if (ck_store_enrollment_create(f->db.st, &e, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.message);
        ck_enrollment_free(&e);
        teardown(state);
        return -1;
    }
    f->enrollment_id = e.id;
    ck_enrollment_free(&e);
    return 0;
}

static int count_events(struct fixture *f, const char *type)
{
    struct ck_event *ev = NULL;
    size_t n = 0;
    int count = 0;
    ck_error err = {0};
    assert_int_equal(ck_store_event_list(f->db.st, f->tenant_id, 0, 100, &ev, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        count += strcmp(ev[i].type, type) == 0;
    ck_event_array_free(ev, n);
    return count;
}

static void record(struct fixture *f, const char *holder, int64_t now, const char *status,
                   const char *event_type, int expect_rc)
{
    const struct ck_watch_result res = {.status = status, .detail = "seen"};
    const struct ck_event_new ev = {
        .type = event_type, .enrollment_id = f->enrollment_id, .message = "changed"};
    ck_error err = {0};
    int rc = ck_store_watch_record(f->db.st, f->tenant_id, f->enrollment_id, "127.0.0.1:443",
                                   holder, now, &res, event_type ? &ev : NULL, &err);
    assert_int_equal(rc, expect_rc);
    if (rc != 0)
        assert_string_equal(err.code, "lease_lost");
}

static void test_store_lease_and_events(void **state)
{
    struct fixture *f = *state;
    char before[16];
    ck_error err = {0};
    const int64_t t0 = 1800000000;
    /* daemon A leases the endpoint; B, at the same moment, finds it taken */
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "A", t0, 60,
                                          30, before, sizeof(before), &err),
                     1);
    assert_string_equal(before, "none");
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "B", t0, 60,
                                          30, before, sizeof(before), &err),
                     0);
    record(f, "B", t0, "mismatch", "endpoint_mismatch", -1); /* B holds nothing */
    record(f, "A", t0, "mismatch", "endpoint_mismatch", 0);
    assert_int_equal(count_events(f, "endpoint_mismatch"), 1);
    /* not due again before the interval has passed, whoever asks */
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "B", t0 + 59,
                                          60, 30, before, sizeof(before), &err),
                     0);
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "B", t0 + 60,
                                          60, 30, before, sizeof(before), &err),
                     1);
    assert_string_equal(before, "mismatch");
    /* A's lease is gone: its late record is refused and adds no event */
    record(f, "A", t0 + 61, "ok", "endpoint_ok", -1);
    record(f, "B", t0 + 61, "mismatch", NULL, 0);
    assert_int_equal(count_events(f, "endpoint_mismatch"), 1);
    assert_int_equal(count_events(f, "endpoint_ok"), 0);
    /* a daemon that died holding a lease: someone else takes over once it runs out */
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "C",
                                          t0 + 200, 60, 30, before, sizeof(before), &err),
                     1);
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "D",
                                          t0 + 229, 0, 30, before, sizeof(before), &err),
                     0);
    assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, "127.0.0.1:443", "D",
                                          t0 + 230, 0, 30, before, sizeof(before), &err),
                     1);
}

static void test_store_list_and_prune(void **state)
{
    struct fixture *f = *state;
    char before[16];
    ck_error err = {0};
    struct ck_watch_state *states = NULL;
    size_t n = 0;
    for (int port = 443; port <= 444; port++) {
        char key[32];
        snprintf(key, sizeof(key), "127.0.0.1:%d", port);
        assert_int_equal(ck_store_watch_claim(f->db.st, f->enrollment_id, key, "A", 1000, 60, 30,
                                              before, sizeof(before), &err),
                         1);
    }
    record(f, "A", 1001, "unreachable", NULL, 0);
    assert_int_equal(
        ck_store_watch_list(f->db.st, f->tenant_id, f->enrollment_id, &states, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(states[0].endpoint, "127.0.0.1:443");
    assert_string_equal(states[0].status, "unreachable");
    assert_int_equal(states[0].checked_at, 1001);
    assert_int_equal(states[0].changed_at, 1001);
    assert_string_equal(states[1].status, "none");
    ck_watch_state_array_free(states, n);
    /* another tenant sees nothing */
    assert_int_equal(
        ck_store_watch_list(f->db.st, f->tenant_id + 1, f->enrollment_id, &states, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_watch_state_array_free(states, n);
    /* the enrollment stops watching :444: its status goes with it */
    struct ck_enrollment e = {0};
    assert_int_equal(ck_store_enrollment_get(f->db.st, f->tenant_id, "api", &e, &err), 0);
    assert_int_equal(e.watch.len, 2);
    ck_strv_free(&e.watch);
    assert_int_equal(ck_strv_push(&e.watch, "127.0.0.1:443"), 0);
    assert_int_equal(ck_store_enrollment_update(f->db.st, &e, &err), 0);
    ck_enrollment_free(&e);
    assert_int_equal(
        ck_store_watch_list(f->db.st, f->tenant_id, f->enrollment_id, &states, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(states[0].endpoint, "127.0.0.1:443");
    ck_watch_state_array_free(states, n);
    ck_strv keep = {0};
    assert_int_equal(ck_store_watch_prune(f->db.st, f->enrollment_id, &keep, &err), 0);
    assert_int_equal(
        ck_store_watch_list(f->db.st, f->tenant_id, f->enrollment_id, &states, &n, &err), 0);
    assert_int_equal(n, 0);
    ck_watch_state_array_free(states, n);
}

static void test_store_metrics_and_ping(void **state)
{
    struct fixture *f = *state;
    struct ck_store_metrics m = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_ping(f->db.st, &err), 0);
    assert_int_equal(ck_store_metrics_read(f->db.st, 0, &m, &err), 0);
    assert_int_equal(m.n_expiries, 0); /* nothing deployed */
    assert_int_equal(m.n_orders, 0);
    ck_store_metrics_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints_good),
        cmocka_unit_test(test_endpoints_bad),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_enrollment_watch_field),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_event_types),
        cmocka_unit_test(test_prom_escaping),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test_setup_teardown(test_store_lease_and_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_list_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_metrics_and_ping, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
