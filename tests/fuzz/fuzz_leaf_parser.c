/* libFuzzer target: the edge's leaf parser (src/edge/leaf_parser.c), whose provider decodes the
 * public key of every certificate the edge serves. Any bytes: no crash, no leak, and it reads
 * what d2i_X509 reads: a certificate when d2i_X509 takes all the bytes, encoding to the same
 * bytes (what the edge sends), with a key of the same type and size. One difference is by
 * design: the parser does not check that an EC point is on its curve (that needs the curve's
 * arithmetic, the cost it avoids), so where d2i_X509 finds no key because of that, the parser's
 * key must be such a point; it matches no private key (they are compared byte for byte). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "edge/leaf_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when key's public point does not decode on its curve. */
static int point_off_curve(const EVP_PKEY *key)
{
    char group[64];
    unsigned char point[200];
    size_t group_len = 0, point_len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_len) != 1 ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                        &point_len) != 1)
        return 0;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(OBJ_sn2nid(group));
    EC_POINT *pt = g == NULL ? NULL : EC_POINT_new(g);
    int off = pt != NULL && EC_POINT_oct2point(g, pt, point, point_len, NULL) != 1;
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ck_error err = {0};
    ck_leaf_parser *parser = ck_leaf_parser_new(&err);
    if (parser == NULL)
        abort();
    X509 *x = ck_leaf_parser_parse(parser, data, size);
    const unsigned char *p = data;
    X509 *ordinary = d2i_X509(NULL, &p, (long)size);
    if (ordinary != NULL && (size_t)(p - data) != size) {
        X509_free(ordinary);
        ordinary = NULL;
    }
    if ((x == NULL) != (ordinary == NULL))
        abort();
    if (x != NULL) {
        unsigned char *der = NULL, *expected = NULL;
        int len = i2d_X509(x, &der), expected_len = i2d_X509(ordinary, &expected);
        if (len != expected_len || (len > 0 && memcmp(der, expected, (size_t)len) != 0))
            abort(); /* the edge would send other bytes than OpenSSL's own reading */
        EVP_PKEY *key = X509_get0_pubkey(x), *expected_key = X509_get0_pubkey(ordinary);
        if (key != NULL && expected_key == NULL && !point_off_curve(key))
            abort(); /* a key OpenSSL refuses for another reason than its point */
        if ((key == NULL && expected_key != NULL) ||
            (key != NULL && expected_key != NULL &&
             (EVP_PKEY_get_bits(key) != EVP_PKEY_get_bits(expected_key) ||
              EVP_PKEY_get_security_bits(key) != EVP_PKEY_get_security_bits(expected_key) ||
              !EVP_PKEY_is_a(key, EVP_PKEY_get0_type_name(expected_key)))))
            abort(); /* libssl would judge the certificate's key differently */
        OPENSSL_free(der);
        OPENSSL_free(expected);
        X509_free(x);
    }
    X509_free(ordinary);
    ERR_clear_error();
    ck_leaf_parser_free(parser);
    return 0;
}
