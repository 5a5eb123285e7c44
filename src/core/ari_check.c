/* ari_check.c — one ACME Renewal Information check of a production certificate (ari_check.h). */
#include "core/ari_check.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "issuers/acme/acme.h"

/* Asks the CA; fills out (offered, cert_id, window or last_error) and *retry_after_s. */
static void ask_ca(const struct ck_issuer *issuer, const struct ck_ari_check_input *in,
                   struct ck_ari_status *out, int64_t *retry_after_s)
{
    const struct ck_acme_client_options opt = {.directory_url = issuer->directory_url,
                                               .ca_pem = issuer->ca_bundle_pem,
                                               .timeout_seconds = CK_ARI_CHECK_TIMEOUT_S};
    struct ck_acme_renewal_info ri = {.retry_after_s = -1};
    ck_error why = {0};
    struct ck_acme_client *client = ck_acme_client_new(&opt, &why);
    int offered = client != NULL ? ck_acme_ari_offered(client, &why) : -1;
    out->offered = offered == 1;
    if (offered == 1 && ck_acme_ari_cert_id(in->cert_pem, &out->cert_id, &why) == 0 &&
        ck_acme_renewal_info(client, out->cert_id, &ri, &why) == 0) {
        out->has_window = true;
        out->window_start = ri.window_start;
        out->window_end = ri.window_end;
        out->explanation_url = ri.explanation_url;
        ri.explanation_url = NULL;
    } else if (offered != 0) {
        out->last_error = ck_strdup(why.message[0] != '\0' ? why.message : "unknown error");
    }
    *retry_after_s = ri.retry_after_s;
    ck_acme_renewal_info_free(&ri);
    ck_acme_client_free(client);
}

static void log_result(const struct ck_ari_check_input *in, const struct ck_ari_status *a)
{
    char start[32], end[32], next[32];
    ck_time_format(a->next_check_at, next, sizeof(next));
    if (a->has_window) {
        ck_time_format(a->window_start, start, sizeof(start));
        ck_time_format(a->window_end, end, sizeof(end));
        ck_log(CK_LOG_INFO,
               "ari: order %lld (%s): the CA suggests renewing between %s and %s%s%s;"
               " next check %s",
               (long long)in->order_id, a->cert_id, start, end, a->explanation_url ? ", see " : "",
               a->explanation_url ? a->explanation_url : "", next);
    } else if (a->last_error != NULL) {
        ck_log(CK_LOG_WARN, "ari: order %lld: no renewal information: %s; next check %s",
               (long long)in->order_id, a->last_error, next);
    } else {
        ck_log(CK_LOG_DEBUG, "ari: order %lld: issuer %s offers no renewalInfo; next check %s",
               (long long)in->order_id, in->issuer, next);
    }
}

int ck_ari_check(struct ck_store *st, const struct ck_ari_check_input *in,
                 struct ck_ari_status *out, ck_error *err)
{
    struct ck_issuer issuer = {0};
    ck_error why = {0};
    int64_t retry_after_s = -1;
    memset(out, 0, sizeof(*out));
    int claimed =
        ck_store_ari_claim(st, in->order_id, in->now, in->now + CK_ARI_CHECK_LEASE_S, err);
    if (claimed != 1)
        return claimed;
    out->order_id = in->order_id;
    if (ck_store_issuer_get(st, in->tenant_id, in->issuer, &issuer, &why) != 0)
        out->last_error = ck_strdup(why.message);
    else
        ask_ca(&issuer, in, out, &retry_after_s);
    out->checked_at = in->now;
    out->next_check_at = ck_acme_ari_next_check(in->now, retry_after_s);
    ck_issuer_free(&issuer);
    if (ck_store_ari_save(st, out, err) != 0) {
        ck_ari_status_free(out);
        return -1;
    }
    log_result(in, out);
    return 1;
}
