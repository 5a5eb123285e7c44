/* webhook_worker.h — private to src/server: the daemon's webhook worker. One thread with its own
 * store connection that, about once a second, turns new events into deliveries (one per active
 * webhook of the event's tenant), claims the due ones with a lease (so several daemons sharing
 * the database never send the same delivery at once), sends each with ck_webhook_deliver and
 * records the outcome. A delivery is retried with backoff until the endpoint answers 2xx.
 *
 * Environment (read at start): CERTKEEP_WEBHOOK_CA_FILE, the CA certificates (PEM) to trust for
 * the receivers instead of the system's; CERTKEEP_WEBHOOK_RETRY_BASE_MS, for tests, the first
 * retry's delay in milliseconds instead of ck_webhook_next_attempt's schedule (doubling, capped at
 * CK_POLICY_RETRY_CAP; no jitter; a whole second at least, the store's time unit). */
#ifndef CK_SERVER_WEBHOOK_WORKER_H
#define CK_SERVER_WEBHOOK_WORKER_H

#include "common/error.h"
#include "crypto/seal.h"

#define CK_WEBHOOK_LEASE_SECONDS 60 /* longer than one attempt's 10 s timeout */

struct ck_webhook_worker;

/* Opens its store connection on db_path and starts the thread. The master key is copied. */
int ck_webhook_worker_start(const char *db_path, const ck_master_key *key,
                            struct ck_webhook_worker **out, ck_error *err);
/* Stops the thread (an attempt under way finishes first), joins it, closes its store, wipes the
 * key copy and frees everything. NULL is fine. */
void ck_webhook_worker_stop(struct ck_webhook_worker *w);

#endif
