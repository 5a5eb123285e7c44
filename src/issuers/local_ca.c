#include "issuers/local_ca.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "core/names.h"
#include "crypto/keys.h"
#include "crypto/x509info.h"

#define CA_ORGANIZATION "certkeep local CA"
#define SERIAL_BYTES    16
#define AAD_MAX         160
/* Longest dNSName worth looking at; ck_hostname_check says why anything longer is refused. */
#define DNS_NAME_MAX 253

/* ---- shared pieces ---- */

static int ca_aad(const char *aad_id, char aad[AAD_MAX], ck_error *err)
{
    if (aad_id == NULL || aad_id[0] == '\0' || strchr(aad_id, '/') != NULL)
        return ck_error_set(err, 400, "invalid_ca_id",
                            "a local CA id must be \"shared\" or a tenant name, without '/'");
    int n = snprintf(aad, AAD_MAX, "certkeep/ca/%s/key", aad_id);
    if (n < 0 || n >= AAD_MAX)
        return ck_error_set(err, 400, "invalid_ca_id", "the local CA id \"%.40s...\" is too long",
                            aad_id);
    return 0;
}

/* 128 random bits (RFC 5280 allows 20 octets; the CA/Browser Forum asks for 64 random bits).
 * The top bit is cleared so the DER INTEGER is positive without a padding byte. */
static int set_random_serial(X509 *cert, ck_error *err)
{
    int rc = -1;
    uint8_t bytes[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    if (ck_random_bytes(bytes, sizeof(bytes), err) != 0)
        goto cleanup;
    bytes[0] &= 0x7f;
    bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    /* RFC 5280 forbids a zero serial; 2^-127 is unlikely, but cheap to rule out. */
    if (bn == NULL || (BN_is_zero(bn) && BN_set_word(bn, 1) != 1) ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL) {
        ck_error_openssl(err, 500, "ca_sign_failed", "cannot set a certificate serial number");
        goto cleanup;
    }
    rc = 0;
cleanup:
    BN_free(bn);
    return rc;
}

static int set_validity(X509 *cert, int64_t from, int64_t until, ck_error *err)
{
    if (ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)from) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)until) == NULL)
        return ck_error_openssl(err, 500, "ca_sign_failed",
                                "cannot set a certificate validity period");
    return 0;
}

/* value in openssl x509v3_config(5) syntax ("critical,CA:TRUE,pathlen:0"). */
static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value, ck_error *err)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    bool added = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!added)
        return ck_error_openssl(err, 500, "ca_sign_failed", "cannot add the %s extension",
                                OBJ_nid2ln(nid));
    return 0;
}

/* The caller frees the result with free(). */
static char *cert_to_pem(X509 *cert, ck_error *err)
{
    char *pem = NULL;
    char *data = NULL;
    long len = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1 ||
        (len = BIO_get_mem_data(bio, &data)) <= 0) {
        ck_error_openssl(err, 500, "ca_sign_failed", "cannot write a certificate as PEM");
        goto cleanup;
    }
    pem = malloc((size_t)len + 1);
    if (pem == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory writing a certificate");
        goto cleanup;
    }
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
cleanup:
    BIO_free(bio);
    return pem;
}

/* ---- the root ---- */

static int check_ca_name(const char *name, ck_error *err)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > CK_LOCAL_CA_NAME_MAX)
        return ck_error_set(err, 400, "invalid_ca_name",
                            "a local CA name must have 1 to %d characters", CK_LOCAL_CA_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return ck_error_set(err, 400, "invalid_ca_name",
                                "a local CA name may not hold control characters");
    return 0;
}

static int root_set_names(X509 *cert, const char *name, ck_error *err)
{
    X509_NAME *subject = X509_get_subject_name(cert);
    if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                   (const unsigned char *)CA_ORGANIZATION, -1, -1, 0) != 1 ||
        X509_set_issuer_name(cert, subject) != 1)
        return ck_error_openssl(err, 400, "invalid_ca_name",
                                "the local CA name \"%s\" is not valid UTF-8 text", name);
    return 0;
}

