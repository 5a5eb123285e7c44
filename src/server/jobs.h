/* jobs.h — private to src/server: the job runner. N worker threads, each with its own store
 * connection, claim jobs with a lease (kept alive while they run) and run them; they sleep on a
 * condition variable that the API signals when it queues a job, and look again every second at most
 * for jobs queued by another daemon sharing the database.
 *
 * Safety net: the first worker looks for orders stuck without the issue job that must follow
 * their CSR (store.h ck_store_issue_jobs_recover) when it starts and every
 * CK_JOB_RECOVER_SECONDS while idle; in any number of daemons at once, nothing is queued twice. */
#ifndef CK_SERVER_JOBS_H
#define CK_SERVER_JOBS_H

#include "common/error.h"
#include <openssl/x509.h>

#include "crypto/seal.h"

#define CK_JOB_LEASE_SECONDS   300 /* default; a lease keeper renews it every third of it */
#define CK_JOB_LEASE_MIN       6   /* renewed every 2 s at least: well above SQLite's busy wait */
#define CK_JOB_LEASE_MAX       3600
#define CK_WORKERS_MAX         64
#define CK_JOB_RECOVER_SECONDS 60
#define CK_JOB_RECOVER_BATCH   64 /* orders per look; the next look takes the rest */

struct ck_job_runner;

/* Opens one store connection per worker on db_path and starts the threads. The master key is
 * copied. system_roots (the system's trusted roots, parsed once by the daemon; may be NULL: then
 * each issue job reads them) is shared read-only by the workers and must outlive the runner.
 * Jobs are claimed with a lease of lease_seconds (0: CK_JOB_LEASE_SECONDS; else
 * CK_JOB_LEASE_MIN to CK_JOB_LEASE_MAX, 400 "invalid_job_lease") that one more thread, with
 * its own store connection, renews every third of it while the job runs: another worker, of
 * this daemon or another, takes a job over only when its daemon stopped renewing (died, hung,
 * lost the database), and the first one's results are then refused (store.h "lease_lost"). */
int ck_job_runner_start(const char *db_path, const ck_master_key *key,
                        const STACK_OF(X509) * system_roots, int workers, int lease_seconds,
                        struct ck_job_runner **out, ck_error *err);
/* Wakes a sleeping worker: a job was just queued. */
void ck_job_runner_wake(struct ck_job_runner *r);
/* Tells every worker to stop, joins them (a running job finishes first), closes their stores,
 * wipes the key copy and frees everything. NULL is fine. */
void ck_job_runner_stop(struct ck_job_runner *r);

#endif
