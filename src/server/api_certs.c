/* Certificates of orders: import one bought with the order's CSR (every check of
 * core/import_check.h), acknowledge its warnings, download it with its chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "core/cert_accept.h"
#include "core/import_check.h"
#include "server/server.h"

static int order_for(struct ck_request *r, struct ck_order *o, ck_error *err)
{
    int64_t id;
    if (ck_http_param_id(r, 0, "order", &id, err) != 0)
        return -1;
    return ck_store_order_get(r->daemon->store, r->caller.tenant_id, id, o, err);
}

/* The import job's log: one line per finding, then the summary. A refused certificate is
 * recorded alone; an accepted one with the order's move, in one transaction. */
static int record_import(struct ck_request *r, const struct ck_order *o,
                         const struct ck_import_result *res, ck_error *err)
{
    size_t n = res->errors.len + res->warnings.len;
    const char **levels = calloc(n + 1, sizeof(*levels));
    char **lines = calloc(n + 1, sizeof(*lines));
    char summary[160];
    int rc = -1;
    int64_t job_id;
    for (size_t i = 0; levels != NULL && lines != NULL && i < n; i++) {
        char line[CK_ERROR_MSG_MAX + 64];
        ck_cert_finding_line(res, i, &levels[i], line, sizeof(line));
        if ((lines[i] = strdup(line)) == NULL)
            goto cleanup;
    }
    if (levels == NULL || lines == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory recording the import");
        goto cleanup;
    }
    if (res->errors.len > 0)
        snprintf(summary, sizeof(summary), "certificate refused: %zu error%s, %zu warning%s",
                 res->errors.len, res->errors.len == 1 ? "" : "s", res->warnings.len,
                 res->warnings.len == 1 ? "" : "s");
    else
        snprintf(summary, sizeof(summary), "certificate accepted with %zu warning%s",
                 res->warnings.len, res->warnings.len == 1 ? "" : "s");
    const struct ck_import_log log = {
        .levels = levels, .lines = (const char *const *)lines, .n_lines = n, .summary = summary};
    if (res->errors.len > 0)
        rc = ck_store_import_job_record(r->daemon->store, r->caller.tenant_id, o->id, false,
                                        log.levels, log.lines, n, summary, &job_id, err);
    else
        rc =
            ck_cert_accept_import(r->daemon->store, o, CK_ORDER_CSR_READY, res, &log, &job_id, err);
cleanup:
    for (size_t i = 0; lines != NULL && i < n; i++)
        free(lines[i]);
    free(lines);
    free(levels);
    return rc;
}

/* 422: the certificate was refused; the order is as it was. The errors appear twice: as the
 * error's details (what every client prints) and beside the warnings (what import clients read). */
static void reply_rejected(struct ck_request *r, const struct ck_import_result *res)
{
    char message[96];
    snprintf(message, sizeof(message), "the certificate was refused: %zu error%s", res->errors.len,
             res->errors.len == 1 ? "" : "s");
    json_t *errors = ck_findings_to_json(&res->errors);
    json_t *warnings = ck_findings_to_json(&res->warnings);
    json_t *doc = NULL;
    if (errors != NULL && warnings != NULL)
        doc = json_pack("{s:{s:s,s:s,s:O},s:O,s:O}", "error", "code", "certificate_rejected",
                        "message", message, "details", errors, "errors", errors, "warnings",
                        warnings);
    json_decref(errors);
    json_decref(warnings);
    ck_http_reply_json(r, 422, doc);
}

static int reply_accepted(struct ck_request *r, int64_t order_id,
                          const struct ck_import_result *res, ck_error *err)
{
    json_t *order = ck_order_json_get(r->daemon->store, r->caller.tenant_id, order_id, err);
    if (order == NULL)
        return -1;
    ck_http_reply_json(r, 200,
                       json_pack("{s:o,s:o,s:o}", "order", order, "errors", json_array(),
                                 "warnings", ck_findings_to_json(&res->warnings)));
    return 0;
}

