/* sqlite_issuers.c — store.h's issue 5 part on SQLite: issuers, DNS providers, local CAs, the
 * ACME client's state on orders and http-01 tokens. Same rules as sqlite.c: constant SQL, user
 * data only as bound parameters, every change one transaction. */
#include "store/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "store/sqlite_internal.h"

/* ==== sealing inside the transaction ==== */

/* Asks seal for the secret of row `id` (its AAD names the id, which exists only now) and stores
 * what it returns with update_sql (?1 the blob, ?2 the id). A NULL seal, or a NULL result, means
 * there is nothing to seal. The store owns and frees the returned blob. */
static int seal_into(struct ck_store *st, const char *update_sql, int64_t id, ck_store_seal_fn seal,
                     void *seal_ctx, const char *what, ck_error *err)
{
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    int ret = -1;
    if (seal == NULL)
        return 0;
    if (seal(seal_ctx, id, what, &sealed, &sealed_len, err) != 0)
        goto cleanup;
    if (sealed != NULL &&
        ck_sql_exec_args(st, update_sql, ARGS(A_BLOB(sealed, sealed_len), A_INT(id)),
                         "storing a sealed secret", NULL, err) != 0)
        goto cleanup;
    ret = 0;
cleanup:
    free(sealed);
    return ret;
}

/* ==== issuers and DNS providers: named per tenant, refused deletion while in use ==== */

struct named_kind {
    const char *noun;        /* "issuer", "DNS provider" */
    const char *get_sql;     /* ?1 tenant, ?2 name */
    const char *list_sql;    /* ?1 tenant */
    const char *in_use_sql;  /* the name of one enrollment naming it; ?1 tenant, ?2 name */
    const char *in_use_code; /* the 409's code */
    const char *delete_sql;  /* ?1 tenant, ?2 name */
    row_reader read;
    row_free free_row;
    size_t size;
};

