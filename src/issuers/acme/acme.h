/* acme.h — the RFC 8555 ACME client core: one order, one step at a time.
 *
 * The client (struct ck_acme_client) holds what lives as long as the CA connection: the
 * directory, the current nonce, the account key (borrowed, the caller unseals and frees it) and
 * the HTTPS handle. The order state (struct ck_acme_order_state) is plain data that serialises
 * to JSON; the daemon stores it after every ck_acme_step() and a restart continues from the
 * stored state with the same order URL, so an order is never placed twice.
 *
 * A client is used by one thread at a time (it holds one curl handle and one nonce); it can run
 * many orders one after another. The caller's loop:
 *   for (;;) switch (ck_acme_step(c, s, &err)) {
 *     case CK_ACME_NEXT_CONTINUE:  store s; continue
 *     case CK_ACME_NEXT_WAIT:      store s; sleep s->wait_ms (or until s->retry_after after a
 *                                  restart); continue
 *     case CK_ACME_NEXT_PROVISION: store s; publish s->challenges (dns-01 TXT or http-01 body);
 *                                  ck_acme_challenges_provisioned(s); continue
 *     case CK_ACME_NEXT_DONE:      s->certificate_pem holds leaf + chain
 *     case CK_ACME_NEXT_FAILED:    err and s->problem say why
 *   }
 *
 * Bounds: responses of at most CK_ACME_MAX_RESPONSE bytes, CK_ACME_BADNONCE_RETRIES retries of a
 * badNonce error, no redirects, HTTPS only, a per-request timeout. Rate limits (429) and
 * transient failures (network, 5xx) come back as CK_ACME_NEXT_WAIT, never as a failed order. */
#ifndef CK_ISSUERS_ACME_ACME_H
#define CK_ISSUERS_ACME_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "common/util.h"

#define CK_ACME_MAX_RESPONSE (1024 * 1024)
/* A CA rejecting 30% of nonces fails one request in 0.3^(retries+1): 1 in 177,000 with 10,
 * where 5 left about one certificate in a hundred failing. */
#define CK_ACME_BADNONCE_RETRIES 10
#define CK_ACME_MAX_NAMES        100
/* Transient failures in a row (network, 5xx) before the order fails; 429s do not count. */
#define CK_ACME_MAX_TRANSIENT 20

/* ---- problem documents (RFC 7807, RFC 8555 section 6.7) ---- */

struct ck_acme_subproblem {
    char *identifier; /* the identifier's value ("bad..name"), may be NULL */
    char *type;
    char *detail;
};

struct ck_acme_problem {
    char *type; /* "urn:ietf:params:acme:error:rejectedIdentifier"; NULL: no problem */
    char *detail;
    int status;
    struct ck_acme_subproblem *subproblems;
    size_t subproblem_count;
};

/* {"type","detail","status","subproblems":[{"identifier","type","detail"}]}, as the CA sent them.
 * Returns NULL when there is no problem. */
json_t *ck_acme_problem_to_json(const struct ck_acme_problem *p);
/* Reads a problem document (the CA's or ours); unknown members are ignored. */
int ck_acme_problem_from_json(const json_t *doc, struct ck_acme_problem *out);
/* One line for a person: "<detail> (<type>); <name>: <detail> (<type>); ...". */
void ck_acme_problem_format(const struct ck_acme_problem *p, char *buf, size_t len);
void ck_acme_problem_free(struct ck_acme_problem *p);

/* ---- the order state ---- */

enum ck_acme_step {
    CK_ACME_STEP_NEW,                    /* nothing sent yet */
    CK_ACME_STEP_ACCOUNT_READY,          /* account_url known; next: mark the newOrder attempt */
    CK_ACME_STEP_ORDERING,               /* newOrder may have been sent: a restart here first
                                            looks for that order among the account's orders */
    CK_ACME_STEP_ORDERED,                /* order_url known; next: fetch authorizations */
    CK_ACME_STEP_AUTHORIZATIONS_FETCHED, /* challenges listed; caller provisions them */
    CK_ACME_STEP_CHALLENGES_READY,       /* caller provisioned; next: tell the CA */
    CK_ACME_STEP_VALIDATING,             /* challenges answered; polling the order */
    CK_ACME_STEP_FINALIZING,             /* order ready or processing; finalize, poll */
    CK_ACME_STEP_DOWNLOADING,            /* certificate_url known */
    CK_ACME_STEP_DONE,
    CK_ACME_STEP_FAILED,
    CK_ACME_STEP_COUNT
};

