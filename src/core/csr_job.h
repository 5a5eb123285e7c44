/* csr_job.h — the "csr" job: a fresh private key for an order, its CSR, and the key sealed
 * under the master key, committed in one transaction (store.h, ck_store_order_csr_ready). */
#ifndef CK_CORE_CSR_JOB_H
#define CK_CORE_CSR_JOB_H

#include "core/model.h"
#include "crypto/seal.h"
#include "store/store.h"

/* Runs a claimed csr job to its end. On success the order is csr_ready and the job finished;
 * on failure the job is failed and the order failed, both with the reason, which the job's log
 * also records. The private key lives only in this call and is freed right after sealing.
 * Returns 0 or -1. */
int ck_csr_job_run(struct ck_store *st, const ck_master_key *key, const struct ck_job *job);

#endif
