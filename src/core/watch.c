/* watch.c — endpoints to watch and what their probes mean (watch.h). */
#include "core/watch.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "core/policy.h"

static int bad(const char *text, ck_error *err, const char *why)
{
    return ck_error_set(err, 400, "invalid_watch",
                        "watch endpoint \"%.100s\" is not HOST:PORT or HOST:PORT/SNI: %s", text,
                        why);
}

/* A DNS name as ck_hostname_check wants it (no wildcard), or "localhost"; lower-cased. */
static int check_name(char *name, const char *text, const char *what, ck_error *err)
{
    ck_error why = {0};
    ck_ascii_lower(name);
    if (strcmp(name, "localhost") == 0)
        return 0;
    if (strchr(name, '*') != NULL)
        return bad(text, err, "a wildcard cannot be connected to or sent as SNI");
    if (ck_hostname_check(name, &why) != 0) {
        char reason[CK_ERROR_MSG_MAX];
        snprintf(reason, sizeof(reason), "the %s is not valid (%.400s)", what, why.message);
        return bad(text, err, reason);
    }
    return 0;
}

/* Splits "host:port" or "[v6]:port" into out->host and out->port. */
static int split_host_port(const char *hp, size_t len, const char *text,
                           struct ck_watch_endpoint *out, ck_error *err)
{
    const char *host = hp, *colon;
    size_t host_len;
    bool bracketed = hp[0] == '[';
    if (bracketed) {
        const char *close = memchr(hp, ']', len);
        if (close == NULL || close + 1 >= hp + len || close[1] != ':')
            return bad(text, err, "an IPv6 address goes in brackets, e.g. [::1]:443");
        host = hp + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = memchr(hp, ':', len);
        if (colon == NULL)
            return bad(text, err, "the port is missing");
        if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - hp)) != NULL)
            return bad(text, err, "an IPv6 address goes in brackets, e.g. [::1]:443");
        host_len = (size_t)(colon - hp);
    }
    size_t port_len = len - (size_t)(colon + 1 - hp);
    if (host_len == 0 || host_len >= sizeof(out->host))
        return bad(text, err, "the host is empty or too long");
    if (port_len == 0 || port_len > 5 || strspn(colon + 1, "0123456789") < port_len)
        return bad(text, err, "the port must be a number from 1 to 65535");
    out->port = atoi(colon + 1);
    if (out->port < 1 || out->port > 65535)
        return bad(text, err, "the port must be a number from 1 to 65535");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    return bracketed ? 0 : 1; /* 1: the host is not bracketed */
}

static int check_host(struct ck_watch_endpoint *out, bool bracketed, const char *text,
                      ck_error *err)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (bracketed) {
        if (inet_pton(AF_INET6, out->host, addr) != 1)
            return bad(text, err, "the address in brackets is not an IPv6 address");
        return 0;
    }
    if (inet_pton(AF_INET, out->host, addr) == 1)
        return 0;
    if (strspn(out->host, "0123456789.") == strlen(out->host))
        return bad(text, err, "the host is not a valid IPv4 address");
    return check_name(out->host, text, "host", err);
}

static void normalise(struct ck_watch_endpoint *out, bool bracketed)
{
    const char *open = bracketed ? "[" : "", *close = bracketed ? "]" : "";
    snprintf(out->address, sizeof(out->address), "%s%s%s:%d", open, out->host, close, out->port);
    snprintf(out->text, sizeof(out->text), "%s%s%s", out->address, out->sni[0] ? "/" : "",
             out->sni);
}

int ck_watch_endpoint_parse(const char *text, struct ck_watch_endpoint *out, ck_error *err)
{
    struct ck_watch_endpoint e = {0};
    if (text == NULL || text[0] == '\0')
        return ck_error_set(err, 400, "invalid_watch",
                            "a watch endpoint is empty: give HOST:PORT or HOST:PORT/SNI");
    size_t len = strlen(text);
    if (len >= CK_WATCH_TEXT_MAX)
        return bad(text, err, "it is too long");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] <= ' ' || (unsigned char)text[i] >= 0x7f)
            return bad(text, err, "it holds spaces or characters other than ASCII");
    const char *slash = strchr(text, '/');
    size_t hp_len = slash ? (size_t)(slash - text) : len;
    int rc = split_host_port(text, hp_len, text, &e, err);
    if (rc < 0 || check_host(&e, rc == 0, text, err) != 0)
        return -1;
    if (slash != NULL) {
        if (strlen(slash + 1) == 0 || strlen(slash + 1) >= sizeof(e.sni))
            return bad(text, err, "the SNI after the slash is empty or too long");
        strcpy(e.sni, slash + 1);
        if (check_name(e.sni, text, "SNI", err) != 0)
            return -1;
    }
    normalise(&e, rc == 0);
    *out = e;
    return 0;
}

int ck_watch_keys(const ck_strv *names, const ck_strv *watch, bool production, ck_strv *out)
{
    char key[CK_WATCH_TEXT_MAX];
    for (size_t i = 0; production && i < names->len; i++) {
        if (strchr(names->items[i], '*') != NULL)
            continue;
        snprintf(key, sizeof(key), "%s%.253s", CK_WATCH_PRODUCTION, names->items[i]);
        if (!ck_strv_contains(out, key) && ck_strv_push(out, key) != 0)
            return -1;
    }
    for (size_t i = 0; i < watch->len; i++)
        if (!ck_strv_contains(out, watch->items[i]) && ck_strv_push(out, watch->items[i]) != 0)
            return -1;
    return 0;
}

static const char *const status_names[] = {"none", "ok", "expiring", "mismatch", "unreachable"};

const char *ck_watch_status_name(enum ck_watch_status s)
{
    return (size_t)s < CK_ARRAY_LEN(status_names) ? status_names[s] : "none";
}

enum ck_watch_status ck_watch_status_parse(const char *name)
{
    for (size_t i = 0; name != NULL && i < CK_ARRAY_LEN(status_names); i++)
        if (strcmp(status_names[i], name) == 0)
            return (enum ck_watch_status)i;
    return CK_WATCH_NONE;
}

int ck_watch_decide(const struct ck_watch_observation *obs, int64_t now, enum ck_watch_status *out,
                    ck_error *err)
{
    struct ck_renewal_time when;
    if (!obs->reached) {
        *out = CK_WATCH_UNREACHABLE;
        return 0;
    }
    if (!obs->same_certificate) {
        *out = CK_WATCH_MISMATCH;
        return 0;
    }
    const struct ck_renewal_input in = {.renew_before = obs->renew_before,
                                        .validation = obs->validation,
                                        .not_before = obs->not_before,
                                        .not_after = obs->not_after,
                                        .seed = obs->seed};
    if (ck_policy_renewal_time(&in, &when, err) != 0)
        return -1;
    *out = when.at <= now || obs->not_after <= now ? CK_WATCH_EXPIRING : CK_WATCH_OK;
    return 0;
}

const char *ck_watch_event_type(enum ck_watch_status before, enum ck_watch_status after)
{
    if (before == after)
        return NULL;
    switch (after) {
    case CK_WATCH_MISMATCH:
        return "endpoint_mismatch";
    case CK_WATCH_EXPIRING:
        return "endpoint_expiring";
    case CK_WATCH_UNREACHABLE:
        return "endpoint_unreachable";
    case CK_WATCH_OK:
        return before == CK_WATCH_NONE ? NULL : "endpoint_ok";
    default:
        return NULL;
    }
}
