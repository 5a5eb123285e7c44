/* The daemon's edge: listeners, tables built from the store, and the generation watch. */
#include "server/edge_runtime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "core/model.h"
#include "edge/edge_tables.h"
#include "edge/listener.h"
#include "edge/sni_table.h"
#include "server/http01.h"

#define RUNTIME_MAGIC      0x636b6572u /* "cker" */
#define WATCH_INTERVAL_SEC 1
/* Descriptors kept out of the edge's reach for the API, the store, jobs and http-01: a flood of
 * TLS connections must leave the rest of the daemon working (evhttp has no pause on EMFILE). */
#define FD_RESERVE 256

struct env_edge {
    ck_edge_tables *tables;
    ck_edge_listener **listeners;
    size_t n_listeners;
    bool built;
    int64_t generation; /* the store's edge generation the published table was read at */
};

struct ck_edge_runtime {
    uint32_t magic;
    struct event_base *base;
    struct ck_store *store;
    ck_master_key key;      /* a copy: the key loader of every table uses it */
    struct env_edge env[2]; /* indexed by enum ck_environment */
    struct ck_http01 *http;
    ck_strv bound[CK_EDGE_KIND_COUNT];
    size_t cache_capacity;             /* parsed certificates kept per environment */
    struct ck_edge_conn_budget budget; /* shared by every TLS listener */
    ck_edge_kex *kex;                  /* the TLS listeners' library context, not owned */
    struct event *watch;
    void (*on_tick)(void *arg);
    void *on_tick_arg;
};

const char *ck_edge_kind_name(enum ck_edge_kind kind)
{
    static const char *const names[] = {"staging", "production", "http"};
    return (unsigned)kind < CK_EDGE_KIND_COUNT ? names[kind] : "?";
}

int ck_edge_address_split(const char *address, char *host, size_t host_len, int *port,
                          ck_error *err)
{
    const char *colon = address ? strrchr(address, ':') : NULL;
    const char *start = address;
    size_t len = colon ? (size_t)(colon - address) : 0;
    if (colon != NULL && address[0] == '[') {
        const char *close = strchr(address, ']');
        if (close == NULL || close + 1 != colon)
            colon = NULL;
        start = address + 1;
        len = colon ? (size_t)(close - start) : 0;
    }
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || len == 0 || len >= host_len || colon[1] == '\0' || *end != '\0' || p < 0 ||
        p > 65535)
        return ck_error_set(err, 400, "invalid_address",
                            "\"%.200s\" is not IP:PORT (e.g. 127.0.0.1:8444, [::1]:8444)",
                            address ? address : "");
    memcpy(host, start, len);
    host[len] = '\0';
    *port = (int)p;
    return 0;
}

/* ---- building tables ---- */

static EVP_PKEY *load_key(void *arg, const char *label, const uint8_t *blob, size_t blob_len,
                          OSSL_LIB_CTX *libctx, ck_error *err)
{
    return ck_unseal_private_key_ex(arg, label, blob, blob_len, libctx, err);
}

/* Appends to *der the DER of every CERTIFICATE block of pem but one equal to skip (the leaf,
 * when the chain repeats it). Base64 only, no ASN.1 parse: the certificates were parsed and
 * checked when they were accepted, and the edge parses them again on first use; parsing
 * 100,000 of them here was 90% of a daemon's start. */