static X509 *root_build(EVP_PKEY *key, const char *name, int64_t now, ck_error *err)
{
    X509 *result = NULL;
    X509 *cert = X509_new();
    X509V3_CTX ctx;
    if (cert == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_pubkey(cert, key) != 1) {
        ck_error_openssl(err, 500, "ca_create_failed", "cannot build the local CA certificate");
        goto cleanup;
    }
    if (set_random_serial(cert, err) != 0 || root_set_names(cert, name, err) != 0 ||
        set_validity(cert, now - CK_LOCAL_CA_ROOT_BACKDATE,
                     now + (int64_t)CK_LOCAL_CA_ROOT_DAYS * 86400, err) != 0)
        goto cleanup;
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    if (add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err) != 0 ||
        add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", err) != 0 ||
        add_ext(cert, &ctx, NID_subject_key_identifier, "hash", err) != 0)
        goto cleanup;
    if (X509_sign(cert, key, EVP_sha256()) <= 0) {
        ck_error_openssl(err, 500, "ca_create_failed", "cannot sign the local CA certificate");
        goto cleanup;
    }
    result = cert;
    cert = NULL;
cleanup:
    X509_free(cert);
    return result;
}

int ck_local_ca_create(const ck_master_key *mk, const char *name, const char *aad_id, int64_t now,
                       struct ck_local_ca *out, ck_error *err)
{
    int rc = -1;
    char aad[AAD_MAX];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct ck_local_ca ca = {0};
    *out = ca;
    if (check_ca_name(name, err) != 0 || ca_aad(aad_id, aad, err) != 0)
        goto cleanup;
    key = ck_key_generate(CK_KEY_EC_P256, err);
    if (key == NULL)
        goto cleanup;
    cert = root_build(key, name, now, err);
    if (cert == NULL)
        goto cleanup;
    ca.cert_pem = cert_to_pem(cert, err);
    if (ca.cert_pem == NULL ||
        ck_seal_private_key(mk, aad, key, &ca.sealed_key, &ca.sealed_key_len, err) != 0)
        goto cleanup;
    *out = ca;
    ca = (struct ck_local_ca){0};
    rc = 0;
cleanup:
    ck_local_ca_free(&ca);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

void ck_local_ca_free(struct ck_local_ca *ca)
{
    if (ca == NULL)
        return;
    free(ca->cert_pem);
    OPENSSL_free(ca->sealed_key);
    *ca = (struct ck_local_ca){0};
}

/* ---- reading the CSR ---- */

/* A CSR is never encrypted; without this, OpenSSL would ask for a pass phrase on the terminal
 * when a PEM block claims to be. */
static int refuse_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

/* Parses the CSR, checks its self-signature and that its key is of an allowed type. */
static X509_REQ *csr_load_verified(const char *csr_pem, ck_error *err)
{
    X509_REQ *result = NULL;
    X509_REQ *req = NULL;
    BIO *bio = NULL;
    char key_name[32];
    int key_bits = 0;
    enum ck_key_type key_type;
    size_t len = csr_pem != NULL ? strnlen(csr_pem, CK_LOCAL_CA_CSR_MAX + 1) : 0;
    if (len == 0 || len > CK_LOCAL_CA_CSR_MAX) {
        ck_error_set(err, 400, "invalid_csr", "the CSR is empty or larger than %d bytes",
                     CK_LOCAL_CA_CSR_MAX);
        goto cleanup;
    }
    bio = BIO_new_mem_buf(csr_pem, (int)len);
    req = bio != NULL ? PEM_read_bio_X509_REQ(bio, NULL, refuse_password, NULL) : NULL;
    if (req == NULL) {
        ck_error_openssl(err, 400, "invalid_csr",
                         "the CSR is not a PEM certificate request "
                         "(\"-----BEGIN CERTIFICATE REQUEST-----\")");
        goto cleanup;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
        ck_error_openssl(err, 400, "csr_signature_invalid",
                         "the CSR's signature does not verify with its own key: it was changed "
                         "after it was signed; make a new CSR");
        goto cleanup;
    }
    if (ck_key_describe(pub, key_name, &key_bits, &key_type, err) != 0)
        goto cleanup;
    result = req;
    req = NULL;
cleanup:
    X509_REQ_free(req);
    BIO_free(bio);
    return result;
}

static int check_dns_name(const ASN1_IA5STRING *dns, ck_error *err)
{
    char name[DNS_NAME_MAX + 1];
    int len = ASN1_STRING_length(dns);
    const unsigned char *data = ASN1_STRING_get0_data(dns);
    if (len <= 0 || len > DNS_NAME_MAX || memchr(data, '\0', (size_t)len) != NULL)
        return ck_error_set(err, 400, "csr_names_invalid",
                            "the CSR holds a DNS name that is empty, longer than %d characters "
                            "or holds a NUL byte",
                            DNS_NAME_MAX);
    memcpy(name, data, (size_t)len);
    name[len] = '\0';
    ck_error why = {0};
    if (ck_hostname_check(name, &why) != 0)
        return ck_error_set(err, 400, "csr_names_invalid",
                            "the local CA will not sign this CSR: %s", why.message);
    return 0;
}

static int check_san(const GENERAL_NAME *gn, ck_error *err)
{
    switch (gn->type) {
    case GEN_DNS:
        return check_dns_name(gn->d.dNSName, err);
    case GEN_IPADD: {
        int len = ASN1_STRING_length(gn->d.iPAddress);
        if (len != 4 && len != 16)
            return ck_error_set(err, 400, "csr_names_invalid",
                                "the CSR holds an IP address of %d bytes (IPv4 has 4, IPv6 16)",
                                len);
        return 0;
    }
    default:
        return ck_error_set(err, 400, "csr_names_invalid",
                            "the CSR asks for a subjectAltName the local CA does not issue: only "
                            "DNS names and IP addresses are signed");
    }
}

/* The CSR's subjectAltName entries, each checked; a CSR without any is refused, since browsers
 * ignore the CN. */
static GENERAL_NAMES *csr_sans(X509_REQ *req, ck_error *err)
{
    GENERAL_NAMES *result = NULL;
    GENERAL_NAMES *sans = NULL;
    int critical = 0;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    if (exts != NULL)
        sans = X509V3_get_d2i(exts, NID_subject_alt_name, &critical, NULL);
    if (sans == NULL || sk_GENERAL_NAME_num(sans) == 0) {
        ck_error_set(err, 400, "csr_names_invalid",
                     critical == -2 ? "the CSR has more than one subjectAltName extension"
                                    : "the CSR names no host (no subjectAltName extension)");
        goto cleanup;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++)
        if (check_san(sk_GENERAL_NAME_value(sans, i), err) != 0)
            goto cleanup;
    result = sans;
    sans = NULL;
cleanup:
    GENERAL_NAMES_free(sans);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return result;
}

/* ---- the leaf ---- */

static bool subject_nid_kept(int nid)
{
    static const int kept[] = {
        NID_commonName,   NID_organizationName,    NID_organizationalUnitName,
        NID_localityName, NID_stateOrProvinceName, NID_countryName};
    for (size_t i = 0; i < CK_ARRAY_LEN(kept); i++)
        if (kept[i] == nid)
            return true;
    return false;
}

static int leaf_set_subject(X509 *leaf, const X509_NAME *csr_subject, ck_error *err)
{
    X509_NAME *subject = X509_NAME_new();
    bool ok = subject != NULL;
    for (int i = 0; ok && i < X509_NAME_entry_count(csr_subject); i++) {
        const X509_NAME_ENTRY *entry = X509_NAME_get_entry(csr_subject, i);
        if (subject_nid_kept(OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry))))
            ok = X509_NAME_add_entry(subject, entry, -1, 0) == 1;
    }
    ok = ok && X509_set_subject_name(leaf, subject) == 1;
    X509_NAME_free(subject);
    if (!ok)
        return ck_error_openssl(err, 500, "ca_sign_failed", "cannot copy the CSR's subject");
    return 0;
}

