/* gencerts — many leaf certificates fast, for the edge benchmark.
 *
 *   gencerts leaves CA_CERT CA_KEY COUNT OUT_DIR
 *       One P-256 key shared by every leaf (a key per leaf would make the set-up, not the
 *       servers, the slow part). Writes OUT_DIR/names.txt (hN.bench.example, one a line) and
 *       OUT_DIR/pem/NAME.pem holding the leaf and the shared key, which nginx (certificate and key
 *       from one file) and HAProxy (crt-list) both read.
 *   gencerts sign CA_CERT CA_KEY DIR
 *       For every DIR/NAME.csr writes DIR/NAME.crt: the CSR's subject and key, SAN DNS:CN.
 */
#include <dirent.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_COUNT 1000000

struct issuer {
    X509 *cert;
    EVP_PKEY *key;
};

static bool load_issuer(const char *cert_path, const char *key_path, struct issuer *ca)
{
    FILE *fc = fopen(cert_path, "r"), *fk = fopen(key_path, "r");
    if (fc != NULL)
        ca->cert = PEM_read_X509(fc, NULL, NULL, NULL);
    if (fk != NULL)
        ca->key = PEM_read_PrivateKey(fk, NULL, NULL, NULL);
    if (fc != NULL)
        fclose(fc);
    if (fk != NULL)
        fclose(fk);
    if (ca->cert == NULL || ca->key == NULL)
        fprintf(stderr, "gencerts: cannot read the CA from %s and %s\n", cert_path, key_path);
    return ca->cert != NULL && ca->key != NULL;
}

static bool add_ext(X509 *cert, X509 *issuer_cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer_cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    bool ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A leaf for NAME with PUBKEY, signed by CA; NULL on failure. */
static X509 *make_leaf(const struct issuer *ca, EVP_PKEY *pubkey, const char *name, long serial)
{
    char san[300];
    X509 *cert = X509_new();
    if (cert == NULL)
        return NULL;
    snprintf(san, sizeof san, "DNS:%s", name);
    X509_NAME *subject = X509_NAME_new();
    bool ok = subject != NULL && X509_set_version(cert, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(cert), serial) == 1 &&
              X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name,
                                         -1, -1, 0) == 1 &&
              X509_set_subject_name(cert, subject) == 1 &&
              X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(cert), 90L * 86400) != NULL &&
              X509_set_pubkey(cert, pubkey) == 1 &&
              add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE") &&
              add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature") &&
              add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth") &&
              add_ext(cert, ca->cert, NID_subject_alt_name, san) &&
              add_ext(cert, ca->cert, NID_subject_key_identifier, "hash") &&
              add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always") &&
              X509_sign(cert, ca->key, EVP_sha256()) > 0;
    X509_NAME_free(subject);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* No CA in the file: certkeep drops a root from the chain it serves, so the peers send the same
 * first flight (leaf only) as certkeep. */
static bool write_bundle(const char *path, X509 *leaf, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = PEM_write_X509(f, leaf) == 1 &&
              PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    return fclose(f) == 0 && ok;
}

static int make_leaves(const struct issuer *ca, long count, const char *out_dir)
{
    int status = 1;
    char path[4096], name[64];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    snprintf(path, sizeof path, "%s/names.txt", out_dir);
    FILE *names = fopen(path, "w");
    snprintf(path, sizeof path, "%s/pem", out_dir);
    if (key == NULL || names == NULL || (mkdir(path, 0700) != 0 && errno != EEXIST))
        goto cleanup;
    for (long i = 1; i <= count; i++) {
        snprintf(name, sizeof name, "h%ld.bench.example", i);
        X509 *leaf = make_leaf(ca, key, name, 0x100000 + i);
        snprintf(path, sizeof path, "%s/pem/%s.pem", out_dir, name);
        bool ok = leaf != NULL && write_bundle(path, leaf, key);
        X509_free(leaf);
        if (!ok)
            goto cleanup;
        fprintf(names, "%s\n", name);
    }
    status = 0;
cleanup:
    if (status != 0)
        fprintf(stderr, "gencerts: cannot write the leaves under %s\n", out_dir);
    if (names != NULL && fclose(names) != 0)
        status = 1;
    EVP_PKEY_free(key);
    return status;
}

/* Signs DIR/NAME.csr into DIR/NAME.crt; the name comes from the CSR's CN. */
static bool sign_one(const struct issuer *ca, const char *dir, const char *file, long serial)
{
    char path[4096], cn[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    X509_REQ *req = f != NULL ? PEM_read_X509_REQ(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    EVP_PKEY *pub = req != NULL ? X509_REQ_get0_pubkey(req) : NULL;
    bool ok = pub != NULL && X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
                                                       NID_commonName, cn, sizeof cn) > 0;
    X509 *leaf = ok ? make_leaf(ca, pub, cn, serial) : NULL;
    size_t len = strlen(path);
    memcpy(path + len - 4, ".crt", 5);
    f = leaf != NULL ? fopen(path, "w") : NULL;
    ok = f != NULL && PEM_write_X509(f, leaf) == 1;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    X509_free(leaf);
    X509_REQ_free(req);
    if (!ok)
        fprintf(stderr, "gencerts: cannot sign %s/%s\n", dir, file);
    return ok;
}

static int sign_csrs(const struct issuer *ca, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "gencerts: cannot open %s\n", dir);
        return 1;
    }
    int status = 0;
    long serial = 0x200000;
    struct dirent *e;
    while (status == 0 && serial < 0x200000 + MAX_COUNT && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".csr") == 0 &&
            !sign_one(ca, dir, e->d_name, serial++))
            status = 1;
    }
    closedir(d);
    return status;
}

int main(int argc, char **argv)
{
    struct issuer ca = {0};
    int status = 2;
    if (argc == 6 && strcmp(argv[1], "leaves") == 0) {
        long count = strtol(argv[4], NULL, 10);
        if (count > 0 && count <= MAX_COUNT && load_issuer(argv[2], argv[3], &ca))
            status = make_leaves(&ca, count, argv[5]);
    } else if (argc == 5 && strcmp(argv[1], "sign") == 0) {
        if (load_issuer(argv[2], argv[3], &ca))
            status = sign_csrs(&ca, argv[4]);
    } else {
        fprintf(stderr, "usage: gencerts leaves CA_CERT CA_KEY COUNT OUT_DIR\n"
                        "       gencerts sign CA_CERT CA_KEY DIR\n");
    }
    if (status == 1)
        ERR_print_errors_fp(stderr);
    X509_free(ca.cert);
    EVP_PKEY_free(ca.key);
    return status;
}
