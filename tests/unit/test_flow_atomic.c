/* A state change and what must follow it are written together or not at all (store.h, "a state
 * change and what must follow it"), through a real SQLite store: the csr job with its issue job,
 * stage and deploy with their jobs, an import with its import job, a job's end with its order's
 * failure, the next job or an event; events raised once per order; the first ACME account
 * recorded stays; and the safety net that queues the issue job an order left csr_ready lacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "core/csr_job.h"
#include "store/store.h"
#include "temp_store.h"

static int setup(void **state)
{
    return tenant_store_setup(state, "flow");
}

static void assert_error(int rc, const ck_error *err, int status, const char *code)
{
    assert_int_equal(rc, -1);
    assert_int_equal(err->status, status);
    assert_string_equal(err->code, code);
}

/* An enrollment of the given issuer ("manual" or an issuer's name: the store does not look it
 * up); returns its id. */
static int64_t enrollment(struct tenant_store *f, const char *name, const char *issuer)
{
    struct ck_enrollment e = {.tenant_id = f->tenant_id,
                              .name = (char *)name,
                              .cn = "web.lab.test",
                              .key_type = CK_KEY_EC_P256,
                              .issuer = (char *)issuer};
    ck_error err = {0};
    assert_int_equal(ck_strv_push(&e.sans, "web.lab.test"), 0);
    assert_int_equal(ck_store_enrollment_create(f->db.st, &e, &err), 0);
    ck_strv_free(&e.sans);
    return e.id;
}

/* A new order of the enrollment; *csr_job gets its queued csr job. */
static int64_t new_order(struct tenant_store *f, int64_t enrollment_id, int64_t *csr_job)
{
    int64_t order_id = 0, job_id = 0;
    ck_error err = {0};
    assert_int_equal(
        ck_store_order_create(f->db.st, f->tenant_id, enrollment_id, &order_id, &job_id, &err), 0);
    if (csr_job != NULL)
        *csr_job = job_id;
    return order_id;
}

static enum ck_order_state order_state(struct tenant_store *f, int64_t order_id)
{
    struct ck_order o = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_order_get(f->db.st, f->tenant_id, order_id, &o, &err), 0);
    enum ck_order_state s = o.state;
    ck_order_free(&o);
    return s;
}

/* How many jobs of that type (-1: any) and state (-1: any) the order has. */
static size_t count_jobs(struct tenant_store *f, int64_t order_id, int type, int state)
{
    const struct ck_job_filter filter = {.state = state, .type = type, .order_id = order_id};
    struct ck_job *jobs = NULL;
    size_t n = 0;
    ck_error err = {0};
    assert_int_equal(ck_store_job_list(f->db.st, f->tenant_id, &filter, &jobs, &n, &err), 0);
    ck_job_array_free(jobs, n);
    return n;
}

static size_t count_events(struct tenant_store *f, int64_t order_id, const char *type)
{
    struct ck_event *events = NULL;
    size_t n = 0, found = 0;
    ck_error err = {0};
    assert_int_equal(ck_store_event_list(f->db.st, f->tenant_id, order_id, 100, &events, &n, &err),
                     0);
    for (size_t i = 0; i < n; i++)
        found += strcmp(events[i].type, type) == 0;
    ck_event_array_free(events, n);
    return found;
}

/* Claims the oldest runnable job, which must be job_id, and runs it as the csr job. */
static void run_csr_job(struct tenant_store *f, int64_t job_id)
{
    struct ck_job job = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_job_claim(f->db.st, "test:1:1", 300, &job, &err), 1);
    assert_int_equal(job.id, job_id);
    assert_int_equal(job.type, CK_JOB_CSR);
    assert_int_equal(ck_csr_job_run(f->db.st, &f->mk, &job), 0);
    ck_job_free(&job);
}

/* ---- csr job → issue job ---- */

