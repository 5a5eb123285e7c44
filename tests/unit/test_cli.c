/* Unit tests for the command line's shared parts: option parsing, paths and queries sent to the
 * API, output formatting, and the HTTP client against a one-shot loopback server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

static void test_take_flag_anywhere(void **state)
{
    (void)state;
    char *argv[] = {"order", "--json", "show", "7", "--json", "--", "--json", NULL};
    int argc = 7;
    assert_true(ck_cli_take_flag(&argc, argv, "--json"));
    assert_int_equal(argc, 5);
    assert_string_equal(argv[1], "show");
    assert_string_equal(argv[2], "7");
    assert_string_equal(argv[3], "--");
    assert_string_equal(argv[4], "--json"); /* after "--" it is an argument */
    assert_null(argv[5]);

    char *plain[] = {"jobs", "--state", "queued", NULL};
    argc = 3;
    assert_false(ck_cli_take_flag(&argc, plain, "--json"));
    assert_int_equal(argc, 3);
}

static void test_wants_help(void **state)
{
    (void)state;
    char *a[] = {"jobs", "--state", "x", "--help", NULL};
    char *b[] = {"jobs", "--", "-h", NULL};
    assert_true(ck_cli_wants_help(4, a));
    assert_false(ck_cli_wants_help(3, b));
}

struct create_opts {
    const char *cn;
    ck_strv sans;
    bool flag;
};

static int parse_create(struct create_opts *o, int argc, char **argv, char ***args, int *n)
{
    const struct ck_opt opts[] = {
        {"cn", CK_OPT_STRING, &o->cn},
        {"san", CK_OPT_LIST, &o->sans},
        {"always", CK_OPT_FLAG, &o->flag},
    };
    const struct ck_cli_spec spec = {"usage: test\n", opts, 3, 1, 1};
    return ck_cli_parse(&spec, argc, argv, args, n);
}

static void test_parse_options_and_arguments(void **state)
{
    (void)state;
    struct create_opts o = {0};
    char *argv[] = {"create",         "--san",        "a.example", "shop",
                    "--cn=x.example", "--san",        "b.example", "--always",
                    "--cn",           "shop.example", NULL};
    char **args;
    int n;
    assert_int_equal(parse_create(&o, 10, argv, &args, &n), CK_EXIT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(args[0], "shop");
    assert_string_equal(o.cn, "shop.example"); /* the last one wins */
    assert_int_equal(o.sans.len, 2);
    assert_string_equal(o.sans.items[0], "a.example");
    assert_string_equal(o.sans.items[1], "b.example");
    assert_true(o.flag);
    ck_strv_free(&o.sans);

    /* A second parse in the same process starts afresh (optind is reset). */
    struct create_opts again = {0};
    char *argv2[] = {"create", "web", "--cn", "web.example", NULL};
    assert_int_equal(parse_create(&again, 4, argv2, &args, &n), CK_EXIT_OK);
    assert_string_equal(args[0], "web");
    assert_string_equal(again.cn, "web.example");
    assert_false(again.flag);
}

static void test_parse_usage_errors(void **state)
{
    (void)state;
    char **args;
    int n;
    struct create_opts o = {0};
    char *unknown[] = {"create", "shop", "--colour", "blue", NULL};
    assert_int_equal(parse_create(&o, 4, unknown, &args, &n), CK_EXIT_USAGE);
    char *no_value[] = {"create", "shop", "--cn", NULL};
    assert_int_equal(parse_create(&o, 3, no_value, &args, &n), CK_EXIT_USAGE);
    char *missing_arg[] = {"create", "--cn", "x", NULL};
    assert_int_equal(parse_create(&o, 3, missing_arg, &args, &n), CK_EXIT_USAGE);
    char *extra_arg[] = {"create", "a", "b", NULL};
    assert_int_equal(parse_create(&o, 3, extra_arg, &args, &n), CK_EXIT_USAGE);
    char *short_opt[] = {"create", "a", "-x", NULL};
    assert_int_equal(parse_create(&o, 3, short_opt, &args, &n), CK_EXIT_USAGE);
    ck_strv_free(&o.sans);
}

static void test_parse_id(void **state)
{
    (void)state;
    long long id = 0;
    assert_int_equal(ck_cli_parse_id("42", "u\n", &id), CK_EXIT_OK);
    assert_int_equal(id, 42);
    const char *bad[] = {"0", "-1", "+3", "12a", "", "x", "99999999999999999999999"};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++)
        assert_int_equal(ck_cli_parse_id(bad[i], "u\n", &id), CK_EXIT_USAGE);
}

