/* The server's small parts: routing (404/405, placeholders), ids in paths, the --api address
 * and the loopback rule, token format. Includes the .c files to reach their static helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/server/daemon.c"
#include "../../src/server/http.c"

/* Routes path for method; returns the route or NULL with err's status. The first
 * placeholder's value is copied to first (the others point into freed memory). */
static const struct route *route_first(enum evhttp_cmd_type method, const char *path,
                                       const char **params, char first[64], ck_error *err)
{
    struct path p = {0};
    const struct route *found = NULL;
    char allow[64];
    memset(err, 0, sizeof(*err));
    if (path_split(path, &p) != 0)
        ck_error_set(err, 404, "not_found", "no such route");
    else
        found = route_find(method, &p, params, allow, sizeof(allow), err);
    if (found != NULL && params[0] != NULL) {
        snprintf(first, 64, "%s", params[0]);
        params[0] = first;
    }
    free(p.buf);
    return found;
}

static const struct route *route(enum evhttp_cmd_type method, const char *path, const char **params,
                                 ck_error *err)
{
    char first[64];
    return route_first(method, path, params, first, err);
}

static void test_routes_match_segments(void **state)
{
    (void)state;
    const char *params[CK_ROUTE_PARAMS_MAX] = {0};
    ck_error err;
    char first[64];
    const struct route *r = route_first(EVHTTP_REQ_GET, "/v1/orders/7/csr", params, first, &err);
    assert_non_null(r);
    assert_ptr_equal(r->handler, ck_api_order_csr);
    assert_string_equal(first, "7");
    r = route(EVHTTP_REQ_GET, "/v1/jobs/12/artifacts/csr", params, &err);
    assert_non_null(r);
    assert_ptr_equal(r->handler, ck_api_job_artifact);
    r = route(EVHTTP_REQ_HEAD, "/v1/jobs", params, &err);
    assert_non_null(r);
    assert_ptr_equal(r->handler, ck_api_job_list);
    r = route(EVHTTP_REQ_PATCH, "/v1/enrollments/shop", params, &err);
    assert_ptr_equal(r->handler, ck_api_enrollment_update);
    assert_int_equal(r->access, ACCESS_EDITOR);
    r = route(EVHTTP_REQ_POST, "/v1/tenants", params, &err);
    assert_int_equal(r->access, ACCESS_OPERATOR);
}

static void test_unknown_routes_and_methods(void **state)
{
    (void)state;
    const char *params[CK_ROUTE_PARAMS_MAX] = {0};
    ck_error err;
    assert_null(route(EVHTTP_REQ_DELETE, "/v1/jobs", params, &err));
    assert_int_equal(err.status, 405);
    assert_string_equal(err.code, "method_not_allowed");
    assert_non_null(strstr(err.message, "GET"));
    const char *missing[] = {"/v1/nowhere", "/v1/orders/",
                             "/v1//orders", "/v1/orders/7/csr/x",
                             "/",           "/v1/a/b/c/d/e/f/g/h/i/j",
                             "v1/jobs"};
    for (size_t i = 0; i < CK_ARRAY_LEN(missing); i++) {
        assert_null(route(EVHTTP_REQ_GET, missing[i], params, &err));
        assert_int_equal(err.status, 404);
    }
}

/* Issue 3: one path, two methods with different roles; PUT is routed and named in Allow. */
static void test_certificate_event_and_root_routes(void **state)
{
    (void)state;
    const char *params[CK_ROUTE_PARAMS_MAX] = {0};
    ck_error err;
    const struct route *r = route(EVHTTP_REQ_POST, "/v1/orders/7/certificate", params, &err);
    assert_ptr_equal(r->handler, ck_api_order_import);
    assert_int_equal(r->access, ACCESS_EDITOR);
    r = route(EVHTTP_REQ_GET, "/v1/orders/7/certificate", params, &err);
    assert_ptr_equal(r->handler, ck_api_order_certificate);
    assert_int_equal(r->access, ACCESS_VIEWER);
    r = route(EVHTTP_REQ_POST, "/v1/orders/7/acknowledge", params, &err);
    assert_ptr_equal(r->handler, ck_api_order_acknowledge);
    assert_int_equal(r->access, ACCESS_EDITOR);
    r = route(EVHTTP_REQ_PUT, "/v1/poll/3", params, &err);
    assert_ptr_equal(r->handler, ck_api_poll_confirm);
    r = route(EVHTTP_REQ_GET, "/v1/poll", params, &err);
    assert_ptr_equal(r->handler, ck_api_poll);
    r = route(EVHTTP_REQ_DELETE, "/v1/roots/2", params, &err);
    assert_ptr_equal(r->handler, ck_api_root_delete);
    assert_int_equal(r->access, ACCESS_EDITOR);
    assert_null(route(EVHTTP_REQ_DELETE, "/v1/poll/3", params, &err));
    assert_int_equal(err.status, 405);
    assert_non_null(strstr(err.message, "PUT"));
    assert_null(route(EVHTTP_REQ_PUT, "/v1/orders/7/certificate", params, &err));
    assert_non_null(strstr(err.message, "POST, GET"));
}

