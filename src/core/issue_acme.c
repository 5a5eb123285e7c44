/* The acme issuer's part of the issue job (issue_job.h): account, order state, challenges, the
 * step loop, and the downloaded certificate handed to the install path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/duration.h"
#include "core/issue_internal.h"
#include "core/issue_job.h"
#include "crypto/keys.h"
#include "issuers/acme/acme.h"
#include "issuers/dns/dns01.h"

/* Exchanges one job may make; far above a real order's dozen, a guard against a loop. */
#define STEPS_MAX            2000
#define HTTP01_TOKEN_SECONDS (7 * 86400)
#define DNS_UPDATE_MS        10000

/* What provisioning decided. */
enum provisioned { PROVISIONED, PROVISION_STOPPED, PROVISION_FAILED };

struct acme_run {
    struct ck_issue_ctx *c;
    struct ck_acme_order_state s;
    struct ck_acme_client *client;
    EVP_PKEY *account_key;
    char *eab_hmac;   /* unsealed, cleansed on free */
    char ca_file[64]; /* temporary copy of the issuer's CA bundle, "" when none */
    struct ck_dns_provider dns;
    char *tsig_secret; /* unsealed, cleansed on free */
    struct ck_dns_server *check_servers;
    size_t n_check_servers;
    struct ck_dns01_config dns_cfg;
    bool dns_published; /* the job was queued by `order dns-published` */
};

static void secret_free(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

static void run_free(struct acme_run *a)
{
    ck_acme_client_free(a->client);
    ck_acme_order_state_free(&a->s);
    EVP_PKEY_free(a->account_key);
    secret_free(a->eab_hmac);
    secret_free(a->tsig_secret);
    if (a->ca_file[0] != '\0')
        unlink(a->ca_file);
    ck_dns_provider_free(&a->dns);
    free(a->check_servers);
}

static void dns_log(void *ctx, const char *line)
{
    ck_issue_log(ctx, CK_LOG_INFO, "%s", line);
}

/* A sealed secret as text; NULL with no error when there is none. */
static int unseal_text(struct ck_issue_ctx *c, const char *aad, const uint8_t *sealed, size_t len,
                       char **out, ck_error *err)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    *out = NULL;
    if (sealed == NULL)
        return 0;
    if (ck_unseal(c->mk, aad, sealed, len, &plain, &plain_len, err) != 0)
        return -1;
    *out = OPENSSL_malloc(plain_len + 1);
    if (*out != NULL) {
        memcpy(*out, plain, plain_len);
        (*out)[plain_len] = '\0';
    }
    OPENSSL_clear_free(plain, plain_len);
    return *out != NULL ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
}

static int write_ca_file(struct acme_run *a, ck_error *err)
{
    const char *pem = a->c->issuer.ca_bundle_pem;
    if (pem == NULL)
        return 0;
    const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(a->ca_file, sizeof(a->ca_file), "%.40s/certkeep-ca.XXXXXX", dir);
    int fd = mkstemp(a->ca_file);
    if (fd < 0) {
        a->ca_file[0] = '\0';
        return ck_error_set(err, 500, "tmp_failed", "cannot write the issuer's CA bundle in %s",
                            dir);
    }
    size_t len = strlen(pem);
    ssize_t n = write(fd, pem, len);
    close(fd);
    if (n < 0 || (size_t)n != len)
        return ck_error_set(err, 500, "tmp_failed", "cannot write the issuer's CA bundle");
    return 0;
}

static void account_aad(const struct ck_issue_ctx *c, char *buf, size_t len)
{
    snprintf(buf, len, "certkeep/issuer/%lld/account-key", (long long)c->issuer.id);
}

/* The issuer's account key, or a new P-256 key when it has no account yet. */
static int account_key(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    char aad[96];
    account_aad(c, aad, sizeof(aad));
    if (c->issuer.sealed_account_key != NULL)
        a->account_key = ck_unseal_private_key(c->mk, aad, c->issuer.sealed_account_key,
                                               c->issuer.sealed_account_key_len, err);
    else
        a->account_key = ck_key_generate(CK_KEY_EC_P256, err);
    return a->account_key != NULL ? 0 : -1;
}