static int named_get(struct ck_store *st, const struct named_kind *k, int64_t tenant_id,
                     const char *name, void *out, ck_error *err)
{
    char what[64];
    snprintf(what, sizeof(what), "reading a %s", k->noun);
    int rc = ck_sql_query_one(st, k->get_sql, ARGS(A_INT(tenant_id), A_TEXT(name)), what, k->read,
                              out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no %s named %s", k->noun, name);
    return rc == 1 ? 0 : -1;
}

static int named_list(struct ck_store *st, const struct named_kind *k, int64_t tenant_id,
                      void **out, size_t *n, ck_error *err)
{
    char what[64];
    snprintf(what, sizeof(what), "listing %ss", k->noun);
    return ck_sql_query_all(st, k->list_sql, ARGS(A_INT(tenant_id)), what, k->read, k->free_row,
                            k->size, out, n, err);
}

struct named_ref {
    const struct named_kind *kind;
    int64_t tenant_id;
    const char *name;
};

static int named_remove(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct named_ref *r = ctx;
    const struct named_kind *k = r->kind;
    char *user = NULL;
    int64_t changes = 0;
    char what[64];
    int ret = -1;
    snprintf(what, sizeof(what), "deleting a %s", k->noun);
    int rc = ck_sql_query_one(st, k->in_use_sql, ARGS(A_INT(r->tenant_id), A_TEXT(r->name)), what,
                              ck_sql_read_text, &user, err);
    if (rc < 0)
        goto cleanup;
    if (rc == 1) {
        ck_error_set(err, 409, k->in_use_code,
                     "%s %s is used by enrollment %s; change or delete that enrollment first",
                     k->noun, r->name, user ? user : "(unnamed)");
        goto cleanup;
    }
    if (ck_sql_exec_args(st, k->delete_sql, ARGS(A_INT(r->tenant_id), A_TEXT(r->name)), what,
                         &changes, err) != 0)
        goto cleanup;
    if (changes == 0) {
        ck_error_set(err, 404, "not_found", "no %s named %s", k->noun, r->name);
        goto cleanup;
    }
    ret = 0;
cleanup:
    free(user);
    return ret;
}

static int named_delete(struct ck_store *st, const struct named_kind *k, int64_t tenant_id,
                        const char *name, ck_error *err)
{
    struct named_ref r = {.kind = k, .tenant_id = tenant_id, .name = name};
    return ck_sql_in_transaction(st, named_remove, &r, err);
}

/* A new issuer or DNS provider: its row, then its secret sealed for the row's id. */
struct named_create {
    const void *given; /* struct ck_issuer or struct ck_dns_provider */
    char *list_json;   /* contacts or check_servers */
    ck_store_seal_fn seal;
    void *seal_ctx;
    int64_t now;
    int64_t id;
};

/* ==== issuers ==== */

#define ISSUER_SELECT                                                                              \
    "SELECT id, tenant_id, name, type, directory_url, ca_bundle_pem, eab_kid, sealed_eab_hmac, "   \
    "contacts, account_url, sealed_account_key, created_at FROM issuers"

static int read_issuer(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_issuer *i = row;
    bool ok = true;
    i->id = sqlite3_column_int64(s, 0);
    i->tenant_id = sqlite3_column_int64(s, 1);
    i->name = ck_sql_col_text(s, 2, &ok);
    i->type = ck_sql_col_text(s, 3, &ok);
    i->directory_url = ck_sql_col_text(s, 4, &ok);
    i->ca_bundle_pem = ck_sql_col_text(s, 5, &ok);
    i->eab_kid = ck_sql_col_text(s, 6, &ok);
    i->sealed_eab_hmac = ck_sql_col_blob(s, 7, &i->sealed_eab_hmac_len, &ok);
    i->account_url = ck_sql_col_text(s, 9, &ok);
    i->sealed_account_key = ck_sql_col_blob(s, 10, &i->sealed_account_key_len, &ok);
    i->created_at = sqlite3_column_int64(s, 11);
    if (!ok || ck_sql_col_json_strv(s, 8, &i->contacts, err) != 0) {
        ck_issuer_free(i);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

static void free_issuer_row(void *row)
{
    ck_issuer_free(row);
}

static const struct named_kind issuer_kind = {
    .noun = "issuer",
    .get_sql = ISSUER_SELECT " WHERE tenant_id = ?1 AND name = ?2",
    .list_sql = ISSUER_SELECT " WHERE tenant_id = ?1 ORDER BY name",
    .in_use_sql = "SELECT name FROM enrollments WHERE tenant_id = ?1 AND issuer = ?2 "
                  "ORDER BY name LIMIT 1",
    .in_use_code = "issuer_in_use",
    .delete_sql = "DELETE FROM issuers WHERE tenant_id = ?1 AND name = ?2",
    .read = read_issuer,
    .free_row = free_issuer_row,
    .size = sizeof(struct ck_issuer),
};

static int issuer_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct named_create *c = ctx;
    const struct ck_issuer *i = c->given;
    int rc = ck_sql_exec_args(
        st,
        "INSERT INTO issuers (tenant_id, name, type, directory_url, ca_bundle_pem, eab_kid, "
        "contacts, account_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        ARGS(A_INT(i->tenant_id), A_TEXT(i->name), A_TEXT(i->type), A_TEXT(i->directory_url),
             A_TEXT(i->ca_bundle_pem), A_TEXT(i->eab_kid), A_TEXT(c->list_json),
             A_TEXT(i->account_url), A_INT(c->now)),
        "creating an issuer", NULL, err);
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "issuer_exists", "issuer %s already exists", i->name);
    if (rc != 0)
        return -1;
    c->id = sqlite3_last_insert_rowid(st->db);
    return seal_into(st, "UPDATE issuers SET sealed_eab_hmac = ?1 WHERE id = ?2", c->id, c->seal,
                     c->seal_ctx, "eab", err);
}

