/* issue_internal.h — private to issue_job.c and issue_acme.c: one issue job's context. */
#ifndef CK_CORE_ISSUE_INTERNAL_H
#define CK_CORE_ISSUE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/log.h"
#include "core/model.h"
#include "crypto/seal.h"
#include "store/store.h"

struct ck_issue_ctx {
    struct ck_store *st;
    const ck_master_key *mk;
    const struct ck_job *job;
    const STACK_OF(X509) * system_roots; /* NULL: the check reads the system's roots itself */
    struct ck_order order;
    struct ck_enrollment enrollment;
    struct ck_issuer issuer;
    int64_t started_at; /* ck_clock_now() when the job began: its budget counts from here */
    bool job_ended;     /* the job was ended with what follows it (ck_store_job_end) */
};

/* One line in the job's log (what users read) and in the daemon's log. */
void ck_issue_log(struct ck_issue_ctx *c, enum ck_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Offers the certificate to the order through core/cert_accept.h, logging every finding; a
 * refused certificate is a 502 "certificate_refused" naming the first error. */
int ck_issue_accept(struct ck_issue_ctx *c, enum ck_order_state from, const char *cert_pem,
                    const char *extra_roots_pem, ck_error *err);

/* The acme issuer's part of the job (issue_job.h). Returns 0 when the job ends well (issued, or
 * waiting for the user or for a new job), -1 with err set otherwise. An err code
 * "dns_not_published" fails the job but leaves the order waiting. */
int ck_issue_acme(struct ck_issue_ctx *c, ck_error *err);

#endif
