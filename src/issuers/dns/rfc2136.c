/* dns-01 by RFC 2136 dynamic update, signed with TSIG (RFC 8945), sent to the zone's primary. */
#include "issuers/dns/dns_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define TSIG_MIN_SECRET_BYTES 16
#define MAX_TTL               86400

/* TSIG rdata fields as ldns orders them: algorithm, time, fudge, MAC, original id, error, other. */
#define TSIG_RDF_ERROR 5

static const char *tsig_alg_dname(const char *alg)
{
    if (alg == NULL)
        return NULL;
    if (strcasecmp(alg, "hmac-sha256") == 0)
        return "hmac-sha256.";
    if (strcasecmp(alg, "hmac-sha384") == 0)
        return "hmac-sha384.";
    if (strcasecmp(alg, "hmac-sha512") == 0)
        return "hmac-sha512.";
    return NULL;
}

/* Decoded length of a base64 secret, or -1 when it is not base64. */
static int base64_decoded_len(const char *b64)
{
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > 1024)
        return -1;
    unsigned char buf[768];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (n < 0)
        return -1;
    if (b64[len - 1] == '=')
        n -= b64[len - 2] == '=' ? 2 : 1;
    return n;
}

int ck_rfc2136_config_check(const struct ck_rfc2136_config *cfg, ck_error *err)
{
    if (cfg->primary.host[0] == '\0' || cfg->primary.port <= 0)
        return ck_error_set(err, 400, "invalid_dns_config",
                            "the zone's primary server is missing (--rfc2136 ADDR:PORT)");
    if (cfg->zone == NULL || cfg->zone[0] == '\0')
        return ck_error_set(err, 400, "invalid_dns_config", "the zone is missing (--zone)");
    ldns_rdf *zone = ldns_dname_new_frm_str(cfg->zone);
    ldns_rdf_deep_free(zone);
    if (zone == NULL)
        return ck_error_set(err, 400, "invalid_dns_config", "zone \"%s\" is not a DNS name",
                            cfg->zone);
    if (cfg->tsig_name == NULL || cfg->tsig_name[0] == '\0')
        return ck_error_set(err, 400, "invalid_dns_config",
                            "the TSIG key name is missing (--tsig-name)");
    if (tsig_alg_dname(cfg->tsig_alg) == NULL)
        return ck_error_set(err, 400, "invalid_dns_config",
                            "TSIG algorithm \"%s\" is not one of hmac-sha256, hmac-sha384, "
                            "hmac-sha512",
                            cfg->tsig_alg != NULL ? cfg->tsig_alg : "");
    int secret_len = cfg->tsig_secret_b64 != NULL ? base64_decoded_len(cfg->tsig_secret_b64) : -1;
    if (secret_len < 0)
        return ck_error_set(err, 400, "invalid_dns_config",
                            "the TSIG secret is not valid base64 (as printed by tsig-keygen)");
    if (secret_len < TSIG_MIN_SECRET_BYTES)
        return ck_error_set(err, 400, "invalid_dns_config",
                            "the TSIG secret is %d bytes; use at least %d (tsig-keygen makes 32)",
                            secret_len, TSIG_MIN_SECRET_BYTES);
    return 0;
}

/* The update section's one record: add fqdn TXT value, or delete exactly that value (RFC 2136
 * 2.5.4: class NONE, TTL 0). */
