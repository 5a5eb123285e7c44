#include "server/prefill.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/http.h>

#include "common/log.h"
#include "server/server.h"

#define POOL_MAGIC 0x636b7066u /* "ckpf" */

/* One pre-fill. The loop owns everything but the three results, which the thread writes before
 * event_active and the loop reads after the event fired (the base's lock orders the two). */
struct prefill_job {
    struct ck_prefill_pool *pool;
    LIST_ENTRY(prefill_job) link;
    pthread_t thread;
    struct event *finished; /* activated by the thread, runs finish_job on the loop */
    struct evhttp_request *req;
    bool client_gone; /* the connection closed: evhttp detached req and left it to us */
    ck_prefill_done done;
    int64_t tenant_id;
    enum ck_role role;
    json_t *body;          /* the thread's own deep copy */
    char *from_host_query; /* NULL when absent */
    int rc;
    struct ck_enrollment result;
    struct ck_input_errors errs;
};

struct ck_prefill_pool {
    uint32_t magic;
    struct ck_daemon *daemon;
    int cancel[2]; /* a pipe: written to at shutdown, every fetch polls its read end */
    LIST_HEAD(, prefill_job) jobs; /* loop thread only */
    size_t in_flight;
};

static void job_free(struct prefill_job *job)
{
    if (job->finished != NULL)
        event_free(job->finished);
    json_decref(job->body);
    free(job->from_host_query);
    ck_enrollment_free(&job->result);
    ck_input_errors_free(&job->errs);
    free(job);
}

static void *run_job(void *arg)
{
    struct prefill_job *job = arg;
    job->rc = ck_enrollment_input_create_cancellable(
        job->body, job->from_host_query, job->pool->cancel[0], &job->result, &job->errs);
    event_active(job->finished, EV_READ, 1);
    return NULL;
}

/* The connection is being freed while the thread still fetches. evhttp keeps an unanswered
 * request alive, detached from the connection, for whoever holds it: finish_job frees it. */
static void on_client_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct prefill_job *job = arg;
    job->client_gone = true;
}

static void job_unlink(struct prefill_job *job)
{
    LIST_REMOVE(job, link);
    job->pool->in_flight--;
}

static void finish_job(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct prefill_job *job = arg;
    struct ck_prefill_pool *pool = job->pool;
    pthread_join(job->thread, NULL); /* it returns right after event_active */
    job_unlink(job);
    struct evhttp_connection *conn = evhttp_request_get_connection(job->req);
    if (job->client_gone || conn == NULL) {
        ck_log(CK_LOG_INFO, "pre-fill: the client left before the answer; nothing was created");
        evhttp_request_free(job->req);
    } else {
        evhttp_connection_set_closecb(conn, NULL, NULL);
        struct ck_request r = {.daemon = pool->daemon,
                               .req = job->req,
                               .caller = {.tenant_id = job->tenant_id, .role = job->role}};
        TAILQ_INIT(&r.query);
        job->done(&r, job->rc, &job->result, &job->errs);
    }
    job_free(job);
}

int ck_prefill_pool_new(struct ck_daemon *d, struct ck_prefill_pool **out, ck_error *err)
{
    struct ck_prefill_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    if (pipe(pool->cancel) != 0) {
        free(pool);
        return ck_error_set(err, 500, "pipe_failed", "cannot make the pre-fill pipe: %s",
                            strerror(errno));
    }
    /* Not inherited by the programs target hooks run. */
    fcntl(pool->cancel[0], F_SETFD, FD_CLOEXEC);
    fcntl(pool->cancel[1], F_SETFD, FD_CLOEXEC);
    pool->magic = POOL_MAGIC;
    pool->daemon = d;
    LIST_INIT(&pool->jobs);
    *out = pool;
    return 0;
}

static struct prefill_job *job_new(struct ck_prefill_pool *pool, struct ck_request *r,
                                   const json_t *body, const char *from_host_query)
{
    struct prefill_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->pool = pool;
    job->req = r->req;
    job->tenant_id = r->caller.tenant_id;
    job->role = r->caller.role;
    job->body = json_deep_copy(body); /* jansson's reference counts are not for two threads */
    job->from_host_query = from_host_query != NULL ? strdup(from_host_query) : NULL;
    job->finished = event_new(pool->daemon->base, -1, 0, finish_job, job);
    if (job->body == NULL || (from_host_query != NULL && job->from_host_query == NULL) ||
        job->finished == NULL) {
        job_free(job);
        return NULL;
    }
    return job;
}

int ck_prefill_start(struct ck_prefill_pool *pool, struct ck_request *r, json_t *body,
                     const char *from_host_query, ck_prefill_done done, ck_error *err)
{
    if (pool->in_flight >= CK_PREFILL_IN_FLIGHT_MAX)
        return ck_error_set(err, 503, "prefill_busy",
                            "%d pre-fills from live hosts are already running; try again in a "
                            "few seconds",
                            CK_PREFILL_IN_FLIGHT_MAX);
    struct prefill_job *job = job_new(pool, r, body, from_host_query);
    if (job == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the pre-fill");
    job->done = done;
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    evhttp_connection_set_closecb(conn, on_client_closed, job);
    int rc = pthread_create(&job->thread, NULL, run_job, job);
    if (rc != 0) {
        evhttp_connection_set_closecb(conn, NULL, NULL);
        job_free(job);
        return ck_error_set(err, 503, "prefill_busy", "cannot start a pre-fill now: %s",
                            strerror(rc));
    }
    LIST_INSERT_HEAD(&pool->jobs, job, link);
    pool->in_flight++;
    return 0;
}

void ck_prefill_pool_free(struct ck_prefill_pool *pool)
{
    if (pool == NULL)
        return;
    if (pool->magic != POOL_MAGIC)
        abort();
    if (pool->in_flight > 0) {
        ck_log(CK_LOG_INFO, "cancelling %zu pre-fill%s", pool->in_flight,
               pool->in_flight == 1 ? "" : "s");
        /* Never read: the pipe stays readable for every fetch, which gives up at once. */
        if (write(pool->cancel[1], "x", 1) != 1)
            ck_log(CK_LOG_WARN, "cannot cancel the pre-fills (%s): waiting for their timeout",
                   strerror(errno));
    }
    struct prefill_job *job;
    while ((job = LIST_FIRST(&pool->jobs)) != NULL) {
        pthread_join(job->thread, NULL);
        job_unlink(job);
        /* Unanswered: a detached request is ours to free; an attached one goes with its
         * connection when the caller frees the evhttp server. */
        struct evhttp_connection *conn = evhttp_request_get_connection(job->req);
        if (job->client_gone || conn == NULL)
            evhttp_request_free(job->req);
        else
            evhttp_connection_set_closecb(conn, NULL, NULL);
        job_free(job);
    }
    close(pool->cancel[0]);
    close(pool->cancel[1]);
    pool->magic = 0;
    free(pool);
}
