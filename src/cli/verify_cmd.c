/* verify_cmd.c — `certkeep verify`: one chain from files, or (hidden, for the conformance suite)
 * every SERVER case of an x509-limbo file through the same verifier. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "cli/verify_cmd.h"
#include "common/clock.h"
#include "crypto/verify.h"

#define CK_VERIFY_FILE_MAX (16u * 1024 * 1024)

static const char usage_verify[] =
    "usage: certkeep verify --roots FILE [--untrusted FILE] [--host NAME | --ip ADDR]\n"
    "           [--at UNIX_TIME] LEAF.pem\n"
    "Exit status: 0 the chain is valid, 1 it is not (reasons on stderr), 2 usage or unreadable\n"
    "input. An empty --untrusted file means no intermediates.\n";

struct verify_options {
    const char *roots, *untrusted, *host, *ip, *at, *limbo;
};

static int load_cert_file(const char *path, STACK_OF(X509) * *out, ck_error *err)
{
    char *text = NULL;
    size_t len = 0;
    if (ck_read_file(path, CK_VERIFY_FILE_MAX, &text, &len, err) != 0)
        return -1;
    int rc = ck_verify_load_certs(text, len, out, err);
    free(text);
    if (rc != 0)
        snprintf(err->message + strlen(err->message), sizeof(err->message) - strlen(err->message),
                 " (in %s)", path);
    return rc;
}

static int parse_unix_time(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long t = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || t < 0)
        return ck_cli_usage_error(usage_verify, "--at %s is not a UNIX time (seconds)", text);
    *out = t;
    return CK_EXIT_OK;
}

/* Certificates hold A-labels (RFC 5280 7.2): "bücher.example" is checked as
 * "xn--bcher-kva.example". *out is NULL when host is plain ASCII; the caller frees it. */
static int host_to_ascii(const char *host, char **out)
{
    *out = NULL;
    for (const char *p = host; *p != '\0'; p++) {
        if ((unsigned char)*p >= 0x80) {
            int rc = idn2_to_ascii_8z(host, out, IDN2_NONTRANSITIONAL);
            if (rc != IDN2_OK)
                return ck_cli_usage_error(usage_verify, "--host %s is not a valid IDNA name: %s",
                                          host, idn2_strerror(rc));
            break;
        }
    }
    return CK_EXIT_OK;
}

/* Reads the files into req; CK_EXIT_OK, or CK_EXIT_USAGE after printing why. */
static int build_request(const struct verify_options *o, const char *leaf_path,
                         struct ck_verify_request *req, STACK_OF(X509) * *leaf_stack,
                         char **host_ascii)
{
    ck_error err = {0};
    if (o->roots == NULL)
        return ck_cli_usage_error(usage_verify, "verify needs --roots FILE");
    if (o->host != NULL && o->ip != NULL)
        return ck_cli_usage_error(usage_verify, "give --host or --ip, not both");
    if (o->at != NULL && parse_unix_time(o->at, &req->time) != CK_EXIT_OK)
        return CK_EXIT_USAGE;
    req->has_time = o->at != NULL;
    if (o->host != NULL && host_to_ascii(o->host, host_ascii) != CK_EXIT_OK)
        return CK_EXIT_USAGE;
    req->dns_name = *host_ascii != NULL ? *host_ascii : o->host;
    unsigned char addr[16];
    if (o->ip != NULL && inet_pton(AF_INET, o->ip, addr) != 1 &&
        inet_pton(AF_INET6, o->ip, addr) != 1)
        return ck_cli_usage_error(usage_verify, "--ip %s is not an IPv4 or IPv6 address", o->ip);
    req->ip = o->ip;
    if (load_cert_file(o->roots, &req->roots, &err) != 0 ||
        (o->untrusted != NULL && load_cert_file(o->untrusted, &req->untrusted, &err) != 0) ||
        load_cert_file(leaf_path, leaf_stack, &err) != 0) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        return CK_EXIT_USAGE;
    }
    if (sk_X509_num(*leaf_stack) == 0) {
        fprintf(stderr, "certkeep: %s holds no certificate\n", leaf_path);
        return CK_EXIT_USAGE;
    }
    req->leaf = sk_X509_value(*leaf_stack, 0);
    return CK_EXIT_OK;
}

static void print_chain(const STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        char subject[512] = "";
        X509_NAME_oneline(X509_get_subject_name(sk_X509_value(chain, i)), subject, sizeof(subject));
        printf("  %d %s\n", i, subject);
    }
}