/* First use of the issuer: register the new key's account and store both. Fills *url. */
static int register_account(struct acme_run *a, char **url, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    char aad[96];
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    int rc = -1;
    ck_issue_log(c, CK_LOG_INFO, "creating the ACME account of issuer %s", c->issuer.name);
    account_aad(c, aad, sizeof(aad));
    if (ck_acme_account(a->client, url, err) != 0 ||
        ck_seal_private_key(c->mk, aad, a->account_key, &sealed, &sealed_len, err) != 0 ||
        ck_store_issuer_set_account(c->st, c->issuer.tenant_id, c->issuer.id, *url, sealed,
                                    sealed_len, err) != 0)
        goto cleanup;
    ck_issue_log(c, CK_LOG_INFO, "ACME account %s", *url);
    rc = 0;
cleanup:
    OPENSSL_free(sealed);
    return rc;
}

/* The issuer as stored now: another job may have registered its account meanwhile. */
static int issuer_reload(struct ck_issue_ctx *c, ck_error *err)
{
    struct ck_issuer fresh = {0};
    if (ck_store_issuer_get(c->st, c->order.tenant_id, c->issuer.name, &fresh, err) != 0)
        return -1;
    ck_issuer_free(&c->issuer);
    c->issuer = fresh;
    return 0;
}

static int client_new(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    const struct ck_acme_client_options opt = {
        .directory_url = c->issuer.directory_url,
        .ca_file = a->ca_file[0] != '\0' ? a->ca_file : NULL,
        .account_key = a->account_key,
        .contacts = &c->issuer.contacts,
        .terms_agreed = true,
        .eab_kid = a->eab_hmac != NULL ? c->issuer.eab_kid : NULL,
        .eab_hmac_key = a->eab_hmac,
    };
    ck_acme_client_free(a->client);
    a->client = ck_acme_client_new(&opt, err);
    return a->client != NULL ? 0 : -1;
}

/* Two jobs registering the issuer's first account at once: the store keeps the account
 * recorded first and refuses the other (409 "account_exists"), so every later order, and a
 * resumed one, uses the account its ACME order was placed with; the job that lost adopts the
 * stored one before it places any order (its own account stays unused at the CA). */
static int adopt_stored_account(struct acme_run *a, const char *own_url, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    if (issuer_reload(c, err) != 0)
        return -1;
    if (c->issuer.account_url == NULL || strcmp(c->issuer.account_url, own_url) == 0)
        return 0;
    ck_issue_log(c, CK_LOG_INFO, "another job registered account %s at the same time: using it",
                 c->issuer.account_url);
    EVP_PKEY_free(a->account_key);
    a->account_key = NULL;
    if (account_key(a, err) != 0)
        return -1;
    return client_new(a, err);
}

static int client_open(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    char aad[96];
    char *url = NULL;
    snprintf(aad, sizeof(aad), "certkeep/issuer/%lld/eab", (long long)c->issuer.id);
    if (issuer_reload(c, err) != 0 || account_key(a, err) != 0 || write_ca_file(a, err) != 0 ||
        unseal_text(c, aad, c->issuer.sealed_eab_hmac, c->issuer.sealed_eab_hmac_len, &a->eab_hmac,
                    err) != 0 ||
        client_new(a, err) != 0)
        return -1;
    if (c->issuer.sealed_account_key != NULL)
        return 0;
    int rc = register_account(a, &url, err);
    /* Another job recorded its account first: that one stays (store.h), so use it. */
    if (rc != 0 && err->status == 409 && strcmp(err->code, "account_exists") == 0)
        rc = 0;
    if (rc == 0)
        rc = adopt_stored_account(a, url != NULL ? url : "", err);
    free(url);
    return rc;
}

