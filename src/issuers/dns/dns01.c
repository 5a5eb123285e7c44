/* dns-01 per enrollment: one entry point that dispatches to RFC 2136, the hook or manual, and
 * the choice of servers for the propagation check. */
#include "issuers/dns/dns01.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define RECORD_PREFIX "_acme-challenge."

const char *ck_dns01_mode_name(enum ck_dns01_mode mode)
{
    switch (mode) {
    case CK_DNS01_RFC2136:
        return "rfc2136";
    case CK_DNS01_HOOK:
        return "hook";
    case CK_DNS01_MANUAL:
        return "manual";
    }
    return "unknown";
}

int ck_dns01_mode_parse(const char *name, enum ck_dns01_mode *out)
{
    const enum ck_dns01_mode modes[] = {CK_DNS01_RFC2136, CK_DNS01_HOOK, CK_DNS01_MANUAL};
    for (size_t i = 0; i < CK_ARRAY_LEN(modes); i++)
        if (name != NULL && strcmp(name, ck_dns01_mode_name(modes[i])) == 0) {
            *out = modes[i];
            return 0;
        }
    return -1;
}

char *ck_dns01_record_name(const char *identifier)
{
    if (strncmp(identifier, "*.", 2) == 0)
        identifier += 2;
    size_t len = strlen(RECORD_PREFIX) + strlen(identifier) + 1;
    char *name = malloc(len);
    if (name != NULL)
        snprintf(name, len, "%s%s", RECORD_PREFIX, identifier);
    return name;
}

static void log_line(ck_dns_log_fn *log, void *log_ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_line(ck_dns_log_fn *log, void *log_ctx, const char *fmt, ...)
{
    if (log == NULL)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log(log_ctx, line);
}

static int set_manual(const struct ck_dns01_config *cfg, bool add, const char *fqdn,
                      const char *value, ck_dns_log_fn *log, void *log_ctx, ck_error *err)
{
    char *line = ck_dns_manual_zone_line(fqdn, value, cfg->ttl);
    if (line == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    log_line(log, log_ctx, "dns manual: %s: %s",
             add ? "create this record" : "this record may now be deleted", line);
    free(line);
    return 0;
}

int ck_dns01_set(const struct ck_dns01_config *cfg, bool add, const char *fqdn, const char *value,
                 ck_dns_log_fn *log, void *log_ctx, ck_error *err)
{
    const char *action = add ? "add" : "delete";
    ck_error failure = {0};
    int rc;
    switch (cfg->mode) {
    case CK_DNS01_RFC2136:
        rc = ck_rfc2136_txt(&cfg->rfc2136, add, fqdn, value, cfg->ttl, cfg->timeout_ms, &failure);
        break;
    case CK_DNS01_HOOK:
        rc = ck_dns_hook_run(cfg->hook_path, add, fqdn, value, cfg->timeout_ms, NULL, &failure);
        break;
    case CK_DNS01_MANUAL:
        return set_manual(cfg, add, fqdn, value, log, log_ctx, err);
    default:
        return ck_error_set(err, 500, "invalid_dns_config", "unknown dns-01 mode %d",
                            (int)cfg->mode);
    }
    if (rc == 0)
        log_line(log, log_ctx, "dns %s: %s TXT %s: done", ck_dns01_mode_name(cfg->mode), action,
                 fqdn);
    else
        log_line(log, log_ctx, "dns %s: %s TXT %s failed: %s", ck_dns01_mode_name(cfg->mode),
                 action, fqdn, failure.message);
    if (rc != 0 && err != NULL)
        *err = failure;
    return rc;
}

int ck_dns01_check_servers(const struct ck_dns01_config *cfg, const char *fqdn,
                           struct ck_dns_server **out, size_t *n, ck_error *err)
{
    const struct ck_dns_server *given = cfg->check_servers;
    size_t count = cfg->check_server_count;
    if (given == NULL || count == 0) {
        if (cfg->mode != CK_DNS01_RFC2136)
            return ck_dns_find_authoritative(fqdn, out, n, err);
        given = &cfg->rfc2136.primary;
        count = 1;
    }
    struct ck_dns_server *copy = calloc(count, sizeof(*copy));
    if (copy == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    memcpy(copy, given, count * sizeof(*copy));
    *out = copy;
    *n = count;
    return 0;
}