/* "new", "account_ready", "ordering", "ordered", "authorizations_fetched", "challenges_ready",
 * "validating", "finalizing", "downloading", "done", "failed". */
const char *ck_acme_step_name(enum ck_acme_step step);
int ck_acme_step_parse(const char *name, enum ck_acme_step *out);

/* One challenge the caller must provision (authorizations already valid have none). */
struct ck_acme_challenge {
    char *name; /* identifier value, without "*." for a wildcard */
    bool wildcard;
    char *type; /* "dns-01" or "http-01" */
    char *url;  /* the challenge URL */
    char *authorization_url;
    char *token;
    char *key_authorization; /* http-01 body: token "." thumbprint */
    char *dns_txt_value;     /* dns-01 TXT at _acme-challenge.<name> */
};

/* Frees count challenges and the array. */
void ck_acme_challenges_free(struct ck_acme_challenge *list, size_t count);

struct ck_acme_order_state {
    enum ck_acme_step step;
    /* Inputs, set by the caller before the first step. */
    ck_strv names;        /* DNS identifiers ("*.example.com" allowed) */
    char *challenge_type; /* "dns-01" or "http-01"; NULL means http-01 */
    char *csr_pem;        /* the order's CSR (public data) */
    int64_t lifetime_s;   /* the enrollment's lifetime, sent as notAfter = newOrder time + it;
                             0: the CA's default */
    char *replaces;       /* RFC 9773 certID of the certificate this order renews, or NULL; sent
                             only when the directory offers renewalInfo */
    /* Progress, filled by the steps. */
    char *account_url;
    char *order_url;
    char *order_status; /* last seen: pending, ready, processing, valid, invalid */
    char *finalize_url;
    char *certificate_url;
    ck_strv authorization_urls;
    struct ck_acme_challenge *challenges;
    size_t challenge_count;
    int64_t retry_after;  /* epoch seconds: do not call ck_acme_step before */
    int64_t wait_ms;      /* in-process hint: the delay that produced retry_after */
    int poll_count;       /* polls in the current step, for the backoff */
    int transient_count;  /* transient failures in a row */
    char ordering_id[33]; /* marks this process's own newOrder attempt (ORDERING) */
    /* The CA refused a newOrder carrying notAfter or replaces (Let's Encrypt refuses notAfter;
     * an ARI CA refuses replaces for a certificate already replaced): the order was placed
     * again without them. */
    bool extensions_refused;
    char *not_after_sent; /* the notAfter the placed order carried (RFC 3339), NULL: none */
    bool replaces_sent;   /* the placed order carried replaces */
    struct ck_acme_problem problem; /* the last problem from the CA */
    char *certificate_pem;          /* leaf + chain (PEM) once done */
};

/* Sets the inputs of a fresh state: names are copied. */
int ck_acme_order_state_init(struct ck_acme_order_state *s, const ck_strv *names,
                             const char *challenge_type, const char *csr_pem, ck_error *err);
void ck_acme_order_state_free(struct ck_acme_order_state *s);

/* Every field above; the JSON holds no secret. */
json_t *ck_acme_order_state_to_json(const struct ck_acme_order_state *s);
/* Fills a zeroed state from JSON made by ck_acme_order_state_to_json. 400 "invalid_acme_state". */
int ck_acme_order_state_from_json(const json_t *doc, struct ck_acme_order_state *out,
                                  ck_error *err);

/* ---- the client ---- */

struct ck_acme_client_options {
    const char *directory_url; /* https://... */
    const char *ca_file;       /* PEM bundle to trust; NULL: the system store */
    const char *ca_pem;        /* or the bundle itself (PEM text); ca_file wins when both */
    EVP_PKEY *account_key;     /* borrowed: P-256 (or RSA); must outlive the client. NULL: a
                                  client that only reads (directory, renewalInfo) */
    const ck_strv *contacts;   /* "mailto:..." URLs; may be NULL */
    bool terms_agreed;         /* termsOfServiceAgreed for a new account */
    const char *eab_kid;       /* external account binding, both or neither */
    const char *eab_hmac_key;  /* base64url, as the CA gives it */
    long timeout_seconds;      /* per request; 0: 30 s */
    const char *user_agent;    /* NULL: "certkeep" */
};

struct ck_acme_client;

/* Builds a client; nothing is sent until the first step. The options' strings are copied. */
struct ck_acme_client *ck_acme_client_new(const struct ck_acme_client_options *opt, ck_error *err);
void ck_acme_client_free(struct ck_acme_client *c);

