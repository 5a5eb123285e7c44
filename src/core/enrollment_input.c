#include "core/enrollment_input.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/duration.h"
#include "common/log.h"
#include "core/names.h"
#include "core/watch.h"
#include "crypto/keys.h"

#define SUBJECT_FIELD_MAX 64 /* characters; the X.520 upper bound for O, OU, L and ST */
#define CONTACTS_MAX      16
#define CONTACT_LEN_MAX   254
#define SANS_MAX          100 /* what public CAs accept in one certificate */

enum field_use { FOR_CREATE = 1, FOR_UPDATE = 2, FOR_BOTH = 3 };

typedef void (*field_apply)(const json_t *value, struct ck_enrollment *e,
                            struct ck_input_errors *errs);

struct field {
    const char *key;
    unsigned use;
    field_apply apply; /* NULL for the keys handled elsewhere (name, pre-fill) */
};

/* ---- collecting problems ---- */

void ck_input_errors_add(struct ck_input_errors *errs, const ck_error *problem)
{
    if (errs->count == 0)
        errs->first = *problem;
    errs->count++;
    if (errs->details == NULL)
        errs->details = json_array();
    if (errs->details != NULL)
        json_array_append_new(errs->details, json_pack("{s:s,s:s}", "code", problem->code,
                                                       "message", problem->message));
}

void ck_input_errors_free(struct ck_input_errors *errs)
{
    json_decref(errs->details);
    memset(errs, 0, sizeof(*errs));
}

__attribute__((format(printf, 4, 5))) static void problem(struct ck_input_errors *errs, int status,
                                                          const char *code, const char *fmt, ...)
{
    ck_error e = {.status = status};
    snprintf(e.code, sizeof(e.code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    ck_input_errors_add(errs, &e);
}

static void out_of_memory(struct ck_input_errors *errs)
{
    problem(errs, 500, "out_of_memory", "out of memory while reading the request");
}

/* ---- small checks ---- */

static bool want_string(const char *field, const json_t *v, struct ck_input_errors *errs)
{
    if (json_is_string(v))
        return true;
    problem(errs, 400, "invalid_field", "%s must be a string", field);
    return false;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool has_control_char(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            return true;
    return false;
}

static bool is_ascii_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The policy's syntax is duration.h's, so what is stored here always parses there later. */
static bool duration_valid(const char *s, bool percent_ok)
{
    int64_t seconds;
    struct ck_lead_time lead;
    return percent_ok ? ck_lead_time_parse(s, &lead, NULL) == 0
                      : ck_duration_parse(s, &seconds, NULL) == 0;
}

/* Replaces *slot by a copy of value (NULL or "" clears it). */
static int replace_str(char **slot, const char *value)
{
    char *copy = NULL;
    if (value != NULL && value[0] != '\0' && (copy = strdup(value)) == NULL)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* ---- one function per field ---- */

static void apply_cn(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!want_string("cn", v, errs))
        return;
    char *cn = strdup(json_string_value(v));
    ck_error err;
    if (cn == NULL) {
        out_of_memory(errs);
    } else if (ck_hostname_check(cn, &err) != 0) {
        ck_input_errors_add(errs, &err);
        free(cn);
    } else {
        free(e->cn);
        e->cn = cn;
    }
}

static void apply_sans(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!json_is_array(v)) {
        problem(errs, 400, "invalid_field", "sans must be an array of hostnames");
        return;
    }
    if (json_array_size(v) > SANS_MAX) {
        problem(errs, 400, "invalid_field", "sans has %zu names; at most %d are allowed",
                json_array_size(v), SANS_MAX);
        return;
    }
    size_t before = errs->count;
    ck_strv sans = {0};
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            problem(errs, 400, "invalid_field", "sans[%zu] must be a string", i);
            continue;
        }
        char *name = strdup(json_string_value(item));
        ck_error err;
        if (name == NULL || ck_strv_push(&sans, name) != 0)
            out_of_memory(errs);
        else if (ck_hostname_check(sans.items[sans.len - 1], &err) != 0)
            ck_input_errors_add(errs, &err);
        free(name);
    }
    if (errs->count == before) {
        ck_strv_free(&e->sans);
        e->sans = sans;
        sans = (ck_strv){0};
    }
    ck_strv_free(&sans);
}

