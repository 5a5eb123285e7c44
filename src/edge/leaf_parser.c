/* leaf_parser.c — d2i_X509 in a library context whose only provider is a tiny one for EC public
 * keys (see leaf_parser.h for why).
 *
 * The provider ("certkeep-edge-pubkey") has two algorithms, both named like OpenSSL's EC key
 * type (EC, id-ecPublicKey and its OID), so that the TLS stack's "is it EC?" questions and its
 * key-against-certificate check treat these keys as EC keys:
 * - a decoder from DER SubjectPublicKeyInfo (the form d2i_X509 hands over), read with OpenSSL's
 *   own ASN.1 templates;
 * - a key manager whose keys hold the curve and the uncompressed point. It answers the
 *   parameters libssl reads from a certificate's key, imports a public key (how OpenSSL compares
 *   the certificate with the private key: it exports the private key's public half into this
 *   key manager, once per key) and matches two keys by curve and point.
 * It cannot export, sign or verify: nothing in a handshake needs the certificate's key to.
 *
 * The point is not checked to be on its curve (that takes the curve's arithmetic, the very cost
 * this avoids). It does not need to be: the key is only compared byte for byte with the private
 * key's own point, which is on the curve, so a certificate whose point is not matches no key and
 * is not served. Certificates reach the edge only after the import checks anyway, which parse
 * them with OpenSSL and check the key. tests/fuzz/fuzz_leaf_parser.c holds the parser to
 * d2i_X509's reading, with that one difference. */
#include "edge/leaf_parser.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "crypto/der.h"

#define PROVIDER_NAME "certkeep-edge-pubkey"
#define KEY_NAMES     "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define POINT_MAX     (1 + 2 * 66) /* uncompressed P-521 */
#define SPKI_MAX      512

struct ck_leaf_parser {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *provider;
};

/* ---- curves ---- */

struct curve {
    int nid;
    const char *group;  /* the name OpenSSL's EC keys give */
    size_t field_bytes; /* an uncompressed point is 1 + 2 * field_bytes */
    int bits, security_bits, max_signature;
    const char *digest;
};

static const struct curve curves[] = {
    {NID_X9_62_prime256v1, SN_X9_62_prime256v1, 32, 256, 128, 72, "SHA256"},
    {NID_secp384r1, SN_secp384r1, 48, 384, 192, 104, "SHA384"},
    {NID_secp521r1, SN_secp521r1, 66, 521, 256, 139, "SHA512"},
};

static const struct curve *curve_by_nid(int nid)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (curves[i].nid == nid)
            return &curves[i];
    return NULL;
}

/* "prime256v1", "P-256", "secp384r1"... */
static const struct curve *curve_by_name(const char *name)
{
    int nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    return nid == NID_undef ? NULL : curve_by_nid(nid);
}

/* ---- the keys ---- */

struct edge_pubkey {
    const struct curve *curve; /* NULL until known */
    size_t point_len;          /* 0: no public key */
    unsigned char point[POINT_MAX];
};

/* Sets the key's curve and point when the point is an uncompressed point's size for c. */
static bool key_set(struct edge_pubkey *key, const struct curve *c, const unsigned char *point,
                    size_t len)
{
    if (c == NULL || len != 1 + 2 * c->field_bytes || point[0] != 0x04)
        return false;
    key->curve = c;
    memcpy(key->point, point, len);
    key->point_len = len;
    return true;
}

static void *key_new(void *provctx)
{
    (void)provctx;
    return calloc(1, sizeof(struct edge_pubkey));
}

static void key_free(void *key)
{
    free(key);
}

/* The decoder hands a key over by reference; taking it clears the reference, so the decoder
 * frees nothing it gave away. */
static void *key_load(const void *reference, size_t reference_size)
{
    if (reference_size != sizeof(struct edge_pubkey *))
        return NULL;
    struct edge_pubkey **slot = (struct edge_pubkey **)reference;
    struct edge_pubkey *key = *slot;
    *slot = NULL;
    return key;
}

static int key_has(const void *keydata, int selection)
{
    const struct edge_pubkey *key = keydata;
    if (key == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0 && key->curve == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && key->point_len == 0)
        return 0;
    return 1;
}

/* Public keys only: asked to compare private keys, they are not known to match. */
static int key_match(const void *keydata1, const void *keydata2, int selection)
{
    const struct edge_pubkey *a = keydata1, *b = keydata2;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0 &&
        (a->curve == NULL || a->curve != b->curve))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return a->curve != NULL && a->curve == b->curve && a->point_len > 0 &&
               a->point_len == b->point_len && memcmp(a->point, b->point, a->point_len) == 0;
    return 1;
}

