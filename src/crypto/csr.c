#include "crypto/csr.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int add_subject_field(X509_NAME *name, const char *field, const char *value, ck_error *err)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    /* OpenSSL's string table enforces the X.520 size limits (CN at most 64, C exactly 2). */
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                   0) != 1)
        return ck_error_openssl(err, 400, "invalid_field",
                                "subject field %s \"%.80s\" is not valid (too long, too short or "
                                "with characters not allowed there)",
                                field, value);
    return 0;
}

static X509_NAME *build_subject(const struct ck_csr_request *req, ck_error *err)
{
    X509_NAME *name = X509_NAME_new();
    if (name == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory building a CSR subject");
        return NULL;
    }
    if (add_subject_field(name, "C", req->c, err) != 0 ||
        add_subject_field(name, "ST", req->st, err) != 0 ||
        add_subject_field(name, "L", req->l, err) != 0 ||
        add_subject_field(name, "O", req->o, err) != 0 ||
        add_subject_field(name, "OU", req->ou, err) != 0 ||
        add_subject_field(name, "CN", req->cn, err) != 0) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

/* A dNSName, or an iPAddress when san is an IPv4 or IPv6 literal. */
static GENERAL_NAME *san_general_name(const char *san, ck_error *err)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(san);
    ASN1_IA5STRING *dns = NULL;
    if (gen == NULL)
        goto fail;
    if (ip != NULL) {
        GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
        return gen;
    }
    ERR_clear_error(); /* a2i_IPADDRESS leaves an error for every name that is not an address */
    dns = ASN1_IA5STRING_new();
    if (dns == NULL || ASN1_STRING_set(dns, san, (int)strlen(san)) != 1)
        goto fail;
    GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
    return gen;
fail:
    ck_error_openssl(err, 500, "csr_failed", "cannot add the name %.80s to the CSR", san);
    GENERAL_NAME_free(gen);
    ASN1_OCTET_STRING_free(ip);
    ASN1_IA5STRING_free(dns);
    return NULL;
}

static int add_san_extension(X509_REQ *req, const ck_strv *sans, ck_error *err)
{
    int rc = -1;
    GENERAL_NAMES *names = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    if (sans == NULL || sans->len == 0)
        return 0;
    names = sk_GENERAL_NAME_new_null();
    if (names == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory building a CSR");
        goto cleanup;
    }
    for (size_t i = 0; i < sans->len; i++) {
        if (sans->items[i] == NULL || sans->items[i][0] == '\0') {
            ck_error_set(err, 400, "invalid_field", "a subject alternative name is empty");
            goto cleanup;
        }
        GENERAL_NAME *gen = san_general_name(sans->items[i], err);
        if (gen == NULL)
            goto cleanup;
        if (sk_GENERAL_NAME_push(names, gen) <= 0) {
            GENERAL_NAME_free(gen);
            ck_error_set(err, 500, "out_of_memory", "out of memory building a CSR");
            goto cleanup;
        }
    }
    if (X509V3_add1_i2d(&exts, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1 ||
        X509_REQ_add_extensions(req, exts) != 1) {
        ck_error_openssl(err, 500, "csr_failed", "cannot add the SAN extension to the CSR");
        goto cleanup;
    }
    rc = 0;
cleanup:
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc;
}

static char *req_to_pem(X509_REQ *req, ck_error *err)
{
    char *pem = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (bio == NULL || PEM_write_bio_X509_REQ(bio, req) != 1 ||
        (len = BIO_get_mem_data(bio, &data)) <= 0) {
        ck_error_openssl(err, 500, "csr_failed", "cannot write the CSR as PEM");
        goto cleanup;
    }
    pem = malloc((size_t)len + 1);
    if (pem == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory writing a CSR");
        goto cleanup;
    }
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
cleanup:
    BIO_free(bio);
    return pem;
}

char *ck_csr_create(EVP_PKEY *key, const struct ck_csr_request *request, ck_error *err)
{
    char *pem = NULL;
    X509_NAME *subject = NULL;
    X509_REQ *req = NULL;
    if (key == NULL || request == NULL) {
        ck_error_set(err, 500, "csr_failed", "a CSR needs a key and a request");
        return NULL;
    }
    if ((request->cn == NULL || request->cn[0] == '\0') &&
        (request->sans == NULL || request->sans->len == 0)) {
        ck_error_set(err, 400, "missing_field", "a CSR needs a common name or at least one SAN");
        return NULL;
    }
    req = X509_REQ_new();
    if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1) {
        ck_error_openssl(err, 500, "csr_failed", "cannot create a CSR");
        goto cleanup;
    }
    subject = build_subject(request, err);
    if (subject == NULL)
        goto cleanup;
    if (X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, key) != 1) {
        ck_error_openssl(err, 500, "csr_failed", "cannot fill in the CSR");
        goto cleanup;
    }
    if (add_san_extension(req, request->sans, err) != 0)
        goto cleanup;
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        ck_error_openssl(err, 500, "csr_failed", "cannot sign the CSR with the order's key");
        goto cleanup;
    }
    pem = req_to_pem(req, err);
cleanup:
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return pem;
}