int ck_store_issuer_create(struct ck_store *st, struct ck_issuer *issuer, ck_store_seal_fn seal,
                           void *seal_ctx, ck_error *err)
{
    struct named_create c = {
        .given = issuer, .seal = seal, .seal_ctx = seal_ctx, .now = ck_clock_now()};
    int ret = -1;
    c.list_json = ck_sql_strv_to_json(&issuer->contacts);
    if (c.list_json == NULL) {
        ck_error_set(err, 400, "invalid_field", "the contacts of issuer %s must be UTF-8 text",
                     issuer->name ? issuer->name : "(unnamed)");
        goto cleanup;
    }
    if (ck_sql_in_transaction(st, issuer_insert, &c, err) != 0)
        goto cleanup;
    issuer->id = c.id;
    issuer->created_at = c.now;
    ret = 0;
cleanup:
    free(c.list_json);
    return ret;
}

int ck_store_issuer_get(struct ck_store *st, int64_t tenant_id, const char *name,
                        struct ck_issuer *out, ck_error *err)
{
    return named_get(st, &issuer_kind, tenant_id, name, out, err);
}

int ck_store_issuer_list(struct ck_store *st, int64_t tenant_id, struct ck_issuer **out, size_t *n,
                         ck_error *err)
{
    return named_list(st, &issuer_kind, tenant_id, (void **)out, n, err);
}

int ck_store_issuer_delete(struct ck_store *st, int64_t tenant_id, const char *name, ck_error *err)
{
    return named_delete(st, &issuer_kind, tenant_id, name, err);
}