/* The enrollment's DNS provider as a dns01.h configuration; the TSIG secret unsealed. */
static int dns_open(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    struct ck_dns01_config *cfg = &a->dns_cfg;
    char aad[96];
    if (ck_store_dns_get(c->st, c->order.tenant_id, c->enrollment.dns, &a->dns, err) != 0 ||
        ck_dns01_mode_parse(a->dns.mode, &cfg->mode) != 0)
        return err->status ? -1
                           : ck_error_set(err, 500, "invalid_dns", "DNS provider %s: mode %s",
                                          a->dns.name, a->dns.mode);
    snprintf(aad, sizeof(aad), "certkeep/dns/%lld/tsig", (long long)a->dns.id);
    if (unseal_text(c, aad, a->dns.sealed_tsig_secret, a->dns.sealed_tsig_secret_len,
                    &a->tsig_secret, err) != 0)
        return -1;
    if (cfg->mode == CK_DNS01_RFC2136 &&
        ck_dns_server_parse(a->dns.server, CK_DNS_DEFAULT_PORT, &cfg->rfc2136.primary, err) != 0)
        return -1;
    cfg->rfc2136.zone = a->dns.zone;
    cfg->rfc2136.tsig_name = a->dns.tsig_name;
    cfg->rfc2136.tsig_alg = a->dns.tsig_alg;
    cfg->rfc2136.tsig_secret_b64 = a->tsig_secret;
    cfg->hook_path = a->dns.hook_path;
    cfg->ttl = a->dns.ttl > 0 ? a->dns.ttl : 60;
    cfg->timeout_ms = DNS_UPDATE_MS;
    a->check_servers = calloc(a->dns.check_servers.len + 1, sizeof(*a->check_servers));
    if (a->check_servers == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < a->dns.check_servers.len; i++)
        if (ck_dns_server_parse(a->dns.check_servers.items[i], CK_DNS_DEFAULT_PORT,
                                &a->check_servers[a->n_check_servers++], err) != 0)
            return -1;
    cfg->check_servers = a->n_check_servers > 0 ? a->check_servers : NULL;
    cfg->check_server_count = a->n_check_servers;
    return 0;
}

/* The policy's lifetime, sent to the CA as notAfter; 0 (the CA's default) when none is set. */
static int lifetime_seconds(const char *text, int64_t *seconds, ck_error *err)
{
    *seconds = 0;
    return text != NULL ? ck_duration_parse(text, seconds, err) : 0;
}

/* A renewal names the certificate in production (RFC 9773 "replaces"), so an ARI CA can tie
 * them together; the client sends it only where the directory offers renewalInfo. A certificate
 * without an Authority Key Identifier (imported from elsewhere) just is not named. */
static void name_replaced(struct acme_run *a)
{
    struct ck_issue_ctx *c = a->c;
    struct ck_order prod = {0};
    ck_error why = {0};
    if (c->enrollment.production_order_id == 0 || c->enrollment.production_order_id == c->order.id)
        return;
    if (ck_store_order_get(c->st, c->order.tenant_id, c->enrollment.production_order_id, &prod,
                           &why) == 0 &&
        prod.cert_pem != NULL && ck_acme_ari_cert_id(prod.cert_pem, &a->s.replaces, &why) == 0)
        ck_issue_log(c, CK_LOG_INFO, "renews order %lld, ARI certID %s", (long long)prod.id,
                     a->s.replaces);
    else if (why.message[0] != '\0')
        ck_issue_log(c, CK_LOG_INFO, "the order names no certificate it replaces: %s", why.message);
    ck_order_free(&prod);
}

/* A fresh state for this order: the enrollment's names, challenge, CSR, lifetime and the
 * certificate it replaces. */
static int state_new(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    if (ck_acme_order_state_init(&a->s, &c->enrollment.sans, c->enrollment.challenge,
                                 c->order.csr_pem, err) != 0 ||
        lifetime_seconds(c->enrollment.policy.lifetime, &a->s.lifetime_s, err) != 0)
        return -1;
    name_replaced(a);
    return 0;
}

/* The stored state (a restart, a wait, a confirmation), or a fresh one for the enrollment. */
static int state_open(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    if (c->order.acme_state_json == NULL)
        return state_new(a, err);
    json_error_t jerr;
    json_t *doc = json_loads(c->order.acme_state_json, 0, &jerr);
    int rc = doc != NULL ? ck_acme_order_state_from_json(doc, &a->s, err)
                         : ck_error_set(err, 500, "invalid_acme_state",
                                        "order %lld: its stored ACME state is not JSON: %s",
                                        (long long)c->order.id, jerr.text);
    json_decref(doc);
    if (rc == 0)
        ck_issue_log(c, CK_LOG_INFO, "continuing the ACME order from step %s%s%s",
                     ck_acme_step_name(a->s.step), a->s.order_url ? ", order " : "",
                     a->s.order_url ? a->s.order_url : "");
    return rc;
}

static int state_save(struct acme_run *a, ck_error *err)
{
    json_t *doc = ck_acme_order_state_to_json(&a->s);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    int rc = text != NULL ? ck_store_order_set_acme_state(a->c->st, a->c->order.id, text, err)
                          : ck_error_set(err, 500, "out_of_memory", "out of memory");
    free(text);
    return rc;
}

static bool params_flag(const char *params_json, const char *key)
{
    json_t *doc = params_json != NULL ? json_loads(params_json, 0, NULL) : NULL;
    bool on = json_is_true(json_object_get(doc, key));
    json_decref(doc);
    return on;
}

