/* Recovery after a crash: jobs held by dead processes of this host go back to the queue. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

struct held_job {
    int64_t id;
    char *worker;
};

static int read_held_job(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct held_job *j = row;
    bool ok = true;
    j->id = sqlite3_column_int64(s, 0);
    j->worker = ck_sql_col_text(s, 1, &ok);
    return ok ? 0 : ck_sql_out_of_memory(err);
}

static void free_held_job(void *row)
{
    free(((struct held_job *)row)->worker);
}

/* The PID of a worker id "HOST:PID:N" of this host, or -1. */
static long worker_pid(const char *worker, const char *host)
{
    size_t host_len = strlen(host);
    if (strncmp(worker, host, host_len) != 0 || worker[host_len] != ':')
        return -1;
    char *end = NULL;
    long pid = strtol(worker + host_len + 1, &end, 10);
    return end != NULL && *end == ':' && pid > 0 ? pid : -1;
}

struct requeue {
    const char *host;
    bool (*pid_alive)(long pid);
    int requeued;
};

static int requeue_body(struct ck_store *st, void *ctx, ck_error *err)
{
    struct requeue *rq = ctx;
    struct held_job *held = NULL;
    size_t n = 0;
    int rc = ck_sql_query_all(st, "SELECT id, worker FROM jobs WHERE state = 'running'", NO_ARGS,
                              "listing running jobs", read_held_job, free_held_job, sizeof(*held),
                              (void **)&held, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        long pid = held[i].worker ? worker_pid(held[i].worker, rq->host) : -1;
        if (pid < 0 || rq->pid_alive(pid))
            continue;
        int64_t changes = 0;
        rc = ck_sql_exec_args(st,
                              "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL "
                              "WHERE id = ?1 AND state = 'running' AND worker = ?2",
                              ARGS(A_INT(held[i].id), A_TEXT(held[i].worker)),
                              "requeueing a job of a dead worker", &changes, err);
        rq->requeued += (int)changes;
    }
    for (size_t i = 0; i < n; i++)
        free_held_job(&held[i]);
    free(held);
    return rc;
}

int ck_store_job_requeue_dead(struct ck_store *st, const char *host, bool (*pid_alive)(long pid),
                              int *requeued, ck_error *err)
{
    struct requeue rq = {.host = host, .pid_alive = pid_alive};
    if (ck_sql_in_transaction(st, requeue_body, &rq, err) != 0)
        return -1;
    if (requeued != NULL)
        *requeued = rq.requeued;
    return 0;
}

struct issue_recover {
    size_t limit;
    int64_t *queued;
};

/* The csr job's commit queues the issue job in its own transaction; this finds an order that
 * still lacks it (a database written before that, or a bug): csr_ready from a generated CSR,
 * an automatic issuer, no issue job ever, and no "certificate_needed" (the manual issuer's mark,
 * written in the same transaction as csr_ready). The conditions are in the INSERT itself, inside
 * BEGIN IMMEDIATE, so two daemons cannot both queue one. */
static int issue_recover_body(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct issue_recover *r = ctx;
    return ck_sql_exec_args(
        st,
        "INSERT INTO jobs (tenant_id, enrollment_id, order_id, type, state, created_at) "
        "SELECT o.tenant_id, o.enrollment_id, o.id, 'issue', 'queued', ?1 "
        "FROM orders o JOIN enrollments e ON e.id = o.enrollment_id "
        "WHERE o.state = 'csr_ready' AND o.csr_uploaded = 0 AND e.issuer <> 'manual' "
        "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.order_id = o.id AND j.type = 'issue') "
        "AND NOT EXISTS (SELECT 1 FROM events v WHERE v.order_id = o.id "
        "AND v.type = 'certificate_needed') "
        "ORDER BY o.id LIMIT ?2",
        ARGS(A_INT(ck_clock_now()), A_INT((int64_t)r->limit)), "queueing missing issue jobs",
        r->queued, err);
}

int ck_store_issue_jobs_recover(struct ck_store *st, size_t limit, int *queued, ck_error *err)
{
    int64_t changes = 0;
    struct issue_recover r = {.limit = limit, .queued = &changes};
    if (queued != NULL)
        *queued = 0;
    if (limit == 0)
        return 0;
    if (ck_sql_in_transaction(st, issue_recover_body, &r, err) != 0)
        return -1;
    if (queued != NULL)
        *queued = (int)changes;
    return 0;
}
