/* Local CAs: `POST /v1/ca` makes the tenant's (or the shared) root, `GET /v1/ca/root` serves the
 * certificate for trust stores. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "issuers/local_ca.h"
#include "server/api_issuers.h"

/* ck_local_ca_create seals the key before the row (and so its id) exists: it is sealed under a
 * provisional AAD first and moved to the row's own AAD inside the store's transaction. */
#define CA_PROVISIONAL_AAD_ID "new"

struct ca_seal {
    const ck_master_key *mk;
    const struct ck_local_ca *ca;
};

static int ca_seal_key(void *ctx, int64_t id, const char *what, uint8_t **sealed,
                       size_t *sealed_len, ck_error *err)
{
    const struct ca_seal *s = ctx;
    char old_aad[64], new_aad[64];
    *sealed = NULL;
    if (strcmp(what, "key") != 0)
        return 0;
    snprintf(old_aad, sizeof(old_aad), "certkeep/ca/%s/key", CA_PROVISIONAL_AAD_ID);
    snprintf(new_aad, sizeof(new_aad), "certkeep/ca/%lld/key", (long long)id);
    EVP_PKEY *key =
        ck_unseal_private_key(s->mk, old_aad, s->ca->sealed_key, s->ca->sealed_key_len, err);
    if (key == NULL)
        return -1;
    int rc = ck_seal_private_key(s->mk, new_aad, key, sealed, sealed_len, err);
    EVP_PKEY_free(key);
    return rc;
}

static json_t *ca_json(const struct ck_local_ca_record *ca)
{
    return json_pack("{s:I,s:b,s:s,s:o}", "id", (json_int_t)ca->id, "shared", ca->tenant_id == 0,
                     "certificate", ca->cert_pem, "created_at", ck_time_json(ca->created_at));
}

static int read_shared(struct ck_request *r, bool *shared, ck_error *err)
{
    static const char *const keys[] = {"shared"};
    json_t *body = NULL;
    int rc = -1;
    if (ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0)
        goto cleanup;
    const json_t *v = json_object_get(body, "shared");
    if (v != NULL && !json_is_boolean(v)) {
        ck_error_set(err, 400, "invalid_field", "shared must be true or false");
        goto cleanup;
    }
    *shared = json_is_true(v);
    if (*shared && !ck_auth_is_operator_admin(&r->caller)) {
        ck_error_set(err, 403, "forbidden",
                     "the shared CA serves every tenant: only an admin of tenant default may "
                     "create it");
        goto cleanup;
    }
    rc = 0;
cleanup:
    json_decref(body);
    return rc;
}

int ck_api_ca_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    bool shared = false;
    char name[CK_LOCAL_CA_NAME_MAX + 1];
    struct ck_local_ca ca = {0};
    struct ck_local_ca_record rec = {0};
    if (read_shared(r, &shared, err) != 0)
        goto cleanup;
    snprintf(name, sizeof(name), "certkeep %.40s CA",
             shared ? "shared" : (r->caller.tenant_name ? r->caller.tenant_name : "tenant"));
    if (ck_local_ca_create(&r->daemon->master_key, name, CA_PROVISIONAL_AAD_ID, ck_clock_now(), &ca,
                           err) != 0)
        goto cleanup;
    struct ca_seal seal = {.mk = &r->daemon->master_key, .ca = &ca};
    if (ck_store_local_ca_create(r->daemon->store, shared ? 0 : r->caller.tenant_id, ca.cert_pem,
                                 ca_seal_key, &seal, &rec, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, ca_json(&rec));
    rc = 0;
cleanup:
    ck_local_ca_record_free(&rec);
    ck_local_ca_free(&ca);
    return rc;
}

int ck_api_ca_root(struct ck_request *r, ck_error *err)
{
    struct ck_local_ca_record rec = {0};
    if (ck_store_local_ca_get(r->daemon->store, r->caller.tenant_id, &rec, err) != 0)
        return -1;
    ck_http_reply_bytes(r, 200, "application/x-pem-file", rec.cert_pem, strlen(rec.cert_pem));
    ck_local_ca_record_free(&rec);
    return 0;
}
