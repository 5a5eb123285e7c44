/* leaf_parser.c — d2i_X509 in a library context whose only provider is a small one for EC keys
 * (see leaf_parser.h for why).
 *
 * The provider ("certkeep-edge-keys") has three algorithms. The key manager and the decoder are
 * named like OpenSSL's EC key type (EC, id-ecPublicKey and its OID), so that the TLS stack's "is
 * it EC?" questions and its key-against-certificate check treat these keys as EC keys:
 * - a decoder from DER SubjectPublicKeyInfo (the form d2i_X509 hands over), read with OpenSSL's
 *   own ASN.1 templates;
 * - a key manager whose keys hold the curve, the uncompressed point and, for a private key, the
 *   scalar. It answers the parameters libssl reads from a key and matches two keys by curve and
 *   point. It imports a key pair from ck_unseal_private_key_ex (marked with
 *   CK_SEAL_IMPORT_PARAM), and otherwise only public halves: OpenSSL compares a certificate with
 *   an ordinary private key by copying that whole key in here, once per key, and its scalar
 *   stays out. ck_leaf_parser_join_private_key moves a scalar into a certificate's key through
 *   SCALAR_PARAM, a name of this file's own, so the generic "priv" parameter never shows it;
 * - an "ECDSA" signature with one-shot EVP_DigestSign: the digest from the default library
 *   context, the signature from ecdsa_signer.c. libssl finds it by itself: when it signs with one
 *   of these keys, OpenSSL first tries its own ECDSA, cannot export the key to it (there is no
 *   export here), and then takes the signature of the key's own provider.
 * It cannot export or verify: nothing in a handshake needs either.
 *
 * The point is not checked to be on its curve (that takes the curve's arithmetic, the very cost
 * this avoids). It does not need to be: a certificate's key is only compared byte for byte with
 * the private key's own point, which certkeep wrote with the key, so a certificate whose point is
 * not on the curve matches no key and is not served. Certificates reach the edge only after the
 * import checks anyway, which parse them with OpenSSL and check the key.
 * tests/fuzz/fuzz_leaf_parser.c holds the parser to d2i_X509's reading, with that one
 * difference. */
#include "edge/leaf_parser.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "crypto/der.h"
#include "crypto/seal.h"
#include "edge/ecdsa_signer.h"

#define PROVIDER_NAME "certkeep-edge-keys"
#define KEY_NAMES     "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define SCALAR_MAX    66 /* P-521 */
/* How ck_leaf_parser_join_private_key moves a scalar between two of these keys. Not the
 * standard "priv" name: code that asks a certificate's key for its private half the generic way
 * (printing, exporting) gets nothing. */
#define SCALAR_PARAM "certkeep-edge-scalar"
#define SPKI_MAX     512

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

/* The digests ECDSA is used with in TLS (SHA-1 only in TLS 1.2, where a client may insist), by
 * the names libssl asks for them (OBJ_nid2sn) and OpenSSL's own. */
static const char *const digest_names[][2] = {
    {"SHA1", "SHA-1"},      {"SHA224", "SHA2-224"}, {"SHA256", "SHA2-256"},
    {"SHA384", "SHA2-384"}, {"SHA512", "SHA2-512"},
};
#define DIGEST_COUNT (sizeof(digest_names) / sizeof(digest_names[0]))

/* The provider's own context: what the core gave it, the signer its keys sign with and the
 * digests it signs with. The digests are fetched once: a handshake initialises two signatures
 * (libssl asks whether the key can sign with the digest, then signs), and a fetch is most of an
 * initialisation's cost. */
struct provider_ctx {
    OSSL_FUNC_BIO_read_ex_fn *bio_read;
    ck_ecdsa_signer *signer;       /* NULL: private keys are not imported */
    EVP_MD *digests[DIGEST_COUNT]; /* from the default library context; with signer only */
};

/* Small on purpose: the edge keeps one per parsed certificate, tens of thousands of them. */
struct edge_key {
    const struct provider_ctx *provider;
    const struct curve *curve; /* NULL until known */
    /* The uncompressed point, then room for the scalar (big-endian, field_bytes): one allocation
     * of material_len(curve) bytes, wiped when freed. NULL until the point is known. */
    unsigned char *material;
    bool has_scalar;
};

static size_t uncompressed_len(const struct curve *c)
{
    return 1 + 2 * c->field_bytes;
}

static size_t material_len(const struct curve *c)
{
    return uncompressed_len(c) + c->field_bytes;
}

