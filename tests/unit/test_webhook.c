#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/policy.h"
#include "notify/webhook.h"

#define SECRET      "whsec_7f3d0a1f"
#define BODY        "{\"event\":\"certificate.deployed\",\"id\":\"42\"}"
#define TS          1795000000
#define REQUEST_MAX (32 * 1024)

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* The signature header value computed here with OpenSSL's one-shot HMAC(), independently of
 * the module's EVP_MAC code. */
static void expected_signature(const char *secret, const char *body, long long ts, char *out,
                               size_t len)
{
    char message[4096];
    int n = snprintf(message, sizeof(message), "%lld.%s", ts, body);
    unsigned char md[32];
    unsigned int md_len = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)message,
                         (size_t)n, md, &md_len));
    assert_int_equal(md_len, 32);
    int used = snprintf(out, len, "t=%lld,v1=", ts);
    for (size_t i = 0; i < md_len; i++)
        used += snprintf(out + used, len - (size_t)used, "%02x", md[i]);
}

static void test_signature_is_hmac_sha256_of_timestamp_dot_body(void **state)
{
    (void)state;
    char got[CK_WEBHOOK_SIGNATURE_MAX], want[CK_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(ck_webhook_sign(SECRET, BODY, TS, got, sizeof(got), NULL), 0);
    expected_signature(SECRET, BODY, TS, want, sizeof(want));
    assert_string_equal(got, want);
    /* The same value as `printf '1795000000.BODY' | openssl dgst -sha256 -hmac SECRET`. */
    assert_string_equal(got, "t=1795000000,v1="
                             "d500f1b616191188bc4cc7f64d8c231146bc36e3666abaef21c01cb96b3be327");
    /* Another time, secret or body gives another signature: no replay with a new t. */
    char other[CK_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(ck_webhook_sign(SECRET, BODY, TS + 1, other, sizeof(other), NULL), 0);
    assert_string_not_equal(strchr(other, ','), strchr(got, ','));
    assert_int_equal(ck_webhook_sign("whsec_other", BODY, TS, other, sizeof(other), NULL), 0);
    assert_string_not_equal(other, got);
    assert_int_equal(ck_webhook_sign(SECRET, "{}", TS, other, sizeof(other), NULL), 0);
    assert_string_not_equal(other, got);
    ck_error err = {0};
    assert_int_equal(ck_webhook_sign("", BODY, TS, other, sizeof(other), &err), -1);
    assert_string_equal(err.code, "invalid_webhook");
}

/* ---- a loopback HTTPS (or HTTP) receiver, one request per start ---- */

struct pki {
    EVP_PKEY *key;
    X509 *cert;
    char ca_file[64];  /* the receiver's self-signed certificate: trusted */
    char other_ca[64]; /* an unrelated certificate: not trusted */
};

struct receiver {
    bool tls;
    SSL_CTX *ctx;
    int listen_fd, port;
    pthread_t thread;
    int status;           /* the answer when the signature checks out (401 otherwise) */
    size_t answer_size;   /* bytes of body in the answer */
    const char *location; /* a Location header, or NULL */
    char request[REQUEST_MAX + 1];
    size_t request_len;
    bool signature_ok;
    bool finished;
};

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                             {"subjectAltName", "IP:127.0.0.1"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *ext = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        assert_non_null(ext);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    return cert;
}

static void write_pem(char *path, size_t len, X509 *cert)
{
    snprintf(path, len, "/tmp/test_webhook_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, cert), 1);
    fclose(f);
}

static int pki_setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    p->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p->cert = self_signed(p->key, "127.0.0.1");
    write_pem(p->ca_file, sizeof(p->ca_file), p->cert);
    EVP_PKEY *other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *other = self_signed(other_key, "127.0.0.1");
    write_pem(p->other_ca, sizeof(p->other_ca), other);
    X509_free(other);
    EVP_PKEY_free(other_key);
    *state = p;
    return 0;
}

static int pki_teardown(void **state)
{
    struct pki *p = *state;
    unlink(p->ca_file);
    unlink(p->other_ca);
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    free(p);
    return 0;
}

static const char *header_value(const char *request, const char *name, char *out, size_t len)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\r\n%s: ", name);
    const char *at = strstr(request, needle);
    if (at == NULL)
        return NULL;
    at += strlen(needle);
    size_t n = strcspn(at, "\r");
    snprintf(out, len, "%.*s", (int)n, at);
    return out;
}

static bool request_complete(const char *request)
{
    const char *end = strstr(request, "\r\n\r\n");
    char length[32];
    if (end == NULL || header_value(request, "Content-Length", length, sizeof(length)) == NULL)
        return false;
    return strlen(end + 4) >= (size_t)strtoul(length, NULL, 10);
}

static bool check_signature(const char *request)
{
    char header[256], want[CK_WEBHOOK_SIGNATURE_MAX];
    const char *body = strstr(request, "\r\n\r\n");
    long long ts = 0;
    if (body == NULL ||
        header_value(request, "X-Certkeep-Signature", header, sizeof(header)) == NULL ||
        sscanf(header, "t=%lld,", &ts) != 1)
        return false;
    expected_signature(SECRET, body + 4, ts, want, sizeof(want));
    return strcmp(header, want) == 0;
}

static int peer_read(struct receiver *r, SSL *ssl, int fd, char *buf, size_t len)
{
    return r->tls ? SSL_read(ssl, buf, (int)len) : (int)read(fd, buf, len);
}

static void peer_write(struct receiver *r, SSL *ssl, int fd, const char *buf, size_t len)
{
    if (r->tls)
        SSL_write(ssl, buf, (int)len);
    else if (write(fd, buf, len) < 0)
        return;
}

static void answer(struct receiver *r, SSL *ssl, int fd)
{
    int status = r->signature_ok ? r->status : 401;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d Test\r\nContent-Length: %zu\r\n%s%s%sConnection: close\r\n\r\n",
                     status, r->answer_size, r->location ? "Location: " : "",
                     r->location ? r->location : "", r->location ? "\r\n" : "");
    peer_write(r, ssl, fd, head, (size_t)n);
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    for (size_t sent = 0; sent < r->answer_size; sent += sizeof(chunk)) {
        size_t part = r->answer_size - sent < sizeof(chunk) ? r->answer_size - sent : sizeof(chunk);
        peer_write(r, ssl, fd, chunk, part);
    }
}

