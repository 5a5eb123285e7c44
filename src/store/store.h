/* store.h — the only door to storage.
 *
 * One `struct ck_store` is one connection; use one per thread. Several processes may share the
 * same database (SQLite today, PostgreSQL later): nothing here caches rows between calls, every
 * state change is one transaction, and work is claimed with a lease so two daemons never run the
 * same job.
 *
 * Every query that reads or changes a tenant's data takes the tenant id and behaves as if other
 * tenants' rows did not exist (404 "not_found"). Functions return 0 on success and -1 with *err
 * set on failure (status 404 not found, 409 conflict, 500 storage failure); on failure nothing
 * was changed. Output structs are filled only on success and owned by the caller (free them with
 * the model.h _free functions; arrays with the _array_free functions below). */
#ifndef CK_STORE_STORE_H
#define CK_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "core/model.h"

struct ck_store;

/* Opens (creating when missing) the database at path and applies pending migrations, each in its
 * own transaction. SQLite: WAL journal, foreign keys on, busy timeout 5 s. */
int ck_store_open(const char *path, struct ck_store **out, ck_error *err);
void ck_store_close(struct ck_store *st);
/* The schema version after migrations (number of applied migrations). */
int ck_store_schema_version(struct ck_store *st);

/* ---- tenants ---- */
/* 409 "tenant_exists" when the name is taken. */
int ck_store_tenant_create(struct ck_store *st, const char *name, struct ck_tenant *out,
                           ck_error *err);
int ck_store_tenant_get(struct ck_store *st, const char *name, struct ck_tenant *out,
                        ck_error *err);
int ck_store_tenant_list(struct ck_store *st, struct ck_tenant **out, size_t *n, ck_error *err);
void ck_tenant_array_free(struct ck_tenant *a, size_t n);

/* ---- tokens (only SHA-256 hashes of the secrets are stored) ---- */
int ck_store_token_create(struct ck_store *st, int64_t tenant_id, enum ck_role role,
                          const char *name, const uint8_t hash[32], struct ck_token *out,
                          ck_error *err);
/* 401 "invalid_token" when no token has that hash. */
int ck_store_token_lookup(struct ck_store *st, const uint8_t hash[32], struct ck_token *out,
                          ck_error *err);
int ck_store_token_list(struct ck_store *st, int64_t tenant_id, struct ck_token **out, size_t *n,
                        ck_error *err);
int ck_store_token_delete(struct ck_store *st, int64_t tenant_id, int64_t token_id, ck_error *err);
void ck_token_array_free(struct ck_token *a, size_t n);

/* ---- enrollments ---- */
/* Inserts e (tenant_id, name and every field set by the caller); fills e->id, created_at and
 * updated_at. 409 "enrollment_exists" when the tenant already has that name. */
int ck_store_enrollment_create(struct ck_store *st, struct ck_enrollment *e, ck_error *err);
int ck_store_enrollment_get(struct ck_store *st, int64_t tenant_id, const char *name,
                            struct ck_enrollment *out, ck_error *err);
int ck_store_enrollment_list(struct ck_store *st, int64_t tenant_id, struct ck_enrollment **out,
                             size_t *n, ck_error *err);

/* One page of a long list, found by its keyset (no OFFSET: each page costs the same however far
 * into the list it is). Enrollments come by name, orders and jobs newest (highest id) first. */
struct ck_page {
    size_t limit;           /* rows at most; 0 = every row */
    const char *after_name; /* enrollments: only names after this one; NULL = from the first */
    int64_t before_id;      /* orders and jobs: only ids below this one; 0 = from the newest */
    bool more;              /* out: more rows follow the page's last one */
};
int ck_store_enrollment_list_page(struct ck_store *st, int64_t tenant_id, struct ck_page *page,
                                  struct ck_enrollment **out, size_t *n, ck_error *err);
/* Replaces every field a user can change (cn, sans, subject, key_type, validation, issuer,
 * contacts, policy, challenge, dns) of the enrollment e->id of e->tenant_id; sets
 * e->updated_at. */
int ck_store_enrollment_update(struct ck_store *st, struct ck_enrollment *e, ck_error *err);
/* Deletes the enrollment with its orders, jobs and artifacts. 409 "order_open" while one of its
 * orders is open. */
int ck_store_enrollment_delete(struct ck_store *st, int64_t tenant_id, const char *name,
                               ck_error *err);
void ck_enrollment_array_free(struct ck_enrollment *a, size_t n);

