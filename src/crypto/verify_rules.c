/* verify_rules.c — what OpenSSL 3.0 does not check: RFC 5280 details and the CA/Browser Forum
 * Baseline Requirements (BR) for TLS server certificates. Where the two disagree (a leaf without
 * EKU, a CA certificate as the leaf, non-critical name constraints) the BR win: certkeep manages
 * Web PKI server certificates. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "crypto/verify_rules.h"

#define CK_SERIAL_MAX_OCTETS 20
#define CK_RSA_MIN_BITS      2048
#define CK_EC_MIN_BITS       256

struct rules {
    const struct ck_verify_request *req;
    STACK_OF(X509) * chain;
    ck_strv *reasons;
    STACK_OF(X509) * blamed;
    bool broken;
};

static void broke(struct rules *r, int depth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a broken rule; a CA certificate that breaks one is blamed so that another path, if
 * there is one, may avoid it. */
static void broke(struct rules *r, int depth, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    X509 *cert = depth >= 0 ? sk_X509_value(r->chain, depth) : NULL;
    ck_verify_add_reason(r->reasons, depth, cert, what);
    if (depth > 0)
        sk_X509_push(r->blamed, cert);
    r->broken = true;
}

static bool self_issued(X509 *cert)
{
    return X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
}

/* -1 when the extension is absent, else whether it is marked critical. */
static int ext_critical(X509 *cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    return idx < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(cert, idx));
}

/* Trust anchors are configuration, not issued certificates: a root with serial 0 (there are such
 * roots in browsers' stores) stays usable. A leaf is always checked. */
static void check_version_and_serial(struct rules *r, int depth, X509 *cert, bool anchor)
{
    if (X509_get_version(cert) != X509_VERSION_3)
        broke(r, depth, "is not an X.509 version 3 certificate");
    if (anchor && depth > 0)
        return;
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    if (bn == NULL || BN_is_negative(bn) || BN_is_zero(bn))
        broke(r, depth, "has a serial number that is not a positive integer");
    /* DER content octets: the magnitude plus a leading zero when its top bit is set. */
    else if (BN_num_bytes(bn) + (BN_num_bits(bn) % 8 == 0) > CK_SERIAL_MAX_OCTETS)
        broke(r, depth, "has a serial number longer than 20 octets");
    BN_free(bn);
}

static void check_key(struct rules *r, int depth, X509 *cert)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    if (key == NULL) {
        broke(r, depth, "has a public key that cannot be read");
        return;
    }
    int bits = EVP_PKEY_get_bits(key);
    char group[64] = "";
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        if (bits < CK_RSA_MIN_BITS &&
            ck_verify_caller_reports(r->req, CK_VERIFY_SKIP_WEAK_KEY, cert))
            break;
        if (bits < CK_RSA_MIN_BITS || bits % 8 != 0)
            broke(r, depth, "has an RSA key of %d bits (at least 2048, a multiple of 8)", bits);
        break;
    case EVP_PKEY_EC:
        if (bits < CK_EC_MIN_BITS &&
            ck_verify_caller_reports(r->req, CK_VERIFY_SKIP_WEAK_KEY, cert))
            break;
        if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
             strcmp(group, "secp521r1") != 0))
            broke(r, depth, "has an EC key on a curve other than P-256, P-384 or P-521");
        break;
    default:
        broke(r, depth, "has a %s key; only RSA and ECDSA keys are allowed",
              OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
    }
}

/* RFC 5280 4.2.1.1: every issued certificate names its issuer's key. A trust anchor needs no
 * AKI, but a self-signed one that carries an AKI anyway must point at its own key only. */
static void check_aki(struct rules *r, int depth, X509 *cert, bool anchor)
{
    int crit = 0;
    AUTHORITY_KEYID *aki = X509_get_ext_d2i(cert, NID_authority_key_identifier, &crit, NULL);
    if (aki == NULL && crit != -1) {
        broke(r, depth, "has an unreadable authority key identifier");
        return;
    }
    bool self = anchor && self_issued(cert);
    if (aki == NULL) {
        if (!anchor)
            broke(r, depth, "lacks an authority key identifier");
    } else if (aki->keyid == NULL) {
        broke(r, depth, "has an authority key identifier without keyIdentifier");
    } else if (self) {
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
        if (aki->issuer != NULL || aki->serial != NULL)
            broke(r, depth,
                  "is a root whose authority key identifier has more than a "
                  "keyIdentifier");
        else if (ski == NULL || ASN1_OCTET_STRING_cmp(ski, aki->keyid) != 0)
            broke(r, depth, "is a root whose authority key identifier is not its own key");
    }
    AUTHORITY_KEYID_free(aki);
}