static void serve_connection(struct receiver *r, int fd)
{
    SSL *ssl = NULL;
    if (r->tls) {
        ssl = SSL_new(r->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1)
            goto cleanup;
    }
    /* Bounded: the buffer's size, and a 5 s receive timeout on the socket. */
    while (r->request_len < REQUEST_MAX && !request_complete(r->request)) {
        int n = peer_read(r, ssl, fd, r->request + r->request_len, REQUEST_MAX - r->request_len);
        if (n <= 0)
            goto cleanup;
        r->request_len += (size_t)n;
        r->request[r->request_len] = '\0';
    }
    r->signature_ok = check_signature(r->request);
    answer(r, ssl, fd);
    if (ssl != NULL)
        SSL_shutdown(ssl);
cleanup:
    SSL_free(ssl);
}

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    struct pollfd pfd = {.fd = r->listen_fd, .events = POLLIN};
    if (poll(&pfd, 1, 10000) != 1)
        return NULL;
    int fd = accept(r->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    serve_connection(r, fd);
    close(fd);
    return NULL;
}

static int loopback_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static struct receiver *receiver_start(const struct pki *p, bool tls, int status,
                                       size_t answer_size)
{
    struct receiver *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->tls = tls;
    r->status = status;
    r->answer_size = answer_size;
    if (tls) {
        r->ctx = SSL_CTX_new(TLS_server_method());
        assert_int_equal(SSL_CTX_use_certificate(r->ctx, p->cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(r->ctx, p->key), 1);
    }
    r->listen_fd = loopback_listener(&r->port);
    assert_int_equal(pthread_create(&r->thread, NULL, receiver_main, r), 0);
    return r;
}

/* Waits for the receiver's one connection to end, so its record can be read. */
static void receiver_finish(struct receiver *r)
{
    if (!r->finished)
        pthread_join(r->thread, NULL);
    r->finished = true;
}

static void receiver_free(struct receiver *r)
{
    receiver_finish(r);
    close(r->listen_fd);
    SSL_CTX_free(r->ctx);
    free(r);
}

static struct ck_webhook_request request_to(const struct pki *p, const struct receiver *r,
                                            char *url, size_t len)
{
    snprintf(url, len, "%s://127.0.0.1:%d/hook", r->tls ? "https" : "http", r->port);
    return (struct ck_webhook_request){.url = url,
                                       .body = BODY,
                                       .secret = SECRET,
                                       .event_id = "evt_42",
                                       .event_type = "certificate.deployed",
                                       .ca_file = p->ca_file,
                                       .timeout_ms = 5000,
                                       .timestamp = TS};
}

/* One delivery to r; returns deliver's result after the receiver is done. */
static int deliver(struct receiver *r, const struct ck_webhook_request *req,
                   struct ck_webhook_result *result, ck_error *err)
{
    int rc = ck_webhook_deliver(req, result, err);
    receiver_finish(r);
    return rc;
}

static void test_delivery_is_signed_and_acknowledged(void **state)
{
    struct pki *p = *state;
    struct receiver *r = receiver_start(p, true, 200, 2);
    char url[128], value[256];
    struct ck_webhook_request req = request_to(p, r, url, sizeof(url));
    struct ck_webhook_result result = {0};
    ck_error err = {0};
    if (deliver(r, &req, &result, &err) != 0)
        fail_msg("delivery failed: %s", err.message);
    assert_true(r->signature_ok);
    assert_int_equal(result.http_status, 200);
    assert_string_equal(result.error, "");
    assert_in_range(result.duration_ms, 0, 5000);
    assert_true(strncmp(r->request, "POST /hook HTTP/1.1\r\n", 21) == 0);
    assert_string_equal(header_value(r->request, "Content-Type", value, sizeof(value)),
                        "application/json");
    assert_string_equal(header_value(r->request, "X-Certkeep-Event-Id", value, sizeof(value)),
                        "evt_42");
    assert_string_equal(header_value(r->request, "X-Certkeep-Event-Type", value, sizeof(value)),
                        "certificate.deployed");
    assert_string_equal(header_value(r->request, "X-Certkeep-Signature", value, sizeof(value)),
                        "t=1795000000,v1="
                        "d500f1b616191188bc4cc7f64d8c231146bc36e3666abaef21c01cb96b3be327");
    assert_string_equal(strstr(r->request, "\r\n\r\n") + 4, BODY);
    receiver_free(r);
}

static void test_server_error_is_a_failed_attempt(void **state)
{
    struct pki *p = *state;
    struct receiver *r = receiver_start(p, true, 500, 0);
    char url[128];
    struct ck_webhook_request req = request_to(p, r, url, sizeof(url));
    struct ck_webhook_result result = {0};
    ck_error err = {0};
    assert_int_equal(deliver(r, &req, &result, &err), -1);
    assert_true(r->signature_ok);
    assert_int_equal(result.http_status, 500);
    assert_contains(result.error, "HTTP 500");
    assert_contains(result.error, "127.0.0.1");
    assert_string_equal(err.code, "webhook_failed");
    receiver_free(r);
}

static void test_redirect_is_not_followed(void **state)
{
    struct pki *p = *state;
    struct receiver *r = receiver_start(p, true, 302, 0);
    r->location = "https://127.0.0.1:1/elsewhere";
    char url[128];
    struct ck_webhook_request req = request_to(p, r, url, sizeof(url));
    struct ck_webhook_result result = {0};
    assert_int_equal(deliver(r, &req, &result, NULL), -1);
    assert_int_equal(result.http_status, 302);
    assert_contains(result.error, "redirect");
    receiver_free(r);
}

static void test_closed_port_fails_fast(void **state)
{
    struct pki *p = *state;
    int port = 0;
    close(loopback_listener(&port));
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/hook", port);
    struct ck_webhook_request req = {.url = url,
                                     .body = BODY,
                                     .secret = SECRET,
                                     .event_id = "evt_42",
                                     .event_type = "certificate.deployed",
                                     .ca_file = p->ca_file,
                                     .timeout_ms = 5000,
                                     .timestamp = TS};
    struct ck_webhook_result result = {0};
    ck_error err = {0};
    assert_int_equal(ck_webhook_deliver(&req, &result, &err), -1);
    assert_int_equal(result.http_status, 0);
    assert_in_range(result.duration_ms, 0, 1000);
    assert_contains(result.error, "could not deliver");
    assert_string_equal(err.code, "webhook_failed");
}

static void test_untrusted_certificate_is_refused(void **state)
{
    struct pki *p = *state;
    struct receiver *r = receiver_start(p, true, 200, 0);
    char url[128];
    struct ck_webhook_request req = request_to(p, r, url, sizeof(url));
    req.ca_file = p->other_ca;
    struct ck_webhook_result result = {0};
    assert_int_equal(deliver(r, &req, &result, NULL), -1);
    assert_int_equal(result.http_status, 0);
    assert_false(r->signature_ok); /* nothing was sent */
    receiver_free(r);
}

static void test_answer_size_is_bounded(void **state)
{
    struct pki *p = *state;
    char url[128];
    struct ck_webhook_result result = {0};
    /* 60 KiB: read and acknowledged. */
    struct receiver *r = receiver_start(p, true, 200, 60 * 1024);
    struct ck_webhook_request req = request_to(p, r, url, sizeof(url));
    assert_int_equal(deliver(r, &req, &result, NULL), 0);
    receiver_free(r);
    /* 1 MiB: cut off after 64 KiB, a failed attempt saying why. */
    r = receiver_start(p, true, 200, 1024 * 1024);
    req = request_to(p, r, url, sizeof(url));
    assert_int_equal(deliver(r, &req, &result, NULL), -1);
    assert_contains(result.error, "64 KiB");
    receiver_free(r);
}

static void test_plain_http_only_to_loopback(void **state)
{
    struct pki *p = *state;
    struct receiver *r = receiver_start(p, false, 204, 0);
    char url[128];
    struct ck_webhook_request req = request_to(p, r, url, sizeof(url));
    struct ck_webhook_result result = {0};
    ck_error err = {0};
    if (deliver(r, &req, &result, &err) != 0)
        fail_msg("loopback http delivery failed: %s", err.message);
    assert_int_equal(result.http_status, 204);
    assert_true(r->signature_ok);
    receiver_free(r);
    /* Refused before any connection is attempted. */
    const char *refused[] = {"http://hooks.example.com/certkeep", "http://10.0.0.1/x",
                             "ftp://127.0.0.1/x", "not a url", "http://[::2]/x"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        req.url = refused[i];
        assert_int_equal(ck_webhook_deliver(&req, &result, &err), -1);
        assert_string_equal(err.code, "invalid_webhook");
        assert_int_equal(result.http_status, 0);
        assert_string_equal(result.error, err.message);
    }
    /* The secret is needed; header values cannot inject headers. */
    snprintf(url, sizeof(url), "http://127.0.0.1:1/x");
    req = (struct ck_webhook_request){.url = url,
                                      .body = BODY,
                                      .secret = SECRET,
                                      .event_id = "evt_42",
                                      .event_type = "x\r\nX-Evil: 1",
                                      .timestamp = TS};
    assert_int_equal(ck_webhook_deliver(&req, &result, &err), -1);
    assert_contains(err.message, "event type");
    req.event_type = "certificate.deployed";
    char long_id[300];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    req.event_id = long_id;
    assert_int_equal(ck_webhook_deliver(&req, &result, &err), -1);
    assert_contains(err.message, "longer than 200");
    req.event_id = "evt_42";
    req.secret = "";
    assert_int_equal(ck_webhook_deliver(&req, &result, &err), -1);
    assert_contains(err.message, "no secret");
}

static void test_next_attempt_backs_off(void **state)
{
    (void)state;
    for (int attempts = 1; attempts <= 15; attempts++) {
        for (uint64_t seed = 1; seed <= 50; seed++) {
            int64_t at = ck_webhook_next_attempt(attempts, TS, seed);
            assert_int_equal(at, ck_policy_retry_after(attempts, TS, seed));
            assert_in_range(at, TS + 1, TS + ck_policy_retry_ceiling(attempts));
        }
    }
    assert_int_equal(ck_policy_retry_ceiling(15), 6 * 3600);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the receiver writes to a client that may have hung up */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_is_hmac_sha256_of_timestamp_dot_body),
        cmocka_unit_test(test_delivery_is_signed_and_acknowledged),
        cmocka_unit_test(test_server_error_is_a_failed_attempt),
        cmocka_unit_test(test_redirect_is_not_followed),
        cmocka_unit_test(test_closed_port_fails_fast),
        cmocka_unit_test(test_untrusted_certificate_is_refused),
        cmocka_unit_test(test_answer_size_is_bounded),
        cmocka_unit_test(test_plain_http_only_to_loopback),
        cmocka_unit_test(test_next_attempt_backs_off),
    };
    int failed = cmocka_run_group_tests(tests, pki_setup, pki_teardown);
    curl_global_cleanup();
    return failed;
}