/* The curve by name and the public point; a private key in params is ignored. */
static int key_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    struct edge_pubkey *key = keydata;
    const OSSL_PARAM *group = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    const OSSL_PARAM *pub = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
    const char *name = NULL;
    const void *point = NULL;
    size_t point_len = 0;
    if (key == NULL || group == NULL || OSSL_PARAM_get_utf8_string_ptr(group, &name) != 1)
        return 0;
    const struct curve *c = curve_by_name(name);
    if (c == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0) {
        key->curve = c;
        return 1;
    }
    return pub != NULL && OSSL_PARAM_get_octet_string_ptr(pub, &point, &point_len) == 1 &&
           key_set(key, c, point, point_len);
}

static const OSSL_PARAM *key_import_types(int selection)
{
    (void)selection;
    static const OSSL_PARAM types[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
                                       OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                                       OSSL_PARAM_END};
    return types;
}

static int set_int(OSSL_PARAM params[], const char *name, int value)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, name);
    return p == NULL || OSSL_PARAM_set_int(p, value) == 1;
}

static int set_string(OSSL_PARAM params[], const char *name, const char *value)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, name);
    return p == NULL || OSSL_PARAM_set_utf8_string(p, value) == 1;
}

static int set_octets(OSSL_PARAM params[], const char *name, const void *value, size_t len)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, name);
    return p == NULL || OSSL_PARAM_set_octet_string(p, value, len) == 1;
}

static int key_get_params(void *keydata, OSSL_PARAM params[])
{
    const struct edge_pubkey *key = keydata;
    const struct curve *c = key->curve;
    if (c == NULL)
        return 0;
    return set_int(params, OSSL_PKEY_PARAM_BITS, c->bits) &&
           set_int(params, OSSL_PKEY_PARAM_SECURITY_BITS, c->security_bits) &&
           set_int(params, OSSL_PKEY_PARAM_MAX_SIZE, c->max_signature) &&
           set_string(params, OSSL_PKEY_PARAM_GROUP_NAME, c->group) &&
           set_string(params, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_GROUP) &&
           set_string(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                      OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) &&
           set_string(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST, c->digest) &&
           (key->point_len == 0 ||
            (set_octets(params, OSSL_PKEY_PARAM_PUB_KEY, key->point, key->point_len) &&
             set_octets(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, key->point, key->point_len)));
}

static const OSSL_PARAM *key_gettable_params(void *provctx)
{
    (void)provctx;
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_END};
    return gettable;
}

static const OSSL_DISPATCH key_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))key_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))key_free},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))key_load},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))key_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))key_match},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))key_import},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))key_import_types},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))key_get_params},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))key_gettable_params},
    {0, NULL}};

/* ---- the decoder ---- */

typedef struct {
    X509_ALGOR *algorithm;
    ASN1_BIT_STRING *public_key;
} EDGE_SPKI;

/* clang-format off */
ASN1_SEQUENCE(EDGE_SPKI) = {
    ASN1_SIMPLE(EDGE_SPKI, algorithm, X509_ALGOR),
    ASN1_SIMPLE(EDGE_SPKI, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(EDGE_SPKI)
/* A declaration ending in ';', so that clang-format, which cannot tell where the macro above
 * ends, formats what follows as code again (as in crypto/seal.c). */
static struct edge_pubkey *spki_to_key(const unsigned char *der, size_t len);
/* clang-format on */

struct provider_ctx {
    OSSL_FUNC_BIO_read_ex_fn *bio_read;
};

static void *decoder_newctx(void *provctx)
{
    return provctx;
}

static void decoder_freectx(void *ctx)
{
    (void)ctx; /* the provider's own context, freed at teardown */
}

static int decoder_does_selection(void *provctx, int selection)
{
    (void)provctx;
    return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ||
           (selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0;
}

/* The key in a SubjectPublicKeyInfo, or NULL when it is not an uncompressed point on a named
 * curve this provider knows. */
static struct edge_pubkey *spki_to_key(const unsigned char *der, size_t len)
{
    struct edge_pubkey *key = NULL;
    EDGE_SPKI *spki = ck_d2i_exact(ASN1_ITEM_rptr(EDGE_SPKI), der, len, NULL);
    if (spki == NULL)
        goto cleanup;
    const ASN1_OBJECT *algorithm = NULL;
    const void *parameter = NULL;
    int parameter_type = 0;
    X509_ALGOR_get0(&algorithm, &parameter_type, &parameter, spki->algorithm);
    if (OBJ_obj2nid(algorithm) != NID_X9_62_id_ecPublicKey || parameter_type != V_ASN1_OBJECT)
        goto cleanup;
    const struct curve *c = curve_by_nid(OBJ_obj2nid(parameter));
    const unsigned char *point = ASN1_STRING_get0_data(spki->public_key);
    size_t point_len = (size_t)ASN1_STRING_length(spki->public_key);
    bool whole_bytes = (spki->public_key->flags & ASN1_STRING_FLAG_BITS_LEFT) == 0 ||
                       (spki->public_key->flags & 0x07) == 0;
    if (!whole_bytes || (key = calloc(1, sizeof(*key))) == NULL)
        goto cleanup;
    if (!key_set(key, c, point, point_len)) {
        free(key);
        key = NULL;
    }
cleanup:
    ASN1_item_free((ASN1_VALUE *)spki, ASN1_ITEM_rptr(EDGE_SPKI));
    return key;
}

/* Returns 1 also when the input is not for this decoder (then nothing is handed over), as
 * OpenSSL's decoders do: 0 stops the whole decoding. */
static int decoder_decode(void *ctx, OSSL_CORE_BIO *in, int selection, OSSL_CALLBACK *data_cb,
                          void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    (void)selection;
    (void)pw_cb;
    (void)pw_cbarg;
    const struct provider_ctx *provider = ctx;
    unsigned char der[SPKI_MAX];
    size_t len = 0, n = 0;
    while (len < sizeof(der) && provider->bio_read(in, der + len, sizeof(der) - len, &n) == 1 &&
           n > 0)
        len += n;
    struct edge_pubkey *key = spki_to_key(der, len);
    if (key == NULL)
        return 1;
    int object_type = OSSL_OBJECT_PKEY;
    char data_type[] = "EC";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type),
        OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, data_type, 0),
        OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key, sizeof(key)),
        OSSL_PARAM_construct_end()};
    int ok = data_cb(params, data_cbarg);
    free(key); /* NULL when key_load took it */
    return ok;
}

