#include "crypto/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/util.h"
#include "crypto/der.h"

#define SEAL_VERSION   0x01
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN   16
#define SEAL_OVERHEAD  (1 + SEAL_NONCE_LEN + SEAL_TAG_LEN)
#define MASTER_HEX_LEN (2 * CK_MASTER_KEY_LEN)
/* Larger than any valid key file, so that a wrong file is reported as such, not truncated. */
#define MASTER_FILE_MAX 256

static bool is_hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Decodes exactly 64 hex digits into key; where names the source for the message. */
static int master_key_from_hex(const char *hex, size_t len, ck_master_key *out, const char *where,
                               ck_error *err)
{
    if (len != MASTER_HEX_LEN)
        return ck_error_set(err, 500, "invalid_master_key",
                            "the master key in %s must be exactly %d hex digits (found %zu "
                            "characters)",
                            where, MASTER_HEX_LEN, len);
    for (size_t i = 0; i < len; i++)
        if (!is_hex_digit(hex[i]))
            return ck_error_set(err, 500, "invalid_master_key",
                                "the master key in %s must contain only hex digits", where);
    char copy[MASTER_HEX_LEN + 1];
    memcpy(copy, hex, MASTER_HEX_LEN);
    copy[MASTER_HEX_LEN] = '\0';
    size_t decoded = 0;
    int ok = OPENSSL_hexstr2buf_ex(out->bytes, sizeof(out->bytes), &decoded, copy, '\0');
    OPENSSL_cleanse(copy, sizeof(copy));
    if (ok != 1 || decoded != CK_MASTER_KEY_LEN) {
        ck_master_key_wipe(out);
        return ck_error_set(err, 500, "invalid_master_key", "the master key in %s is not valid hex",
                            where);
    }
    return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int ck_master_key_create(const char *path, ck_master_key *out, ck_error *err)
{
    int rc = -1;
    char hex[MASTER_HEX_LEN + 2];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return ck_error_set(err, 409, "master_key_exists",
                                "master key file %s already exists; refusing to overwrite it",
                                path);
        return ck_error_set(err, 500, "master_key_unwritable", "cannot create %s: %s", path,
                            strerror(errno));
    }
    /* The umask may have narrowed 0600 further, never widened it; make it exact. */
    if (fchmod(fd, 0600) != 0) {
        ck_error_set(err, 500, "master_key_unwritable", "cannot set the mode of %s: %s", path,
                     strerror(errno));
        goto cleanup;
    }
    if (ck_random_bytes(out->bytes, sizeof(out->bytes), err) != 0)
        goto cleanup;
    ck_hex_encode(out->bytes, sizeof(out->bytes), hex);
    hex[MASTER_HEX_LEN] = '\n';
    hex[MASTER_HEX_LEN + 1] = '\0';
    if (write_all(fd, hex, MASTER_HEX_LEN + 1) != 0 || fsync(fd) != 0) {
        ck_error_set(err, 500, "master_key_unwritable", "cannot write %s: %s", path,
                     strerror(errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    OPENSSL_cleanse(hex, sizeof(hex));
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = ck_error_set(err, 500, "master_key_unwritable", "cannot write %s: %s", path,
                          strerror(errno));
    if (rc != 0) {
        unlink(path);
        ck_master_key_wipe(out);
    }
    return rc;
}

static int read_master_key_file(int fd, const char *path, ck_master_key *out, ck_error *err)
{
    char buf[MASTER_FILE_MAX];
    size_t len = 0;
    int rc = -1;
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ck_error_set(err, 500, "master_key_unreadable", "cannot read %s: %s", path,
                         strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    rc = master_key_from_hex(buf, len, out, path, err);
cleanup:
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int ck_master_key_load(const char *path, ck_master_key *out, ck_error *err)
{
    const char *env = getenv("CERTKEEP_MASTER_KEY");
    if (env != NULL && env[0] != '\0')
        return master_key_from_hex(env, strlen(env), out, "CERTKEEP_MASTER_KEY", err);
    if (path == NULL)
        return ck_error_set(err, 500, "master_key_missing",
                            "no master key: set CERTKEEP_MASTER_KEY or give a master key file");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return ck_error_set(err, 500, "master_key_unreadable", "cannot open master key file %s: %s",
                            path, strerror(errno));
    int rc = -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ck_error_set(err, 500, "master_key_unreadable", "cannot stat %s: %s", path,
                     strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        ck_error_set(err, 500, "master_key_unreadable", "%s is not a regular file", path);
        goto cleanup;
    }
    if ((st.st_mode & 077) != 0) {
        ck_error_set(err, 500, "master_key_insecure",
                     "master key file %s is accessible by group or others (mode %03o); run "
                     "chmod 600 %s",
                     path, (unsigned)(st.st_mode & 0777), path);
        goto cleanup;
    }
    rc = read_master_key_file(fd, path, out, err);
cleanup:
    close(fd);
    return rc;
}

void ck_master_key_wipe(ck_master_key *key)
{
    if (key != NULL)
        OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
}

static int aad_update(EVP_CIPHER_CTX *ctx, const char *aad)
{
    int ignored = 0;
    size_t len = aad ? strlen(aad) : 0;
    if (len == 0)
        return 1;
    if (len > INT32_MAX)
        return 0;
    return EVP_CipherUpdate(ctx, NULL, &ignored, (const unsigned char *)aad, (int)len);
}

int ck_seal(const ck_master_key *key, const char *aad, const uint8_t *plain, size_t plain_len,
            uint8_t **out, size_t *out_len, ck_error *err)
{
    int rc = -1;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *blob = NULL;
    if (plain_len > INT32_MAX - SEAL_OVERHEAD)
        return ck_error_set(err, 413, "secret_too_large", "secret too large to seal");
    size_t blob_len = plain_len + SEAL_OVERHEAD;
    blob = OPENSSL_malloc(blob_len);
    ctx = EVP_CIPHER_CTX_new();
    if (blob == NULL || ctx == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory sealing a secret");
        goto cleanup;
    }
    blob[0] = SEAL_VERSION;
    uint8_t *nonce = blob + 1, *ct = nonce + SEAL_NONCE_LEN, *tag = ct + plain_len;
    if (ck_random_bytes(nonce, SEAL_NONCE_LEN, err) != 0)
        goto cleanup;
    int n = 0, fin = 0;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce) != 1 ||
        aad_update(ctx, aad) != 1 ||
        (plain_len > 0 && EVP_EncryptUpdate(ctx, ct, &n, plain, (int)plain_len) != 1) ||
        EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) != 1) {
        ck_error_openssl(err, 500, "seal_failed", "cannot seal a secret");
        goto cleanup;
    }
    *out = blob;
    *out_len = blob_len;
    blob = NULL;
    rc = 0;
cleanup:
    OPENSSL_free(blob);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int ck_unseal(const ck_master_key *key, const char *aad, const uint8_t *sealed, size_t sealed_len,
              uint8_t **out, size_t *out_len, ck_error *err)
{
    int rc = -1;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *plain = NULL;
    if (sealed == NULL || sealed_len < SEAL_OVERHEAD || sealed_len > INT32_MAX ||
        sealed[0] != SEAL_VERSION)
        return ck_error_set(err, 500, "unseal_failed",
                            "a sealed secret is damaged or has an unknown format");
    size_t plain_len = sealed_len - SEAL_OVERHEAD;
    const uint8_t *nonce = sealed + 1, *ct = nonce + SEAL_NONCE_LEN, *tag = ct + plain_len;
    /* One spare byte so that an empty secret still gets a non-NULL buffer. */
    plain = OPENSSL_malloc(plain_len + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (plain == NULL || ctx == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory opening a secret");
        goto cleanup;
    }
    int n = 0, fin = 0;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes, nonce) != 1 ||
        aad_update(ctx, aad) != 1 ||
        (plain_len > 0 && EVP_DecryptUpdate(ctx, plain, &n, ct, (int)plain_len) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, plain + n, &fin) != 1) {
        ck_error_openssl(err, 500, "unseal_failed",
                         "cannot open a sealed secret: wrong master key, or the data was altered "
                         "or moved from its place");
        goto cleanup;
    }
    *out = plain;
    *out_len = plain_len;
    plain = NULL;
    rc = 0;
cleanup:
    OPENSSL_clear_free(plain, plain_len + 1);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int ck_seal_private_key(const ck_master_key *key, const char *aad, EVP_PKEY *pkey, uint8_t **out,
                        size_t *out_len, ck_error *err)
{
    int rc = -1;
    unsigned char *der = NULL;
    size_t der_len = 0;
    OSSL_ENCODER_CTX *enc =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    if (enc == NULL || OSSL_ENCODER_CTX_get_num_encoders(enc) == 0 ||
        OSSL_ENCODER_to_data(enc, &der, &der_len) != 1) {
        ck_error_openssl(err, 500, "seal_failed", "cannot encode the private key for sealing");
        goto cleanup;
    }
    rc = ck_seal(key, aad, der, der_len, out, out_len, err);
cleanup:
    OPENSSL_clear_free(der, der_len);
    OSSL_ENCODER_CTX_free(enc);
    return rc;
}

/* RFC 5915 ECPrivateKey, the inner octets of an EC PrivateKeyInfo. Declared here rather than
 * read with d2i_ECPrivateKey, which works on the deprecated EC_KEY. The callback wipes the
 * private key octets whenever the structure is freed, on d2i's error paths too. */
typedef struct {
    int32_t version;
    ASN1_OCTET_STRING *private_key;
    ASN1_TYPE *parameters;
    ASN1_BIT_STRING *public_key;
} ec_private_key_der;

static int ec_private_key_der_cb(int operation, ASN1_VALUE **pval, const ASN1_ITEM *it, void *exarg)
{
    (void)it;
    (void)exarg;
    if (operation == ASN1_OP_FREE_PRE && *pval != NULL) {
        ec_private_key_der *key = (ec_private_key_der *)*pval;
        ASN1_STRING_clear_free(key->private_key);
        key->private_key = NULL;
    }
    return 1;
}

/* clang-format off */
ASN1_SEQUENCE_cb(ec_private_key_der, ec_private_key_der_cb) = {
    ASN1_EMBED(ec_private_key_der, version, INT32),
    ASN1_SIMPLE(ec_private_key_der, private_key, ASN1_OCTET_STRING),
    ASN1_EXP_OPT(ec_private_key_der, parameters, ASN1_ANY, 0),
    ASN1_EXP_OPT(ec_private_key_der, public_key, ASN1_BIT_STRING, 1),
} static_ASN1_SEQUENCE_END_cb(ec_private_key_der, ec_private_key_der)
/* A declaration ending in ';' so that clang-format, which cannot tell where the macro above
 * ends, formats what follows as code again. */
static EVP_PKEY *ec_key_from_values(OSSL_LIB_CTX *libctx, const char *curve,
                                    const ASN1_OCTET_STRING *priv_octets,
                                    const ASN1_BIT_STRING *pub);
/* clang-format on */

/* Imports an EC key from its named curve, private scalar and (uncompressed) public point into
 * libctx's "EC" key manager (NULL: the default library context). */
static EVP_PKEY *ec_key_from_values(OSSL_LIB_CTX *libctx, const char *curve,
                                    const ASN1_OCTET_STRING *priv_octets,
                                    const ASN1_BIT_STRING *pub)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = NULL;
    /* Secure: OSSL_PARAM_free then wipes the copy the builder makes of the scalar. */
    BIGNUM *priv = BN_secure_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", NULL);
    if (priv == NULL || bld == NULL || ctx == NULL ||
        BN_bin2bn(priv_octets->data, priv_octets->length, priv) == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub->data,
                                         (size_t)pub->length) != 1 ||
        OSSL_PARAM_BLD_push_int(bld, CK_SEAL_IMPORT_PARAM, 1) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* An ECPrivateKey on a named curve with its public point, the form certkeep seals; NULL for any
 * other. The point is taken as it is, not checked against the scalar (OpenSSL's decoder does not
 * check it either): EVP_PKEY_pairwise_check costs about 60 us for P-256 and over 1 ms for P-384
 * on OpenSSL 3.0, more than the decoder this path avoids. A sealed key can only come from certkeep
 * itself (the seal is authenticated), and a key whose point and scalar disagreed would make
 * handshakes fail, its signatures not verifying, without disclosing anything. */
static EVP_PKEY *open_ec_key(const ASN1_OBJECT *curve_oid, const unsigned char *inner,
                             int inner_len, OSSL_LIB_CTX *libctx)
{
    EVP_PKEY *pkey = NULL;
    ec_private_key_der *key =
        ck_d2i_exact(ASN1_ITEM_rptr(ec_private_key_der), inner, (size_t)inner_len, NULL);
    const char *curve = OBJ_nid2sn(OBJ_obj2nid(curve_oid));
    if (key == NULL || key->version != 1 || curve == NULL || key->public_key == NULL ||
        key->public_key->length < 1 || key->public_key->data[0] != POINT_CONVERSION_UNCOMPRESSED ||
        (key->public_key->flags & 0x07) != 0)
        goto cleanup;
    if (key->parameters != NULL && (key->parameters->type != V_ASN1_OBJECT ||
                                    OBJ_cmp(key->parameters->value.object, curve_oid) != 0))
        goto cleanup;
    pkey = ec_key_from_values(libctx, curve, key->private_key, key->public_key);
    if (pkey == NULL && libctx != NULL) /* a key libctx's key manager does not take */
        pkey = ec_key_from_values(NULL, curve, key->private_key, key->public_key);
cleanup:
    ASN1_item_free((ASN1_VALUE *)key, ASN1_ITEM_rptr(ec_private_key_der));
    return pkey;
}

/* RFC 8410 CurvePrivateKey: an OCTET STRING holding the raw private key. */
static EVP_PKEY *open_raw_key(const char *type, const unsigned char *inner, int inner_len)
{
    EVP_PKEY *pkey = NULL;
    ASN1_OCTET_STRING *raw =
        ck_d2i_exact(ASN1_ITEM_rptr(ASN1_OCTET_STRING), inner, (size_t)inner_len, NULL);
    if (raw != NULL)
        pkey = EVP_PKEY_new_raw_private_key_ex(NULL, type, NULL, raw->data, (size_t)raw->length);
    ASN1_STRING_clear_free(raw);
    return pkey;
}

/* Opens the key types certkeep issues without OpenSSL's decoder framework: building a decoder
 * context is most of the 85-170 us a decode takes on OpenSSL 3.0, against about 20 us for
 * importing the values (bench/keyopen), and the edge opens keys on its handshake path. Only the
 * plain shapes OpenSSL itself writes are taken: no attributes, EC on a named curve with its public
 * point present and uncompressed. */
static EVP_PKEY *open_private_key_info(const PKCS8_PRIV_KEY_INFO *info, OSSL_LIB_CTX *libctx)
{
    const ASN1_OBJECT *alg_oid = NULL;
    const X509_ALGOR *alg = NULL;
    const unsigned char *inner = NULL;
    int inner_len = 0, param_type = V_ASN1_UNDEF;
    const void *param = NULL;
    const STACK_OF(X509_ATTRIBUTE) *attributes = PKCS8_pkey_get0_attrs(info);
    if (PKCS8_pkey_get0(&alg_oid, &inner, &inner_len, &alg, info) != 1 || alg == NULL ||
        sk_X509_ATTRIBUTE_num(attributes) > 0)
        return NULL;
    X509_ALGOR_get0(NULL, &param_type, &param, alg);
    switch (OBJ_obj2nid(alg_oid)) {
    case NID_X9_62_id_ecPublicKey:
        if (param_type != V_ASN1_OBJECT)
            return NULL;
        return open_ec_key(param, inner, inner_len, libctx);
    case NID_ED25519:
    case NID_ED448:
    case NID_X25519:
    case NID_X448:
        if (param_type != V_ASN1_UNDEF)
            return NULL;
        return open_raw_key(OBJ_nid2sn(OBJ_obj2nid(alg_oid)), inner, inner_len);
    default:
        return NULL;
    }
}

/* Opens a PrivateKeyInfo with the one decoder its algorithm calls for (asking every decoder in
 * turn, as d2i_AutoPrivateKey does in OpenSSL 3.0, takes about twice as long). */
static EVP_PKEY *decode_private_key_info(const PKCS8_PRIV_KEY_INFO *info, const unsigned char *der,
                                         size_t der_len)
{
    EVP_PKEY *pkey = NULL;
    const ASN1_OBJECT *alg = NULL;
    char type[80];
    /* OpenSSL knows every key type by its dotted OID too. */
    if (PKCS8_pkey_get0(&alg, NULL, NULL, NULL, info) != 1 || alg == NULL ||
        OBJ_obj2txt(type, (int)sizeof(type), alg, 1) <= 0)
        return NULL;
    const unsigned char *p = der;
    size_t left = der_len;
    OSSL_DECODER_CTX *dec = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo", type,
                                                          EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dec == NULL || OSSL_DECODER_from_data(dec, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dec);
    return pkey;
}

/* Decodes a sealed private key. A PrivateKeyInfo of an EC key on a named curve with its public
 * point, or of an Ed25519/Ed448/X25519/X448 key, is read with OpenSSL's ASN.1 templates and its
 * values imported, in a fraction of a decoder's time (see open_private_key_info). Any other
 * PrivateKeyInfo (RSA, explicit curves, attributes, no public point) goes through the decoder for
 * its algorithm, and anything else (another structure, an unknown type) through
 * d2i_AutoPrivateKey. Leaves OpenSSL's error queue as it was unless every way fails. */
static EVP_PKEY *decode_private_key(const unsigned char *der, size_t der_len, OSSL_LIB_CTX *libctx)
{
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    ERR_set_mark();
    PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der_len);
    if (info != NULL && p == der + der_len)
        pkey = open_private_key_info(info, libctx);
    if (info != NULL && pkey == NULL)
        pkey = decode_private_key_info(info, der, der_len);
    PKCS8_PRIV_KEY_INFO_free(info); /* clears the private key it copied */
    ERR_pop_to_mark();
    if (pkey == NULL) {
        p = der;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long)der_len);
    }
    return pkey;
}

EVP_PKEY *ck_unseal_private_key(const ck_master_key *key, const char *aad, const uint8_t *sealed,
                                size_t sealed_len, ck_error *err)
{
    return ck_unseal_private_key_ex(key, aad, sealed, sealed_len, NULL, err);
}

EVP_PKEY *ck_unseal_private_key_ex(const ck_master_key *key, const char *aad, const uint8_t *sealed,
                                   size_t sealed_len, OSSL_LIB_CTX *libctx, ck_error *err)
{
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_PKEY *pkey = NULL;
    if (ck_unseal(key, aad, sealed, sealed_len, &der, &der_len, err) != 0)
        return NULL;
    if (der_len <= LONG_MAX)
        pkey = decode_private_key(der, der_len, libctx);
    if (pkey == NULL)
        ck_error_openssl(err, 500, "unseal_failed",
                         "a sealed private key opened but does not hold a valid key");
    OPENSSL_clear_free(der, der_len);
    return pkey;
}
