#include "crypto/keys.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#define ALLOWED_TYPES "rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384"

static const char *const key_type_names[CK_KEY_TYPE_COUNT] = {
    [CK_KEY_RSA_2048] = "rsa-2048", [CK_KEY_RSA_3072] = "rsa-3072", [CK_KEY_RSA_4096] = "rsa-4096",
    [CK_KEY_EC_P256] = "ec-p256",   [CK_KEY_EC_P384] = "ec-p384",
};

const char *ck_key_type_name(enum ck_key_type type)
{
    if ((unsigned)type >= CK_KEY_TYPE_COUNT)
        return "unknown";
    return key_type_names[type];
}

int ck_key_type_parse(const char *name, enum ck_key_type *out, ck_error *err)
{
    if (name == NULL || name[0] == '\0')
        return ck_error_set(err, 400, "invalid_key_type",
                            "a key type is required; allowed types: " ALLOWED_TYPES);
    for (int i = 0; i < CK_KEY_TYPE_COUNT; i++) {
        if (strcmp(name, key_type_names[i]) == 0) {
            *out = (enum ck_key_type)i;
            return 0;
        }
    }
    int bits = 0;
    char tail = '\0';
    if (sscanf(name, "rsa-%d%c", &bits, &tail) == 1 && bits > 0 && bits < 2048)
        return ck_error_set(err, 400, "invalid_key_type",
                            "key type %.40s is not allowed: RSA keys must be at least 2048 bits; "
                            "allowed types: " ALLOWED_TYPES,
                            name);
    return ck_error_set(err, 400, "invalid_key_type",
                        "unknown key type \"%.40s\"; allowed types: " ALLOWED_TYPES, name);
}

EVP_PKEY *ck_key_generate(enum ck_key_type type, ck_error *err)
{
    EVP_PKEY *key = NULL;
    switch (type) {
    case CK_KEY_RSA_2048:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case CK_KEY_RSA_3072:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case CK_KEY_RSA_4096:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case CK_KEY_EC_P256:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case CK_KEY_EC_P384:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    default:
        ck_error_set(err, 400, "invalid_key_type",
                     "unknown key type; allowed types: " ALLOWED_TYPES);
        return NULL;
    }
    /* EVP_PKEY_Q_keygen uses e=65537 for RSA and named curves with uncompressed points for EC,
     * which is what every CA accepts. */
    if (key == NULL)
        ck_error_openssl(err, 500, "keygen_failed", "cannot generate a %s key",
                         ck_key_type_name(type));
    return key;
}

/* The short curve name used in key type names ("p256"), or NULL when the curve is not known. */
static const char *curve_short_name(const char *group)
{
    static const struct {
        const char *group, *short_name;
    } curves[] = {
        {SN_X9_62_prime256v1, "p256"}, {"P-256", "p256"},
        {SN_secp384r1, "p384"},        {"P-384", "p384"},
        {SN_secp521r1, "p521"},        {"P-521", "p521"},
        {SN_secp256k1, "secp256k1"},
    };
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (strcmp(group, curves[i].group) == 0)
            return curves[i].short_name;
    return NULL;
}

static void describe_ec(EVP_PKEY *key, char name[32])
{
    char group[64] = "";
    size_t group_len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_len) != 1) {
        snprintf(name, 32, "ec-unknown");
        return;
    }
    const char *short_name = curve_short_name(group);
    if (short_name != NULL)
        snprintf(name, 32, "ec-%s", short_name);
    else
        snprintf(name, 32, "ec-%.28s", group);
}

int ck_key_describe(EVP_PKEY *key, char name[32], int *bits, enum ck_key_type *type, ck_error *err)
{
    snprintf(name, 32, "unknown");
    *bits = 0;
    if (key == NULL)
        return ck_error_set(err, 400, "invalid_key_type", "no key to describe");
    *bits = EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        snprintf(name, 32, "rsa-%d", *bits);
        break;
    case EVP_PKEY_RSA_PSS:
        snprintf(name, 32, "rsa-pss-%d", *bits);
        break;
    case EVP_PKEY_EC:
        describe_ec(key, name);
        break;
    case EVP_PKEY_ED25519:
        snprintf(name, 32, "ed25519");
        break;
    case EVP_PKEY_ED448:
        snprintf(name, 32, "ed448");
        break;
    case EVP_PKEY_DSA:
        snprintf(name, 32, "dsa-%d", *bits);
        break;
    default: {
        const char *tname = EVP_PKEY_get0_type_name(key);
        snprintf(name, 32, "%.31s", tname ? tname : "unknown");
        break;
    }
    }
    for (int i = 0; i < CK_KEY_TYPE_COUNT; i++) {
        if (strcmp(name, key_type_names[i]) == 0) {
            if (type != NULL)
                *type = (enum ck_key_type)i;
            return 0;
        }
    }
    if (strncmp(name, "rsa-", 4) == 0 && *bits < 2048)
        return ck_error_set(err, 400, "invalid_key_type",
                            "key type %s is not allowed: RSA keys must be at least 2048 bits; "
                            "allowed types: " ALLOWED_TYPES,
                            name);
    return ck_error_set(err, 400, "invalid_key_type",
                        "key type %s is not allowed; allowed types: " ALLOWED_TYPES, name);
}

bool ck_key_public_equal(EVP_PKEY *a, EVP_PKEY *b)
{
    if (a == NULL || b == NULL)
        return false;
    return EVP_PKEY_eq(a, b) == 1;
}
