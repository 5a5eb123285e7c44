#include "core/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {"viewer", "editor", "admin"};
static const char *const validation_names[] = {"dv", "ov", "ev"};
static const char *const order_state_names[CK_ORDER_STATE_COUNT] = {
    "new",    "csr_ready", "pending_validation", "checking",  "awaiting_ack", "issued",
    "staged", "deployed",  "superseded",         "cancelled", "failed",
};
static const char *const job_type_names[CK_JOB_TYPE_COUNT] = {
    "csr", "import", "stage", "staging_test", "deploy", "probe", "issue"};
static const char *const environment_names[] = {"staging", "production"};
static const char *const job_state_names[CK_JOB_STATE_COUNT] = {"queued", "running", "finished",
                                                                "failed"};

/* Looks name up in a table of n names; on failure the error lists every allowed name. */
static int parse_enum(const char *const *names, size_t n, const char *what, const char *name,
                      int *out, ck_error *err)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    char allowed[256] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(allowed);
        snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "", names[i]);
    }
    return ck_error_set(err, 400, "invalid_field", "%s %s%s%s is not one of: %s", what,
                        name ? "\"" : "", name ? name : "(none)", name ? "\"" : "", allowed);
}

#define NAME_OF(table, value)                                                                      \
    ((size_t)(value) < CK_ARRAY_LEN(table) ? (table)[(value)] : "unknown")

const char *ck_role_name(enum ck_role role)
{
    return NAME_OF(role_names, role);
}

int ck_role_parse(const char *name, enum ck_role *out, ck_error *err)
{
    int v;
    if (parse_enum(role_names, CK_ARRAY_LEN(role_names), "role", name, &v, err) != 0)
        return -1;
    *out = (enum ck_role)v;
    return 0;
}

const char *ck_validation_name(enum ck_validation v)
{
    return NAME_OF(validation_names, v);
}

int ck_validation_parse(const char *name, enum ck_validation *out, ck_error *err)
{
    int v;
    if (parse_enum(validation_names, CK_ARRAY_LEN(validation_names), "validation level", name,
                   &v, err) != 0)
        return -1;
    *out = (enum ck_validation)v;
    return 0;
}

const char *ck_order_state_name(enum ck_order_state s)
{
    return NAME_OF(order_state_names, s);
}

int ck_order_state_parse(const char *name, enum ck_order_state *out, ck_error *err)
{
    int v;
    if (parse_enum(order_state_names, CK_ARRAY_LEN(order_state_names), "order state", name, &v,
                   err) != 0)
        return -1;
    *out = (enum ck_order_state)v;
    return 0;
}

bool ck_order_state_is_open(enum ck_order_state s)
{
    return s <= CK_ORDER_STAGED;
}

const char *ck_job_type_name(enum ck_job_type t)
{
    return NAME_OF(job_type_names, t);
}

int ck_job_type_parse(const char *name, enum ck_job_type *out, ck_error *err)
{
    int v;
    if (parse_enum(job_type_names, CK_ARRAY_LEN(job_type_names), "job type", name, &v, err) != 0)
        return -1;
    *out = (enum ck_job_type)v;
    return 0;
}

const char *ck_job_state_name(enum ck_job_state s)
{
    return NAME_OF(job_state_names, s);
}

int ck_job_state_parse(const char *name, enum ck_job_state *out, ck_error *err)
{
    int v;
    if (parse_enum(job_state_names, CK_ARRAY_LEN(job_state_names), "job state", name, &v, err) !=
        0)
        return -1;
    *out = (enum ck_job_state)v;
    return 0;
}

void ck_tenant_free(struct ck_tenant *t)
{
    free(t->name);
    memset(t, 0, sizeof(*t));
}

void ck_token_free(struct ck_token *t)
{
    free(t->tenant_name);
    free(t->name);
    memset(t, 0, sizeof(*t));
}

void ck_enrollment_free(struct ck_enrollment *e)
{
    free(e->name);
    free(e->cn);
    ck_strv_free(&e->sans);
    free(e->subject.o);
    free(e->subject.ou);
    free(e->subject.l);
    free(e->subject.st);
    free(e->subject.c);
    free(e->issuer);
    free(e->challenge);
    free(e->dns);
    ck_strv_free(&e->contacts);
    ck_strv_free(&e->watch);
    free(e->policy.lifetime);
    free(e->policy.renew_before);
    free(e->policy.deploy_before);
    memset(e, 0, sizeof(*e));
}

void ck_order_free(struct ck_order *o)
{
    free(o->enrollment_name);
    free(o->sealed_key);
    free(o->csr_pem);
    free(o->cert_pem);
    free(o->chain_pem);
    free(o->findings_json);
    free(o->acme_state_json);
    free(o->error);
    memset(o, 0, sizeof(*o));
}

void ck_order_key_aad(int64_t order_id, char *buf, size_t len)
{
    snprintf(buf, len, "certkeep/order/%lld/key", (long long)order_id);
}

void ck_job_free(struct ck_job *j)
{
    free(j->enrollment_name);
    free(j->error);
    free(j->params_json);
    free(j->worker);
    ck_strv_free(&j->artifacts);
    memset(j, 0, sizeof(*j));
}

void ck_job_log_lines_free(struct ck_job_log_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(lines[i].level);
        free(lines[i].message);
    }
    free(lines);
}

void ck_event_free(struct ck_event *e)
{
    free(e->type);
    free(e->enrollment_name);
    free(e->message);
    free(e->data_json);
    memset(e, 0, sizeof(*e));
}

void ck_root_free(struct ck_root *r)
{
    free(r->subject);
    free(r->sha256_fingerprint);
    free(r->pem);
    memset(r, 0, sizeof(*r));
}

const char *ck_environment_name(enum ck_environment env)
{
    return NAME_OF(environment_names, env);
}

void ck_edge_entry_free(struct ck_edge_entry *e)
{
    ck_strv_free(&e->names);
    free(e->cert_pem);
    free(e->chain_pem);
    free(e->sealed_key);
    memset(e, 0, sizeof(*e));
}

void ck_target_free(struct ck_target *t)
{
    free(t->directory);
    free(t->reload_command);
    free(t->probe_endpoint);
    memset(t, 0, sizeof(*t));
}

void ck_issuer_free(struct ck_issuer *i)
{
    free(i->name);
    free(i->type);
    free(i->directory_url);
    free(i->ca_bundle_pem);
    free(i->eab_kid);
    free(i->sealed_eab_hmac);
    ck_strv_free(&i->contacts);
    free(i->account_url);
    free(i->sealed_account_key);
    memset(i, 0, sizeof(*i));
}

void ck_dns_provider_free(struct ck_dns_provider *d)
{
    free(d->name);
    free(d->mode);
    free(d->server);
    free(d->zone);
    free(d->tsig_name);
    free(d->tsig_alg);
    free(d->sealed_tsig_secret);
    free(d->hook_path);
    ck_strv_free(&d->check_servers);
    memset(d, 0, sizeof(*d));
}

void ck_local_ca_record_free(struct ck_local_ca_record *ca)
{
    free(ca->cert_pem);
    free(ca->sealed_key);
    memset(ca, 0, sizeof(*ca));
}
