/* order.c — the steps of one ACME order (RFC 8555 section 7.4). Each step does at most one kind
 * of exchange and leaves the state ready to be stored, so a restart never places a second order:
 * once order_url is set, every later step only reads or advances that order. */
#include "issuers/acme/client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "common/log.h"

#define FIRST_POLL_DELAY_MS  50
#define MAX_POLL_DELAY_MS    5000
#define MAX_POLLS            300
#define RATE_LIMIT_DEFAULT_S 60
#define MAX_TRANSIENT_S      300
#define MAX_CSR_PEM          (64 * 1024)
#define MAX_RECOVERY_ORDERS  20

/* What one exchange taught us: answered (status), refused (problem) or unreachable. */
enum outcome { OUTCOME_OK, OUTCOME_RETRY, OUTCOME_FAIL };

/* ---- waiting and failing ---- */

static enum ck_acme_next wait_for(struct ck_acme_order_state *s, int64_t delay_ms)
{
    s->wait_ms = delay_ms;
    s->retry_after = ck_clock_now() + (delay_ms + 999) / 1000;
    return CK_ACME_NEXT_WAIT;
}

/* Poll backoff: 50 ms doubling to 5 s, unless the CA said Retry-After. */
static enum ck_acme_next poll_later(struct ck_acme_order_state *s, const struct ck_acme_response *r,
                                    ck_error *err)
{
    if (++s->poll_count > MAX_POLLS) {
        s->step = CK_ACME_STEP_FAILED;
        ck_error_set(err, 504, "acme_timeout",
                     "the ACME server did not finish order %s after %d polls", s->order_url,
                     MAX_POLLS);
        return CK_ACME_NEXT_FAILED;
    }
    if (r != NULL && r->retry_after_s >= 0)
        return wait_for(s, r->retry_after_s * 1000);
    int shift = s->poll_count - 1 < 7 ? s->poll_count - 1 : 7;
    int64_t delay = (int64_t)FIRST_POLL_DELAY_MS << shift;
    return wait_for(s, delay > MAX_POLL_DELAY_MS ? MAX_POLL_DELAY_MS : delay);
}

static enum ck_acme_next fail_with_problem(struct ck_acme_order_state *s, const char *what,
                                           ck_error *err)
{
    char line[CK_ERROR_MSG_MAX - 96];
    ck_acme_problem_format(&s->problem, line, sizeof(line));
    s->step = CK_ACME_STEP_FAILED;
    ck_error_set(err, 502, "acme_problem", "%s: %s", what, line);
    ck_log(CK_LOG_WARN, "acme: order %s failed: %s: %s", s->order_url ? s->order_url : "-", what,
           line);
    return CK_ACME_NEXT_FAILED;
}

static enum ck_acme_next fail_local(struct ck_acme_order_state *s, const ck_error *why,
                                    ck_error *err)
{
    ck_acme_problem_free(&s->problem);
    s->problem.type = ck_strdup("urn:certkeep:acme:client");
    s->problem.detail = ck_strdup(why->message);
    s->problem.status = why->status;
    if (err != NULL && err != why)
        *err = *why;
    s->step = CK_ACME_STEP_FAILED;
    return CK_ACME_NEXT_FAILED;
}

/* Rate limits and server trouble wait; everything else the CA refuses fails the order. */
static enum ck_acme_next after_refusal(struct ck_acme_order_state *s,
                                       const struct ck_acme_response *r, const char *what,
                                       ck_error *err)
{
    ck_acme_response_problem(r, &s->problem);
    if (r->status == 429) {
        char line[CK_ERROR_MSG_MAX - 96];
        ck_acme_problem_format(&s->problem, line, sizeof(line));
        ck_error_set(err, 429, "acme_rate_limited", "%s: rate limited: %s", what, line);
        int64_t secs = r->retry_after_s >= 0 ? r->retry_after_s : RATE_LIMIT_DEFAULT_S;
        return wait_for(s, secs * 1000);
    }
    if (r->status >= 500) {
        s->transient_count++;
        if (s->transient_count <= CK_ACME_MAX_TRANSIENT) {
            ck_error_set(err, 502, "acme_server_error", "%s: the ACME server answered HTTP %ld",
                         what, r->status);
            int64_t secs = r->retry_after_s >= 0
                               ? r->retry_after_s
                               : 1LL << (s->transient_count < 8 ? s->transient_count : 8);
            return wait_for(s, (secs > MAX_TRANSIENT_S ? MAX_TRANSIENT_S : secs) * 1000);
        }
    }
    return fail_with_problem(s, what, err);
}

