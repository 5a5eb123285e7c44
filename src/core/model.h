/* model.h — the things certkeep manages (see docs/DESIGN.md's vocabulary), as plain structs
 * shared by the store, the server and the job runner. Each struct owns every pointer in it; the
 * matching _free function releases them and leaves the struct zeroed. */
#ifndef CK_CORE_MODEL_H
#define CK_CORE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/util.h"
#include "crypto/keys.h"

/* ---- roles ---- */
enum ck_role { CK_ROLE_VIEWER, CK_ROLE_EDITOR, CK_ROLE_ADMIN };
const char *ck_role_name(enum ck_role role); /* "viewer", "editor", "admin" */
int ck_role_parse(const char *name, enum ck_role *out, ck_error *err);

/* ---- validation level ---- */
enum ck_validation { CK_VALIDATION_DV, CK_VALIDATION_OV, CK_VALIDATION_EV };
const char *ck_validation_name(enum ck_validation v); /* "dv", "ov", "ev" */
int ck_validation_parse(const char *name, enum ck_validation *out, ck_error *err);

/* ---- order states (docs/DESIGN.md, "Order states") ---- */
enum ck_order_state {
    CK_ORDER_NEW,                /* created; the csr job has not written key and CSR yet */
    CK_ORDER_CSR_READY,
    CK_ORDER_PENDING_VALIDATION,
    CK_ORDER_CHECKING,
    CK_ORDER_AWAITING_ACK,
    CK_ORDER_ISSUED,
    CK_ORDER_STAGED,
    CK_ORDER_DEPLOYED,
    CK_ORDER_SUPERSEDED,
    CK_ORDER_CANCELLED,
    CK_ORDER_FAILED,
    CK_ORDER_STATE_COUNT
};
const char *ck_order_state_name(enum ck_order_state s); /* "new", "csr_ready", ... */
int ck_order_state_parse(const char *name, enum ck_order_state *out, ck_error *err);
/* Open orders block a second order for the same enrollment: every state before deployment. */
bool ck_order_state_is_open(enum ck_order_state s);

/* ---- jobs ---- */
enum ck_job_type {
    CK_JOB_CSR,
    CK_JOB_IMPORT,
    CK_JOB_STAGE,        /* put an issued certificate on the staging listener and targets */
    CK_JOB_STAGING_TEST, /* TLS to the staging listener for each name, "OK" read back */
    CK_JOB_DEPLOY,       /* production listener and targets */
    CK_JOB_PROBE,        /* an endpoint shows the new expiry date (seed 004) */
    CK_JOB_ISSUE,        /* get the certificate from the enrollment's issuer (local, acme) */
    CK_JOB_TYPE_COUNT
};
/* "csr", "import", "stage", "staging_test", "deploy", "probe", "issue" */
const char *ck_job_type_name(enum ck_job_type t);
int ck_job_type_parse(const char *name, enum ck_job_type *out, ck_error *err);

enum ck_job_state { CK_JOB_QUEUED, CK_JOB_RUNNING, CK_JOB_FINISHED, CK_JOB_FAILED,
                    CK_JOB_STATE_COUNT };
const char *ck_job_state_name(enum ck_job_state s); /* "queued", "running", "finished", "failed" */
int ck_job_state_parse(const char *name, enum ck_job_state *out, ck_error *err);

/* ---- tenants and tokens ---- */
struct ck_tenant {
    int64_t id;
    char *name;
    int64_t created_at;
};
void ck_tenant_free(struct ck_tenant *t);

/* The tenant every `certkeep init` creates; its admins administer the whole installation. */
#define CK_OPERATOR_TENANT_ID   1
#define CK_OPERATOR_TENANT_NAME "default"

struct ck_token {
    int64_t id;
    int64_t tenant_id;
    char *tenant_name;
    char *name; /* a label, e.g. "ci" */
    enum ck_role role;
    int64_t created_at;
};
void ck_token_free(struct ck_token *t);

/* ---- enrollments ---- */
struct ck_subject {
    char *o, *ou, *l, *st, *c; /* NULL when not set */
};

struct ck_policy {
    char *lifetime;      /* NULL = the issuer's default; "90d", "40s" */
    char *renew_before;  /* NULL = 60d (20d for DV); "60d", "90s", "33%" */
    char *deploy_before; /* NULL = 7d */
    bool always_test_on_staging;
};

