/* Server addresses, the ldns resolver every query goes through, and TXT rdata. */
#include "issuers/dns/dns_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

static bool host_is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int parse_port(const char *text, int *port)
{
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 1 || value > 65535)
        return -1;
    *port = (int)value;
    return 0;
}

int ck_dns_server_parse(const char *text, int default_port, struct ck_dns_server *out,
                        ck_error *err)
{
    const char *host = text, *port_text = NULL;
    size_t host_len = strlen(text);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            goto bad;
        host = text + 1;
        host_len = (size_t)(close - host);
        port_text = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) { /* one colon: IPv4 with a port */
            host_len = (size_t)(colon - text);
            port_text = colon + 1;
        }
    }
    if (host_len == 0 || host_len >= sizeof(out->host))
        goto bad;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = default_port;
    if (!host_is_ip(out->host) || (port_text != NULL && parse_port(port_text, &out->port) != 0))
        goto bad;
    return 0;
bad:
    return ck_error_set(err, 400, "invalid_dns_server",
                        "DNS server \"%s\" is not an IP address with an optional port, like "
                        "127.0.0.1:53 or [::1]:53 (host names are not accepted)",
                        text);
}

int ck_dns_servers_parse(const char *text, int default_port, struct ck_dns_server **out, size_t *n,
                         ck_error *err)
{
    int rc = -1;
    char *copy = ck_strdup(text);
    struct ck_dns_server *list = NULL;
    size_t count = 0;
    if (copy == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    list = calloc(strlen(text) / 2 + 1, sizeof(*list)); /* each entry takes at least 2 chars */
    if (list == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (ck_dns_server_parse(item, default_port, &list[count], err) != 0)
            goto cleanup;
        count++;
    }
    if (count == 0) {
        ck_error_set(err, 400, "invalid_dns_server", "no DNS server given");
        goto cleanup;
    }
    *out = list;
    *n = count;
    list = NULL;
    rc = 0;
cleanup:
    free(list);
    free(copy);
    return rc;
}

void ck_dns_server_format(const struct ck_dns_server *server, char *buf, size_t len)
{
    if (strchr(server->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", server->host, server->port);
    else
        snprintf(buf, len, "%s:%d", server->host, server->port);
}

ldns_resolver *ck_dns_resolver_new(const struct ck_dns_server *server, int timeout_ms,
                                   ck_error *err)
{
    ldns_resolver *res = ldns_resolver_new();
    ldns_rdf *addr = ldns_rdf_new_frm_str(
        strchr(server->host, ':') != NULL ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, server->host);
    if (res == NULL || addr == NULL || ldns_resolver_push_nameserver(res, addr) != LDNS_STATUS_OK) {
        ck_error_set(err, 500, "dns_internal", "could not set up a DNS query to %s", server->host);
        ldns_resolver_deep_free(res);
        res = NULL;
        goto cleanup;
    }
    if (timeout_ms < 1)
        timeout_ms = 1;
    struct timeval timeout = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    ldns_resolver_set_port(res, (uint16_t)server->port);
    ldns_resolver_set_timeout(res, timeout);
    ldns_resolver_set_retry(res, 1);
    ldns_resolver_set_retrans(res, 0);
    ldns_resolver_set_recursive(res, false);
    ldns_resolver_set_dnssec(res, false);
    ldns_resolver_set_random(res, false);
    ldns_resolver_set_fallback(res, true);
    ldns_resolver_set_fail(res, true);
cleanup:
    ldns_rdf_deep_free(addr);
    return res;
}

const char *ck_dns_rcode_name(int rcode)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};
    if (rcode >= 0 && (size_t)rcode < CK_ARRAY_LEN(names))
        return names[rcode];
    return "unknown RCODE";
}

int ck_dns_txt_push_value(ldns_rr *rr, const char *value)
{
    size_t len = strlen(value), off = 0;
    do { /* an empty value is one empty string */
        size_t chunk = len - off > 255 ? 255 : len - off;
        uint8_t buf[256];
        buf[0] = (uint8_t)chunk;
        memcpy(buf + 1, value + off, chunk);
        ldns_rdf *rdf = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, chunk + 1, buf);
        if (rdf == NULL || !ldns_rr_push_rdf(rr, rdf)) {
            ldns_rdf_deep_free(rdf);
            return -1;
        }
        off += chunk;
    } while (off < len);
    return 0;
}

bool ck_dns_txt_equals(const ldns_rr *rr, const char *value)
{
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT)
        return false;
    size_t len = strlen(value), off = 0;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        const ldns_rdf *rdf = ldns_rr_rdf(rr, i);
        const uint8_t *data = ldns_rdf_data(rdf);
        size_t size = ldns_rdf_size(rdf);
        if (size == 0 || (size_t)data[0] + 1 != size || off + data[0] > len ||
            memcmp(value + off, data + 1, data[0]) != 0)
            return false;
        off += data[0];
    }
    return off == len;
}

long long ck_dns_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
