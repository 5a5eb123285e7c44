/* client_internal.h — what order.c needs from client.c: the HTTPS exchange with nonces, the
 * directory and the account. Not for use outside src/issuers/acme/. */
#ifndef CK_ISSUERS_ACME_CLIENT_INTERNAL_H
#define CK_ISSUERS_ACME_CLIENT_INTERNAL_H

#include <curl/curl.h>

#include "issuers/acme/acme.h"
#include "issuers/acme/jws.h"

struct ck_acme_client {
    CURL *curl;
    char *directory_url;
    char *ca_file;
    char *ca_pem;
    char *user_agent;
    char *eab_kid;
    char *eab_hmac_key;
    EVP_PKEY *account_key; /* borrowed */
    ck_strv contacts;
    bool terms_agreed;
    long timeout_seconds;
    json_t *directory;
    char *nonce;
    char *account_url;
    char thumbprint[CK_ACME_B64_SHA256_LEN];
    char ordering_id[33];       /* the ORDERING step this client entered itself */
    unsigned bad_nonce_answers; /* badNonce answers seen, for tests and logs */
};

struct ck_acme_response {
    long status;
    char *body; /* NUL-terminated */
    size_t body_len;
    char *location;
    char *content_type;
    int64_t retry_after_s; /* -1: no Retry-After header */
};

void ck_acme_response_free(struct ck_acme_response *r);

/* Parses the body as JSON; 502 "acme_bad_response" when it is not an object. */
json_t *ck_acme_response_json(const struct ck_acme_response *r, ck_error *err);

/* Fills out from a failed response: its problem document, or one made from the status. */
void ck_acme_response_problem(const struct ck_acme_response *r, struct ck_acme_problem *out);

/* Fetches the directory once. */
int ck_acme_directory(struct ck_acme_client *c, ck_error *err);
/* A resource URL from the directory ("newOrder"), NULL when missing. */
const char *ck_acme_resource(const struct ck_acme_client *c, const char *name);

/* Unsigned GET (the directory, renewalInfo): 0 once the CA answered (any status), -1 with a
 * 502/504 "acme_unreachable" error when it could not be reached. */
int ck_acme_get(struct ck_acme_client *c, const char *url, struct ck_acme_response *resp,
                ck_error *err);

/* Signed POST (kid = c->account_url, or the JWK when use_jwk), retrying badNonce. payload NULL
 * is POST-as-GET. accept may be NULL. Returns 0 once the CA answered (any status) and -1 with a
 * 502/504 "acme_unreachable" error when it could not be reached. */
int ck_acme_post(struct ck_acme_client *c, const char *url, const char *payload, bool use_jwk,
                 const char *accept, struct ck_acme_response *resp, ck_error *err);

/* Sets c->account_url: onlyReturnExisting first, then a new account. When the CA refuses,
 * problem holds its document (with its HTTP status). */
int ck_acme_account_ensure(struct ck_acme_client *c, struct ck_acme_problem *problem,
                           ck_error *err);

#endif
