/* state.c — the plain data of an ACME order: step names, problem documents and the JSON form
 * the daemon stores between steps. */
#include "issuers/acme/acme.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SUBPROBLEMS 100

static const char *const step_names[CK_ACME_STEP_COUNT] = {
    [CK_ACME_STEP_NEW] = "new",
    [CK_ACME_STEP_ACCOUNT_READY] = "account_ready",
    [CK_ACME_STEP_ORDERING] = "ordering",
    [CK_ACME_STEP_ORDERED] = "ordered",
    [CK_ACME_STEP_AUTHORIZATIONS_FETCHED] = "authorizations_fetched",
    [CK_ACME_STEP_CHALLENGES_READY] = "challenges_ready",
    [CK_ACME_STEP_VALIDATING] = "validating",
    [CK_ACME_STEP_FINALIZING] = "finalizing",
    [CK_ACME_STEP_DOWNLOADING] = "downloading",
    [CK_ACME_STEP_DONE] = "done",
    [CK_ACME_STEP_FAILED] = "failed",
};

const char *ck_acme_step_name(enum ck_acme_step step)
{
    return (unsigned)step < CK_ACME_STEP_COUNT ? step_names[step] : "unknown";
}

int ck_acme_step_parse(const char *name, enum ck_acme_step *out)
{
    for (int i = 0; name != NULL && i < CK_ACME_STEP_COUNT; i++) {
        if (strcmp(step_names[i], name) == 0) {
            *out = (enum ck_acme_step)i;
            return 0;
        }
    }
    return -1;
}

const char *ck_acme_next_name(enum ck_acme_next next)
{
    switch (next) {
    case CK_ACME_NEXT_CONTINUE:
        return "continue";
    case CK_ACME_NEXT_WAIT:
        return "wait";
    case CK_ACME_NEXT_PROVISION:
        return "provision";
    case CK_ACME_NEXT_DONE:
        return "done";
    case CK_ACME_NEXT_FAILED:
        return "failed";
    }
    return "unknown";
}

/* ---- problems ---- */

static char *json_strdup(const json_t *obj, const char *key)
{
    return ck_strdup(json_string_value(json_object_get(obj, key)));
}

/* Sets key to a string unless value is NULL; -1 on allocation failure. */
static int set_str(json_t *obj, const char *key, const char *value)
{
    if (value == NULL)
        return 0;
    return json_object_set_new(obj, key, json_string(value));
}

json_t *ck_acme_problem_to_json(const struct ck_acme_problem *p)
{
    if (p->type == NULL)
        return NULL;
    json_t *doc = json_object();
    json_t *subs = json_array();
    if (doc == NULL || subs == NULL || set_str(doc, "type", p->type) != 0 ||
        set_str(doc, "detail", p->detail) != 0 ||
        json_object_set_new(doc, "status", json_integer(p->status)) != 0)
        goto fail;
    for (size_t i = 0; i < p->subproblem_count; i++) {
        const struct ck_acme_subproblem *sp = &p->subproblems[i];
        json_t *item = json_object();
        if (json_array_append_new(subs, item) != 0 ||
            set_str(item, "identifier", sp->identifier) != 0 ||
            set_str(item, "type", sp->type) != 0 || set_str(item, "detail", sp->detail) != 0)
            goto fail;
    }
    if (p->subproblem_count > 0 && json_object_set(doc, "subproblems", subs) != 0)
        goto fail;
    json_decref(subs);
    return doc;
fail:
    json_decref(subs);
    json_decref(doc);
    return NULL;
}

