/* order_flow.c — stage and deploy, the same for the API and the scheduler (order_flow.h). */
#include "core/order_flow.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

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

/* Queues a job for the order ({"address": address} when address is not NULL). A failure is
 * logged: the state change it follows is done and stays done. */
static void queue_job(const struct ck_order_flow *f, const struct ck_order *o,
                      enum ck_job_type type, const char *address)
{
    json_t *object = address ? json_pack("{s:s}", "address", address) : NULL;
    char *params = object ? json_dumps(object, 0) : NULL;
    json_decref(object);
    int64_t job_id;
    ck_error err;
    if ((address != NULL && params == NULL) ||
        ck_store_job_enqueue(f->store, o->tenant_id, o->id, type, params, &job_id, &err) != 0)
        ck_log(CK_LOG_ERROR, "order %lld: could not queue its %s job: %s", (long long)o->id,
               ck_job_type_name(type), params ? err.message : "out of memory");
    free(params);
    if (f->job_queued != NULL)
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
    if (o->state != CK_ORDER_ISSUED)
        return ck_error_set(err, 409, "order_not_issued",
                            "order %lld is %s: only an issued order can be staged",
                            (long long)o->id, ck_order_state_name(o->state));
    snprintf(message, sizeof(message), "order %lld (%s) is on staging", (long long)o->id,
             o->enrollment_name ? o->enrollment_name : "?");
    const struct ck_event_new event = {
        .type = "staged", .enrollment_id = o->enrollment_id, .order_id = o->id, .message = message};
    if (ck_store_order_stage(f->store, o->tenant_id, o->id, &event, err) != 0)
        return -1;
    edge_changed(f); /* serving now, before the test connects */
    if (has_targets(f->store, o, CK_ENV_STAGING))
        queue_job(f, o, CK_JOB_STAGE, NULL);
    if (f->staging_address != NULL)
        queue_job(f, o, CK_JOB_STAGING_TEST, f->staging_address);
    return 0;
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

void ck_order_flow_after_deploy(const struct ck_order_flow *f, const struct ck_order *o)
{
    edge_changed(f); /* before the probe: it checks what is served */
    if (f->production_address != NULL)
        queue_job(f, o, CK_JOB_PROBE, f->production_address);
    if (has_targets(f->store, o, CK_ENV_PRODUCTION))
        queue_job(f, o, CK_JOB_DEPLOY, NULL);
}

int ck_order_flow_deploy(const struct ck_order_flow *f, const struct ck_order *o, ck_error *err)
{
    char message[CK_ERROR_MSG_MAX];
    snprintf(message, sizeof(message), "order %lld (%s) is deployed to production",
             (long long)o->id, o->enrollment_name ? o->enrollment_name : "?");
    const struct ck_event_new event = {.type = "deployed",
                                       .enrollment_id = o->enrollment_id,
                                       .order_id = o->id,
                                       .message = message};
    if (ck_store_order_deploy(f->store, o->tenant_id, o->id, &event, err) != 0)
        return -1;
    ck_order_flow_after_deploy(f, o);
    return 0;
}