static void check_aia(struct rules *r, int depth, X509 *cert)
{
    int crit = 0;
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(cert, NID_info_access, &crit, NULL);
    if (crit == -1)
        return;
    if (aia == NULL || sk_ACCESS_DESCRIPTION_num(aia) == 0)
        broke(r, depth, "has a malformed or empty authority information access extension");
    else if (crit == 1)
        broke(r, depth, "marks authority information access critical");
    AUTHORITY_INFO_ACCESS_free(aia);
}

/* BR 7.1.2.5.2 and RFC 5280 4.2.1.10: constraints are non-empty, and a dNSName constraint is a
 * host name, never ".example.com". */
static void check_name_constraints(struct rules *r, int depth, X509 *cert)
{
    int crit = 0;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(cert, NID_name_constraints, &crit, NULL);
    if (crit == -1)
        return;
    if (depth == 0) {
        broke(r, depth, "is an end-entity certificate with name constraints");
    } else if (nc == NULL) {
        broke(r, depth, "has malformed name constraints");
    } else if (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0 &&
               sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0) {
        broke(r, depth, "has name constraints with neither permitted nor excluded subtrees");
    } else {
        for (int pass = 0; pass < 2; pass++) {
            STACK_OF(GENERAL_SUBTREE) *trees =
                pass == 0 ? nc->permittedSubtrees : nc->excludedSubtrees;
            for (int i = 0; i < sk_GENERAL_SUBTREE_num(trees); i++) {
                GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(trees, i)->base;
                if (base->type == GEN_DNS && ASN1_STRING_length(base->d.dNSName) > 0 &&
                    ASN1_STRING_get0_data(base->d.dNSName)[0] == '.')
                    broke(r, depth, "has a dNSName constraint with a leading period");
            }
        }
    }
    NAME_CONSTRAINTS_free(nc);
}

/* BR 7.1.2.1.2 and friends: what a CA certificate may carry. */
static void check_ca_extensions(struct rules *r, int depth, X509 *cert, bool anchor)
{
    if (ext_critical(cert, NID_policy_constraints) == 0)
        broke(r, depth, "has non-critical policy constraints");
    if (anchor && self_issued(cert) && ext_critical(cert, NID_ext_key_usage) >= 0 &&
        (r->req->skip & CK_VERIFY_SKIP_ROOT_EKU) == 0)
        broke(r, depth, "is a root with an extended key usage extension");
}

static void check_cert(struct rules *r, int depth, X509 *cert, bool anchor)
{
    check_version_and_serial(r, depth, cert, anchor);
    check_key(r, depth, cert);
    check_aki(r, depth, cert, anchor);
    check_aia(r, depth, cert);
    check_name_constraints(r, depth, cert);
    if (depth > 0)
        check_ca_extensions(r, depth, cert, anchor);
}

/* ---- the leaf ---- */

static void check_leaf_eku(struct rules *r, X509 *leaf)
{
    int crit = 0;
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, NULL);
    bool reported = ck_verify_caller_reports(r->req, CK_VERIFY_SKIP_LEAF_SERVER_AUTH, leaf);
    if (eku == NULL && crit == -1 && reported)
        return;
    if (eku == NULL) {
        broke(r, 0,
              crit == -1 ? "has no extended key usage (serverAuth is required)"
                         : "has a malformed extended key usage extension");
        return;
    }
    bool server_auth = false, any = false;
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
        int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
        server_auth |= nid == NID_server_auth;
        any |= nid == NID_anyExtendedKeyUsage;
    }
    if (crit == 1)
        broke(r, 0, "marks extended key usage critical");
    if (any)
        broke(r, 0, "has anyExtendedKeyUsage, which server certificates must not");
    if (!server_auth && !reported)
        broke(r, 0, "has no serverAuth extended key usage");
    EXTENDED_KEY_USAGE_free(eku);
}

static bool is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Why a dNSName is not a preferred-syntax host name (RFC 5280 4.2.1.6, BR 7.1.2.7.12), or
 * NULL. Single-label names ("localhost") are syntactically fine; a wildcard is the whole
 * leftmost label and needs two labels after it; the last label is not all digits. */
