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

#define CK_ACME_MAX_RESPONSE     (1024 * 1024)
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
    /* Progress, filled by the steps. */
    char *account_url;
    char *order_url;
    char *order_status; /* last seen: pending, ready, processing, valid, invalid */
    char *finalize_url;
    char *certificate_url;
    ck_strv authorization_urls;
    struct ck_acme_challenge *challenges;
    size_t challenge_count;
    int64_t retry_after;            /* epoch seconds: do not call ck_acme_step before */
    int64_t wait_ms;                /* in-process hint: the delay that produced retry_after */
    int poll_count;                 /* polls in the current step, for the backoff */
    int transient_count;            /* transient failures in a row */
    char ordering_id[33];           /* marks this process's own newOrder attempt (ORDERING) */
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
    EVP_PKEY *account_key;     /* borrowed: P-256 (or RSA); must outlive the client */
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

#endif
