/* The ACME client against pebble (Debian's package), on loopback only. Each test starts its own
 * pebble with a TLS certificate made here, PEBBLE_VA_ALWAYS_VALID (no challenge server needed)
 * and a DNS server address where nothing listens, so pebble never asks the system resolver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "crypto/csr.h"
#include "crypto/keys.h"
#include "issuers/acme/acme.h"
#include "issuers/acme/client_internal.h"

#define PEBBLE_BIN     "/usr/bin/pebble"
#define EAB_KID        "kid-1"
#define EAB_KEY        "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
#define EAB_WRONG_KEY  "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH"
#define BLOCKED_DOMAIN "blocked.example"
#define MAX_STEPS      400

struct pebble {
    char dir[64];
    char ca_file[96];
    char directory_url[64];
    int port, mgmt_port;
    pid_t pid;
};

/* ---- pebble's TLS certificate, made here (the package ships none) ---- */

static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), issuer == NULL ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer == NULL ? name : X509_get_subject_name(issuer));
    X509_set_pubkey(cert, key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer == NULL ? cert : issuer, cert, NULL, NULL, 0);
    const char *exts[][2] = {
        {"basicConstraints", issuer == NULL ? "critical,CA:TRUE" : "critical,CA:FALSE"},
        {"subjectAltName", issuer == NULL ? NULL : "IP:127.0.0.1,DNS:localhost"},
        {"extendedKeyUsage", issuer == NULL ? NULL : "serverAuth"},
    };
    for (size_t i = 0; i < CK_ARRAY_LEN(exts); i++) {
        if (exts[i][1] == NULL)
            continue;
        X509_EXTENSION *ext = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        assert_non_null(ext);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, issuer_key == NULL ? key : issuer_key, EVP_sha256()) > 0);
    return cert;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert != NULL)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key != NULL)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void make_tls_files(struct pebble *p)
{
    char path[128];
    EVP_PKEY *ca_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    X509 *ca = make_cert(ca_key, NULL, NULL, "certkeep test minica");
    X509 *leaf = make_cert(key, ca, ca_key, "localhost");
    snprintf(p->ca_file, sizeof(p->ca_file), "%s/minica.pem", p->dir);
    write_pem(p->ca_file, ca, NULL);
    snprintf(path, sizeof(path), "%s/cert.pem", p->dir);
    write_pem(path, leaf, NULL);
    snprintf(path, sizeof(path), "%s/key.pem", p->dir);
    write_pem(path, NULL, key);
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
}

/* ---- starting and stopping pebble ---- */

static int free_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

static void write_config(struct pebble *p, const char *extra)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/pebble.json", p->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"pebble\": {\"listenAddress\": \"127.0.0.1:%d\", "
            "\"managementListenAddress\": \"127.0.0.1:%d\", "
            "\"certificate\": \"%s/cert.pem\", \"privateKey\": \"%s/key.pem\", "
            "\"httpPort\": %d, \"tlsPort\": %d, \"ocspResponderURL\": \"\", "
            "\"domainBlocklist\": [\"" BLOCKED_DOMAIN "\"]%s}}\n",
            p->port, p->mgmt_port, p->dir, p->dir, free_port(SOCK_STREAM), free_port(SOCK_STREAM),
            extra);
    fclose(f);
}