/* Finds or creates the account for the key (onlyReturnExisting first, then a new account with
 * contacts, terms and EAB). Writes its URL (caller frees). Done by the first step of an order;
 * exposed for "account show" style callers and tests. */
int ck_acme_account(struct ck_acme_client *c, char **account_url, ck_error *err);

/* ---- stepping ---- */

enum ck_acme_next {
    CK_ACME_NEXT_CONTINUE,  /* call ck_acme_step again now */
    CK_ACME_NEXT_WAIT,      /* call again after s->wait_ms (s->retry_after) */
    CK_ACME_NEXT_PROVISION, /* provision s->challenges, then ck_acme_challenges_provisioned */
    CK_ACME_NEXT_DONE,
    CK_ACME_NEXT_FAILED
};

const char *ck_acme_next_name(enum ck_acme_next next);

/* Advances s by at most one ACME exchange. On CK_ACME_NEXT_FAILED err says why in a sentence
 * (the CA's problem as it sent it) and s->problem holds the document; on CK_ACME_NEXT_WAIT after
 * a failure, err holds the transient reason for the log. */
enum ck_acme_next ck_acme_step(struct ck_acme_client *c, struct ck_acme_order_state *s,
                               ck_error *err);

/* The caller has published every challenge: AUTHORIZATIONS_FETCHED -> CHALLENGES_READY. */
int ck_acme_challenges_provisioned(struct ck_acme_order_state *s, ck_error *err);

/* ---- ACME Renewal Information (RFC 9773), ari.c ----
 *
 * The CA suggests when to renew a certificate: GET <renewalInfo>/<certID> (no signature, no
 * account) answers {"suggestedWindow":{"start","end"},"explanationURL"} with a Retry-After saying
 * when to ask again. The scheduler asks at most twice a day per certificate. */

#define CK_ACME_ARI_MIN_INTERVAL (12 * 3600) /* never asked more often than twice a day */
#define CK_ACME_ARI_MAX_WAIT     86400 /* RFC 9773 4.3.2: a longer Retry-After counts as 1 d */

/* The certID of a certificate (RFC 9773 section 4.1): base64url(the keyIdentifier of its
 * Authority Key Identifier) "." base64url(the DER value bytes of its serial number, without tag
 * and length), unpadded. Caller frees *out. 400 "invalid_certificate" when the PEM holds no
 * certificate, 400 "ari_no_key_identifier" when it has no AKI keyIdentifier. */
int ck_acme_ari_cert_id(const char *cert_pem, char **out, ck_error *err);

struct ck_acme_renewal_info {
    int64_t window_start, window_end; /* the suggested window, epoch seconds */
    char *explanation_url;            /* NULL when the CA gave none */
    int64_t retry_after_s;            /* the answer's Retry-After, -1 when it had none */
};
void ck_acme_renewal_info_free(struct ck_acme_renewal_info *ri);

/* Reads a renewalInfo body into out (retry_after_s left as it is). 502 "acme_bad_renewal_info"
 * when it is not JSON, has no suggestedWindow, a time is not RFC 3339, or the window ends before
 * it starts (RFC 9773 4.3.3: such a window is ignored). */
int ck_acme_renewal_info_parse(const char *body, size_t len, struct ck_acme_renewal_info *out,
                               ck_error *err);

/* When to ask again after asking at `now`: the answer's Retry-After (retry_after_s, -1: none)
 * bounded to [CK_ACME_ARI_MIN_INTERVAL, CK_ACME_ARI_MAX_WAIT]; failed requests wait as long. */
int64_t ck_acme_ari_next_check(int64_t now, int64_t retry_after_s);

/* Whether the CA's directory offers renewalInfo (fetches the directory once): 1 yes, 0 no, -1
 * when the directory could not be read (err says why). */
int ck_acme_ari_offered(struct ck_acme_client *c, ck_error *err);

/* Asks the CA for the certificate's window. 0 with *out filled; -1 with err when the CA cannot
 * be reached (502/504 "acme_unreachable"), answers something else than 200 (its status,
 * "acme_renewal_info_refused"), or the answer does not parse. out->retry_after_s is set either
 * way; on -1 the rest of *out is empty. The directory must offer renewalInfo. */
int ck_acme_renewal_info(struct ck_acme_client *c, const char *cert_id,
                         struct ck_acme_renewal_info *out, ck_error *err);

#endif
