/* csr.h — writing certificate signing requests. Parsing and inspection are in x509info.h. */
#ifndef CK_CRYPTO_CSR_H
#define CK_CRYPTO_CSR_H

#include <openssl/evp.h>

#include "common/error.h"
#include "common/util.h"

/* The subject and names of a CSR. NULL or empty subject fields are left out. */
struct ck_csr_request {
    const char *cn;
    const ck_strv *sans; /* DNS names (A-labels, "*.example.com" allowed); the CN among them */
    const char *o, *ou, *l, *st, *c;
};

/* Builds a PKCS#10 request signed with SHA-256 by key: subject C, ST, L, O, OU, CN (in that
 * order), and a subjectAltName extension listing every SAN as a dNSName (iPAddress for an IP
 * literal). Returns the PEM text ("-----BEGIN CERTIFICATE REQUEST-----..."), caller frees. */
char *ck_csr_create(EVP_PKEY *key, const struct ck_csr_request *req, ck_error *err);

#endif