struct ck_enrollment {
    int64_t id;
    int64_t tenant_id;
    char *name;
    char *cn;
    ck_strv sans; /* A-labels, lower case, the CN always among them, no duplicates */
    struct ck_subject subject;
    enum ck_key_type key_type;
    enum ck_validation validation;
    char *issuer;    /* "manual", or the name of one of the tenant's issuers (local, acme) */
    char *challenge; /* for acme: "dns-01" or "http-01"; NULL otherwise */
    char *dns;       /* for dns-01: the name of one of the tenant's DNS providers */
    ck_strv contacts;
    struct ck_policy policy;
    ck_strv watch; /* endpoints to watch besides the production listener (core/watch.h) */
    int64_t staging_order_id;    /* 0 = none */
    int64_t production_order_id; /* 0 = none */
    int64_t created_at, updated_at;
};
void ck_enrollment_free(struct ck_enrollment *e);

/* ---- orders ---- */
struct ck_order {
    int64_t id;
    int64_t tenant_id;
    int64_t enrollment_id;
    char *enrollment_name;
    enum ck_order_state state;
    enum ck_key_type key_type;
    uint8_t *sealed_key; /* NULL until the csr job ran; AAD ck_order_key_aad() */
    size_t sealed_key_len;
    char *csr_pem;       /* NULL until the csr job ran */
    bool csr_uploaded;   /* started from a CSR the user uploaded: no key inside certkeep */
    char *cert_pem;      /* the accepted certificate (leaf), from awaiting_ack on */
    char *chain_pem;     /* its issuer chain, ordered leaf-to-root, trusted root left out */
    char *findings_json; /* the accepted import's {"errors":[],"warnings":[...]} */
    int64_t cert_not_after; /* 0 until a certificate is accepted */
    int64_t staging_acked_at;  /* 0 = the staging test was not acknowledged */
    int64_t deploy_not_before; /* 0 = no date; production waits until then (seed 002) */
    int64_t staged_at, deployed_at; /* 0 = not yet */
    char *acme_state_json; /* the ACME client's resumable state (src/issuers/acme), or NULL */
    char *error;         /* why it failed, when failed */
    int64_t created_at, updated_at;
};
void ck_order_free(struct ck_order *o);

/* "certkeep/order/<id>/key": the associated data that binds a sealed key to its order. */
void ck_order_key_aad(int64_t order_id, char *buf, size_t len);

struct ck_job {
    int64_t id;
    int64_t tenant_id;
    int64_t enrollment_id; /* 0 = none */
    char *enrollment_name; /* NULL = none */
    int64_t order_id;      /* 0 = none */
    enum ck_job_type type;
    enum ck_job_state state;
    int64_t created_at, started_at, finished_at; /* 0 = not yet */
    char *error;
    char *params_json; /* what ck_store_job_enqueue was given, or NULL */
    char *worker;      /* who claimed it last ("host:pid:n"): while it runs, the lease holder */
    ck_strv artifacts; /* names of stored artifacts, e.g. "csr" */
};
void ck_job_free(struct ck_job *j);

struct ck_job_log_line {
    int64_t at;
    char *level; /* "info", "warn", "error" */
    char *message;
};
void ck_job_log_lines_free(struct ck_job_log_line *lines, size_t n);

/* ---- events (seed 001's PollInfo / PollConfirm) ---- */
/* Event types: "certificate_needed" (a manual order's CSR is ready: buy a certificate),
 * "warnings_to_acknowledge", "certificate_issued", "import_rejected". */
struct ck_event {
    int64_t id;
    int64_t tenant_id;
    char *type;
    int64_t enrollment_id; /* 0 = none */
    char *enrollment_name; /* NULL = none */
    int64_t order_id;      /* 0 = none */
    char *message;         /* a sentence for a person */
    char *data_json;       /* a JSON object with details, or NULL */
    int64_t created_at;
    int64_t confirmed_at; /* 0 = not yet */
};
void ck_event_free(struct ck_event *e);

/* What a state change adds to the tenant's events, in the same transaction. */
struct ck_event_new {
    const char *type;
    int64_t enrollment_id;
    int64_t order_id;
    const char *message;
    const char *data_json; /* NULL or a JSON object */
};

/* ---- what the edge serves (issue 4) ---- */
enum ck_environment { CK_ENV_STAGING, CK_ENV_PRODUCTION };
const char *ck_environment_name(enum ck_environment env); /* "staging", "production" */

/* One certificate the edge serves: every name of the enrollment's certificate, across all
 * tenants (the edge serves every tenant; names are what tells them apart). */
struct ck_edge_entry {
    int64_t tenant_id;
    int64_t enrollment_id;
    int64_t order_id;
    ck_strv names;       /* the enrollment's SANs, wildcards as "*.example.com" */
    char *cert_pem;
    char *chain_pem;
    uint8_t *sealed_key; /* AAD ck_order_key_aad(order_id); NULL for uploaded-CSR orders, which
                            the edge cannot serve */
    size_t sealed_key_len;
    int64_t cert_not_after;
};
void ck_edge_entry_free(struct ck_edge_entry *e);