static void test_api_path_escapes_segments(void **state)
{
    (void)state;
    char *path = ck_api_path("/v1/enrollments/%s/orders", "a b/../c?d");
    assert_string_equal(path, "/v1/enrollments/a%20b%2F..%2Fc%3Fd/orders");
    free(path);
    path = ck_api_path("/v1/jobs/%lld/artifacts/%s", 12LL, "csr");
    assert_string_equal(path, "/v1/jobs/12/artifacts/csr");
    free(path);
}

static void test_api_query(void **state)
{
    (void)state;
    const struct ck_query_param q[] = {{"state", NULL}, {"enrollment", "shop&x=1"}, {"order", "7"}};
    char *path = ck_api_path_query("/v1/jobs", q, 3);
    assert_string_equal(path, "/v1/jobs?enrollment=shop%26x%3D1&order=7");
    free(path);
    path = ck_api_path_query("/v1/jobs", q, 1);
    assert_string_equal(path, "/v1/jobs");
    free(path);
}

static void assert_display(const char *json_text, const char *expected)
{
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    char *text = ck_json_display(v);
    assert_string_equal(text, expected);
    free(text);
    json_decref(v);
}

static void test_json_display(void **state)
{
    (void)state;
    assert_display("[\"a.example\", \"b.example\"]", "a.example, b.example");
    assert_display("[]", "-");
    assert_display("null", "-");
    assert_display("true", "yes");
    assert_display("false", "no");
    assert_display("42", "42");
    assert_display("\"text\"", "text");
    char *absent = ck_json_display(NULL);
    assert_string_equal(absent, "-");
    free(absent);
}

static void test_json_at_dotted_path(void **state)
{
    (void)state;
    json_t *o = json_loads("{\"csr\":{\"subject\":{\"text\":\"CN=a\"}},\"n\":1}", 0, NULL);
    assert_string_equal(ck_json_str(o, "csr.subject.text"), "CN=a");
    assert_null(ck_json_at(o, "csr.nothing.text"));
    assert_null(ck_json_str(o, "n")); /* not a string */
    json_decref(o);
}

/* Runs fn with its output captured; returns the text (caller frees). */
static char *capture_table(const char *items_json, const char *empty)
{
    static const struct ck_column cols[] = {{"ID", "id"}, {"STATE", "state"}, {"NAME", "name"}};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    json_t *items = json_loads(items_json, 0, NULL);
    assert_int_equal(ck_out_table(out, items, cols, 3, empty), CK_EXIT_OK);
    fclose(out);
    json_decref(items);
    return text;
}

static void test_table_aligns_columns(void **state)
{
    (void)state;
    char *text = capture_table("[{\"id\":7,\"state\":\"csr_ready\",\"name\":\"shop\"},"
                               "{\"id\":12,\"state\":\"new\",\"name\":null}]",
                               "no orders");
    assert_string_equal(text, "ID  STATE      NAME\n"
                              "7   csr_ready  shop\n"
                              "12  new        -\n");
    free(text);
    text = capture_table("[]", "no orders");
    assert_string_equal(text, "no orders\n");
    free(text);
}