int ck_store_issuer_set_account(struct ck_store *st, int64_t tenant_id, int64_t issuer_id,
                                const char *account_url, const uint8_t *sealed_key,
                                size_t sealed_key_len, ck_error *err)
{
    int64_t changes = 0, id;
    /* Conditional: of two jobs registering at once, the first one's account stays, so an ACME
     * order placed with it is never resumed with another account's key. */
    if (ck_sql_exec_args(st,
                         "UPDATE issuers SET account_url = ?1, sealed_account_key = ?2 "
                         "WHERE id = ?3 AND tenant_id = ?4 AND sealed_account_key IS NULL",
                         ARGS(A_TEXT(account_url), A_BLOB(sealed_key, sealed_key_len),
                              A_INT(issuer_id), A_INT(tenant_id)),
                         "recording an ACME account", &changes, err) != 0)
        return -1;
    if (changes == 1)
        return 0;
    int rc = ck_sql_query_one(st, "SELECT id FROM issuers WHERE id = ?1 AND tenant_id = ?2",
                              ARGS(A_INT(issuer_id), A_INT(tenant_id)), "recording an ACME account",
                              ck_sql_read_id, &id, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no issuer %lld", (long long)issuer_id);
    return ck_error_set(err, 409, "account_exists",
                        "issuer %lld already has an ACME account; it is kept",
                        (long long)issuer_id);
}

void ck_issuer_array_free(struct ck_issuer *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_issuer_free(&a[i]);
    free(a);
}

/* ==== DNS providers ==== */

#define DNS_SELECT                                                                                 \
    "SELECT id, tenant_id, name, mode, server, zone, tsig_name, tsig_alg, sealed_tsig_secret, "    \
    "hook_path, check_servers, ttl, created_at FROM dns_providers"

static int read_dns(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_dns_provider *d = row;
    bool ok = true;
    d->id = sqlite3_column_int64(s, 0);
    d->tenant_id = sqlite3_column_int64(s, 1);
    d->name = ck_sql_col_text(s, 2, &ok);
    d->mode = ck_sql_col_text(s, 3, &ok);
    d->server = ck_sql_col_text(s, 4, &ok);
    d->zone = ck_sql_col_text(s, 5, &ok);
    d->tsig_name = ck_sql_col_text(s, 6, &ok);
    d->tsig_alg = ck_sql_col_text(s, 7, &ok);
    d->sealed_tsig_secret = ck_sql_col_blob(s, 8, &d->sealed_tsig_secret_len, &ok);
    d->hook_path = ck_sql_col_text(s, 9, &ok);
    d->ttl = sqlite3_column_int(s, 11);
    d->created_at = sqlite3_column_int64(s, 12);
    if (!ok || ck_sql_col_json_strv(s, 10, &d->check_servers, err) != 0) {
        ck_dns_provider_free(d);
        return ok ? -1 : ck_sql_out_of_memory(err);
    }
    return 0;
}

static void free_dns_row(void *row)
{
    ck_dns_provider_free(row);
}

static const struct named_kind dns_kind = {
    .noun = "DNS provider",
    .get_sql = DNS_SELECT " WHERE tenant_id = ?1 AND name = ?2",
    .list_sql = DNS_SELECT " WHERE tenant_id = ?1 ORDER BY name",
    .in_use_sql = "SELECT name FROM enrollments WHERE tenant_id = ?1 AND dns = ?2 "
                  "ORDER BY name LIMIT 1",
    .in_use_code = "dns_in_use",
    .delete_sql = "DELETE FROM dns_providers WHERE tenant_id = ?1 AND name = ?2",
    .read = read_dns,
    .free_row = free_dns_row,
    .size = sizeof(struct ck_dns_provider),
};

static int dns_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct named_create *c = ctx;
    const struct ck_dns_provider *d = c->given;
    int rc = ck_sql_exec_args(
        st,
        "INSERT INTO dns_providers (tenant_id, name, mode, server, zone, tsig_name, tsig_alg, "
        "hook_path, check_servers, ttl, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        ARGS(A_INT(d->tenant_id), A_TEXT(d->name), A_TEXT(d->mode), A_TEXT(d->server),
             A_TEXT(d->zone), A_TEXT(d->tsig_name), A_TEXT(d->tsig_alg), A_TEXT(d->hook_path),
             A_TEXT(c->list_json), A_INT(d->ttl), A_INT(c->now)),
        "creating a DNS provider", NULL, err);
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "dns_exists", "DNS provider %s already exists", d->name);
    if (rc != 0)
        return -1;
    c->id = sqlite3_last_insert_rowid(st->db);
    return seal_into(st, "UPDATE dns_providers SET sealed_tsig_secret = ?1 WHERE id = ?2", c->id,
                     c->seal, c->seal_ctx, "tsig", err);
}

int ck_store_dns_create(struct ck_store *st, struct ck_dns_provider *dns, ck_store_seal_fn seal,
                        void *seal_ctx, ck_error *err)
{
    struct named_create c = {
        .given = dns, .seal = seal, .seal_ctx = seal_ctx, .now = ck_clock_now()};
    int ret = -1;
    c.list_json = ck_sql_strv_to_json(&dns->check_servers);
    if (c.list_json == NULL) {
        ck_error_set(err, 400, "invalid_field",
                     "the check servers of DNS provider %s must be UTF-8 text",
                     dns->name ? dns->name : "(unnamed)");
        goto cleanup;
    }
    if (ck_sql_in_transaction(st, dns_insert, &c, err) != 0)
        goto cleanup;
    dns->id = c.id;
    dns->created_at = c.now;
    ret = 0;
cleanup:
    free(c.list_json);
    return ret;
}

int ck_store_dns_get(struct ck_store *st, int64_t tenant_id, const char *name,
                     struct ck_dns_provider *out, ck_error *err)
{
    return named_get(st, &dns_kind, tenant_id, name, out, err);
}

int ck_store_dns_list(struct ck_store *st, int64_t tenant_id, struct ck_dns_provider **out,
                      size_t *n, ck_error *err)
{
    return named_list(st, &dns_kind, tenant_id, (void **)out, n, err);
}

