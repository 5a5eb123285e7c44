/* leaf_parser.h — reads an edge certificate's DER into an X509 for a TLS handshake, cheaply.
 *
 * In OpenSSL 3.0 d2i_X509 spends nine tenths of its time (about 115 µs of 130) building a
 * decoder for the certificate's public key: it walks every decoder and key manager the default
 * provider offers. The edge parses a certificate on every cache miss, so that was most of a miss.
 *
 * A parser owns a library context of its own in which one small built-in provider is loaded: a
 * decoder and a key manager for elliptic-curve public keys (P-256, P-384, P-521, uncompressed
 * points) that only hold the curve and the point. d2i there finds that one decoder at once. The
 * key the X509 carries answers what the TLS stack asks of a certificate's public key (type,
 * curve, size, security bits, point format) and compares with the private key (which stays an
 * ordinary OpenSSL key: it signs). It does no cryptography at all.
 *
 * Any other certificate (RSA, Ed25519, compressed points, explicit curve parameters) comes back
 * from the ordinary d2i_X509, so the result is always a usable X509. */
#ifndef CK_EDGE_LEAF_PARSER_H
#define CK_EDGE_LEAF_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/error.h"

typedef struct ck_leaf_parser ck_leaf_parser;

ck_leaf_parser *ck_leaf_parser_new(ck_error *err);

/* Every X509 the parser returned must be freed first. NULL is allowed. */
void ck_leaf_parser_free(ck_leaf_parser *p);

/* A new X509 read from exactly len bytes of DER, or NULL when they are not one certificate.
 * Thread-safe. */
X509 *ck_leaf_parser_parse(ck_leaf_parser *p, const uint8_t *der, size_t len);

#endif