static void test_csr_job_queues_issue_with_csr_ready(void **state)
{
    struct tenant_store *f = *state;
    int64_t csr_job;
    /* A manual issuer's order waits for a person: the event, no issue job. */
    int64_t manual = new_order(f, enrollment(f, "bought", "manual"), &csr_job);
    run_csr_job(f, csr_job);
    assert_int_equal(order_state(f, manual), CK_ORDER_CSR_READY);
    assert_int_equal(count_jobs(f, manual, CK_JOB_ISSUE, -1), 0);
    assert_int_equal(count_events(f, manual, "certificate_needed"), 1);

    /* An automatic issuer's: its issue job came with csr_ready. */
    int64_t order_id = new_order(f, enrollment(f, "auto", "mine"), &csr_job);
    run_csr_job(f, csr_job);
    assert_int_equal(order_state(f, order_id), CK_ORDER_CSR_READY);
    assert_int_equal(count_jobs(f, order_id, CK_JOB_CSR, CK_JOB_FINISHED), 1);
    assert_int_equal(count_jobs(f, order_id, CK_JOB_ISSUE, CK_JOB_QUEUED), 1);
    assert_int_equal(count_events(f, order_id, "certificate_needed"), 0);
}

/* Both or neither: a follow-up job the store refuses leaves the order new and the csr job
 * running, with no artifact; an order that left "new" gets no issue job either. */
static void test_csr_ready_then_is_one_transaction(void **state)
{
    struct tenant_store *f = *state;
    int64_t csr_job;
    static const uint8_t sealed[] = {1, 2, 3};
    ck_error err = {0};
    int64_t order_id = new_order(f, enrollment(f, "auto", "mine"), &csr_job);
    const struct ck_job_new bad = {.type = CK_JOB_ISSUE, .params_json = "[1]"};
    assert_error(ck_store_order_csr_ready_then(f->db.st, order_id, csr_job, NULL, sealed,
                                               sizeof(sealed), "CSR", NULL, &bad, &err),
                 &err, 400, "invalid_field");
    assert_int_equal(order_state(f, order_id), CK_ORDER_NEW);
    assert_int_equal(count_jobs(f, order_id, CK_JOB_CSR, CK_JOB_QUEUED), 1);
    assert_int_equal(count_jobs(f, order_id, CK_JOB_ISSUE, -1), 0);

    const struct ck_job_new issue = {.type = CK_JOB_ISSUE};
    assert_int_equal(ck_store_order_cancel(f->db.st, f->tenant_id, order_id, &err), 0);
    assert_error(ck_store_order_csr_ready_then(f->db.st, order_id, csr_job, NULL, sealed,
                                               sizeof(sealed), "CSR", NULL, &issue, &err),
                 &err, 409, "order_not_new");
    assert_int_equal(count_jobs(f, order_id, CK_JOB_ISSUE, -1), 0);
}

/* ---- the safety net ---- */

/* An order left csr_ready by the old two-step commit (a crash before its issue job was queued)
 * gets its issue job once, from any connection; manual and uploaded orders are left alone. */
static void test_recover_queues_missing_issue_job_once(void **state)
{
    struct tenant_store *f = *state;
    static const uint8_t sealed[] = {1, 2, 3};
    int64_t csr_job, upload_job, upload_order;
    int queued = -1;
    ck_error err = {0};
    int64_t stuck = new_order(f, enrollment(f, "auto", "mine"), &csr_job);
    assert_int_equal(ck_store_order_csr_ready(f->db.st, stuck, csr_job, sealed, sizeof(sealed),
                                              "CSR", NULL, &err),
                     0);
    int64_t manual_job;
    int64_t manual = new_order(f, enrollment(f, "bought", "manual"), &manual_job);
    run_csr_job(f, manual_job);
    int64_t uploaded_enrollment = enrollment(f, "uploaded", "mine");
    assert_int_equal(ck_store_order_create_from_csr(f->db.st, f->tenant_id, uploaded_enrollment,
                                                    CK_KEY_EC_P256, "CSR", NULL, &upload_order,
                                                    &upload_job, &err),
                     0);
    /* A healthy order: its issue job came with its CSR. */
    int64_t healthy = new_order(f, enrollment(f, "healthy", "mine"), &csr_job);
    run_csr_job(f, csr_job);
    assert_int_equal(count_jobs(f, healthy, CK_JOB_ISSUE, -1), 1);

    assert_int_equal(ck_store_issue_jobs_recover(f->db.st, 64, &queued, &err), 0);
    assert_int_equal(queued, 1);
    assert_int_equal(count_jobs(f, stuck, CK_JOB_ISSUE, CK_JOB_QUEUED), 1);
    assert_int_equal(count_jobs(f, manual, CK_JOB_ISSUE, -1), 0);
    assert_int_equal(count_jobs(f, upload_order, CK_JOB_ISSUE, -1), 0);
    assert_int_equal(count_jobs(f, healthy, CK_JOB_ISSUE, -1), 1);

    /* Again, and from a second daemon's connection: nothing more. */
    struct ck_store *other = NULL;
    assert_int_equal(ck_store_open(f->db.path, &other, &err), 0);
    assert_int_equal(ck_store_issue_jobs_recover(other, 64, &queued, &err), 0);
    assert_int_equal(queued, 0);
    assert_int_equal(ck_store_issue_jobs_recover(f->db.st, 64, &queued, &err), 0);
    assert_int_equal(queued, 0);
    ck_store_close(other);
    assert_int_equal(count_jobs(f, stuck, CK_JOB_ISSUE, -1), 1);
}