static void exec_pebble(const struct pebble *p, const char *nonce_reject)
{
    char config[128], dns[32], log[128];
    snprintf(config, sizeof(config), "%s/pebble.json", p->dir);
    snprintf(dns, sizeof(dns), "127.0.0.1:%d", free_port(SOCK_DGRAM));
    snprintf(log, sizeof(log), "%s/pebble.log", p->dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    setenv("PEBBLE_VA_ALWAYS_VALID", "1", 1);
    setenv("PEBBLE_VA_NOSLEEP", "1", 1);
    setenv("PEBBLE_WFE_NONCEREJECT", nonce_reject, 1);
    setenv("PEBBLE_AUTHZREUSE", "0", 1);
    execl(PEBBLE_BIN, "pebble", "-config", config, "-strict", "-dnsserver", dns, (char *)NULL);
    _exit(127);
}

static int pebble_start(void **state, const char *extra_config, const char *nonce_reject)
{
    if (access(PEBBLE_BIN, X_OK) != 0) {
        print_message("pebble is not installed (%s); skipping\n", PEBBLE_BIN);
        return -1;
    }
    struct pebble *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    snprintf(p->dir, sizeof(p->dir), "/tmp/certkeep-pebble-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    make_tls_files(p);
    p->port = free_port(SOCK_STREAM);
    p->mgmt_port = free_port(SOCK_STREAM);
    write_config(p, extra_config);
    snprintf(p->directory_url, sizeof(p->directory_url), "https://127.0.0.1:%d/dir", p->port);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0)
        exec_pebble(p, nonce_reject);
    *state = p;
    for (int i = 0; i < 200; i++) { /* at most 10 s */
        if (port_open(p->port) && port_open(p->mgmt_port))
            return 0;
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            print_message("pebble exited at start; see %s/pebble.log\n", p->dir);
            return -1;
        }
        usleep(50 * 1000);
    }
    print_message("pebble did not open port %d within 10 s\n", p->port);
    return -1;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"minica.pem", "cert.pem", "key.pem", "pebble.json",
                                        "pebble.log"};
    char path[128];
    for (size_t i = 0; i < CK_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int pebble_stop(void **state)
{
    struct pebble *p = *state;
    if (p == NULL)
        return 0;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, NULL, 0);
    }
    remove_dir(p->dir);
    free(p);
    *state = NULL;
    return 0;
}

static int setup_plain(void **state)
{
    return pebble_start(state, "", "0");
}

static int setup_nonce_reject(void **state)
{
    return pebble_start(state, "", "30");
}

static int setup_nonce_reject_all(void **state)
{
    return pebble_start(state, "", "100");
}

static int setup_eab(void **state)
{
    return pebble_start(state,
                        ", \"externalAccountBindingRequired\": true, "
                        "\"externalAccountMACKeys\": {\"" EAB_KID "\": \"" EAB_KEY "\"}",
                        "0");
}

/* ---- helpers ---- */

static struct ck_acme_client *client_for(const struct pebble *p, EVP_PKEY *account_key,
                                         const char *eab_kid, const char *eab_key)
{
    ck_strv contacts = {0};
    assert_int_equal(ck_strv_push(&contacts, "mailto:ops@example.com"), 0);
    struct ck_acme_client_options opt = {
        .directory_url = p->directory_url,
        .ca_file = p->ca_file,
        .account_key = account_key,
        .contacts = &contacts,
        .terms_agreed = true,
        .eab_kid = eab_kid,
        .eab_hmac_key = eab_key,
        .timeout_seconds = 10,
    };
    ck_error err = {0};
    struct ck_acme_client *c = ck_acme_client_new(&opt, &err);
    ck_strv_free(&contacts);
    if (c == NULL)
        fail_msg("client: %s", err.message);
    return c;
}

static void order_init(struct ck_acme_order_state *s, EVP_PKEY *cert_key, const char *name1,
                       const char *name2)
{
    ck_strv names = {0};
    assert_int_equal(ck_strv_push(&names, name1), 0);
    if (name2 != NULL)
        assert_int_equal(ck_strv_push(&names, name2), 0);
    struct ck_csr_request req = {.cn = name1, .sans = &names};
    char *csr = ck_csr_create(cert_key, &req, NULL);
    assert_non_null(csr);
    assert_int_equal(ck_acme_order_state_init(s, &names, "dns-01", csr, NULL), 0);
    free(csr);
    ck_strv_free(&names);
}

/* Drives the order until it is done, failed, or at step stop_at. Challenges are "provisioned"
 * at once: pebble is told to take every answer as valid. */
