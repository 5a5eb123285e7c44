/* The daemon's commands: init, serve and the operator's offline key export. */
#include "server/daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/verify.h"
#include "edge/edge_tables.h"
#include "server/prefill.h"
#include "server/server.h"
#include "server/webhook_worker.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define DEFAULT_WORKERS 2

const char ck_daemon_usage_init[] = "usage: certkeep init --data DIR\n";
const char ck_daemon_usage_serve[] =
    "usage: certkeep serve --data DIR --api ADDR:PORT [--api-cert FILE --api-key FILE]\n"
    "                      [--insecure-http] [--workers N]\n"
    "                      [--staging ADDR:PORT]... [--production ADDR:PORT]...\n"
    "                      [--http ADDR:PORT]...\n"
    "                      [--max-concurrent-orders N] [--no-scheduler]\n"
    "                      [--monitor-interval DURATION] [--no-monitor]\n"
    "                      [--edge-cache N] [--job-lease SECONDS]\n";
const char ck_daemon_usage_key[] =
    "usage: certkeep key export --data DIR [--tenant NAME] ORDER_ID\n";

__attribute__((format(printf, 2, 3))) static int usage_error(const char *usage, const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("certkeep: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage);
    va_end(ap);
    return EXIT_USAGE;
}

static int failed(const ck_error *err)
{
    fprintf(stderr, "certkeep: %s\n", err->message);
    return EXIT_FAILED;
}

static int data_path(const char *dir, const char *file, char out[PATH_MAX], ck_error *err)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, file);
    if (n < 0 || n >= PATH_MAX)
        return ck_error_set(err, 400, "path_too_long", "the data folder path is too long");
    return 0;
}

/* ---- init ---- */

/* The operator tenant, whether the migrations created it or not. */
static int operator_tenant(struct ck_store *st, struct ck_tenant *out, ck_error *err)
{
    if (ck_store_tenant_get(st, CK_OPERATOR_TENANT_NAME, out, NULL) != 0 &&
        ck_store_tenant_create(st, CK_OPERATOR_TENANT_NAME, out, err) != 0)
        return -1;
    if (out->id != CK_OPERATOR_TENANT_ID)
        return ck_error_set(err, 500, "bad_operator_tenant",
                            "tenant default has id %lld instead of %d; the database is not new",
                            (long long)out->id, CK_OPERATOR_TENANT_ID);
    return 0;
}

/* Removes what a failed init created, so that the next init can start afresh. */
static void init_undo(const char *db, const char *key_path)
{
    char path[PATH_MAX + 8];
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < CK_ARRAY_LEN(suffixes); i++) {
        snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
        unlink(path);
    }
    unlink(key_path);
}

/* The first admin token of the operator tenant, printed alone on stdout. */
static int init_store(struct ck_store *st, ck_error *err)
{
    int rc = -1;
    char secret[68] = "";
    uint8_t hash[32];
    struct ck_tenant tenant = {0};
    struct ck_token token = {0};
    if (operator_tenant(st, &tenant, err) != 0 || ck_auth_token_new(secret, hash, err) != 0 ||
        ck_store_token_create(st, tenant.id, CK_ROLE_ADMIN, "init", hash, &token, err) != 0)
        goto cleanup;
    if (printf("%s\n", secret) < 0 || fflush(stdout) != 0) {
        ck_error_set(err, 500, "write_failed", "could not print the token on stdout");
        goto cleanup;
    }
    rc = 0;
cleanup:
    OPENSSL_cleanse(secret, sizeof(secret));
    ck_token_free(&token);
    ck_tenant_free(&tenant);
    return rc;
}