static void test_recover_takes_a_batch_at_a_time(void **state)
{
    struct tenant_store *f = *state;
    static const uint8_t sealed[] = {1, 2, 3};
    static const char *const names[] = {"a", "b", "c"};
    int queued = -1;
    ck_error err = {0};
    for (size_t i = 0; i < 3; i++) {
        int64_t job;
        int64_t o = new_order(f, enrollment(f, names[i], "mine"), &job);
        assert_int_equal(
            ck_store_order_csr_ready(f->db.st, o, job, sealed, sizeof(sealed), "CSR", NULL, &err),
            0);
    }
    assert_int_equal(ck_store_issue_jobs_recover(f->db.st, 2, &queued, &err), 0);
    assert_int_equal(queued, 2);
    assert_int_equal(ck_store_issue_jobs_recover(f->db.st, 2, &queued, &err), 0);
    assert_int_equal(queued, 1);
    assert_int_equal(ck_store_issue_jobs_recover(f->db.st, 2, &queued, &err), 0);
    assert_int_equal(queued, 0);
}

/* ---- stage and deploy with their jobs ---- */

/* An order in "issued" (its certificate is not what these tests look at). */
static int64_t issued_order(struct tenant_store *f, const char *name)
{
    static const uint8_t sealed[] = {1, 2, 3};
    int64_t job;
    ck_error err = {0};
    int64_t o = new_order(f, enrollment(f, name, "manual"), &job);
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, o, job, sealed, sizeof(sealed), "CSR", NULL, &err), 0);
    assert_int_equal(ck_store_order_transition(f->db.st, f->tenant_id, o, CK_ORDER_CSR_READY,
                                               CK_ORDER_ISSUED, NULL, NULL, &err),
                     0);
    return o;
}

