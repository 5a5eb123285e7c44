/* watch.h — expiry monitoring's pure parts (issue 6, item 5): the endpoints an enrollment names
 * to watch, and what a probe of one means. No I/O: the daemon's monitor (server/monitor.h)
 * probes and stores; this decides.
 *
 * An endpoint is written "HOST:PORT" or "HOST:PORT/SNI": HOST a DNS name ("localhost" too), an
 * IPv4 address or an IPv6 address in brackets ("[::1]:443"); PORT 1..65535; SNI a DNS name sent
 * in the handshake (default: HOST when it is a name, none for an IP). Names are lower-cased.
 * Besides those, every enrollment with a deployed certificate is watched on the daemon's
 * production listener under each of its names ("production/NAME"; wildcards are skipped).
 *
 * A probe's status, worst first: "unreachable" (no TLS handshake), "mismatch" (another
 * certificate than the deployed one), "expiring" (the deployed certificate, inside its renewal
 * window), "ok". An event is raised only when the status changes (see ck_watch_event_type). */
#ifndef CK_CORE_WATCH_H
#define CK_CORE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "core/model.h"

#define CK_WATCH_MAX        32  /* endpoints per enrollment, besides the production listener */
#define CK_WATCH_TEXT_MAX   300 /* "HOST:PORT/SNI" */
#define CK_WATCH_PRODUCTION "production/" /* the prefix of the production listener's keys */

struct ck_watch_endpoint {
    char host[256];    /* without brackets */
    int port;          /* 1..65535 */
    char sni[254];     /* "" = none given */
    char address[272]; /* "host:port" / "[v6]:port", what ck_probe connects to */
    char text[540];    /* the normalised spelling (at most CK_WATCH_TEXT_MAX), the key */
};

/* Parses and checks one endpoint. 400 "invalid_watch" naming the text and what is wrong. */
int ck_watch_endpoint_parse(const char *text, struct ck_watch_endpoint *out, ck_error *err);

/* Every endpoint key of an enrollment, in order: "production/NAME" for each of its names but
 * wildcards when `production` (the daemon has a production listener), then its own watch list.
 * Appends to out. */
int ck_watch_keys(const ck_strv *names, const ck_strv *watch, bool production, ck_strv *out);

enum ck_watch_status {
    CK_WATCH_NONE, /* never probed */
    CK_WATCH_OK,
    CK_WATCH_EXPIRING,
    CK_WATCH_MISMATCH,
    CK_WATCH_UNREACHABLE,
};
const char *ck_watch_status_name(enum ck_watch_status s); /* "none", "ok", "expiring", ... */
/* CK_WATCH_NONE for NULL or an unknown name. */
enum ck_watch_status ck_watch_status_parse(const char *name);

/* What one probe saw, next to what certkeep deployed. */
struct ck_watch_observation {
    bool reached;                  /* a handshake completed and a certificate came back */
    bool same_certificate;         /* the leaf is the deployed certificate, byte for byte */
    int64_t not_before, not_after; /* the served leaf's validity */
    const char *renew_before;      /* the enrollment's policy (NULL = default) */
    enum ck_validation validation;
    uint64_t seed; /* the enrollment id, as the scheduler spreads renewals */
};

/* The status of an observation at `now`. Fails only when renew_before does not parse. */
int ck_watch_decide(const struct ck_watch_observation *obs, int64_t now, enum ck_watch_status *out,
                    ck_error *err);

/* The event type a change from `before` to `after` raises, or NULL for none: the first status
 * ever seen raises one only when it is bad; a change to a bad status raises "endpoint_mismatch",
 * "endpoint_expiring" or "endpoint_unreachable"; a return to ok from a bad status raises
 * "endpoint_ok". */
const char *ck_watch_event_type(enum ck_watch_status before, enum ck_watch_status after);

#endif