static const char *dns_name_problem(const unsigned char *name, size_t len)
{
    if (len == 0 || len > 253)
        return "empty or longer than 253 characters";
    size_t labels = 0;
    bool wildcard = false, all_digits = true;
    for (size_t start = 0; start <= len; labels++) {
        const unsigned char *end = memchr(name + start, '.', len - start);
        size_t label_len = (end != NULL ? (size_t)(end - name) : len) - start;
        const unsigned char *label = name + start;
        if (label_len == 1 && label[0] == '*' && start == 0) {
            wildcard = true;
        } else {
            if (label_len == 0 || label_len > 63)
                return "a label is empty or longer than 63 characters";
            if (label[0] == '-' || label[label_len - 1] == '-')
                return "a label starts or ends with a hyphen";
            all_digits = true;
            for (size_t i = 0; i < label_len; i++) {
                if (!is_ldh(label[i]))
                    return "a label holds a character other than letters, digits and hyphens";
                all_digits &= label[i] >= '0' && label[i] <= '9';
            }
        }
        start += label_len + 1;
    }
    if (all_digits)
        return "the last label is all digits (an IP address belongs in an iPAddress entry)";
    if (wildcard && labels < 3)
        return "the wildcard covers a whole top-level domain";
    return NULL;
}

static void check_dns_san(struct rules *r, const ASN1_IA5STRING *name)
{
    const char *problem =
        dns_name_problem(ASN1_STRING_get0_data(name), (size_t)ASN1_STRING_length(name));
    if (problem != NULL)
        broke(r, 0, "has an invalid dNSName %.*s: %s",
              ASN1_STRING_length(name) > 80 ? 80 : ASN1_STRING_length(name),
              ASN1_STRING_get0_data(name), problem);
}

/* Why a CN breaks BR 7.1.4.3, or NULL. The BR want the CN to be a copy of a SAN entry; since
 * certkeep never matches host names against the CN, it enforces the parts that show a CN was
 * written by hand: non-ASCII text, a dNSName in other letter case, an IP address not in its
 * canonical form (RFC 3986 dotted quad, RFC 5952). */
static const char *cn_problem(const char *cn, size_t len, GENERAL_NAMES *sans)
{
    unsigned char addr[16];
    char canonical[INET6_ADDRSTRLEN] = "";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)cn[i] >= 0x80 || cn[i] == '\0')
            return "has a common name that is not ASCII (not a copy of a dNSName)";
    struct in_addr v4;
    if ((inet_aton(cn, &v4) == 1 && inet_ntop(AF_INET, &v4, canonical, sizeof(canonical))) ||
        (inet_pton(AF_INET6, cn, addr) == 1 &&
         inet_ntop(AF_INET6, addr, canonical, sizeof(canonical)))) {
        return strcmp(canonical, cn) == 0
                   ? NULL
                   : "has an IP address common name that is not in canonical text form";
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS && (size_t)ASN1_STRING_length(gn->d.dNSName) == len &&
            strncasecmp((const char *)ASN1_STRING_get0_data(gn->d.dNSName), cn, len) == 0 &&
            memcmp(ASN1_STRING_get0_data(gn->d.dNSName), cn, len) != 0)
            return "has a common name that differs from its dNSName in letter case";
    }
    return NULL;
}

/* BR 7.1.4.3: at most one CN, written as its SAN entry is. */
static void check_leaf_cn(struct rules *r, X509 *leaf, GENERAL_NAMES *sans)
{
    X509_NAME *subject = X509_get_subject_name(leaf);
    int count = 0;
    for (int idx = -1; (idx = X509_NAME_get_index_by_NID(subject, NID_commonName, idx)) >= 0;) {
        if (++count > 1) {
            broke(r, 0, "has more than one common name");
            return;
        }
        unsigned char *cn = NULL;
        int len =
            ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
        const char *problem =
            len < 0 ? "has an unreadable common name" : cn_problem((char *)cn, (size_t)len, sans);
        if (problem != NULL)
            broke(r, 0, "%s", problem);
        OPENSSL_free(cn);
    }
}