/* ---- orders ---- */
/* Creates an order in state "new" for the enrollment, with the key type it has now, and queues
 * its "csr" job, in one transaction. 409 "order_open" (message naming the open order's id and
 * state) when the enrollment already has an open order. */
int ck_store_order_create(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                          int64_t *order_id, int64_t *job_id, ck_error *err);
int ck_store_order_get(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                       struct ck_order *out, ck_error *err);

struct ck_order_filter {
    const char *enrollment; /* name, or NULL for all */
    int state;              /* an enum ck_order_state, or -1 for all */
};
int ck_store_order_list(struct ck_store *st, int64_t tenant_id, const struct ck_order_filter *f,
                        struct ck_order **out, size_t *n, ck_error *err);
int ck_store_order_list_page(struct ck_store *st, int64_t tenant_id,
                             const struct ck_order_filter *f, struct ck_page *page,
                             struct ck_order **out, size_t *n, ck_error *err);
void ck_order_array_free(struct ck_order *a, size_t n);

/* Moves an open order to "cancelled" (and fails its queued or running jobs with "order
 * cancelled"). 409 "order_closed" when it is not open. */
int ck_store_order_cancel(struct ck_store *st, int64_t tenant_id, int64_t order_id, ck_error *err);

/* The csr job's commit, in one transaction: the order goes from "new" to "csr_ready" with its
 * sealed key and CSR, the CSR is stored as the job's artifact "csr" (application/pkcs10), and
 * the job is finished, and `event` (may be NULL) is added. 409 "order_not_new" (nothing
 * changed) when the order left "new"
 * meanwhile, e.g. was cancelled. */
int ck_store_order_csr_ready(struct ck_store *st, int64_t order_id, int64_t job_id,
                             const uint8_t *sealed_key, size_t sealed_key_len, const char *csr_pem,
                             const struct ck_event_new *event, ck_error *err);

/* Moves an open order to "failed" with the reason. */
int ck_store_order_fail(struct ck_store *st, int64_t order_id, const char *reason, ck_error *err);

/* ---- orders: certificates (issue 3) ---- */
/* Starts an order from a CSR the user uploaded (already checked by the caller): the order is
 * created directly in "csr_ready" with csr_uploaded set and no key, together with a finished
 * "csr" job holding the CSR as its artifact "csr" and the log line "CSR uploaded", and the
 * optional event, in one transaction. 409 "order_open" as ck_store_order_create. */
int ck_store_order_create_from_csr(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                                   enum ck_key_type key_type, const char *csr_pem,
                                   const struct ck_event_new *event, int64_t *order_id,
                                   int64_t *job_id, ck_error *err);

/* What a state change writes on the order besides its state; NULL/0 fields are left as they
 * are. */
struct ck_order_update {
    const char *cert_pem;
    const char *chain_pem;
    const char *findings_json;
    int64_t cert_not_after;
};

/* Moves order order_id of tenant_id from state `from` to state `to`, writing `update` (may be
 * NULL) and adding `event` (may be NULL), in one transaction. 409 "order_state_changed" (nothing
 * written) when the order is not in `from` any more — another request or daemon moved it. */
int ck_store_order_transition(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                              enum ck_order_state from, enum ck_order_state to,
                              const struct ck_order_update *update,
                              const struct ck_event_new *event, ck_error *err);

/* Records one import attempt as a finished (accepted) or failed (refused) "import" job of the
 * order, with one log line per finding (level "error" or "warn") and a last summary line, in one
 * transaction; refused imports change nothing else. */
int ck_store_import_job_record(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                               bool accepted, const char *const *levels, const char *const *lines,
                               size_t n_lines, const char *summary, int64_t *job_id, ck_error *err);

/* ---- staging and production (issue 4) ---- */
/* Every state change below is one transaction that also bumps the edge generation (see
 * ck_store_edge_generation), adds `event` when not NULL, and answers 409
 * "order_state_changed" (nothing written) when the order is not in the state it starts from. */

/* issued → staged: the enrollment's staging_order_id becomes the order; staged_at is set. */
int ck_store_order_stage(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                         const struct ck_event_new *event, ck_error *err);
/* Records the user's staging acknowledgement (staged orders only; acknowledging again keeps
 * the first time). */
int ck_store_order_ack_staging(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                               ck_error *err);
/* Sets (or clears with 0) the not-before date of an open order. */
int ck_store_order_set_not_before(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                                  int64_t not_before, ck_error *err);
/* staged → deployed: the enrollment's production_order_id becomes the order, deployed_at is
 * set, and the order deployed before it (if any) becomes "superseded". The caller has checked
 * the acknowledgement and not-before rules. */
