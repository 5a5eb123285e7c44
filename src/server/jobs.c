#include "server/jobs.h"

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "core/csr_job.h"
#include "core/edge_jobs.h"
#include "core/issue_job.h"
#include "store/store.h"

#define RUNNER_MAGIC      0x636b6a72u /* "ckjr" */
#define WORKER_MAGIC      0x636b776bu /* "ckwk" */
#define IDLE_WAIT_SECONDS 1           /* jobs queued by another daemon are seen within this */

struct worker {
    uint32_t magic;
    struct ck_job_runner *runner;
    struct ck_store *store;
    pthread_t thread;
    bool started;
    bool recovers;        /* the first worker: runs the safety net */
    time_t next_recovery; /* CLOCK_MONOTONIC seconds */
    char id[300];         /* "hostname:pid:n", the lease holder */
    int64_t running_job;  /* under the runner's lock: the job it runs, 0 when idle */
};

struct ck_job_runner {
    uint32_t magic;
    ck_master_key key;
    const STACK_OF(X509) * system_roots; /* the daemon's, read-only */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;    /* under lock */
    uint64_t wakeups; /* under lock: how many times a job was announced */
    size_t n_workers;
    struct worker *workers;
    int lease_seconds;
    /* The lease keeper: renews the leases of running jobs every lease_seconds / 3, so a job that
     * runs longer than a lease (a slow reload command, an ACME order waiting for DNS) is not
     * taken over by another worker while its daemon lives. */
    struct ck_store *keeper_store;
    pthread_t keeper;
    bool keeper_started;
    bool keeper_stopping;       /* under lock; set once every worker has stopped */
    pthread_cond_t keeper_wake; /* signalled on stop */
};

static uint64_t announced(struct ck_job_runner *r, bool *stopping)
{
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->wakeups;
    *stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Sleeps until a job is announced after `seen`, the runner stops, or a second passes. */
static void wait_for_work(struct ck_job_runner *r, uint64_t seen)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += IDLE_WAIT_SECONDS;
    pthread_mutex_lock(&r->lock);
    if (!r->stopping && r->wakeups == seen)
        pthread_cond_timedwait(&r->wake, &r->lock, &deadline);
    pthread_mutex_unlock(&r->lock);
}

static void run_job(struct worker *w, const struct ck_job *job)
{
    ck_log(CK_LOG_INFO, "worker %s: running job %lld (%s)", w->id, (long long)job->id,
           ck_job_type_name(job->type));
    if (job->type == CK_JOB_CSR) {
        ck_csr_job_run(w->store, &w->runner->key, job);
        return;
    }
    if (ck_edge_job_handles(job->type)) {
        ck_edge_job_run(w->store, &w->runner->key, job);
        return;
    }
    if (job->type == CK_JOB_ISSUE) {
        ck_issue_job_run(w->store, &w->runner->key, w->runner->system_roots, job);
        return;
    }
    ck_error err;
    if (ck_store_job_finish(w->store, job->id, job->worker, CK_JOB_FAILED,
                            "this daemon cannot run this job type", &err) != 0)
        ck_log(CK_LOG_ERROR, "job %lld: %s", (long long)job->id, err.message);
}

static time_t monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec;
}

/* Queues the issue jobs a crash (or an older version) left out; true when it queued any. */
static bool recover_missing_jobs(struct worker *w)
{
    ck_error err = {0};
    int queued = 0;
    if (!w->recovers || monotonic_seconds() < w->next_recovery)
        return false;
    w->next_recovery = monotonic_seconds() + CK_JOB_RECOVER_SECONDS;
    if (ck_store_issue_jobs_recover(w->store, CK_JOB_RECOVER_BATCH, &queued, &err) != 0) {
        ck_log(CK_LOG_WARN, "worker %s: could not look for missing issue jobs: %s", w->id,
               err.message);
        return false;
    }
    if (queued > 0)
        ck_log(CK_LOG_WARN, "worker %s: queued the missing issue job of %d order(s) left csr_ready",
               w->id, queued);
    return queued > 0;
}

static void set_running_job(struct worker *w, int64_t job_id)
{
    pthread_mutex_lock(&w->runner->lock);
    w->running_job = job_id;
    pthread_mutex_unlock(&w->runner->lock);
}

/* Renews the lease of every job a worker is running. A renewal that fails is only logged: the
 * job's end will then be refused (lease_lost) and the worker that took it over ends it. */
static void renew_running_leases(struct ck_job_runner *r)
{
    for (size_t i = 0; i < r->n_workers; i++) {
        pthread_mutex_lock(&r->lock);
        int64_t job_id = r->workers[i].running_job;
        pthread_mutex_unlock(&r->lock);
        ck_error err = {0};
        if (job_id == 0 || ck_store_job_renew(r->keeper_store, job_id, r->workers[i].id,
                                              r->lease_seconds, &err) == 0)
            continue;
        /* A job that ended since it was read is no longer this worker's to renew. */
        pthread_mutex_lock(&r->lock);
        bool still_running = r->workers[i].running_job == job_id;
        pthread_mutex_unlock(&r->lock);
        if (still_running)
            ck_log(CK_LOG_WARN, "worker %s: could not renew the lease of job %lld: %s",
                   r->workers[i].id, (long long)job_id, err.message);
    }
}