/* Reads the request: certificate (required) and chain (optional) as PEM text. */
static int import_request(struct ck_request *r, json_t **body, const char **cert,
                          const char **chain, ck_error *err)
{
    static const char *const keys[] = {"certificate", "chain"};
    if (ck_http_body_object(r, body, err) != 0 ||
        ck_json_only_keys(*body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        ck_json_string_field(*body, "certificate", true, cert, err) != 0 ||
        ck_json_string_field(*body, "chain", false, chain, err) != 0)
        return -1;
    return 0;
}

int ck_api_order_import(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_order o = {0};
    struct ck_import_result res = {0};
    const char *cert = NULL, *chain = NULL;
    if (import_request(r, &body, &cert, &chain, err) != 0 || order_for(r, &o, err) != 0)
        goto cleanup;
    if (o.state != CK_ORDER_CSR_READY) {
        ck_error_set(err, 409, "order_not_csr_ready",
                     "order %lld is %s: a certificate is imported only while it is csr_ready",
                     (long long)o.id, ck_order_state_name(o.state));
        goto cleanup;
    }
    const struct ck_cert_offer offer = {.cert_pem = cert,
                                        .chain_pem = chain,
                                        .system_roots = r->daemon->system_roots,
                                        .now = ck_clock_now()};
    if (ck_cert_check(r->daemon->store, &r->daemon->master_key, &o, &offer, &res, err) != 0 ||
        record_import(r, &o, &res, err) != 0)
        goto cleanup;
    if (res.errors.len > 0) {
        reply_rejected(r, &res);
        rc = 0;
        goto cleanup;
    }
    rc = reply_accepted(r, o.id, &res, err);
cleanup:
    ck_import_result_free(&res);
    ck_order_free(&o);
    json_decref(body);
    return rc;
}

int ck_api_order_acknowledge(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_order o = {0};
    char message[CK_ERROR_MSG_MAX];
    if (ck_http_body_object(r, &body, err) != 0 || ck_json_only_keys(body, NULL, 0, err) != 0 ||
        order_for(r, &o, err) != 0)
        goto cleanup;
    if (o.state != CK_ORDER_AWAITING_ACK) {
        ck_error_set(err, 409, "order_not_awaiting_ack",
                     "order %lld is %s: only an order in awaiting_ack has warnings to acknowledge",
                     (long long)o.id, ck_order_state_name(o.state));
        goto cleanup;
    }
    snprintf(message, sizeof(message),
             "the certificate for order %lld (%s) is issued; its warnings were acknowledged",
             (long long)o.id, o.enrollment_name ? o.enrollment_name : "?");
    const struct ck_event_new event = {.type = "certificate_issued",
                                       .enrollment_id = o.enrollment_id,
                                       .order_id = o.id,
                                       .message = message};
    if (ck_store_order_transition(r->daemon->store, r->caller.tenant_id, o.id,
                                  CK_ORDER_AWAITING_ACK, CK_ORDER_ISSUED, NULL, &event, err) != 0)
        goto cleanup;
    json_t *order = ck_order_json_get(r->daemon->store, r->caller.tenant_id, o.id, err);
    if (order == NULL)
        goto cleanup;
    ck_http_reply_json(r, 200, order);
    rc = 0;
cleanup:
    ck_order_free(&o);
    json_decref(body);
    return rc;
}

static bool has_certificate(enum ck_order_state s)
{
    return s == CK_ORDER_ISSUED || s == CK_ORDER_STAGED || s == CK_ORDER_DEPLOYED ||
           s == CK_ORDER_SUPERSEDED;
}

int ck_api_order_certificate(struct ck_request *r, ck_error *err)
{
    struct ck_order o = {0};
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    if (order_for(r, &o, err) != 0)
        goto cleanup;
    if (!has_certificate(o.state) || o.cert_pem == NULL) {
        ck_error_set(err, 409, "certificate_not_ready",
                     "order %lld is %s: its certificate is available once it is issued",
                     (long long)o.id, ck_order_state_name(o.state));
        goto cleanup;
    }
    FILE *out = open_memstream(&text, &len);
    if (out != NULL)
        fprintf(out, "%s%s", o.cert_pem, o.chain_pem ? o.chain_pem : "");
    if (out == NULL || fclose(out) != 0) {
        ck_error_set(err, 500, "out_of_memory", "out of memory writing the certificate");
        goto cleanup;
    }
    ck_http_reply_bytes(r, 200, "application/pem-certificate-chain", text, len);
    rc = 0;
cleanup:
    free(text);
    ck_order_free(&o);
    return rc;
}
