/* A tenant's own trusted roots, for certificates from private CAs. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "crypto/x509info.h"
#include "server/server.h"

/* More blocks than this in one paste is not one root: stop reading. */
#define ROOT_BLOCKS_MAX 64

static json_t *root_json(const struct ck_root *root)
{
    return json_pack("{s:I,s:s?,s:s?,s:o,s:o}", "id", (json_int_t)root->id, "subject",
                     root->subject, "sha256_fingerprint", root->sha256_fingerprint, "not_after",
                     ck_time_json(root->not_after), "created_at", ck_time_json(root->created_at));
}

/* The one certificate of pem; 400 when there is none or more than one. */
static X509 *single_certificate(const char *pem, ck_error *err)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *first = NULL, *next = NULL;
    int count = 0;
    while (in != NULL && count <= ROOT_BLOCKS_MAX &&
           (next = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (count++ == 0)
            first = next;
        else
            X509_free(next);
    }
    ERR_clear_error();
    BIO_free(in);
    if (count == 1)
        return first;
    X509_free(first);
    if (count == 0)
        ck_error_set(err, 400, "not_certificate",
                     "pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    else
        ck_error_set(err, 400, "too_many_certificates",
                     "pem holds %s%d certificates: add one root at a time",
                     count > ROOT_BLOCKS_MAX ? "over " : "",
                     count > ROOT_BLOCKS_MAX ? ROOT_BLOCKS_MAX : count);
    return NULL;
}

static char *cert_pem(X509 *cert)
{
    BIO *out = BIO_new(BIO_s_mem());
    char *data = NULL, *text = NULL;
    if (out != NULL && PEM_write_bio_X509(out, cert) == 1) {
        long len = BIO_get_mem_data(out, &data);
        text = strndup(data ? data : "", (size_t)len);
    }
    BIO_free(out);
    return text;
}

/* Checks that cert can anchor chains (a self-signed CA) and fills root from it. */
static int root_from(X509 *cert, struct ck_root *root, ck_error *err)
{
    struct ck_cert_info info = {0};
    int rc = -1;
    if (ck_cert_info_from_x509(cert, &info, err) != 0)
        goto cleanup;
    const char *subject = info.subject.text ? info.subject.text : "(empty subject)";
    if (!info.is_ca) {
        ck_error_set(err, 400, "not_ca",
                     "%.200s is not a CA certificate (its basic constraints do not say CA:TRUE): "
                     "add the private CA's root certificate, not a server certificate",
                     subject);
        goto cleanup;
    }
    if (!info.self_signed) {
        ck_error_set(err, 400, "not_self_signed",
                     "%.200s is not self-signed (issued by %.200s): add the root at the top of "
                     "the chain, not an intermediate",
                     subject, info.issuer.text ? info.issuer.text : "another CA");
        goto cleanup;
    }
    root->subject = ck_strdup(info.subject.text);
    root->sha256_fingerprint = ck_strdup(info.sha256_fingerprint);
    root->pem = cert_pem(cert);
    root->not_after = info.not_after;
    if (root->pem == NULL || root->sha256_fingerprint == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory reading the root");
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_cert_info_free(&info);
    return rc;
}

int ck_api_root_add(struct ck_request *r, ck_error *err)
{
    static const char *const keys[] = {"pem"};
    int rc = -1;
    json_t *body = NULL;
    X509 *cert = NULL;
    struct ck_root root = {0};
    const char *pem;
    if (ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        ck_json_string_field(body, "pem", true, &pem, err) != 0 ||
        (cert = single_certificate(pem, err)) == NULL || root_from(cert, &root, err) != 0)
        goto cleanup;
    root.tenant_id = r->caller.tenant_id;
    if (ck_store_root_add(r->daemon->store, r->caller.tenant_id, &root, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, root_json(&root));
    rc = 0;
cleanup:
    ck_root_free(&root);
    X509_free(cert);
    json_decref(body);
    return rc;
}

int ck_api_root_list(struct ck_request *r, ck_error *err)
{
    struct ck_root *roots = NULL;
    size_t n = 0;
    if (ck_store_root_list(r->daemon->store, r->caller.tenant_id, &roots, &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, root_json(&roots[i]));
    ck_root_array_free(roots, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "roots", items) : NULL);
    return 0;
}

int ck_api_root_delete(struct ck_request *r, ck_error *err)
{
    int64_t id;
    if (ck_http_param_id(r, 0, "root", &id, err) != 0 ||
        ck_store_root_delete(r->daemon->store, r->caller.tenant_id, id, err) != 0)
        return -1;
    ck_http_reply_empty(r, 204);
    return 0;
}