int ck_store_order_deploy(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                          const struct ck_event_new *event, ck_error *err);
/* Puts the enrollment's previous production order back: the newest superseded order whose
 * certificate is still valid at `now` becomes "deployed" and production_order_id again; the
 * current one becomes "superseded". 409 "nothing_to_roll_back" when there is none. Fills
 * *order_id with the order now in production. */
int ck_store_enrollment_rollback(struct ck_store *st, int64_t tenant_id, const char *enrollment,
                                 int64_t now, const struct ck_event_new *event, int64_t *order_id,
                                 ck_error *err);

/* A number that changes whenever what the edge serves may have changed (in any process sharing
 * the database): the edge rebuilds its table when it differs from the one it built from. */
int ck_store_edge_generation(struct ck_store *st, int64_t *generation, ck_error *err);
/* Every certificate the edge serves in that environment: for each enrollment of every tenant,
 * its staging order (staging) or production order (production) when that order has a
 * certificate and a sealed key. Each is handed to visit (valid during the call only) as it is
 * read, not all held at once: 100,000 certificates in PEM are 150 MB the edge reads once. visit
 * returns 0 to go on, or -1 with err set to stop, and then this fails with that error. Also
 * returns the generation the entries were read at (same read transaction). */
typedef int (*ck_edge_entry_visit)(const struct ck_edge_entry *entry, void *arg, ck_error *err);
int ck_store_edge_each(struct ck_store *st, enum ck_environment env, ck_edge_entry_visit visit,
                       void *arg, int64_t *generation, ck_error *err);

/* Queues a job of any type for an order (e.g. stage, staging_test, deploy, probe), with a JSON
 * object of parameters the job reads (or NULL). */
int ck_store_job_enqueue(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                         enum ck_job_type type, const char *params_json, int64_t *job_id,
                         ck_error *err);

/* ---- a state change and what must follow it, in one transaction ----
 * Every process may be killed at any moment: a state change and the job(s) or event that must
 * follow it are written together or not at all (docs/DESIGN.md, "What is atomic"). */

/* A job to queue for an order together with the change it follows. */
struct ck_job_new {
    enum ck_job_type type;
    const char *params_json; /* a JSON object the job reads, or NULL */
};

/* ck_store_order_csr_ready, also queueing `next` (may be NULL: a manual issuer's order waits
 * for an import) for the order: an automatic issuer's issue job. With worker not NULL, only
 * while that worker holds the csr job's lease (409 "lease_lost", see ck_store_job_finish). */
int ck_store_order_csr_ready_then(struct ck_store *st, int64_t order_id, int64_t job_id,
                                  const char *worker, const uint8_t *sealed_key,
                                  size_t sealed_key_len, const char *csr_pem,
                                  const struct ck_event_new *event, const struct ck_job_new *next,
                                  ck_error *err);
/* ck_store_order_stage, ck_store_order_deploy and ck_store_enrollment_rollback, also queueing
 * the n jobs (stage, staging_test; probe, deploy) for the order they put on staging or in
 * production. */
int ck_store_order_stage_then(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                              const struct ck_event_new *event, const struct ck_job_new *jobs,
                              size_t n_jobs, ck_error *err);
int ck_store_order_deploy_then(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                               const struct ck_event_new *event, const struct ck_job_new *jobs,
                               size_t n_jobs, ck_error *err);
int ck_store_enrollment_rollback_then(struct ck_store *st, int64_t tenant_id,
                                      const char *enrollment, int64_t now,
                                      const struct ck_event_new *event,
                                      const struct ck_job_new *jobs, size_t n_jobs,
                                      int64_t *order_id, ck_error *err);
/* ck_store_order_create, also adding `event` (may be NULL; about the new order), e.g. the
 * scheduler's "renewal_started". */
int ck_store_order_create_event(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                                const struct ck_event_new *event, int64_t *order_id,
                                int64_t *job_id, ck_error *err);
/* Adds ev (about ev->order_id, which must be set) unless that order already has an event of
 * that type, check and write in one transaction: two daemons cannot both add it. *added (may be
 * NULL) tells whether it was added. */
int ck_store_event_add_once(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *ev,
                            bool *added, ck_error *err);

