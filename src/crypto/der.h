/* der.h — reading DER with OpenSSL's ASN.1 decoder, all of it or nothing. */
#ifndef CK_CRYPTO_DER_H
#define CK_CRYPTO_DER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1.h>
#include <openssl/types.h>

/* Decodes exactly len bytes as item (libctx NULL: the default library context), or NULL when
 * they are anything else: a valid prefix followed by more bytes is refused, not read in part.
 * The caller frees the result with ASN1_item_free (or the item's own free, e.g. X509_free). */
void *ck_d2i_exact(const ASN1_ITEM *item, const uint8_t *der, size_t len, OSSL_LIB_CTX *libctx);

#endif