static void *keeper_main(void *arg)
{
    struct ck_job_runner *r = arg;
    int period = r->lease_seconds / 3 > 0 ? r->lease_seconds / 3 : 1;
    for (;;) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += period;
        pthread_mutex_lock(&r->lock);
        int waited = 0;
        while (!r->keeper_stopping && waited != ETIMEDOUT) /* a spurious wake-up waits again */
            waited = pthread_cond_timedwait(&r->keeper_wake, &r->lock, &deadline);
        bool stopping = r->keeper_stopping;
        pthread_mutex_unlock(&r->lock);
        if (stopping)
            return NULL;
        renew_running_leases(r);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w == NULL || w->magic != WORKER_MAGIC)
        abort(); /* a wrong context: stop before using it */
    struct ck_job_runner *r = w->runner;
    bool stopping = false;
    for (uint64_t seen = announced(r, &stopping); !stopping; seen = announced(r, &stopping)) {
        struct ck_job job = {0};
        ck_error err;
        int got = ck_store_job_claim(w->store, w->id, r->lease_seconds, &job, &err);
        if (got == 1) {
            set_running_job(w, job.id);
            run_job(w, &job);
            set_running_job(w, 0);
            ck_job_free(&job);
            continue;
        }
        if (got < 0)
            ck_log(CK_LOG_ERROR, "worker %s: could not claim a job: %s", w->id, err.message);
        if (got == 0 && recover_missing_jobs(w))
            continue;
        wait_for_work(r, seen);
    }
    return NULL;
}

void ck_job_runner_wake(struct ck_job_runner *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->wakeups++;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void ck_job_runner_stop(struct ck_job_runner *r)
{
    if (r == NULL)
        return;
    if (r->magic != RUNNER_MAGIC)
        abort();
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    /* Workers finish the job they run (a reload may take minutes); the keeper renews its lease
     * until they have all stopped. */
    for (size_t i = 0; i < r->n_workers; i++) {
        if (r->workers[i].started)
            pthread_join(r->workers[i].thread, NULL);
        ck_store_close(r->workers[i].store);
    }
    pthread_mutex_lock(&r->lock);
    r->keeper_stopping = true;
    pthread_cond_broadcast(&r->keeper_wake);
    pthread_mutex_unlock(&r->lock);
    if (r->keeper_started)
        pthread_join(r->keeper, NULL);
    ck_store_close(r->keeper_store);
    free(r->workers);
    pthread_cond_destroy(&r->keeper_wake);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    ck_master_key_wipe(&r->key);
    r->magic = 0;
    free(r);
}

static int runner_init(struct ck_job_runner *r, const ck_master_key *key, int workers,
                       int lease_seconds, ck_error *err)
{
    pthread_condattr_t attr;
    r->magic = RUNNER_MAGIC;
    r->key = *key;
    r->n_workers = (size_t)workers;
    r->lease_seconds = lease_seconds;
    if ((r->workers = calloc(r->n_workers, sizeof(*r->workers))) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the workers");
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &attr);
    pthread_cond_init(&r->keeper_wake, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

static bool pid_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Jobs a crashed daemon of this host was running go back to the queue now rather than when
 * their leases expire (a restart then continues an order at once). */
static void requeue_dead_workers_jobs(struct ck_store *st, const char *host)
{
    ck_error err = {0};
    int requeued = 0;
    if (ck_store_job_requeue_dead(st, host, pid_alive, &requeued, &err) != 0)
        ck_log(CK_LOG_WARN, "could not requeue the jobs of dead workers: %s", err.message);
    else if (requeued > 0)
        ck_log(CK_LOG_INFO, "requeued %d job(s) left running by a process that has ended",
               requeued);
}

int ck_job_runner_start(const char *db_path, const ck_master_key *key,
                        const STACK_OF(X509) * system_roots, int workers, int lease_seconds,
                        struct ck_job_runner **out, ck_error *err)
{
    if (workers < 1 || workers > CK_WORKERS_MAX)
        return ck_error_set(err, 400, "invalid_workers", "--workers must be 1 to %d",
                            CK_WORKERS_MAX);
    if (lease_seconds == 0)
        lease_seconds = CK_JOB_LEASE_SECONDS;
    if (lease_seconds < CK_JOB_LEASE_MIN || lease_seconds > CK_JOB_LEASE_MAX)
        return ck_error_set(err, 400, "invalid_job_lease", "--job-lease must be %d to %d seconds",
                            CK_JOB_LEASE_MIN, CK_JOB_LEASE_MAX);
    struct ck_job_runner *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the workers");
    if (runner_init(r, key, workers, lease_seconds, err) != 0) {
        ck_master_key_wipe(&r->key);
        free(r);
        return -1;
    }
    r->system_roots = system_roots;
    int rc = -1;
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    if (ck_store_open(db_path, &r->keeper_store, err) != 0)
        goto cleanup;
    if (pthread_create(&r->keeper, NULL, keeper_main, r) != 0) {
        ck_error_set(err, 500, "thread_failed", "could not start the job lease keeper");
        goto cleanup;
    }
    r->keeper_started = true;
    for (size_t i = 0; i < r->n_workers; i++) {
        struct worker *w = &r->workers[i];
        w->magic = WORKER_MAGIC;
        w->runner = r;
        w->recovers = i == 0;
        w->next_recovery = monotonic_seconds(); /* at once: a restart after a crash */
        snprintf(w->id, sizeof(w->id), "%s:%ld:%zu", host, (long)getpid(), i + 1);
        if (ck_store_open(db_path, &w->store, err) != 0)
            goto cleanup;
        if (i == 0)
            requeue_dead_workers_jobs(w->store, host);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            ck_error_set(err, 500, "thread_failed", "could not start worker thread %zu", i + 1);
            goto cleanup;
        }
        w->started = true;
    }
    *out = r;
    r = NULL;
    rc = 0;
cleanup:
    ck_job_runner_stop(r); /* only when starting failed: joins what did start */
    return rc;
}