static int verify_files(const struct verify_options *o, const char *leaf_path)
{
    int rc = CK_EXIT_USAGE;
    struct ck_verify_request req = {0};
    struct ck_verify_result res = {0};
    STACK_OF(X509) *leaf_stack = NULL;
    char *host_ascii = NULL;
    ck_error err = {0};
    if (build_request(o, leaf_path, &req, &leaf_stack, &host_ascii) != CK_EXIT_OK)
        goto cleanup;
    if (ck_verify_chain(&req, &res, &err) != 0) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        goto cleanup;
    }
    if (res.valid) {
        printf("%s: OK\n", leaf_path);
        print_chain(res.chain);
        rc = CK_EXIT_OK;
    } else {
        fprintf(stderr, "%s: verification failed\n", leaf_path);
        for (size_t i = 0; i < res.reasons.len; i++)
            fprintf(stderr, "  %s\n", res.reasons.items[i]);
        rc = CK_EXIT_FAILED;
    }
cleanup:
    ck_verify_result_free(&res);
    sk_X509_pop_free(req.roots, X509_free);
    sk_X509_pop_free(req.untrusted, X509_free);
    sk_X509_pop_free(leaf_stack, X509_free);
    idn2_free(host_ascii);
    return rc;
}

/* ---- x509-limbo batch mode ---- */

struct limbo_tally {
    int server_total, server_passed;
    int own_total, own_passed; /* limbo's own cases: ids not starting with "bettertls::" */
};