/* Transport failure: wait and try the same step again, a bounded number of times. */
static enum ck_acme_next after_unreachable(struct ck_acme_order_state *s, ck_error *err)
{
    if (++s->transient_count > CK_ACME_MAX_TRANSIENT) {
        ck_error why = err != NULL ? *err : (ck_error){0};
        return fail_local(s, &why, err);
    }
    int shift = s->transient_count < 8 ? s->transient_count : 8;
    int64_t secs = 1LL << shift;
    return wait_for(s, (secs > MAX_TRANSIENT_S ? MAX_TRANSIENT_S : secs) * 1000);
}

/* A signed request whose answer must be 2xx and, when doc is given, a JSON object. On
 * OUTCOME_RETRY or OUTCOME_FAIL, *next says what the step returns. */
static enum outcome exchange(struct ck_acme_client *c, struct ck_acme_order_state *s,
                             const char *url, const char *payload, const char *what,
                             struct ck_acme_response *resp, json_t **doc, enum ck_acme_next *next,
                             ck_error *err)
{
    if (ck_acme_post(c, url, payload, false, NULL, resp, err) != 0) {
        *next = after_unreachable(s, err);
        return OUTCOME_RETRY;
    }
    if (resp->status < 200 || resp->status > 299) {
        *next = after_refusal(s, resp, what, err);
        return *next == CK_ACME_NEXT_WAIT ? OUTCOME_RETRY : OUTCOME_FAIL;
    }
    s->transient_count = 0;
    if (doc != NULL && (*doc = ck_acme_response_json(resp, err)) == NULL) {
        ck_error why = err != NULL ? *err : (ck_error){0};
        *next = fail_local(s, &why, err);
        return OUTCOME_FAIL;
    }
    return OUTCOME_OK;
}

