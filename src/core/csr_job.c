#include "core/csr_job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "core/issue_job.h"
#include "crypto/csr.h"
#include "crypto/keys.h"

/* One line in the job's log (what users read) and in the daemon's log. */
__attribute__((format(printf, 4, 5))) static void job_log(struct ck_store *st,
                                                          const struct ck_job *job,
                                                          enum ck_log_level level, const char *fmt,
                                                          ...)
{
    char line[CK_ERROR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ck_log(level, "job %lld (csr, order %lld): %s", (long long)job->id, (long long)job->order_id,
           line);
    ck_error err;
    const char *name = level == CK_LOG_ERROR ? "error" : level == CK_LOG_WARN ? "warn" : "info";
    if (ck_store_job_log(st, job->id, name, line, &err) != 0)
        ck_log(CK_LOG_WARN, "job %lld: could not store a log line: %s", (long long)job->id,
               err.message);
}

/* A new key and the CSR for the order; the key leaves this function only sealed. */
static int make_csr(struct ck_store *st, const ck_master_key *key, const struct ck_job *job,
                    const struct ck_order *o, const struct ck_enrollment *e, char **csr_pem,
                    uint8_t **sealed, size_t *sealed_len, ck_error *err)
{
    int rc = -1;
    EVP_PKEY *pkey = NULL;
    char aad[64];
    job_log(st, job, CK_LOG_INFO, "generating %s key", ck_key_type_name(o->key_type));
    if ((pkey = ck_key_generate(o->key_type, err)) == NULL)
        goto cleanup;
    const struct ck_csr_request req = {.cn = e->cn,
                                       .sans = &e->sans,
                                       .o = e->subject.o,
                                       .ou = e->subject.ou,
                                       .l = e->subject.l,
                                       .st = e->subject.st,
                                       .c = e->subject.c};
    if ((*csr_pem = ck_csr_create(pkey, &req, err)) == NULL)
        goto cleanup;
    job_log(st, job, CK_LOG_INFO, "wrote the CSR for %s with %zu name%s", e->cn, e->sans.len,
            e->sans.len == 1 ? "" : "s");
    ck_order_key_aad(o->id, aad, sizeof(aad));
    if (ck_seal_private_key(key, aad, pkey, sealed, sealed_len, err) != 0)
        goto cleanup;
    job_log(st, job, CK_LOG_INFO, "sealed the private key");
    rc = 0;
cleanup:
    EVP_PKEY_free(pkey);
    return rc;
}

/* A manual issuer's CSR waits for a person to buy the certificate: tell the tenant. Local and
 * ACME issuers go on by themselves: their issue job is queued in the same transaction, so no
 * crash can leave the order csr_ready with nothing to move it on. */
static int commit_csr(struct ck_store *st, const struct ck_job *job, const struct ck_order *o,
                      const struct ck_enrollment *e, const char *csr_pem, const uint8_t *sealed,
                      size_t sealed_len, ck_error *err)
{
    char message[CK_ERROR_MSG_MAX], data[128];
    snprintf(message, sizeof(message),
             "the CSR for %s (order %lld) is ready: buy a certificate with it and import it", e->cn,
             (long long)o->id);
    /* Where to download it: this job's csr artifact. */
    snprintf(data, sizeof(data), "{\"job_id\":%lld,\"artifact\":\"/v1/jobs/%lld/artifacts/csr\"}",
             (long long)job->id, (long long)job->id);
    const struct ck_event_new needed = {.type = "certificate_needed",
                                        .enrollment_id = o->enrollment_id,
                                        .order_id = o->id,
                                        .message = message,
                                        .data_json = data};
    const struct ck_job_new issue = {.type = CK_JOB_ISSUE};
    bool automatic = ck_issue_needed(e);
    return ck_store_order_csr_ready_then(st, o->id, job->id, job->worker, sealed, sealed_len,
                                         csr_pem, automatic ? NULL : &needed,
                                         automatic ? &issue : NULL, err);
}

/* The job fails and, in the same transaction, so does its order (a cancelled order, or one
 * that left "new", stays as it is). */
static void record_failure(struct ck_store *st, const struct ck_job *job, const ck_error *why)
{
    ck_error err;
    job_log(st, job, CK_LOG_ERROR, "%s", why->message);
    const struct ck_job_end end = {
        .worker = job->worker,
        .state = CK_JOB_FAILED,
        .error = why->message,
        .fail_order =
            job->order_id > 0 && strcmp(why->code, "order_not_new") != 0 ? why->message : NULL};
    if (ck_store_job_end(st, job->id, &end, &err) != 0)
        ck_log(CK_LOG_WARN, "job %lld: could not mark it failed: %s", (long long)job->id,
               err.message);
}

int ck_csr_job_run(struct ck_store *st, const ck_master_key *key, const struct ck_job *job)
{
    int rc = -1;
    ck_error err = {0};
    struct ck_order o = {0};
    struct ck_enrollment e = {0};
    char *csr_pem = NULL;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    if (ck_store_order_get(st, job->tenant_id, job->order_id, &o, &err) != 0)
        goto cleanup;
    if (o.state != CK_ORDER_NEW) {
        ck_error_set(&err, 409, "order_not_new", "order %lld is %s, so it gets no new CSR",
                     (long long)o.id, ck_order_state_name(o.state));
        goto cleanup;
    }
    if (ck_store_enrollment_get(st, job->tenant_id, o.enrollment_name, &e, &err) != 0 ||
        make_csr(st, key, job, &o, &e, &csr_pem, &sealed, &sealed_len, &err) != 0 ||
        commit_csr(st, job, &o, &e, csr_pem, sealed, sealed_len, &err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    if (rc != 0)
        record_failure(st, job, &err);
    OPENSSL_free(sealed);
    free(csr_pem);
    ck_enrollment_free(&e);
    ck_order_free(&o);
    return rc;
}