static char **subject_slot(struct ck_subject *s, const char *key)
{
    if (strcmp(key, "o") == 0)
        return &s->o;
    if (strcmp(key, "ou") == 0)
        return &s->ou;
    if (strcmp(key, "l") == 0)
        return &s->l;
    if (strcmp(key, "st") == 0)
        return &s->st;
    if (strcmp(key, "c") == 0)
        return &s->c;
    return NULL;
}

/* Why a subject value is refused, or NULL when it is fine. */
static const char *subject_value_problem(const char *key, const char *value)
{
    if (strcmp(key, "c") == 0)
        return strlen(value) == 2 && is_ascii_letter(value[0]) && is_ascii_letter(value[1])
                   ? NULL
                   : "must be a two-letter country code such as FR";
    if (utf8_chars(value) > SUBJECT_FIELD_MAX)
        return "is longer than 64 characters";
    if (has_control_char(value))
        return "contains a control character";
    return NULL;
}

/* Sets one subject field; the country is stored upper-case. */
static int subject_set(struct ck_subject *s, const char *key, const char *value)
{
    char **slot = subject_slot(s, key);
    if (replace_str(slot, value) != 0)
        return -1;
    if (strcmp(key, "c") == 0 && *slot != NULL)
        for (char *p = *slot; *p != '\0'; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    return 0;
}

static void apply_subject(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!json_is_object(v)) {
        problem(errs, 400, "invalid_field", "subject must be an object with o, ou, l, st, c");
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        const char *why = NULL;
        if (subject_slot(&e->subject, key) == NULL) {
            problem(errs, 400, "unknown_field",
                    "unknown field \"subject.%s\" (allowed: o, ou, "
                    "l, st, c)",
                    key);
        } else if (!json_is_null(value) && !json_is_string(value)) {
            problem(errs, 400, "invalid_field", "subject.%s must be a string or null", key);
        } else if (json_is_string(value) &&
                   (why = subject_value_problem(key, json_string_value(value))) != NULL) {
            problem(errs, 400, "invalid_field", "subject.%s %s", key, why);
        } else if (subject_set(&e->subject, key, json_string_value(value)) != 0) {
            out_of_memory(errs);
        }
    }
}

static void apply_key_type(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    ck_error err;
    if (want_string("key_type", v, errs) &&
        ck_key_type_parse(json_string_value(v), &e->key_type, &err) != 0)
        ck_input_errors_add(errs, &err);
}

static void apply_validation(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    ck_error err;
    if (want_string("validation", v, errs) &&
        ck_validation_parse(json_string_value(v), &e->validation, &err) != 0)
        ck_input_errors_add(errs, &err);
}

/* "manual" or the name of one of the tenant's issuers; that it exists, and that the challenge
 * and DNS provider fit its type, is checked by the API against the store. */
static void apply_issuer(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!want_string("issuer", v, errs))
        return;
    if (!ck_resource_name_valid(json_string_value(v)))
        problem(errs, 400, "invalid_field",
                "issuer \"%s\" is not an issuer name: use manual or one of certkeep issuer list",
                json_string_value(v));
    else if (replace_str(&e->issuer, json_string_value(v)) != 0)
        out_of_memory(errs);
}

static void apply_challenge(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (json_is_null(v)) {
        free(e->challenge);
        e->challenge = NULL;
        return;
    }
    if (!want_string("challenge", v, errs))
        return;
    const char *c = json_string_value(v);
    if (strcmp(c, "dns-01") != 0 && strcmp(c, "http-01") != 0)
        problem(errs, 400, "invalid_field", "challenge must be dns-01 or http-01, not \"%s\"", c);
    else if (replace_str(&e->challenge, c) != 0)
        out_of_memory(errs);
}