/* ---- challenges ---- */

/* Manual dns-01: tell the user which records to create and stop until they confirm. */
static int ask_for_records(struct acme_run *a, ck_error *err)
{
    struct ck_issue_ctx *c = a->c;
    json_t *lines = json_array();
    char message[CK_ERROR_MSG_MAX];
    int rc = -1;
    for (size_t i = 0; lines != NULL && i < a->s.challenge_count; i++) {
        char *fqdn = ck_dns01_record_name(a->s.challenges[i].name);
        char *line =
            fqdn ? ck_dns_manual_zone_line(fqdn, a->s.challenges[i].dns_txt_value, a->dns_cfg.ttl)
                 : NULL;
        if (line != NULL) {
            ck_issue_log(c, CK_LOG_INFO, "DNS record to create: %s", line);
            json_array_append_new(lines, json_string(line));
        }
        free(line);
        free(fqdn);
    }
    snprintf(message, sizeof(message),
             "order %lld (%s) needs %zu DNS record%s: create them, then run certkeep order "
             "dns-published %lld",
             (long long)c->order.id, c->enrollment.name, a->s.challenge_count,
             a->s.challenge_count == 1 ? "" : "s", (long long)c->order.id);
    json_t *data = json_pack("{s:O}", "records", lines);
    char *data_text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    const struct ck_event_new ev = {.type = "dns_records_needed",
                                    .enrollment_id = c->order.enrollment_id,
                                    .order_id = c->order.id,
                                    .message = message,
                                    .data_json = data_text};
    /* The job ends with the event: a restart neither loses nor repeats it. */
    const struct ck_job_end end = {
        .worker = c->job->worker, .state = CK_JOB_FINISHED, .event = &ev};
    if (data_text != NULL && ck_store_job_end(c->st, c->job->id, &end, err) == 0) {
        c->job_ended = true;
        rc = 0;
    } else if (data_text == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
    free(data_text);
    json_decref(data);
    json_decref(lines);
    return rc;
}

static int dns_check(struct acme_run *a, const char *fqdn, const char *value, ck_error *err)
{
    struct ck_dns_server *servers = NULL;
    size_t n = 0;
    int rc = ck_dns01_check_servers(&a->dns_cfg, fqdn, &servers, &n, err);
    if (rc == 0)
        rc = ck_dns_check_txt(servers, n, fqdn, value, CK_ISSUE_DNS_CHECK_MS, dns_log, a->c, err);
    free(servers);
    return rc;
}

static int dns_provision(struct acme_run *a, ck_error *err)
{
    bool manual = a->dns_cfg.mode == CK_DNS01_MANUAL;
    for (size_t i = 0; !manual && i < a->s.challenge_count; i++) {
        char *fqdn = ck_dns01_record_name(a->s.challenges[i].name);
        int rc = fqdn ? ck_dns01_set(&a->dns_cfg, true, fqdn, a->s.challenges[i].dns_txt_value,
                                     dns_log, a->c, err)
                      : ck_error_set(err, 500, "out_of_memory", "out of memory");
        free(fqdn);
        if (rc != 0)
            return -1;
    }
    for (size_t i = 0; i < a->s.challenge_count; i++) {
        char *fqdn = ck_dns01_record_name(a->s.challenges[i].name);
        int rc = fqdn ? dns_check(a, fqdn, a->s.challenges[i].dns_txt_value, err)
                      : ck_error_set(err, 500, "out_of_memory", "out of memory");
        free(fqdn);
        if (rc != 0 && manual)
            ck_error_set(err, 409, "dns_not_published",
                         "%s; run certkeep order dns-published %lld again once they are",
                         err->message, (long long)a->c->order.id);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int http_provision(struct acme_run *a, ck_error *err)
{
    for (size_t i = 0; i < a->s.challenge_count; i++) {
        const struct ck_acme_challenge *ch = &a->s.challenges[i];
        if (ck_store_http01_put(a->c->st, ch->token, ch->key_authorization, a->c->order.id,
                                ck_clock_now() + HTTP01_TOKEN_SECONDS, err) != 0)
            return -1;
        ck_issue_log(a->c, CK_LOG_INFO, "http-01 answer for %s published", ch->name);
    }
    return 0;
}

static enum provisioned provision(struct acme_run *a, ck_error *err)
{
    bool dns = a->s.challenge_type != NULL && strcmp(a->s.challenge_type, "dns-01") == 0;
    if (dns && a->dns_cfg.mode == CK_DNS01_MANUAL && !a->dns_published)
        return ask_for_records(a, err) == 0 ? PROVISION_STOPPED : PROVISION_FAILED;
    if ((dns ? dns_provision(a, err) : http_provision(a, err)) != 0 ||
        ck_acme_challenges_provisioned(&a->s, err) != 0)
        return PROVISION_FAILED;
    return PROVISIONED;
}

/* After validation, success or not: the records and tokens are not needed any more. */
static void unprovision(struct acme_run *a)
{
    ck_error err;
    bool dns = a->s.challenge_type != NULL && strcmp(a->s.challenge_type, "dns-01") == 0;
    if (!dns) {
        if (ck_store_http01_delete_order(a->c->st, a->c->order.id, &err) != 0)
            ck_issue_log(a->c, CK_LOG_WARN, "http-01 answers not removed: %s", err.message);
        return;
    }
    if (a->dns_cfg.mode == CK_DNS01_MANUAL) {
        if (a->s.challenge_count > 0)
            ck_issue_log(a->c, CK_LOG_INFO, "the _acme-challenge TXT records may be deleted now");
        return;
    }
    for (size_t i = 0; i < a->s.challenge_count; i++) {
        char *fqdn = ck_dns01_record_name(a->s.challenges[i].name);
        if (fqdn != NULL && ck_dns01_set(&a->dns_cfg, false, fqdn, a->s.challenges[i].dns_txt_value,
                                         dns_log, a->c, &err) != 0)
            ck_issue_log(a->c, CK_LOG_WARN, "TXT record %s not removed: %s", fqdn, err.message);
        free(fqdn);
    }
}

/* ---- the loop ---- */

/* Sleeps as the CA asked; returns false when that would take the job past its budget. */
static bool wait_here(struct acme_run *a)
{
    int64_t now = ck_clock_now();
    int64_t delay_ms = a->s.wait_ms > 0         ? a->s.wait_ms
                       : a->s.retry_after > now ? (a->s.retry_after - now) * 1000
                                                : 0;
    if (now + delay_ms / 1000 - a->c->started_at > CK_ISSUE_JOB_BUDGET_SECONDS)
        return false;
    struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return true;
}

/* This job ends and the next one is queued in one transaction: never both running (a crash
 * between the two would requeue this one beside the next), never neither. */
static int hand_over(struct acme_run *a, ck_error *err)
{
    const struct ck_job_new next = {.type = CK_JOB_ISSUE};
    const struct ck_job_end end = {
        .worker = a->c->job->worker, .state = CK_JOB_FINISHED, .next = &next};
    ck_issue_log(a->c, CK_LOG_INFO, "the CA asks to wait until %lld: a new issue job goes on",
                 (long long)a->s.retry_after);
    if (ck_store_job_end(a->c->st, a->c->job->id, &end, err) != 0)
        return -1;
    a->c->job_ended = true;
    return 0;
}

static int failed(struct acme_run *a, ck_error *err)
{
    json_t *problem = ck_acme_problem_to_json(&a->s.problem);
    char *text = problem != NULL ? json_dumps(problem, JSON_COMPACT) : NULL;
    if (text != NULL)
        ck_issue_log(a->c, CK_LOG_ERROR, "ACME problem: %s", text);
    free(text);
    json_decref(problem);
    unprovision(a);
    if (err->message[0] == '\0')
        ck_error_set(err, 502, "acme_failed", "the ACME order failed");
    return -1;
}

/* What the placed order asked beyond its names, and what the CA would not take. */
static void log_order_extensions(struct acme_run *a)
{
    if (a->s.not_after_sent != NULL)
        ck_issue_log(a->c, CK_LOG_INFO, "acme: the order asks notAfter %s (lifetime %llds)",
                     a->s.not_after_sent, (long long)a->s.lifetime_s);
    if (a->s.replaces_sent)
        ck_issue_log(a->c, CK_LOG_INFO, "acme: the order replaces %s (RFC 9773)", a->s.replaces);
    if (a->s.extensions_refused)
        ck_issue_log(a->c, CK_LOG_WARN,
                     "acme: the CA refused notAfter or replaces: ordered without them");
}

static int step_loop(struct acme_run *a, ck_error *err)
{
    for (int i = 0; i < STEPS_MAX; i++) {
        ck_error step_err = {0};
        enum ck_acme_step before = a->s.step;
        enum ck_acme_next next = ck_acme_step(a->client, &a->s, &step_err);
        if (state_save(a, err) != 0)
            return -1;
        bool ordered = a->s.step == CK_ACME_STEP_ORDERED && a->s.order_url != NULL;
        if (a->s.step != before)
            ck_issue_log(a->c, CK_LOG_INFO, "acme: %s%s%s", ck_acme_step_name(a->s.step),
                         ordered ? " " : "", ordered ? a->s.order_url : "");
        if (a->s.step != before && ordered)
            log_order_extensions(a);
        switch (next) {
        case CK_ACME_NEXT_CONTINUE:
            break;
        case CK_ACME_NEXT_WAIT:
            if (step_err.message[0] != '\0')
                ck_issue_log(a->c, CK_LOG_WARN, "waiting: %s", step_err.message);
            if (!wait_here(a))
                return hand_over(a, err);
            break;
        case CK_ACME_NEXT_PROVISION: {
            enum provisioned p = provision(a, err);
            if (p != PROVISIONED)
                return p == PROVISION_STOPPED ? 0 : -1;
            if (state_save(a, err) != 0)
                return -1;
            break;
        }
        case CK_ACME_NEXT_DONE:
            unprovision(a);
            return ck_issue_accept(a->c, CK_ORDER_PENDING_VALIDATION, a->s.certificate_pem, NULL,
                                   err);
        case CK_ACME_NEXT_FAILED:
            *err = step_err;
            return failed(a, err);
        }
    }
    return ck_error_set(err, 500, "acme_too_many_steps",
                        "the ACME order took more than %d exchanges", STEPS_MAX);
}

static int to_pending(struct ck_issue_ctx *c, ck_error *err)
{
    if (c->order.state != CK_ORDER_CSR_READY)
        return 0;
    if (ck_store_order_transition(c->st, c->order.tenant_id, c->order.id, CK_ORDER_CSR_READY,
                                  CK_ORDER_PENDING_VALIDATION, NULL, NULL, err) != 0)
        return -1;
    c->order.state = CK_ORDER_PENDING_VALIDATION;
    ck_issue_log(c, CK_LOG_INFO, "ordering from %s by %s", c->issuer.directory_url,
                 c->enrollment.challenge ? c->enrollment.challenge : "http-01");
    return 0;
}

int ck_issue_acme(struct ck_issue_ctx *c, ck_error *err)
{
    struct acme_run a = {.c = c};
    int rc = -1;
    a.dns_published = params_flag(c->job->params_json, "dns_published");
    bool dns = c->enrollment.challenge != NULL && strcmp(c->enrollment.challenge, "dns-01") == 0;
    if (to_pending(c, err) != 0 || state_open(&a, err) != 0 || (dns && dns_open(&a, err) != 0) ||
        client_open(&a, err) != 0)
        goto cleanup;
    rc = step_loop(&a, err);
cleanup:
    run_free(&a);
    return rc;
}

/* ---- the order's view ---- */

static json_t *record_json(const struct ck_acme_challenge *ch)
{
    bool dns = ch->type != NULL && strcmp(ch->type, "dns-01") == 0;
    char *fqdn = dns ? ck_dns01_record_name(ch->name) : NULL;
    char path[512];
    snprintf(path, sizeof(path), "/.well-known/acme-challenge/%s", ch->token ? ch->token : "");
    json_t *j =
        json_pack("{s:s?,s:s?,s:s?,s:s?}", "name", ch->name, "type", ch->type, "record",
                  dns ? fqdn : path, "value", dns ? ch->dns_txt_value : ch->key_authorization);
    free(fqdn);
    return j;
}

json_t *ck_issue_validation_json(const char *acme_state_json)
{
    struct ck_acme_order_state s = {0};
    ck_error err;
    json_t *doc = acme_state_json ? json_loads(acme_state_json, 0, NULL) : NULL;
    json_t *view = NULL;
    if (doc != NULL && ck_acme_order_state_from_json(doc, &s, &err) == 0) {
        json_t *records = json_array();
        for (size_t i = 0; records != NULL && i < s.challenge_count; i++)
            json_array_append_new(records, record_json(&s.challenges[i]));
        json_t *problem = ck_acme_problem_to_json(&s.problem);
        view = json_pack("{s:s,s:s?,s:o,s:o}", "step", ck_acme_step_name(s.step), "order_url",
                         s.order_url, "records", records ? records : json_array(), "problem",
                         problem ? problem : json_null());
    }
    json_decref(doc);
    ck_acme_order_state_free(&s);
    return view != NULL ? view : json_null();
}