static int leaf_add_extensions(X509 *leaf, X509 *ca_cert, GENERAL_NAMES *sans, bool rsa_key,
                               ck_error *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca_cert, leaf, NULL, NULL, 0);
    /* RSA key exchange (TLS 1.2 and older) encrypts to the key; EC keys only sign. */
    const char *key_usage =
        rsa_key ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
    if (add_ext(leaf, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) != 0 ||
        add_ext(leaf, &ctx, NID_key_usage, key_usage, err) != 0 ||
        add_ext(leaf, &ctx, NID_ext_key_usage, "serverAuth", err) != 0 ||
        add_ext(leaf, &ctx, NID_subject_key_identifier, "hash", err) != 0 ||
        add_ext(leaf, &ctx, NID_authority_key_identifier, "keyid:always", err) != 0)
        return -1;
    /* RFC 5280 4.2.1.6: with an empty subject, the names are all there is. */
    int critical = X509_NAME_entry_count(X509_get_subject_name(leaf)) == 0;
    if (X509_add1_ext_i2d(leaf, NID_subject_alt_name, sans, critical, X509V3_ADD_DEFAULT) != 1)
        return ck_error_openssl(err, 500, "ca_sign_failed",
                                "cannot add the subjectAltName extension");
    return 0;
}

static X509 *leaf_build(X509_REQ *req, GENERAL_NAMES *sans, X509 *ca_cert, EVP_PKEY *ca_key,
                        int64_t lifetime_seconds, int64_t now, ck_error *err)
{
    X509 *result = NULL;
    X509 *leaf = X509_new();
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (leaf == NULL || X509_set_version(leaf, X509_VERSION_3) != 1 ||
        X509_set_pubkey(leaf, pub) != 1 ||
        X509_set_issuer_name(leaf, X509_get_subject_name(ca_cert)) != 1) {
        ck_error_openssl(err, 500, "ca_sign_failed", "cannot build the certificate");
        goto cleanup;
    }
    if (set_random_serial(leaf, err) != 0 ||
        leaf_set_subject(leaf, X509_REQ_get_subject_name(req), err) != 0 ||
        set_validity(leaf, now - CK_LOCAL_CA_LEAF_BACKDATE, now + lifetime_seconds, err) != 0 ||
        leaf_add_extensions(leaf, ca_cert, sans, EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA, err) !=
            0)
        goto cleanup;
    if (X509_sign(leaf, ca_key, EVP_sha256()) <= 0) {
        ck_error_openssl(err, 500, "ca_sign_failed", "cannot sign the certificate");
        goto cleanup;
    }
    result = leaf;
    leaf = NULL;
cleanup:
    X509_free(leaf);
    return result;
}

