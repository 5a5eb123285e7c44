/* order_flow.c — stage and deploy, the same for the API and the scheduler (order_flow.h). */
#include "core/order_flow.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"

static bool has_targets(struct ck_store *st, const struct ck_order *o, enum ck_environment env)
{
    struct ck_target *targets = NULL;
    size_t n = 0;
    bool found = false;
    ck_error err;
    if (ck_store_target_list(st, o->tenant_id, o->enrollment_id, &targets, &n, &err) != 0) {
        ck_log(CK_LOG_ERROR, "order %lld: cannot list its targets: %s", (long long)o->id,
               err.message);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        found = found || targets[i].environment == env;
    ck_target_array_free(targets, n);
    return found;
}

/* The jobs that follow a state change, written in the change's own transaction; each owns
 * its params. */
struct follow_ups {
    struct ck_job_new jobs[2];
    char *params[2];
    size_t n;
};

static void follow_ups_free(struct follow_ups *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->params[i]);
    f->n = 0;
}

/* Adds a job ({"address": address} when address is not NULL). */
static int follow_up(struct follow_ups *f, enum ck_job_type type, const char *address,
                     ck_error *err)
{
    json_t *object = address ? json_pack("{s:s}", "address", address) : NULL;
    char *params = object ? json_dumps(object, JSON_COMPACT) : NULL;
    json_decref(object);
    if (address != NULL && params == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory queueing a job");
    f->params[f->n] = params;
    f->jobs[f->n] = (struct ck_job_new){.type = type, .params_json = params};
    f->n++;
    return 0;
}

static void jobs_queued(const struct ck_order_flow *f, const struct follow_ups *u)
{
    if (u->n > 0 && f->job_queued != NULL)
        f->job_queued(f->ctx);
}

static void edge_changed(const struct ck_order_flow *f)
{
    if (f->edge_changed != NULL)
        f->edge_changed(f->ctx);
}

int ck_order_flow_stage(const struct ck_order_flow *f, const struct ck_order *o, ck_error *err)
{
    char message[CK_ERROR_MSG_MAX];
    struct follow_ups u = {0};
    int rc = -1;
    if (o->state != CK_ORDER_ISSUED)
        return ck_error_set(err, 409, "order_not_issued",
                            "order %lld is %s: only an issued order can be staged",
                            (long long)o->id, ck_order_state_name(o->state));
    snprintf(message, sizeof(message), "order %lld (%s) is on staging", (long long)o->id,
             o->enrollment_name ? o->enrollment_name : "?");
    const struct ck_event_new event = {
        .type = "staged", .enrollment_id = o->enrollment_id, .order_id = o->id, .message = message};
    if ((has_targets(f->store, o, CK_ENV_STAGING) && follow_up(&u, CK_JOB_STAGE, NULL, err) != 0) ||
        (f->staging_address != NULL &&
         follow_up(&u, CK_JOB_STAGING_TEST, f->staging_address, err) != 0) ||
        ck_store_order_stage_then(f->store, o->tenant_id, o->id, &event, u.jobs, u.n, err) != 0)
        goto cleanup;
    /* Serving now. The API's edge shares its event loop, so a staging test that connects
     * before this returns is answered by the rebuilt table. */
    edge_changed(f);
    jobs_queued(f, &u);
    rc = 0;
cleanup:
    follow_ups_free(&u);
    return rc;
}

int ck_order_flow_deploy_allowed(struct ck_store *st, const struct ck_order *o, ck_error *err)
{
    struct ck_enrollment e = {0};
    int rc = 0;
    if (o->state != CK_ORDER_STAGED)
        return ck_error_set(err, 409, "order_not_staged",
                            "order %lld is %s: only a staged order can be deployed (stage it "
                            "first: certkeep order stage %lld)",
                            (long long)o->id, ck_order_state_name(o->state), (long long)o->id);
    if (ck_store_enrollment_get(st, o->tenant_id, o->enrollment_name, &e, err) != 0)
        return -1;
    if (e.policy.always_test_on_staging && o->staging_acked_at == 0)
        rc = ck_error_set(err, 409, "staging_not_acknowledged",
                          "enrollment %s always tests on staging: acknowledge the staging test "
                          "of order %lld first (certkeep order ack-staging %lld)",
                          e.name, (long long)o->id, (long long)o->id);
    ck_enrollment_free(&e);
    return rc;
}

/* The jobs that follow an order's arrival in production. */
static int production_follow_ups(const struct ck_order_flow *f, const struct ck_order *o,
                                 struct follow_ups *u, ck_error *err)
{
    if (f->production_address != NULL &&
        follow_up(u, CK_JOB_PROBE, f->production_address, err) != 0)
        return -1;
    if (has_targets(f->store, o, CK_ENV_PRODUCTION) && follow_up(u, CK_JOB_DEPLOY, NULL, err) != 0)
        return -1;
    return 0;
}

int ck_order_flow_deploy(const struct ck_order_flow *f, const struct ck_order *o, ck_error *err)
{
    char message[CK_ERROR_MSG_MAX];
    struct follow_ups u = {0};
    int rc = -1;
    snprintf(message, sizeof(message), "order %lld (%s) is deployed to production",
             (long long)o->id, o->enrollment_name ? o->enrollment_name : "?");
    const struct ck_event_new event = {.type = "deployed",
                                       .enrollment_id = o->enrollment_id,
                                       .order_id = o->id,
                                       .message = message};
    if (production_follow_ups(f, o, &u, err) != 0 ||
        ck_store_order_deploy_then(f->store, o->tenant_id, o->id, &event, u.jobs, u.n, err) != 0)
        goto cleanup;
    edge_changed(f); /* the probe checks what is served; it retries while an edge lags */
    jobs_queued(f, &u);
    rc = 0;
cleanup:
    follow_ups_free(&u);
    return rc;
}

int ck_order_flow_rollback(const struct ck_order_flow *f, const struct ck_enrollment *e,
                           const struct ck_event_new *event, int64_t *order_id, ck_error *err)
{
    struct follow_ups u = {0};
    /* The jobs depend on the enrollment only (its targets, the listener), not on which order
     * comes back. */
    const struct ck_order any = {.tenant_id = e->tenant_id, .enrollment_id = e->id};
    int rc = -1;
    if (production_follow_ups(f, &any, &u, err) != 0 ||
        ck_store_enrollment_rollback_then(f->store, e->tenant_id, e->name, ck_clock_now(), event,
                                          u.jobs, u.n, order_id, err) != 0)
        goto cleanup;
    edge_changed(f);
    jobs_queued(f, &u);
    rc = 0;
cleanup:
    follow_ups_free(&u);
    return rc;
}