static void test_stage_and_deploy_write_their_jobs(void **state)
{
    struct tenant_store *f = *state;
    ck_error err = {0};
    int64_t o = issued_order(f, "web");
    const struct ck_event_new staged = {.type = "staged", .message = "on staging"};
    const struct ck_job_new stage_jobs[] = {
        {.type = CK_JOB_STAGE},
        {.type = CK_JOB_STAGING_TEST, .params_json = "{\"address\":\"127.0.0.1:8443\"}"}};
    const struct ck_job_new bad[] = {{.type = CK_JOB_STAGE},
                                     {.type = CK_JOB_STAGING_TEST, .params_json = "not json"}};

    /* One job refused: the order stays issued, no event, no job. */
    assert_error(ck_store_order_stage_then(f->db.st, f->tenant_id, o, &staged, bad, 2, &err), &err,
                 400, "invalid_field");
    assert_int_equal(order_state(f, o), CK_ORDER_ISSUED);
    assert_int_equal(count_events(f, o, "staged"), 0);
    assert_int_equal(count_jobs(f, o, CK_JOB_STAGE, -1), 0);

    assert_int_equal(
        ck_store_order_stage_then(f->db.st, f->tenant_id, o, &staged, stage_jobs, 2, &err), 0);
    assert_int_equal(order_state(f, o), CK_ORDER_STAGED);
    assert_int_equal(count_events(f, o, "staged"), 1);
    assert_int_equal(count_jobs(f, o, CK_JOB_STAGE, CK_JOB_QUEUED), 1);
    assert_int_equal(count_jobs(f, o, CK_JOB_STAGING_TEST, CK_JOB_QUEUED), 1);

    /* Staging again (another daemon lost the race): 409 and no second set of jobs. */
    assert_error(ck_store_order_stage_then(f->db.st, f->tenant_id, o, &staged, stage_jobs, 2, &err),
                 &err, 409, "order_state_changed");
    assert_int_equal(count_jobs(f, o, CK_JOB_STAGE, -1), 1);

    const struct ck_event_new deployed = {.type = "deployed", .message = "in production"};
    const struct ck_job_new deploy_jobs[] = {
        {.type = CK_JOB_PROBE, .params_json = "{\"address\":\"127.0.0.1:9443\"}"},
        {.type = CK_JOB_DEPLOY}};
    assert_int_equal(
        ck_store_order_deploy_then(f->db.st, f->tenant_id, o, &deployed, deploy_jobs, 2, &err), 0);
    assert_int_equal(order_state(f, o), CK_ORDER_DEPLOYED);
    assert_int_equal(count_jobs(f, o, CK_JOB_PROBE, CK_JOB_QUEUED), 1);
    assert_int_equal(count_jobs(f, o, CK_JOB_DEPLOY, CK_JOB_QUEUED), 1);
    assert_int_equal(count_events(f, o, "deployed"), 1);
}

/* ---- a new order with its event ---- */

static void test_order_create_event(void **state)
{
    struct tenant_store *f = *state;
    int64_t order_id = 0, job_id = 0;
    ck_error err = {0};
    int64_t e = enrollment(f, "web", "mine");
    const struct ck_event_new started = {.type = "renewal_started",
                                         .message = "renewal of web started (expiry)"};
    assert_int_equal(
        ck_store_order_create_event(f->db.st, f->tenant_id, e, &started, &order_id, &job_id, &err),
        0);
    assert_int_equal(count_events(f, order_id, "renewal_started"), 1);
    assert_int_equal(count_jobs(f, order_id, CK_JOB_CSR, CK_JOB_QUEUED), 1);
    /* The enrollment has an open order now: neither a second order nor its event. */
    assert_error(
        ck_store_order_create_event(f->db.st, f->tenant_id, e, &started, &order_id, &job_id, &err),
        &err, 409, "order_open");
    struct ck_event *events = NULL;
    size_t n = 0;
    assert_int_equal(ck_store_event_list(f->db.st, f->tenant_id, 0, 100, &events, &n, &err), 0);
    assert_int_equal(n, 1);
    ck_event_array_free(events, n);
}

static void test_event_add_once(void **state)
{
    struct tenant_store *f = *state;
    bool added = false;
    ck_error err = {0};
    int64_t o = issued_order(f, "web");
    const struct ck_event_new ev = {.type = "renewal_failed", .order_id = o, .message = "failed"};
    assert_int_equal(ck_store_event_add_once(f->db.st, f->tenant_id, &ev, &added, &err), 0);
    assert_true(added);
    assert_int_equal(ck_store_event_add_once(f->db.st, f->tenant_id, &ev, &added, &err), 0);
    assert_false(added);
    assert_int_equal(count_events(f, o, "renewal_failed"), 1);
    const struct ck_event_new no_order = {.type = "renewal_failed", .message = "failed"};
    assert_error(ck_store_event_add_once(f->db.st, f->tenant_id, &no_order, &added, &err), &err,
                 400, "invalid_field");
}

/* ---- a job's end with what follows it ---- */

static int64_t claimed_issue_job(struct tenant_store *f, int64_t order_id)
{
    int64_t id;
    struct ck_job job = {0};
    ck_error err = {0};
    assert_int_equal(
        ck_store_job_enqueue(f->db.st, f->tenant_id, order_id, CK_JOB_ISSUE, NULL, &id, &err), 0);
    assert_int_equal(ck_store_job_claim(f->db.st, "test:1:1", 300, &job, &err), 1);
    assert_int_equal(job.id, id);
    ck_job_free(&job);
    return id;
}

