/* leafparse.c — microseconds to read an edge leaf certificate: certkeep's leaf parser against
 * OpenSSL's d2i_X509, in one run, on the certificate of a PEM file (bench/edge/README.md).
 *
 *   leafparse CERT.pem [COUNT]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/provider.h>

#include "edge/leaf_parser.h"

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double per_cert_openssl(const unsigned char *der, long len, int count)
{
    double start = seconds();
    for (int i = 0; i < count; i++) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, len);
        if (x == NULL)
            exit(1);
        X509_free(x);
    }
    return (seconds() - start) / count * 1e6;
}

static double per_cert_certkeep(ck_leaf_parser *parser, const unsigned char *der, long len,
                                int count)
{
    double start = seconds();
    for (int i = 0; i < count; i++) {
        X509 *x = ck_leaf_parser_parse(parser, der, (size_t)len);
        if (x == NULL)
            exit(1);
        X509_free(x);
    }
    return (seconds() - start) / count * 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: leafparse CERT.pem [COUNT]\n");
        return 2;
    }
    int count = argc > 2 ? atoi(argv[2]) : 20000;
    FILE *f = fopen(argv[1], "r");
    X509 *cert = f == NULL ? NULL : PEM_read_X509(f, NULL, NULL, NULL);
    if (f != NULL)
        fclose(f);
    unsigned char *der = NULL;
    long len = cert == NULL ? -1 : i2d_X509(cert, &der);
    ck_error err = {0};
    ck_leaf_parser *parser = ck_leaf_parser_new(&err);
    if (len <= 0 || parser == NULL || count < 1) {
        fprintf(stderr, "leafparse: cannot read %s or set up the parser\n", argv[1]);
        return 1;
    }
    X509 *probe = ck_leaf_parser_parse(parser, der, (size_t)len);
    const char *provider = OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(X509_get0_pubkey(probe)));
    double best_openssl = 1e9, best_certkeep = 1e9;
    for (int round = 0; round < 3; round++) {
        double o = per_cert_openssl(der, len, count),
               c = per_cert_certkeep(parser, der, len, count);
        best_openssl = o < best_openssl ? o : best_openssl;
        best_certkeep = c < best_certkeep ? c : best_certkeep;
    }
    printf("d2i_X509 %.1f us, certkeep leaf parser %.1f us (public key from %s): %.1fx\n",
           best_openssl, best_certkeep, provider, best_openssl / best_certkeep);
    X509_free(probe);
    X509_free(cert);
    OPENSSL_free(der);
    ck_leaf_parser_free(parser);
    return 0;
}
