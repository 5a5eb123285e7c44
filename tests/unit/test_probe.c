/* Unit tests for core/probe: a TLS server on 127.0.0.1 run by a thread of this test, serving
 * leaves signed by a CA made here; the probe must describe what it serves and judge the chain
 * the way a client trusting (or not) that CA would. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/probe.h"

#define DAY              86400L
#define SERVER_MAX_CONNS 64 /* the accept loop's bound: more than the tests make */
#define SERVER_POLL_MS   100

struct issued {
    X509 *cert;
    EVP_PKEY *key;
};

struct server {
    SSL_CTX *ctx;
    struct issued *second; /* served for SNI other.example.com */
    int listen_fd;
    int port;
    atomic_bool stop;
    pthread_t thread;
};

struct fixture {
    struct issued ca, shop, other;
    struct server server;
    char endpoint[64];
};

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A P-256 certificate for `cn`, signed by issuer (self-signed CA when issuer is NULL). */
static struct issued issue(const char *cn, const char *org, const struct issued *issuer, long days)
{
    struct issued out = {X509_new(), EVP_EC_gen("P-256")};
    assert_non_null(out.cert);
    assert_non_null(out.key);
    X509 *signer = issuer != NULL ? issuer->cert : out.cert;
    X509_set_version(out.cert, X509_VERSION_3);
    BIGNUM *bn = BN_new();
    assert_int_equal(BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(out.cert)));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(out.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(out.cert), days * DAY);
    X509_NAME *name = X509_get_subject_name(out.cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(out.cert, X509_get_subject_name(signer));
    X509_set_pubkey(out.cert, out.key);
    add_ext(out.cert, signer, NID_subject_key_identifier, "hash");
    if (issuer == NULL) {
        add_ext(out.cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(out.cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        char san[300];
        snprintf(san, sizeof(san), "DNS:%s,IP:127.0.0.1", cn);
        add_ext(out.cert, signer, NID_authority_key_identifier, "keyid");
        add_ext(out.cert, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(out.cert, signer, NID_key_usage, "critical,digitalSignature");
        add_ext(out.cert, signer, NID_ext_key_usage, "serverAuth");
        add_ext(out.cert, signer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(out.cert, issuer != NULL ? issuer->key : out.key, EVP_sha256()) > 0);
    return out;
}

static void issued_free(struct issued *i)
{
    X509_free(i->cert);
    EVP_PKEY_free(i->key);
}

/* Swaps in the second certificate when the client asks for other.example.com. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct server *srv = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != NULL && strcmp(name, "other.example.com") == 0) {
        SSL_use_certificate(ssl, srv->second->cert);
        SSL_use_PrivateKey(ssl, srv->second->key);
    }
    return SSL_TLSEXT_ERR_OK;
}

static void serve_one(struct server *srv, int fd)
{
    struct timeval two_s = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_s, sizeof(two_s));
    SSL *ssl = SSL_new(srv->ctx);
    if (ssl != NULL && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static void *server_main(void *arg)
{
    struct server *srv = arg;
    /* A client that hangs up before our close_notify would raise SIGPIPE on the write; keep it
     * pending on this thread instead of ending the test. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    for (int served = 0; served < SERVER_MAX_CONNS && !atomic_load(&srv->stop);) {
        struct pollfd pfd = {.fd = srv->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, SERVER_POLL_MS) != 1)
            continue;
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd >= 0) {
            serve_one(srv, fd);
            served++;
        }
    }
    return NULL;
}

/* A loopback socket bound to a port the kernel picks; *port receives it. */
static int loopback_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static void server_start(struct server *srv, const struct issued *first, struct issued *second)
{
    srv->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(srv->ctx);
    assert_int_equal(SSL_CTX_use_certificate(srv->ctx, first->cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(srv->ctx, first->key), 1);
    srv->second = second;
    SSL_CTX_set_tlsext_servername_callback(srv->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(srv->ctx, srv);
    srv->listen_fd = loopback_socket(&srv->port);
    assert_int_equal(listen(srv->listen_fd, 8), 0);
    atomic_init(&srv->stop, false);
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

static void server_stop(struct server *srv)
{
    atomic_store(&srv->stop, true);
    pthread_join(srv->thread, NULL);
    close(srv->listen_fd);
    SSL_CTX_free(srv->ctx);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->ca = issue("Probe Test CA", "Test", NULL, 30);
    f->shop = issue("shop.example.com", "Example Ltd", &f->ca, 89);
    f->other = issue("other.example.com", "Other Org", &f->ca, 40);
    server_start(&f->server, &f->shop, &f->other);
    snprintf(f->endpoint, sizeof(f->endpoint), "127.0.0.1:%d", f->server.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    server_stop(&f->server);
    issued_free(&f->ca);
    issued_free(&f->shop);
    issued_free(&f->other);
    free(f);
    return 0;
}

/* Probes the fixture's server; the CA is trusted when trust_ca. */
static int probe(struct fixture *f, const char *sni, bool trust_ca, struct ck_probe_result *res,
                 ck_error *err)
{
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_non_null(roots);
    if (trust_ca)
        assert_true(sk_X509_push(roots, f->ca.cert) > 0);
    struct ck_probe_request req = {
        .endpoint = f->endpoint, .sni = sni, .extra_roots = roots, .timeout_ms = 5000};
    int rc = ck_probe(&req, res, err);
    sk_X509_free(roots); /* the stack only borrowed the CA */
    return rc;
}

static void valid_with_extra_roots(void **state)
{
    struct fixture *f = *state;
    struct ck_probe_result res = {0};
    ck_error err = {0};
    assert_int_equal(probe(f, "shop.example.com", true, &res, &err), 0);
    assert_true(res.chain_valid);
    assert_int_equal(res.chain_problems.len, 0);
    assert_string_equal(res.certificate.subject.cn, "shop.example.com");
    assert_string_equal(res.certificate.subject.o, "Example Ltd");
    assert_true(ck_strv_contains(&res.certificate.dns_sans, "shop.example.com"));
    assert_string_equal(res.certificate.issuer.cn, "Probe Test CA");
    assert_int_equal(res.chain_len, 1);
    assert_non_null(strstr(res.chain[0].subject, "CN=shop.example.com"));
    assert_non_null(strstr(res.chain[0].issuer, "CN=Probe Test CA"));

    int64_t now = (int64_t)time(NULL);
    json_t *view = ck_probe_result_to_json(&res, now);
    assert_non_null(view);
    assert_string_equal(json_string_value(json_object_get(view, "endpoint")), f->endpoint);
    assert_string_equal(json_string_value(json_object_get(view, "sni")), "shop.example.com");
    assert_string_equal(json_string_value(json_object_get(view, "chain_status")), "valid");
    assert_int_equal(json_array_size(json_object_get(view, "chain_problems")), 0);
    json_t *cert = json_object_get(view, "certificate");
    assert_string_equal(json_string_value(json_object_get(cert, "sha256_fingerprint")),
                        res.certificate.sha256_fingerprint);
    json_int_t days = json_integer_value(json_object_get(cert, "days_left"));
    assert_true(days == 88 || days == 89);
    json_t *first = json_array_get(json_object_get(view, "chain"), 0);
    assert_non_null(json_string_value(json_object_get(first, "not_after")));
    json_decref(view);
    ck_probe_result_free(&res);
}

static void invalid_without_roots(void **state)
{
    struct fixture *f = *state;
    struct ck_probe_result res = {0};
    ck_error err = {0};
    assert_int_equal(probe(f, "shop.example.com", false, &res, &err), 0);
    assert_false(res.chain_valid);
    assert_true(res.chain_problems.len >= 1);
    assert_string_equal(res.certificate.subject.cn, "shop.example.com");
    json_t *view = ck_probe_result_to_json(&res, (int64_t)time(NULL));
    assert_string_equal(json_string_value(json_object_get(view, "chain_status")), "invalid");
    assert_true(json_array_size(json_object_get(view, "chain_problems")) >= 1);
    json_decref(view);
    ck_probe_result_free(&res);
}

static void sni_selects_certificate(void **state)
{
    struct fixture *f = *state;
    struct ck_probe_result res = {0};
    ck_error err = {0};
    assert_int_equal(probe(f, "other.example.com", true, &res, &err), 0);
    assert_string_equal(res.certificate.subject.cn, "other.example.com");
    assert_string_equal(res.certificate.subject.o, "Other Org");
    assert_string_equal(res.sni, "other.example.com");
    assert_true(res.chain_valid);
    ck_probe_result_free(&res);
}

/* The name checked is the SNI name: a name the served certificate lacks makes it invalid. */
static void name_mismatch_is_invalid(void **state)
{
    struct fixture *f = *state;
    struct ck_probe_result res = {0};
    ck_error err = {0};
    assert_int_equal(probe(f, "wrong.example.com", true, &res, &err), 0);
    assert_string_equal(res.certificate.subject.cn, "shop.example.com");
    assert_false(res.chain_valid);
    ck_probe_result_free(&res);
}

/* No SNI for an IP literal; the IP itself is checked against the IP SANs. */
static void ip_literal_checks_ip(void **state)
{
    struct fixture *f = *state;
    struct ck_probe_result res = {0};
    ck_error err = {0};
    assert_int_equal(probe(f, NULL, true, &res, &err), 0);
    assert_null(res.sni);
    assert_true(res.chain_valid);
    json_t *view = ck_probe_result_to_json(&res, (int64_t)time(NULL));
    assert_true(json_is_null(json_object_get(view, "sni")));
    json_decref(view);
    ck_probe_result_free(&res);
}

static void closed_port_fails_fast(void **state)
{
    (void)state;
    int port = 0;
    int fd = loopback_socket(&port);
    close(fd); /* nobody listens on it now */
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", port);
    struct ck_probe_request req = {.endpoint = endpoint, .timeout_ms = 5000};
    struct ck_probe_result res = {0};
    ck_error err = {0};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(ck_probe(&req, &res, &err), -1);
    clock_gettime(CLOCK_MONOTONIC, &end);
    assert_string_equal(err.code, "connect_failed");
    assert_non_null(strstr(err.message, "cannot connect"));
    assert_true(end.tv_sec - start.tv_sec < 2);
    ck_probe_result_free(&res);
}

static void bad_endpoint_is_an_error(void **state)
{
    (void)state;
    struct ck_probe_request req = {.endpoint = "127.0.0.1:99999"};
    struct ck_probe_result res = {0};
    ck_error err = {0};
    assert_int_equal(ck_probe(&req, &res, &err), -1);
    assert_string_equal(err.code, "invalid_field");
    ck_probe_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_with_extra_roots),   cmocka_unit_test(invalid_without_roots),
        cmocka_unit_test(sni_selects_certificate),  cmocka_unit_test(name_mismatch_is_invalid),
        cmocka_unit_test(ip_literal_checks_ip),     cmocka_unit_test(closed_port_fails_fast),
        cmocka_unit_test(bad_endpoint_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
