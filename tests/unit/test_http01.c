/* The edge's http-01 listener against a real store, on loopback; the edge address helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/clock.h"
#include "core/edge_jobs.h"
#include "server/edge_runtime.h"
#include "server/http01.h"
#include "store/store.h"
#include "temp_store.h"

#define ANSWER_MAX  8192
#define LOOP_TURNS  2000 /* 1 ms each: an answer on loopback comes long before */
#define KNOWN_TOKEN "tok-1_Abc"
#define KEY_AUTH    "tok-1_Abc.thumbprint"

struct fixture {
    struct temp_store db;
    struct event_base *base;
    struct ck_http01 *http;
    ck_strv bound;
    int port;
};

static int teardown(void **state)
{
    struct fixture *f = *state;
    ck_http01_free(f->http);
    if (f->base != NULL) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        event_base_free(f->base);
    }
    ck_strv_free(&f->bound);
    temp_store_remove(&f->db);
    free(f);
    return 0;
}

/* A tenant, an enrollment and an order to hang the tokens on. */
static int64_t make_order(struct ck_store *st)
{
    struct ck_tenant t = {0};
    struct ck_enrollment e = {0};
    ck_error err = {0};
    int64_t order_id = 0, job_id = 0;
    assert_int_equal(ck_store_tenant_create(st, "t1", &t, &err), 0);
    e.tenant_id = t.id;
    e.name = strdup("shop");
    e.cn = strdup("shop.example.com");
    assert_int_equal(ck_strv_push(&e.sans, "shop.example.com"), 0);
    e.key_type = CK_KEY_EC_P256;
    e.validation = CK_VALIDATION_DV;
    e.issuer = strdup("manual");
    assert_int_equal(ck_store_enrollment_create(st, &e, &err), 0);
    assert_int_equal(ck_store_order_create(st, t.id, e.id, &order_id, &job_id, &err), 0);
    ck_enrollment_free(&e);
    ck_tenant_free(&t);
    return order_id;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    ck_error err = {0};
    if (f == NULL)
        return -1;
    *state = f;
    if (temp_store_open(&f->db, "http01") != 0)
        return -1;
    int64_t order_id = make_order(f->db.st);
    int64_t now = ck_clock_now();
    if (ck_store_http01_put(f->db.st, KNOWN_TOKEN, KEY_AUTH, order_id, now + 600, &err) != 0 ||
        ck_store_http01_put(f->db.st, "expiredToken", "expired.thumb", order_id, now - 1, &err) !=
            0)
        return -1;
    ck_strv addresses = {0};
    ck_strv_push(&addresses, "127.0.0.1:0");
    f->base = event_base_new();
    int rc = ck_http01_start(f->base, f->db.st, &addresses, &f->bound, &f->http, &err);
    ck_strv_free(&addresses);
    if (rc != 0 || f->bound.len != 1)
        return -1;
    f->port = atoi(strrchr(f->bound.items[0], ':') + 1);
    return f->port > 0 ? 0 : -1;
}

/* Sends request, turns the loop until the server closes, returns the whole answer. */
static char *exchange(struct fixture *f, const char *request)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
    char *answer = calloc(1, ANSWER_MAX + 1);
    size_t got = 0;
    const struct timespec pause = {.tv_nsec = 1000000L};
    for (int i = 0; i < LOOP_TURNS && got < ANSWER_MAX; i++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, answer + got, ANSWER_MAX - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0)
            got += (size_t)n;
        else
            nanosleep(&pause, NULL);
    }
    close(fd);
    return answer;
}

static void test_known_token_answers_key_authorization(void **state)
{
    char *a = exchange(*state, "GET /.well-known/acme-challenge/" KNOWN_TOKEN
                               " HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 200"));
    const char *body = strstr(a, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, KEY_AUTH);
    free(a);
}

static void test_unknown_expired_or_odd_tokens_are_404(void **state)
{
    static const char *const paths[] = {
        "/.well-known/acme-challenge/nope", "/.well-known/acme-challenge/expiredToken",
        "/.well-known/acme-challenge/a.b", "/.well-known/acme-challenge/"};
    char request[256];
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        snprintf(request, sizeof(request),
                 "GET %s HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n",
                 paths[i]);
        char *a = exchange(*state, request);
        assert_non_null(strstr(a, "HTTP/1.1 404"));
        assert_null(strstr(a, "thumb"));
        free(a);
    }
}

static void test_other_paths_redirect_to_https(void **state)
{
    char *a = exchange(*state, "GET /shop/cart?id=3 HTTP/1.1\r\nHost: shop.example.com:80\r\n"
                               "Connection: close\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 301"));
    assert_non_null(strstr(a, "Location: https://shop.example.com/shop/cart?id=3\r\n"));
    free(a);
    a = exchange(*state, "GET / HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, "Location: https://[::1]/\r\n"));
    free(a);
}

static void test_redirect_needs_a_sane_host(void **state)
{
    char *a = exchange(*state, "GET / HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(a, " 400 "));
    free(a);
    a = exchange(*state, "GET / HTTP/1.1\r\nHost: evil\"host\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, " 400 "));
    assert_null(strstr(a, "Location"));
    free(a);
}

static void test_address_split(void **state)
{
    (void)state;
    char host[64];
    int port = -1;
    ck_error err = {0};
    assert_int_equal(ck_edge_address_split("127.0.0.1:8444", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8444);
    assert_int_equal(ck_edge_address_split("[::1]:0", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    static const char *const bad[] = {"127.0.0.1", ":80",           "1.2.3.4:", "1.2.3.4:x",
                                      "[::1:80",   "1.2.3.4:70000", "[::1]x:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ck_edge_address_split(bad[i], host, sizeof(host), &port, &err), -1);
        assert_string_equal(err.code, "invalid_address");
    }
}

static void test_wildcards_get_a_test_label(void **state)
{
    (void)state;
    char name[256];
    ck_edge_test_name("*.shop.example.com", name, sizeof(name));
    assert_string_equal(name, "certkeep-test.shop.example.com");
    ck_edge_test_name("shop.example.com", name, sizeof(name));
    assert_string_equal(name, "shop.example.com");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_known_token_answers_key_authorization, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_expired_or_odd_tokens_are_404, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_paths_redirect_to_https, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_needs_a_sane_host, setup, teardown),
        cmocka_unit_test(test_address_split),
        cmocka_unit_test(test_wildcards_get_a_test_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