/* A certificate import's log: one line per finding (level "error" or "warn") and a summary. */
struct ck_import_log {
    const char *const *levels;
    const char *const *lines;
    size_t n_lines;
    const char *summary; /* NULL: "certificate accepted" */
};
/* An accepted import: the order moves from `from` to `to` with update and event as
 * ck_store_order_transition does, and the finished "import" job with its log is recorded, in one
 * transaction; 409 "order_state_changed" (nothing written) when the order left `from`. */
int ck_store_import_accept(struct ck_store *st, int64_t tenant_id, int64_t order_id,
                           const struct ck_import_log *log, enum ck_order_state from,
                           enum ck_order_state to, const struct ck_order_update *update,
                           const struct ck_event_new *event, int64_t *job_id, ck_error *err);

/* How a job ends and what its end writes with it. */
struct ck_job_end {
    const char *worker;               /* not NULL: the lease holder (see ck_store_job_finish) */
    enum ck_job_state state;          /* finished or failed */
    const char *error;                /* failed: why */
    const char *fail_order;           /* not NULL: the job's order fails with this reason (an
                                       * order no longer open is left as it is) */
    const struct ck_event_new *event; /* NULL, or an event about the job's order */
    const struct ck_job_new *next;    /* NULL, or the job that goes on with the order */
};
/* Ends the job as ck_store_job_finish does (409 "job_closed" when it already ended) with
 * everything `end` asks, in one transaction. */
int ck_store_job_end(struct ck_store *st, int64_t job_id, const struct ck_job_end *end,
                     ck_error *err);

/* The safety net behind ck_store_order_csr_ready_then: queues the issue job of at most `limit`
 * orders (any tenant) that are csr_ready from their own csr job (not an uploaded CSR), whose
 * enrollment's issuer is not manual, that never had an issue job nor asked a person for a
 * certificate ("certificate_needed"). One transaction; running it again, or in several daemons
 * at once, queues nothing twice. *queued (may be NULL) gets how many jobs were queued. */
int ck_store_issue_jobs_recover(struct ck_store *st, size_t limit, int *queued, ck_error *err);

/* ---- file targets (issue 4) ---- */
int ck_store_target_add(struct ck_store *st, struct ck_target *t, ck_error *err); /* fills id */
int ck_store_target_list(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                         struct ck_target **out, size_t *n, ck_error *err);
int ck_store_target_delete(struct ck_store *st, int64_t tenant_id, int64_t target_id,
                           ck_error *err);
void ck_target_array_free(struct ck_target *a, size_t n);

/* ---- issuers, DNS providers, local CAs, ACME state (issue 5) ---- */
/* Names are unique per tenant: 409 "issuer_exists" / "dns_exists". Create fills id and
 * created_at and ignores the sealed_* fields it is given: a secret's AAD names the row's id
 * (model.h), which exists only inside the transaction, so the store calls back
 * seal(seal_ctx, id, what, &sealed, &len, err) there — what = "eab" (issuer), "tsig" (DNS
 * provider), "key" (local CA) — and writes the result. The callback returns 0 with *sealed NULL
 * when there is nothing to seal (seal itself may be NULL); *sealed must come from malloc (the
 * store frees it). A failing callback rolls everything back. */
typedef int (*ck_store_seal_fn)(void *ctx, int64_t id, const char *what, uint8_t **sealed,
                                size_t *sealed_len, ck_error *err);
int ck_store_issuer_create(struct ck_store *st, struct ck_issuer *issuer, ck_store_seal_fn seal,
                           void *seal_ctx, ck_error *err);
int ck_store_issuer_get(struct ck_store *st, int64_t tenant_id, const char *name,
                        struct ck_issuer *out, ck_error *err);
int ck_store_issuer_list(struct ck_store *st, int64_t tenant_id, struct ck_issuer **out, size_t *n,
                         ck_error *err);
/* 409 "issuer_in_use" while an enrollment names it. */
int ck_store_issuer_delete(struct ck_store *st, int64_t tenant_id, const char *name, ck_error *err);
/* Records the ACME account (URL and sealed key) once registered. The first account recorded
 * stays: 409 "account_exists" (nothing written) when the issuer already has one (another job
 * registered one at the same time; use that one). */
int ck_store_issuer_set_account(struct ck_store *st, int64_t tenant_id, int64_t issuer_id,
                                const char *account_url, const uint8_t *sealed_key,
                                size_t sealed_key_len, ck_error *err);
void ck_issuer_array_free(struct ck_issuer *a, size_t n);