static void test_job_end_fails_its_order(void **state)
{
    struct tenant_store *f = *state;
    int64_t csr_job;
    static const uint8_t sealed[] = {1, 2, 3};
    ck_error err = {0};
    int64_t o = new_order(f, enrollment(f, "web", "mine"), &csr_job);
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, o, csr_job, sealed, sizeof(sealed), "CSR", NULL, &err),
        0);
    int64_t job = claimed_issue_job(f, o);
    const struct ck_job_end end = {
        .state = CK_JOB_FAILED, .error = "the CA said no", .fail_order = "the CA said no"};
    assert_int_equal(ck_store_job_end(f->db.st, job, &end, &err), 0);
    assert_int_equal(order_state(f, o), CK_ORDER_FAILED);
    assert_int_equal(count_jobs(f, o, CK_JOB_ISSUE, CK_JOB_FAILED), 1);
    /* Ended already: 409, nothing written. */
    assert_error(ck_store_job_end(f->db.st, job, &end, &err), &err, 409, "job_closed");
}

/* A cancelled order stays cancelled when its job ends failing it. */
static void test_job_end_leaves_a_closed_order(void **state)
{
    struct tenant_store *f = *state;
    int64_t o = issued_order(f, "web");
    ck_error err = {0};
    int64_t job = claimed_issue_job(f, o);
    assert_int_equal(ck_store_order_cancel(f->db.st, f->tenant_id, o, &err), 0);
    /* The cancel failed the running job too. */
    const struct ck_job_end end = {.state = CK_JOB_FAILED, .error = "x", .fail_order = "x"};
    assert_error(ck_store_job_end(f->db.st, job, &end, &err), &err, 409, "job_closed");
    assert_int_equal(order_state(f, o), CK_ORDER_CANCELLED);
}

/* The ACME hand-over: this job finished and the next one queued, together; an event with it. */
static void test_job_end_queues_next_and_event(void **state)
{
    struct tenant_store *f = *state;
    int64_t o = issued_order(f, "web");
    ck_error err = {0};
    int64_t job = claimed_issue_job(f, o);
    const struct ck_job_new next = {.type = CK_JOB_ISSUE, .params_json = "{\"x\":1}"};
    const struct ck_event_new ev = {.type = "dns_records_needed", .message = "create them"};
    const struct ck_job_end end = {.state = CK_JOB_FINISHED, .event = &ev, .next = &next};
    assert_int_equal(ck_store_job_end(f->db.st, job, &end, &err), 0);
    assert_int_equal(count_jobs(f, o, CK_JOB_ISSUE, CK_JOB_FINISHED), 1);
    assert_int_equal(count_jobs(f, o, CK_JOB_ISSUE, CK_JOB_QUEUED), 1);
    assert_int_equal(count_events(f, o, "dns_records_needed"), 1);

    /* A next job the store refuses: the job does not end either. */
    int64_t second = 0;
    struct ck_job claimed = {0};
    assert_int_equal(ck_store_job_claim(f->db.st, "test:1:1", 300, &claimed, &err), 1);
    second = claimed.id;
    ck_job_free(&claimed);
    const struct ck_job_new bad = {.type = CK_JOB_ISSUE, .params_json = "[]"};
    const struct ck_job_end bad_end = {.state = CK_JOB_FINISHED, .next = &bad};
    assert_error(ck_store_job_end(f->db.st, second, &bad_end, &err), &err, 400, "invalid_field");
    assert_int_equal(count_jobs(f, o, CK_JOB_ISSUE, CK_JOB_RUNNING), 1);
}

/* ---- an accepted import with its import job ---- */

