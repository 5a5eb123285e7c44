#include "server/webhook_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/sleeper.h"
#include "core/policy.h"
#include "notify/webhook.h"
#include "server/server.h"
#include "store/store.h"

#define WEBHOOK_WORKER_MAGIC 0x636b7768u /* "ckwh" */
#define ROUND_MAX            32 /* deliveries per round, so a backlog cannot starve fan-out */
#define IDLE_WAIT_SECONDS    1
#define ATTEMPT_TIMEOUT_MS   10000
#define RETRY_BASE_MS_MAX    (3600 * 1000)

struct ck_webhook_worker {
    uint32_t magic;
    ck_master_key key;
    struct ck_store *store;
    pthread_t thread;
    bool started;
    struct ck_sleeper sleeper;
    bool sleeper_ready;
    char *ca_file;      /* CERTKEEP_WEBHOOK_CA_FILE, or NULL for the system's roots */
    long retry_base_ms; /* CERTKEEP_WEBHOOK_RETRY_BASE_MS, or 0 for the normal schedule */
    char id[300];       /* "hostname:pid:webhooks", the lease holder */
};

static bool is_stopping(struct ck_webhook_worker *w)
{
    return ck_sleeper_stopping(&w->sleeper);
}

static void wait_a_little(struct ck_webhook_worker *w)
{
    ck_sleeper_sleep(&w->sleeper, IDLE_WAIT_SECONDS * 1000);
}