static void apply_dns(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (json_is_null(v)) {
        free(e->dns);
        e->dns = NULL;
        return;
    }
    if (!want_string("dns", v, errs))
        return;
    if (!ck_resource_name_valid(json_string_value(v)))
        problem(errs, 400, "invalid_field", "dns \"%s\" is not a DNS provider name",
                json_string_value(v));
    else if (replace_str(&e->dns, json_string_value(v)) != 0)
        out_of_memory(errs);
}

static void apply_contacts(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!json_is_array(v) || json_array_size(v) > CONTACTS_MAX) {
        problem(errs, 400, "invalid_field", "contacts must be an array of at most %d strings",
                CONTACTS_MAX);
        return;
    }
    size_t before = errs->count;
    ck_strv contacts = {0};
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL || s[0] == '\0' || strlen(s) > CONTACT_LEN_MAX || has_control_char(s))
            problem(errs, 400, "invalid_field",
                    "contacts[%zu] must be a non-empty string of at most %d characters", i,
                    CONTACT_LEN_MAX);
        else if (ck_strv_push(&contacts, s) != 0)
            out_of_memory(errs);
    }
    if (errs->count == before) {
        ck_strv_free(&e->contacts);
        e->contacts = contacts;
        contacts = (ck_strv){0};
    }
    ck_strv_free(&contacts);
}

/* null or [] clears the list; each endpoint is checked and normalised, duplicates dropped. */
static void apply_watch(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!json_is_null(v) && (!json_is_array(v) || json_array_size(v) > CK_WATCH_MAX)) {
        problem(errs, 400, "invalid_field",
                "watch must be an array of at most %d endpoints \"HOST:PORT\" or "
                "\"HOST:PORT/SNI\"",
                CK_WATCH_MAX);
        return;
    }
    size_t before = errs->count, i;
    ck_strv watch = {0};
    json_t *item;
    json_array_foreach(v, i, item)
    {
        struct ck_watch_endpoint ep;
        ck_error err = {0};
        if (!json_is_string(item))
            problem(errs, 400, "invalid_field", "watch[%zu] must be a string \"HOST:PORT\"", i);
        else if (ck_watch_endpoint_parse(json_string_value(item), &ep, &err) != 0)
            ck_input_errors_add(errs, &err);
        else if (!ck_strv_contains(&watch, ep.text) && ck_strv_push(&watch, ep.text) != 0)
            out_of_memory(errs);
    }
    if (errs->count == before) {
        ck_strv_free(&e->watch);
        e->watch = watch;
        watch = (ck_strv){0};
    }
    ck_strv_free(&watch);
}

static void apply_duration(const char *key, const json_t *value, char **slot, bool percent_ok,
                           struct ck_input_errors *errs)
{
    if (json_is_null(value)) {
        replace_str(slot, NULL);
        return;
    }
    const char *s = json_string_value(value);
    if (s == NULL || !duration_valid(s, percent_ok))
        problem(errs, 400, "invalid_field",
                "policy.%s must be a duration such as 90d, 12h, 30m or 40s%s, or null", key,
                percent_ok ? " (or a percentage of the lifetime such as 33%)" : "");
    else if (replace_str(slot, s) != 0)
        out_of_memory(errs);
}

static void apply_policy(const json_t *v, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    if (!json_is_object(v)) {
        problem(errs, 400, "invalid_field", "policy must be an object");
        return;
    }
    struct ck_policy *p = &e->policy;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        if (strcmp(key, "lifetime") == 0)
            apply_duration(key, value, &p->lifetime, false, errs);
        else if (strcmp(key, "renew_before") == 0)
            apply_duration(key, value, &p->renew_before, true, errs);
        else if (strcmp(key, "deploy_before") == 0)
            apply_duration(key, value, &p->deploy_before, false, errs);
        else if (strcmp(key, "always_test_on_staging") != 0)
            problem(errs, 400, "unknown_field",
                    "unknown field \"policy.%s\" (allowed: lifetime, renew_before, "
                    "deploy_before, always_test_on_staging)",
                    key);
        else if (!json_is_boolean(value))
            problem(errs, 400, "invalid_field",
                    "policy.always_test_on_staging must be true or "
                    "false");
        else
            p->always_test_on_staging = json_is_true(value);
    }
}

