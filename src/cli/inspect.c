/* `certkeep csr inspect FILE` and `certkeep cert inspect FILE`: offline, no API. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "common/clock.h"
#include "crypto/x509info.h"

/* Inputs are refused above this size, like the API's bodies. */
#define INSPECT_MAX_INPUT (1024 * 1024)

const char ck_usage_csr[] = "usage: certkeep csr inspect FILE     (FILE - reads stdin)\n";
const char ck_usage_cert[] = "usage: certkeep cert inspect FILE    (FILE - reads stdin)\n";

/* Parses text into its JSON view (docs in x509info.h); *valid is false when the input parsed
 * but fails its own check (a CSR whose signature does not verify). */
typedef int (*inspect_parse_fn)(const char *text, size_t len, json_t **view, bool *valid,
                                ck_error *err);

static int parse_csr(const char *text, size_t len, json_t **view, bool *valid, ck_error *err)
{
    struct ck_csr_info info = {0};
    if (ck_csr_info_from_pem(text, len, &info, err) != 0)
        return -1;
    *view = ck_csr_info_to_json(&info);
    *valid = info.signature_valid;
    ck_csr_info_free(&info);
    return *view ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
}

static int parse_cert(const char *text, size_t len, json_t **view, bool *valid, ck_error *err)
{
    struct ck_cert_info info = {0};
    if (ck_cert_info_from_pem(text, len, &info, err) != 0)
        return -1;
    *view = ck_cert_info_to_json(&info, ck_clock_now());
    *valid = true;
    ck_cert_info_free(&info);
    return *view ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
}

static void show_names(const json_t *view)
{
    static const struct ck_view_row rows[] = {
        {"subject", "subject.text"}, {"dns sans", "dns_sans"}, {"ip sans", "ip_sans"}};
    static const struct ck_view_row key[] = {{"key", "key_type"}, {"bits", "key_bits"}};
    ck_out_view(stdout, view, rows, CK_ARRAY_LEN(rows));
    ck_out_pairs(stdout, view, key, CK_ARRAY_LEN(key));
}

static void show_csr(const json_t *view)
{
    static const struct ck_view_row sig[] = {{"signature", "signature_algorithm"},
                                             {"valid", "signature_valid"}};
    show_names(view);
    ck_out_pairs(stdout, view, sig, CK_ARRAY_LEN(sig));
}

static void show_cert(const json_t *view)
{
    static const struct ck_view_row rows[] = {
        {"issuer", "issuer.text"},
        {"signature", "signature_algorithm"},
        {"serial", "serial"},
        {"not before", "not_before"},
        {"not after", "not_after"},
        {"days left", "days_left"},
        {"sha256", "sha256_fingerprint"},
    };
    static const struct ck_view_row ca[] = {{"ca", "is_ca"}, {"self-signed", "self_signed"}};
    show_names(view);
    ck_out_view(stdout, view, rows, CK_ARRAY_LEN(rows));
    ck_out_pairs(stdout, view, ca, CK_ARRAY_LEN(ca));
}

/* Reads FILE, shows what it holds. 2 when it cannot be read, 1 when it is not a `what` or does
 * not pass its own check. */
static int inspect_file(const struct ck_cli *cli, int argc, char **argv, const char *usage,
                        inspect_parse_fn parse, void (*show)(const json_t *))
{
    const struct ck_cli_spec spec = {usage, NULL, 0, 1, 1};
    char **args;
    int n_args;
    char *text = NULL;
    size_t len = 0;
    json_t *view = NULL;
    bool valid = false;
    ck_error err = {0};
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        goto cleanup;
    rc = CK_EXIT_USAGE;
    if (ck_read_file(args[0], INSPECT_MAX_INPUT, &text, &len, &err) != 0)
        goto cleanup;
    rc = CK_EXIT_FAILED;
    if (parse(text, len, &view, &valid, &err) != 0)
        goto cleanup;
    if (cli->json) {
        if (ck_out_json(view) != CK_EXIT_OK)
            goto cleanup;
    } else {
        show(view);
    }
    if (!valid)
        ck_error_set(&err, 400, "invalid_signature", "the CSR's signature does not verify");
    rc = valid ? CK_EXIT_OK : CK_EXIT_FAILED;
cleanup:
    if (err.message[0] != '\0')
        fprintf(stderr, "certkeep: %s\n", err.message);
    json_decref(view);
    free(text);
    return rc;
}

static int csr_inspect(const struct ck_cli *cli, int argc, char **argv)
{
    return inspect_file(cli, argc, argv, ck_usage_csr, parse_csr, show_csr);
}

static int cert_inspect(const struct ck_cli *cli, int argc, char **argv)
{
    return inspect_file(cli, argc, argv, ck_usage_cert, parse_cert, show_cert);
}

int ck_cmd_csr(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"inspect", csr_inspect, NULL}};
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_csr, argc, argv);
}

int ck_cmd_cert(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"inspect", cert_inspect, NULL}};
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_cert, argc, argv);
}
