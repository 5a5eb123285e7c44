/* order_flow.h — an order's way onto staging and into production, shared by the API (a person
 * asks) and the scheduler (the policy says it is time): the same checks, state changes, events
 * and follow-up jobs whoever starts them.
 *
 * stage:  issued -> staged, event "staged", a "stage" job when the enrollment has staging
 *         file targets and a "staging_test" job against the staging listener when there is one.
 * deploy: staged -> deployed, event "deployed", a "probe" job against the production listener
 *         when there is one and a "deploy" job when it has production file targets.
 * rollback: the previous production order back, event "rolled_back", the deploy's jobs.
 * Each is one store transaction with its event and jobs: a crash never leaves the state changed
 * without the jobs that follow it. */
#ifndef CK_CORE_ORDER_FLOW_H
#define CK_CORE_ORDER_FLOW_H

#include "common/error.h"
#include "core/model.h"
#include "store/store.h"

struct ck_order_flow {
    struct ck_store *store;
    const char *staging_address;    /* "IP:PORT" of the staging listener, or NULL */
    const char *production_address; /* "IP:PORT" of the production listener, or NULL */
    /* Called (when not NULL) right after a state change the edge serves, before the jobs that
     * test it are queued; e.g. the API thread rebuilds the edge tables at once. Others rely on
     * the edge's generation watch. */
    void (*edge_changed)(void *ctx);
    /* Called (when not NULL) after a job was queued: wake a worker. */
    void (*job_queued)(void *ctx);
    void *ctx;
};

/* issued -> staged with its jobs. 409 "order_not_issued" when o is not issued; 409
 * "order_state_changed" when another request or daemon moved it meanwhile; on any failure
 * nothing was written. */
int ck_order_flow_stage(const struct ck_order_flow *f, const struct ck_order *o, ck_error *err);

/* 409 naming what is missing before o may go to production: "order_not_staged", or
 * "staging_not_acknowledged" when the enrollment always tests on staging. The time rules
 * (not_before, deploy_before) are the caller's: a person may deploy early, the scheduler asks
 * core/policy.h. */
int ck_order_flow_deploy_allowed(struct ck_store *st, const struct ck_order *o, ck_error *err);

/* staged -> deployed with its jobs (the caller checked ck_order_flow_deploy_allowed). */
int ck_order_flow_deploy(const struct ck_order_flow *f, const struct ck_order *o, ck_error *err);

/* Puts the enrollment's previous production order back (ck_store_enrollment_rollback) with the
 * deploy's jobs; *order_id is the order now in production. */
int ck_order_flow_rollback(const struct ck_order_flow *f, const struct ck_enrollment *e,
                           const struct ck_event_new *event, int64_t *order_id, ck_error *err);

#endif