static ldns_rr *txt_update_rr(ldns_rdf *owner, const char *value, bool add, int ttl)
{
    ldns_rr *rr = ldns_rr_new();
    if (rr == NULL)
        return NULL;
    ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
    ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
    ldns_rr_set_class(rr, add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
    ldns_rr_set_ttl(rr, add ? (uint32_t)ttl : 0);
    if (ldns_rr_owner(rr) == NULL || ck_dns_txt_push_value(rr, value) != 0) {
        ldns_rr_free(rr);
        return NULL;
    }
    return rr;
}

static const char *tsig_error_name(const ldns_pkt *answer)
{
    const ldns_rr *tsig = ldns_pkt_tsig(answer);
    const ldns_rdf *error = tsig != NULL ? ldns_rr_rdf(tsig, TSIG_RDF_ERROR) : NULL;
    if (error == NULL || ldns_rdf_size(error) != 2)
        return NULL;
    switch (ldns_rdf2native_int16(error)) {
    case 16:
        return "BADSIG";
    case 17:
        return "BADKEY";
    case 18:
        return "BADTIME";
    default:
        return NULL;
    }
}

static int notauth_error(const struct ck_rfc2136_config *cfg, const char *server,
                         const ldns_pkt *answer, ck_error *err)
{
    const char *tsig_error = tsig_error_name(answer);
    if (tsig_error == NULL)
        return ck_error_set(err, 502, "dns_update_refused",
                            "%s answered NOTAUTH: it is not the primary server of zone %s", server,
                            cfg->zone);
    const char *why =
        strcmp(tsig_error, "BADKEY") == 0
            ? "it does not know that key or algorithm: check --tsig-name and --tsig-alg"
        : strcmp(tsig_error, "BADTIME") == 0
            ? "the clocks of this machine and the server differ by more than 5 minutes"
            : "the signature is wrong: check --tsig-secret and --tsig-alg";
    return ck_error_set(err, 502, "dns_tsig_rejected",
                        "%s answered NOTAUTH (TSIG %s) to the update signed with key %s: %s",
                        server, tsig_error, cfg->tsig_name, why);
}

static int check_update_answer(const struct ck_rfc2136_config *cfg, const char *fqdn,
                               ldns_status status, const ldns_pkt *answer, int timeout_ms,
                               ck_error *err)
{
    char server[CK_DNS_HOST_MAX + 8];
    ck_dns_server_format(&cfg->primary, server, sizeof(server));
    if (answer == NULL)
        return ck_error_set(err, 504, "dns_timeout",
                            "%s did not answer the update for %s within %d ms (%s)", server, fqdn,
                            timeout_ms, ldns_get_errorstr_by_id(status));
    int rcode = ldns_pkt_get_rcode(answer);
    switch (rcode) {
    case LDNS_RCODE_NOERROR:
        if (status == LDNS_STATUS_CRYPTO_TSIG_BOGUS || ldns_pkt_tsig(answer) == NULL)
            return ck_error_set(err, 502, "dns_tsig_rejected",
                                "%s answered the update, but its answer is not signed with key "
                                "%s; the change may or may not have been made",
                                server, cfg->tsig_name);
        return 0;
    case LDNS_RCODE_NOTAUTH:
        return notauth_error(cfg, server, answer, err);
    case LDNS_RCODE_REFUSED:
        return ck_error_set(err, 502, "dns_update_refused",
                            "%s answered REFUSED: key %s may not update %s in zone %s (check the "
                            "zone's update policy)",
                            server, cfg->tsig_name, fqdn, cfg->zone);
    case LDNS_RCODE_NOTZONE:
        return ck_error_set(err, 400, "dns_update_refused",
                            "%s answered NOTZONE: %s is not inside zone %s", server, fqdn,
                            cfg->zone);
    default:
        return ck_error_set(err, 502, "dns_update_refused", "%s answered %s to the update of %s",
                            server, ck_dns_rcode_name(rcode), fqdn);
    }
}

static ldns_resolver *update_resolver(const struct ck_rfc2136_config *cfg, int timeout_ms,
                                      ck_error *err)
{
    ldns_resolver *res = ck_dns_resolver_new(&cfg->primary, timeout_ms, err);
    if (res == NULL)
        return NULL;
    ldns_resolver_set_tsig_keyname(res, cfg->tsig_name);
    ldns_resolver_set_tsig_algorithm(res, tsig_alg_dname(cfg->tsig_alg));
    ldns_resolver_set_tsig_keydata(res, cfg->tsig_secret_b64);
    return res;
}

int ck_rfc2136_txt(const struct ck_rfc2136_config *cfg, bool add, const char *fqdn,
                   const char *value, int ttl, int timeout_ms, ck_error *err)
{
    int rc = -1;
    ldns_resolver *res = NULL;
    ldns_rdf *zone = NULL, *owner = NULL;
    ldns_rr_list *updates = NULL;
    ldns_pkt *query = NULL, *answer = NULL;
    if (ck_rfc2136_config_check(cfg, err) != 0)
        goto cleanup;
    if (add && (ttl < 0 || ttl > MAX_TTL)) {
        ck_error_set(err, 400, "invalid_dns_ttl", "TTL %d is not between 0 and %d", ttl, MAX_TTL);
        goto cleanup;
    }
    zone = ldns_dname_new_frm_str(cfg->zone);
    owner = ldns_dname_new_frm_str(fqdn);
    if (owner == NULL ||
        !(ldns_dname_is_subdomain(owner, zone) || ldns_dname_compare(owner, zone) == 0)) {
        ck_error_set(err, 400, "invalid_dns_name", "%s is not a name inside zone %s", fqdn,
                     cfg->zone);
        goto cleanup;
    }
    if ((res = update_resolver(cfg, timeout_ms, err)) == NULL)
        goto cleanup;
    ldns_rr *rr = txt_update_rr(owner, value, add, ttl);
    updates = ldns_rr_list_new();
    if (rr == NULL || updates == NULL || !ldns_rr_list_push_rr(updates, rr)) {
        ldns_rr_free(rr);
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    query = ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, NULL, updates, NULL);
    if (query == NULL) {
        ck_error_set(err, 500, "dns_internal", "could not build the update for %s", fqdn);
        goto cleanup;
    }
    zone = NULL; /* the packet owns it */
    ldns_pkt_set_rd(query, false);
    ldns_pkt_set_random_id(query);
    if (ldns_update_pkt_tsig_add(query, res) != LDNS_STATUS_OK) {
        ck_error_set(err, 500, "dns_internal", "could not sign the update with key %s",
                     cfg->tsig_name);
        goto cleanup;
    }
    /* ldns_send, not ldns_resolver_send_pkt: the latter drops an answer whose TSIG does not
     * verify, and a rejected key comes back exactly so (NOTAUTH with an unsigned TSIG error). */
    ldns_status status = ldns_send(&answer, res, query);
    rc = check_update_answer(cfg, fqdn, status, answer, timeout_ms, err);
cleanup:
    ldns_pkt_free(answer);
    ldns_pkt_free(query);
    ldns_rr_list_deep_free(updates);
    ldns_rdf_deep_free(owner);
    ldns_rdf_deep_free(zone);
    ldns_resolver_deep_free(res);
    return rc;
}
