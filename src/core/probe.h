/* probe.h — what a live TLS endpoint serves: its leaf described as `certkeep cert inspect` would,
 * the certificates it sent, and whether that chain verifies for the name a client would ask for
 * (the SNI name, else the host; the IP when the host is an IP literal and no SNI is given)
 * against the system's roots plus optional extra roots. Used by `certkeep probe` and, after a
 * deployment, by the daemon to confirm the endpoint shows the new certificate. */
#ifndef CK_CORE_PROBE_H
#define CK_CORE_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "common/util.h"
#include "crypto/x509info.h"

#define CK_PROBE_DEFAULT_TIMEOUT_MS 10000

struct ck_probe_request {
    const char *endpoint;         /* "host:port" or "[v6]:port"; required */
    const char *sni;              /* NULL: the host when it is a name, none for an IP literal */
    STACK_OF(X509) * extra_roots; /* trusted besides the system roots (private CAs); may be NULL */
    bool no_system_roots;         /* trust only extra_roots (tests, closed networks) */
    int timeout_ms;               /* <= 0: CK_PROBE_DEFAULT_TIMEOUT_MS */
};

/* One certificate as the server sent it, leaf first. */
struct ck_probe_chain_entry {
    char *subject, *issuer; /* RFC 2253 style text */
    int64_t not_after;
};

struct ck_probe_result {
    char *endpoint;
    char *sni;                          /* the name sent, NULL when none */
    struct ck_cert_info certificate;    /* the leaf */
    X509 *leaf;                         /* owned; e.g. to compare serials after a deployment */
    struct ck_probe_chain_entry *chain; /* what the server sent, leaf first */
    size_t chain_len;
    bool chain_valid;
    ck_strv chain_problems; /* why the chain is not valid, one sentence each */
};

/* Connects, fetches and verifies into *out (zero-initialise it). Returns 0 when the endpoint
 * answered with a certificate, whatever the verdict (see out->chain_valid); -1 when it could not
 * be reached, did not complete a handshake, or the request is bad (err says which). */
int ck_probe(const struct ck_probe_request *req, struct ck_probe_result *out, ck_error *err);

void ck_probe_result_free(struct ck_probe_result *res);

/* {endpoint, sni, certificate:{ck_cert_info_to_json}, chain:[{subject, issuer, not_after}],
 * chain_status: "valid"|"invalid", chain_problems:[...]}; NULL when out of memory. */
json_t *ck_probe_result_to_json(const struct ck_probe_result *res, int64_t now);

#endif