static int init_data(const char *dir, ck_error *err)
{
    int rc = -1;
    char db[PATH_MAX], key_path[PATH_MAX];
    ck_master_key key;
    bool created = false;
    struct ck_store *st = NULL;
    if (data_path(dir, "certkeep.db", db, err) != 0 ||
        data_path(dir, "master.key", key_path, err) != 0)
        goto cleanup;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ck_error_set(err, 400, "mkdir_failed", "cannot create %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    if (access(db, F_OK) == 0) {
        ck_error_set(err, 409, "already_initialised",
                     "%s already exists: %s is already initialised; nothing was changed", db, dir);
        goto cleanup;
    }
    if (ck_master_key_create(key_path, &key, err) != 0)
        goto cleanup;
    created = true;
    ck_master_key_wipe(&key); /* init seals nothing; serve loads the key again */
    if (ck_store_open(db, &st, err) != 0 || init_store(st, err) != 0)
        goto cleanup;
    ck_log(CK_LOG_INFO, "initialised %s; the first admin token (tenant default) is on stdout", dir);
    rc = 0;
cleanup:
    ck_store_close(st);
    if (rc != 0 && created)
        init_undo(db, key_path);
    return rc;
}

int ck_daemon_cmd_init(int argc, char **argv)
{
    static const struct option options[] = {{"data", required_argument, NULL, 'd'},
                                            {NULL, 0, NULL, 0}};
    const char *data = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c != 'd')
            return usage_error(ck_daemon_usage_init, "unknown or incomplete option %s",
                               argv[optind - 1]);
        data = optarg;
    }
    if (data == NULL || optind != argc)
        return usage_error(ck_daemon_usage_init, "init needs --data DIR and nothing else");
    umask(077); /* the database, its WAL and the key file: owner only */
    ck_error err = {0};
    return init_data(data, &err) == 0 ? EXIT_OK : failed(&err);
}

/* ---- serve ---- */

struct serve_options {
    const char *data, *api, *cert, *key;
    bool insecure_http;
    int workers;
    ck_strv edge[CK_EDGE_KIND_COUNT]; /* --staging, --production, --http addresses */
    int max_orders;                   /* --max-concurrent-orders; 0 = the default */
    bool no_scheduler;                /* --no-scheduler: every order step by hand */
    bool no_monitor;                  /* --no-monitor: no expiry monitoring (e.g. benchmarks) */
    int64_t monitor_interval;         /* --monitor-interval, seconds */
    size_t edge_cache;                /* --edge-cache: parsed certificates kept; 0 = default */
    int job_lease;                    /* --job-lease, seconds; 0 = the default */
    char host[256];                   /* from api, without brackets */
    unsigned short port;
};

static int parse_api_address(struct serve_options *o)
{
    const char *colon = strrchr(o->api, ':');
    const char *host = o->api;
    size_t host_len = colon ? (size_t)(colon - o->api) : 0;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL || close + 1 != colon)
            return -1;
        host++;
        host_len = (size_t)(close - host);
    }
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || host_len == 0 || host_len >= sizeof(o->host) || colon[1] == '\0' ||
        *end != '\0' || port < 1 || port > 65535)
        return -1;
    memcpy(o->host, host, host_len);
    o->host[host_len] = '\0';
    o->port = (unsigned short)port;
    return 0;
}

static int parse_monitor_interval(const char *text, int64_t *out)
{
    int64_t seconds = 0;
    if (ck_duration_parse(text, &seconds, NULL) != 0 || seconds < CK_MONITOR_INTERVAL_MIN ||
        seconds > CK_MONITOR_INTERVAL_MAX)
        return -1;
    *out = seconds;
    return 0;
}

