/* Finding a zone's authoritative servers through the system resolver, for the propagation check
 * when no --check-servers are given. The only code here that reads /etc/resolv.conf. */
#include "issuers/dns/dns_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define MAX_AUTHORITATIVE 16
#define SYSTEM_TIMEOUT_S  3

/* The SOA that encloses fqdn: in the answer when fqdn is the apex, else in the authority section
 * of the negative answer. NULL when none came back. */
static ldns_rdf *enclosing_zone(ldns_resolver *res, const char *fqdn)
{
    ldns_rdf *name = ldns_dname_new_frm_str(fqdn), *zone = NULL;
    ldns_pkt *answer = NULL;
    if (name == NULL)
        return NULL;
    answer = ldns_resolver_query(res, name, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, LDNS_RD);
    if (answer == NULL)
        goto cleanup;
    const ldns_rr_list *sections[] = {ldns_pkt_answer(answer), ldns_pkt_authority(answer)};
    for (size_t s = 0; s < CK_ARRAY_LEN(sections) && zone == NULL; s++)
        for (size_t i = 0; i < ldns_rr_list_rr_count(sections[s]) && zone == NULL; i++) {
            const ldns_rr *rr = ldns_rr_list_rr(sections[s], i);
            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
                zone = ldns_rdf_clone(ldns_rr_owner(rr));
        }
cleanup:
    ldns_pkt_free(answer);
    ldns_rdf_deep_free(name);
    return zone;
}

static void add_addresses(ldns_resolver *res, const ldns_rdf *ns_name, struct ck_dns_server *out,
                          size_t *n)
{
    ldns_rr_list *addrs =
        ldns_get_rr_list_addr_by_name(res, (ldns_rdf *)ns_name, LDNS_RR_CLASS_IN, LDNS_RD);
    for (size_t i = 0; i < ldns_rr_list_rr_count(addrs) && *n < MAX_AUTHORITATIVE; i++) {
        char *text = ldns_rdf2str(ldns_rr_a_address(ldns_rr_list_rr(addrs, i)));
        if (text != NULL && strlen(text) < sizeof(out[*n].host)) {
            snprintf(out[*n].host, sizeof(out[*n].host), "%s", text);
            out[*n].port = CK_DNS_DEFAULT_PORT;
            (*n)++;
        }
        free(text);
    }
    ldns_rr_list_deep_free(addrs);
}

int ck_dns_find_authoritative(const char *fqdn, struct ck_dns_server **out, size_t *n,
                              ck_error *err)
{
    int rc = -1;
    ldns_resolver *res = NULL;
    ldns_rdf *zone = NULL;
    ldns_pkt *ns_answer = NULL;
    struct ck_dns_server *servers = calloc(MAX_AUTHORITATIVE, sizeof(*servers));
    size_t count = 0;
    if (servers == NULL || ldns_resolver_new_frm_file(&res, NULL) != LDNS_STATUS_OK) {
        ck_error_set(err, 500, "dns_resolver", "could not use the system resolver (resolv.conf)");
        goto cleanup;
    }
    ldns_resolver_set_timeout(res, (struct timeval){.tv_sec = SYSTEM_TIMEOUT_S});
    ldns_resolver_set_retry(res, 2);
    if ((zone = enclosing_zone(res, fqdn)) == NULL) {
        ck_error_set(err, 502, "dns_zone_unknown",
                     "the system resolver found no zone (SOA) enclosing %s", fqdn);
        goto cleanup;
    }
    ns_answer = ldns_resolver_query(res, zone, LDNS_RR_TYPE_NS, LDNS_RR_CLASS_IN, LDNS_RD);
    const ldns_rr_list *records = ns_answer != NULL ? ldns_pkt_answer(ns_answer) : NULL;
    for (size_t i = 0; i < ldns_rr_list_rr_count(records); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(records, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NS)
            add_addresses(res, ldns_rr_ns_nsdname(rr), servers, &count);
    }
    if (count == 0) {
        char *zone_text = ldns_rdf2str(zone);
        ck_error_set(err, 502, "dns_zone_unknown",
                     "the system resolver found no address for the name servers of zone %s; "
                     "name them with --check-servers",
                     zone_text != NULL ? zone_text : fqdn);
        free(zone_text);
        goto cleanup;
    }
    *out = servers;
    *n = count;
    servers = NULL;
    rc = 0;
cleanup:
    free(servers);
    ldns_pkt_free(ns_answer);
    ldns_rdf_deep_free(zone);
    ldns_resolver_deep_free(res);
    return rc;
}
