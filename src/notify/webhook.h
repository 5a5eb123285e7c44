/* webhook.h — one signed delivery of one event to one webhook endpoint.
 *
 * Every event of a tenant is POSTed as JSON to each of the tenant's webhooks. The receiver
 * checks that it came from certkeep, and is not a replay, with the header
 *
 *     X-Certkeep-Signature: t=1795000000,v1=<64 lower-case hex digits>
 *
 * where v1 = HMAC-SHA256(key = the webhook's secret, message = "<t>.<body>"), t being the Unix
 * time of the delivery attempt (the scheme Stripe uses). A receiver recomputes the HMAC over the
 * exact bytes it received, compares in constant time, and rejects a t more than a few minutes
 * from its own clock; since t is inside the signed message, an old delivery cannot be replayed
 * with a fresh t. Each attempt is signed again with its own t.
 *
 * Other headers: Content-Type: application/json, X-Certkeep-Event-Id (the receiver's
 * de-duplication key: a retried delivery carries the same id), X-Certkeep-Event-Type.
 *
 * A delivery is acknowledged only by a 2xx answer. Redirects are not followed (a 3xx is a
 * failure); the answer's body is ignored, but one longer than CK_WEBHOOK_RESPONSE_MAX is cut
 * off and the attempt counts as failed.
 * Only https:// URLs are allowed, except http:// to a loopback address (127.0.0.0/8, ::1,
 * localhost), for tests and for a receiver on the same machine.
 *
 * Retries of failed deliveries follow ck_webhook_next_attempt() until acknowledged; the caller
 * (the daemon's webhook worker) keeps the delivery log and calls curl_global_init() once at
 * start-up, as src/main.c does. */
#ifndef CK_NOTIFY_WEBHOOK_H
#define CK_NOTIFY_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* "t=" + up to 20 digits + ",v1=" + 64 hex digits + NUL */
#define CK_WEBHOOK_SIGNATURE_MAX 96
#define CK_WEBHOOK_RESPONSE_MAX  (64 * 1024)
#define CK_WEBHOOK_ERROR_MAX     CK_ERROR_MSG_MAX

/* Writes the X-Certkeep-Signature value for body signed at timestamp into out (at least
 * CK_WEBHOOK_SIGNATURE_MAX bytes). Fails (500) only if OpenSSL fails or out is too small. */
int ck_webhook_sign(const char *secret, const char *body, int64_t timestamp, char *out,
                    size_t out_len, ck_error *err);

struct ck_webhook_request {
    const char *url;        /* https://..., or http:// to a loopback address */
    const char *body;       /* the event as JSON */
    const char *secret;     /* the webhook's secret; never logged */
    const char *event_id;   /* X-Certkeep-Event-Id */
    const char *event_type; /* X-Certkeep-Event-Type, e.g. "certificate.deployed" */
    const char *ca_file;    /* CA certificates to trust (PEM); NULL = the system's */
    long timeout_ms;        /* the whole attempt, connection included; <= 0 = 10 s */
    int64_t timestamp;      /* ck_clock_now() at the attempt: signed into the header */
};

/* One attempt, for the webhook's delivery log. */
struct ck_webhook_result {
    long http_status;                 /* 0 = no answer (refused, timed out, TLS failed) */
    char error[CK_WEBHOOK_ERROR_MAX]; /* empty when acknowledged */
    int64_t duration_ms;
};

/* POSTs the event. Returns 0 when the endpoint acknowledged it with 2xx; otherwise -1 with
 * result->error and err saying why (400 invalid_webhook for a URL or header value it will not
 * send to, 502 webhook_failed for a failed attempt). result is filled in both cases. */
int ck_webhook_deliver(const struct ck_webhook_request *req, struct ck_webhook_result *result,
                       ck_error *err);

/* When to try again after `attempts` failed attempts: ck_policy_retry_after() (exponential
 * backoff with full jitter, 1 min up to 6 h); seed = the delivery's id. */
int64_t ck_webhook_next_attempt(int attempts, int64_t now, uint64_t seed);

#endif
