/* keys.h — private key types and generation. Keys live in memory only as EVP_PKEY and at rest
 * only sealed (see seal.h). */
#ifndef CK_CRYPTO_KEYS_H
#define CK_CRYPTO_KEYS_H

#include <stdbool.h>

#include <openssl/evp.h>

#include "common/error.h"

enum ck_key_type {
    CK_KEY_RSA_2048,
    CK_KEY_RSA_3072,
    CK_KEY_RSA_4096,
    CK_KEY_EC_P256,
    CK_KEY_EC_P384,
    CK_KEY_TYPE_COUNT
};

/* "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384". */
const char *ck_key_type_name(enum ck_key_type type);

/* Parses a name above. Unknown names and RSA below 2048 are refused with a 400 error that lists
 * the allowed types ("key type rsa-1024 is not allowed: RSA keys must be at least 2048 bits"). */
int ck_key_type_parse(const char *name, enum ck_key_type *out, ck_error *err);

/* Generates a fresh private key of that type. Caller frees with EVP_PKEY_free. */
EVP_PKEY *ck_key_generate(enum ck_key_type type, ck_error *err);

/* Describes a public or private key: writes its family and size ("rsa-2048", "rsa-1024",
 * "ec-p256", "ed25519", ...) into name and its size in bits into *bits. Sets *type and returns 0
 * when it is one of the allowed types; returns -1 with a 400 error naming it otherwise (name and
 * bits are filled in either case, so an inspector can still show them). */
int ck_key_describe(EVP_PKEY *key, char name[32], int *bits, enum ck_key_type *type,
                    ck_error *err);

/* True when both keys hold the same public key. */
bool ck_key_public_equal(EVP_PKEY *a, EVP_PKEY *b);

#endif
