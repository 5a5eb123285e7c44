/* verify.c — chain verification: OpenSSL's path building plus certkeep's Web PKI rules
 * (verify_rules.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "crypto/verify.h"
#include "crypto/verify_rules.h"

/* Other paths tried when the first one breaks a rule; each attempt drops the certificates the
 * previous one blamed, so this also bounds the work an adversarial bundle can cause. */
#define CK_VERIFY_MAX_ATTEMPTS  8
#define CK_VERIFY_DEFAULT_DEPTH 32
#define CK_VERIFY_STATE_MAGIC   0x636b7666u

/* One attempt's findings, reached from OpenSSL's verify callback through the context's app data. */
struct attempt_state {
    unsigned magic;
    const struct ck_verify_request *req;
    ck_strv reasons;
    STACK_OF(X509) * blamed; /* not owned: certificates a different path might avoid */
    bool failed;
    time_t at;
};

static struct attempt_state *state_from_ctx(X509_STORE_CTX *ctx)
{
    struct attempt_state *st = X509_STORE_CTX_get_app_data(ctx);
    if (st == NULL || st->magic != CK_VERIFY_STATE_MAGIC)
        abort();
    return st;
}

void ck_verify_describe_cert(X509 *cert, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return;
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0)
        snprintf(buf, len, "(empty subject)");
    else
        snprintf(buf, len, "%.*s", (int)(n > 200 ? 200 : n), data);
    BIO_free(bio);
}

int ck_verify_add_reason(ck_strv *reasons, int depth, X509 *cert, const char *what)
{
    char subject[256] = "";
    if (cert != NULL)
        ck_verify_describe_cert(cert, subject, sizeof(subject));
    char line[768];
    if (depth < 0)
        snprintf(line, sizeof(line), "%s", what);
    else if (depth == 0)
        snprintf(line, sizeof(line), "leaf certificate (%s): %s", subject, what);
    else
        snprintf(line, sizeof(line), "CA certificate at depth %d (%s): %s", depth, subject, what);
    if (ck_strv_contains(reasons, line))
        return 0;
    return ck_strv_push(reasons, line);
}

bool ck_verify_caller_reports(const struct ck_verify_request *req, unsigned what, X509 *cert)
{
    if ((req->skip & what) == 0 || cert == NULL)
        return false;
    if (X509_cmp(cert, req->leaf) == 0)
        return true;
    for (int i = 0; i < sk_X509_num(req->untrusted); i++)
        if (X509_cmp(cert, sk_X509_value(req->untrusted, i)) == 0)
            return true;
    return false;
}

/* OpenSSL's findings that the caller reports in its own words (req->skip). */
static bool skipped_for_caller(const struct ck_verify_request *req, int code, int depth, X509 *cert)
{
    switch (code) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return depth == 0 && ck_verify_caller_reports(req, CK_VERIFY_SKIP_LEAF_VALIDITY, cert);
    case X509_V_ERR_INVALID_PURPOSE:
        /* only when the EKU is the cause, not a keyUsage that forbids TLS servers */
        return depth == 0 && ck_verify_caller_reports(req, CK_VERIFY_SKIP_LEAF_SERVER_AUTH, cert) &&
               (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0 &&
               (X509_get_extended_key_usage(cert) & XKU_SSL_SERVER) == 0;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
        return ck_verify_caller_reports(req, CK_VERIFY_SKIP_WEAK_KEY, cert);
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return ck_verify_caller_reports(req, CK_VERIFY_SKIP_WEAK_SIGNATURE, cert);
    default:
        return false;
    }
}

static bool is_name_constraint_error(int code)
{
    return code == X509_V_ERR_PERMITTED_VIOLATION || code == X509_V_ERR_EXCLUDED_VIOLATION ||
           code == X509_V_ERR_SUBTREE_MINMAX || code == X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE ||
           code == X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX ||
           code == X509_V_ERR_UNSUPPORTED_NAME_SYNTAX;
}

/* Name constraint violations are reported against the constrained certificate; blame the CAs
 * that carry constraints instead, since a path around them may exist. */
static void blame_constraining_cas(X509_STORE_CTX *ctx, struct attempt_state *st)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 1; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *ca = sk_X509_value(chain, i);
        if (X509_get_ext_by_NID(ca, NID_name_constraints, -1) >= 0)
            sk_X509_push(st->blamed, ca);
    }
}