/* The event as GET /v1/poll shows it, without the poll-only confirmed_at. */
static char *event_body(const struct ck_event *ev)
{
    json_t *data = ev->data_json ? json_loads(ev->data_json, 0, NULL) : NULL;
    json_t *o = json_pack("{s:I,s:s,s:s?,s:o,s:s?,s:o,s:o}", "id", (json_int_t)ev->id, "type",
                          ev->type ? ev->type : "", "enrollment", ev->enrollment_name, "order_id",
                          ev->order_id > 0 ? json_integer(ev->order_id) : json_null(), "message",
                          ev->message, "data", data ? data : json_null(), "created_at",
                          ck_time_json(ev->created_at));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* The webhook's secret as a C string; the caller must OPENSSL_clear_free(*out, *len). */
static int unseal_secret(const ck_master_key *key, const struct ck_webhook *hook, char **out,
                         size_t *len, ck_error *err)
{
    char aad[64];
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    if (hook->sealed_secret == NULL)
        return ck_error_set(err, 500, "no_secret", "webhook %lld has no secret",
                            (long long)hook->id);
    snprintf(aad, sizeof(aad), "certkeep/webhook/%lld/secret", (long long)hook->id);
    if (ck_unseal(key, aad, hook->sealed_secret, hook->sealed_secret_len, &plain, &plain_len,
                  err) != 0)
        return -1;
    char *text = OPENSSL_malloc(plain_len + 1);
    if (text == NULL) {
        OPENSSL_clear_free(plain, plain_len);
        return ck_error_set(err, 500, "out_of_memory", "out of memory unsealing a secret");
    }
    memcpy(text, plain, plain_len);
    text[plain_len] = '\0';
    OPENSSL_clear_free(plain, plain_len);
    *out = text;
    *len = plain_len + 1;
    return 0;
}

/* When to try again after `attempts` failed attempts. */
static int64_t next_attempt(const struct ck_webhook_worker *w, int attempts, int64_t now,
                            uint64_t seed)
{
    if (w->retry_base_ms <= 0)
        return ck_webhook_next_attempt(attempts, now, seed);
    int64_t delay_ms = w->retry_base_ms;
    for (int i = 1; i < attempts && delay_ms < (int64_t)CK_POLICY_RETRY_CAP * 1000; i++)
        delay_ms *= 2;
    if (delay_ms > (int64_t)CK_POLICY_RETRY_CAP * 1000)
        delay_ms = (int64_t)CK_POLICY_RETRY_CAP * 1000;
    int64_t seconds = (delay_ms + 999) / 1000;
    return now + (seconds < 1 ? 1 : seconds);
}

/* One attempt of a claimed delivery, recorded in its log. */
static void deliver(struct ck_webhook_worker *w, const struct ck_webhook_claim *c)
{
    char *body = NULL, *secret = NULL, event_id[24];
    size_t secret_len = 0;
    struct ck_webhook_result result = {0};
    ck_error err = {0};
    int64_t now = ck_clock_now();
    bool acknowledged = false;
    snprintf(event_id, sizeof(event_id), "%lld", (long long)c->event.id);
    if ((body = event_body(&c->event)) == NULL) {
        snprintf(result.error, sizeof(result.error), "out of memory building the event's JSON");
    } else if (unseal_secret(&w->key, &c->webhook, &secret, &secret_len, &err) != 0) {
        snprintf(result.error, sizeof(result.error), "%s", err.message);
    } else {
        struct ck_webhook_request req = {.url = c->webhook.url,
                                         .body = body,
                                         .secret = secret,
                                         .event_id = event_id,
                                         .event_type = c->event.type,
                                         .ca_file = w->ca_file,
                                         .timeout_ms = ATTEMPT_TIMEOUT_MS,
                                         .timestamp = now};
        acknowledged = ck_webhook_deliver(&req, &result, &err) == 0;
    }
    int attempts = c->delivery.attempts + 1;
    int64_t next = acknowledged ? 0 : next_attempt(w, attempts, now, (uint64_t)c->delivery.id);
    if (acknowledged)
        ck_log(CK_LOG_INFO, "webhook %lld: event %s delivered (HTTP %ld, attempt %d)",
               (long long)c->webhook.id, event_id, result.http_status, attempts);
    else
        ck_log(CK_LOG_WARN, "webhook %lld: event %s not delivered (attempt %d): %s; next in %llds",
               (long long)c->webhook.id, event_id, attempts, result.error, (long long)(next - now));
    if (ck_store_webhook_record(w->store, c->delivery.id, w->id, acknowledged, result.http_status,
                                result.error, ck_clock_now(), next, &err) != 0)
        ck_log(CK_LOG_ERROR, "webhook %lld: could not record delivery %lld: %s",
               (long long)c->webhook.id, (long long)c->delivery.id, err.message);
    free(body);
    if (secret != NULL)
        OPENSSL_clear_free(secret, secret_len);
}

/* Fans out new events, then sends what is due; returns how many deliveries it tried. */
static int one_round(struct ck_webhook_worker *w)
{
    ck_error err = {0};
    int tried = 0;
    if (ck_store_webhook_fan_out(w->store, ck_clock_now(), NULL, &err) != 0)
        ck_log(CK_LOG_ERROR, "webhooks: could not turn events into deliveries: %s", err.message);
    while (tried < ROUND_MAX && !is_stopping(w)) {
        struct ck_webhook_claim c = {0};
        int got = ck_store_webhook_claim(w->store, w->id, ck_clock_now(), CK_WEBHOOK_LEASE_SECONDS,
                                         &c, &err);
        if (got < 0)
            ck_log(CK_LOG_ERROR, "webhooks: could not claim a delivery: %s", err.message);
        if (got != 1)
            break;
        deliver(w, &c);
        ck_webhook_claim_free(&c);
        tried++;
    }
    return tried;
}

static void *worker_main(void *arg)
{
    struct ck_webhook_worker *w = arg;
    if (w == NULL || w->magic != WEBHOOK_WORKER_MAGIC)
        abort(); /* a wrong context: stop before using it */
    while (!is_stopping(w)) {
        if (one_round(w) < ROUND_MAX)
            wait_a_little(w);
    }
    return NULL;
}

void ck_webhook_worker_stop(struct ck_webhook_worker *w)
{
    if (w == NULL)
        return;
    if (w->magic != WEBHOOK_WORKER_MAGIC)
        abort();
    if (w->started) {
        ck_sleeper_stop(&w->sleeper);
        pthread_join(w->thread, NULL);
    }
    ck_store_close(w->store);
    if (w->sleeper_ready)
        ck_sleeper_destroy(&w->sleeper);
    ck_master_key_wipe(&w->key);
    free(w->ca_file);
    w->magic = 0;
    free(w);
}

/* The environment's settings, checked so that a typo fails at start-up, not at delivery. */
static int read_environment(struct ck_webhook_worker *w, ck_error *err)
{
    const char *ca = getenv("CERTKEEP_WEBHOOK_CA_FILE");
    const char *base = getenv("CERTKEEP_WEBHOOK_RETRY_BASE_MS");
    if (ca != NULL && *ca != '\0') {
        if (access(ca, R_OK) != 0)
            return ck_error_set(err, 400, "invalid_ca_file",
                                "CERTKEEP_WEBHOOK_CA_FILE %s cannot be read: %s", ca,
                                strerror(errno));
        if ((w->ca_file = strdup(ca)) == NULL)
            return ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
    if (base != NULL && *base != '\0') {
        char *end;
        errno = 0;
        long ms = strtol(base, &end, 10);
        if (errno != 0 || end == base || *end != '\0' || ms < 1 || ms > RETRY_BASE_MS_MAX)
            return ck_error_set(err, 400, "invalid_retry_base",
                                "CERTKEEP_WEBHOOK_RETRY_BASE_MS must be 1 to %d milliseconds",
                                RETRY_BASE_MS_MAX);
        w->retry_base_ms = ms;
    }
    return 0;
}

int ck_webhook_worker_start(const char *db_path, const ck_master_key *key,
                            struct ck_webhook_worker **out, ck_error *err)
{
    char host[256] = "localhost";
    struct ck_webhook_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting webhooks");
    w->magic = WEBHOOK_WORKER_MAGIC;
    w->key = *key;
    gethostname(host, sizeof(host) - 1);
    snprintf(w->id, sizeof(w->id), "%s:%ld:webhooks", host, (long)getpid());
    int rc = -1;
    if (ck_sleeper_init(&w->sleeper) != 0) {
        ck_error_set(err, 500, "thread_failed", "could not set up the webhook thread");
        goto cleanup;
    }
    w->sleeper_ready = true;
    if (read_environment(w, err) != 0 || ck_store_open(db_path, &w->store, err) != 0)
        goto cleanup;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        ck_error_set(err, 500, "thread_failed", "could not start the webhook thread");
        goto cleanup;
    }
    w->started = true;
    *out = w;
    w = NULL;
    rc = 0;
cleanup:
    ck_webhook_worker_stop(w); /* only when starting failed */
    return rc;
}