int ck_acme_problem_from_json(const json_t *doc, struct ck_acme_problem *out)
{
    memset(out, 0, sizeof(*out));
    out->type = json_strdup(doc, "type");
    out->detail = json_strdup(doc, "detail");
    out->status = (int)json_integer_value(json_object_get(doc, "status"));
    const json_t *subs = json_object_get(doc, "subproblems");
    size_t n = json_array_size(subs);
    if (n > MAX_SUBPROBLEMS)
        n = MAX_SUBPROBLEMS;
    if (n > 0 && (out->subproblems = calloc(n, sizeof(*out->subproblems))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(subs, i);
        const json_t *id = json_object_get(item, "identifier");
        struct ck_acme_subproblem *sp = &out->subproblems[out->subproblem_count++];
        /* The CA sends {"type":"dns","value":...}; our stored form keeps only the value. */
        sp->identifier =
            json_is_object(id) ? json_strdup(id, "value") : json_strdup(item, "identifier");
        sp->type = json_strdup(item, "type");
        sp->detail = json_strdup(item, "detail");
    }
    return 0;
}

/* CAs end some details with a newline; the one-line form leaves trailing space out. */
static int trimmed_len(const char *text)
{
    size_t len = strnlen(text, CK_ERROR_MSG_MAX);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    return (int)len;
}

void ck_acme_problem_format(const struct ck_acme_problem *p, char *buf, size_t len)
{
    if (len == 0)
        return;
    const char *detail = p->detail != NULL ? p->detail : "no detail";
    int n = snprintf(buf, len, "%.*s (%s)", trimmed_len(detail), detail,
                     p->type != NULL ? p->type : "no type");
    for (size_t i = 0; i < p->subproblem_count && n >= 0 && (size_t)n < len; i++) {
        const struct ck_acme_subproblem *sp = &p->subproblems[i];
        const char *sub_detail = sp->detail != NULL ? sp->detail : "no detail";
        int more = snprintf(buf + n, len - (size_t)n, "; %s: %.*s (%s)",
                            sp->identifier != NULL ? sp->identifier : "?", trimmed_len(sub_detail),
                            sub_detail, sp->type != NULL ? sp->type : "no type");
        if (more < 0)
            break;
        n += more;
    }
}

void ck_acme_problem_free(struct ck_acme_problem *p)
{
    for (size_t i = 0; i < p->subproblem_count; i++) {
        free(p->subproblems[i].identifier);
        free(p->subproblems[i].type);
        free(p->subproblems[i].detail);
    }
    free(p->subproblems);
    free(p->type);
    free(p->detail);
    memset(p, 0, sizeof(*p));
}

/* ---- order state ---- */

int ck_acme_order_state_init(struct ck_acme_order_state *s, const ck_strv *names,
                             const char *challenge_type, const char *csr_pem, ck_error *err)
{
    memset(s, 0, sizeof(*s));
    if (names->len == 0 || names->len > CK_ACME_MAX_NAMES)
        return ck_error_set(err, 400, "invalid_acme_order",
                            "an ACME order needs between 1 and %d names", CK_ACME_MAX_NAMES);
    if (challenge_type != NULL && strcmp(challenge_type, "dns-01") != 0 &&
        strcmp(challenge_type, "http-01") != 0)
        return ck_error_set(err, 400, "invalid_challenge_type",
                            "challenge type %s is not supported: use dns-01 or http-01",
                            challenge_type);
    s->challenge_type = ck_strdup(challenge_type != NULL ? challenge_type : "http-01");
    s->csr_pem = ck_strdup(csr_pem);
    if (ck_strv_copy(&s->names, names) != 0 || s->challenge_type == NULL ||
        (csr_pem != NULL && s->csr_pem == NULL)) {
        ck_acme_order_state_free(s);
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
    return 0;
}

void ck_acme_challenges_free(struct ck_acme_challenge *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct ck_acme_challenge *ch = &list[i];
        free(ch->name);
        free(ch->type);
        free(ch->url);
        free(ch->authorization_url);
        free(ch->token);
        free(ch->key_authorization);
        free(ch->dns_txt_value);
    }
    free(list);
}

void ck_acme_order_state_free(struct ck_acme_order_state *s)
{
    ck_strv_free(&s->names);
    free(s->challenge_type);
    free(s->csr_pem);
    free(s->replaces);
    free(s->not_after_sent);
    free(s->account_url);
    free(s->order_url);
    free(s->order_status);
    free(s->finalize_url);
    free(s->certificate_url);
    ck_strv_free(&s->authorization_urls);
    ck_acme_challenges_free(s->challenges, s->challenge_count);
    ck_acme_problem_free(&s->problem);
    free(s->certificate_pem);
    memset(s, 0, sizeof(*s));
}

static json_t *strv_to_json(const ck_strv *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < v->len; i++) {
        if (json_array_append_new(arr, json_string(v->items[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int strv_from_json(const json_t *arr, size_t max, ck_strv *out)
{
    if (arr != NULL && (!json_is_array(arr) || json_array_size(arr) > max))
        return -1;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *item = json_string_value(json_array_get(arr, i));
        if (item == NULL || ck_strv_push(out, item) != 0)
            return -1;
    }
    return 0;
}

static json_t *challenge_to_json(const struct ck_acme_challenge *ch)
{
    json_t *obj = json_object();
    if (obj == NULL || set_str(obj, "name", ch->name) != 0 ||
        json_object_set_new(obj, "wildcard", json_boolean(ch->wildcard)) != 0 ||
        set_str(obj, "type", ch->type) != 0 || set_str(obj, "url", ch->url) != 0 ||
        set_str(obj, "authorization_url", ch->authorization_url) != 0 ||
        set_str(obj, "token", ch->token) != 0 ||
        set_str(obj, "key_authorization", ch->key_authorization) != 0 ||
        set_str(obj, "dns_txt_value", ch->dns_txt_value) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int challenge_from_json(const json_t *obj, struct ck_acme_challenge *ch)
{
    ch->name = json_strdup(obj, "name");
    ch->wildcard = json_is_true(json_object_get(obj, "wildcard"));
    ch->type = json_strdup(obj, "type");
    ch->url = json_strdup(obj, "url");
    ch->authorization_url = json_strdup(obj, "authorization_url");
    ch->token = json_strdup(obj, "token");
    ch->key_authorization = json_strdup(obj, "key_authorization");
    ch->dns_txt_value = json_strdup(obj, "dns_txt_value");
    return ch->name != NULL && ch->type != NULL && ch->url != NULL && ch->token != NULL &&
                   ch->key_authorization != NULL
               ? 0
               : -1;
}

static int state_strings_to_json(const struct ck_acme_order_state *s, json_t *doc)
{
    return set_str(doc, "step", ck_acme_step_name(s->step)) != 0 ||
                   set_str(doc, "challenge_type", s->challenge_type) != 0 ||
                   set_str(doc, "csr", s->csr_pem) != 0 ||
                   set_str(doc, "account_url", s->account_url) != 0 ||
                   set_str(doc, "order_url", s->order_url) != 0 ||
                   set_str(doc, "order_status", s->order_status) != 0 ||
                   set_str(doc, "finalize_url", s->finalize_url) != 0 ||
                   set_str(doc, "certificate_url", s->certificate_url) != 0 ||
                   set_str(doc, "certificate", s->certificate_pem) != 0 ||
                   set_str(doc, "ordering_id", s->ordering_id) != 0 ||
                   set_str(doc, "replaces", s->replaces) != 0 ||
                   set_str(doc, "not_after_sent", s->not_after_sent) != 0
               ? -1
               : 0;
}

json_t *ck_acme_order_state_to_json(const struct ck_acme_order_state *s)
{
    json_t *doc = json_object();
    json_t *challenges = json_array();
    if (doc == NULL || challenges == NULL || state_strings_to_json(s, doc) != 0 ||
        json_object_set_new(doc, "names", strv_to_json(&s->names)) != 0 ||
        json_object_set_new(doc, "authorization_urls", strv_to_json(&s->authorization_urls)) ||
        json_object_set_new(doc, "retry_after", json_integer(s->retry_after)) != 0 ||
        json_object_set_new(doc, "wait_ms", json_integer(s->wait_ms)) != 0 ||
        json_object_set_new(doc, "poll_count", json_integer(s->poll_count)) != 0 ||
        json_object_set_new(doc, "transient_count", json_integer(s->transient_count)) != 0 ||
        json_object_set_new(doc, "lifetime_s", json_integer(s->lifetime_s)) != 0 ||
        json_object_set_new(doc, "extensions_refused", json_boolean(s->extensions_refused)) != 0 ||
        json_object_set_new(doc, "replaces_sent", json_boolean(s->replaces_sent)) != 0 ||
        json_object_set(doc, "challenges", challenges) != 0)
        goto fail;
    for (size_t i = 0; i < s->challenge_count; i++)
        if (json_array_append_new(challenges, challenge_to_json(&s->challenges[i])) != 0)
            goto fail;
    json_t *problem = ck_acme_problem_to_json(&s->problem);
    if (problem != NULL && json_object_set_new(doc, "problem", problem) != 0)
        goto fail;
    json_decref(challenges);
    return doc;
fail:
    json_decref(challenges);
    json_decref(doc);
    return NULL;
}

static int state_challenges_from_json(const json_t *arr, struct ck_acme_order_state *s)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    if (n > CK_ACME_MAX_NAMES * 2 || (s->challenges = calloc(n, sizeof(*s->challenges))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        s->challenge_count++;
        if (challenge_from_json(json_array_get(arr, i), &s->challenges[i]) != 0)
            return -1;
    }
    return 0;
}

int ck_acme_order_state_from_json(const json_t *doc, struct ck_acme_order_state *out, ck_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc) ||
        ck_acme_step_parse(json_string_value(json_object_get(doc, "step")), &out->step) != 0)
        goto fail;
    out->challenge_type = json_strdup(doc, "challenge_type");
    out->csr_pem = json_strdup(doc, "csr");
    out->account_url = json_strdup(doc, "account_url");
    out->order_url = json_strdup(doc, "order_url");
    out->order_status = json_strdup(doc, "order_status");
    out->finalize_url = json_strdup(doc, "finalize_url");
    out->certificate_url = json_strdup(doc, "certificate_url");
    out->certificate_pem = json_strdup(doc, "certificate");
    snprintf(out->ordering_id, sizeof(out->ordering_id), "%s",
             json_string_value(json_object_get(doc, "ordering_id")) != NULL
                 ? json_string_value(json_object_get(doc, "ordering_id"))
                 : "");
    out->retry_after = json_integer_value(json_object_get(doc, "retry_after"));
    out->wait_ms = json_integer_value(json_object_get(doc, "wait_ms"));
    out->poll_count = (int)json_integer_value(json_object_get(doc, "poll_count"));
    out->transient_count = (int)json_integer_value(json_object_get(doc, "transient_count"));
    out->lifetime_s = json_integer_value(json_object_get(doc, "lifetime_s"));
    out->replaces = json_strdup(doc, "replaces");
    out->not_after_sent = json_strdup(doc, "not_after_sent");
    out->extensions_refused = json_is_true(json_object_get(doc, "extensions_refused"));
    out->replaces_sent = json_is_true(json_object_get(doc, "replaces_sent"));
    const json_t *problem = json_object_get(doc, "problem");
    if (out->challenge_type == NULL ||
        strv_from_json(json_object_get(doc, "names"), CK_ACME_MAX_NAMES, &out->names) != 0 ||
        out->names.len == 0 ||
        strv_from_json(json_object_get(doc, "authorization_urls"), CK_ACME_MAX_NAMES,
                       &out->authorization_urls) != 0 ||
        state_challenges_from_json(json_object_get(doc, "challenges"), out) != 0 ||
        (json_is_object(problem) && ck_acme_problem_from_json(problem, &out->problem) != 0))
        goto fail;
    return 0;
fail:
    ck_acme_order_state_free(out);
    return ck_error_set(err, 400, "invalid_acme_state",
                        "the stored ACME order state is damaged or from another version");
}