static void check_leaf_san(struct rules *r, X509 *leaf)
{
    int crit = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    bool empty_subject = X509_NAME_entry_count(X509_get_subject_name(leaf)) == 0;
    if (sans == NULL) {
        broke(r, 0, crit == -1 ? "has no subjectAltName" : "has a malformed subjectAltName");
        return;
    }
    if (empty_subject && crit != 1)
        broke(r, 0, "has an empty subject but a non-critical subjectAltName");
    if (!empty_subject && crit == 1)
        broke(r, 0, "marks subjectAltName critical although its subject is not empty");
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS)
            check_dns_san(r, gn->d.dNSName);
    }
    check_leaf_cn(r, leaf, sans);
    GENERAL_NAMES_free(sans);
}

static void check_leaf(struct rules *r, X509 *leaf)
{
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(leaf, NID_basic_constraints, NULL, NULL);
    if (bc != NULL && bc->ca && !ck_verify_caller_reports(r->req, CK_VERIFY_SKIP_LEAF_CA, leaf))
        broke(r, 0, "is a CA certificate (basicConstraints cA=TRUE), not a server certificate");
    BASIC_CONSTRAINTS_free(bc);
    check_leaf_eku(r, leaf);
    check_leaf_san(r, leaf);
}

/* ---- the chain ---- */

/* True when the wildcard "*.rest" could match `constraint` (a single label under rest): an
 * excluded name the wildcard could stand for (CVE-2025-61727). */
static bool wildcard_covers(const char *wildcard, size_t wlen, const char *constraint, size_t clen)
{
    const char *rest = wildcard + 1; /* ".rest" */
    size_t rest_len = wlen - 1;
    if (clen <= rest_len || strncasecmp(constraint + clen - rest_len, rest, rest_len) != 0)
        return false;
    return memchr(constraint, '.', clen - rest_len) == NULL;
}

static void check_excluded_vs_wildcards(struct rules *r, int depth, X509 *ca, GENERAL_NAMES *sans)
{
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
    for (int i = 0; nc != NULL && i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++) {
        GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base;
        for (int j = 0; base->type == GEN_DNS && j < sk_GENERAL_NAME_num(sans); j++) {
            GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, j);
            if (gn->type != GEN_DNS || ASN1_STRING_length(gn->d.dNSName) < 3 ||
                memcmp(ASN1_STRING_get0_data(gn->d.dNSName), "*.", 2) != 0)
                continue;
            if (wildcard_covers((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
                                (size_t)ASN1_STRING_length(gn->d.dNSName),
                                (const char *)ASN1_STRING_get0_data(base->d.dNSName),
                                (size_t)ASN1_STRING_length(base->d.dNSName)))
                broke(r, depth, "excludes a name the leaf's wildcard SAN could match");
        }
    }
    NAME_CONSTRAINTS_free(nc);
}

static void check_wildcards_vs_constraints(struct rules *r)
{
    X509 *leaf = sk_X509_value(r->chain, 0);
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (int depth = 1; sans != NULL && depth < sk_X509_num(r->chain); depth++)
        check_excluded_vs_wildcards(r, depth, sk_X509_value(r->chain, depth), sans);
    GENERAL_NAMES_free(sans);
}

/* Self-issued intermediates (key rollover) do not count, as for pathLenConstraint. */
static void check_depth(struct rules *r)
{
    int n = sk_X509_num(r->chain), intermediates = 0;
    for (int depth = 1; depth < n - 1; depth++)
        intermediates += !self_issued(sk_X509_value(r->chain, depth));
    if (r->req->has_max_intermediates && intermediates > r->req->max_intermediates)
        broke(r, -1, "the chain has %d intermediates, more than the %d allowed", intermediates,
              r->req->max_intermediates);
}

static void check_crls(struct rules *r)
{
    for (int i = 0; i < sk_X509_CRL_num(r->req->crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(r->req->crls, i);
        if (X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1) < 0)
            broke(r, -1, "a CRL has no CRL number (RFC 5280 5.2.3)");
    }
}

int ck_verify_rules_check(const struct ck_verify_request *req, STACK_OF(X509) * chain,
                          ck_strv *reasons, STACK_OF(X509) * blamed)
{
    struct rules r = {req, chain, reasons, blamed, false};
    int n = sk_X509_num(chain);
    for (int depth = 0; depth < n; depth++)
        check_cert(&r, depth, sk_X509_value(chain, depth), depth == n - 1);
    if (n > 0) {
        check_leaf(&r, sk_X509_value(chain, 0));
        check_wildcards_vs_constraints(&r);
    }
    check_depth(&r);
    check_crls(&r);
    return r.broken ? 1 : 0;
}
