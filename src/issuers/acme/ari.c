/* ari.c — ACME Renewal Information (RFC 9773): the certID of a certificate, the renewalInfo
 * request and its answer. See acme.h. */
#include "issuers/acme/client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "common/log.h"

#define MAX_CERT_PEM (64 * 1024)

/* The serial number's DER value bytes: the INTEGER's encoding without its tag and length, so a
 * serial whose first byte has the high bit set keeps its leading zero (RFC 9773 section 4.1). */
static int serial_value_bytes(const ASN1_INTEGER *serial, uint8_t **out, size_t *len, ck_error *err)
{
    unsigned char *der = NULL;
    int der_len = i2d_ASN1_INTEGER(serial, &der);
    const unsigned char *p = der;
    long value_len = 0;
    int tag = 0, cls = 0;
    if (der_len <= 0)
        return ck_error_set(err, 400, "invalid_certificate",
                            "the certificate's serial number "
                            "cannot be encoded");
    int rc = ASN1_get_object(&p, &value_len, &tag, &cls, der_len);
    if ((rc & 0x80) != 0 || tag != V_ASN1_INTEGER || value_len <= 0 ||
        p + value_len != der + der_len) {
        OPENSSL_free(der);
        return ck_error_set(err, 400, "invalid_certificate",
                            "the certificate's serial number is not a DER INTEGER");
    }
    *out = malloc((size_t)value_len);
    if (*out != NULL)
        memcpy(*out, p, (size_t)value_len);
    *len = (size_t)value_len;
    OPENSSL_free(der);
    return *out != NULL ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
}

static char *join_cert_id(const uint8_t *key_id, size_t key_id_len, const uint8_t *serial,
                          size_t serial_len)
{
    char *left = ck_acme_b64url(key_id, key_id_len);
    char *right = ck_acme_b64url(serial, serial_len);
    char *id = NULL;
    if (left != NULL && right != NULL) {
        size_t n = strlen(left) + 1 + strlen(right) + 1;
        if ((id = malloc(n)) != NULL)
            snprintf(id, n, "%s.%s", left, right);
    }
    free(left);
    free(right);
    return id;
}