static void test_import_accept_is_one_transaction(void **state)
{
    struct tenant_store *f = *state;
    int64_t csr_job, import_job = 0;
    static const uint8_t sealed[] = {1, 2, 3};
    static const char *const levels[] = {"warn"};
    static const char *const lines[] = {"expires_soon: soon"};
    ck_error err = {0};
    int64_t o = new_order(f, enrollment(f, "web", "manual"), &csr_job);
    assert_int_equal(
        ck_store_order_csr_ready(f->db.st, o, csr_job, sealed, sizeof(sealed), "CSR", NULL, &err),
        0);
    const struct ck_import_log log = {
        .levels = levels, .lines = lines, .n_lines = 1, .summary = "accepted with 1 warning"};
    const struct ck_order_update update = {.cert_pem = "CERT", .cert_not_after = 4102444800};
    const struct ck_event_new ev = {.type = "warnings_to_acknowledge", .message = "ack"};
    assert_int_equal(ck_store_import_accept(f->db.st, f->tenant_id, o, &log, CK_ORDER_CSR_READY,
                                            CK_ORDER_AWAITING_ACK, &update, &ev, &import_job, &err),
                     0);
    assert_int_equal(order_state(f, o), CK_ORDER_AWAITING_ACK);
    assert_int_equal(count_jobs(f, o, CK_JOB_IMPORT, CK_JOB_FINISHED), 1);
    assert_int_equal(count_events(f, o, "warnings_to_acknowledge"), 1);
    struct ck_job_log_line *log_lines = NULL;
    size_t n = 0;
    assert_int_equal(
        ck_store_job_log_lines(f->db.st, f->tenant_id, import_job, &log_lines, &n, &err), 0);
    assert_int_equal(n, 2);
    ck_job_log_lines_free(log_lines, n);

    /* The order left csr_ready: no second import job is recorded as accepted. */
    assert_error(ck_store_import_accept(f->db.st, f->tenant_id, o, &log, CK_ORDER_CSR_READY,
                                        CK_ORDER_AWAITING_ACK, &update, &ev, &import_job, &err),
                 &err, 409, "order_state_changed");
    assert_int_equal(count_jobs(f, o, CK_JOB_IMPORT, -1), 1);
}

/* ---- the first ACME account stays ---- */

static int no_secret(void *ctx, int64_t id, const char *what, uint8_t **sealed, size_t *len,
                     ck_error *err)
{
    (void)ctx, (void)id, (void)what, (void)err;
    *sealed = NULL;
    *len = 0;
    return 0;
}

static void test_first_acme_account_stays(void **state)
{
    struct tenant_store *f = *state;
    static const uint8_t first_key[] = {1, 1, 1}, second_key[] = {2, 2, 2};
    struct ck_issuer is = {.tenant_id = f->tenant_id,
                           .name = "le",
                           .type = "acme",
                           .directory_url = "https://127.0.0.1:14000/dir"};
    struct ck_issuer got = {0};
    ck_error err = {0};
    assert_int_equal(ck_store_issuer_create(f->db.st, &is, no_secret, NULL, &err), 0);
    assert_int_equal(ck_store_issuer_set_account(f->db.st, f->tenant_id, is.id, "https://ca/acct/1",
                                                 first_key, sizeof(first_key), &err),
                     0);
    assert_error(ck_store_issuer_set_account(f->db.st, f->tenant_id, is.id, "https://ca/acct/2",
                                             second_key, sizeof(second_key), &err),
                 &err, 409, "account_exists");
    assert_int_equal(ck_store_issuer_get(f->db.st, f->tenant_id, "le", &got, &err), 0);
    assert_string_equal(got.account_url, "https://ca/acct/1");
    assert_memory_equal(got.sealed_account_key, first_key, sizeof(first_key));
    ck_issuer_free(&got);
    assert_error(ck_store_issuer_set_account(f->db.st, f->tenant_id, is.id + 100,
                                             "https://ca/acct/3", second_key, sizeof(second_key),
                                             &err),
                 &err, 404, "not_found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_csr_job_queues_issue_with_csr_ready, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_csr_ready_then_is_one_transaction, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_recover_queues_missing_issue_job_once, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_recover_takes_a_batch_at_a_time, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_stage_and_deploy_write_their_jobs, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_order_create_event, setup, tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_event_add_once, setup, tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_job_end_fails_its_order, setup, tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_job_end_leaves_a_closed_order, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_job_end_queues_next_and_event, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_import_accept_is_one_transaction, setup,
                                        tenant_store_teardown),
        cmocka_unit_test_setup_teardown(test_first_acme_account_stays, setup,
                                        tenant_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