static enum ck_acme_next run(struct ck_acme_client *c, struct ck_acme_order_state *s,
                             enum ck_acme_step stop_at, ck_error *err)
{
    for (int i = 0; i < MAX_STEPS; i++) {
        if (s->step == stop_at)
            return CK_ACME_NEXT_CONTINUE;
        enum ck_acme_next next = ck_acme_step(c, s, err);
        switch (next) {
        case CK_ACME_NEXT_CONTINUE:
            break;
        case CK_ACME_NEXT_WAIT:
            assert_true(s->wait_ms <= 5000);
            usleep((useconds_t)s->wait_ms * 1000);
            break;
        case CK_ACME_NEXT_PROVISION:
            for (size_t k = 0; k < s->challenge_count; k++) {
                assert_string_equal(s->challenges[k].type, "dns-01");
                assert_int_equal(strlen(s->challenges[k].dns_txt_value), 43);
                assert_non_null(strstr(s->challenges[k].key_authorization, s->challenges[k].token));
            }
            assert_int_equal(ck_acme_challenges_provisioned(s, NULL), 0);
            break;
        case CK_ACME_NEXT_DONE:
        case CK_ACME_NEXT_FAILED:
            return next;
        }
    }
    fail_msg("the order did not finish in %d steps (at %s)", MAX_STEPS, ck_acme_step_name(s->step));
    return CK_ACME_NEXT_FAILED;
}

static char *fetch_root(const struct pebble *p)
{
    char url[96];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/roots/0", p->mgmt_port);
    struct ck_acme_response resp = {.retry_after_s = -1};
    CURL *h = curl_easy_init();
    FILE *mem = NULL;
    char *buf = NULL;
    size_t len = 0;
    mem = open_memstream(&buf, &len);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, p->ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    fclose(mem);
    ck_acme_response_free(&resp);
    return buf;
}