int ck_store_dns_delete(struct ck_store *st, int64_t tenant_id, const char *name, ck_error *err)
{
    return named_delete(st, &dns_kind, tenant_id, name, err);
}

void ck_dns_provider_array_free(struct ck_dns_provider *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_dns_provider_free(&a[i]);
    free(a);
}

/* ==== local CAs ==== */

#define LOCAL_CA_SELECT "SELECT id, tenant_id, cert_pem, sealed_key, created_at FROM local_cas"

static int read_local_ca(sqlite3_stmt *s, void *row, ck_error *err)
{
    struct ck_local_ca_record *ca = row;
    bool ok = true;
    ca->id = sqlite3_column_int64(s, 0);
    ca->tenant_id = sqlite3_column_int64(s, 1);
    ca->cert_pem = ck_sql_col_text(s, 2, &ok);
    ca->sealed_key = ck_sql_col_blob(s, 3, &ca->sealed_key_len, &ok);
    ca->created_at = sqlite3_column_int64(s, 4);
    if (!ok) {
        ck_local_ca_record_free(ca);
        return ck_sql_out_of_memory(err);
    }
    return 0;
}

struct local_ca_create {
    int64_t tenant_id;
    const char *cert_pem;
    ck_store_seal_fn seal;
    void *seal_ctx;
    struct ck_local_ca_record row; /* read back once sealed */
};

/* local_cas.tenant_id has no foreign key (tenant 0, the shared CA, has no tenants row), so the
 * tenant is checked here. */
static int local_ca_tenant_check(struct ck_store *st, int64_t tenant_id, ck_error *err)
{
    int64_t found = 0;
    if (tenant_id == 0)
        return 0;
    int rc = ck_sql_query_one(st, "SELECT id FROM tenants WHERE id = ?1", ARGS(A_INT(tenant_id)),
                              "creating a local CA", ck_sql_read_id, &found, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no tenant %lld", (long long)tenant_id);
    return rc == 1 ? 0 : -1;
}

static int local_ca_insert(struct ck_store *st, void *ctx, ck_error *err)
{
    struct local_ca_create *c = ctx;
    if (local_ca_tenant_check(st, c->tenant_id, err) != 0)
        return -1;
    int rc = ck_sql_exec_args(st,
                              "INSERT INTO local_cas (tenant_id, cert_pem, created_at) "
                              "VALUES (?1, ?2, ?3)",
                              ARGS(A_INT(c->tenant_id), A_TEXT(c->cert_pem), A_INT(ck_clock_now())),
                              "creating a local CA", NULL, err);
    if (rc == CONFLICT && c->tenant_id == 0)
        return ck_error_set(err, 409, "ca_exists", "the shared local CA already exists");
    if (rc == CONFLICT)
        return ck_error_set(err, 409, "ca_exists", "the tenant already has a local CA");
    if (rc != 0)
        return -1;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    if (seal_into(st, "UPDATE local_cas SET sealed_key = ?1 WHERE id = ?2", id, c->seal,
                  c->seal_ctx, "key", err) != 0)
        return -1;
    rc = ck_sql_query_one(st, LOCAL_CA_SELECT " WHERE id = ?1", ARGS(A_INT(id)),
                          "creating a local CA", read_local_ca, &c->row, err);
    if (rc == 0)
        return ck_error_set(err, 500, "storage_failed", "the new local CA vanished");
    return rc == 1 ? 0 : -1;
}

int ck_store_local_ca_create(struct ck_store *st, int64_t tenant_id, const char *cert_pem,
                             ck_store_seal_fn seal, void *seal_ctx, struct ck_local_ca_record *out,
                             ck_error *err)
{
    struct local_ca_create c = {
        .tenant_id = tenant_id, .cert_pem = cert_pem, .seal = seal, .seal_ctx = seal_ctx};
    if (ck_sql_in_transaction(st, local_ca_insert, &c, err) != 0) {
        ck_local_ca_record_free(&c.row); /* read before a failed COMMIT */
        return -1;
    }
    *out = c.row;
    return 0;
}

int ck_store_local_ca_get(struct ck_store *st, int64_t tenant_id, struct ck_local_ca_record *out,
                          ck_error *err)
{
    /* The shared CA is tenant 0, so the tenant's own sorts first. */
    int rc =
        ck_sql_query_one(st,
                         LOCAL_CA_SELECT " WHERE tenant_id IN (?1, 0) "
                                         "ORDER BY tenant_id DESC LIMIT 1",
                         ARGS(A_INT(tenant_id)), "reading the local CA", read_local_ca, out, err);
    if (rc == 0)
        return ck_error_set(err, 404, "no_local_ca",
                            "there is no local CA for this tenant and no shared one; create one "
                            "first");
    return rc == 1 ? 0 : -1;
}

/* ==== ACME state and http-01 tokens ==== */

int ck_store_order_set_acme_state(struct ck_store *st, int64_t order_id, const char *state_json,
                                  ck_error *err)
{
    int64_t changes = 0;
    if (ck_sql_exec_args(st, "UPDATE orders SET acme_state_json = ?1 WHERE id = ?2",
                         ARGS(A_TEXT(state_json), A_INT(order_id)), "saving the ACME state",
                         &changes, err) != 0)
        return -1;
    if (changes == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)order_id);
    return 0;
}

