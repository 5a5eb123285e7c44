#include "core/issue_job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "common/clock.h"
#include "common/duration.h"
#include "core/cert_accept.h"
#include "core/issue_internal.h"
#include "issuers/local_ca.h"

bool ck_issue_needed(const struct ck_enrollment *e)
{
    return e->issuer != NULL && strcmp(e->issuer, "manual") != 0;
}

void ck_issue_log(struct ck_issue_ctx *c, enum ck_log_level level, const char *fmt, ...)
{
    char line[CK_ERROR_MSG_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ck_log(level, "job %lld (issue, order %lld): %s", (long long)c->job->id,
           (long long)c->job->order_id, line);
    ck_error err;
    const char *name = level == CK_LOG_ERROR ? "error" : level == CK_LOG_WARN ? "warn" : "info";
    if (ck_store_job_log(c->st, c->job->id, name, line, &err) != 0)
        ck_log(CK_LOG_WARN, "job %lld: could not store a log line: %s", (long long)c->job->id,
               err.message);
}

/* A certificate issued for less than the expires_soon horizon was asked for that way (a policy
 * lifetime of minutes or days): its near expiry is the plan, not something to acknowledge. */
static void drop_expected_expiry(struct ck_issue_ctx *c, struct ck_import_result *res)
{
    int days = 0, secs = 0;
    if (res->leaf == NULL ||
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(res->leaf),
                       X509_get0_notAfter(res->leaf)) != 1 ||
        days >= CK_ISSUE_SHORT_LIFETIME_DAYS)
        return;
    struct ck_findings *w = &res->warnings;
    size_t kept = 0;
    for (size_t i = 0; i < w->len; i++) {
        if (strcmp(w->items[i].code, "expires_soon") == 0)
            ck_issue_log(c, CK_LOG_INFO, "%s (as the policy's lifetime asks)", w->items[i].message);
        else
            w->items[kept++] = w->items[i];
    }
    w->len = kept;
}

int ck_issue_accept(struct ck_issue_ctx *c, enum ck_order_state from, const char *cert_pem,
                    const char *extra_roots_pem, ck_error *err)
{
    struct ck_import_result res = {0};
    int rc = -1;
    const struct ck_cert_offer offer = {.cert_pem = cert_pem,
                                        .system_roots = c->system_roots,
                                        .extra_roots_pem = extra_roots_pem,
                                        .now = ck_clock_now()};
    if (ck_cert_check(c->st, c->mk, &c->order, &offer, &res, err) != 0)
        goto cleanup;
    drop_expected_expiry(c, &res);
    for (size_t i = 0; i < res.errors.len + res.warnings.len; i++) {
        char line[CK_ERROR_MSG_MAX + 64];
        const char *level;
        ck_cert_finding_line(&res, i, &level, line, sizeof(line));
        ck_issue_log(c, level[0] == 'e' ? CK_LOG_ERROR : CK_LOG_WARN, "%s", line);
    }
    if (res.errors.len > 0) {
        ck_error_set(err, 502, "certificate_refused",
                     "the certificate issuer %s returned was refused: %s%s", c->issuer.name,
                     res.errors.items[0].message,
                     res.errors.len > 1 ? " (and more, see the log)" : "");
        goto cleanup;
    }
    if (ck_cert_accept(c->st, &c->order, from, &res, err) != 0)
        goto cleanup;
    ck_issue_log(c, CK_LOG_INFO, "certificate accepted: %s",
                 res.warnings.len > 0 ? "awaiting acknowledgement of its warnings" : "issued");
    rc = 0;
cleanup:
    ck_import_result_free(&res);
    return rc;
}

static int local_lifetime(const struct ck_enrollment *e, int64_t *seconds, ck_error *err)
{
    *seconds = CK_ISSUE_LOCAL_LIFETIME_DEFAULT;
    if (e->policy.lifetime == NULL)
        return 0;
    return ck_duration_parse(e->policy.lifetime, seconds, err);
}

