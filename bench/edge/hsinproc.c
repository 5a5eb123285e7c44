/* hsinproc.c — the server's CPU for one full TLS 1.3 handshake, in-process, with OpenSSL alone
 * and with the edge's provider (src/edge/kex_provider.c: X25519 by libsodium, the TLS 1.3 key
 * schedule by Nettle), side by side.
 *
 * A client makes one ClientHello (X25519 key share, SNI); each measured handshake is a new
 * server SSL that reads it from a memory BIO and writes its whole first flight (ServerHello to
 * Finished: key share, certificate, ECDSA P-256 signature), as the edge does for hsload. No
 * sockets and no kernel: only what OpenSSL and the provider cost. Both server contexts are set
 * up like the edge's (TLS_AES_128_GCM_SHA256 first, server order, no tickets) with the same
 * certificate. Rounds alternate; the best of each is kept, since other work on the machine
 * only ever adds time.
 *
 *   make && cc -O2 -Isrc -o build/hsinproc bench/edge/hsinproc.c build/libcertkeep.a \
 *       $(pkg-config --libs openssl libsodium nettle) -ljemalloc
 *   taskset -c 0 build/hsinproc [HANDSHAKES_PER_ROUND] [ROUNDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "edge/kex_provider.h"

struct fixture {
    X509 *cert;
    EVP_PKEY *key;
    unsigned char hello[4096];
    int hello_len;
};

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int make_certificate(struct fixture *f)
{
    f->key = EVP_EC_gen("P-256");
    f->cert = X509_new();
    if (f->key == NULL || f->cert == NULL)
        return -1;
    X509_set_version(f->cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(f->cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(f->cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(f->cert), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(f->cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"h.bench.example", -1, -1, 0);
    X509_set_issuer_name(f->cert, X509_get_subject_name(f->cert));
    X509_set_pubkey(f->cert, f->key);
    return X509_sign(f->cert, f->key, EVP_sha256()) > 0 ? 0 : -1;
}

/* The ClientHello of an ordinary OpenSSL client. */
static int record_hello(struct fixture *f)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *client = ctx == NULL ? NULL : SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (client == NULL || in == NULL || out == NULL)
        return -1;
    SSL_set_bio(client, in, out);
    SSL_set_tlsext_host_name(client, "h.bench.example");
    SSL_set_connect_state(client);
    SSL_do_handshake(client);
    f->hello_len = BIO_read(out, f->hello, sizeof(f->hello));
    SSL_free(client);
    SSL_CTX_free(ctx);
    return f->hello_len > 0 ? 0 : -1;
}

static SSL_CTX *server_ctx(const struct fixture *f, OSSL_LIB_CTX *libctx, const char *propq)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, propq, TLS_server_method());
    if (ctx == NULL ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256") != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
        SSL_CTX_use_certificate(ctx, f->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, f->key) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0);
    return ctx;
}

/* Mean server CPU per handshake in µs, or -1 when a handshake did not write its flight. */
static double measure(const struct fixture *f, SSL_CTX *ctx, int handshakes)
{
    double start = cpu_seconds();
    for (int i = 0; i < handshakes; i++) {
        SSL *server = SSL_new(ctx);
        BIO *in = BIO_new_mem_buf(f->hello, f->hello_len), *out = BIO_new(BIO_s_mem());
        if (server == NULL || in == NULL || out == NULL)
            return -1;
        BIO_set_mem_eof_return(in, -1); /* "no more yet", as a socket would say */
        SSL_set_bio(server, in, out);
        SSL_set_accept_state(server);
        int rc = SSL_do_handshake(server);
        /* the flight is out and the server waits for the client's Finished */
        bool flight_out = rc == -1 && SSL_get_error(server, rc) == SSL_ERROR_WANT_READ &&
                          BIO_pending(out) > 500;
        SSL_free(server);
        if (!flight_out) {
            ERR_print_errors_fp(stderr);
            return -1;
        }
    }
    return (cpu_seconds() - start) / handshakes * 1e6;
}

int main(int argc, char **argv)
{
    int handshakes = argc > 1 ? atoi(argv[1]) : 3000, rounds = argc > 2 ? atoi(argv[2]) : 6;
    struct fixture f = {0};
    ck_edge_kex *kex = ck_edge_kex_new(NULL);
    if (handshakes <= 0 || rounds <= 0 || kex == NULL || make_certificate(&f) != 0 ||
        record_hello(&f) != 0) {
        fprintf(stderr, "hsinproc: setup failed\n");
        return 1;
    }
    SSL_CTX *openssl = server_ctx(&f, NULL, NULL);
    SSL_CTX *edge = server_ctx(&f, ck_edge_kex_libctx(kex), ck_edge_kex_propq());
    double best_openssl = 1e9, best_edge = 1e9;
    int rc = openssl == NULL || edge == NULL || measure(&f, openssl, 200) < 0 ||
             measure(&f, edge, 200) < 0;
    for (int r = 0; rc == 0 && r < rounds; r++) {
        double a = measure(&f, openssl, handshakes), b = measure(&f, edge, handshakes);
        if (a < 0 || b < 0)
            rc = 1;
        best_openssl = a < best_openssl ? a : best_openssl;
        best_edge = b < best_edge ? b : best_edge;
        printf("round %d: OpenSSL alone %.1f us, edge provider %.1f us\n", r + 1, a, b);
    }
    if (rc == 0)
        printf("best of %d rounds of %d: OpenSSL alone %.1f us, edge provider %.1f us, "
               "ratio %.3f (by the provider: %llu X25519 derivations, %llu key-schedule steps)\n",
               rounds, handshakes, best_openssl, best_edge, best_openssl / best_edge,
               (unsigned long long)ck_edge_kex_derivations(kex),
               (unsigned long long)ck_edge_kex_key_schedule_steps(kex));
    SSL_CTX_free(openssl);
    SSL_CTX_free(edge);
    ck_edge_kex_free(kex);
    X509_free(f.cert);
    EVP_PKEY_free(f.key);
    return rc;
}