/* A file target: where a certificate is written for a server certkeep does not run. */
struct ck_target {
    int64_t id;
    int64_t tenant_id;
    int64_t enrollment_id;
    enum ck_environment environment;
    char *directory;      /* cert.pem, chain.pem, fullchain.pem, key.pem are written here */
    char *reload_command; /* argv as a JSON array of strings, run without a shell; NULL = none */
    int timeout_seconds;  /* for the reload command */
    char *probe_endpoint; /* "HOST:PORT" checked after deployment, or NULL */
    int64_t created_at;
};
void ck_target_free(struct ck_target *t);

/* ---- issuers (issue 5) ---- */
/* A tenant's certificate source. "local": certkeep's own CA (the tenant's, else the shared one);
 * "acme": an RFC 8555 CA. Secrets are sealed (AAD "certkeep/issuer/<id>/eab" and
 * "certkeep/issuer/<id>/account-key") and never leave the store unsealed except to the job. */
struct ck_issuer {
    int64_t id;
    int64_t tenant_id;
    char *name;
    char *type;           /* "local" | "acme" */
    char *directory_url;  /* acme */
    char *ca_bundle_pem;  /* acme: roots to trust for the directory's HTTPS, or NULL */
    char *eab_kid;        /* acme external account binding, or NULL */
    uint8_t *sealed_eab_hmac;
    size_t sealed_eab_hmac_len;
    ck_strv contacts;     /* "mailto:ops@example.com" */
    char *account_url;    /* acme, once registered */
    uint8_t *sealed_account_key;
    size_t sealed_account_key_len;
    int64_t created_at;
};
void ck_issuer_free(struct ck_issuer *i);

/* A tenant's way to publish dns-01 TXT records (src/issuers/dns/dns01.h). The TSIG secret is
 * sealed with AAD "certkeep/dns/<id>/tsig". */
struct ck_dns_provider {
    int64_t id;
    int64_t tenant_id;
    char *name;
    char *mode;          /* "rfc2136" | "hook" | "manual" */
    char *server;        /* rfc2136 primary "ADDR:PORT" */
    char *zone;
    char *tsig_name;
    char *tsig_alg;
    uint8_t *sealed_tsig_secret;
    size_t sealed_tsig_secret_len;
    char *hook_path;
    ck_strv check_servers; /* "ADDR:PORT" each; empty = the default rule */
    int ttl;
    int64_t created_at;
};
void ck_dns_provider_free(struct ck_dns_provider *d);

/* A local CA: the tenant's own (tenant_id > 0) or the shared one (tenant_id 0). Key sealed with
 * AAD "certkeep/ca/<id>/key". */
struct ck_local_ca_record {
    int64_t id;
    int64_t tenant_id;
    char *cert_pem;
    uint8_t *sealed_key;
    size_t sealed_key_len;
    int64_t created_at;
};
void ck_local_ca_record_free(struct ck_local_ca_record *ca);

/* ---- webhooks (issue 6) ---- */
/* An HTTPS endpoint that receives every event of its tenant as signed JSON (notify/webhook.h).
 * The secret is sealed with AAD "certkeep/webhook/<id>/secret". Free with ck_webhook_free
 * (store.h). */
struct ck_webhook {
    int64_t id;
    int64_t tenant_id;
    char *url;
    uint8_t *sealed_secret;
    size_t sealed_secret_len;
    bool active;
    int64_t last_event_id; /* the newest event already turned into deliveries */
    int64_t created_at;
};

/* One event for one webhook: retried until the endpoint answers 2xx (no giving up). */
enum ck_delivery_state { CK_DELIVERY_PENDING, CK_DELIVERY_DELIVERED };

struct ck_webhook_delivery {
    int64_t id;
    int64_t webhook_id;
    int64_t event_id;
    char *event_type;
    enum ck_delivery_state state;
    int attempts;
    int64_t next_attempt_at;
    long last_status; /* the last attempt's HTTP status; 0 = none or no answer */
    char *last_error; /* NULL when the last attempt was acknowledged (or none was made) */
    int64_t delivered_at; /* 0 = not yet */
    int64_t created_at;
};

/* ---- trusted roots a tenant adds for its private CAs ---- */
struct ck_root {
    int64_t id;
    int64_t tenant_id;
    char *subject;            /* the root's subject, RFC 2253 style */
    char *sha256_fingerprint; /* "AB:CD:..." as in x509info.h; unique per tenant */
    char *pem;
    int64_t not_after;
    int64_t created_at;
};
void ck_root_free(struct ck_root *r);

#endif
