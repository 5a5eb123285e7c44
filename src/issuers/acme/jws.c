#include "issuers/acme/jws.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#define P256_COORD_LEN 32
#define MAX_ENCODE_LEN (4u * 1024 * 1024)

char *ck_acme_b64url(const uint8_t *data, size_t len)
{
    if (len > MAX_ENCODE_LEN)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return out;
}

static bool is_b64url_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

int ck_acme_b64url_decode(const char *text, uint8_t **out, size_t *out_len, ck_error *err)
{
    int rc = -1;
    char *std = NULL;
    uint8_t *bin = NULL;
    *out = NULL;
    *out_len = 0;
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == '=')
        len--;
    bool valid = len <= MAX_ENCODE_LEN && len % 4 != 1;
    for (size_t i = 0; valid && i < len; i++)
        valid = is_b64url_char(text[i]);
    if (!valid) {
        ck_error_set(err, 400, "invalid_base64url", "the value is not valid base64url");
        goto cleanup;
    }
    size_t padded = (len + 3) / 4 * 4;
    std = malloc(padded + 1);
    bin = malloc(padded / 4 * 3 + 1);
    if (std == NULL || bin == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < len; i++)
        std[i] = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
    memset(std + len, '=', padded - len);
    std[padded] = '\0';
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    int n = EVP_DecodeBlock(bin, (const unsigned char *)std, (int)padded);
    if (n < 0 || (size_t)n < padded - len) {
        ck_error_set(err, 400, "invalid_base64url", "the value is not valid base64url");
        goto cleanup;
    }
    *out = bin;
    *out_len = (size_t)n - (padded - len);
    bin = NULL;
    rc = 0;
cleanup:
    free(std);
    free(bin);
    return rc;
}

static char *bn_b64url(const BIGNUM *bn, int pad_to)
{
    int len = pad_to > 0 ? pad_to : BN_num_bytes(bn);
    uint8_t buf[1024];
    if (len <= 0 || len > (int)sizeof(buf) || BN_bn2binpad(bn, buf, len) != len)
        return NULL;
    return ck_acme_b64url(buf, (size_t)len);
}

/* Sets member `name` of jwk to the base64url of the key's big-number parameter. */
static int jwk_add_param(json_t *jwk, EVP_PKEY *key, const char *param, const char *name,
                         int pad_to)
{
    BIGNUM *bn = NULL;
    char *text = NULL;
    int rc = -1;
    if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
        goto cleanup;
    text = bn_b64url(bn, pad_to);
    if (text == NULL || json_object_set_new(jwk, name, json_string(text)) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    BN_free(bn);
    free(text);
    return rc;
}

static bool key_is_p256(EVP_PKEY *key)
{
    char group[64];
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return false;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1)
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

json_t *ck_acme_jwk(EVP_PKEY *key, ck_error *err)
{
    json_t *jwk = json_object();
    if (jwk == NULL)
        goto fail;
    if (key_is_p256(key)) {
        if (json_object_set_new(jwk, "kty", json_string("EC")) != 0 ||
            json_object_set_new(jwk, "crv", json_string("P-256")) != 0 ||
            jwk_add_param(jwk, key, OSSL_PKEY_PARAM_EC_PUB_X, "x", P256_COORD_LEN) != 0 ||
            jwk_add_param(jwk, key, OSSL_PKEY_PARAM_EC_PUB_Y, "y", P256_COORD_LEN) != 0)
            goto fail;
        return jwk;
    }
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        if (json_object_set_new(jwk, "kty", json_string("RSA")) != 0 ||
            jwk_add_param(jwk, key, OSSL_PKEY_PARAM_RSA_N, "n", 0) != 0 ||
            jwk_add_param(jwk, key, OSSL_PKEY_PARAM_RSA_E, "e", 0) != 0)
            goto fail;
        return jwk;
    }
    json_decref(jwk);
    ck_error_set(err, 400, "unsupported_account_key",
                 "the ACME account key must be an EC P-256 or RSA key");
    return NULL;
fail:
    json_decref(jwk);
    ck_error_openssl(err, 500, "jwk_failed", "could not describe the ACME account key as a JWK");
    return NULL;
}

static int sha256_b64url(const void *data, size_t len, char out[CK_ACME_B64_SHA256_LEN],
                         ck_error *err)
{
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        return ck_error_openssl(err, 500, "digest_failed", "SHA-256 failed");
    char *text = ck_acme_b64url(digest, digest_len);
    if (text == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    snprintf(out, CK_ACME_B64_SHA256_LEN, "%s", text);
    free(text);
    return 0;
}

int ck_acme_jwk_thumbprint(EVP_PKEY *key, char out[CK_ACME_B64_SHA256_LEN], ck_error *err)
{
    int rc = -1;
    char *canonical = NULL;
    json_t *jwk = ck_acme_jwk(key, err);
    if (jwk == NULL)
        goto cleanup;
    /* The JWK holds exactly the required members, so sorted compact JSON is RFC 7638's form. */
    canonical = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (canonical == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    rc = sha256_b64url(canonical, strlen(canonical), out, err);
cleanup:
    free(canonical);
    json_decref(jwk);
    return rc;
}

/* ECDSA signatures come from OpenSSL as DER; JWS wants r || s, each padded to 32 bytes. */
static int ecdsa_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[2 * P256_COORD_LEN])
{
    const uint8_t *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL)
        return -1;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, P256_COORD_LEN) == P256_COORD_LEN &&
             BN_bn2binpad(s, raw + P256_COORD_LEN, P256_COORD_LEN) == P256_COORD_LEN;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

