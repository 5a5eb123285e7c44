#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/util.h"
#include "server/server.h"

#define TOKEN_PREFIX "ck_"

static int sha256(const char *text, size_t len, uint8_t hash[32], ck_error *err)
{
    unsigned int out_len = 0;
    if (EVP_Digest(text, len, hash, &out_len, EVP_sha256(), NULL) != 1 || out_len != 32)
        return ck_error_openssl(err, 500, "hash_failed", "could not hash the token");
    return 0;
}

int ck_auth_token_new(char out[68], uint8_t hash[32], ck_error *err)
{
    uint8_t raw[32];
    int rc = -1;
    if (ck_random_bytes(raw, sizeof(raw), err) != 0)
        goto cleanup;
    memcpy(out, TOKEN_PREFIX, 3);
    ck_hex_encode(raw, sizeof(raw), out + 3);
    rc = sha256(out, strlen(out), hash, err);
cleanup:
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

int ck_auth_caller(struct ck_store *st, struct evhttp_request *req, struct ck_token *out,
                   ck_error *err)
{
    const char *header = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return ck_error_set(err, 401, "missing_token",
                            "this request needs a token: send \"Authorization: Bearer <token>\"");
    const char *token = header + 7;
    token += strspn(token, " ");
    if (token[0] == '\0')
        return ck_error_set(err, 401, "missing_token", "the Authorization header has no token");
    uint8_t hash[32];
    if (sha256(token, strlen(token), hash, err) != 0)
        return -1;
    /* Looking the hash up is the comparison: no secret is ever compared byte by byte here. */
    if (ck_store_token_lookup(st, hash, out, err) != 0) {
        if (err != NULL && err->status == 404)
            ck_error_set(err, 401, "invalid_token", "this token is unknown or was revoked");
        return -1;
    }
    return 0;
}

bool ck_auth_is_operator_admin(const struct ck_token *t)
{
    return t->tenant_id == CK_OPERATOR_TENANT_ID && t->role == CK_ROLE_ADMIN;
}