static int issue_local(struct ck_issue_ctx *c, ck_error *err)
{
    struct ck_local_ca_record rec = {0};
    char *leaf = NULL;
    char aad_id[32];
    int64_t lifetime;
    int rc = -1;
    if (c->order.state != CK_ORDER_CSR_READY) {
        ck_issue_log(c, CK_LOG_INFO, "order is %s: nothing to sign",
                     ck_order_state_name(c->order.state));
        return 0;
    }
    if (local_lifetime(&c->enrollment, &lifetime, err) != 0 ||
        ck_store_local_ca_get(c->st, c->order.tenant_id, &rec, err) != 0)
        goto cleanup;
    /* Borrowed: rec keeps ownership of both fields. */
    const struct ck_local_ca ca = {.cert_pem = rec.cert_pem,
                                   .sealed_key = rec.sealed_key,
                                   .sealed_key_len = rec.sealed_key_len};
    snprintf(aad_id, sizeof(aad_id), "%lld", (long long)rec.id);
    ck_issue_log(c, CK_LOG_INFO, "signing the CSR with the %s local CA for %lld seconds",
                 rec.tenant_id == 0 ? "shared" : "tenant's", (long long)lifetime);
    if ((leaf = ck_local_ca_sign(c->mk, aad_id, &ca, c->order.csr_pem, lifetime, ck_clock_now(),
                                 err)) == NULL)
        goto cleanup;
    rc = ck_issue_accept(c, CK_ORDER_CSR_READY, leaf, rec.cert_pem, err);
cleanup:
    free(leaf);
    ck_local_ca_record_free(&rec);
    return rc;
}

/* The job fails with its order, in one transaction. The user's missing DNS records leave the
 * order waiting for the next confirmation; an order another job or request moved meanwhile
 * (issued by a job that ran at the same time, cancelled) is theirs. */
static void record_failure(struct ck_issue_ctx *c, const ck_error *why)
{
    ck_error err;
    ck_issue_log(c, CK_LOG_ERROR, "%s", why->message);
    bool order_fails = strcmp(why->code, "dns_not_published") != 0 &&
                       strcmp(why->code, "order_state_changed") != 0;
    const struct ck_job_end end = {.worker = c->job->worker,
                                   .state = CK_JOB_FAILED,
                                   .error = why->message,
                                   .fail_order = order_fails ? why->message : NULL};
    if (ck_store_job_end(c->st, c->job->id, &end, &err) != 0)
        ck_log(CK_LOG_WARN, "job %lld: could not mark it failed: %s", (long long)c->job->id,
               err.message);
}

static int load(struct ck_issue_ctx *c, ck_error *err)
{
    if (ck_store_order_get(c->st, c->job->tenant_id, c->job->order_id, &c->order, err) != 0 ||
        ck_store_enrollment_get(c->st, c->job->tenant_id, c->order.enrollment_name, &c->enrollment,
                                err) != 0)
        return -1;
    if (!ck_issue_needed(&c->enrollment))
        return ck_error_set(err, 409, "issuer_manual",
                            "enrollment %s has the manual issuer: import the certificate",
                            c->enrollment.name);
    return ck_store_issuer_get(c->st, c->job->tenant_id, c->enrollment.issuer, &c->issuer, err);
}

int ck_issue_job_run(struct ck_store *st, const ck_master_key *key,
                     const STACK_OF(X509) * system_roots, const struct ck_job *job)
{
    struct ck_issue_ctx c = {.st = st,
                             .mk = key,
                             .job = job,
                             .system_roots = system_roots,
                             .started_at = ck_clock_now()};
    ck_error err = {0};
    int rc = -1;
    if (load(&c, &err) != 0)
        goto cleanup;
    if (c.order.state != CK_ORDER_CSR_READY && c.order.state != CK_ORDER_PENDING_VALIDATION) {
        ck_issue_log(&c, CK_LOG_INFO, "order is %s: nothing to issue",
                     ck_order_state_name(c.order.state));
        rc = 0;
    } else if (strcmp(c.issuer.type, "local") == 0) {
        rc = issue_local(&c, &err);
    } else if (strcmp(c.issuer.type, "acme") == 0) {
        rc = ck_issue_acme(&c, &err);
    } else {
        ck_error_set(&err, 500, "unknown_issuer_type", "issuer %s has an unknown type %s",
                     c.issuer.name, c.issuer.type);
    }
    if (rc == 0 && !c.job_ended &&
        ck_store_job_finish(st, job->id, job->worker, CK_JOB_FINISHED, NULL, &err) != 0)
        rc = -1;
cleanup:
    if (rc != 0)
        record_failure(&c, &err);
    ck_issuer_free(&c.issuer);
    ck_enrollment_free(&c.enrollment);
    ck_order_free(&c.order);
    return rc;
}