static void test_ids_in_paths(void **state)
{
    (void)state;
    struct ck_request r = {0};
    int64_t id = 0;
    ck_error err;
    char good[] = "42";
    r.params[0] = good;
    assert_int_equal(ck_http_param_id(&r, 0, "order", &id, &err), 0);
    assert_int_equal(id, 42);
    const char *bad[] = {"abc", "0", "007", "-1", "1e3", "99999999999999999999999", ""};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++) {
        r.params[0] = (char *)bad[i];
        assert_int_equal(ck_http_param_id(&r, 0, "order", &id, &err), -1);
        assert_int_equal(err.status, 404);
    }
}

static int parse_api(const char *api, struct serve_options *o)
{
    memset(o, 0, sizeof(*o));
    o->api = api;
    return parse_api_address(o);
}

static void test_api_address(void **state)
{
    (void)state;
    struct serve_options o;
    assert_int_equal(parse_api("127.0.0.1:8443", &o), 0);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.port, 8443);
    assert_int_equal(parse_api("[::1]:443", &o), 0);
    assert_string_equal(o.host, "::1");
    assert_int_equal(o.port, 443);
    assert_int_equal(parse_api("localhost:1", &o), 0);
    assert_string_equal(o.host, "localhost");
    const char *bad[] = {"8443",       "host:",     ":8443",     "host:0",
                         "host:70000", "[::1]8443", "[::1:8443", "host:84x"};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++)
        assert_int_equal(parse_api(bad[i], &o), -1);
}

static void test_loopback_rule(void **state)
{
    (void)state;
    assert_true(ck_host_is_loopback("127.0.0.1"));
    assert_true(ck_host_is_loopback("127.9.8.7"));
    assert_true(ck_host_is_loopback("::1"));
    assert_true(ck_host_is_loopback("localhost"));
    assert_false(ck_host_is_loopback("0.0.0.0"));
    assert_false(ck_host_is_loopback("10.1.2.3"));
    assert_false(ck_host_is_loopback("::"));
    assert_false(ck_host_is_loopback("128.0.0.1"));
    assert_false(ck_host_is_loopback("example.com"));

    char *plain[] = {"serve", "--data", "/nonexistent", "--api", "0.0.0.0:8443", NULL};
    struct serve_options o = {0};
    assert_int_equal(parse_serve_options(5, plain, &o), EXIT_USAGE);
    char *insecure[] = {"serve", "--data", "/x", "--api", "0.0.0.0:8443", "--insecure-http", NULL};
    memset(&o, 0, sizeof(o));
    assert_int_equal(parse_serve_options(6, insecure, &o), EXIT_OK);
    assert_int_equal(o.workers, DEFAULT_WORKERS);
    char *tls[] = {"serve",      "--data", "/x",        "--api", "0.0.0.0:8443",
                   "--api-cert", "c",      "--api-key", "k",     "--workers",
                   "4",          NULL};
    memset(&o, 0, sizeof(o));
    assert_int_equal(parse_serve_options(11, tls, &o), EXIT_OK);
    assert_int_equal(o.workers, 4);
    char *half[] = {"serve", "--data", "/x", "--api", "127.0.0.1:1", "--api-cert", "c", NULL};
    memset(&o, 0, sizeof(o));
    assert_int_equal(parse_serve_options(7, half, &o), EXIT_USAGE);
}

static void test_token_format(void **state)
{
    (void)state;
    char token[68], other[68];
    uint8_t hash[32], other_hash[32], expected[32];
    ck_error err;
    assert_int_equal(ck_auth_token_new(token, hash, &err), 0);
    assert_int_equal(ck_auth_token_new(other, other_hash, &err), 0);
    assert_int_equal(strlen(token), 67);
    assert_memory_equal(token, "ck_", 3);
    assert_int_equal(strspn(token + 3, "0123456789abcdef"), 64);
    assert_string_not_equal(token, other);
    unsigned int len = 0;
    EVP_Digest(token, strlen(token), expected, &len, EVP_sha256(), NULL);
    assert_memory_equal(hash, expected, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match_segments),
        cmocka_unit_test(test_unknown_routes_and_methods),
        cmocka_unit_test(test_certificate_event_and_root_routes),
        cmocka_unit_test(test_ids_in_paths),
        cmocka_unit_test(test_api_address),
        cmocka_unit_test(test_loopback_rule),
        cmocka_unit_test(test_token_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
