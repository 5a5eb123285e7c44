/* libFuzzer target: the import checks on untrusted certificate and chain pastes. The input is
 * split at its first NUL byte: the certificate field before it, the chain field after it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/import_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The order every input is checked against: the CSR behind the seed corpus's certificates
 * (public data; the seeds' private keys were never kept), so that the seeds reach the accepted
 * path too, and a trust store holding the seeds' root. */
static const char order_csr_pem[] =
    "-----BEGIN CERTIFICATE REQUEST-----\n"
    "MIH5MIGgAgEAMD4xCzAJBgNVBAYTAkRFMRQwEgYDVQQKDAtFeGFtcGxlIEluYzEZ\n"
    "MBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABMQXUwnJD3CMgzxQDxvL3MTJJqyn3od7EfhE3rAt94KFj9D3foZAucC5+Ppy\n"
    "wemxQ2l5V++UA0sNR13MKSFdJ0ygADAKBggqhkjOPQQDAgNIADBFAiEA2n39d+gg\n"
    "+/B2KJ2AaRhTNxJGUCWXyGNCL3Ukkajh3xwCIEPLh8Bhjau8RzGRZMiBOUU1H56y\n"
    "/SXEI3MOP4PXCH3L\n"
    "-----END CERTIFICATE REQUEST-----\n";

static const char seed_root_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBjDCCATOgAwIBAgIUd0BR6lmvnVaeW0iF8jK+moGR6TgwCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJU2VlZCBSb290MB4XDTI2MTEyMjA4MTIzOVoXDTM2MTExOTA4\n"
    "MTIzOVowFDESMBAGA1UEAwwJU2VlZCBSb290MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAE7XO+iryLp4npj1DaPm2sSoDrC+Qkuk445sGkf7xN/AfewEnlaUAgtWEH\n"
    "s447/zWnpXepUGf2wab7pdmphWTgsKNjMGEwHQYDVR0OBBYEFF4kZKmMCrFt6Hrr\n"
    "9UZbmmnz3Zv/MB8GA1UdIwQYMBaAFF4kZKmMCrFt6Hrr9UZbmmnz3Zv/MA8GA1Ud\n"
    "EwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0cAMEQCIHHO\n"
    "zBiCt9YNmDcu6rPaWdA6+4GEVKihn1CSYWe71P8DAiB1bevQslHQhyX2+0Tr1Xsw\n"
    "rV2K1/+nWCZkT0jCyMPqBg==\n"
    "-----END CERTIFICATE-----\n";

/* 2026-11-30: inside the seed certificates' validity. */
#define FUZZ_NOW 1796000000

/* libFuzzer offers no context pointer: set once in LLVMFuzzerInitialize, then only read. */
static X509_STORE *trust;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    trust = ck_trust_store_new(seed_root_pem, NULL);
    if (trust == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t cert_len = nul ? (size_t)(nul - text) : size;
    struct ck_import_input in = {
        .cert_pem = text,
        .cert_len = cert_len,
        .chain_pem = nul ? nul + 1 : NULL,
        .chain_len = nul ? size - cert_len - 1 : 0,
        .csr_pem = order_csr_pem,
        .order_key = NULL, /* the CSR's key, as for an order started from an uploaded CSR */
        .trust = trust,
        .now = FUZZ_NOW,
    };
    struct ck_import_result result = {0};
    if (ck_import_check(&in, &result, NULL) == 0) {
        /* a refused certificate says why; an accepted one has its fullchain */
        if (result.errors.len == 0 && result.fullchain_pem == NULL)
            abort();
        if (result.errors.len > 0 && result.fullchain_pem != NULL)
            abort();
        json_decref(ck_import_result_to_json(&result));
    }
    ck_import_result_free(&result);
    return 0;
}
