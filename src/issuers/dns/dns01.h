/* dns01.h — dns-01 challenge records: put them in place, check they are published, remove them.
 *
 * Three ways to publish, chosen per enrollment: RFC 2136 dynamic updates signed with TSIG to the
 * zone's primary server; a hook executable called as `HOOK add|del NAME VALUE`; or manual, where
 * the user is shown zone lines to create. Before the CA is asked to validate, ck_dns_check_txt
 * asks every authoritative server of the zone for the TXT value, for a bounded time.
 *
 * Every DNS message is built and sent with ldns to servers given as IP addresses: nothing here
 * reads the system resolver's configuration except ck_dns_find_authoritative. Names are absolute
 * or relative to the root ("_acme-challenge.shop.example.com" and "..com." are the same name).
 * Functions return 0 on success and -1 with err set, unless said otherwise. */
#ifndef CK_ISSUERS_DNS_DNS01_H
#define CK_ISSUERS_DNS_DNS01_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define CK_DNS_HOST_MAX          64
#define CK_DNS_HOOK_OUTPUT_MAX   (64 * 1024)
#define CK_DNS_CHECK_INTERVAL_MS 250
#define CK_DNS_DEFAULT_PORT      53

/* A DNS server as an IP address literal and a port. */
struct ck_dns_server {
    char host[CK_DNS_HOST_MAX]; /* "127.0.0.1" or "::1" (no brackets) */
    int port;
};

/* Parses "127.0.0.1:53", "[::1]:5353", "127.0.0.1" or "::1" (port default_port). Host names are
 * refused: resolving them would need the system resolver. */
int ck_dns_server_parse(const char *text, int default_port, struct ck_dns_server *out,
                        ck_error *err);

/* Parses a comma-separated list ("127.0.0.1:53,[::1]:53"); the caller frees *out. */
int ck_dns_servers_parse(const char *text, int default_port, struct ck_dns_server **out, size_t *n,
                         ck_error *err);

/* "127.0.0.1:53" or "[::1]:53" into buf (at least CK_DNS_HOST_MAX + 8 bytes). */
void ck_dns_server_format(const struct ck_dns_server *server, char *buf, size_t len);

/* ---- (a) RFC 2136 with TSIG ---- */

struct ck_rfc2136_config {
    struct ck_dns_server primary;
    const char *zone;            /* "example.com" */
    const char *tsig_name;       /* key name as the server knows it */
    const char *tsig_alg;        /* hmac-sha256 | hmac-sha384 | hmac-sha512 */
    const char *tsig_secret_b64; /* the shared secret, base64; never logged */
};

/* Checks a configuration without sending anything: primary set, zone a valid name, TSIG name
 * present, algorithm one of the three, secret valid base64 of at least 16 bytes. */
int ck_rfc2136_config_check(const struct ck_rfc2136_config *cfg, ck_error *err);

/* Adds (add=true) or removes the TXT record fqdn=value in cfg->zone with one signed UPDATE.
 * Removing deletes only that value, so concurrent challenges for the same name survive; removing
 * a value that is not there succeeds. fqdn must be inside the zone. The answer must be signed
 * with the same key. Errors name the server and what it said: REFUSED (the key may not update
 * that name), NOTAUTH with BADSIG/BADKEY/BADTIME (the server rejected the TSIG), a timeout. */
int ck_rfc2136_txt(const struct ck_rfc2136_config *cfg, bool add, const char *fqdn,
                   const char *value, int ttl, int timeout_ms, ck_error *err);

/* ---- (b) hook ---- */

/* Runs `hook_path add|del fqdn value` (execve, no shell; stdin /dev/null; stdout and stderr
 * together, at most CK_DNS_HOOK_OUTPUT_MAX bytes kept; the daemon's environment without its
 * CERTKEEP_* variables, which hold the master key and the token; no other open descriptor). After
 * timeout_ms the hook and its process group are killed. On success *output (if not NULL) receives
 * what it printed (caller frees). Exit status != 0, death by a signal or the timeout is an error
 * whose message quotes the end of the output. Safe to call from a worker thread. */