/* The leaf and chain verify to pebble's root and name both identifiers. */
static void assert_chain_verifies(const struct pebble *p, const char *pem, const char *name1,
                                  const char *name2)
{
    char *root_pem = fetch_root(p);
    BIO *rb = BIO_new_mem_buf(root_pem, -1);
    X509 *root = PEM_read_bio_X509(rb, NULL, NULL, NULL);
    assert_non_null(root);
    BIO *cb = BIO_new_mem_buf(pem, -1);
    X509 *leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    assert_non_null(leaf);
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *extra;
    while ((extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
        sk_X509_push(chain, extra);
    ERR_clear_error();
    assert_true(sk_X509_num(chain) >= 1);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, root);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, chain);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("chain does not verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    assert_int_equal(X509_check_host(leaf, name1, 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, name2, 0, 0, NULL), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    X509_free(root);
    BIO_free(cb);
    BIO_free(rb);
    free(root_pem);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- cases ---- */

static void issue_two_names(struct pebble *p, bool expect_bad_nonces)
{
    EVP_PKEY *account_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *cert_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct ck_acme_client *c = client_for(p, account_key, NULL, NULL);
    struct ck_acme_order_state s;
    order_init(&s, cert_key, "www.example.com", "shop.example.com");
    ck_error err = {0};
    double start = now_s();
    enum ck_acme_next next = run(c, &s, CK_ACME_STEP_COUNT, &err);
    double elapsed = now_s() - start;
    if (next != CK_ACME_NEXT_DONE)
        fail_msg("order failed at %s: %s", ck_acme_step_name(s.step), err.message);
    print_message("issued in %.3f s (account, order, 2 authorizations)\n", elapsed);
    assert_int_equal(s.step, CK_ACME_STEP_DONE);
    assert_non_null(s.order_url);
    assert_int_equal(s.challenge_count, 2);
    assert_null(s.problem.type);
    assert_chain_verifies(p, s.certificate_pem, "www.example.com", "shop.example.com");

    /* A second order with the same client reuses the account and is quicker. */
    struct ck_acme_order_state s2;
    order_init(&s2, cert_key, "api.example.com", NULL);
    start = now_s();
    assert_int_equal(run(c, &s2, CK_ACME_STEP_COUNT, &err), CK_ACME_NEXT_DONE);
    print_message("second certificate in %.3f s\n", now_s() - start);
    assert_string_equal(s2.account_url, s.account_url);
    assert_string_not_equal(s2.order_url, s.order_url);
    /* About 25 requests with 30% of nonces refused: some were retried, none failed the order.
     * pebble refuses at random, so a run can see none (0.7^25, once in thousands of runs): then
     * more orders go through until one is refused, ten at most. */
    for (int extra = 0; expect_bad_nonces && c->bad_nonce_answers == 0 && extra < 10; extra++) {
        struct ck_acme_order_state more;
        order_init(&more, cert_key, "more.example.com", NULL);
        assert_int_equal(run(c, &more, CK_ACME_STEP_COUNT, &err), CK_ACME_NEXT_DONE);
        ck_acme_order_state_free(&more);
    }
    if (expect_bad_nonces)
        assert_true(c->bad_nonce_answers > 0);
    else
        assert_int_equal(c->bad_nonce_answers, 0);

    ck_acme_order_state_free(&s2);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);
    EVP_PKEY_free(cert_key);
    EVP_PKEY_free(account_key);
}

static void test_issue_two_names(void **state)
{
    issue_two_names(*state, false);
}

static void test_issue_with_nonce_rejections(void **state)
{
    issue_two_names(*state, true);
}

static void test_bad_nonce_retries_are_bounded(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct ck_acme_client *c = client_for(p, key, NULL, NULL);
    char *url = NULL;
    ck_error err = {0};
    assert_int_equal(ck_acme_account(c, &url, &err), -1);
    print_message("every nonce refused: %s\n", err.message);
    assert_non_null(strstr(err.message, "urn:ietf:params:acme:error:badNonce"));
    assert_int_equal(c->bad_nonce_answers, CK_ACME_BADNONCE_RETRIES + 1);
    assert_null(url);
    ck_acme_client_free(c);
    EVP_PKEY_free(key);
}

static void test_account_reuse(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *other = ck_key_generate(CK_KEY_EC_P256, NULL);
    char *url1 = NULL, *url2 = NULL, *url3 = NULL;
    ck_error err = {0};
    struct ck_acme_client *c1 = client_for(p, key, NULL, NULL);
    assert_int_equal(ck_acme_account(c1, &url1, &err), 0);
    struct ck_acme_client *c2 = client_for(p, key, NULL, NULL);
    assert_int_equal(ck_acme_account(c2, &url2, &err), 0);
    struct ck_acme_client *c3 = client_for(p, other, NULL, NULL);
    assert_int_equal(ck_acme_account(c3, &url3, &err), 0);
    assert_string_equal(url1, url2);
    assert_string_not_equal(url1, url3);
    free(url1);
    free(url2);
    free(url3);
    ck_acme_client_free(c1);
    ck_acme_client_free(c2);
    ck_acme_client_free(c3);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
}

static void test_eab(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    char *url = NULL;
    ck_error err = {0};

    struct ck_acme_client *c = client_for(p, key, NULL, NULL);
    assert_int_equal(ck_acme_account(c, &url, &err), -1);
    print_message("without EAB: %s\n", err.message);
    assert_string_equal(err.code, "acme_account_refused");
    assert_non_null(strstr(err.message, "urn:ietf:params:acme:error:externalAccountRequired"));
    ck_acme_client_free(c);

    c = client_for(p, key, EAB_KID, EAB_WRONG_KEY);
    assert_int_equal(ck_acme_account(c, &url, &err), -1);
    print_message("wrong EAB key: %s\n", err.message);
    assert_non_null(strstr(err.message, "urn:ietf:params:acme:error:"));
    ck_acme_client_free(c);

    /* Through the steps, the refusal is the order's problem document. */
    c = client_for(p, key, EAB_KID, EAB_WRONG_KEY);
    struct ck_acme_order_state s;
    order_init(&s, key, "eab.example.com", NULL);
    assert_int_equal(run(c, &s, CK_ACME_STEP_COUNT, &err), CK_ACME_NEXT_FAILED);
    assert_int_equal(s.step, CK_ACME_STEP_FAILED);
    assert_non_null(s.problem.type);
    assert_non_null(strstr(s.problem.type, "urn:ietf:params:acme:error:"));
    assert_true(s.problem.status >= 400 && s.problem.status < 500);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);

    c = client_for(p, key, EAB_KID, EAB_KEY);
    assert_int_equal(ck_acme_account(c, &url, &err), 0);
    assert_non_null(strstr(url, "https://127.0.0.1:"));
    free(url);
    ck_acme_client_free(c);
    EVP_PKEY_free(key);
}