static void test_view_and_pairs(void **state)
{
    (void)state;
    static const struct ck_view_row rows[] = {{"name", "name"}, {"sans", "sans"}};
    static const struct ck_view_row pairs[] = {{"key", "key_type"}, {"issuer", "issuer"}};
    json_t *e = json_loads("{\"name\":\"shop\",\"sans\":[\"a\",\"b\"],\"key_type\":\"ec-p256\","
                           "\"issuer\":\"manual\"}",
                           0, NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_out_view(out, e, rows, 2);
    ck_out_pairs(out, e, pairs, 2);
    fclose(out);
    assert_string_equal(text, "name        shop\n"
                              "sans        a, b\n"
                              "key         ec-p256    issuer manual\n");
    free(text);
    json_decref(e);
}

static void test_body_refuses_non_utf8(void **state)
{
    (void)state;
    json_t *body = json_object();
    assert_int_equal(ck_body_set_str(body, "cn", NULL), CK_EXIT_OK);
    assert_null(json_object_get(body, "cn"));
    assert_int_equal(ck_body_set_str(body, "cn", "caf\xc3"), CK_EXIT_USAGE);
    ck_strv list = {0};
    assert_int_equal(ck_body_set_list(body, "sans", &list), CK_EXIT_OK);
    assert_null(json_object_get(body, "sans")); /* an empty list is left out */
    ck_strv_push(&list, "a.example");
    assert_int_equal(ck_body_set_list(body, "sans", &list), CK_EXIT_OK);
    assert_int_equal(json_array_size(json_object_get(body, "sans")), 1);
    ck_strv_free(&list);
    json_decref(body);
}

static void test_client_needs_token(void **state)
{
    (void)state;
    struct ck_client *c = NULL;
    unsetenv("CERTKEEP_TOKEN");
    assert_int_equal(ck_client_open(&c), CK_EXIT_USAGE);
    assert_null(c);
    setenv("CERTKEEP_TOKEN", "ck_test", 1);
    setenv("CERTKEEP_ADDR", "ftp://127.0.0.1:1", 1);
    assert_int_equal(ck_client_open(&c), CK_EXIT_USAGE);
    assert_null(c);
}

/* CERTKEEP_ADDR in the form `serve --api` takes: http:// on loopback, refused elsewhere. */
static void test_client_bare_address(void **state)
{
    (void)state;
    struct ck_client *c = NULL;
    setenv("CERTKEEP_TOKEN", "ck_test", 1);
    const char *refused[] = {"10.0.0.5:8443", "shop.example.com:8443", "127.0.0.1", "127.0.0.1:",
                             ":8443",         "127.0.0.1:8443/v1"};
    for (size_t i = 0; i < CK_ARRAY_LEN(refused); i++) {
        setenv("CERTKEEP_ADDR", refused[i], 1);
        assert_int_equal(ck_client_open(&c), CK_EXIT_USAGE);
        assert_null(c);
    }
    const char *taken[] = {"127.0.0.1:8443", "localhost:8443", "[::1]:8443"};
    for (size_t i = 0; i < CK_ARRAY_LEN(taken); i++) {
        setenv("CERTKEEP_ADDR", taken[i], 1);
        assert_int_equal(ck_client_open(&c), CK_EXIT_OK);
        ck_client_free(c);
        c = NULL;
    }
}

/* ---- a one-shot HTTP server on loopback ---- */

struct one_shot {
    int listener;
    const char *reply;
    char request[4096];
};

static void *serve_once(void *arg)
{
    struct one_shot *s = arg;
    int fd = accept(s->listener, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t got = 0;
    ssize_t n;
    /* Enough for the headers and the small bodies these tests send. */
    while (got < sizeof(s->request) - 1 &&
           (n = read(fd, s->request + got, sizeof(s->request) - 1 - got)) > 0) {
        got += (size_t)n;
        s->request[got] = '\0';
        if (strstr(s->request, "\r\n\r\n") != NULL)
            break;
    }
    ssize_t w = write(fd, s->reply, strlen(s->reply));
    (void)w;
    close(fd);
    return NULL;
}

static int start_one_shot(struct one_shot *s, pthread_t *thread)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    s->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listener >= 0);
    assert_int_equal(bind(s->listener, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(listen(s->listener, 1), 0);
    assert_int_equal(getsockname(s->listener, (struct sockaddr *)&addr, &len), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(addr.sin_port));
    setenv("CERTKEEP_ADDR", url, 1);
    setenv("CERTKEEP_TOKEN", "ck_test", 1);
    assert_int_equal(pthread_create(thread, NULL, serve_once, s), 0);
    return 0;
}

static int call_one_shot(const char *reply, const char *method, const json_t *body, json_t **answer,
                         char *request, size_t request_len)
{
    struct one_shot s = {.reply = reply};
    pthread_t thread;
    struct ck_client *c = NULL;
    start_one_shot(&s, &thread);
    assert_int_equal(ck_client_open(&c), CK_EXIT_OK);
    int rc = ck_client_call(c, method, "/v1/things", body, answer);
    ck_client_free(c);
    pthread_join(thread, NULL);
    close(s.listener);
    snprintf(request, request_len, "%s", s.request);
    return rc;
}

static void test_client_sends_json_with_token(void **state)
{
    (void)state;
    const char *reply = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\n\r\n{\"id\":3}";
    json_t *body = json_pack("{s:s}", "name", "acme");
    json_t *answer = NULL;
    char request[4096];
    assert_int_equal(call_one_shot(reply, "POST", body, &answer, request, sizeof(request)),
                     CK_EXIT_OK);
    assert_int_equal(json_integer_value(json_object_get(answer, "id")), 3);
    assert_non_null(strstr(request, "POST /v1/things HTTP/1.1\r\n"));
    assert_non_null(strstr(request, "Authorization: Bearer ck_test\r\n"));
    assert_non_null(strstr(request, "Content-Type: application/json\r\n"));
    json_decref(answer);
    json_decref(body);
}

static void test_client_api_error_is_exit_1(void **state)
{
    (void)state;
    const char *reply = "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\n\r\n"
                        "{\"error\":{\"code\":\"order_open\",\"message\":\"order 7 is open\"}}  ";
    json_t *answer = NULL;
    char request[4096];
    assert_int_equal(call_one_shot(reply, "GET", NULL, &answer, request, sizeof(request)),
                     CK_EXIT_FAILED);
    assert_null(answer);
}

static void test_client_unreachable_is_exit_1(void **state)
{
    (void)state;
    /* A port that was just free: bind, note it, close, then connect to it. */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(addr.sin_port));
    setenv("CERTKEEP_ADDR", url, 1);
    setenv("CERTKEEP_TOKEN", "ck_test", 1);
    struct ck_client *c = NULL;
    json_t *answer = NULL;
    assert_int_equal(ck_client_open(&c), CK_EXIT_OK);
    assert_int_equal(ck_client_call(c, "GET", "/v1/things", NULL, &answer), CK_EXIT_FAILED);
    ck_client_free(c);
}

/* argv for a command, as main() would pass it; `words` is modified by the parser. */
static int run_words(int (*cmd)(const struct ck_cli *, int, char **), char *line)
{
    char *argv[16] = {0};
    int argc = 0;
    for (char *w = strtok(line, " "); w != NULL && argc < 15; w = strtok(NULL, " "))
        argv[argc++] = w;
    const struct ck_cli cli = {0};
    return cmd(&cli, argc, argv);
}

static void test_issue3_commands_usage_errors(void **state)
{
    (void)state;
    setenv("CERTKEEP_TOKEN", "ck_test", 1);
    setenv("CERTKEEP_ADDR", "http://127.0.0.1:1", 1);
    char l1[] = "order import 7", l2[] = "order import seven --cert x.pem",
         l3[] = "order import 7 --cert /nonexistent/cert.pem", l4[] = "order ack",
         l5[] = "order cert 0", l6[] = "order start shop --csr /nonexistent/shop.csr",
         l7[] = "events --order x", l8[] = "poll confirm", l9[] = "poll confirm abc",
         l10[] = "roots add", l11[] = "roots delete 1 2", l12[] = "roots add /nonexistent/ca.pem";
    assert_int_equal(run_words(ck_cmd_order, l1), CK_EXIT_USAGE); /* --cert is required */
    assert_int_equal(run_words(ck_cmd_order, l2), CK_EXIT_USAGE); /* not an id */
    assert_int_equal(run_words(ck_cmd_order, l3), CK_EXIT_USAGE); /* unreadable input */
    assert_int_equal(run_words(ck_cmd_order, l4), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_order, l5), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_order, l6), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_events, l7), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_poll, l8), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_poll, l9), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_roots, l10), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_roots, l11), CK_EXIT_USAGE);
    assert_int_equal(run_words(ck_cmd_roots, l12), CK_EXIT_USAGE);
}