int ck_store_dns_create(struct ck_store *st, struct ck_dns_provider *dns, ck_store_seal_fn seal,
                        void *seal_ctx, ck_error *err);
int ck_store_dns_get(struct ck_store *st, int64_t tenant_id, const char *name,
                     struct ck_dns_provider *out, ck_error *err);
int ck_store_dns_list(struct ck_store *st, int64_t tenant_id, struct ck_dns_provider **out,
                      size_t *n, ck_error *err);
/* 409 "dns_in_use" while an enrollment names it. */
int ck_store_dns_delete(struct ck_store *st, int64_t tenant_id, const char *name, ck_error *err);
void ck_dns_provider_array_free(struct ck_dns_provider *a, size_t n);

/* Creates the tenant's local CA (tenant_id 0: the shared one); the store calls seal(ctx, id,
 * "key", ...) for the key inside the transaction. 409 "ca_exists". */
int ck_store_local_ca_create(struct ck_store *st, int64_t tenant_id, const char *cert_pem,
                             ck_store_seal_fn seal, void *seal_ctx, struct ck_local_ca_record *out,
                             ck_error *err);
/* The tenant's own CA, else the shared one; 404 "no_local_ca" when neither exists. */
int ck_store_local_ca_get(struct ck_store *st, int64_t tenant_id, struct ck_local_ca_record *out,
                          ck_error *err);

/* Stores the ACME client's state for an order (after every step, so a restart resumes). */
int ck_store_order_set_acme_state(struct ck_store *st, int64_t order_id, const char *state_json,
                                  ck_error *err);

/* http-01: the key authorization the edge's HTTP listener answers for a token (any tenant: the
 * token is unguessable). Put replaces; get is 404 for an unknown or expired token. */
int ck_store_http01_put(struct ck_store *st, const char *token, const char *key_authorization,
                        int64_t order_id, int64_t expires_at, ck_error *err);
int ck_store_http01_get(struct ck_store *st, const char *token, int64_t now,
                        char **key_authorization, ck_error *err);
int ck_store_http01_delete_order(struct ck_store *st, int64_t order_id, ck_error *err);

/* ---- webhooks (issue 6) ---- */
/* Creates a webhook (tenant_id and url set by the caller; fills id, created_at, active and
 * last_event_id = the tenant's newest event, so it receives what happens from now on). The
 * store calls seal(seal_ctx, id, "secret", ...) inside the transaction for the sealed secret. */
int ck_store_webhook_create(struct ck_store *st, struct ck_webhook *w, ck_store_seal_fn seal,
                            void *seal_ctx, ck_error *err);
int ck_store_webhook_get(struct ck_store *st, int64_t tenant_id, int64_t webhook_id,
                         struct ck_webhook *out, ck_error *err);
int ck_store_webhook_list(struct ck_store *st, int64_t tenant_id, struct ck_webhook **out,
                          size_t *n, ck_error *err);
/* Deletes the webhook and its delivery log. */
int ck_store_webhook_delete(struct ck_store *st, int64_t tenant_id, int64_t webhook_id,
                            ck_error *err);
/* The webhook's deliveries, newest first, at most limit. 404 for another tenant's webhook. */
int ck_store_webhook_deliveries(struct ck_store *st, int64_t tenant_id, int64_t webhook_id,
                                size_t limit, struct ck_webhook_delivery **out, size_t *n,
                                ck_error *err);
void ck_webhook_free(struct ck_webhook *w);
void ck_webhook_array_free(struct ck_webhook *a, size_t n);
void ck_webhook_delivery_array_free(struct ck_webhook_delivery *a, size_t n);
const char *ck_delivery_state_name(enum ck_delivery_state s); /* "pending", "delivered" */

/* The worker's side, across tenants. Fan-out: one transaction that adds a pending delivery
 * (due at now) for every event after each active webhook's cursor, of the webhook's tenant, and
 * moves the cursors; running it again, or in several daemons at once, adds nothing twice.
 * *added (may be NULL) gets how many deliveries were added. */
int ck_store_webhook_fan_out(struct ck_store *st, int64_t now, int64_t *added, ck_error *err);

/* A claimed delivery with what sending it needs. Free with ck_webhook_claim_free. */
struct ck_webhook_claim {
    struct ck_webhook_delivery delivery;
    struct ck_webhook webhook;
    struct ck_event event;
};
void ck_webhook_claim_free(struct ck_webhook_claim *c);
/* Claims the pending delivery that is due first (next_attempt_at <= now) and not leased by
 * anyone (or whose lease ran out: its daemon died), leasing it to `worker` until
 * now + lease_seconds. Returns 1 with *out, 0 when nothing is due, -1 on error. */