static void test_refused_identifier_problem(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct ck_acme_client *c = client_for(p, key, NULL, NULL);
    struct ck_acme_order_state s;
    order_init(&s, key, "ok.example.com", BLOCKED_DOMAIN);
    ck_error err = {0};
    assert_int_equal(run(c, &s, CK_ACME_STEP_COUNT, &err), CK_ACME_NEXT_FAILED);
    print_message("refused: %s\n", err.message);
    assert_string_equal(err.code, "acme_problem");
    assert_string_equal(s.problem.type, "urn:ietf:params:acme:error:rejectedIdentifier");
    assert_non_null(s.problem.detail);
    assert_non_null(strstr(err.message, s.problem.detail));
    assert_non_null(strstr(err.message, BLOCKED_DOMAIN));
    assert_null(s.order_url);

    /* The stored form keeps the problem as the CA sent it. */
    json_t *doc = ck_acme_order_state_to_json(&s);
    json_t *problem = json_object_get(doc, "problem");
    assert_string_equal(json_string_value(json_object_get(problem, "type")), s.problem.type);
    assert_string_equal(json_string_value(json_object_get(problem, "detail")), s.problem.detail);
    assert_int_equal(json_integer_value(json_object_get(problem, "status")), s.problem.status);
    json_decref(doc);

    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);
    EVP_PKEY_free(key);
}

static void test_malformed_identifier_problem(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct ck_acme_client *c = client_for(p, key, NULL, NULL);
    struct ck_acme_order_state s;
    ck_strv names = {0};
    assert_int_equal(ck_strv_push(&names, "under_score.example.com"), 0);
    assert_int_equal(ck_acme_order_state_init(&s, &names, "dns-01", "unused", NULL), 0);
    ck_error err = {0};
    assert_int_equal(run(c, &s, CK_ACME_STEP_COUNT, &err), CK_ACME_NEXT_FAILED);
    print_message("malformed: %s\n", err.message);
    assert_string_equal(s.problem.type, "urn:ietf:params:acme:error:malformed");
    assert_int_equal(s.problem.status, 400);
    assert_non_null(strstr(err.message, s.problem.type));
    assert_non_null(strstr(err.message, "illegal character"));
    assert_null(s.order_url);
    ck_strv_free(&names);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);
    EVP_PKEY_free(key);
}

/* Orders the account holds, as pebble lists them. */
static size_t account_order_count(struct ck_acme_client *c, const char *account_url)
{
    struct ck_acme_response resp = {.retry_after_s = -1};
    assert_int_equal(ck_acme_post(c, account_url, NULL, false, NULL, &resp, NULL), 0);
    assert_int_equal(resp.status, 200);
    json_t *account = ck_acme_response_json(&resp, NULL);
    const char *orders_url = json_string_value(json_object_get(account, "orders"));
    assert_non_null(orders_url);
    assert_int_equal(ck_acme_post(c, orders_url, NULL, false, NULL, &resp, NULL), 0);
    assert_int_equal(resp.status, 200);
    json_t *list = ck_acme_response_json(&resp, NULL);
    size_t count = json_array_size(json_object_get(list, "orders"));
    json_decref(list);
    json_decref(account);
    ck_acme_response_free(&resp);
    return count;
}

