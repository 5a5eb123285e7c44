/* The propagation check: every authoritative server answers the TXT value before the CA is asked
 * to validate, so a slow secondary does not fail the order. */
#include "issuers/dns/dns_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_QUERY_TIMEOUT_MS 1000
#define OUTCOME_MAX            192

enum txt_outcome { TXT_PRESENT, TXT_ABSENT, TXT_NO_ANSWER };

struct server_state {
    bool present;
    char outcome[OUTCOME_MAX]; /* what the server said last, for the log and the error */
};

static enum txt_outcome describe_answer(const ldns_pkt *answer, const ldns_rdf *qname,
                                        const char *value, char *outcome, size_t len)
{
    int rcode = ldns_pkt_get_rcode(answer);
    const char *authority = ldns_pkt_aa(answer) ? "" : " (not authoritative)";
    if (rcode != LDNS_RCODE_NOERROR) {
        snprintf(outcome, len, "answered %s%s", ck_dns_rcode_name(rcode), authority);
        return TXT_ABSENT;
    }
    const ldns_rr_list *records = ldns_pkt_answer(answer);
    size_t txt_count = 0;
    for (size_t i = 0; i < ldns_rr_list_rr_count(records); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(records, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT ||
            ldns_dname_compare(ldns_rr_owner(rr), qname) != 0)
            continue;
        txt_count++;
        if (ck_dns_txt_equals(rr, value)) {
            snprintf(outcome, len, "TXT value present%s", authority);
            return TXT_PRESENT;
        }
    }
    if (txt_count == 0)
        snprintf(outcome, len, "no TXT record yet%s", authority);
    else
        snprintf(outcome, len, "%zu TXT record%s, none with the value%s", txt_count,
                 txt_count == 1 ? "" : "s", authority);
    return TXT_ABSENT;
}

static enum txt_outcome query_server(const struct ck_dns_server *server, const ldns_rdf *qname,
                                     const char *value, int timeout_ms, char *outcome, size_t len)
{
    ck_error err = {0};
    ldns_pkt *answer = NULL;
    enum txt_outcome result = TXT_NO_ANSWER;
    ldns_resolver *res = ck_dns_resolver_new(server, timeout_ms, &err);
    if (res == NULL) {
        snprintf(outcome, len, "%.150s", err.message);
        goto cleanup;
    }
    ldns_status status =
        ldns_resolver_send(&answer, res, qname, LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_IN, 0);
    if (answer == NULL) {
        snprintf(outcome, len, "no answer within %d ms (%s)", timeout_ms,
                 ldns_get_errorstr_by_id(status));
        goto cleanup;
    }
    result = describe_answer(answer, qname, value, outcome, len);
cleanup:
    ldns_pkt_free(answer);
    ldns_resolver_deep_free(res);
    return result;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void log_line(ck_dns_log_fn *log, void *log_ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_line(ck_dns_log_fn *log, void *log_ctx, const char *fmt, ...)
{
    if (log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log(log_ctx, line);
}

/* One round over the servers still missing the value; returns how many are still missing. */
static size_t check_round(const struct ck_dns_server *servers, struct server_state *states,
                          size_t n, const ldns_rdf *qname, const char *fqdn, const char *value,
                          long long deadline, int attempt, ck_dns_log_fn *log, void *log_ctx)
{
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (states[i].present)
            continue;
        long long remaining = deadline - ck_dns_now_ms();
        int timeout_ms = remaining < 1                        ? 1
                         : remaining > CHECK_QUERY_TIMEOUT_MS ? CHECK_QUERY_TIMEOUT_MS
                                                              : (int)remaining;
        char name[CK_DNS_HOST_MAX + 8];
        ck_dns_server_format(&servers[i], name, sizeof(name));
        enum txt_outcome result = query_server(&servers[i], qname, value, timeout_ms,
                                               states[i].outcome, sizeof(states[i].outcome));
        states[i].present = result == TXT_PRESENT;
        missing += !states[i].present;
        log_line(log, log_ctx, "dns check %d: %s TXT %s: %s", attempt, name, fqdn,
                 states[i].outcome);
    }
    return missing;
}

static int not_published_error(const struct ck_dns_server *servers,
                               const struct server_state *states, size_t n, const char *fqdn,
                               int max_wait_ms, ck_error *err)
{
    char detail[CK_ERROR_MSG_MAX] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof(detail); i++) {
        if (states[i].present)
            continue;
        char name[CK_DNS_HOST_MAX + 8];
        ck_dns_server_format(&servers[i], name, sizeof(name));
        int w = snprintf(detail + used, sizeof(detail) - used, "%s%s (%s)", used ? ", " : "", name,
                         states[i].outcome);
        used += w > 0 ? (size_t)w : 0;
    }
    return ck_error_set(err, 504, "dns_not_propagated",
                        "the TXT record %s was not answered after %d ms by: %s", fqdn, max_wait_ms,
                        detail);
}

int ck_dns_check_txt(const struct ck_dns_server *servers, size_t n, const char *fqdn,
                     const char *value, int max_wait_ms, ck_dns_log_fn *log, void *log_ctx,
                     ck_error *err)
{
    int rc = -1;
    struct server_state *states = NULL;
    ldns_rdf *qname = ldns_dname_new_frm_str(fqdn);
    if (qname == NULL) {
        ck_error_set(err, 400, "invalid_dns_name", "%s is not a DNS name", fqdn);
        goto cleanup;
    }
    if (n == 0) {
        ck_error_set(err, 400, "invalid_dns_server", "no DNS server to check %s on", fqdn);
        goto cleanup;
    }
    if ((states = calloc(n, sizeof(*states))) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    long long start = ck_dns_now_ms(), deadline = start + (max_wait_ms > 0 ? max_wait_ms : 0);
    for (int attempt = 1;; attempt++) {
        if (check_round(servers, states, n, qname, fqdn, value, deadline, attempt, log, log_ctx) ==
            0) {
            log_line(log, log_ctx, "dns check: all %zu server%s answer TXT %s after %lld ms", n,
                     n == 1 ? "" : "s", fqdn, ck_dns_now_ms() - start);
            rc = 0;
            goto cleanup;
        }
        if (ck_dns_now_ms() + CK_DNS_CHECK_INTERVAL_MS > deadline)
            break;
        sleep_ms(CK_DNS_CHECK_INTERVAL_MS);
    }
    ck_error failure = {0};
    not_published_error(servers, states, n, fqdn, max_wait_ms, &failure);
    log_line(log, log_ctx, "dns check: gave up: %s", failure.message);
    if (err != NULL)
        *err = failure;
cleanup:
    free(states);
    ldns_rdf_deep_free(qname);
    return rc;
}