/* Records every error and lets OpenSSL go on, so that the user sees all reasons at once. */
static int collect_errors(int ok, X509_STORE_CTX *ctx)
{
    if (ok)
        return 1;
    struct attempt_state *st = state_from_ctx(ctx);
    int code = X509_STORE_CTX_get_error(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
    /* RFC 5280 4.1.2.5: notAfter is inclusive; OpenSSL 3.0 takes that very second as expired. */
    if (code == X509_V_ERR_CERT_HAS_EXPIRED && cert != NULL &&
        ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), st->at) == 0)
        return 1;
    if (skipped_for_caller(st->req, code, depth, cert))
        return 1;
    st->failed = true;
    ck_verify_add_reason(&st->reasons, depth, cert, X509_verify_cert_error_string(code));
    if (is_name_constraint_error(code))
        blame_constraining_cas(ctx, st);
    else if (depth > 0 && cert != NULL)
        sk_X509_push(st->blamed, cert);
    return 1;
}

static int configure_params(X509_STORE_CTX *ctx, const struct ck_verify_request *req, time_t at)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN |
                                           X509_V_FLAG_USE_CHECK_TIME);
    if (req->crls != NULL) {
        X509_STORE_CTX_set0_crls(ctx, req->crls);
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    X509_VERIFY_PARAM_set_time(param, at);
    /* req->max_intermediates is checked by the rules, which do not count self-issued ones. */
    X509_VERIFY_PARAM_set_depth(param, CK_VERIFY_DEFAULT_DEPTH);
    X509_VERIFY_PARAM_set_auth_level(param, 2);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                                               X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) != 1)
        return -1;
    if (req->dns_name != NULL && X509_VERIFY_PARAM_set1_host(param, req->dns_name, 0) != 1)
        return -1;
    if (req->ip != NULL && X509_VERIFY_PARAM_set1_ip_asc(param, req->ip) != 1)
        return -1;
    return 0;
}