int ck_store_webhook_claim(struct ck_store *st, const char *worker, int64_t now,
                           int64_t lease_seconds, struct ck_webhook_claim *out, ck_error *err);
/* Records one attempt of a delivery `worker` holds and releases the lease: acknowledged →
 * delivered at now; otherwise attempts + 1 and due again at next_attempt_at. status is the HTTP
 * status (0 = no answer), error NULL when acknowledged. 409 "lease_lost" (nothing written) when
 * the worker does not hold the lease any more. */
int ck_store_webhook_record(struct ck_store *st, int64_t delivery_id, const char *worker,
                            bool acknowledged, long status, const char *error, int64_t now,
                            int64_t next_attempt_at, ck_error *err);

/* ---- scheduler (issue 6) ---- */
/* What the daemon's scheduler needs about one enrollment of any tenant, read in one statement. */
struct ck_sched_row {
    int64_t tenant_id;
    int64_t enrollment_id;
    char *name;
    char *issuer; /* "manual" or an issuer's name */
    enum ck_validation validation;
    struct ck_policy policy;
    int64_t production_order_id; /* 0 = none */
    char *production_cert_pem;   /* its certificate (for not_before), NULL when none */
    int64_t production_not_after;
    int64_t open_order_id; /* 0 = none */
    enum ck_order_state open_state;
    int64_t open_staging_acked_at;  /* 0 = not acknowledged */
    int64_t open_deploy_not_before; /* 0 = none */
    /* Failed orders since the newest order that neither failed nor was cancelled, and the
     * newest of them (its id and when it failed); 0 when there is none. */
    int failures;
    int64_t last_failed_order_id;
    int64_t last_failure_at;
    /* ACME Renewal Information of the production certificate (ck_store_ari_*). */
    bool acme_issuer;         /* the enrollment's issuer is an ACME CA */
    bool ari_has_window;      /* its CA suggested a window: */
    int64_t ari_window_start; /* epoch seconds */
    int64_t ari_window_end;
    int64_t ari_next_check_at; /* when to ask again; 0 = never asked */
};
void ck_sched_row_array_free(struct ck_sched_row *a, size_t n);
/* At most `limit` enrollments of every tenant with id > after_id, by id: page through them by
 * passing the last id seen. */
int ck_store_sched_page(struct ck_store *st, int64_t after_id, size_t limit,
                        struct ck_sched_row **out, size_t *n, ck_error *err);
/* How many orders of automatic issuers are being worked on (new, csr_ready,
 * pending_validation, checking) across every tenant: the scheduler's concurrency. */
int ck_store_sched_orders_in_flight(struct ck_store *st, int64_t *count, ck_error *err);

/* ---- ACME Renewal Information (RFC 9773), per production certificate (its order) ---- */
struct ck_ari_status {
    int64_t order_id;
    char *cert_id; /* the certificate's RFC 9773 certID, NULL when it has none */
    bool offered;  /* the CA's directory offers renewalInfo */
    bool has_window;
    int64_t window_start, window_end;
    char *explanation_url; /* NULL when the CA gave none */
    char *last_error;      /* why the last check failed; NULL when it was answered */
    int64_t checked_at;    /* the last check, answered or not; 0 = never */
    int64_t next_check_at; /* when to ask again */
};
void ck_ari_status_free(struct ck_ari_status *a);
/* Claims the order's check when it is due (never asked, or next_check_at <= now) and no other
 * daemon holds it, by holding it until lease_until: 1 claimed, 0 not due or held, -1 error. */
int ck_store_ari_claim(struct ck_store *st, int64_t order_id, int64_t now, int64_t lease_until,
                       ck_error *err);
/* Stores a check's result and releases the claim. With has_window false, a window stored
 * earlier is kept when the CA still offers renewalInfo (the check failed) and cleared when it
 * does not. */
int ck_store_ari_save(struct ck_store *st, const struct ck_ari_status *a, ck_error *err);
/* 1 with *out filled, 0 when the order was never checked, -1 on error. */
int ck_store_ari_get(struct ck_store *st, int64_t order_id, struct ck_ari_status *out,
                     ck_error *err);

/* ---- events ---- */
int ck_store_event_add(struct ck_store *st, int64_t tenant_id, const struct ck_event_new *ev,
                       int64_t *event_id, ck_error *err);