static const struct field fields[] = {
    {"name", FOR_CREATE, NULL},
    {"cn", FOR_BOTH, apply_cn},
    {"sans", FOR_BOTH, apply_sans},
    {"subject", FOR_BOTH, apply_subject},
    {"key_type", FOR_BOTH, apply_key_type},
    {"validation", FOR_BOTH, apply_validation},
    {"issuer", FOR_BOTH, apply_issuer},
    {"challenge", FOR_BOTH, apply_challenge},
    {"dns", FOR_BOTH, apply_dns},
    {"contacts", FOR_BOTH, apply_contacts},
    {"watch", FOR_BOTH, apply_watch},
    {"policy", FOR_BOTH, apply_policy},
    {"from_pem", FOR_CREATE, NULL},
    {"from_host", FOR_CREATE, NULL},
    {"from_sni", FOR_CREATE, NULL},
};

static const struct field *field_find(const char *key)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(fields); i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

/* Reports every key the request may not carry. */
static void check_keys(const json_t *body, unsigned use, struct ck_input_errors *errs)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)body, key, value)
    {
        const struct field *f = field_find(key);
        if (f == NULL)
            problem(errs, 400, "unknown_field", "unknown field \"%s\"", key);
        else if ((f->use & use) == 0)
            problem(errs, 400, "invalid_field", "%s cannot be changed by an update", key);
    }
}

static void apply_fields(const json_t *body, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)body, key, value)
    {
        const struct field *f = field_find(key);
        if (f != NULL && f->apply != NULL)
            f->apply(value, e, errs);
    }
}

/* The SAN list with the CN first, once everything else is known. */
static void finish_names(struct ck_enrollment *e, struct ck_input_errors *errs)
{
    ck_error err;
    if (errs->count == 0 && ck_san_list_normalise(e->cn, &e->sans, &err) != 0)
        ck_input_errors_add(errs, &err);
}

/* ---- copies ---- */

static int subject_copy(struct ck_subject *dst, const struct ck_subject *src)
{
    dst->o = ck_strdup(src->o);
    dst->ou = ck_strdup(src->ou);
    dst->l = ck_strdup(src->l);
    dst->st = ck_strdup(src->st);
    dst->c = ck_strdup(src->c);
    return (src->o && !dst->o) || (src->ou && !dst->ou) || (src->l && !dst->l) ||
                   (src->st && !dst->st) || (src->c && !dst->c)
               ? -1
               : 0;
}

static int enrollment_copy(struct ck_enrollment *dst, const struct ck_enrollment *src)
{
    *dst = *src;
    dst->name = ck_strdup(src->name);
    dst->cn = ck_strdup(src->cn);
    dst->issuer = ck_strdup(src->issuer);
    dst->challenge = ck_strdup(src->challenge);
    dst->dns = ck_strdup(src->dns);
    dst->sans = (ck_strv){0};
    dst->contacts = (ck_strv){0};
    dst->watch = (ck_strv){0};
    dst->subject = (struct ck_subject){0};
    dst->policy.lifetime = ck_strdup(src->policy.lifetime);
    dst->policy.renew_before = ck_strdup(src->policy.renew_before);
    dst->policy.deploy_before = ck_strdup(src->policy.deploy_before);
    int rc = subject_copy(&dst->subject, &src->subject);
    if (ck_strv_copy(&dst->sans, &src->sans) != 0 ||
        ck_strv_copy(&dst->contacts, &src->contacts) != 0 ||
        ck_strv_copy(&dst->watch, &src->watch) != 0)
        rc = -1;
    if ((src->name && !dst->name) || (src->cn && !dst->cn) || (src->issuer && !dst->issuer) ||
        (src->challenge && !dst->challenge) || (src->dns && !dst->dns) ||
        (src->policy.lifetime && !dst->policy.lifetime) ||
        (src->policy.renew_before && !dst->policy.renew_before) ||
        (src->policy.deploy_before && !dst->policy.deploy_before))
        rc = -1;
    return rc;
}