int ck_dns_hook_run(const char *hook_path, bool add, const char *fqdn, const char *value,
                    int timeout_ms, char **output, ck_error *err);

/* ---- (c) manual ---- */

/* The zone line a user adds by hand, e.g.
 * `_acme-challenge.shop.example.com. 300 IN TXT "VALUE"` (the name made absolute; `"` and `\` in
 * value escaped). Returns NULL on allocation failure; the caller frees. */
char *ck_dns_manual_zone_line(const char *fqdn, const char *value, int ttl);

/* ---- the propagation check ---- */

/* One line per attempt outcome, for the job log ("127.0.0.1:53: TXT value present"). */
typedef void ck_dns_log_fn(void *ctx, const char *line);

/* Asks each server (UDP, TCP when truncated; recursion off; one try of at most 1 s) for TXT fqdn
 * until every server has answered with value among the TXT records, retrying the missing ones
 * every CK_DNS_CHECK_INTERVAL_MS up to max_wait_ms. Returns 0 when all have it; -1 with a message
 * naming the servers that did not (and what they said last) when the wait ran out. log may be
 * NULL. */
int ck_dns_check_txt(const struct ck_dns_server *servers, size_t n, const char *fqdn,
                     const char *value, int max_wait_ms, ck_dns_log_fn *log, void *log_ctx,
                     ck_error *err);

/* Finds the authoritative servers of the zone holding fqdn through the system resolver: the
 * closest enclosing SOA, its NS names, their A and AAAA addresses (port 53). Never called by
 * tests (the test machine's resolver is not on loopback). The caller frees *out. */
int ck_dns_find_authoritative(const char *fqdn, struct ck_dns_server **out, size_t *n,
                              ck_error *err);

/* ---- one entry point per enrollment ---- */

enum ck_dns01_mode { CK_DNS01_RFC2136, CK_DNS01_HOOK, CK_DNS01_MANUAL };

/* "rfc2136", "hook", "manual"; parse returns -1 for anything else. */
const char *ck_dns01_mode_name(enum ck_dns01_mode mode);
int ck_dns01_mode_parse(const char *name, enum ck_dns01_mode *out);

/* How an enrollment publishes its dns-01 records. Nothing here is owned: the caller keeps the
 * strings and the server array alive during a call. */
struct ck_dns01_config {
    enum ck_dns01_mode mode;
    struct ck_rfc2136_config rfc2136;          /* mode rfc2136 */
    const char *hook_path;                     /* mode hook */
    const struct ck_dns_server *check_servers; /* --check-servers; may be NULL */
    size_t check_server_count;
    int ttl;        /* of the records created (e.g. 60); the manual zone lines show it too */
    int timeout_ms; /* per update or hook run */
};

/* "_acme-challenge.<identifier>" without a leading "*." (a wildcard is validated at its base
 * name). NULL on allocation failure; the caller frees. */
char *ck_dns01_record_name(const char *identifier);

/* Publishes (add) or removes the TXT record fqdn=value the configured way, with one line for the
 * job log on log. Manual mode changes nothing and logs the zone line for the user to create (add)
 * or delete: the caller shows ck_dns_manual_zone_line and waits until the user says it is done. */
int ck_dns01_set(const struct ck_dns01_config *cfg, bool add, const char *fqdn, const char *value,
                 ck_dns_log_fn *log, void *log_ctx, ck_error *err);

/* The servers the propagation check asks: cfg->check_servers when given, else the RFC 2136
 * primary, else the zone's authoritative servers found through the system resolver
 * (ck_dns_find_authoritative). The caller frees *out. */
int ck_dns01_check_servers(const struct ck_dns01_config *cfg, const char *fqdn,
                           struct ck_dns_server **out, size_t *n, ck_error *err);

#endif
