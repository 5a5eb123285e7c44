/* keyopen — microseconds to open one sealed private key: certkeep's ck_unseal_private_key
 * against OpenSSL's PrivateKeyInfo decoder (what certkeep used before), and the edge's way
 * (ck_unseal_private_key_ex into the leaf parser's provider), all in the same run on the same
 * key. See README.md. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/seal.h"
#include "edge/leaf_parser.h"

#define AAD "certkeep/order/1/key"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static EVP_PKEY *generate(const char *kind)
{
    if (strcmp(kind, "p256") == 0)
        return EVP_EC_gen("P-256");
    if (strcmp(kind, "p384") == 0)
        return EVP_EC_gen("P-384");
    if (strcmp(kind, "p521") == 0)
        return EVP_EC_gen("P-521");
    if (strcmp(kind, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (strcmp(kind, "rsa2048") == 0)
        return EVP_RSA_gen(2048);
    return NULL;
}

/* The decoder certkeep used before: the one PrivateKeyInfo decoder for the key's algorithm. */
static EVP_PKEY *decode_with_decoder(const unsigned char *der, size_t der_len, const char *type)
{
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t left = der_len;
    OSSL_DECODER_CTX *dec = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo", type,
                                                          EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dec == NULL || OSSL_DECODER_from_data(dec, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dec);
    return pkey;
}

static void type_of(const unsigned char *der, size_t der_len, char *type, int size)
{
    const unsigned char *p = der;
    const ASN1_OBJECT *alg = NULL;
    PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der_len);
    type[0] = '\0';
    if (info != NULL && PKCS8_pkey_get0(&alg, NULL, NULL, NULL, info) == 1)
        OBJ_obj2txt(type, size, alg, 1);
    PKCS8_PRIV_KEY_INFO_free(info);
}

/* Microseconds per key for ck_unseal_private_key_ex into libctx (NULL: an ordinary key), each
 * key checked against the original; -1 when one is wrong. */
static double time_open(const ck_master_key *key, const uint8_t *blob, size_t blob_len,
                        EVP_PKEY *original, OSSL_LIB_CTX *libctx, int count)
{
    double t0 = now_us();
    for (int i = 0; i < count; i++) {
        EVP_PKEY *k = ck_unseal_private_key_ex(key, AAD, blob, blob_len, libctx, NULL);
        bool same = k != NULL && EVP_PKEY_eq(k, original) == 1;
        EVP_PKEY_free(k);
        if (!same)
            return -1;
    }
    return (now_us() - t0) / count;
}

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "p256";
    int count = argc > 2 ? atoi(argv[2]) : 20000;
    ck_master_key key;
    memset(key.bytes, 0x5a, sizeof(key.bytes));
    EVP_PKEY *pkey = generate(kind);
    if (pkey == NULL || count <= 0) {
        fprintf(stderr, "usage: keyopen [p256|p384|p521|ed25519|rsa2048] [count]\n");
        return 2;
    }
    unsigned char *der = NULL;
    size_t der_len = 0;
    OSSL_ENCODER_CTX *enc =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    if (enc == NULL || OSSL_ENCODER_to_data(enc, &der, &der_len) != 1 ||
        ck_seal_private_key(&key, AAD, pkey, &blob, &blob_len, NULL) != 0) {
        fprintf(stderr, "cannot encode or seal the key\n");
        return 1;
    }
    OSSL_ENCODER_CTX_free(enc);
    char type[80];
    type_of(der, der_len, type, (int)sizeof(type));

    double best_decoder = 1e30, best_unseal = 1e30, best_open = 1e30, best_edge = 1e30;
    ck_leaf_parser *parser = ck_leaf_parser_new(NULL);
    if (parser == NULL)
        return fprintf(stderr, "cannot make the edge's leaf parser\n"), 1;
    for (int round = 0; round < 3; round++) {
        double t0 = now_us();
        for (int i = 0; i < count; i++) {
            EVP_PKEY *k = decode_with_decoder(der, der_len, type);
            if (k == NULL || EVP_PKEY_eq(k, pkey) != 1)
                return fprintf(stderr, "the decoder failed\n"), 1;
            EVP_PKEY_free(k);
        }
        double t1 = now_us();
        for (int i = 0; i < count; i++) {
            uint8_t *plain = NULL;
            size_t plain_len = 0;
            if (ck_unseal(&key, AAD, blob, blob_len, &plain, &plain_len, NULL) != 0)
                return fprintf(stderr, "ck_unseal failed\n"), 1;
            OPENSSL_clear_free(plain, plain_len);
        }
        double t2 = now_us();
        /* The EVP_PKEY_eq check is in every key loop; it is cheap next to any of them. */
        double open = time_open(&key, blob, blob_len, pkey, NULL, count);
        double edge =
            time_open(&key, blob, blob_len, pkey, ck_leaf_parser_key_libctx(parser), count);
        if (open < 0 || edge < 0)
            return fprintf(stderr, "ck_unseal_private_key_ex opened a wrong key\n"), 1;
        if ((t1 - t0) / count < best_decoder)
            best_decoder = (t1 - t0) / count;
        if ((t2 - t1) / count < best_unseal)
            best_unseal = (t2 - t1) / count;
        if (open < best_open)
            best_open = open;
        if (edge < best_edge)
            best_edge = edge;
    }
    double decode_now = best_open - best_unseal;
    printf("%s: %d keys x 3 rounds, best round\n", kind, count);
    printf("  OpenSSL PrivateKeyInfo decoder          %8.2f us/key\n", best_decoder);
    printf("  ck_unseal (AES-GCM only)                %8.2f us/key\n", best_unseal);
    printf("  ck_unseal_private_key (unseal + decode) %8.2f us/key\n", best_open);
    printf("  decode part of ck_unseal_private_key    %8.2f us/key\n", decode_now);
    printf("  ratio decoder / certkeep decode         %8.2f\n", best_decoder / decode_now);
    printf("  ratio (unseal + decoder) / ck_unseal_private_key %5.2f\n",
           (best_unseal + best_decoder) / best_open);
    printf("  ck_unseal_private_key_ex, edge provider  %8.2f us/key (no curve group; EC only,\n"
           "                                           other keys are ordinary ones)\n",
           best_edge);
    ck_leaf_parser_free(parser);
    OPENSSL_clear_free(der, der_len);
    OPENSSL_free(blob);
    EVP_PKEY_free(pkey);
    return 0;
}
