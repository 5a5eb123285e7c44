/* leaf_parser.h — reads an edge certificate's DER into an X509 for a TLS handshake, cheaply, and
 * keeps its EC private key small.
 *
 * In OpenSSL 3.0 d2i_X509 spends nine tenths of its time (about 115 µs of 130) building a
 * decoder for the certificate's public key: it walks every decoder and key manager the default
 * provider offers. The edge parses a certificate on every cache miss, so that was most of a miss.
 *
 * A parser owns a library context of its own in which one small built-in provider is loaded: a
 * decoder and a key manager for elliptic-curve keys (P-256, P-384, P-521, uncompressed points)
 * that hold the curve and the point. d2i there finds that one decoder at once. The key the X509
 * carries answers what the TLS stack asks of a certificate's key (type, curve, size, security
 * bits, point format) and compares with the private key.
 *
 * The private key can live in the same provider: imported into ck_leaf_parser_key_libctx
 * (EVP_PKEY_fromdata of an "EC" key pair, as ck_unseal_private_key_ex does), it holds the curve,
 * point and scalar and is made without building the curve's group, which an OpenSSL 3.0 EC key
 * copies into every key (1.5 KB, and most of the 20-60 µs of making one). Then
 * ck_leaf_parser_join_private_key puts the scalar into the certificate's own key, so one key
 * object serves the pair. Such a key signs through the provider's ECDSA, which hands the scalar
 * to OpenSSL's ECDSA over a pool of keys that keep the group (ecdsa_signer.h); the TLS stack finds
 * that signature by itself.
 *
 * Any other certificate (RSA, Ed25519, compressed points, explicit curve parameters) comes back
 * from the ordinary d2i_X509, and any other private key is an ordinary OpenSSL key, so the result
 * is always usable. */
#ifndef CK_EDGE_LEAF_PARSER_H
#define CK_EDGE_LEAF_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"

typedef struct ck_leaf_parser ck_leaf_parser;

ck_leaf_parser *ck_leaf_parser_new(ck_error *err);

/* Every X509 the parser returned must be freed first. NULL is allowed. */
void ck_leaf_parser_free(ck_leaf_parser *p);

/* The library context to import EC private keys into (see above), or NULL when this build cannot
 * sign with them (ecdsa_signer.h): then the keys stay ordinary OpenSSL keys, which match this
 * parser's certificates all the same. Valid as long as the parser; every key made in it must be
 * freed before the parser. */
OSSL_LIB_CTX *ck_leaf_parser_key_libctx(ck_leaf_parser *p);

/* Gives leaf's public key the private scalar of key, when leaf came from this parser and key is
 * the matching private key imported into ck_leaf_parser_key_libctx: X509_get0_pubkey(leaf) then
 * signs for the pair, and key is no longer needed. One key object instead of two saves about
 * 0.5 KB for each certificate the edge keeps parsed. Returns 0, or -1 (nothing changed) when
 * either key is not this parser's or they are not one pair. Leaves the error queue as it was. */
int ck_leaf_parser_join_private_key(ck_leaf_parser *p, X509 *leaf, EVP_PKEY *key);

/* A new X509 read from exactly len bytes of DER, or NULL when they are not one certificate.
 * Thread-safe. */
X509 *ck_leaf_parser_parse(ck_leaf_parser *p, const uint8_t *der, size_t len);

#endif
