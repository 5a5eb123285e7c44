/* libFuzzer target: certificate and CSR parsing of untrusted PEM or DER, and their JSON views. */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/x509info.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct ck_cert_info cert;
    if (ck_cert_info_from_pem(text, size, &cert, NULL) == 0) {
        json_decref(ck_cert_info_to_json(&cert, 1700000000));
        ck_cert_info_free(&cert);
    }
    struct ck_csr_info csr;
    if (ck_csr_info_from_pem(text, size, &csr, NULL) == 0) {
        json_decref(ck_csr_info_to_json(&csr));
        ck_csr_info_free(&csr);
    }
    return 0;
}