static int enrollment_defaults(struct ck_enrollment *e)
{
    memset(e, 0, sizeof(*e));
    e->key_type = CK_KEY_RSA_2048;
    e->validation = CK_VALIDATION_DV;
    e->issuer = strdup("manual");
    return e->issuer ? 0 : -1;
}

/* ---- pre-fill ---- */

/* The certificate's DNS SANs that pass the hostname checks, lower-cased, without duplicates. */
static int prefill_sans(const ck_strv *names, ck_strv *out)
{
    for (size_t i = 0; i < names->len; i++) {
        char *name = strdup(names->items[i]);
        if (name == NULL)
            return -1;
        int rc = 0;
        if (ck_hostname_check(name, NULL) != 0)
            ck_log(CK_LOG_INFO, "pre-fill: leaving out the SAN %.80s", names->items[i]);
        else if (!ck_strv_contains(out, name))
            rc = ck_strv_push(out, name);
        free(name);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* The subject's CN when it is a valid hostname, else the first SAN, else NULL (in *out). */
static int prefill_cn(const char *subject_cn, const ck_strv *sans, char **out)
{
    char *cn = ck_strdup(subject_cn);
    if (subject_cn != NULL && cn == NULL)
        return -1;
    if (cn != NULL && ck_hostname_check(cn, NULL) != 0) {
        free(cn);
        cn = NULL;
    }
    if (cn == NULL && sans->len > 0 && (cn = strdup(sans->items[0])) == NULL)
        return -1;
    *out = cn;
    return 0;
}

static int prefill_subject(const struct ck_dn *dn, struct ck_subject *out)
{
    const char *keys[] = {"o", "ou", "l", "st", "c"};
    const char *values[] = {dn->o, dn->ou, dn->l, dn->st, dn->c};
    for (size_t i = 0; i < CK_ARRAY_LEN(keys); i++)
        if (values[i] != NULL && subject_value_problem(keys[i], values[i]) == NULL &&
            subject_set(out, keys[i], values[i]) != 0)
            return -1;
    return 0;
}

static void subject_free(struct ck_subject *s)
{
    free(s->o);
    free(s->ou);
    free(s->l);
    free(s->st);
    free(s->c);
    *s = (struct ck_subject){0};
}

int ck_enrollment_prefill_from_cert(const struct ck_cert_info *info, struct ck_enrollment *e,
                                    ck_error *err)
{
    int rc = -1;
    ck_strv sans = {0};
    char *cn = NULL;
    struct ck_subject subject = {0};
    if (prefill_sans(&info->dns_sans, &sans) != 0 ||
        prefill_cn(info->subject.cn, &sans, &cn) != 0 ||
        prefill_subject(&info->subject, &subject) != 0) {
        ck_error_set(err, 500, "out_of_memory", "out of memory while copying the certificate");
        goto cleanup;
    }
    if (ck_key_type_parse(info->key_name, &e->key_type, NULL) != 0)
        e->key_type = CK_KEY_RSA_2048; /* e.g. rsa-1024: the next key is a good one anyway */
    ck_strv_free(&e->sans);
    e->sans = sans;
    sans = (ck_strv){0};
    free(e->cn);
    e->cn = cn;
    cn = NULL;
    subject_free(&e->subject);
    e->subject = subject;
    subject = (struct ck_subject){0};
    rc = 0;
cleanup:
    ck_strv_free(&sans);
    free(cn);
    subject_free(&subject);
    return rc;
}

/* ---- create and update ---- */

struct prefill_source {
    const char *pem;
    size_t pem_len;
    const char *host; /* "HOST:PORT" */
    const char *sni;
    int cancel_fd; /* gives the fetch up when readable; -1 never */
};

static void read_prefill_source(const json_t *body, const char *query_host,
                                struct prefill_source *src, struct ck_input_errors *errs)
{
    const json_t *pem = json_object_get(body, "from_pem");
    const json_t *host = json_object_get(body, "from_host");
    const json_t *sni = json_object_get(body, "from_sni");
    if (pem != NULL && want_string("from_pem", pem, errs)) {
        src->pem = json_string_value(pem);
        src->pem_len = json_string_length(pem);
    }
    if (host != NULL && want_string("from_host", host, errs))
        src->host = json_string_value(host);
    else if (host == NULL && query_host != NULL && query_host[0] != '\0')
        src->host = query_host;
    if (sni != NULL && want_string("from_sni", sni, errs))
        src->sni = json_string_value(sni);
    if (src->pem != NULL && src->host != NULL)
        problem(errs, 400, "invalid_field", "give from_pem or from_host, not both");
    if (src->sni != NULL && src->host == NULL)
        problem(errs, 400, "invalid_field", "from_sni is only used with from_host");
}

static int prefill_fetch(const struct prefill_source *src, struct ck_cert_info *info, ck_error *err)
{
    if (src->pem != NULL)
        return ck_cert_info_from_pem(src->pem, src->pem_len, info, err);
    X509 *leaf = NULL;
    if (ck_fetch_peer_certificate_cancellable(src->host, src->sni, CK_PREFILL_TIMEOUT_MS,
                                              src->cancel_fd, &leaf, NULL, err) != 0)
        return -1;
    int rc = ck_cert_info_from_x509(leaf, info, err);
    X509_free(leaf);
    return rc;
}

static void read_name(const json_t *body, struct ck_enrollment *e, struct ck_input_errors *errs)
{
    const json_t *v = json_object_get(body, "name");
    if (v == NULL)
        problem(errs, 400, "missing_field", "name is required");
    else if (!want_string("name", v, errs))
        return;
    else if (!ck_resource_name_valid(json_string_value(v)))
        problem(errs, 400, "invalid_field",
                "name \"%.80s\" is not valid: use 1-63 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                json_string_value(v));
    else if (replace_str(&e->name, json_string_value(v)) != 0)
        out_of_memory(errs);
}

/* The certificate's fields first, then the body's over them. */
static int apply_prefill(const json_t *body, const struct prefill_source *src,
                         struct ck_enrollment *work, struct ck_input_errors *errs)
{
    int rc = -1;
    struct ck_cert_info info = {0};
    ck_error err;
    if (prefill_fetch(src, &info, &err) != 0 ||
        ck_enrollment_prefill_from_cert(&info, work, &err) != 0) {
        ck_input_errors_add(errs, &err);
        goto cleanup;
    }
    apply_fields(body, work, errs);
    rc = errs->count == 0 ? 0 : -1;
cleanup:
    ck_cert_info_free(&info);
    return rc;
}

bool ck_enrollment_input_needs_network(const json_t *body, const char *from_host_query)
{
    const json_t *host = json_object_get(body, "from_host");
    if (host != NULL)
        return json_is_string(host);
    return from_host_query != NULL && from_host_query[0] != '\0';
}

int ck_enrollment_input_create(const json_t *body, const char *from_host_query,
                               struct ck_enrollment *out, struct ck_input_errors *errs)
{
    return ck_enrollment_input_create_cancellable(body, from_host_query, -1, out, errs);
}

int ck_enrollment_input_create_cancellable(const json_t *body, const char *from_host_query,
                                           int cancel_fd, struct ck_enrollment *out,
                                           struct ck_input_errors *errs)
{
    int rc = -1;
    struct ck_enrollment work = {0};
    struct prefill_source src = {.cancel_fd = cancel_fd};
    if (!json_is_object(body)) {
        problem(errs, 400, "malformed_json", "the request body must be a JSON object");
        goto cleanup;
    }
    if (enrollment_defaults(&work) != 0) {
        out_of_memory(errs);
        goto cleanup;
    }
    /* Everything that can be checked without the network first, all problems at once. */
    check_keys(body, FOR_CREATE, errs);
    read_name(body, &work, errs);
    read_prefill_source(body, from_host_query, &src, errs);
    apply_fields(body, &work, errs);
    if (errs->count > 0)
        goto cleanup;
    if ((src.pem != NULL || src.host != NULL) && apply_prefill(body, &src, &work, errs) != 0)
        goto cleanup;
    finish_names(&work, errs);
    if (errs->count > 0)
        goto cleanup;
    *out = work;
    work = (struct ck_enrollment){0};
    rc = 0;
cleanup:
    ck_enrollment_free(&work);
    return rc;
}

static void strv_remove(ck_strv *v, const char *s)
{
    for (size_t i = 0; i < v->len; i++) {
        if (strcmp(v->items[i], s) == 0) {
            free(v->items[i]);
            memmove(&v->items[i], &v->items[i + 1], (v->len - i - 1) * sizeof(v->items[0]));
            v->len--;
            return;
        }
    }
}

int ck_enrollment_input_update(const json_t *body, struct ck_enrollment *e,
                               struct ck_input_errors *errs)
{
    int rc = -1;
    struct ck_enrollment work = {0};
    if (!json_is_object(body)) {
        problem(errs, 400, "malformed_json", "the request body must be a JSON object");
        goto cleanup;
    }
    if (enrollment_copy(&work, e) != 0) {
        out_of_memory(errs);
        goto cleanup;
    }
    check_keys(body, FOR_UPDATE, errs);
    apply_fields(body, &work, errs);
    /* A new CN replaces the old one among the SANs unless the request sets the SANs itself. */
    if (errs->count == 0 && json_object_get(body, "sans") == NULL && e->cn != NULL &&
        work.cn != NULL && strcmp(e->cn, work.cn) != 0)
        strv_remove(&work.sans, e->cn);
    finish_names(&work, errs);
    if (errs->count > 0)
        goto cleanup;
    ck_enrollment_free(e);
    *e = work;
    work = (struct ck_enrollment){0};
    rc = 0;
cleanup:
    ck_enrollment_free(&work);
    return rc;
}

/* ---- output ---- */

static json_t *text_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *id_or_null(int64_t id)
{
    return id > 0 ? json_integer(id) : json_null();
}

static json_t *time_json(int64_t t)
{
    char buf[32];
    ck_time_format(t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *strv_json(const ck_strv *v)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < v->len; i++)
        if (json_array_append_new(a, json_string(v->items[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

json_t *ck_enrollment_to_json(const struct ck_enrollment *e)
{
    const struct ck_subject *s = &e->subject;
    const struct ck_policy *p = &e->policy;
    json_t *subject =
        json_pack("{s:o,s:o,s:o,s:o,s:o}", "o", text_or_null(s->o), "ou", text_or_null(s->ou), "l",
                  text_or_null(s->l), "st", text_or_null(s->st), "c", text_or_null(s->c));
    json_t *policy =
        json_pack("{s:o,s:o,s:o,s:b}", "lifetime", text_or_null(p->lifetime), "renew_before",
                  text_or_null(p->renew_before), "deploy_before", text_or_null(p->deploy_before),
                  "always_test_on_staging", p->always_test_on_staging);
    json_t *j = json_pack(
        "{s:I,s:s?,s:s?,s:o,s:o,s:s,s:s,s:s?,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
        (json_int_t)e->id, "name", e->name, "cn", e->cn, "sans", strv_json(&e->sans), "subject",
        subject, "key_type", ck_key_type_name(e->key_type), "validation",
        ck_validation_name(e->validation), "issuer", e->issuer, "challenge",
        text_or_null(e->challenge), "dns", text_or_null(e->dns), "contacts",
        strv_json(&e->contacts), "policy", policy, "staging_order_id",
        id_or_null(e->staging_order_id), "production_order_id", id_or_null(e->production_order_id),
        "created_at", time_json(e->created_at), "updated_at", time_json(e->updated_at));
    if (j != NULL && json_object_set_new(j, "watch", strv_json(&e->watch)) != 0) {
        json_decref(j);
        j = NULL;
    }
    return j;
}