static unsigned char *scalar_of(const struct edge_key *key)
{
    return key->material + uncompressed_len(key->curve);
}

/* Sets the key's curve and point when the point is an uncompressed point's size for c. */
static bool key_set(struct edge_key *key, const struct curve *c, const unsigned char *point,
                    size_t len)
{
    if (c == NULL || len != uncompressed_len(c) || point[0] != 0x04 || key->material != NULL)
        return false;
    key->material = OPENSSL_zalloc(material_len(c));
    if (key->material == NULL)
        return false;
    key->curve = c;
    memcpy(key->material, point, len);
    return true;
}

static void *key_new(void *provctx)
{
    /* OpenSSL's allocator, so that a cached certificate's key lands in the cache's arena */
    struct edge_key *key = OPENSSL_zalloc(sizeof(*key));
    if (key != NULL)
        key->provider = provctx;
    return key;
}

static const char *key_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static void key_free(void *keydata)
{
    struct edge_key *key = keydata;
    if (key != NULL && key->material != NULL)
        OPENSSL_clear_free(key->material, material_len(key->curve));
    OPENSSL_free(key);
}

/* The decoder hands a key over by reference; taking it clears the reference, so the decoder
 * frees nothing it gave away. */
static void *key_load(const void *reference, size_t reference_size)
{
    if (reference_size != sizeof(struct edge_key *))
        return NULL;
    struct edge_key **slot = (struct edge_key **)reference;
    struct edge_key *key = *slot;
    *slot = NULL;
    return key;
}

static int key_has(const void *keydata, int selection)
{
    const struct edge_key *key = keydata;
    if (key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !key->has_scalar)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0 && key->curve == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && key->material == NULL)
        return 0;
    return 1;
}

/* By curve and point, for public and private keys alike: a private key's scalar is never
 * compared (its point is what a certificate carries). */
static int key_match(const void *keydata1, const void *keydata2, int selection)
{
    const struct edge_key *a = keydata1, *b = keydata2;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0 &&
        (a->curve == NULL || a->curve != b->curve))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return a->curve != NULL && a->curve == b->curve && a->material != NULL &&
               b->material != NULL &&
               memcmp(a->material, b->material, uncompressed_len(a->curve)) == 0;
    return 1;
}

/* A private key's scalar, when this provider can sign with it (see ecdsa_signer.h): otherwise
 * the import fails and the caller makes an ordinary OpenSSL key instead. */
static bool key_set_scalar(struct edge_key *key, const OSSL_PARAM *param)
{
    bool can_sign = key->provider->signer != NULL && ck_ecdsa_signer_has_curve(key->curve->nid);
    BIGNUM *scalar = can_sign ? BN_secure_new() : NULL;
    bool ok = scalar != NULL && OSSL_PARAM_get_BN(param, &scalar) == 1 && !BN_is_zero(scalar) &&
              BN_bn2binpad(scalar, scalar_of(key), (int)key->curve->field_bytes) >= 0;
    key->has_scalar = ok;
    BN_clear_free(scalar);
    return ok;
}

/* The curve by name, the public point and, for a private key, the scalar. A private key always
 * comes with its point: keys are matched with certificates by point. */
static int key_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    struct edge_key *key = keydata;
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
    if (pub == NULL || OSSL_PARAM_get_octet_string_ptr(pub, &point, &point_len) != 1 ||
        !key_set(key, c, point, point_len))
        return 0;
    /* The scalar only from ck_unseal_private_key_ex: OpenSSL also imports other providers' private
     * keys here, whole, when it compares one with a certificate; those keep their scalar. */
    const OSSL_PARAM *scalar = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY);
    const OSSL_PARAM *sealed = OSSL_PARAM_locate_const(params, CK_SEAL_IMPORT_PARAM);
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0 || scalar == NULL || sealed == NULL ||
           key_set_scalar(key, scalar);
}

static const OSSL_PARAM *key_import_types(int selection)
{
    (void)selection;
    static const OSSL_PARAM types[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
                                       OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                                       OSSL_PARAM_BN(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
                                       OSSL_PARAM_int(CK_SEAL_IMPORT_PARAM, NULL), OSSL_PARAM_END};
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

/* The scalar under SCALAR_PARAM, for ck_leaf_parser_join_private_key; a key without one leaves
 * the parameter unset. */
static int set_scalar(OSSL_PARAM params[], const struct edge_key *key)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, SCALAR_PARAM);
    if (p == NULL || !key->has_scalar)
        return 1;
    BIGNUM *scalar = BN_secure_new();
    int ok = scalar != NULL &&
             BN_bin2bn(scalar_of(key), (int)key->curve->field_bytes, scalar) != NULL &&
             OSSL_PARAM_set_BN(p, scalar) == 1;
    BN_clear_free(scalar);
    return ok;
}

