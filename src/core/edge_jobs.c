/* The jobs around the edge: staging test, production probe, file targets (edge_jobs.h). */
#include "core/edge_jobs.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/probe.h"
#include "core/target.h"
#include "crypto/verify.h"

#define ANSWER_MAX    4096 /* bytes of the staging listener's answer read back */
#define NAME_TEXT_MAX 256  /* a DNS name (253) and its NUL */

/* What every edge job works on. */
struct edge_job {
    struct ck_store *st;
    const ck_master_key *key;
    const struct ck_job *job;
    struct ck_order order;
    struct ck_enrollment enrollment;
    X509 *leaf;    /* the order's certificate */
    char *address; /* params "address", or NULL */
    /* The event the job's end adds in the same transaction (type NULL: none), so a job run
     * again after a crash does not repeat it. */
    const char *event_type;
    char event_message[CK_ERROR_MSG_MAX];
};

void ck_edge_test_name(const char *name, char *out, size_t len)
{
    if (strncmp(name, "*.", 2) == 0)
        snprintf(out, len, "%s%s", CK_EDGE_TEST_LABEL, name + 1);
    else
        snprintf(out, len, "%s", name);
}

bool ck_edge_job_handles(enum ck_job_type type)
{
    return type == CK_JOB_STAGE || type == CK_JOB_STAGING_TEST || type == CK_JOB_DEPLOY ||
           type == CK_JOB_PROBE;
}

/* One line in the job's log (what users read) and in the daemon's log. */
__attribute__((format(printf, 3, 4))) static void
job_log(const struct edge_job *j, enum ck_log_level level, const char *fmt, ...)
{
    char line[CK_ERROR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ck_log(level, "job %lld (%s, order %lld): %s", (long long)j->job->id,
           ck_job_type_name(j->job->type), (long long)j->job->order_id, line);
    ck_error err;
    const char *name = level == CK_LOG_ERROR ? "error" : level == CK_LOG_WARN ? "warn" : "info";
    if (ck_store_job_log(j->st, j->job->id, name, line, &err) != 0)
        ck_log(CK_LOG_WARN, "job %lld: could not store a log line: %s", (long long)j->job->id,
               err.message);
}

static void target_log(void *ctx, const char *level, const char *message)
{
    const struct edge_job *j = ctx;
    job_log(j,
            strcmp(level, "error") == 0  ? CK_LOG_ERROR
            : strcmp(level, "warn") == 0 ? CK_LOG_WARN
                                         : CK_LOG_INFO,
            "%s", message);
}

static int load_job(struct edge_job *j, ck_error *err)
{
    if (ck_store_order_get(j->st, j->job->tenant_id, j->job->order_id, &j->order, err) != 0 ||
        ck_store_enrollment_get(j->st, j->job->tenant_id, j->order.enrollment_name, &j->enrollment,
                                err) != 0)
        return -1;
    if (j->order.cert_pem == NULL)
        return ck_error_set(err, 409, "no_certificate", "order %lld has no certificate",
                            (long long)j->order.id);
    BIO *in = BIO_new_mem_buf(j->order.cert_pem, -1);
    j->leaf = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (j->leaf == NULL)
        return ck_error_openssl(err, 500, "bad_certificate",
                                "the certificate of order %lld cannot be read",
                                (long long)j->order.id);
    json_t *params = j->job->params_json ? json_loads(j->job->params_json, 0, NULL) : NULL;
    const char *address = json_string_value(json_object_get(params, "address"));
    j->address = address ? strdup(address) : NULL;
    json_decref(params);
    if ((j->job->type == CK_JOB_STAGING_TEST || j->job->type == CK_JOB_PROBE) && j->address == NULL)
        return ck_error_set(err, 400, "no_address", "the job has no listener address to test");
    return 0;
}

/* ---- what a listener serves ---- */

static bool same_certificate(X509 *a, X509 *b)
{
    return ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)) == 0 &&
           ASN1_TIME_compare(X509_get0_notAfter(a), X509_get0_notAfter(b)) == 0;
}

