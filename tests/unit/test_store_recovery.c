#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

struct fixture {
    char dir[64];
    char path[96];
    struct ck_store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    ck_error err = {0};
    snprintf(f->dir, sizeof(f->dir), "/tmp/ck-recovery-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/certkeep.db", f->dir);
    if (ck_store_open(f->path, &f->st, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    ck_store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Queues a csr job for a fresh enrollment and claims it as `worker`; returns the job id. */
static int64_t claimed_job(struct fixture *f, const char *name, const char *worker)
{
    ck_error err = {0};
    struct ck_enrollment e = {.tenant_id = CK_OPERATOR_TENANT_ID,
                              .key_type = CK_KEY_EC_P256,
                              .validation = CK_VALIDATION_DV};
    e.name = strdup(name);
    e.cn = strdup("shop.example.com");
    e.issuer = strdup("manual");
    ck_strv_push(&e.sans, "shop.example.com");
    assert_int_equal(ck_store_enrollment_create(f->st, &e, &err), 0);
    int64_t order_id = 0, job_id = 0;
    assert_int_equal(ck_store_order_create(f->st, e.tenant_id, e.id, &order_id, &job_id, &err), 0);
    ck_enrollment_free(&e);
    struct ck_job job = {0};
    assert_int_equal(ck_store_job_claim(f->st, worker, 300, &job, &err), 1);
    assert_int_equal(job.id, job_id);
    ck_job_free(&job);
    return job_id;
}

static enum ck_job_state job_state(struct fixture *f, int64_t id)
{
    struct ck_job job = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_job_get(f->st, CK_OPERATOR_TENANT_ID, id, &job, &err), 0);
    enum ck_job_state s = job.state;
    ck_job_free(&job);
    return s;
}

static bool only_4242_is_alive(long pid)
{
    return pid == 4242;
}

static void test_jobs_of_dead_local_workers_are_requeued(void **state)
{
    struct fixture *f = *state;
    int64_t dead = claimed_job(f, "dead", "hosta:999:1");
    int64_t alive = claimed_job(f, "alive", "hosta:4242:1");
    int64_t elsewhere = claimed_job(f, "elsewhere", "hostb:999:1");
    int64_t prefix = claimed_job(f, "prefix", "hosta.example:999:1");
    int requeued = -1;
    ck_error err = {0};
    assert_int_equal(ck_store_job_requeue_dead(f->st, "hosta", only_4242_is_alive, &requeued, &err),
                     0);
    assert_int_equal(requeued, 1);
    assert_int_equal(job_state(f, dead), CK_JOB_QUEUED);
    assert_int_equal(job_state(f, alive), CK_JOB_RUNNING);
    assert_int_equal(job_state(f, elsewhere), CK_JOB_RUNNING);
    assert_int_equal(job_state(f, prefix), CK_JOB_RUNNING);
    /* The requeued job is claimable again at once, lease or not. */
    struct ck_job job = {0};
    assert_int_equal(ck_store_job_claim(f->st, "hosta:5000:1", 300, &job, &err), 1);
    assert_int_equal(job.id, dead);
    ck_job_free(&job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_of_dead_local_workers_are_requeued, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