/* The oldest unconfirmed event: returns 1 with *out and *remaining (how many other unconfirmed
 * events there are), 0 when there is none, -1 on error. */
int ck_store_event_poll(struct ck_store *st, int64_t tenant_id, struct ck_event *out,
                        int64_t *remaining, ck_error *err);
/* Confirms an event (confirming it again is fine). 404 for an unknown or another tenant's. */
int ck_store_event_confirm(struct ck_store *st, int64_t tenant_id, int64_t event_id, ck_error *err);
/* Every event, newest first (confirmed ones too: they are the history), at most limit. */
int ck_store_event_list(struct ck_store *st, int64_t tenant_id, int64_t order_id, size_t limit,
                        struct ck_event **out, size_t *n, ck_error *err);
void ck_event_array_free(struct ck_event *a, size_t n);

/* ---- trusted roots (per tenant, for private CAs) ---- */
/* 409 "root_exists" when the tenant already has a root with that fingerprint. */
int ck_store_root_add(struct ck_store *st, int64_t tenant_id, struct ck_root *root,
                      ck_error *err); /* fills root->id and created_at */
int ck_store_root_list(struct ck_store *st, int64_t tenant_id, struct ck_root **out, size_t *n,
                       ck_error *err);
int ck_store_root_delete(struct ck_store *st, int64_t tenant_id, int64_t root_id, ck_error *err);
void ck_root_array_free(struct ck_root *a, size_t n);

/* ---- jobs ---- */
/* Claims the oldest runnable job: queued, or running with an expired lease (its daemon died).
 * Sets it running with started_at and a lease of lease_seconds held by `worker`.
 * Returns 1 with *out filled, 0 when there is nothing to do, -1 on error. */
int ck_store_job_claim(struct ck_store *st, const char *worker, int64_t lease_seconds,
                       struct ck_job *out, ck_error *err);
/* Puts back in the queue the running jobs whose worker ran on this host (worker ids
 * "HOST:PID:N") in a process that no longer exists: a daemon restarted after a crash resumes them
 * at once instead of waiting for their leases. Jobs of live processes and of other hosts are left
 * alone (their leases protect them). pid_alive(pid) tells whether a process exists. */
int ck_store_job_requeue_dead(struct ck_store *st, const char *host, bool (*pid_alive)(long pid),
                              int *requeued, ck_error *err);
/* Extends the lease `worker` holds on a running job to now + lease_seconds: a job that runs
 * longer than a lease must keep renewing it, or another worker takes it over (and this one's
 * end is refused). 409 "lease_lost" (nothing written) when the job ended or another worker
 * holds it. */
int ck_store_job_renew(struct ck_store *st, int64_t job_id, const char *worker,
                       int64_t lease_seconds, ck_error *err);
/* Appends a log line (level "info" | "warn" | "error") to a job. */
int ck_store_job_log(struct ck_store *st, int64_t job_id, const char *level, const char *message,
                     ck_error *err);
/* Ends a job: state finished or failed, with error text for failed. With worker not NULL, only
 * while that worker holds the job's lease: 409 "lease_lost" otherwise (another worker took the
 * job over after the lease ran out; it ends the job, not this one). NULL is for ends decided
 * outside a job runner. */
int ck_store_job_finish(struct ck_store *st, int64_t job_id, const char *worker,
                        enum ck_job_state state, const char *error, ck_error *err);
int ck_store_job_get(struct ck_store *st, int64_t tenant_id, int64_t job_id, struct ck_job *out,
                     ck_error *err);

struct ck_job_filter {
    int state;              /* an enum ck_job_state, or -1 */
    int type;               /* an enum ck_job_type, or -1 */
    const char *enrollment; /* name, or NULL */
    int64_t order_id;       /* 0 = all */
};
int ck_store_job_list(struct ck_store *st, int64_t tenant_id, const struct ck_job_filter *f,
                      struct ck_job **out, size_t *n, ck_error *err);
int ck_store_job_list_page(struct ck_store *st, int64_t tenant_id, const struct ck_job_filter *f,
                           struct ck_page *page, struct ck_job **out, size_t *n, ck_error *err);
void ck_job_array_free(struct ck_job *a, size_t n);

int ck_store_job_log_lines(struct ck_store *st, int64_t tenant_id, int64_t job_id,
                           struct ck_job_log_line **out, size_t *n, ck_error *err);