static void serial_text(X509 *cert, char *out, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, len, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

/* ---- staging test: TLS, verification, GET / ---- */

/* A blocking TCP connection to "IP:PORT" / "[IPv6]:PORT" whose reads and writes (and connect)
 * give up after CK_EDGE_JOB_TIMEOUT_MS. -1 on failure. */
static int connect_to(const char *address)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    const char *start = address[0] == '[' ? address + 1 : address;
    size_t len = colon ? (size_t)(colon - start) - (address[0] == '[') : 0;
    if (colon == NULL || len == 0 || len >= sizeof(host))
        return -1;
    memcpy(host, start, len);
    host[len] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    const struct timeval tv = {.tv_sec = CK_EDGE_JOB_TIMEOUT_MS / 1000,
                               .tv_usec = (CK_EDGE_JOB_TIMEOUT_MS % 1000) * 1000};
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
                    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The chain the server sent, verified for name against roots. */
static int verify_peer(SSL *ssl, const char *name, STACK_OF(X509) * roots, ck_error *err)
{
    X509 *leaf = SSL_get1_peer_certificate(ssl);
    struct ck_verify_result res = {0};
    int rc = -1;
    if (leaf == NULL)
        return ck_error_set(err, 502, "no_certificate", "the listener sent no certificate");
    const struct ck_verify_request req = {
        .leaf = leaf, .untrusted = SSL_get_peer_cert_chain(ssl), .roots = roots, .dns_name = name};
    if (ck_verify_chain(&req, &res, err) != 0)
        goto cleanup;
    if (!res.valid) {
        ck_error_set(err, 502, "chain_invalid", "the chain does not verify: %s",
                     res.reasons.len > 0 ? res.reasons.items[0] : "no path to a trusted root");
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_verify_result_free(&res);
    X509_free(leaf);
    return rc;
}

/* Sends GET / and checks the answer is 200 with the body OK. */
static int get_ok(SSL *ssl, const char *name, ck_error *err)
{
    char request[NAME_TEXT_MAX + 64], answer[ANSWER_MAX + 1];
    int n = snprintf(request, sizeof(request),
                     "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name);
    if (SSL_write(ssl, request, n) != n)
        return ck_error_set(err, 502, "write_failed", "could not send GET /");
    size_t got = 0;
    for (int i = 0; i < 64 && got < ANSWER_MAX; i++) { /* bounded: 64 reads at most */
        int r = SSL_read(ssl, answer + got, (int)(ANSWER_MAX - got));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    answer[got] = '\0';
    const char *body = strstr(answer, "\r\n\r\n");
    if (strncmp(answer, "HTTP/1.1 200", 12) != 0 || body == NULL || strcmp(body + 4, "OK") != 0)
        return ck_error_set(err, 502, "bad_answer", "GET / did not answer 200 OK (got \"%.40s\")",
                            answer);
    return 0;
}

/* One attempt at name. *retry: the listener does not serve the order's certificate (yet), which
 * is not the test's verdict: a stage made by the scheduler or by another daemon reaches the
 * listener within a second, not at once. */
static int staging_test_once(const struct edge_job *j, const char *name, STACK_OF(X509) * roots,
                             bool *retry, ck_error *err)
{
    int rc = -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    int fd = connect_to(j->address);
    *retry = true;
    if (ssl == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        *retry = false;
        ck_error_openssl(err, 500, "tls_failed", "could not set up TLS");
        goto cleanup;
    }
    if (fd < 0) {
        ck_error_set(err, 502, "connect_failed", "cannot connect to %s", j->address);
        goto cleanup;
    }
    if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set_fd(ssl, fd) != 1 ||
        SSL_connect(ssl) != 1) {
        ck_error_openssl(err, 502, "handshake_failed", "the TLS handshake failed");
        goto cleanup;
    }
    X509 *served = SSL_get0_peer_certificate(ssl);
    if (served == NULL || !same_certificate(served, j->leaf)) {
        char serial[128] = "none";
        if (served != NULL)
            serial_text(served, serial, sizeof(serial));
        ck_error_set(err, 502, "staging_mismatch",
                     "the listener serves another certificate (serial %s) instead of order "
                     "%lld's",
                     serial, (long long)j->order.id);
        goto cleanup;
    }
    *retry = false;
    if (verify_peer(ssl, name, roots, err) != 0 || get_ok(ssl, name, err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return rc;
}

/* Tests name, waiting while the listener does not serve the order's certificate yet; the
 * waits are shared by every name of the job (*waits_left), so a listener that never serves it
 * costs the job about CK_EDGE_PROBE_ATTEMPTS pauses, not that many per name. */
static int staging_test_name(const struct edge_job *j, const char *name, STACK_OF(X509) * roots,
                             int *waits_left, ck_error *err)
{
    for (;;) {
        bool retry = false;
        if (staging_test_once(j, name, roots, &retry, err) == 0)
            return 0;
        if (!retry || *waits_left <= 0)
            return -1;
        (*waits_left)--;
        const struct timespec pause = {.tv_nsec = CK_EDGE_PROBE_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* Appends the certificates of a PEM bundle to roots. */
static int append_pem(STACK_OF(X509) * roots, const char *pem, ck_error *err)
{
    STACK_OF(X509) *certs = NULL;
    if (ck_verify_load_certs(pem, strlen(pem), &certs, err) != 0)
        return -1;
    while (sk_X509_num(certs) > 0)
        sk_X509_push(roots, sk_X509_shift(certs));
    sk_X509_pop_free(certs, X509_free);
    return 0;
}

/* The roots the tenant trusts besides the system's, appended to *roots: its own (private CAs)
 * and the local CA's (the tenant's, else the shared one), which signs the local issuer's
 * certificates, as the issue job's checks trust it. */
static int tenant_roots(const struct edge_job *j, STACK_OF(X509) * roots, ck_error *err)
{
    struct ck_root *list = NULL;
    size_t n = 0;
    struct ck_local_ca_record ca = {0};
    ck_error ca_err = {0};
    int rc = -1;
    if (ck_store_root_list(j->st, j->job->tenant_id, &list, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (append_pem(roots, list[i].pem, err) != 0)
            goto cleanup;
    if (ck_store_local_ca_get(j->st, j->job->tenant_id, &ca, &ca_err) != 0) {
        if (ca_err.status != 404) {
            *err = ca_err;
            goto cleanup;
        }
    } else if (append_pem(roots, ca.cert_pem, err) != 0) {
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_local_ca_record_free(&ca);
    ck_root_array_free(list, n);
    return rc;
}

/* The system's roots and the tenant's. */
static int test_roots(const struct edge_job *j, STACK_OF(X509) * *roots, ck_error *err)
{
    if (ck_verify_load_system_roots(roots, err) != 0)
        return -1;
    return tenant_roots(j, *roots, err);
}

static int run_staging_test(struct edge_job *j, ck_error *err)
{
    STACK_OF(X509) *roots = NULL;
    char name[NAME_TEXT_MAX];
    size_t failed = 0;
    int waits_left = CK_EDGE_PROBE_ATTEMPTS - 1;
    if (test_roots(j, &roots, err) != 0) {
        sk_X509_pop_free(roots, X509_free);
        return -1;
    }
    for (size_t i = 0; i < j->enrollment.sans.len; i++) {
        ck_error name_err;
        ck_edge_test_name(j->enrollment.sans.items[i], name, sizeof(name));
        if (staging_test_name(j, name, roots, &waits_left, &name_err) == 0) {
            job_log(j, CK_LOG_INFO, "%s: passed (chain and name verified, GET / answered OK)",
                    name);
        } else {
            job_log(j, CK_LOG_ERROR, "%s: failed: %s", name, name_err.message);
            failed++;
        }
    }
    sk_X509_pop_free(roots, X509_free);
    snprintf(j->event_message, sizeof(j->event_message),
             "staging test of order %lld (%s) on %s: %zu of %zu names %s", (long long)j->order.id,
             j->enrollment.name, j->address, failed ? failed : j->enrollment.sans.len,
             j->enrollment.sans.len, failed ? "failed" : "passed");
    j->event_type = failed ? "staging_test_failed" : "staging_test_passed";
    if (failed)
        return ck_error_set(err, 502, "staging_test_failed", "%s", j->event_message);
    job_log(j, CK_LOG_INFO, "%s", j->event_message);
    return 0;
}

/* ---- probe ---- */

/* The production listener serves the order's certificate for name (asked a few times: another
 * daemon's listener may lag a second); *valid says whether its chain verifies. */
static int probe_name(const struct edge_job *j, const char *name, STACK_OF(X509) * roots,
                      bool *valid, ck_error *err)
{
    const struct ck_probe_request req = {.endpoint = j->address,
                                         .sni = name,
                                         .extra_roots = roots,
                                         .timeout_ms = CK_EDGE_JOB_TIMEOUT_MS};
    char serial[128] = "";
    for (int attempt = 0; attempt < CK_EDGE_PROBE_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            const struct timespec pause = {.tv_nsec = CK_EDGE_PROBE_PAUSE_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        struct ck_probe_result res = {0};
        int rc = ck_probe(&req, &res, err);
        bool same = rc == 0 && same_certificate(res.leaf, j->leaf);
        if (rc == 0 && !same)
            serial_text(res.leaf, serial, sizeof(serial));
        *valid = res.chain_valid;
        ck_probe_result_free(&res);
        if (same)
            return 0;
    }
    if (serial[0] != '\0')
        ck_error_set(err, 502, "probe_mismatch",
                     "%s serves another certificate (serial %s) instead of order %lld's", name,
                     serial, (long long)j->order.id);
    return -1;
}

static int run_probe(struct edge_job *j, ck_error *err)
{
    char name[NAME_TEXT_MAX], serial[128], expiry[40];
    size_t failed = 0;
    STACK_OF(X509) *roots = sk_X509_new_null();
    if (roots == NULL || tenant_roots(j, roots, err) != 0) {
        sk_X509_pop_free(roots, X509_free);
        return roots ? -1 : ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
    serial_text(j->leaf, serial, sizeof(serial));
    ck_time_format(j->order.cert_not_after, expiry, sizeof(expiry));
    for (size_t i = 0; i < j->enrollment.sans.len; i++) {
        ck_error name_err;
        bool valid = false;
        ck_edge_test_name(j->enrollment.sans.items[i], name, sizeof(name));
        if (probe_name(j, name, roots, &valid, &name_err) == 0) {
            job_log(j, CK_LOG_INFO, "%s on %s: serves serial %s, expires %s, chain %s", name,
                    j->address, serial, expiry, valid ? "valid" : "NOT valid");
        } else {
            job_log(j, CK_LOG_ERROR, "%s on %s: %s", name, j->address, name_err.message);
            failed++;
        }
    }
    sk_X509_pop_free(roots, X509_free);
    if (failed)
        return ck_error_set(err, 502, "probe_failed",
                            "%zu of %zu names do not serve the new certificate", failed,
                            j->enrollment.sans.len);
    job_log(j, CK_LOG_INFO, "production serves the new certificate; new expiry date %s", expiry);
    return 0;
}

/* ---- file targets ---- */

static int apply_target(struct edge_job *j, const struct ck_target *t, EVP_PKEY *key, ck_error *err)
{
    const struct ck_target_log log = {.fn = target_log, .ctx = j};
    char sni[NAME_TEXT_MAX];
    ck_edge_test_name(j->enrollment.cn, sni, sizeof(sni));
    job_log(j, CK_LOG_INFO, "writing the certificate to %s", t->directory);
    if (ck_target_apply(t, j->order.cert_pem, j->order.chain_pem ? j->order.chain_pem : "", key,
                        &log, NULL, err) != 0 ||
        ck_target_check(t, j->leaf, sni, &log, err) != 0)
        return -1;
    job_log(j, CK_LOG_INFO, "target %s updated", t->directory);
    return 0;
}

static int run_targets(struct edge_job *j, enum ck_environment env, ck_error *err)
{
    struct ck_target *targets = NULL;
    size_t n = 0;
    EVP_PKEY *key = NULL;
    char aad[64];
    int rc = -1;
    if (ck_store_target_list(j->st, j->job->tenant_id, j->order.enrollment_id, &targets, &n, err) !=
        0)
        return -1;
    if (j->order.sealed_key != NULL) {
        ck_order_key_aad(j->order.id, aad, sizeof(aad));
        key = ck_unseal_private_key(j->key, aad, j->order.sealed_key, j->order.sealed_key_len, err);
        if (key == NULL)
            goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        if (targets[i].environment == env && apply_target(j, &targets[i], key, err) != 0)
            goto cleanup;
    rc = 0;
cleanup:
    EVP_PKEY_free(key);
    ck_target_array_free(targets, n);
    return rc;
}

void ck_edge_job_run(struct ck_store *st, const ck_master_key *key, const struct ck_job *job)
{
    struct edge_job j = {.st = st, .key = key, .job = job};
    ck_error err = {0};
    int rc = load_job(&j, &err);
    if (rc == 0) {
        switch (job->type) {
        case CK_JOB_STAGING_TEST:
            rc = run_staging_test(&j, &err);
            break;
        case CK_JOB_PROBE:
            rc = run_probe(&j, &err);
            break;
        case CK_JOB_STAGE:
        case CK_JOB_DEPLOY:
            rc = run_targets(&j, job->type == CK_JOB_STAGE ? CK_ENV_STAGING : CK_ENV_PRODUCTION,
                             &err);
            break;
        default:
            rc = ck_error_set(&err, 400, "wrong_job", "not an edge job");
        }
    }
    if (rc != 0)
        job_log(&j, CK_LOG_ERROR, "%s", err.message);
    ck_error finish_err;
    const struct ck_event_new event = {.type = j.event_type,
                                       .enrollment_id = j.order.enrollment_id,
                                       .order_id = j.order.id,
                                       .message = j.event_message};
    const struct ck_job_end end = {.worker = job->worker,
                                   .state = rc == 0 ? CK_JOB_FINISHED : CK_JOB_FAILED,
                                   .error = rc == 0 ? NULL : err.message,
                                   .event = j.event_type != NULL ? &event : NULL};
    if (ck_store_job_end(st, job->id, &end, &finish_err) != 0)
        ck_log(CK_LOG_ERROR, "job %lld: %s", (long long)job->id, finish_err.message);
    X509_free(j.leaf);
    free(j.address);
    ck_enrollment_free(&j.enrollment);
    ck_order_free(&j.order);
}
