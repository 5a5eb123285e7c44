/* prefill.h — private to src/server: enrollment creation with a pre-fill from a live host
 * (POST /v1/enrollments with from_host), off the event loop.
 *
 * The TLS connect may take up to CK_PREFILL_TIMEOUT_MS; done on the loop it would hold every
 * other request that long. Each such request gets a short-lived thread that parses the body and
 * fetches the certificate (ck_enrollment_input_create); the thread then wakes the loop
 * (event_active, which needs evthread_use_pthreads before the base is made), and the rest of the
 * request — store checks, the insert, the answer — runs on the loop as usual. The evhttp request
 * is only ever touched on the loop. libevent 2.1 mostly notices a client that left only when the
 * answer is written (it does not read while a request is being answered); when it does notice
 * earlier, it detaches the request from the closed connection and the result is dropped, nothing
 * created. At shutdown a pipe every fetch polls cancels them (503 "cancelled", unanswered) and
 * the threads are joined. */
#ifndef CK_SERVER_PREFILL_H
#define CK_SERVER_PREFILL_H

#include <event2/event.h>
#include <jansson.h>

#include "common/error.h"
#include "core/enrollment_input.h"

/* More pre-fills at once get 503 "prefill_busy". */
#define CK_PREFILL_IN_FLIGHT_MAX 16

struct ck_prefill_pool;
struct ck_daemon;
struct ck_request;

/* What the thread produced, handed back on the loop: rc 0 with e filled, or -1 with errs set
 * (exactly as ck_enrollment_input_create). The callback answers r; e and errs stay owned by
 * the pool. r->caller holds only tenant_id and role. */
typedef void (*ck_prefill_done)(struct ck_request *r, int rc, struct ck_enrollment *e,
                                struct ck_input_errors *errs);

int ck_prefill_pool_new(struct ck_daemon *d, struct ck_prefill_pool **out, ck_error *err);

/* Copies body and from_host_query (the caller keeps its own) for the thread, and answers r
 * later through done. Returns 0 when started (the request must not be answered
 * now), or -1 with err set: 503 "prefill_busy" at CK_PREFILL_IN_FLIGHT_MAX, 500 otherwise. */
int ck_prefill_start(struct ck_prefill_pool *pool, struct ck_request *r, json_t *body,
                     const char *from_host_query, ck_prefill_done done, ck_error *err);

/* Joins every thread still fetching, drops their results without answering (the caller frees
 * the evhttp server afterwards, which closes the connections), and frees the pool. Call it after
 * the loop stopped and before evhttp_free. NULL is fine. */
void ck_prefill_pool_free(struct ck_prefill_pool *pool);

#endif