static int pem_to_der(const char *pem, const uint8_t *skip, size_t skip_len, uint8_t **der,
                      size_t *len, ck_error *err)
{
    int rc = -1;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long data_len = 0;
    BIO *in = BIO_new_mem_buf(pem, -1);
    if (in == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading a certificate");
    while (PEM_read_bio(in, &name, &header, &data, &data_len) == 1) {
        bool repeated =
            skip != NULL && (size_t)data_len == skip_len && memcmp(data, skip, skip_len) == 0;
        if (strcmp(name, PEM_STRING_X509) == 0 && data_len > 0 && !repeated) {
            uint8_t *grown = realloc(*der, *len + (size_t)data_len);
            if (grown == NULL) {
                ck_error_set(err, 500, "out_of_memory", "out of memory reading a certificate");
                goto cleanup;
            }
            memcpy(grown + *len, data, (size_t)data_len);
            *der = grown;
            *len += (size_t)data_len;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ERR_clear_error(); /* the end of the PEM text */
    rc = 0;
cleanup:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(in);
    return rc;
}

static int add_entry(ck_sni_builder *b, const struct ck_edge_entry *e, ck_error *err)
{
    int rc = -1;
    uint8_t *leaf_der = NULL, *chain_der = NULL;
    size_t leaf_len = 0, chain_len = 0;
    char aad[64];
    if (e->sealed_key == NULL || e->cert_pem == NULL)
        return ck_error_set(err, 409, "no_key", "no certificate or no key inside certkeep");
    if (pem_to_der(e->cert_pem, NULL, 0, &leaf_der, &leaf_len, err) != 0 ||
        pem_to_der(e->chain_pem ? e->chain_pem : "", leaf_der, leaf_len, &chain_der, &chain_len,
                   err) != 0)
        goto cleanup;
    ck_order_key_aad(e->order_id, aad, sizeof(aad));
    const struct ck_sni_entry entry = {.names = (const char *const *)e->names.items,
                                       .name_count = e->names.len,
                                       .leaf_der = leaf_der,
                                       .leaf_der_len = leaf_len,
                                       .chain_der = chain_der,
                                       .chain_der_len = chain_len,
                                       .key_blob = e->sealed_key,
                                       .key_blob_len = e->sealed_key_len,
                                       .key_label = aad};
    rc = ck_sni_builder_add(b, &entry, err);
cleanup:
    free(leaf_der);
    free(chain_der);
    return rc;
}

struct table_build {
    enum ck_environment env;
    ck_sni_builder *builder;
};

/* Adds one entry the store hands over; an entry that cannot be served is logged and left out,
 * so one bad certificate does not take the others down. */
static int add_visited_entry(const struct ck_edge_entry *entry, void *arg, ck_error *err)
{
    (void)err;
    struct table_build *tb = arg;
    ck_error entry_err;
    if (add_entry(tb->builder, entry, &entry_err) != 0)
        ck_log(CK_LOG_WARN, "edge %s: order %lld is not served: %s", ck_environment_name(tb->env),
               (long long)entry->order_id, entry_err.message);
    return 0;
}

/* A new table with every certificate the store says env serves, read one row at a time. */
static ck_sni_table *build_table(struct ck_edge_runtime *rt, enum ck_environment env,
                                 int64_t *generation, ck_error *err)
{
    struct table_build tb = {.env = env, .builder = ck_sni_builder_new(load_key, &rt->key, err)};
    if (tb.builder == NULL)
        return NULL;
    if (ck_store_edge_each(rt->store, env, add_visited_entry, &tb, generation, err) != 0) {
        ck_sni_builder_free(tb.builder);
        return NULL;
    }
    return ck_sni_builder_finish(tb.builder, err);
}

static void rebuild(struct ck_edge_runtime *rt, enum ck_environment env)
{
    struct env_edge *e = &rt->env[env];
    int64_t generation = 0;
    ck_error err;
    ck_sni_table *table = build_table(rt, env, &generation, &err);
    if (table == NULL) {
        ck_log(CK_LOG_ERROR, "edge %s: could not rebuild the table (kept the current one): %s",
               ck_environment_name(env), err.message);
        return;
    }
    size_t count = ck_sni_table_cert_count(table);
    ck_edge_tables_publish(e->tables, table);
    e->built = true;
    e->generation = generation;
    ck_log(CK_LOG_INFO, "edge %s: serving %zu certificate%s (generation %lld)",
           ck_environment_name(env), count, count == 1 ? "" : "s", (long long)generation);
}

void ck_edge_runtime_refresh(struct ck_edge_runtime *rt)
{
    if (rt == NULL ||
        rt->env[CK_ENV_STAGING].n_listeners + rt->env[CK_ENV_PRODUCTION].n_listeners == 0)
        return;
    int64_t generation;
    ck_error err;
    if (ck_store_edge_generation(rt->store, &generation, &err) != 0) {
        ck_log(CK_LOG_ERROR, "edge: cannot read the edge generation: %s", err.message);
        return;
    }
    for (int env = CK_ENV_STAGING; env <= CK_ENV_PRODUCTION; env++) {
        struct env_edge *e = &rt->env[env];
        if (e->n_listeners > 0 && (!e->built || e->generation != generation))
            rebuild(rt, (enum ck_environment)env);
    }
}

static void on_watch(evutil_socket_t fd, short events, void *arg)
{
    (void)fd;
    (void)events;
    struct ck_edge_runtime *rt = arg;
    if (rt == NULL || rt->magic != RUNTIME_MAGIC)
        abort(); /* a wrong context: stop before using it */
    ck_edge_runtime_refresh(rt);
    if (rt->on_tick != NULL)
        rt->on_tick(rt->on_tick_arg);
}

void ck_edge_runtime_on_tick(struct ck_edge_runtime *rt, void (*fn)(void *arg), void *arg)
{
    rt->on_tick = fn;
    rt->on_tick_arg = arg;
}

/* ---- listeners ---- */

static int bound_address(const char *address, int port, ck_strv *bound, ck_error *err)
{
    char host[256], text[300];
    int ignored;
    if (ck_edge_address_split(address, host, sizeof(host), &ignored, err) != 0)
        return -1;
    snprintf(text, sizeof(text), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (ck_strv_push(bound, text) != 0)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the edge");
    return 0;
}

static int start_env(struct ck_edge_runtime *rt, enum ck_environment env, const ck_strv *addresses,
                     ck_strv *bound, ck_error *err)
{
    struct env_edge *e = &rt->env[env];
    if (addresses->len == 0)
        return 0;
    e->tables = ck_edge_tables_new(rt->cache_capacity, err);
    e->listeners = calloc(addresses->len, sizeof(*e->listeners));
    if (e->tables == NULL || e->listeners == NULL)
        return e->tables == NULL ? -1 : ck_error_set(err, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < addresses->len; i++) {
        const struct ck_edge_listener_options opts = {.address = addresses->items[i],
                                                      .tables = e->tables,
                                                      .budget = &rt->budget,
                                                      .kex = rt->kex};
        e->listeners[i] = ck_edge_listener_new(rt->base, &opts, err);
        if (e->listeners[i] == NULL)
            return -1;
        e->n_listeners++;
        if (bound_address(addresses->items[i], ck_edge_listener_port(e->listeners[i]), bound,
                          err) != 0)
            return -1;
    }
    return 0;
}

/* Every edge connection holds a descriptor, and the soft limit a service starts with (often 1024)
 * would end the edge's usefulness at about a thousand idle clients. The hard limit is what the
 * administrator granted, so the edge takes all of it. Failing to raise it is not fatal: the
 * listeners pause accepting on EMFILE (listener.c). */
static rlim_t raise_descriptor_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return 1024;
    if (lim.rlim_cur == lim.rlim_max)
        return lim.rlim_cur;
    rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        ck_log(CK_LOG_WARN, "edge: could not raise the open file limit from %llu to %llu",
               (unsigned long long)before, (unsigned long long)lim.rlim_max);
        return before;
    }
    ck_log(CK_LOG_INFO, "edge: open file limit raised from %llu to %llu",
           (unsigned long long)before, (unsigned long long)lim.rlim_max);
    return lim.rlim_cur;
}

/* The TLS listeners together may hold the descriptor limit less FD_RESERVE (half of a limit too
 * small for that), so a flood cannot starve the API. */
static size_t edge_connection_budget(rlim_t limit)
{
    if (limit == RLIM_INFINITY || limit > SIZE_MAX)
        return SIZE_MAX;
    return limit > 2 * FD_RESERVE ? (size_t)limit - FD_RESERVE : (size_t)limit / 2;
}

static int start_watch(struct ck_edge_runtime *rt, ck_error *err)
{
    const struct timeval every = {.tv_sec = WATCH_INTERVAL_SEC};
    rt->watch = event_new(rt->base, -1, EV_PERSIST, on_watch, rt);
    if (rt->watch == NULL || event_add(rt->watch, &every) != 0)
        return ck_error_set(err, 500, "event_failed", "could not start the edge's reload timer");
    return 0;
}

bool ck_edge_runtime_serves_tls(const ck_strv addresses[CK_EDGE_KIND_COUNT])
{
    return addresses[CK_EDGE_STAGING].len + addresses[CK_EDGE_PRODUCTION].len > 0;
}

int ck_edge_runtime_start(struct event_base *base, struct ck_store *st, const ck_master_key *key,
                          const ck_strv addresses[CK_EDGE_KIND_COUNT], size_t cache_capacity,
                          ck_edge_kex *kex, struct ck_edge_runtime **out, ck_error *err)
{
    struct ck_edge_runtime *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the edge");
    rt->magic = RUNTIME_MAGIC;
    rt->cache_capacity = cache_capacity;
    rt->kex = kex;
    rt->base = base;
    rt->store = st;
    rt->key = *key;
    if (ck_edge_runtime_serves_tls(addresses))
        rt->budget.max = edge_connection_budget(raise_descriptor_limit());
    if (start_env(rt, CK_ENV_STAGING, &addresses[CK_EDGE_STAGING], &rt->bound[CK_EDGE_STAGING],
                  err) != 0 ||
        start_env(rt, CK_ENV_PRODUCTION, &addresses[CK_EDGE_PRODUCTION],
                  &rt->bound[CK_EDGE_PRODUCTION], err) != 0)
        goto cleanup;
    if (addresses[CK_EDGE_HTTP].len > 0 &&
        ck_http01_start(base, st, &addresses[CK_EDGE_HTTP], &rt->bound[CK_EDGE_HTTP], &rt->http,
                        err) != 0)
        goto cleanup;
    if (start_watch(rt, err) != 0)
        goto cleanup;
    ck_edge_runtime_refresh(rt);
    *out = rt;
    return 0;
cleanup:
    ck_edge_runtime_free(rt);
    return -1;
}

void ck_edge_runtime_free(struct ck_edge_runtime *rt)
{
    if (rt == NULL)
        return;
    if (rt->watch != NULL)
        event_free(rt->watch);
    ck_http01_free(rt->http);
    for (int env = CK_ENV_STAGING; env <= CK_ENV_PRODUCTION; env++) {
        struct env_edge *e = &rt->env[env];
        /* listeners first: the tables must outlive every handshake (listener.h) */
        for (size_t i = 0; i < e->n_listeners; i++)
            ck_edge_listener_free(e->listeners[i]);
        free(e->listeners);
        ck_edge_tables_free(e->tables);
    }
    for (int k = 0; k < CK_EDGE_KIND_COUNT; k++)
        ck_strv_free(&rt->bound[k]);
    ck_master_key_wipe(&rt->key);
    rt->magic = 0;
    free(rt);
}

const ck_strv *ck_edge_runtime_addresses(const struct ck_edge_runtime *rt, enum ck_edge_kind kind)
{
    static const ck_strv none = {0};
    if (rt == NULL || (unsigned)kind >= CK_EDGE_KIND_COUNT)
        return &none;
    return &rt->bound[kind];
}

void ck_edge_runtime_cache_stats(const struct ck_edge_runtime *rt, enum ck_environment env,
                                 struct ck_edge_cache_stats *out)
{
    *out = (struct ck_edge_cache_stats){0};
    if (rt != NULL && rt->env[env].tables != NULL)
        ck_edge_tables_cache_stats(rt->env[env].tables, out);
}

void ck_edge_runtime_handshakes(const struct ck_edge_runtime *rt, enum ck_environment env,
                                uint64_t *handshakes, uint64_t *errors)
{
    *handshakes = *errors = 0;
    for (size_t i = 0; rt != NULL && i < rt->env[env].n_listeners; i++) {
        uint64_t ok, failed;
        ck_edge_listener_stats(rt->env[env].listeners[i], &ok, &failed);
        *handshakes += ok;
        *errors += failed;
    }
}