static const OSSL_DISPATCH decoder_functions[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))decoder_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))decoder_freectx},
    {OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))decoder_does_selection},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))decoder_decode},
    {0, NULL}};

/* ---- the provider ---- */

static const OSSL_ALGORITHM key_algorithms[] = {
    {KEY_NAMES, "provider=" PROVIDER_NAME, key_functions, "EC public keys of edge certificates"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM decoder_algorithms[] = {
    {KEY_NAMES, "provider=" PROVIDER_NAME ",input=der,structure=SubjectPublicKeyInfo",
     decoder_functions, "DER SubjectPublicKeyInfo to an edge EC public key"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    if (operation_id == OSSL_OP_KEYMGMT)
        return key_algorithms;
    if (operation_id == OSSL_OP_DECODER)
        return decoder_algorithms;
    return NULL;
}

static void provider_teardown(void *provctx)
{
    free(provctx);
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))provider_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))provider_query},
    {0, NULL}};

static int provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                         const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    struct provider_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return 0;
    for (; in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_BIO_READ_EX)
            ctx->bio_read = OSSL_FUNC_BIO_read_ex(in);
    if (ctx->bio_read == NULL) {
        free(ctx);
        return 0;
    }
    *out = provider_functions;
    *provctx = ctx;
    return 1;
}

/* ---- the parser ---- */

ck_leaf_parser *ck_leaf_parser_new(ck_error *err)
{
    ck_leaf_parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto failed;
    p->libctx = OSSL_LIB_CTX_new();
    if (p->libctx == NULL ||
        OSSL_PROVIDER_add_builtin(p->libctx, PROVIDER_NAME, provider_init) != 1)
        goto failed;
    p->provider = OSSL_PROVIDER_load(p->libctx, PROVIDER_NAME);
    if (p->provider == NULL)
        goto failed;
    return p;
failed:
    ck_error_openssl(err, 500, "tls_setup_failed", "cannot set up the edge's certificate parser");
    ck_leaf_parser_free(p);
    return NULL;
}

void ck_leaf_parser_free(ck_leaf_parser *p)
{
    if (p == NULL)
        return;
    if (p->provider != NULL)
        OSSL_PROVIDER_unload(p->provider);
    OSSL_LIB_CTX_free(p->libctx);
    free(p);
}

X509 *ck_leaf_parser_parse(ck_leaf_parser *p, const uint8_t *der, size_t len)
{
    /* Nothing this attempt leaves on the error queue may outlive it: the context has no digests
     * (the SHA-1 fingerprint cache fails quietly), and X509_get0_pubkey reports a key it could
     * not read. A stale error would make OpenSSL take the connection's next WANT_READ for a
     * failure (SSL_get_error looks at the queue first). */
    ERR_set_mark();
    X509 *x = ck_d2i_exact(ASN1_ITEM_rptr(X509), der, len, p->libctx);
    bool usable = x != NULL && X509_get0_pubkey(x) != NULL;
    ERR_pop_to_mark();
    if (usable)
        return x;
    /* Not a key this provider reads (RSA, Ed25519...): the ordinary way. */
    X509_free(x);
    return ck_d2i_exact(ASN1_ITEM_rptr(X509), der, len, NULL);
}