static void test_resume_from_stored_state(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *account_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *cert_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct ck_acme_client *c = client_for(p, account_key, NULL, NULL);
    struct ck_acme_order_state s;
    order_init(&s, cert_key, "resume.example.com", "resume2.example.com");
    ck_error err = {0};
    assert_int_equal(run(c, &s, CK_ACME_STEP_ORDERED, &err), CK_ACME_NEXT_CONTINUE);
    char *order_url = ck_strdup(s.order_url);
    json_t *stored = ck_acme_order_state_to_json(&s);
    char *text = json_dumps(stored, JSON_COMPACT);
    assert_non_null(text);
    assert_null(strstr(text, "PRIVATE KEY"));
    json_decref(stored);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);

    /* "Restart": a new client and the state read back from its JSON. */
    c = client_for(p, account_key, NULL, NULL);
    json_t *loaded = json_loads(text, 0, NULL);
    assert_int_equal(ck_acme_order_state_from_json(loaded, &s, &err), 0);
    json_decref(loaded);
    assert_int_equal(s.step, CK_ACME_STEP_ORDERED);
    assert_int_equal(run(c, &s, CK_ACME_STEP_CHALLENGES_READY, &err), CK_ACME_NEXT_CONTINUE);

    /* Once more in the middle, after the challenges were provisioned. */
    stored = ck_acme_order_state_to_json(&s);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);
    c = client_for(p, account_key, NULL, NULL);
    assert_int_equal(ck_acme_order_state_from_json(stored, &s, &err), 0);
    json_decref(stored);
    if (run(c, &s, CK_ACME_STEP_COUNT, &err) != CK_ACME_NEXT_DONE)
        fail_msg("resumed order failed: %s", err.message);
    assert_string_equal(s.order_url, order_url);
    assert_chain_verifies(p, s.certificate_pem, "resume.example.com", "resume2.example.com");
    assert_int_equal(account_order_count(c, s.account_url), 1);

    free(text);
    free(order_url);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);
    EVP_PKEY_free(cert_key);
    EVP_PKEY_free(account_key);
}

/* The daemon stored the state at "ordering", sent newOrder, and died before storing the
 * answer: the restarted order finds the order the CA already has instead of placing another. */
static void test_resume_after_lost_new_order(void **state)
{
    struct pebble *p = *state;
    EVP_PKEY *account_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *cert_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct ck_acme_client *c = client_for(p, account_key, NULL, NULL);
    struct ck_acme_order_state s;
    order_init(&s, cert_key, "lost.example.com", "lost2.example.com");
    ck_error err = {0};
    assert_int_equal(run(c, &s, CK_ACME_STEP_ORDERING, &err), CK_ACME_NEXT_CONTINUE);
    json_t *stored = ck_acme_order_state_to_json(&s);
    assert_int_equal(ck_acme_step(c, &s, &err), CK_ACME_NEXT_CONTINUE);
    assert_int_equal(s.step, CK_ACME_STEP_ORDERED);
    char *lost_order_url = ck_strdup(s.order_url);
    ck_acme_order_state_free(&s); /* the crash: this state was never stored */
    ck_acme_client_free(c);

    c = client_for(p, account_key, NULL, NULL);
    assert_int_equal(ck_acme_order_state_from_json(stored, &s, &err), 0);
    assert_int_equal(s.step, CK_ACME_STEP_ORDERING);
    assert_null(s.order_url);
    if (run(c, &s, CK_ACME_STEP_COUNT, &err) != CK_ACME_NEXT_DONE)
        fail_msg("resumed order failed: %s", err.message);
    assert_string_equal(s.order_url, lost_order_url);
    assert_int_equal(account_order_count(c, s.account_url), 1);
    assert_chain_verifies(p, s.certificate_pem, "lost.example.com", "lost2.example.com");

    json_decref(stored);
    free(lost_order_url);
    ck_acme_order_state_free(&s);
    ck_acme_client_free(c);
    EVP_PKEY_free(cert_key);
    EVP_PKEY_free(account_key);
}

