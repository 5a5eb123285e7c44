/* issue_job.h — the "issue" job: get an order's certificate from the enrollment's issuer, then
 * hand it to the one install path (core/cert_accept.h) like an import.
 *
 * local: the tenant's (else the shared) local CA signs the order's CSR for the policy's
 * lifetime (90 days by default): csr_ready -> issued.
 *
 * acme: csr_ready -> pending_validation, then the ACME client (issuers/acme/acme.h) one step at
 * a time, its state stored on the order after every step so that a job started again (after a
 * restart, a wait, or `order dns-published`) continues with the same ACME order. Challenges are
 * provisioned by dns-01 (issuers/dns/dns01.h, with the propagation check) or http-01 (tokens in
 * the store for the edge's HTTP listener); manual dns-01 adds a "dns_records_needed" event with
 * the zone lines and ends the job until the user confirms. A wait longer than the job may hold
 * its worker queues a new issue job instead. Then pending_validation -> issued.
 *
 * The account key is created on first use (P-256) and stored sealed with the issuer (AAD
 * "certkeep/issuer/<id>/account-key"). */
#ifndef CK_CORE_ISSUE_JOB_H
#define CK_CORE_ISSUE_JOB_H

#include <jansson.h>
#include <openssl/x509.h>

#include "core/model.h"
#include "crypto/seal.h"
#include "store/store.h"

/* Lifetime of a local CA certificate when the policy sets none. */
#define CK_ISSUE_LOCAL_LIFETIME_DEFAULT (90 * 86400)
/* A certificate issued for fewer days than this (import_check.c's expires_soon horizon) was asked
 * for that way: its expires_soon warning is logged, not left for a person to acknowledge. */
#define CK_ISSUE_SHORT_LIFETIME_DAYS 30
/* How long one issue job may hold its worker before it hands over to a new job (its lease is
 * renewed meanwhile, jobs.h): other orders' jobs get the worker in between. */
#define CK_ISSUE_JOB_BUDGET_SECONDS 200
/* How long the propagation check waits for every server to answer the TXT record. */
#define CK_ISSUE_DNS_CHECK_MS 60000

/* True when the enrollment's issuer needs an issue job after its csr job: anything but manual. */
bool ck_issue_needed(const struct ck_enrollment *e);

/* What an order's stored ACME state shows a person (the order JSON's "validation"): {"step",
 * "order_url", "records": [{"name", "type", "record", "value"}], "problem"} where a dns-01
 * record is the TXT name and value to publish and an http-01 one the token's path and body.
 * JSON null when there is no state (or it does not parse). Never NULL. */
json_t *ck_issue_validation_json(const char *acme_state_json);

/* Runs a claimed issue job. On success the job is finished (the order issued, awaiting_ack, or
 * waiting for the user's DNS records or for a new job); on failure the job is failed and the
 * order failed with the reason (the CA's problem document as it sent it), except for rate limits
 * and transient failures, which wait instead. system_roots: the system's trusted roots parsed
 * once by the caller (NULL: the certificate check reads them). Returns 0 or -1. */
int ck_issue_job_run(struct ck_store *st, const ck_master_key *key,
                     const STACK_OF(X509) * system_roots, const struct ck_job *job);

#endif