static int set_owned(char **field, const char *value)
{
    char *copy = ck_strdup(value);
    if (value != NULL && copy == NULL)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

/* ---- the steps ---- */

static enum ck_acme_next step_account(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                      ck_error *err)
{
    struct ck_acme_problem problem = {0};
    enum ck_acme_next next;
    if (ck_acme_account_ensure(c, &problem, err) != 0) {
        if (problem.type == NULL) {
            next = after_unreachable(s, err);
        } else {
            ck_acme_problem_free(&s->problem);
            s->problem = problem;
            memset(&problem, 0, sizeof(problem));
            next = s->problem.status == 429 ? wait_for(s, RATE_LIMIT_DEFAULT_S * 1000)
                                            : fail_with_problem(s, "account refused", err);
        }
        goto cleanup;
    }
    if (set_owned(&s->account_url, c->account_url) != 0) {
        ck_error why;
        ck_error_set(&why, 500, "out_of_memory", "out of memory");
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    s->transient_count = 0;
    s->step = CK_ACME_STEP_ACCOUNT_READY;
    ck_log(CK_LOG_INFO, "acme: account %s", s->account_url);
    next = CK_ACME_NEXT_CONTINUE;
cleanup:
    ck_acme_problem_free(&problem);
    return next;
}

/* The newOrder body: the identifiers, plus notAfter (the enrollment's lifetime) and replaces
 * (RFC 9773, only where the directory offers renewalInfo) unless the CA refused them before.
 * Records in s what the order carries. */
static char *new_order_payload(struct ck_acme_client *c, struct ck_acme_order_state *s)
{
    char not_after[32];
    json_t *ids = json_array();
    for (size_t i = 0; ids != NULL && i < s->names.len; i++) {
        if (json_array_append_new(
                ids, json_pack("{s:s, s:s}", "type", "dns", "value", s->names.items[i])) != 0) {
            json_decref(ids);
            return NULL;
        }
    }
    json_t *body = json_pack("{s:o}", "identifiers", ids);
    bool with_not_after = body != NULL && s->lifetime_s > 0 && !s->extensions_refused;
    bool with_replaces = body != NULL && s->replaces != NULL && !s->extensions_refused &&
                         ck_acme_resource(c, "renewalInfo") != NULL;
    free(s->not_after_sent);
    s->not_after_sent = NULL;
    s->replaces_sent = false;
    if (with_not_after) {
        ck_time_format(ck_clock_now() + s->lifetime_s, not_after, sizeof(not_after));
        if (json_object_set_new(body, "notAfter", json_string(not_after)) != 0 ||
            (s->not_after_sent = ck_strdup(not_after)) == NULL)
            goto fail;
    }
    if (with_replaces) {
        if (json_object_set_new(body, "replaces", json_string(s->replaces)) != 0)
            goto fail;
        s->replaces_sent = true;
    }
    char *text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
fail:
    json_decref(body);
    return NULL;
}

/* Copies the order object's status, finalize URL, authorizations and certificate URL. */
static int read_order(struct ck_acme_order_state *s, const json_t *order, ck_error *err)
{
    const json_t *authz = json_object_get(order, "authorizations");
    const char *status = json_string_value(json_object_get(order, "status"));
    if (status == NULL || set_owned(&s->order_status, status) != 0)
        return ck_error_set(err, 502, "acme_bad_response", "the ACME order has no status");
    if (json_string_value(json_object_get(order, "finalize")) != NULL &&
        set_owned(&s->finalize_url, json_string_value(json_object_get(order, "finalize"))) != 0)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    if (json_string_value(json_object_get(order, "certificate")) != NULL &&
        set_owned(&s->certificate_url, json_string_value(json_object_get(order, "certificate"))) !=
            0)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    if (json_array_size(authz) > 0 && s->authorization_urls.len == 0) {
        if (json_array_size(authz) > CK_ACME_MAX_NAMES)
            return ck_error_set(err, 502, "acme_bad_response",
                                "the ACME order lists too many authorizations");
        for (size_t i = 0; i < json_array_size(authz); i++) {
            const char *url = json_string_value(json_array_get(authz, i));
            if (url == NULL || ck_strv_push(&s->authorization_urls, url) != 0)
                return ck_error_set(err, 502, "acme_bad_response",
                                    "the ACME order has an unreadable authorization");
        }
    }
    return 0;
}

static enum ck_acme_next step_begin_order(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                          ck_error *err)
{
    uint8_t id[16];
    ck_error why = {0};
    if (ck_random_bytes(id, sizeof(id), &why) != 0)
        return fail_local(s, &why, err);
    ck_hex_encode(id, sizeof(id), s->ordering_id);
    memcpy(c->ordering_id, s->ordering_id, sizeof(c->ordering_id));
    s->step = CK_ACME_STEP_ORDERING;
    return CK_ACME_NEXT_CONTINUE;
}

/* True when the order is still open and names exactly the state's names. */
static bool order_matches(const struct ck_acme_order_state *s, const json_t *order)
{
    const char *status = json_string_value(json_object_get(order, "status"));
    const json_t *ids = json_object_get(order, "identifiers");
    if (status == NULL || (strcmp(status, "pending") != 0 && strcmp(status, "ready") != 0) ||
        json_array_size(ids) != s->names.len)
        return false;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *value = json_string_value(json_object_get(json_array_get(ids, i), "value"));
        if (value == NULL || !ck_strv_contains(&s->names, value))
            return false;
    }
    return true;
}

/* POST-as-GET url as a JSON object; NULL when the CA refused (or *unreachable). */
static json_t *fetch_object(struct ck_acme_client *c, const char *url, bool *unreachable,
                            ck_error *err)
{
    struct ck_acme_response resp = {.retry_after_s = -1};
    json_t *doc = NULL;
    if (url == NULL)
        return NULL;
    if (ck_acme_post(c, url, NULL, false, NULL, &resp, err) != 0)
        *unreachable = true;
    else if (resp.status == 200)
        doc = ck_acme_response_json(&resp, NULL);
    ck_acme_response_free(&resp);
    return doc;
}

/* A restart in ORDERING: the newOrder may have reached the CA before the state was stored.
 * Looks for that order among the account's orders (RFC 8555 section 7.1.2.1) and adopts it.
 * Returns 1 when adopted, 0 when there is none (or the CA lists none), -1 when unreachable. */
static int adopt_existing_order(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                ck_error *err)
{
    bool unreachable = false;
    int found = 0;
    json_t *order = NULL;
    json_t *account = fetch_object(c, s->account_url, &unreachable, err);
    const char *orders_url = json_string_value(json_object_get(account, "orders"));
    json_t *list = fetch_object(c, orders_url, &unreachable, err);
    const json_t *urls = json_object_get(list, "orders");
    size_t n = json_array_size(urls);
    /* Newest last: look at the most recent few. */
    for (size_t i = n; i > 0 && i + MAX_RECOVERY_ORDERS > n && !unreachable; i--) {
        const char *url = json_string_value(json_array_get(urls, i - 1));
        json_decref(order);
        order = fetch_object(c, url, &unreachable, err);
        if (order != NULL && order_matches(s, order)) {
            ck_error why = {0};
            if (set_owned(&s->order_url, url) != 0 || read_order(s, order, &why) != 0)
                break;
            ck_log(CK_LOG_INFO, "acme: resuming order %s placed before a restart", url);
            found = 1;
            break;
        }
    }
    json_decref(order);
    json_decref(list);
    json_decref(account);
    return unreachable ? -1 : found;
}

static enum ck_acme_next step_new_order(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                        ck_error *err);

static enum ck_acme_next step_ordering(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                       ck_error *err)
{
    if (strcmp(c->ordering_id, s->ordering_id) != 0) {
        int found = adopt_existing_order(c, s, err);
        if (found < 0)
            return after_unreachable(s, err);
        if (found > 0) {
            s->step = CK_ACME_STEP_ORDERED;
            return CK_ACME_NEXT_CONTINUE;
        }
    }
    enum ck_acme_next next = step_new_order(c, s, err);
    /* A newOrder whose answer was lost may still have reached the CA: look before a retry. */
    if (s->step == CK_ACME_STEP_ORDERING)
        c->ordering_id[0] = '\0';
    return next;
}

/* A CA that refused (4xx, not a rate limit) a newOrder carrying notAfter or replaces is asked
 * again without them: a certificate with the CA's lifetime, or a renewal that does not name the
 * certificate it replaces, beats no certificate. Resets s from FAILED back to ORDERING. */
static bool refused_extensions(struct ck_acme_order_state *s, const struct ck_acme_response *r)
{
    if (s->extensions_refused || (s->not_after_sent == NULL && !s->replaces_sent) ||
        r->status < 400 || r->status >= 500 || r->status == 429)
        return false;
    char line[CK_ERROR_MSG_MAX - 96];
    ck_acme_problem_format(&s->problem, line, sizeof(line));
    ck_log(CK_LOG_WARN, "acme: the CA refused an order with%s%s (%s): ordering without them",
           s->not_after_sent != NULL ? " notAfter" : "", s->replaces_sent ? " replaces" : "", line);
    s->extensions_refused = true;
    s->step = CK_ACME_STEP_ORDERING;
    s->transient_count = 0;
    ck_acme_problem_free(&s->problem);
    return true;
}

static enum ck_acme_next step_new_order(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                        ck_error *err)
{
    enum ck_acme_next next = CK_ACME_NEXT_CONTINUE;
    struct ck_acme_response resp = {.retry_after_s = -1};
    json_t *order = NULL;
    char *payload = NULL;
    ck_error why = {0};
    if (ck_acme_directory(c, err) != 0) {
        next = after_unreachable(s, err);
        goto cleanup;
    }
    if ((payload = new_order_payload(c, s)) == NULL) {
        ck_error_set(&why, 500, "out_of_memory", "out of memory");
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    enum outcome got = exchange(c, s, ck_acme_resource(c, "newOrder"), payload,
                                "the order was refused", &resp, &order, &next, err);
    if (got == OUTCOME_FAIL && refused_extensions(s, &resp)) {
        next = CK_ACME_NEXT_CONTINUE; /* the next step orders again without them */
        goto cleanup;
    }
    if (got != OUTCOME_OK)
        goto cleanup;
    if (resp.location == NULL || set_owned(&s->order_url, resp.location) != 0 ||
        read_order(s, order, &why) != 0 || s->finalize_url == NULL) {
        if (why.code[0] == '\0')
            ck_error_set(&why, 502, "acme_bad_response",
                         "the ACME server's new order has no URL or finalize URL");
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    ck_log(CK_LOG_INFO, "acme: order %s (%s) for %zu names%s%s%s", s->order_url, s->order_status,
           s->names.len, s->not_after_sent ? ", notAfter " : "",
           s->not_after_sent ? s->not_after_sent : "", s->replaces_sent ? ", replaces" : "");
    s->step = CK_ACME_STEP_ORDERED;
cleanup:
    json_decref(order);
    ck_acme_response_free(&resp);
    free(payload);
    return next;
}

/* ---- authorizations and challenges ---- */

static const json_t *find_challenge(const json_t *authz, const char *type)
{
    const json_t *list = json_object_get(authz, "challenges");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(list, i), "type"));
        if (t != NULL && strcmp(t, type) == 0)
            return json_array_get(list, i);
    }
    return NULL;
}