/* Appends the certificates of one PEM string (a JSON string) to *out (created when NULL). */
static int limbo_pem(json_t *pem, STACK_OF(X509) * *out, ck_error *err)
{
    STACK_OF(X509) *certs = NULL;
    if (*out == NULL && (*out = sk_X509_new_null()) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    if (!json_is_string(pem))
        return ck_error_set(err, 400, "invalid_case", "a certificate is not a PEM string");
    if (ck_verify_load_certs(json_string_value(pem), json_string_length(pem), &certs, err) != 0)
        return -1;
    while (sk_X509_num(certs) > 0)
        sk_X509_push(*out, sk_X509_shift(certs));
    sk_X509_free(certs);
    return 0;
}

static int limbo_certs(json_t *array, STACK_OF(X509) * *out, ck_error *err)
{
    size_t i;
    json_t *item;
    if (*out == NULL && (*out = sk_X509_new_null()) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    json_array_foreach(array, i, item)
    {
        if (limbo_pem(item, out, err) != 0)
            return -1;
    }
    return 0;
}

static int limbo_crls(json_t *array, STACK_OF(X509_CRL) * *out, ck_error *err)
{
    if (json_array_size(array) == 0)
        return 0;
    if ((*out = sk_X509_CRL_new_null()) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        STACK_OF(X509_CRL) *crls = NULL;
        const char *pem = json_string_value(item);
        if (pem == NULL || ck_verify_load_crls(pem, strlen(pem), &crls, err) != 0)
            return ck_error_set(err, 400, "invalid_case", "a CRL is not readable");
        while (sk_X509_CRL_num(crls) > 0)
            sk_X509_CRL_push(*out, sk_X509_CRL_shift(crls));
        sk_X509_CRL_free(crls);
    }
    return 0;
}

/* Fills req from one case; the certificates land in req's stacks and *leaf_stack. */
static int limbo_request(json_t *tc, struct ck_verify_request *req, STACK_OF(X509) * *leaf_stack,
                         ck_error *err)
{
    json_t *peer_name = json_object_get(tc, "expected_peer_name");
    const char *kind = json_string_value(json_object_get(peer_name, "kind"));
    const char *value = json_string_value(json_object_get(peer_name, "value"));
    const char *when = json_string_value(json_object_get(tc, "validation_time"));
    json_t *depth = json_object_get(tc, "max_chain_depth");
    if (kind != NULL && strcmp(kind, "DNS") == 0)
        req->dns_name = value;
    else if (kind != NULL && strcmp(kind, "IP") == 0)
        req->ip = value;
    req->has_time = when != NULL;
    if (when != NULL && ck_time_parse(when, &req->time) != 0)
        return ck_error_set(err, 400, "invalid_case", "validation_time %s is not RFC 3339", when);
    req->has_max_intermediates = json_is_integer(depth);
    req->max_intermediates = (int)json_integer_value(depth);
    if (limbo_certs(json_object_get(tc, "trusted_certs"), &req->roots, err) != 0 ||
        limbo_certs(json_object_get(tc, "untrusted_intermediates"), &req->untrusted, err) != 0 ||
        limbo_crls(json_object_get(tc, "crls"), &req->crls, err) != 0 ||
        limbo_pem(json_object_get(tc, "peer_certificate"), leaf_stack, err) != 0)
        return -1;
    if (sk_X509_num(*leaf_stack) != 1)
        return ck_error_set(err, 400, "invalid_case", "the peer certificate is not readable");
    req->leaf = sk_X509_value(*leaf_stack, 0);
    return 0;
}

/* Runs one case; returns whether the verdict matches and fills `why` for the report line. */
static bool limbo_case(json_t *tc, char *why, size_t why_len)
{
    struct ck_verify_request req = {0};
    struct ck_verify_result res = {0};
    STACK_OF(X509) *leaf_stack = NULL;
    ck_error err = {0};
    const char *expected = json_string_value(json_object_get(tc, "expected_result"));
    const char *actual = "FAILURE";
    const char *reason = "";
    if (limbo_request(tc, &req, &leaf_stack, &err) != 0 || ck_verify_chain(&req, &res, &err) != 0) {
        reason = err.message;
    } else {
        actual = res.valid ? "SUCCESS" : "FAILURE";
        reason = res.reasons.len > 0 ? res.reasons.items[0] : "valid";
    }
    bool pass = expected != NULL && strcmp(expected, actual) == 0;
    snprintf(why, why_len, "expected %s got %s: %s", expected != NULL ? expected : "?", actual,
             reason);
    for (char *p = why; *p != '\0'; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    ck_verify_result_free(&res);
    sk_X509_pop_free(req.roots, X509_free);
    sk_X509_pop_free(req.untrusted, X509_free);
    sk_X509_CRL_pop_free(req.crls, X509_CRL_free);
    sk_X509_pop_free(leaf_stack, X509_free);
    return pass;
}

static int run_limbo(const char *path)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (in == NULL) {
        fprintf(stderr, "certkeep: cannot open %s: %s\n", path, strerror(errno));
        return CK_EXIT_USAGE;
    }
    json_error_t jerr;
    json_t *suite = json_loadf(in, 0, &jerr);
    if (in != stdin)
        fclose(in);
    json_t *cases = json_object_get(suite, "testcases");
    if (!json_is_array(cases)) {
        fprintf(stderr, "certkeep: %s is not an x509-limbo file: %s (line %d)\n", path,
                suite == NULL ? jerr.text : "no testcases array", jerr.line);
        json_decref(suite);
        return CK_EXIT_USAGE;
    }
    struct limbo_tally tally = {0};
    size_t i;
    json_t *tc;
    json_array_foreach(cases, i, tc)
    {
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *kind = json_string_value(json_object_get(tc, "validation_kind"));
        if (id == NULL || kind == NULL || strcmp(kind, "SERVER") != 0)
            continue;
        char why[1024];
        bool pass = limbo_case(tc, why, sizeof(why));
        bool own = strncmp(id, "bettertls::", 11) != 0;
        tally.server_total++;
        tally.server_passed += pass;
        tally.own_total += own;
        tally.own_passed += own && pass;
        printf("%s\t%s\t%s\n", id, pass ? "PASS" : "FAIL", why);
    }
    json_decref(suite);
    fprintf(stderr, "server %d/%d limbo %d/%d\n", tally.server_passed, tally.server_total,
            tally.own_passed, tally.own_total);
    return CK_EXIT_OK;
}

int ck_cmd_verify(int argc, char **argv)
{
    if (ck_cli_wants_help(argc, argv)) {
        fputs(usage_verify, stdout);
        return CK_EXIT_OK;
    }
    struct verify_options o = {0};
    const struct ck_opt opts[] = {
        {"roots", CK_OPT_STRING, &o.roots}, {"untrusted", CK_OPT_STRING, &o.untrusted},
        {"host", CK_OPT_STRING, &o.host},   {"ip", CK_OPT_STRING, &o.ip},
        {"at", CK_OPT_STRING, &o.at},       {"limbo", CK_OPT_STRING, &o.limbo},
    };
    const struct ck_cli_spec spec = {usage_verify, opts, CK_ARRAY_LEN(opts), 0, 1};
    char **args = NULL;
    int n_args = 0;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    if (o.limbo != NULL)
        return n_args == 0 ? run_limbo(o.limbo)
                           : ck_cli_usage_error(usage_verify, "--limbo takes no LEAF");
    if (n_args != 1)
        return ck_cli_usage_error(usage_verify, "verify needs the LEAF.pem to check");
    return verify_files(&o, args[0]);
}
