/* server.h — private to src/server: the daemon context, the per-request context, the response
 * helpers (http.c), authentication (auth.c) and the route handlers (api_*.c). */
#ifndef CK_SERVER_SERVER_H
#define CK_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "common/error.h"
#include "core/enrollment_input.h"
#include "core/model.h"
#include "crypto/seal.h"
#include "edge/kex_provider.h"
#include "server/edge_runtime.h"
#include "server/jobs.h"
#include "server/monitor.h"
#include "server/scheduler.h"
#include "store/store.h"

#define CK_BODY_MAX      (1024 * 1024)      /* larger request bodies get 413 body_too_large */
#define CK_BODY_HARD_MAX (16 * 1024 * 1024) /* libevent drops anything larger by itself */

/* Everything `certkeep serve` owns. libevent callbacks get it as void *: check the magic. */
#define CK_DAEMON_MAGIC 0x636b6470u /* "ckdp" */
struct ck_daemon {
    uint32_t magic;
    ck_master_key master_key;
    struct ck_store *store; /* the event loop's own connection; workers have theirs */
    struct event_base *base;
    struct evhttp *http;
    SSL_CTX *tls; /* NULL for plain HTTP */
    struct event *on_sigterm, *on_sigint;
    struct ck_job_runner *runner;
    struct ck_edge_runtime *edge; /* edge_runtime.h; NULL without --staging/--production/--http */
    ck_edge_kex *edge_kex;        /* the edge's TLS library context; freed after the loop */
    struct ck_webhook_worker *webhooks; /* webhook_worker.h */
    struct ck_scheduler *scheduler;     /* scheduler.h; NULL with --no-scheduler */
    struct ck_monitor *monitor;         /* monitor.h: expiry monitoring */
    int64_t monitor_interval;           /* --monitor-interval, seconds */
    struct ck_prefill_pool *prefill;    /* prefill.h: pre-fills from live hosts, off the loop */
    STACK_OF(X509) * system_roots;      /* parsed once at start, read-only: every import's trust */
};

#define CK_ROUTE_PARAMS_MAX 4

/* One request while its handler runs; lives on the stack of the dispatcher. */
struct ck_request {
    struct ck_daemon *daemon;
    struct evhttp_request *req;
    struct ck_token caller;            /* set for every route but /healthz */
    char *params[CK_ROUTE_PARAMS_MAX]; /* the route's {placeholders}, percent-decoded */
    struct evkeyvalq query;            /* the URL's query parameters */
};

/* A handler answers the request itself and returns 0, or returns -1 with err set and the
 * dispatcher answers with err's JSON. */
typedef int (*ck_handler)(struct ck_request *r, ck_error *err);

/* ---- http.c: responses and request parts ---- */
void ck_http_reply_json(struct ck_request *r, int status, json_t *json); /* steals json */
void ck_http_reply_error(struct ck_request *r, const ck_error *err);
/* The error with details (a JSON array, borrowed; NULL for none) even for a single problem. */
void ck_http_reply_error_details(struct ck_request *r, const ck_error *err, json_t *details);
void ck_http_reply_input_errors(struct ck_request *r, const struct ck_input_errors *errs);
void ck_http_reply_bytes(struct ck_request *r, int status, const char *content_type,
                         const void *data, size_t len);
void ck_http_reply_empty(struct ck_request *r, int status);
/* The body as a JSON object; an empty body is {}. 413 over CK_BODY_MAX, 400 malformed_json. */
int ck_http_body_object(struct ck_request *r, json_t **out, ck_error *err);
/* A query parameter, or NULL when absent or empty. */
const char *ck_http_query(struct ck_request *r, const char *key);
/* Route parameter i as a positive id; 404 not_found (naming `what`) otherwise. */
int ck_http_param_id(struct ck_request *r, size_t i, const char *what, int64_t *out, ck_error *err);
/* A list route's ?limit= (1 to CK_PAGE_LIMIT_MAX, default CK_PAGE_LIMIT_DEFAULT; 400
 * "invalid_limit") and ?cursor= (the `next` of the previous page, kept in the request's query;
 * 400 "invalid_cursor"). A list by name takes a name as its cursor, the others an id. */
#define CK_PAGE_LIMIT_DEFAULT 100
#define CK_PAGE_LIMIT_MAX     1000
int ck_http_page(struct ck_request *r, bool by_name, struct ck_page *page, ck_error *err);
/* The `next` of an answer: the cursor after the page's last row (its name or id) when
 * page->more, else null. */