/* 404 when the job or the artifact does not exist for that tenant. Caller frees both outputs. */
int ck_store_job_artifact_get(struct ck_store *st, int64_t tenant_id, int64_t job_id,
                              const char *name, char **content_type, uint8_t **data, size_t *len,
                              ck_error *err);

/* ---- expiry monitoring (issue 6) ---- */
/* One enrollment as the daemon's monitor (server/monitor.h) sees it. */
struct ck_watch_row {
    int64_t tenant_id;
    int64_t enrollment_id;
    char *name;
    ck_strv sans;  /* its names: the production listener is probed with each */
    ck_strv watch; /* its own endpoints, "HOST:PORT[/SNI]" */
    char *renew_before;
    enum ck_validation validation;
    int64_t production_order_id; /* 0 = nothing deployed: nothing to compare with */
    char *production_cert_pem;
    int64_t production_deployed_at;
};
void ck_watch_row_array_free(struct ck_watch_row *a, size_t n);
/* At most `limit` enrollments of every tenant with id > after_id that have a production order,
 * by id (page through them like ck_store_sched_page). */
int ck_store_watch_page(struct ck_store *st, int64_t after_id, size_t limit,
                        struct ck_watch_row **out, size_t *n, ck_error *err);
/* Leases an endpoint's probe to `holder` until now + lease_seconds when its last probe is older
 * than now - interval and nobody else holds it; creates its row the first time. Returns 1 with
 * *status_before (at least 16 bytes: "none", "ok", "mismatch", ...), 0 when it is not due or
 * another daemon has it, -1 on error. */
int ck_store_watch_claim(struct ck_store *st, int64_t enrollment_id, const char *endpoint,
                         const char *holder, int64_t now, int64_t interval, int64_t lease_seconds,
                         char *status_before, size_t status_len, ck_error *err);
/* What one probe found. */
struct ck_watch_result {
    const char *status;        /* "ok", "expiring", "mismatch", "unreachable" */
    const char *detail;        /* a sentence for a person, or NULL */
    const char *served_serial; /* hex, NULL when unreachable */
    int64_t served_not_after;  /* 0 when unreachable */
};
/* Records a probe `holder` leased and releases the lease, adding event (may be NULL) in the
 * same transaction. 409 "lease_lost" (nothing written) when holder does not hold it any more. */
int ck_store_watch_record(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                          const char *endpoint, const char *holder, int64_t now,
                          const struct ck_watch_result *res, const struct ck_event_new *event,
                          ck_error *err);
/* Forgets the statuses of the enrollment's endpoints that are not in keep. */
int ck_store_watch_prune(struct ck_store *st, int64_t enrollment_id, const ck_strv *keep,
                         ck_error *err);
/* The last probe of one endpoint. */
struct ck_watch_state {
    char *endpoint;
    char *status; /* "none" until the first probe */
    char *detail;
    char *served_serial;
    int64_t served_not_after;
    int64_t checked_at, changed_at; /* 0 = never */
};
void ck_watch_state_array_free(struct ck_watch_state *a, size_t n);
/* Every stored status of one of the tenant's enrollments, by endpoint. */
int ck_store_watch_list(struct ck_store *st, int64_t tenant_id, int64_t enrollment_id,
                        struct ck_watch_state **out, size_t *n, ck_error *err);

/* ---- metrics and health (issue 6) ---- */
/* One labelled number: tenant (NULL when not per tenant) and key (a state, a type; or NULL). */
struct ck_metric_count {
    char *tenant;
    char *key;
    int64_t value;
};
struct ck_store_metrics {
    struct ck_metric_count *expiries; /* key: the enrollment; value: production notAfter */
    size_t n_expiries;
    struct ck_metric_count *orders; /* key: the state; value: how many orders */
    size_t n_orders;
    struct ck_metric_count *job_failures; /* key: the job type; tenant NULL */
    size_t n_job_failures;
    struct ck_metric_count *webhook_failures; /* delivery attempts not acknowledged; key NULL */
    size_t n_webhook_failures;
    struct ck_metric_count *watch; /* key: the status; value: how many endpoints */
    size_t n_watch;
};
/* Everything GET /metrics shows from the database, in a few queries: one tenant's, or every
 * tenant's when tenant_id is 0. */
int ck_store_metrics_read(struct ck_store *st, int64_t tenant_id, struct ck_store_metrics *out,
                          ck_error *err);
void ck_store_metrics_free(struct ck_store_metrics *m);
/* A trivial query: whether the database answers (GET /healthz). */
int ck_store_ping(struct ck_store *st, ck_error *err);

#endif