static void test_client_exchange_keeps_error_answer(void **state)
{
    (void)state;
    struct one_shot s = {.reply = "HTTP/1.1 422 Unprocessable Content\r\n"
                                  "Content-Type: application/json\r\nConnection: close\r\n\r\n"
                                  "{\"errors\":[{\"code\":\"expired\",\"message\":\"m\"}]}"};
    pthread_t thread;
    struct ck_client *c = NULL;
    struct ck_response resp = {0};
    start_one_shot(&s, &thread);
    assert_int_equal(ck_client_open(&c), CK_EXIT_OK);
    assert_int_equal(ck_client_exchange(c, "POST", "/v1/orders/7/certificate", NULL, &resp),
                     CK_EXIT_OK);
    ck_client_free(c);
    pthread_join(thread, NULL);
    close(s.listener);
    assert_int_equal(resp.status, 422);
    assert_non_null(strstr(resp.body, "\"expired\""));
    ck_response_free(&resp);
}

/* A refused import is exit 1, and the request carried the file's text as `certificate`. */
static void test_order_import_refused_is_exit_1(void **state)
{
    (void)state;
    char path[] = "/tmp/ck-test-cert-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a cert\n", 11), 11);
    close(fd);
    struct one_shot s = {
        .reply = "HTTP/1.1 422 Unprocessable Content\r\nContent-Type: application/json\r\n"
                 "Connection: close\r\n\r\n{\"error\":{\"code\":\"certificate_rejected\","
                 "\"message\":\"the certificate was refused: 1 error\"},"
                 "\"errors\":[{\"code\":\"not_pem\",\"message\":\"no PEM\"}],\"warnings\":[]}"};
    pthread_t thread;
    start_one_shot(&s, &thread);
    char line[64];
    snprintf(line, sizeof(line), "order import 7 --cert %s", path);
    assert_int_equal(run_words(ck_cmd_order, line), CK_EXIT_FAILED);
    pthread_join(thread, NULL);
    close(s.listener);
    unlink(path);
    assert_non_null(strstr(s.request, "POST /v1/orders/7/certificate HTTP/1.1\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_flag_anywhere),
        cmocka_unit_test(test_wants_help),
        cmocka_unit_test(test_parse_options_and_arguments),
        cmocka_unit_test(test_parse_usage_errors),
        cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_api_path_escapes_segments),
        cmocka_unit_test(test_api_query),
        cmocka_unit_test(test_json_display),
        cmocka_unit_test(test_json_at_dotted_path),
        cmocka_unit_test(test_table_aligns_columns),
        cmocka_unit_test(test_view_and_pairs),
        cmocka_unit_test(test_body_refuses_non_utf8),
        cmocka_unit_test(test_client_needs_token),
        cmocka_unit_test(test_client_bare_address),
        cmocka_unit_test(test_client_sends_json_with_token),
        cmocka_unit_test(test_client_api_error_is_exit_1),
        cmocka_unit_test(test_client_unreachable_is_exit_1),
        cmocka_unit_test(test_issue3_commands_usage_errors),
        cmocka_unit_test(test_client_exchange_keeps_error_answer),
        cmocka_unit_test(test_order_import_refused_is_exit_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
