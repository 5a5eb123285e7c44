/* jws.h — the signing side of the ACME client (RFC 7515, 7517, 7638, 8555 section 6.2).
 *
 * Only this file's code touches the account key's private half: it signs and it describes the
 * public key as a JWK. The network code (client.c) hands it bytes and gets a flattened JWS back.
 * Account keys are EC P-256 (ES256); RSA keys (RS256) are accepted too since some CAs' accounts
 * were made with them. */
#ifndef CK_ISSUERS_ACME_JWS_H
#define CK_ISSUERS_ACME_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/error.h"

/* Length of a base64url SHA-256 digest without padding, plus the NUL. */
#define CK_ACME_B64_SHA256_LEN 44

/* base64url without padding (RFC 7515 section 2). Caller frees; NULL on allocation failure. */
char *ck_acme_b64url(const uint8_t *data, size_t len);

/* Decodes base64url with or without padding. Caller frees *out. 400 "invalid_base64url" on bad
 * input. */
int ck_acme_b64url_decode(const char *text, uint8_t **out, size_t *out_len, ck_error *err);

/* The public JWK of key: {"crv","kty","x","y"} for P-256, {"e","kty","n"} for RSA. Caller frees
 * with json_decref. 400 "unsupported_account_key" for other key types. */
json_t *ck_acme_jwk(EVP_PKEY *key, ck_error *err);

/* RFC 7638 thumbprint: base64url(SHA-256(JWK with its required members in lexicographic order,
 * no whitespace)). */
int ck_acme_jwk_thumbprint(EVP_PKEY *key, char out[CK_ACME_B64_SHA256_LEN], ck_error *err);

/* Flattened JWS (RFC 8555 section 6.2) as compact JSON text:
 * {"protected": b64u({"alg","kid" or "jwk","nonce","url"}), "payload": b64u(payload),
 *  "signature": ...}. kid NULL puts the JWK in the header (newAccount). payload NULL means
 * POST-as-GET (empty payload). Caller frees. */
char *ck_acme_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                       const char *payload, ck_error *err);

/* External account binding (RFC 8555 section 7.3.4): an HS256 JWS over the account's public JWK
 * with protected {"alg":"HS256","kid":eab_kid,"url":url}; hmac_key_b64url is the CA's MAC key as
 * it hands it out (base64url). Caller frees with json_decref. */
json_t *ck_acme_eab_jws(EVP_PKEY *account_key, const char *eab_kid, const char *hmac_key_b64url,
                        const char *url, ck_error *err);

/* token "." thumbprint (RFC 8555 section 8.1). Caller frees. */
char *ck_acme_key_authorization(const char *token, const char *thumbprint);

/* The dns-01 TXT value: base64url(SHA-256(key_authorization)) (RFC 8555 section 8.4). */
int ck_acme_dns_txt_value(const char *key_authorization, char out[CK_ACME_B64_SHA256_LEN],
                          ck_error *err);

#endif