/* Signs signing_input with SHA-256; returns the base64url JWS signature. */
static char *sign_b64url(EVP_PKEY *key, const char *signing_input, ck_error *err)
{
    char *result = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (const uint8_t *)signing_input, strlen(signing_input)) !=
            1)
        goto cleanup;
    sig = malloc(sig_len);
    if (sig == NULL || EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)signing_input,
                                      strlen(signing_input)) != 1)
        goto cleanup;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        uint8_t raw[2 * P256_COORD_LEN];
        if (ecdsa_der_to_raw(sig, sig_len, raw) != 0)
            goto cleanup;
        result = ck_acme_b64url(raw, sizeof(raw));
    } else {
        result = ck_acme_b64url(sig, sig_len);
    }
cleanup:
    if (result == NULL)
        ck_error_openssl(err, 500, "jws_sign_failed", "could not sign the ACME request");
    free(sig);
    EVP_MD_CTX_free(md);
    return result;
}

/* {"protected": b64u(header), "payload": b64u(payload), "signature": sig} where sig comes from
 * key (asymmetric) or from hmac_key (HS256). */
static json_t *jws_build(EVP_PKEY *key, const uint8_t *hmac_key, size_t hmac_len, json_t *header,
                         const char *payload, ck_error *err)
{
    json_t *jws = NULL;
    char *header_text = json_dumps(header, JSON_COMPACT);
    char *header_b64 = NULL, *payload_b64 = NULL, *input = NULL, *sig_b64 = NULL;
    if (header_text == NULL)
        goto oom;
    header_b64 = ck_acme_b64url((const uint8_t *)header_text, strlen(header_text));
    payload_b64 = ck_acme_b64url((const uint8_t *)payload, strlen(payload));
    if (header_b64 == NULL || payload_b64 == NULL)
        goto oom;
    size_t input_len = strlen(header_b64) + strlen(payload_b64) + 2;
    input = malloc(input_len);
    if (input == NULL)
        goto oom;
    snprintf(input, input_len, "%s.%s", header_b64, payload_b64);
    if (key != NULL) {
        sig_b64 = sign_b64url(key, input, err);
    } else {
        uint8_t mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key, hmac_len,
                      (const uint8_t *)input, strlen(input), mac, sizeof(mac), &mac_len) == NULL)
            ck_error_openssl(err, 500, "jws_sign_failed", "could not compute the EAB HMAC");
        else
            sig_b64 = ck_acme_b64url(mac, mac_len);
    }
    if (sig_b64 == NULL)
        goto cleanup;
    jws = json_pack("{s:s, s:s, s:s}", "protected", header_b64, "payload", payload_b64, "signature",
                    sig_b64);
    if (jws == NULL)
        goto oom;
    goto cleanup;
oom:
    ck_error_set(err, 500, "out_of_memory", "out of memory");
cleanup:
    free(header_text);
    free(header_b64);
    free(payload_b64);
    free(input);
    free(sig_b64);
    return jws;
}

char *ck_acme_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                       const char *payload, ck_error *err)
{
    char *text = NULL;
    json_t *jws = NULL;
    json_t *header = json_pack("{s:s, s:s, s:s}", "alg",
                               EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "RS256" : "ES256",
                               "nonce", nonce, "url", url);
    if (header == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    if (kid != NULL) {
        if (json_object_set_new(header, "kid", json_string(kid)) != 0) {
            ck_error_set(err, 500, "out_of_memory", "out of memory");
            goto cleanup;
        }
    } else {
        json_t *jwk = ck_acme_jwk(key, err);
        if (jwk == NULL || json_object_set_new(header, "jwk", jwk) != 0)
            goto cleanup;
    }
    jws = jws_build(key, NULL, 0, header, payload == NULL ? "" : payload, err);
    if (jws == NULL)
        goto cleanup;
    text = json_dumps(jws, JSON_COMPACT);
    if (text == NULL)
        ck_error_set(err, 500, "out_of_memory", "out of memory");
cleanup:
    json_decref(header);
    json_decref(jws);
    return text;
}

json_t *ck_acme_eab_jws(EVP_PKEY *account_key, const char *eab_kid, const char *hmac_key_b64url,
                        const char *url, ck_error *err)
{
    json_t *result = NULL, *header = NULL, *jwk = NULL;
    char *jwk_text = NULL;
    uint8_t *hmac_key = NULL;
    size_t hmac_len = 0;
    if (ck_acme_b64url_decode(hmac_key_b64url, &hmac_key, &hmac_len, err) != 0 || hmac_len == 0) {
        ck_error_set(err, 400, "invalid_eab_key",
                     "the external account binding MAC key is not base64url text");
        goto cleanup;
    }
    jwk = ck_acme_jwk(account_key, err);
    if (jwk == NULL)
        goto cleanup;
    jwk_text = json_dumps(jwk, JSON_COMPACT);
    header = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", url);
    if (jwk_text == NULL || header == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    result = jws_build(NULL, hmac_key, hmac_len, header, jwk_text, err);
cleanup:
    if (hmac_key != NULL)
        OPENSSL_cleanse(hmac_key, hmac_len);
    free(hmac_key);
    free(jwk_text);
    json_decref(jwk);
    json_decref(header);
    return result;
}

char *ck_acme_key_authorization(const char *token, const char *thumbprint)
{
    size_t len = strlen(token) + strlen(thumbprint) + 2;
    char *out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%s.%s", token, thumbprint);
    return out;
}

int ck_acme_dns_txt_value(const char *key_authorization, char out[CK_ACME_B64_SHA256_LEN],
                          ck_error *err)
{
    return sha256_b64url(key_authorization, strlen(key_authorization), out, err);
}
