/* tls_pair.h — the unit tests' in-memory TLS handshake: a client and a server SSL joined by a
 * BIO pair, driven in turns until both finish or one fails, and a throwaway self-signed server
 * certificate. Header-only because each unit test is one translation unit. */
#ifndef CK_TESTS_TLS_PAIR_H
#define CK_TESTS_TLS_PAIR_H

#include <stdbool.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* A self-signed P-256 certificate for cn, valid from a minute ago for an hour, its key in *key.
 * NULL, and *key NULL, when OpenSSL fails. */
static inline X509 *tls_pair_self_signed(const char *cn, EVP_PKEY **key)
{
    X509 *x = X509_new();
    *key = EVP_EC_gen("P-256");
    if (x == NULL || *key == NULL || X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 || X509_set_pubkey(x, *key) != 1 ||
        X509_sign(x, *key, EVP_sha256()) <= 0) {
        X509_free(x);
        EVP_PKEY_free(*key);
        *key = NULL;
        return NULL;
    }
    return x;
}

/* Joins client and server (SSL_new'd, certificates set) and handshakes them; true when both
 * finished. Each keeps its end of the pair (freed with the SSL). */
static inline bool tls_pair_handshake(SSL *client, SSL *server)
{
    BIO *server_bio = NULL, *client_bio = NULL;
    if (BIO_new_bio_pair(&server_bio, 0, &client_bio, 0) != 1)
        return false;
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    SSL *peers[2] = {client, server};
    bool done[2] = {false, false}, failed = false;
    /* a handshake takes a few turns; 50 bounds a peer that keeps asking for more */
    for (int turn = 0; turn < 50 && !failed && !(done[0] && done[1]); turn++)
        for (int p = 0; p < 2; p++) {
            int rc = done[p] ? 1 : SSL_do_handshake(peers[p]);
            int why = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(peers[p], rc);
            done[p] = rc == 1;
            failed |=
                why != SSL_ERROR_NONE && why != SSL_ERROR_WANT_READ && why != SSL_ERROR_WANT_WRITE;
        }
    return done[0] && done[1];
}

#endif
