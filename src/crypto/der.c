/* der.c — see der.h. */
#include "crypto/der.h"

#include <limits.h>

void *ck_d2i_exact(const ASN1_ITEM *item, const uint8_t *der, size_t len, OSSL_LIB_CTX *libctx)
{
    if (len > LONG_MAX)
        return NULL;
    const unsigned char *p = der;
    ASN1_VALUE *value = ASN1_item_d2i_ex(NULL, &p, (long)len, item, libctx, NULL);
    if (value != NULL && (size_t)(p - der) != len) {
        ASN1_item_free(value, item);
        value = NULL;
    }
    return value;
}
