/* edge_jobs.h — the jobs around the edge, run by the job runner's workers:
 *
 *   staging_test  params {"address": "IP:PORT"}: for each name of the order's enrollment, a TLS
 *                 connection to that staging listener with the name as SNI, the served
 *                 certificate the order's (waited for: a stage by the scheduler or another
 *                 daemon reaches the listener within a second), the chain verified against the
 *                 system roots, the tenant's roots and the local CA's root, the host name
 *                 checked, and `GET /` answered `OK`. One log line per name; event
 *                 "staging_test_passed" or "staging_test_failed".
 *   probe         params {"address": "IP:PORT"}: the production listener serves the order's
 *                 certificate (same serial and notAfter) for each name; logs the new expiry date
 *                 and whether the chain verifies against the same roots.
 *   stage, deploy the order's certificate written to the enrollment's file targets of that
 *                 environment (core/target.h), each checked at its probe endpoint.
 *
 * A wildcard name "*.example.com" is tested as "certkeep-test.example.com". */
#ifndef CK_CORE_EDGE_JOBS_H
#define CK_CORE_EDGE_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/model.h"
#include "crypto/seal.h"
#include "store/store.h"

#define CK_EDGE_TEST_LABEL     "certkeep-test"
#define CK_EDGE_JOB_TIMEOUT_MS 5000 /* for each TLS connection */
#define CK_EDGE_PROBE_ATTEMPTS 10   /* a production listener of another daemon may lag 1 s */
#define CK_EDGE_PROBE_PAUSE_MS 300

/* The name to put in SNI and hosts files for an enrollment's name: a wildcard's first label
 * becomes CK_EDGE_TEST_LABEL. Truncated to len. */
void ck_edge_test_name(const char *name, char *out, size_t len);

/* Whether ck_edge_job_run runs this type. */
bool ck_edge_job_handles(enum ck_job_type type);

/* Runs the job and finishes it (finished or failed) in the store. */
void ck_edge_job_run(struct ck_store *st, const ck_master_key *key, const struct ck_job *job);

#endif
