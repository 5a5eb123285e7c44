/* cert_accept.h — the one path by which a certificate reaches an order, whatever its source: an
 * import by a person, certkeep's local CA, an ACME CA (docs/DESIGN.md, "one install path").
 *
 * Two steps, so that a caller can record the verdict between them (the import API records an
 * "import" job, the issue job writes its own log): ck_cert_check runs every check of
 * core/import_check.h against the system's roots, the tenant's roots and the issuer's own root;
 * ck_cert_accept then moves the order on with the certificate and the tenant's event in one
 * transaction (ck_cert_accept_import: with the import job's record too). */
#ifndef CK_CORE_CERT_ACCEPT_H
#define CK_CORE_CERT_ACCEPT_H

#include <stdint.h>

#include "common/error.h"
#include "core/import_check.h"
#include "core/model.h"
#include "crypto/seal.h"
#include "store/store.h"

/* A certificate offered to an order. */
struct ck_cert_offer {
    const char *cert_pem;        /* the leaf (a whole chain is tolerated, see import_check.h) */
    const char *chain_pem;       /* NULL or empty for none */
    const char *extra_roots_pem; /* trusted besides the system's and the tenant's roots: the
                                    local CA's root; NULL for none */
    const STACK_OF(X509) * system_roots; /* parsed once by the caller; NULL: read them now */
    int64_t now;
};

/* The system's roots (system_roots, or read from the system when NULL), the tenant's roots and
 * extra_roots_pem (may be NULL). Caller frees with X509_STORE_free. */
X509_STORE *ck_cert_trust_store(struct ck_store *st, int64_t tenant_id,
                                const STACK_OF(X509) * system_roots, const char *extra_roots_pem,
                                ck_error *err);

/* Runs every import check of the offer against order o into *res (zero it first; free it with
 * ck_import_result_free, also after a failure). Returns 0 when the checks ran — the verdict is
 * res->errors.len == 0 — and -1 when they could not (the order's key does not open, the trust
 * store cannot be built). */
int ck_cert_check(struct ck_store *st, const ck_master_key *mk, const struct ck_order *o,
                  const struct ck_cert_offer *offer, struct ck_import_result *res, ck_error *err);

/* Moves order o from state `from` to awaiting_ack (when res has warnings) or issued, with the
 * certificate, its chain and the findings written on it and the event "warnings_to_acknowledge"
 * or "certificate_issued", in one transaction. res must hold no errors. 409
 * "order_state_changed" when the order left `from` meanwhile. */
int ck_cert_accept(struct ck_store *st, const struct ck_order *o, enum ck_order_state from,
                   const struct ck_import_result *res, ck_error *err);

/* ck_cert_accept for an import: the finished "import" job with its log (store.h
 * ck_store_import_accept) is written in the same transaction; *import_job_id gets its id. With
 * log NULL it is ck_cert_accept. */
int ck_cert_accept_import(struct ck_store *st, const struct ck_order *o, enum ck_order_state from,
                          const struct ck_import_result *res, const struct ck_import_log *log,
                          int64_t *import_job_id, ck_error *err);

/* "code: message" for finding i of res: errors first, then warnings; *level is "error" or
 * "warn". Writes at most len bytes into buf. */
void ck_cert_finding_line(const struct ck_import_result *res, size_t i, const char **level,
                          char *buf, size_t len);

#endif
