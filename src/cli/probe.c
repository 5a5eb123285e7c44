/* probe.c — `certkeep probe`: connects, shows the leaf the endpoint serves and whether its chain
 * verifies (core/probe.h does the work; this file parses options and prints). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "cli/probe_cmd.h"
#include "common/clock.h"
#include "core/probe.h"
#include "crypto/verify.h"

#define PROBE_ROOTS_FILE_MAX   (16u * 1024 * 1024)
#define PROBE_TIMEOUT_MAX_SECS 3600

const char ck_usage_probe[] =
    "usage: certkeep probe HOST:PORT [--sni NAME] [--roots FILE] [--timeout SECONDS] [--strict]\n"
    "           [--json]\n";

struct probe_options {
    const char *sni, *roots, *timeout;
    bool strict; /* an invalid chain is a failure (exit 1), not only a line of the view */
};

static int parse_timeout(const char *text, int *timeout_ms)
{
    char *end = NULL;
    errno = 0;
    long secs = text != NULL ? strtol(text, &end, 10) : 10;
    if (text != NULL &&
        (errno != 0 || end == text || *end != '\0' || secs < 1 || secs > PROBE_TIMEOUT_MAX_SECS))
        return ck_cli_usage_error(ck_usage_probe, "--timeout %s is not a number of seconds (1-%d)",
                                  text, PROBE_TIMEOUT_MAX_SECS);
    *timeout_ms = (int)secs * 1000;
    return CK_EXIT_OK;
}

static int load_roots(const char *path, STACK_OF(X509) * *out)
{
    char *text = NULL;
    size_t len = 0;
    ck_error err = {0};
    if (path == NULL)
        return CK_EXIT_OK;
    int rc = ck_read_file(path, PROBE_ROOTS_FILE_MAX, &text, &len, &err) == 0 &&
                     ck_verify_load_certs(text, len, out, &err) == 0
                 ? CK_EXIT_OK
                 : CK_EXIT_USAGE;
    free(text);
    if (rc == CK_EXIT_OK && sk_X509_num(*out) == 0) {
        ck_error_set(&err, 400, "invalid_field", "%s holds no certificate", path);
        rc = CK_EXIT_USAGE;
    }
    if (rc != CK_EXIT_OK)
        fprintf(stderr, "certkeep: --roots %s: %s\n", path, err.message);
    return rc;
}

static void show_human(const json_t *view)
{
    static const struct ck_view_row rows[] = {
        {"endpoint", "endpoint"},
        {"sni", "sni"},
        {"subject", "certificate.subject.text"},
        {"dns sans", "certificate.dns_sans"},
        {"ip sans", "certificate.ip_sans"},
        {"issuer", "certificate.issuer.text"},
        {"serial", "certificate.serial"},
        {"not before", "certificate.not_before"},
        {"not after", "certificate.not_after"},
        {"days left", "certificate.days_left"},
        {"sha256", "certificate.sha256_fingerprint"},
    };
    ck_out_view(stdout, view, rows, CK_ARRAY_LEN(rows));
    const json_t *chain = ck_json_at(view, "chain");
    for (size_t i = 0; i < json_array_size(chain); i++) {
        const json_t *entry = json_array_get(chain, i);
        char label[32];
        snprintf(label, sizeof(label), "sent %zu", i);
        ck_out_field(stdout, label, ck_json_str(entry, "subject"));
    }
    const json_t *problems = ck_json_at(view, "chain_problems");
    if (json_array_size(problems) == 0) {
        ck_out_field(stdout, "chain", "valid");
        return;
    }
    char *reasons = ck_json_display(problems);
    printf("%-*sinvalid: %s\n", CK_OUT_LABEL_WIDTH, "chain", reasons != NULL ? reasons : "");
    free(reasons);
}

static int probe_and_show(const struct ck_cli *cli, struct ck_probe_request *req, bool strict)
{
    struct ck_probe_result res = {0};
    ck_error err = {0};
    json_t *view = NULL;
    int rc = CK_EXIT_FAILED;
    if (ck_probe(req, &res, &err) != 0) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        goto cleanup;
    }
    view = ck_probe_result_to_json(&res, ck_clock_now());
    if (view == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        goto cleanup;
    }
    if (cli->json && ck_out_json(view) != CK_EXIT_OK)
        goto cleanup;
    if (!cli->json)
        show_human(view);
    /* Like openssl s_client, showing what is served is the success: the chain status is part of
     * the view. --strict makes a monitoring check of it. */
    rc = res.chain_valid || !strict ? CK_EXIT_OK : CK_EXIT_FAILED;
cleanup:
    json_decref(view);
    ck_probe_result_free(&res);
    return rc;
}

int ck_cmd_probe(const struct ck_cli *cli, int argc, char **argv)
{
    struct probe_options o = {0};
    const struct ck_opt opts[] = {
        {"sni", CK_OPT_STRING, &o.sni},
        {"roots", CK_OPT_STRING, &o.roots},
        {"timeout", CK_OPT_STRING, &o.timeout},
        {"strict", CK_OPT_FLAG, &o.strict},
    };
    const struct ck_cli_spec spec = {ck_usage_probe, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args = NULL;
    int n_args = 0;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    struct ck_probe_request req = {.endpoint = args[0], .sni = o.sni};
    if (o.sni != NULL && o.sni[0] == '\0')
        return ck_cli_usage_error(ck_usage_probe, "--sni needs a name");
    rc = parse_timeout(o.timeout, &req.timeout_ms);
    if (rc == CK_EXIT_OK)
        rc = load_roots(o.roots, &req.extra_roots);
    if (rc == CK_EXIT_OK)
        rc = probe_and_show(cli, &req, o.strict);
    sk_X509_pop_free(req.extra_roots, X509_free);
    return rc;
}