/* A whole number from min to max, for the options that take a count. */
static int parse_count(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static int parse_serve_options(int argc, char **argv, struct serve_options *o)
{
    static const struct option options[] = {{"data", required_argument, NULL, 'd'},
                                            {"api", required_argument, NULL, 'a'},
                                            {"api-cert", required_argument, NULL, 'c'},
                                            {"api-key", required_argument, NULL, 'k'},
                                            {"insecure-http", no_argument, NULL, 'i'},
                                            {"workers", required_argument, NULL, 'w'},
                                            {"staging", required_argument, NULL, 'S'},
                                            {"production", required_argument, NULL, 'P'},
                                            {"http", required_argument, NULL, 'H'},
                                            {"max-concurrent-orders", required_argument, NULL, 'M'},
                                            {"no-scheduler", no_argument, NULL, 'N'},
                                            {"monitor-interval", required_argument, NULL, 'm'},
                                            {"no-monitor", no_argument, NULL, 'O'},
                                            {"edge-cache", required_argument, NULL, 'C'},
                                            {"job-lease", required_argument, NULL, 'L'},
                                            {NULL, 0, NULL, 0}};
    long long count;
    int c;
    o->workers = DEFAULT_WORKERS;
    o->monitor_interval = CK_MONITOR_INTERVAL_DEFAULT;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 'a':
            o->api = optarg;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'i':
            o->insecure_http = true;
            break;
        case 'w':
            if (parse_count(optarg, 1, CK_WORKERS_MAX, &count) != 0)
                return usage_error(ck_daemon_usage_serve, "--workers must be a number from 1 to %d",
                                   CK_WORKERS_MAX);
            o->workers = (int)count;
            break;
        case 'S':
        case 'P':
        case 'H':
            if (ck_strv_push(&o->edge[c == 'S'   ? CK_EDGE_STAGING
                                      : c == 'P' ? CK_EDGE_PRODUCTION
                                                 : CK_EDGE_HTTP],
                             optarg) != 0)
                return usage_error(ck_daemon_usage_serve, "out of memory");
            break;
        case 'M':
            if (parse_count(optarg, 1, CK_SCHED_IN_FLIGHT_MAX, &count) != 0)
                return usage_error(ck_daemon_usage_serve,
                                   "--max-concurrent-orders must be a number from 1 to %d",
                                   CK_SCHED_IN_FLIGHT_MAX);
            o->max_orders = (int)count;
            break;
        case 'N':
            o->no_scheduler = true;
            break;
        case 'O':
            o->no_monitor = true;
            break;
        case 'C':
            if (parse_count(optarg, CK_EDGE_CACHE_MIN, CK_EDGE_CACHE_MAX, &count) != 0)
                return usage_error(ck_daemon_usage_serve,
                                   "--edge-cache must be a number of certificates from %d to %d",
                                   CK_EDGE_CACHE_MIN, CK_EDGE_CACHE_MAX);
            o->edge_cache = (size_t)count;
            break;
        case 'L':
            if (parse_count(optarg, CK_JOB_LEASE_MIN, CK_JOB_LEASE_MAX, &count) != 0)
                return usage_error(ck_daemon_usage_serve,
                                   "--job-lease must be a number of seconds from %d to %d",
                                   CK_JOB_LEASE_MIN, CK_JOB_LEASE_MAX);
            o->job_lease = (int)count;
            break;
        case 'm':
            if (parse_monitor_interval(optarg, &o->monitor_interval) != 0)
                return usage_error(ck_daemon_usage_serve,
                                   "--monitor-interval %s is not a duration from 1s to 7d "
                                   "(e.g. 30s, 15m, 1h)",
                                   optarg);
            break;
        default:
            return usage_error(ck_daemon_usage_serve, "unknown or incomplete option %s",
                               argv[optind - 1]);
        }
    }
    if (o->data == NULL || o->api == NULL || optind != argc)
        return usage_error(ck_daemon_usage_serve, "serve needs --data DIR and --api ADDR:PORT");
    if ((o->cert == NULL) != (o->key == NULL))
        return usage_error(ck_daemon_usage_serve, "--api-cert and --api-key go together");
    if (parse_api_address(o) != 0)
        return usage_error(ck_daemon_usage_serve,
                           "--api %s is not ADDR:PORT (e.g. 127.0.0.1:8443, [::1]:8443)", o->api);
    if (o->cert == NULL && !o->insecure_http && !ck_host_is_loopback(o->host)) {
        fprintf(stderr,
                "certkeep: refusing plain HTTP on %s, which is not a loopback address: tokens "
                "would cross the network in clear. Use --api-cert/--api-key for HTTPS, or "
                "--insecure-http if something else protects the traffic\n",
                o->api);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static SSL_CTX *tls_context(const char *cert, const char *key, ck_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        ck_error_openssl(err, 500, "tls_failed", "could not set up TLS");
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ck_error_openssl(err, 400, "invalid_api_cert",
                         "cannot use %s as the API certificate (PEM, leaf first)", cert);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ck_error_openssl(err, 400, "invalid_api_key", "cannot use %s as the API key (PEM)", key);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        ck_error_openssl(err, 400, "invalid_api_key", "%s is not the key of %s", key, cert);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

static struct ck_daemon *daemon_from(void *arg)
{
    struct ck_daemon *d = arg;
    if (d == NULL || d->magic != CK_DAEMON_MAGIC)
        abort(); /* a wrong context: stop before using it */
    return d;
}

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct ck_daemon *d = daemon_from(arg);
    SSL *ssl = SSL_new(d->tls);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)events;
    struct ck_daemon *d = daemon_from(arg);
    ck_log(CK_LOG_INFO, "%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopexit(d->base, NULL);
}

static int add_signal(struct ck_daemon *d, int sig, struct event **out, ck_error *err)
{
    *out = evsignal_new(d->base, sig, on_signal, d);
    if (*out == NULL || event_add(*out, NULL) != 0)
        return ck_error_set(err, 500, "event_failed", "could not watch for signal %d", sig);
    return 0;
}

/* Everything the event loop needs, in d; daemon_stop undoes any part of it. */
static int daemon_start(struct ck_daemon *d, const struct serve_options *o, ck_error *err)
{
    char db[PATH_MAX], key_path[PATH_MAX];
    if (data_path(o->data, "certkeep.db", db, err) != 0 ||
        data_path(o->data, "master.key", key_path, err) != 0)
        return -1;
    if (access(db, F_OK) != 0)
        return ck_error_set(err, 400, "not_initialised",
                            "%s does not exist: run certkeep init --data %s first", db, o->data);
    /* the system's roots, parsed once: every import checks chains against them (a daemon reads
     * a changed bundle when it restarts) */
    if (ck_master_key_load(key_path, &d->master_key, err) != 0 ||
        ck_store_open(db, &d->store, err) != 0 ||
        ck_verify_load_system_roots(&d->system_roots, err) != 0)
        return -1;
    if (o->cert != NULL && (d->tls = tls_context(o->cert, o->key, err)) == NULL)
        return -1;
    /* Locks in the base, so that pre-fill threads may wake the loop (prefill.h). */
    if (evthread_use_pthreads() != 0 || (d->base = event_base_new()) == NULL ||
        (d->http = evhttp_new(d->base)) == NULL)
        return ck_error_set(err, 500, "event_failed", "could not start the event loop");
    if (ck_prefill_pool_new(d, &d->prefill, err) != 0)
        return -1;
    ck_http_install_routes(d);
    if (d->tls != NULL)
        evhttp_set_bevcb(d->http, tls_bevcb, d);
    if (evhttp_bind_socket_with_handle(d->http, o->host, o->port) == NULL)
        return ck_error_set(err, 500, "listen_failed", "cannot listen on %s: %s", o->api,
                            strerror(errno));
    if (add_signal(d, SIGTERM, &d->on_sigterm, err) != 0 ||
        add_signal(d, SIGINT, &d->on_sigint, err) != 0)
        return -1;
    if (ck_edge_runtime_serves_tls(o->edge) && (d->edge_kex = ck_edge_kex_new(err)) == NULL)
        return -1;
    if (ck_edge_runtime_start(d->base, d->store, &d->master_key, o->edge, o->edge_cache,
                              d->edge_kex, &d->edge, err) != 0)
        return -1;
    ck_edge_runtime_on_tick(d->edge, ck_edge_deploy_due, d);
    if (ck_job_runner_start(db, &d->master_key, d->system_roots, o->workers, o->job_lease,
                            &d->runner, err) != 0)
        return -1;
    return ck_webhook_worker_start(db, &d->master_key, &d->webhooks, err);
}

/* The scheduler, on its own thread and store connection, after the runner it wakes and the
 * edge whose addresses its jobs test. */
static int scheduler_start(struct ck_daemon *d, const struct serve_options *o, ck_error *err)
{
    char db[PATH_MAX];
    const ck_strv *staging = ck_edge_runtime_addresses(d->edge, CK_EDGE_STAGING);
    const ck_strv *production = ck_edge_runtime_addresses(d->edge, CK_EDGE_PRODUCTION);
    const struct ck_scheduler_config cfg = {
        .max_in_flight = o->max_orders,
        .staging_address = staging->len > 0 ? staging->items[0] : NULL,
        .production_address = production->len > 0 ? production->items[0] : NULL,
        .runner = d->runner};
    if (o->no_scheduler)
        return 0;
    if (data_path(o->data, "certkeep.db", db, err) != 0)
        return -1;
    return ck_scheduler_start(db, &cfg, &d->scheduler, err);
}

/* Expiry monitoring, on its own thread and store connection, probing the production listener
 * the edge bound (scheduler or not: watching needs no scheduler). */
static int monitor_start(struct ck_daemon *d, const struct serve_options *o, ck_error *err)
{
    char db[PATH_MAX];
    const ck_strv *production = ck_edge_runtime_addresses(d->edge, CK_EDGE_PRODUCTION);
    const struct ck_monitor_config cfg = {.interval = o->monitor_interval,
                                          .production_address =
                                              production->len > 0 ? production->items[0] : NULL};
    d->monitor_interval = o->monitor_interval;
    if (o->no_monitor)
        return 0;
    if (data_path(o->data, "certkeep.db", db, err) != 0)
        return -1;
    return ck_monitor_start(db, &cfg, &d->monitor, err);
}

static void daemon_stop(struct ck_daemon *d)
{
    ck_monitor_free(d->monitor);
    ck_scheduler_free(d->scheduler); /* first: it uses the runner and the edge's addresses */
    ck_webhook_worker_stop(d->webhooks);
    ck_job_runner_stop(d->runner);
    ck_edge_runtime_free(d->edge);
    if (d->base != NULL)
        event_base_loop(d->base, EVLOOP_NONBLOCK); /* releases closed edge connections */
    if (d->on_sigterm != NULL)
        event_free(d->on_sigterm);
    if (d->on_sigint != NULL)
        event_free(d->on_sigint);
    ck_prefill_pool_free(d->prefill); /* before evhttp_free: it leaves requests to it */
    if (d->http != NULL)
        evhttp_free(d->http);
    if (d->base != NULL)
        event_base_free(d->base);
    ck_edge_kex_free(d->edge_kex); /* after the loop's last turn: it freed the edge's SSLs */
    SSL_CTX_free(d->tls);
    sk_X509_pop_free(d->system_roots, X509_free);
    ck_store_close(d->store);
    ck_master_key_wipe(&d->master_key);
    memset(d, 0, sizeof(*d));
}

static void serve_options_free(struct serve_options *o)
{
    for (int k = 0; k < CK_EDGE_KIND_COUNT; k++)
        ck_strv_free(&o->edge[k]);
}

int ck_daemon_cmd_serve(int argc, char **argv)
{
    struct serve_options o = {0};
    int rc = parse_serve_options(argc, argv, &o);
    if (rc != EXIT_OK) {
        serve_options_free(&o);
        return rc;
    }
    umask(077);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is an error code, not a death */
    struct ck_daemon d = {.magic = CK_DAEMON_MAGIC};
    ck_error err = {0};
    if (daemon_start(&d, &o, &err) != 0 || scheduler_start(&d, &o, &err) != 0 ||
        monitor_start(&d, &o, &err) != 0) {
        rc = failed(&err);
    } else {
        ck_log(CK_LOG_INFO, "listening on %s://%s with %d worker%s", d.tls ? "https" : "http",
               o.api, o.workers, o.workers == 1 ? "" : "s");
        event_base_dispatch(d.base);
        ck_log(CK_LOG_INFO, "stopped");
    }
    daemon_stop(&d);
    serve_options_free(&o);
    return rc;
}

/* ---- key export ---- */

static int export_key(const char *dir, const char *tenant_name, int64_t order_id, ck_error *err)
{
    int rc = -1;
    char db[PATH_MAX], key_path[PATH_MAX], aad[64];
    ck_master_key key = {0};
    struct ck_store *st = NULL;
    struct ck_tenant tenant = {0};
    struct ck_order order = {0};
    EVP_PKEY *pkey = NULL;
    if (data_path(dir, "certkeep.db", db, err) != 0 ||
        data_path(dir, "master.key", key_path, err) != 0 ||
        ck_master_key_load(key_path, &key, err) != 0 || ck_store_open(db, &st, err) != 0 ||
        ck_store_tenant_get(st, tenant_name, &tenant, err) != 0 ||
        ck_store_order_get(st, tenant.id, order_id, &order, err) != 0)
        goto cleanup;
    if (order.sealed_key == NULL) {
        ck_error_set(err, 409, "no_key", "order %lld has no key yet (state %s)",
                     (long long)order_id, ck_order_state_name(order.state));
        goto cleanup;
    }
    ck_order_key_aad(order.id, aad, sizeof(aad));
    pkey = ck_unseal_private_key(&key, aad, order.sealed_key, order.sealed_key_len, err);
    if (pkey == NULL)
        goto cleanup;
    if (PEM_write_PKCS8PrivateKey(stdout, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        fflush(stdout) != 0) {
        ck_error_openssl(err, 500, "write_failed", "could not write the key to stdout");
        goto cleanup;
    }
    ck_log(CK_LOG_INFO, "exported the private key of order %lld", (long long)order_id);
    rc = 0;
cleanup:
    EVP_PKEY_free(pkey);
    ck_order_free(&order);
    ck_tenant_free(&tenant);
    ck_store_close(st);
    ck_master_key_wipe(&key);
    return rc;
}

int ck_daemon_cmd_key_export(int argc, char **argv)
{
    static const struct option options[] = {{"data", required_argument, NULL, 'd'},
                                            {"tenant", required_argument, NULL, 't'},
                                            {NULL, 0, NULL, 0}};
    const char *data = NULL, *tenant = CK_OPERATOR_TENANT_NAME;
    int c;
    /* Called as "key export ..." or as "export ...". */
    if (argc > 1 && strcmp(argv[0], "key") == 0 && strcmp(argv[1], "export") == 0) {
        argc--;
        argv++;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 't')
            tenant = optarg;
        else
            return usage_error(ck_daemon_usage_key, "unknown or incomplete option %s",
                               argv[optind - 1]);
    }
    if (data == NULL || optind != argc - 1)
        return usage_error(ck_daemon_usage_key, "key export needs --data DIR and one ORDER_ID");
    const char *id_text = argv[optind];
    size_t digits = strspn(id_text, "0123456789");
    if (digits == 0 || digits > 18 || id_text[digits] != '\0')
        return usage_error(ck_daemon_usage_key, "%s is not an order id", id_text);
    ck_error err = {0};
    return export_key(data, tenant, strtoll(id_text, NULL, 10), &err) == 0 ? EXIT_OK : failed(&err);
}