/* One run of OpenSSL's verifier and certkeep's rules over the pools given. */
static int run_attempt(const struct ck_verify_request *req, STACK_OF(X509) * untrusted,
                       STACK_OF(X509) * roots, struct attempt_state *st, STACK_OF(X509) * *chain,
                       ck_error *err)
{
    int rc = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL)
        goto cleanup;
    for (int i = 0; i < sk_X509_num(roots); i++)
        X509_STORE_add_cert(store, sk_X509_value(roots, i));
    ERR_clear_error();
    if (X509_STORE_CTX_init(ctx, store, req->leaf, untrusted) != 1)
        goto cleanup;
    X509_STORE_CTX_set_app_data(ctx, st);
    X509_STORE_CTX_set_verify_cb(ctx, collect_errors);
    if (configure_params(ctx, req, st->at) != 0) {
        ck_error_openssl(err, 400, "invalid_request",
                         "the expected host name or IP address is not usable");
        goto cleanup;
    }
    if (X509_verify_cert(ctx) != 1 && !st->failed) {
        st->failed = true;
        ck_verify_add_reason(&st->reasons, -1, NULL,
                             X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    *chain = X509_STORE_CTX_get1_chain(ctx);
    if (*chain != NULL && ck_verify_rules_check(req, *chain, &st->reasons, st->blamed) != 0)
        st->failed = true;
    rc = 0;
cleanup:
    if (rc != 0 && err != NULL && err->code[0] == '\0')
        ck_error_openssl(err, 500, "verify_failed", "the chain could not be verified");
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* Pools without the blamed certificates; the leaf itself is never dropped. Returns how many
 * certificates were dropped. */
static int drop_blamed(STACK_OF(X509) * pool, STACK_OF(X509) * blamed)
{
    int dropped = 0;
    for (int i = sk_X509_num(pool) - 1; i >= 0; i--) {
        for (int j = 0; j < sk_X509_num(blamed); j++) {
            if (X509_cmp(sk_X509_value(pool, i), sk_X509_value(blamed, j)) == 0) {
                sk_X509_delete(pool, i);
                dropped++;
                break;
            }
        }
    }
    return dropped;
}

static void take_attempt(struct ck_verify_result *out, struct attempt_state *st,
                         STACK_OF(X509) * *chain)
{
    ck_strv_free(&out->reasons);
    out->reasons = st->reasons;
    memset(&st->reasons, 0, sizeof(st->reasons));
    sk_X509_pop_free(out->chain, X509_free);
    out->chain = *chain;
    *chain = NULL;
    out->valid = !st->failed;
}

int ck_verify_chain(const struct ck_verify_request *req, struct ck_verify_result *out,
                    ck_error *err)
{
    int rc = -1;
    STACK_OF(X509) *untrusted = NULL, *roots = NULL, *chain = NULL;
    struct attempt_state st = {.magic = CK_VERIFY_STATE_MAGIC, .req = req};
    st.at = (time_t)(req->has_time ? req->time : ck_clock_now());
    if (req->leaf == NULL || req->roots == NULL || (req->dns_name != NULL && req->ip != NULL)) {
        ck_error_set(err, 400, "invalid_request",
                     "verification needs a leaf, roots, and at most one expected name");
        goto cleanup;
    }
    untrusted = req->untrusted != NULL ? sk_X509_dup(req->untrusted) : sk_X509_new_null();
    roots = sk_X509_dup(req->roots);
    st.blamed = sk_X509_new_null();
    if (untrusted == NULL || roots == NULL || st.blamed == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory while verifying a chain");
        goto cleanup;
    }
    for (int attempt = 0; attempt < CK_VERIFY_MAX_ATTEMPTS; attempt++) {
        if (run_attempt(req, untrusted, roots, &st, &chain, err) != 0)
            goto cleanup;
        /* The first attempt's reasons describe the path a person would expect; keep them
         * unless a later path succeeds. */
        if (attempt == 0 || !st.failed)
            take_attempt(out, &st, &chain);
        if (!st.failed)
            break;
        int dropped = drop_blamed(untrusted, st.blamed) + drop_blamed(roots, st.blamed);
        if (dropped == 0)
            break;
        ck_strv_free(&st.reasons);
        sk_X509_zero(st.blamed);
        sk_X509_pop_free(chain, X509_free);
        chain = NULL;
        st.failed = false;
    }
    rc = 0;
cleanup:
    ck_strv_free(&st.reasons);
    sk_X509_free(st.blamed);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_free(untrusted);
    sk_X509_free(roots);
    return rc;
}

void ck_verify_result_free(struct ck_verify_result *res)
{
    if (res == NULL)
        return;
    ck_strv_free(&res->reasons);
    sk_X509_pop_free(res->chain, X509_free);
    res->chain = NULL;
    res->valid = false;
}

int ck_verify_load_certs(const char *pem, size_t len, STACK_OF(X509) * *out, ck_error *err)
{
    int rc = -1;
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    if (certs == NULL || bio == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory while reading certificates");
        goto cleanup;
    }
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long data_len = 0;
        ERR_set_mark();
        if (PEM_read_bio(bio, &name, &header, &data, &data_len) != 1) {
            bool at_end = ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
            ERR_pop_to_mark();
            if (at_end)
                break;
            ck_error_set(err, 400, "invalid_certificate",
                         "the PEM block after certificate %d is damaged (bad base64 or no END "
                         "line)",
                         sk_X509_num(certs));
            goto cleanup;
        }
        ERR_clear_last_mark();
        const unsigned char *p = data;
        X509 *cert = strcmp(name, PEM_STRING_X509) == 0 ? d2i_X509(NULL, &p, data_len) : NULL;
        bool whole = cert != NULL && p == data + data_len;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (!whole || sk_X509_push(certs, cert) == 0) {
            X509_free(cert);
            ck_error_openssl(err, 400, "invalid_certificate",
                             "certificate %d of the bundle is not a readable X.509 certificate",
                             sk_X509_num(certs) + 1);
            goto cleanup;
        }
    }
    *out = certs;
    certs = NULL;
    rc = 0;
cleanup:
    BIO_free(bio);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

int ck_verify_load_crls(const char *pem, size_t len, STACK_OF(X509_CRL) * *out, ck_error *err)
{
    int rc = -1;
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    if (crls == NULL || bio == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory while reading CRLs");
        goto cleanup;
    }
    for (;;) {
        ERR_set_mark();
        X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        if (crl == NULL) {
            bool at_end = ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
            ERR_pop_to_mark();
            if (at_end)
                break;
            ck_error_set(err, 400, "invalid_crl", "CRL %d of the bundle is not readable",
                         sk_X509_CRL_num(crls) + 1);
            goto cleanup;
        }
        ERR_clear_last_mark();
        if (sk_X509_CRL_push(crls, crl) == 0) {
            X509_CRL_free(crl);
            ck_error_set(err, 500, "out_of_memory", "out of memory while reading CRLs");
            goto cleanup;
        }
    }
    *out = crls;
    crls = NULL;
    rc = 0;
cleanup:
    BIO_free(bio);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return rc;
}
