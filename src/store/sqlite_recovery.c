/* Recovery after a crash: jobs held by dead processes of this host go back to the queue. */
#include <stdlib.h>
#include <string.h>

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
