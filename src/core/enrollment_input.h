/* enrollment_input.h — enrollments from and to the API's JSON (docs/API.md, "Enrollments").
 *
 * Parsing is strict: only the documented keys, each with its type, every name checked
 * (core/names.h), and every problem found in one pass reported at once where that is cheap.
 * A failed parse leaves the output untouched. */
#ifndef CK_CORE_ENROLLMENT_INPUT_H
#define CK_CORE_ENROLLMENT_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"
#include "core/model.h"
#include "crypto/x509info.h"

/* Every problem found in one request. */
struct ck_input_errors {
    ck_error first;  /* the first problem: its status (400 unless a pre-fill failed), code, text */
    size_t count;    /* how many problems */
    json_t *details; /* [{"code","message"}, ...] for every problem; NULL while count is 0 */
};
void ck_input_errors_add(struct ck_input_errors *errs, const ck_error *problem);
void ck_input_errors_free(struct ck_input_errors *errs);

/* Seconds the pre-fill from a live host may take. */
#define CK_PREFILL_TIMEOUT_MS 10000

/* A create request (POST /v1/enrollments). Defaults: key type rsa-2048, validation dv, issuer
 * manual. Pre-fill comes from the body's from_pem, or from_host (+ from_sni), or else
 * from_host_query (the URL's ?from_host=, may be NULL); the body's own fields win over it.
 * Fills *out (tenant_id is left 0 for the caller) and returns 0, or returns -1 with errs set. */
int ck_enrollment_input_create(const json_t *body, const char *from_host_query,
                               struct ck_enrollment *out, struct ck_input_errors *errs);
/* The same, with a pre-fill from a live host that gives up as soon as cancel_fd turns readable
 * (ck_fetch_peer_certificate_cancellable; -1 never cancels). */
int ck_enrollment_input_create_cancellable(const json_t *body, const char *from_host_query,
                                           int cancel_fd, struct ck_enrollment *out,
                                           struct ck_input_errors *errs);

/* Whether ck_enrollment_input_create(body, from_host_query, ...) would connect to a live host
 * (a from_host string in the body, or else a non-empty from_host_query): such a call may take up
 * to CK_PREFILL_TIMEOUT_MS, so the API runs it off the event loop. */
bool ck_enrollment_input_needs_network(const json_t *body, const char *from_host_query);

/* A PATCH request: any creatable field except name and the pre-fill ones. Subject and policy
 * are merged key by key (null clears a key); sans replaces the list (the CN is added back).
 * Changes *e only on success. */
int ck_enrollment_input_update(const json_t *body, struct ck_enrollment *e,
                               struct ck_input_errors *errs);

/* Copies what a certificate says into e: CN (or its first DNS SAN when the subject has no
 * usable CN), DNS SANs, O/OU/L/ST/C and the key type (rsa-2048 when the certificate's type is
 * not allowed, e.g. rsa-1024). Values that would not pass the input checks are left out. */
int ck_enrollment_prefill_from_cert(const struct ck_cert_info *info, struct ck_enrollment *e,
                                    ck_error *err);

/* The docs/API.md enrollment JSON. NULL only when out of memory. */
json_t *ck_enrollment_to_json(const struct ck_enrollment *e);

#endif