int ck_acme_ari_cert_id(const char *cert_pem, char **out, ck_error *err)
{
    X509 *cert = NULL;
    AUTHORITY_KEYID *akid = NULL;
    uint8_t *serial = NULL;
    size_t serial_len = 0;
    int rc = -1;
    size_t pem_len = cert_pem != NULL ? strnlen(cert_pem, MAX_CERT_PEM + 1) : 0;
    BIO *bio =
        pem_len > 0 && pem_len <= MAX_CERT_PEM ? BIO_new_mem_buf(cert_pem, (int)pem_len) : NULL;
    *out = NULL;
    if (bio == NULL || (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
        ck_error_set(err, 400, "invalid_certificate", "no PEM certificate to compute a certID for");
        goto cleanup;
    }
    akid = X509_get_ext_d2i(cert, NID_authority_key_identifier, NULL, NULL);
    if (akid == NULL || akid->keyid == NULL || ASN1_STRING_length(akid->keyid) <= 0) {
        ck_error_set(err, 400, "ari_no_key_identifier",
                     "the certificate has no Authority Key Identifier: ACME Renewal Information "
                     "cannot name it");
        goto cleanup;
    }
    if (serial_value_bytes(X509_get0_serialNumber(cert), &serial, &serial_len, err) != 0)
        goto cleanup;
    *out = join_cert_id(ASN1_STRING_get0_data(akid->keyid), (size_t)ASN1_STRING_length(akid->keyid),
                        serial, serial_len);
    rc = *out != NULL ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
cleanup:
    free(serial);
    AUTHORITY_KEYID_free(akid);
    X509_free(cert);
    BIO_free(bio);
    return rc;
}

void ck_acme_renewal_info_free(struct ck_acme_renewal_info *ri)
{
    free(ri->explanation_url);
    ri->explanation_url = NULL;
    ri->window_start = ri->window_end = 0;
}

int ck_acme_renewal_info_parse(const char *body, size_t len, struct ck_acme_renewal_info *out,
                               ck_error *err)
{
    json_error_t jerr;
    json_t *doc = body != NULL ? json_loadb(body, len, 0, &jerr) : NULL;
    const json_t *window = json_object_get(doc, "suggestedWindow");
    const char *start = json_string_value(json_object_get(window, "start"));
    const char *end = json_string_value(json_object_get(window, "end"));
    const char *explanation = json_string_value(json_object_get(doc, "explanationURL"));
    int64_t from = 0, to = 0;
    int rc = -1;
    if (!json_is_object(doc) || start == NULL || end == NULL) {
        ck_error_set(err, 502, "acme_bad_renewal_info",
                     "the CA's renewal information has no suggestedWindow with start and end");
    } else if (ck_time_parse(start, &from) != 0 || ck_time_parse(end, &to) != 0) {
        ck_error_set(err, 502, "acme_bad_renewal_info",
                     "the CA's suggested window has a time that is not RFC 3339: %.40s - %.40s",
                     start, end);
    } else if (to <= from) {
        ck_error_set(err, 502, "acme_bad_renewal_info",
                     "the CA's suggested window ends (%s) before it starts (%s)", end, start);
    } else {
        out->window_start = from;
        out->window_end = to;
        free(out->explanation_url);
        out->explanation_url = ck_strdup(explanation);
        rc = explanation != NULL && out->explanation_url == NULL
                 ? ck_error_set(err, 500, "out_of_memory", "out of memory")
                 : 0;
    }
    json_decref(doc);
    return rc;
}

int64_t ck_acme_ari_next_check(int64_t now, int64_t retry_after_s)
{
    int64_t wait = retry_after_s;
    if (wait < CK_ACME_ARI_MIN_INTERVAL)
        wait = CK_ACME_ARI_MIN_INTERVAL;
    if (wait > CK_ACME_ARI_MAX_WAIT)
        wait = CK_ACME_ARI_MAX_WAIT;
    return now + wait;
}

int ck_acme_ari_offered(struct ck_acme_client *c, ck_error *err)
{
    if (ck_acme_directory(c, err) != 0)
        return -1;
    return ck_acme_resource(c, "renewalInfo") != NULL ? 1 : 0;
}

int ck_acme_renewal_info(struct ck_acme_client *c, const char *cert_id,
                         struct ck_acme_renewal_info *out, ck_error *err)
{
    struct ck_acme_response resp = {.retry_after_s = -1};
    char *url = NULL;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    if (ck_acme_directory(c, err) != 0)
        return -1;
    const char *base = ck_acme_resource(c, "renewalInfo");
    if (base == NULL)
        return ck_error_set(err, 404, "acme_no_renewal_info",
                            "the ACME directory %s offers no renewalInfo", c->directory_url);
    size_t n = strlen(base) + 1 + strlen(cert_id) + 1;
    if ((url = malloc(n)) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    /* RFC 9773 section 4.1: the certID is a path segment appended to the renewalInfo URL. */
    snprintf(url, n, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", cert_id);
    if (ck_acme_get(c, url, &resp, err) != 0)
        goto cleanup;
    out->retry_after_s = resp.retry_after_s;
    if (resp.status != 200) {
        bool client_error = resp.status >= 400 && resp.status < 500;
        ck_error_set(err, client_error ? (int)resp.status : 502, "acme_renewal_info_refused",
                     "the CA answered HTTP %ld for the renewal information of %s", resp.status,
                     cert_id);
        goto cleanup;
    }
    rc = ck_acme_renewal_info_parse(resp.body, resp.body_len, out, err);
cleanup:
    if (rc != 0) {
        int64_t retry = out->retry_after_s;
        ck_acme_renewal_info_free(out);
        out->retry_after_s = retry;
    }
    ck_acme_response_free(&resp);
    free(url);
    return rc;
}
