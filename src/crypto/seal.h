/* seal.h — secrets at rest: AES-256-GCM under the 32-byte master key.
 *
 * Sealed blob layout (version 1): 0x01 | 12-byte random nonce | ciphertext | 16-byte tag.
 * The associated data binds a blob to its place ("certkeep/order/42/key"), so a blob copied to
 * another row does not open. Only this module and keys.c ever hold plaintext key bytes, and they
 * cleanse them before freeing. */
#ifndef CK_CRYPTO_SEAL_H
#define CK_CRYPTO_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/error.h"

#define CK_MASTER_KEY_LEN 32

typedef struct ck_master_key {
    uint8_t bytes[CK_MASTER_KEY_LEN];
} ck_master_key;

/* Creates a new random master key file at path with mode 0600 (refuses to overwrite). */
int ck_master_key_create(const char *path, ck_master_key *out, ck_error *err);

/* Loads the master key: from the environment variable CERTKEEP_MASTER_KEY (64 hex digits) when
 * set, otherwise from path. A file readable by group or others is refused. */
int ck_master_key_load(const char *path, ck_master_key *out, ck_error *err);

/* Wipes the key from memory. */
void ck_master_key_wipe(ck_master_key *key);

int ck_seal(const ck_master_key *key, const char *aad, const uint8_t *plain, size_t plain_len,
            uint8_t **out, size_t *out_len, ck_error *err);

/* Fails with a 500 "unseal_failed" error on a wrong key, wrong aad or any tampering.
 * The caller must OPENSSL_clear_free(*out, *out_len). */
int ck_unseal(const ck_master_key *key, const char *aad, const uint8_t *sealed, size_t sealed_len,
              uint8_t **out, size_t *out_len, ck_error *err);

/* Seals a private key (PKCS#8 DER inside). */
int ck_seal_private_key(const ck_master_key *key, const char *aad, EVP_PKEY *pkey, uint8_t **out,
                        size_t *out_len, ck_error *err);

/* Opens a sealed private key. Caller frees with EVP_PKEY_free. */
EVP_PKEY *ck_unseal_private_key(const ck_master_key *key, const char *aad, const uint8_t *sealed,
                                size_t sealed_len, ck_error *err);

/* The same, but an EC key on a named curve with its public point is imported into libctx's "EC"
 * key manager when that takes it (the edge's own, see edge/leaf_parser.h); any other key, or one
 * it refuses, is an ordinary key of the default library context. The import carries
 * CK_SEAL_IMPORT_PARAM (an integer 1) beside the key's values, so that a key manager can tell a
 * private key made on purpose from OpenSSL copying some other key into it (which it does, with
 * the private half, to compare keys of two providers). */
#define CK_SEAL_IMPORT_PARAM "certkeep-sealed-key"
EVP_PKEY *ck_unseal_private_key_ex(const ck_master_key *key, const char *aad, const uint8_t *sealed,
                                   size_t sealed_len, OSSL_LIB_CTX *libctx, ck_error *err);

#endif
