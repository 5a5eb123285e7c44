/* libFuzzer target: what an ACME CA sends for Renewal Information (RFC 9773): the renewalInfo
 * body, and the certificate whose certID is computed (both untrusted). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "issuers/acme/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ck_acme_renewal_info ri = {.retry_after_s = -1};
    if (ck_acme_renewal_info_parse((const char *)data, size, &ri, NULL) == 0 &&
        ri.window_end <= ri.window_start)
        abort(); /* an inverted window must never be accepted */
    ck_acme_renewal_info_free(&ri);
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *id = NULL;
    if (ck_acme_ari_cert_id(text, &id, NULL) == 0 && (id == NULL || strchr(id, '.') == NULL))
        abort();
    free(id);
    free(text);
    return 0;
}
