/* verify_roots.c — the system's trusted roots as a stack of certificates, for ck_verify_chain,
 * which takes its anchors as a list rather than as OpenSSL's lazily searched directories. */
#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "crypto/verify.h"

#define HASH_NAME_DIGITS 8

/* Appends every certificate of the PEM file at path (missing or unreadable: none), up to the
 * bound. Returns -1 only when out of memory. */
static int load_file(const char *path, STACK_OF(X509) * roots)
{
    BIO *bio = BIO_new_file(path, "r");
    int rc = 0;
    /* each pass reads at least one line, but a file of damaged blocks still ends the loop */
    for (int block = 0; bio != NULL && block < 2 * CK_VERIFY_MAX_SYSTEM_ROOTS &&
                        sk_X509_num(roots) < CK_VERIFY_MAX_SYSTEM_ROOTS;
         block++) {
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert == NULL) {
            /* a damaged block is skipped; only the end of the file stops the loop */
            if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
                break;
            ERR_clear_error();
            continue;
        }
        if (sk_X509_push(roots, cert) == 0) {
            X509_free(cert);
            rc = -1;
            break;
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* OpenSSL's directory lookup reads only files named HASH.N (8 hex digits, a dot, digits). */
static bool is_hash_name(const char *name)
{
    for (int i = 0; i < HASH_NAME_DIGITS; i++)
        if (!isxdigit((unsigned char)name[i]))
            return false;
    if (name[HASH_NAME_DIGITS] != '.' || name[HASH_NAME_DIGITS + 1] == '\0')
        return false;
    for (const char *p = name + HASH_NAME_DIGITS + 1; *p != '\0'; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

static int load_dir(const char *dir, STACK_OF(X509) * roots)
{
    int rc = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *entry;
    while (rc == 0 && sk_X509_num(roots) < CK_VERIFY_MAX_SYSTEM_ROOTS &&
           (entry = readdir(d)) != NULL) {
        if (!is_hash_name(entry->d_name))
            continue;
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (n > 0 && (size_t)n < sizeof(path))
            rc = load_file(path, roots);
    }
    closedir(d);
    return rc;
}

/* The first entry of a colon-separated list, as OpenSSL reads $SSL_CERT_DIR. */
static void first_dir(const char *list, char *buf, size_t len)
{
    size_t n = strcspn(list, ":");
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), list);
}

int ck_verify_load_system_roots(STACK_OF(X509) * *out, ck_error *err)
{
    int rc = -1;
    STACK_OF(X509) *roots = sk_X509_new_null();
    if (roots == NULL)
        goto cleanup;
    const char *file = getenv(X509_get_default_cert_file_env());
    if (load_file(file != NULL ? file : X509_get_default_cert_file(), roots) != 0)
        goto cleanup;
    if (sk_X509_num(roots) == 0) {
        const char *dirs = getenv(X509_get_default_cert_dir_env());
        char dir[4096];
        first_dir(dirs != NULL ? dirs : X509_get_default_cert_dir(), dir, sizeof(dir));
        if (load_dir(dir, roots) != 0)
            goto cleanup;
    }
    *out = roots;
    roots = NULL;
    rc = 0;
cleanup:
    if (rc != 0)
        ck_error_set(err, 500, "out_of_memory", "out of memory loading the system's trusted roots");
    sk_X509_pop_free(roots, X509_free);
    return rc;
}