static void test_problem_subproblems(void **state)
{
    (void)state;
    json_t *doc =
        json_loads("{\"type\": \"urn:ietf:params:acme:error:malformed\", \"status\": 403,"
                   " \"detail\": \"Some of the identifiers requested were rejected\","
                   " \"subproblems\": ["
                   "  {\"type\": \"urn:ietf:params:acme:error:malformed\","
                   "   \"detail\": \"Invalid underscore in DNS name \\\"_example.org\\\"\","
                   "   \"identifier\": {\"type\": \"dns\", \"value\": \"_example.org\"}},"
                   "  {\"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\","
                   "   \"detail\": \"This CA will not issue for \\\"example.net\\\"\","
                   "   \"identifier\": {\"type\": \"dns\", \"value\": \"example.net\"}}]}",
                   0, NULL);
    assert_non_null(doc);
    struct ck_acme_problem p = {0};
    assert_int_equal(ck_acme_problem_from_json(doc, &p), 0);
    assert_int_equal(p.status, 403);
    assert_int_equal(p.subproblem_count, 2);
    assert_string_equal(p.subproblems[1].identifier, "example.net");
    assert_string_equal(p.subproblems[1].type, "urn:ietf:params:acme:error:rejectedIdentifier");
    char line[512];
    ck_acme_problem_format(&p, line, sizeof(line));
    assert_string_equal(line, "Some of the identifiers requested were rejected "
                              "(urn:ietf:params:acme:error:malformed); _example.org: Invalid "
                              "underscore in DNS name \"_example.org\" "
                              "(urn:ietf:params:acme:error:malformed); example.net: This CA "
                              "will not issue for \"example.net\" "
                              "(urn:ietf:params:acme:error:rejectedIdentifier)");
    /* The JSON view round-trips, subproblems and all. */
    json_t *view = ck_acme_problem_to_json(&p);
    struct ck_acme_problem again = {0};
    assert_int_equal(ck_acme_problem_from_json(view, &again), 0);
    assert_int_equal(again.subproblem_count, 2);
    assert_string_equal(again.subproblems[0].identifier, "_example.org");
    assert_string_equal(again.detail, p.detail);
    ck_acme_problem_free(&again);
    ck_acme_problem_free(&p);
    json_decref(view);
    json_decref(doc);
}

static void test_state_json_rejects_damage(void **state)
{
    (void)state;
    ck_error err = {0};
    struct ck_acme_order_state s;
    json_t *doc = json_pack("{s:s, s:[s], s:s}", "step", "flying", "names", "a.example",
                            "challenge_type", "dns-01");
    assert_int_equal(ck_acme_order_state_from_json(doc, &s, &err), -1);
    assert_string_equal(err.code, "invalid_acme_state");
    json_decref(doc);
    for (int i = 0; i < CK_ACME_STEP_COUNT; i++) {
        enum ck_acme_step parsed;
        assert_int_equal(ck_acme_step_parse(ck_acme_step_name((enum ck_acme_step)i), &parsed), 0);
        assert_int_equal(parsed, i);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_json_rejects_damage),
        cmocka_unit_test(test_problem_subproblems),
        cmocka_unit_test_setup_teardown(test_issue_two_names, setup_plain, pebble_stop),
        cmocka_unit_test_setup_teardown(test_account_reuse, setup_plain, pebble_stop),
        cmocka_unit_test_setup_teardown(test_issue_with_nonce_rejections, setup_nonce_reject,
                                        pebble_stop),
        cmocka_unit_test_setup_teardown(test_bad_nonce_retries_are_bounded, setup_nonce_reject_all,
                                        pebble_stop),
        cmocka_unit_test_setup_teardown(test_eab, setup_eab, pebble_stop),
        cmocka_unit_test_setup_teardown(test_refused_identifier_problem, setup_plain, pebble_stop),
        cmocka_unit_test_setup_teardown(test_malformed_identifier_problem, setup_plain,
                                        pebble_stop),
        cmocka_unit_test_setup_teardown(test_resume_from_stored_state, setup_plain, pebble_stop),
        cmocka_unit_test_setup_teardown(test_resume_after_lost_new_order, setup_plain, pebble_stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