static int key_get_params(void *keydata, OSSL_PARAM params[])
{
    const struct edge_key *key = keydata;
    const struct curve *c = key->curve;
    if (c == NULL)
        return 0;
    return set_scalar(params, key) && set_int(params, OSSL_PKEY_PARAM_BITS, c->bits) &&
           set_int(params, OSSL_PKEY_PARAM_SECURITY_BITS, c->security_bits) &&
           set_int(params, OSSL_PKEY_PARAM_MAX_SIZE, c->max_signature) &&
           set_string(params, OSSL_PKEY_PARAM_GROUP_NAME, c->group) &&
           set_string(params, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_GROUP) &&
           set_string(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                      OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) &&
           set_string(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST, c->digest) &&
           (key->material == NULL ||
            (set_octets(params, OSSL_PKEY_PARAM_PUB_KEY, key->material, uncompressed_len(c)) &&
             set_octets(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, key->material,
                        uncompressed_len(c))));
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

/* A scalar for a key that has its curve and point: a certificate's key becoming its private
 * key (ck_leaf_parser_join_private_key). */
static int key_set_params(void *keydata, const OSSL_PARAM params[])
{
    struct edge_key *key = keydata;
    const OSSL_PARAM *scalar = OSSL_PARAM_locate_const(params, SCALAR_PARAM);
    return scalar == NULL ||
           (key->material != NULL && !key->has_scalar && key_set_scalar(key, scalar));
}

static const OSSL_PARAM *key_settable_params(void *provctx)
{
    (void)provctx;
    static const OSSL_PARAM settable[] = {OSSL_PARAM_BN(SCALAR_PARAM, NULL, 0), OSSL_PARAM_END};
    return settable;
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
    {OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))key_set_params},
    {OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))key_settable_params},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))key_operation_name},
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
static struct edge_key *spki_to_key(const struct provider_ctx *provider, const unsigned char *der,
                                    size_t len);
/* clang-format on */

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
static struct edge_key *spki_to_key(const struct provider_ctx *provider, const unsigned char *der,
                                    size_t len)
{
    struct edge_key *key = NULL;
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
    if (!whole_bytes || (key = key_new((void *)provider)) == NULL)
        goto cleanup;
    if (!key_set(key, c, point, point_len)) {
        key_free(key);
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
    struct edge_key *key = spki_to_key(provider, der, len);
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
    key_free(key); /* NULL when key_load took it; it holds its point since key_set */
    return ok;
}

static const OSSL_DISPATCH decoder_functions[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))decoder_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))decoder_freectx},
    {OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))decoder_does_selection},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))decoder_decode},
    {0, NULL}};

/* ---- the signature ---- */

/* One signing operation: OpenSSL makes it for each EVP_DigestSignInit with one of these keys. */
struct sign_op {
    const struct provider_ctx *provider;
    const struct edge_key *key; /* the EVP_PKEY the operation was made for holds it */
    const EVP_MD *digest;       /* the provider's */
};

static void *sign_newctx(void *provctx, const char *propq)
{
    (void)propq;
    struct sign_op *op = calloc(1, sizeof(*op));
    if (op != NULL)
        op->provider = provctx;
    return op;
}

static void sign_freectx(void *ctx)
{
    free(ctx);
}

/* One of the provider's digests by any of its names, or NULL for any other digest. */
static const EVP_MD *digest_by_name(const struct provider_ctx *provider, const char *name)
{
    for (size_t i = 0; i < DIGEST_COUNT; i++)
        if (OPENSSL_strcasecmp(name, digest_names[i][0]) == 0 ||
            OPENSSL_strcasecmp(name, digest_names[i][1]) == 0)
            return provider->digests[i];
    /* Aliases and OIDs: the namemap knows them all. */
    for (size_t i = 0; i < DIGEST_COUNT; i++)
        if (EVP_MD_is_a(provider->digests[i], name))
            return provider->digests[i];
    return NULL;
}

static int sign_init(void *ctx, const char *mdname, void *keydata, const OSSL_PARAM params[])
{
    (void)params;
    struct sign_op *op = ctx;
    const struct edge_key *key = keydata;
    if (key == NULL || !key->has_scalar)
        return 0;
    op->digest = digest_by_name(op->provider, mdname != NULL ? mdname : key->curve->digest);
    op->key = key;
    return op->digest != NULL;
}