/* ---- signing ---- */

static X509 *ca_cert_load(const struct ck_local_ca *ca, ck_error *err)
{
    X509 *cert = NULL;
    if (ca != NULL && ca->cert_pem != NULL && ca->sealed_key != NULL)
        cert = ck_x509_from_pem(ca->cert_pem, strlen(ca->cert_pem), NULL);
    if (cert == NULL)
        ck_error_set(err, 500, "ca_invalid",
                     "the local CA's certificate or key is missing or unreadable");
    return cert;
}

static EVP_PKEY *ca_key_open(const ck_master_key *mk, const char *aad, const struct ck_local_ca *ca,
                             X509 *ca_cert, ck_error *err)
{
    EVP_PKEY *key = ck_unseal_private_key(mk, aad, ca->sealed_key, ca->sealed_key_len, err);
    if (key != NULL && X509_check_private_key(ca_cert, key) != 1) {
        ck_error_openssl(err, 500, "ca_invalid",
                         "the local CA's key does not match its certificate");
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

static int check_lifetime(X509 *ca_cert, int64_t lifetime_seconds, int64_t now, ck_error *err)
{
    if (lifetime_seconds < CK_LOCAL_CA_LIFETIME_MIN || lifetime_seconds > CK_LOCAL_CA_LIFETIME_MAX)
        return ck_error_set(err, 400, "invalid_lifetime",
                            "a lifetime of %lld seconds is not allowed: the local CA issues "
                            "certificates valid from %d second to %d days",
                            (long long)lifetime_seconds, CK_LOCAL_CA_LIFETIME_MIN,
                            CK_LOCAL_CA_LIFETIME_MAX / 86400);
    time_t until = (time_t)(now + lifetime_seconds);
    if (X509_cmp_time(X509_get0_notAfter(ca_cert), &until) != 1)
        return ck_error_set(err, 409, "ca_expires_first",
                            "the local CA expires before a certificate of this lifetime would: "
                            "make a new CA or ask for a shorter lifetime");
    return 0;
}

char *ck_local_ca_sign(const ck_master_key *mk, const char *aad_id, const struct ck_local_ca *ca,
                       const char *csr_pem, int64_t lifetime_seconds, int64_t now, ck_error *err)
{
    char *pem = NULL;
    char aad[AAD_MAX];
    X509_REQ *req = NULL;
    GENERAL_NAMES *sans = NULL;
    X509 *ca_cert = NULL;
    EVP_PKEY *ca_key = NULL;
    X509 *leaf = NULL;
    /* The requester's mistakes first, so they are told before any problem of the CA's own. */
    req = csr_load_verified(csr_pem, err);
    if (req == NULL || (sans = csr_sans(req, err)) == NULL)
        goto cleanup;
    if (ca_aad(aad_id, aad, err) != 0 || (ca_cert = ca_cert_load(ca, err)) == NULL ||
        check_lifetime(ca_cert, lifetime_seconds, now, err) != 0 ||
        (ca_key = ca_key_open(mk, aad, ca, ca_cert, err)) == NULL)
        goto cleanup;
    leaf = leaf_build(req, sans, ca_cert, ca_key, lifetime_seconds, now, err);
    if (leaf != NULL)
        pem = cert_to_pem(leaf, err);
cleanup:
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    X509_free(ca_cert);
    GENERAL_NAMES_free(sans);
    X509_REQ_free(req);
    return pem;
}