static int add_challenge(struct ck_acme_client *c, struct ck_acme_order_state *s,
                         const char *authz_url, const json_t *authz, const json_t *chal,
                         ck_error *err)
{
    const char *name =
        json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
    const char *url = json_string_value(json_object_get(chal, "url"));
    const char *token = json_string_value(json_object_get(chal, "token"));
    if (name == NULL || url == NULL || token == NULL)
        return ck_error_set(err, 502, "acme_bad_response",
                            "the ACME server sent a challenge without identifier, URL or token");
    struct ck_acme_challenge *grown =
        realloc(s->challenges, (s->challenge_count + 1) * sizeof(*s->challenges));
    if (grown == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    s->challenges = grown;
    struct ck_acme_challenge *ch = &s->challenges[s->challenge_count++];
    memset(ch, 0, sizeof(*ch));
    ch->name = ck_strdup(name);
    ch->wildcard = json_is_true(json_object_get(authz, "wildcard"));
    ch->type = ck_strdup(s->challenge_type);
    ch->url = ck_strdup(url);
    ch->authorization_url = ck_strdup(authz_url);
    ch->token = ck_strdup(token);
    ch->key_authorization = ck_acme_key_authorization(token, c->thumbprint);
    ch->dns_txt_value = malloc(CK_ACME_B64_SHA256_LEN);
    if (ch->name == NULL || ch->type == NULL || ch->url == NULL || ch->token == NULL ||
        ch->authorization_url == NULL || ch->key_authorization == NULL || ch->dns_txt_value == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    return ck_acme_dns_txt_value(ch->key_authorization, ch->dns_txt_value, err);
}

/* The problem of an authorization that is not valid: its failed challenge's error. */
static void authorization_problem(const json_t *authz, struct ck_acme_problem *out)
{
    const json_t *list = json_object_get(authz, "challenges");
    ck_acme_problem_free(out);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *error = json_object_get(json_array_get(list, i), "error");
        if (json_is_object(error)) {
            ck_acme_problem_from_json(error, out);
            return;
        }
    }
    const char *status = json_string_value(json_object_get(authz, "status"));
    out->type = ck_strdup("urn:ietf:params:acme:error:unauthorized");
    out->detail = ck_strdup(status != NULL ? status : "no status");
    out->status = 403;
}

static void clear_challenges(struct ck_acme_order_state *s)
{
    ck_acme_challenges_free(s->challenges, s->challenge_count);
    s->challenges = NULL;
    s->challenge_count = 0;
}

static enum ck_acme_next step_authorizations(struct ck_acme_client *c,
                                             struct ck_acme_order_state *s, ck_error *err)
{
    enum ck_acme_next next = CK_ACME_NEXT_CONTINUE;
    struct ck_acme_response resp = {.retry_after_s = -1};
    json_t *authz = NULL;
    ck_error why = {0};
    clear_challenges(s);
    for (size_t i = 0; i < s->authorization_urls.len; i++) {
        const char *url = s->authorization_urls.items[i];
        json_decref(authz);
        authz = NULL;
        if (exchange(c, s, url, NULL, "reading an authorization failed", &resp, &authz, &next,
                     err) != OUTCOME_OK)
            goto cleanup;
        const char *status = json_string_value(json_object_get(authz, "status"));
        const char *name =
            json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
        if (status != NULL && strcmp(status, "valid") == 0)
            continue;
        if (status == NULL || strcmp(status, "pending") != 0) {
            char what[300];
            snprintf(what, sizeof(what), "the authorization for %s is %s",
                     name != NULL ? name : "?", status != NULL ? status : "without status");
            authorization_problem(authz, &s->problem);
            next = fail_with_problem(s, what, err);
            goto cleanup;
        }
        const json_t *chal = find_challenge(authz, s->challenge_type);
        if (chal == NULL) {
            ck_error_set(&why, 422, "acme_challenge_unavailable",
                         "the ACME server offers no %s challenge for %s", s->challenge_type,
                         name != NULL ? name : "?");
            next = fail_local(s, &why, err);
            goto cleanup;
        }
        if (add_challenge(c, s, url, authz, chal, &why) != 0) {
            next = fail_local(s, &why, err);
            goto cleanup;
        }
    }
    if (s->challenge_count == 0) {
        s->step = CK_ACME_STEP_VALIDATING;
        s->poll_count = 0;
    } else {
        s->step = CK_ACME_STEP_AUTHORIZATIONS_FETCHED;
        next = CK_ACME_NEXT_PROVISION;
    }
cleanup:
    json_decref(authz);
    ck_acme_response_free(&resp);
    return next;
}

int ck_acme_challenges_provisioned(struct ck_acme_order_state *s, ck_error *err)
{
    if (s->step != CK_ACME_STEP_AUTHORIZATIONS_FETCHED)
        return ck_error_set(err, 409, "acme_wrong_step",
                            "the ACME order is at step %s, not waiting for challenges",
                            ck_acme_step_name(s->step));
    s->step = CK_ACME_STEP_CHALLENGES_READY;
    return 0;
}

/* After a restart a challenge may already have been answered: the CA then refuses a second
 * answer, which is fine when its authorization is valid or being validated. */
static bool authorization_in_progress(struct ck_acme_client *c, const char *url)
{
    struct ck_acme_response resp = {.retry_after_s = -1};
    bool ok = false;
    if (ck_acme_post(c, url, NULL, false, NULL, &resp, NULL) == 0 && resp.status == 200) {
        json_t *authz = ck_acme_response_json(&resp, NULL);
        const char *status = json_string_value(json_object_get(authz, "status"));
        ok = status != NULL && (strcmp(status, "valid") == 0 || strcmp(status, "pending") == 0);
        json_decref(authz);
    }
    ck_acme_response_free(&resp);
    return ok;
}

static enum ck_acme_next step_answer_challenges(struct ck_acme_client *c,
                                                struct ck_acme_order_state *s, ck_error *err)
{
    enum ck_acme_next next = CK_ACME_NEXT_CONTINUE;
    struct ck_acme_response resp = {.retry_after_s = -1};
    for (size_t i = 0; i < s->challenge_count; i++) {
        const struct ck_acme_challenge *ch = &s->challenges[i];
        if (ck_acme_post(c, ch->url, "{}", false, NULL, &resp, err) != 0) {
            next = after_unreachable(s, err);
            goto cleanup;
        }
        bool answered = resp.status >= 200 && resp.status <= 299;
        if (!answered && resp.status != 429 && resp.status < 500 &&
            authorization_in_progress(c, ch->authorization_url))
            answered = true;
        if (!answered) {
            char what[300];
            snprintf(what, sizeof(what), "answering the %s challenge for %s failed", ch->type,
                     ch->name);
            next = after_refusal(s, &resp, what, err);
            goto cleanup;
        }
    }
    s->transient_count = 0;
    s->poll_count = 0;
    s->step = CK_ACME_STEP_VALIDATING;
cleanup:
    ck_acme_response_free(&resp);
    return next;
}

/* An invalid order: its own error, or the first failed authorization's. */
static enum ck_acme_next order_invalid(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                       const json_t *order, ck_error *err)
{
    const json_t *error = json_object_get(order, "error");
    char what[300] = "the ACME order became invalid";
    ck_acme_problem_free(&s->problem);
    if (json_is_object(error))
        ck_acme_problem_from_json(error, &s->problem);
    for (size_t i = 0; s->problem.type == NULL && i < s->authorization_urls.len; i++) {
        struct ck_acme_response resp = {.retry_after_s = -1};
        if (ck_acme_post(c, s->authorization_urls.items[i], NULL, false, NULL, &resp, NULL) == 0) {
            json_t *authz = ck_acme_response_json(&resp, NULL);
            const char *status = json_string_value(json_object_get(authz, "status"));
            if (status != NULL && strcmp(status, "valid") != 0) {
                authorization_problem(authz, &s->problem);
                const char *name = json_string_value(
                    json_object_get(json_object_get(authz, "identifier"), "value"));
                snprintf(what, sizeof(what), "validation failed for %s", name != NULL ? name : "?");
            }
            json_decref(authz);
        }
        ck_acme_response_free(&resp);
    }
    if (s->problem.type == NULL) {
        s->problem.type = ck_strdup("about:blank");
        s->problem.detail = ck_strdup("the CA gave no reason");
    }
    return fail_with_problem(s, what, err);
}

/* Moves on from the order's status; used by both polling steps. */
static enum ck_acme_next after_order_status(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                            const json_t *order,
                                            const struct ck_acme_response *resp, ck_error *err)
{
    const char *status = s->order_status;
    if (strcmp(status, "valid") == 0 && s->certificate_url != NULL) {
        s->step = CK_ACME_STEP_DOWNLOADING;
        return CK_ACME_NEXT_CONTINUE;
    }
    if (strcmp(status, "ready") == 0) {
        s->step = CK_ACME_STEP_FINALIZING;
        s->poll_count = 0;
        return CK_ACME_NEXT_CONTINUE;
    }
    if (strcmp(status, "processing") == 0) {
        if (s->step != CK_ACME_STEP_FINALIZING) {
            s->step = CK_ACME_STEP_FINALIZING;
            s->poll_count = 0;
            return CK_ACME_NEXT_CONTINUE;
        }
        return poll_later(s, resp, err);
    }
    if (strcmp(status, "pending") == 0) {
        if (s->step != CK_ACME_STEP_VALIDATING) {
            s->step = CK_ACME_STEP_VALIDATING;
            s->poll_count = 0;
        }
        return poll_later(s, resp, err);
    }
    return order_invalid(c, s, order, err);
}

static enum ck_acme_next step_poll_order(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                         ck_error *err)
{
    enum ck_acme_next next = CK_ACME_NEXT_CONTINUE;
    struct ck_acme_response resp = {.retry_after_s = -1};
    json_t *order = NULL;
    ck_error why = {0};
    if (exchange(c, s, s->order_url, NULL, "reading the order failed", &resp, &order, &next, err) !=
        OUTCOME_OK)
        goto cleanup;
    if (read_order(s, order, &why) != 0) {
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    next = after_order_status(c, s, order, &resp, err);
cleanup:
    json_decref(order);
    ck_acme_response_free(&resp);
    return next;
}

/* ---- finalize and download ---- */

static char *csr_payload(const char *csr_pem, ck_error *err)
{
    char *text = NULL, *b64 = NULL;
    uint8_t *der = NULL;
    X509_REQ *req = NULL;
    BIO *bio = NULL;
    if (csr_pem == NULL || strlen(csr_pem) > MAX_CSR_PEM) {
        ck_error_set(err, 400, "invalid_csr", "the ACME order has no usable CSR");
        goto cleanup;
    }
    bio = BIO_new_mem_buf(csr_pem, -1);
    req = bio == NULL ? NULL : PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    int len = req == NULL ? -1 : i2d_X509_REQ(req, &der);
    if (len <= 0) {
        ck_error_openssl(err, 400, "invalid_csr", "the order's CSR is not a PEM CSR");
        goto cleanup;
    }
    b64 = ck_acme_b64url(der, (size_t)len);
    json_t *body = b64 == NULL ? NULL : json_pack("{s:s}", "csr", b64);
    text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        ck_error_set(err, 500, "out_of_memory", "out of memory");
cleanup:
    free(b64);
    OPENSSL_free(der);
    X509_REQ_free(req);
    BIO_free(bio);
    return text;
}

static bool problem_is(const struct ck_acme_response *r, const char *type)
{
    json_t *doc = ck_acme_response_json(r, NULL);
    const char *t = json_string_value(json_object_get(doc, "type"));
    bool match = t != NULL && strcmp(t, type) == 0;
    json_decref(doc);
    return match;
}

static enum ck_acme_next step_finalize(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                       ck_error *err)
{
    if (s->order_status == NULL || strcmp(s->order_status, "ready") != 0)
        return step_poll_order(c, s, err);
    enum ck_acme_next next = CK_ACME_NEXT_CONTINUE;
    struct ck_acme_response resp = {.retry_after_s = -1};
    json_t *order = NULL;
    ck_error why = {0};
    char *payload = csr_payload(s->csr_pem, &why);
    if (payload == NULL) {
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    if (ck_acme_post(c, s->finalize_url, payload, false, NULL, &resp, err) != 0) {
        next = after_unreachable(s, err);
        goto cleanup;
    }
    if (resp.status == 403 && problem_is(&resp, "urn:ietf:params:acme:error:orderNotReady")) {
        /* Finalized before a restart, or not ready after all: read the order again. */
        free(s->order_status);
        s->order_status = NULL;
        goto cleanup;
    }
    if (resp.status < 200 || resp.status > 299) {
        next = after_refusal(s, &resp, "finalizing the order failed", err);
        goto cleanup;
    }
    s->transient_count = 0;
    order = ck_acme_response_json(&resp, &why);
    if (order == NULL || read_order(s, order, &why) != 0) {
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    next = after_order_status(c, s, order, &resp, err);
cleanup:
    json_decref(order);
    ck_acme_response_free(&resp);
    free(payload);
    return next;
}

static enum ck_acme_next step_download(struct ck_acme_client *c, struct ck_acme_order_state *s,
                                       ck_error *err)
{
    enum ck_acme_next next = CK_ACME_NEXT_CONTINUE;
    struct ck_acme_response resp = {.retry_after_s = -1};
    ck_error why = {0};
    if (ck_acme_post(c, s->certificate_url, NULL, false, "application/pem-certificate-chain", &resp,
                     err) != 0) {
        next = after_unreachable(s, err);
        goto cleanup;
    }
    if (resp.status != 200) {
        next = after_refusal(s, &resp, "downloading the certificate failed", err);
        goto cleanup;
    }
    if (resp.body == NULL || strstr(resp.body, "-----BEGIN CERTIFICATE-----") == NULL) {
        ck_error_set(&why, 502, "acme_bad_response",
                     "the ACME server's certificate download is not PEM");
        next = fail_local(s, &why, err);
        goto cleanup;
    }
    free(s->certificate_pem);
    s->certificate_pem = resp.body;
    resp.body = NULL;
    s->step = CK_ACME_STEP_DONE;
    ck_acme_problem_free(&s->problem);
    ck_log(CK_LOG_INFO, "acme: certificate for order %s downloaded", s->order_url);
    next = CK_ACME_NEXT_DONE;
cleanup:
    ck_acme_response_free(&resp);
    return next;
}

/* ---- the dispatcher ---- */

enum ck_acme_next ck_acme_step(struct ck_acme_client *c, struct ck_acme_order_state *s,
                               ck_error *err)
{
    ck_error_clear(err);
    s->wait_ms = 0;
    /* A restarted client learns its account from the stored state. */
    if (c->account_url == NULL && s->account_url != NULL &&
        (c->account_url = ck_strdup(s->account_url)) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        return CK_ACME_NEXT_WAIT;
    }
    switch (s->step) {
    case CK_ACME_STEP_NEW:
        return step_account(c, s, err);
    case CK_ACME_STEP_ACCOUNT_READY:
        return step_begin_order(c, s, err);
    case CK_ACME_STEP_ORDERING:
        return step_ordering(c, s, err);
    case CK_ACME_STEP_ORDERED:
        return step_authorizations(c, s, err);
    case CK_ACME_STEP_AUTHORIZATIONS_FETCHED:
        return CK_ACME_NEXT_PROVISION;
    case CK_ACME_STEP_CHALLENGES_READY:
        return step_answer_challenges(c, s, err);
    case CK_ACME_STEP_VALIDATING:
        return step_poll_order(c, s, err);
    case CK_ACME_STEP_FINALIZING:
        return step_finalize(c, s, err);
    case CK_ACME_STEP_DOWNLOADING:
        return step_download(c, s, err);
    case CK_ACME_STEP_DONE:
        return CK_ACME_NEXT_DONE;
    case CK_ACME_STEP_FAILED:
    case CK_ACME_STEP_COUNT:
        break;
    }
    char line[CK_ERROR_MSG_MAX - 64];
    ck_acme_problem_format(&s->problem, line, sizeof(line));
    ck_error_set(err, 502, "acme_problem", "the ACME order failed: %s", line);
    return CK_ACME_NEXT_FAILED;
}