/* EVP_DigestSign: the digest of tbs, signed. With sig NULL, only the largest size. */
static int sign_digest_sign(void *ctx, unsigned char *sig, size_t *sig_len, size_t sig_size,
                            const unsigned char *tbs, size_t tbs_len)
{
    const struct sign_op *op = ctx;
    if (op->key == NULL || op->digest == NULL)
        return 0;
    if (sig == NULL) {
        *sig_len = (size_t)op->key->curve->max_signature;
        return 1;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    return EVP_Digest(tbs, tbs_len, digest, &digest_len, op->digest, NULL) == 1 &&
           ck_ecdsa_signer_sign(op->provider->signer, op->key->curve->nid, scalar_of(op->key),
                                op->key->curve->field_bytes, digest, digest_len, sig, sig_len,
                                sig_size) == 0;
}

static const OSSL_DISPATCH sign_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sign_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sign_freectx},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sign_digest_sign},
    {0, NULL}};

/* ---- the provider ---- */

static const OSSL_ALGORITHM key_algorithms[] = {
    {KEY_NAMES, "provider=" PROVIDER_NAME, key_functions, "EC keys of edge certificates"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM decoder_algorithms[] = {
    {KEY_NAMES, "provider=" PROVIDER_NAME ",input=der,structure=SubjectPublicKeyInfo",
     decoder_functions, "DER SubjectPublicKeyInfo to an edge EC public key"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM sign_algorithms[] = {
    {"ECDSA", "provider=" PROVIDER_NAME, sign_functions, "ECDSA with edge private keys"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id, int *no_cache)
{
    const struct provider_ctx *ctx = provctx;
    *no_cache = 0;
    if (operation_id == OSSL_OP_KEYMGMT)
        return key_algorithms;
    if (operation_id == OSSL_OP_DECODER)
        return decoder_algorithms;
    if (operation_id == OSSL_OP_SIGNATURE && ctx->signer != NULL)
        return sign_algorithms;
    return NULL;
}

static void provider_teardown(void *provctx)
{
    struct provider_ctx *ctx = provctx;
    ck_ecdsa_signer_free(ctx->signer);
    for (size_t i = 0; i < DIGEST_COUNT; i++)
        EVP_MD_free(ctx->digests[i]);
    free(ctx);
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))provider_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))provider_query},
    {0, NULL}};

/* From the default library context: this provider has no digests of its own. */
static bool fetch_digests(struct provider_ctx *ctx)
{
    for (size_t i = 0; i < DIGEST_COUNT; i++)
        if ((ctx->digests[i] = EVP_MD_fetch(NULL, digest_names[i][1], NULL)) == NULL)
            return false;
    return true;
}

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
    ctx->signer = ck_ecdsa_signer_new(); /* NULL: public keys only */
    if (ctx->bio_read == NULL || (ck_ecdsa_signer_available() && ctx->signer == NULL) ||
        (ctx->signer != NULL && !fetch_digests(ctx))) {
        provider_teardown(ctx);
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

OSSL_LIB_CTX *ck_leaf_parser_key_libctx(ck_leaf_parser *p)
{
    return ck_ecdsa_signer_available() ? p->libctx : NULL;
}

int ck_leaf_parser_join_private_key(ck_leaf_parser *p, X509 *leaf, EVP_PKEY *key)
{
    int rc = -1;
    EVP_PKEY *pub = X509_get0_pubkey(leaf);
    unsigned char scalar[SCALAR_MAX]; /* native byte order, as OSSL_PARAM carries integers */
    OSSL_PARAM get[] = {OSSL_PARAM_construct_BN(SCALAR_PARAM, scalar, sizeof(scalar)),
                        OSSL_PARAM_construct_end()};
    ERR_set_mark();
    if (pub == NULL || EVP_PKEY_get0_provider(pub) != p->provider ||
        EVP_PKEY_get0_provider(key) != p->provider || EVP_PKEY_eq(pub, key) != 1 ||
        EVP_PKEY_get_params(key, get) != 1 || !OSSL_PARAM_modified(get))
        goto cleanup;
    OSSL_PARAM set[] = {OSSL_PARAM_construct_BN(SCALAR_PARAM, scalar, get[0].return_size),
                        OSSL_PARAM_construct_end()};
    rc = EVP_PKEY_set_params(pub, set) == 1 ? 0 : -1;
cleanup:
    OPENSSL_cleanse(scalar, sizeof(scalar));
    ERR_pop_to_mark();
    return rc;
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