struct http01_token {
    const char *token;
    const char *key_authorization;
    int64_t order_id;
    int64_t expires_at;
};

static int http01_upsert(struct ck_store *st, void *ctx, ck_error *err)
{
    const struct http01_token *t = ctx;
    int64_t found = 0;
    int rc = ck_sql_query_one(st, "SELECT id FROM orders WHERE id = ?1", ARGS(A_INT(t->order_id)),
                              "storing an http-01 token", ck_sql_read_id, &found, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no order %lld", (long long)t->order_id);
    if (rc < 0)
        return -1;
    /* ON CONFLICT ... DO UPDATE: SQLite 3.24+ and PostgreSQL 9.5+ spell it the same. */
    return ck_sql_exec_args(st,
                            "INSERT INTO http01_tokens (token, key_authorization, order_id, "
                            "expires_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (token) DO UPDATE "
                            "SET key_authorization = excluded.key_authorization, "
                            "order_id = excluded.order_id, expires_at = excluded.expires_at",
                            ARGS(A_TEXT(t->token), A_TEXT(t->key_authorization), A_INT(t->order_id),
                                 A_INT(t->expires_at)),
                            "storing an http-01 token", NULL, err);
}

int ck_store_http01_put(struct ck_store *st, const char *token, const char *key_authorization,
                        int64_t order_id, int64_t expires_at, ck_error *err)
{
    struct http01_token t = {.token = token,
                             .key_authorization = key_authorization,
                             .order_id = order_id,
                             .expires_at = expires_at};
    return ck_sql_in_transaction(st, http01_upsert, &t, err);
}

int ck_store_http01_get(struct ck_store *st, const char *token, int64_t now,
                        char **key_authorization, ck_error *err)
{
    char *found = NULL;
    int rc = ck_sql_query_one(st,
                              "SELECT key_authorization FROM http01_tokens "
                              "WHERE token = ?1 AND expires_at > ?2",
                              ARGS(A_TEXT(token), A_INT(now)), "reading an http-01 token",
                              ck_sql_read_text, &found, err);
    if (rc == 0)
        return ck_error_set(err, 404, "not_found", "no pending http-01 challenge for this token");
    if (rc < 0)
        return -1;
    *key_authorization = found;
    return 0;
}

int ck_store_http01_delete_order(struct ck_store *st, int64_t order_id, ck_error *err)
{
    return ck_sql_exec_args(st, "DELETE FROM http01_tokens WHERE order_id = ?1",
                            ARGS(A_INT(order_id)), "deleting http-01 tokens", NULL, err);
}