json_t *ck_http_page_next(const struct ck_page *page, const char *last_name, int64_t last_id);
/* 400 unknown_field naming the first key of body not among allowed[0..n). */
int ck_json_only_keys(const json_t *body, const char *const *allowed, size_t n, ck_error *err);
/* body[key] as a string in *out (NULL when absent or null and not required); 400 missing_field
 * or invalid_field naming the key. */
int ck_json_string_field(const json_t *body, const char *key, bool required, const char **out,
                         ck_error *err);
/* Installs the request dispatcher on d->http. */
void ck_http_install_routes(struct ck_daemon *d);

/* ---- auth.c ---- */
/* A new secret "ck_" + 64 hex digits (out: 68 bytes) and its SHA-256 hash. */
int ck_auth_token_new(char out[68], uint8_t hash[32], ck_error *err);
/* Looks the request's bearer token up; 401 missing_token / invalid_token. */
int ck_auth_caller(struct ck_store *st, struct evhttp_request *req, struct ck_token *out,
                   ck_error *err);
bool ck_auth_is_operator_admin(const struct ck_token *t);

/* ---- shared JSON views ---- */
json_t *ck_time_json(int64_t t); /* RFC 3339 string, or null for 0 */
/* The docs/API.md order JSON of order id (api_orders.c); NULL with err set on failure. */
json_t *ck_order_json_get(struct ck_store *st, int64_t tenant_id, int64_t id, ck_error *err);

/* ---- handlers ---- */
int ck_api_tenant_create(struct ck_request *r, ck_error *err);
int ck_api_tenant_list(struct ck_request *r, ck_error *err);
int ck_api_token_create(struct ck_request *r, ck_error *err);
int ck_api_token_list(struct ck_request *r, ck_error *err);
int ck_api_token_delete(struct ck_request *r, ck_error *err);
int ck_api_enrollment_create(struct ck_request *r, ck_error *err);
int ck_api_enrollment_list(struct ck_request *r, ck_error *err);
int ck_api_enrollment_get(struct ck_request *r, ck_error *err);
int ck_api_enrollment_update(struct ck_request *r, ck_error *err);
int ck_api_enrollment_delete(struct ck_request *r, ck_error *err);
int ck_api_order_create(struct ck_request *r, ck_error *err);
int ck_api_order_list(struct ck_request *r, ck_error *err);
int ck_api_order_get(struct ck_request *r, ck_error *err);
int ck_api_order_csr(struct ck_request *r, ck_error *err);
int ck_api_order_cancel(struct ck_request *r, ck_error *err);
int ck_api_order_import(struct ck_request *r, ck_error *err);
int ck_api_order_certificate(struct ck_request *r, ck_error *err);
int ck_api_order_acknowledge(struct ck_request *r, ck_error *err);
int ck_api_root_add(struct ck_request *r, ck_error *err);
int ck_api_root_list(struct ck_request *r, ck_error *err);
int ck_api_root_delete(struct ck_request *r, ck_error *err);
int ck_api_poll(struct ck_request *r, ck_error *err);
int ck_api_poll_confirm(struct ck_request *r, ck_error *err);
int ck_api_event_list(struct ck_request *r, ck_error *err);
int ck_api_job_list(struct ck_request *r, ck_error *err);
int ck_api_job_get(struct ck_request *r, ck_error *err);
int ck_api_job_artifact(struct ck_request *r, ck_error *err);
/* api_edge.c */
int ck_api_edge(struct ck_request *r, ck_error *err);
int ck_api_order_stage(struct ck_request *r, ck_error *err);
int ck_api_order_ack_staging(struct ck_request *r, ck_error *err);
int ck_api_order_deploy(struct ck_request *r, ck_error *err);
int ck_api_order_rollback(struct ck_request *r, ck_error *err);
/* Deploys the staged orders whose not_before has come (the edge runtime's tick; arg: daemon). */
void ck_edge_deploy_due(void *daemon);
int ck_api_target_add(struct ck_request *r, ck_error *err);
int ck_api_target_list(struct ck_request *r, ck_error *err);
int ck_api_target_delete(struct ck_request *r, ck_error *err);
/* api_monitor.c */
int ck_api_health(struct ck_request *r, ck_error *err);
int ck_api_metrics(struct ck_request *r, ck_error *err);
int ck_api_enrollment_watch(struct ck_request *r, ck_error *err);

#endif
