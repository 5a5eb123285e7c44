#include "core/import_check.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "crypto/keys.h"
#include "crypto/verify.h"
#include "crypto/x509info.h"

#define SECONDS_PER_DAY   86400
#define EXPIRES_SOON_DAYS 30
#define LABEL_MAX         160
#define MAX_EXTRA_ROOTS   1000

enum source { FROM_BODY, FROM_CHAIN };

/* One certificate as given, in input order (body first, then chain). Duplicates stay in the
 * pool, pointing at their first occurrence, so that the warnings can say what was dropped. */
struct pooled {
    X509 *cert;
    enum source source;
    int first; /* index of the first identical certificate; itself when it is the first */
    bool is_ca;
    bool self_signed;
    bool issues_another;
};

/* Everything one check run needs; nothing here outlives ck_import_check. */
struct check {
    const struct ck_import_input *in;
    struct ck_import_result *out;
    struct ck_csr_info csr;
    struct ck_cert_info leaf_info;
    bool have_leaf_info;
    X509_REQ *req;
    EVP_PKEY *expected_key; /* borrowed: in->order_key or the CSR's key */
    struct pooled pool[CK_IMPORT_MAX_CERTS];
    int pool_len;
    int leaf; /* pool index, or -1 */
    int chain_idx[CK_IMPORT_MAX_CERTS];
    int chain_len;
    int root; /* pool index of the self-signed root the chain reached, or -1 */
    bool out_of_memory;
};

/* ---- findings ---- */

__attribute__((format(printf, 4, 0))) static void
finding_vadd(struct check *c, struct ck_findings *f, const char *code, const char *fmt, va_list ap)
{
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct ck_finding *items = realloc(f->items, cap * sizeof(*items));
        if (items == NULL) {
            c->out_of_memory = true;
            return;
        }
        f->items = items;
        f->cap = cap;
    }
    struct ck_finding *item = &f->items[f->len++];
    snprintf(item->code, sizeof(item->code), "%s", code);
    vsnprintf(item->message, sizeof(item->message), fmt, ap);
}

__attribute__((format(printf, 3, 4))) static void add_error(struct check *c, const char *code,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finding_vadd(c, &c->out->errors, code, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void add_warning(struct check *c, const char *code,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finding_vadd(c, &c->out->warnings, code, fmt, ap);
    va_end(ap);
}

static bool has_error(const struct check *c, const char *code)
{
    for (size_t i = 0; i < c->out->errors.len; i++)
        if (strcmp(c->out->errors.items[i].code, code) == 0)
            return true;
    return false;
}

/* ---- small helpers ---- */

/* Outside text in a message: printable ASCII only, so a name cannot forge lines or hide. */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

/* "CN=shop.example.com,O=Example" for messages, cut to fit. */
static void name_label(const X509_NAME *name, char *buf, size_t len)
{
    snprintf(buf, len, "(unreadable name)");
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        long n = BIO_get_mem_data(bio, &data);
        if (n >= 0)
            snprintf(buf, len, "%.*s", n > INT_MAX ? INT_MAX : (int)n, n > 0 ? data : "");
    }
    BIO_free(bio);
    ERR_clear_error();
    if (buf[0] == '\0')
        snprintf(buf, len, "(empty name)");
    sanitize(buf);
}

static void cert_label(X509 *cert, char *buf, size_t len)
{
    name_label(X509_get_subject_name(cert), buf, len);
}

static const char *or_none(const char *s)
{
    return s != NULL ? s : "(none)";
}

static bool same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool strv_contains_nocase(const ck_strv *v, const char *s)
{
    for (size_t i = 0; i < v->len; i++)
        if (strcasecmp(v->items[i], s) == 0)
            return true;
    return false;
}

static bool only_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)text[i]))
            return false;
    return true;
}

/* Linear in len: memchr finds each candidate first byte, memcmp confirms it. */
static size_t count_occurrences(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle), count = 0, i = 0;
    while (n > 0 && i + n <= len) {
        const char *hit = memchr(text + i, needle[0], len - n + 1 - i);
        if (hit == NULL)
            break;
        i = (size_t)(hit - text);
        if (memcmp(hit, needle, n) == 0) {
            count++;
            i += n;
        } else {
            i++;
        }
    }
    return count;
}

/* ---- reading the pasted text ---- */

static X509 *decode_cert_block(const char *name, const unsigned char *data, long len)
{
    const unsigned char *p = data;
    X509 *cert = NULL;
    if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0)
        cert = d2i_X509(NULL, &p, len);
    else if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0)
        cert = d2i_X509_AUX(NULL, &p, len);
    if (cert != NULL && p != data + len) { /* trailing bytes: not one clean certificate */
        X509_free(cert);
        cert = NULL;
    }
    ERR_clear_error();
    return cert;
}

static const char *block_hint(const char *name)
{
    if (strstr(name, "CERTIFICATE REQUEST") != NULL)
        return " (a CSR: paste the certificate the CA issued for it)";
    if (strstr(name, "PRIVATE KEY") != NULL)
        return " (a private key: never paste it anywhere; certkeep already holds the order's key)";
    if (strcmp(name, "PKCS7") == 0)
        return " (convert it with `openssl pkcs7 -print_certs` and paste the certificates)";
    return "";
}

static void pool_add(struct check *c, X509 *cert, enum source source)
{
    struct pooled *p = &c->pool[c->pool_len];
    p->cert = cert;
    p->source = source;
    p->first = c->pool_len;
    for (int i = 0; i < c->pool_len; i++) {
        if (X509_cmp(c->pool[i].cert, cert) == 0) {
            p->first = i;
            break;
        }
    }
    p->is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
    p->self_signed = X509_self_signed(cert, 1) == 1;
    ERR_clear_error();
    c->pool_len++;
}

static void handle_block(struct check *c, const char *name, const unsigned char *data, long len,
                         const char *field, int block, enum source source)
{
    X509 *cert = decode_cert_block(name, data, len);
    if (cert != NULL) {
        pool_add(c, cert, source);
        return;
    }
    char label[48];
    snprintf(label, sizeof(label), "%s", name);
    sanitize(label);
    if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ||
        strcmp(name, PEM_STRING_X509_TRUSTED) == 0)
        add_error(c, "not_certificate",
                  "block %d of the %s is marked %s but is not a readable X.509 certificate", block,
                  field, label);
    else
        add_error(c, "not_certificate", "block %d of the %s is a %s, not a certificate%s", block,
                  field, label, block_hint(name));
}

/* A paste without any PEM header: accept one DER certificate, refuse anything else. */
static void read_der(struct check *c, const char *text, size_t len, const char *field,
                     enum source source)
{
    const unsigned char *p = (const unsigned char *)text;
    X509 *cert = NULL;
    if ((unsigned char)text[0] == 0x30 && len <= LONG_MAX)
        cert = d2i_X509(NULL, &p, (long)len);
    ERR_clear_error();
    if (cert != NULL && p == (const unsigned char *)text + len) {
        pool_add(c, cert, source);
        return;
    }
    X509_free(cert);
    add_error(c, "not_pem",
              "the %s is not PEM: paste the text from \"-----BEGIN CERTIFICATE-----\" to "
              "\"-----END CERTIFICATE-----\"",
              field);
}

static void read_pem_blocks(struct check *c, BIO *bio, const char *field, enum source source)
{
    int blocks = 0;
    for (int block = 1; block <= CK_IMPORT_MAX_CERTS; block++) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long len = 0;
        if (!PEM_read_bio(bio, &name, &header, &data, &len)) {
            if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
                add_error(c, "not_pem",
                          "block %d of the %s is damaged PEM (bad base64 or a missing "
                          "\"-----END\" line)",
                          block, field);
            break;
        }
        blocks++;
        handle_block(c, name, data, len, field, block, source);
        OPENSSL_free(name);
        OPENSSL_free(header);
        /* The block may have been a private key pasted by mistake: wipe it. */
        OPENSSL_clear_free(data, len > 0 ? (size_t)len : 0);
    }
    ERR_clear_error();
    if (blocks == 0 && !has_error(c, "not_pem"))
        add_error(c, "not_pem",
                  "the %s is not PEM: paste the text from \"-----BEGIN CERTIFICATE-----\" to "
                  "\"-----END CERTIFICATE-----\"",
                  field);
}

static void read_certs(struct check *c, const char *text, size_t len, const char *field,
                       enum source source)
{
    if (text == NULL || only_whitespace(text, len)) {
        if (source == FROM_BODY)
            add_error(c, "not_pem", "the %s is empty: paste the certificate the CA issued", field);
        return;
    }
    if (count_occurrences(text, len, "-----BEGIN") == 0) {
        read_der(c, text, len, field, source);
        return;
    }
    BIO *bio = BIO_new_mem_buf(text, (int)len); /* len <= INT_MAX: checked by the caller */
    if (bio == NULL) {
        c->out_of_memory = true;
        return;
    }
    read_pem_blocks(c, bio, field, source);
    BIO_free(bio);
}

/* ---- choosing the leaf ---- */

static bool is_first(const struct check *c, int i)
{
    return c->pool[i].first == i;
}

static void mark_issuers(struct check *c)
{
    for (int i = 0; i < c->pool_len; i++) {
        if (!is_first(c, i))
            continue;
        for (int j = 0; j < c->pool_len && !c->pool[i].issues_another; j++)
            c->pool[i].issues_another =
                j != i && is_first(c, j) &&
                X509_check_issued(c->pool[i].cert, c->pool[j].cert) == X509_V_OK;
    }
    ERR_clear_error();
}

static bool matches_key(const struct check *c, int i)
{
    return c->expected_key != NULL &&
           ck_key_public_equal(X509_get0_pubkey(c->pool[i].cert), c->expected_key);
}

/* Certificates in the body that look like server certificates: not a CA, issuing nothing. */
static int body_leaves(const struct check *c, int *found, int max)
{
    int n = 0;
    for (int i = 0; i < c->pool_len; i++) {
        const struct pooled *p = &c->pool[i];
        if (is_first(c, i) && p->source == FROM_BODY && !p->is_ca && !p->issues_another) {
            if (n < max)
                found[n] = i;
            n++;
        }
    }
    return n;
}

static int key_matching(const struct check *c)
{
    int in_chain = -1;
    for (int i = 0; i < c->pool_len; i++) {
        if (!is_first(c, i) || !matches_key(c, i))
            continue;
        if (c->pool[i].source == FROM_BODY)
            return i;
        if (in_chain < 0)
            in_chain = i;
    }
    return in_chain;
}

static void report_multiple_leaves(struct check *c, const int *leaves, int n)
{
    char a[LABEL_MAX], b[LABEL_MAX];
    cert_label(c->pool[leaves[0]].cert, a, sizeof(a));
    cert_label(c->pool[leaves[1]].cert, b, sizeof(b));
    add_error(c, "multiple_leaves",
              "the certificate field holds %d server certificates (%s; %s%s); paste only the "
              "one issued for this order's CSR",
              n, a, b, n > 2 ? "; ..." : "");
}

static void choose_leaf(struct check *c)
{
    int leaves[2];
    c->leaf = -1;
    mark_issuers(c);
    int n = body_leaves(c, leaves, 2);
    if (n > 1)
        report_multiple_leaves(c, leaves, n);
    c->leaf = key_matching(c);
    if (c->leaf >= 0 || n > 1)
        return;
    if (n == 1) {
        c->leaf = leaves[0];
        return;
    }
    bool body_has_cert = false;
    for (int i = 0; i < c->pool_len; i++)
        body_has_cert = body_has_cert || c->pool[i].source == FROM_BODY;
    if (body_has_cert)
        add_error(c, "no_leaf",
                  "the certificate field holds only CA certificates, none for this order's key; "
                  "paste the server certificate the CA issued for the CSR");
}

/* ---- checks on the leaf ---- */

static void check_key(struct check *c, X509 *leaf)
{
    if (c->expected_key == NULL || matches_key(c, c->leaf))
        return;
    char label[LABEL_MAX];
    cert_label(leaf, label, sizeof(label));
    add_error(c, "key_mismatch",
              "the public key of certificate %s does not match this order's private key: it "
              "was not issued for the CSR of this order",
              label);
}

static void check_cn(struct check *c)
{
    const char *want = c->csr.subject.cn, *got = c->leaf_info.subject.cn;
    if (want == NULL || (got != NULL && strcasecmp(want, got) == 0))
        return;
    if (got == NULL)
        add_error(c, "cn_mismatch", "certificate has no CN; the CSR's CN is %s", want);
    else
        add_error(c, "cn_mismatch", "certificate CN %s does not match the CSR's CN %s", got, want);
}

static void check_validity(struct check *c)
{
    char when[32];
    int64_t now = c->in->now;
    if (c->leaf_info.not_before > now) {
        ck_time_format(c->leaf_info.not_before, when, sizeof(when));
        add_error(c, "not_yet_valid", "the certificate is not valid before %s", when);
    }
    if (c->leaf_info.not_after < now) {
        ck_time_format(c->leaf_info.not_after, when, sizeof(when));
        add_error(c, "expired", "the certificate expired on %s", when);
    } else if (c->leaf_info.not_after - now < (int64_t)EXPIRES_SOON_DAYS * SECONDS_PER_DAY) {
        int64_t days = (c->leaf_info.not_after - now) / SECONDS_PER_DAY;
        ck_time_format(c->leaf_info.not_after, when, sizeof(when));
        add_warning(c, "expires_soon",
                    "the certificate expires in %lld day%s (%s), less than %d days from now",
                    (long long)days, days == 1 ? "" : "s", when, EXPIRES_SOON_DAYS);
    }
}

static bool weak_digest(int mdnid)
{
    return mdnid == NID_sha1 || mdnid == NID_md5 || mdnid == NID_md2 || mdnid == NID_md4 ||
           mdnid == NID_mdc2 || mdnid == NID_md5_sha1 || mdnid == NID_ripemd160;
}

static void check_signature(struct check *c, X509 *cert, const char *role)
{
    int mdnid = NID_undef, pknid = NID_undef, secbits = -1;
    uint32_t flags = 0;
    bool weak;
    if (X509_get_signature_info(cert, &mdnid, &pknid, &secbits, &flags) == 1)
        weak = weak_digest(mdnid) || (secbits >= 0 && secbits < 112);
    else /* an algorithm OpenSSL cannot even name is no better */
        weak = true;
    ERR_clear_error();
    if (!weak)
        return;
    char label[LABEL_MAX], alg[64];
    cert_label(cert, label, sizeof(label));
    int sig_nid = X509_get_signature_nid(cert);
    const char *sn = sig_nid != NID_undef ? OBJ_nid2ln(sig_nid) : NULL;
    snprintf(alg, sizeof(alg), "%s", sn != NULL ? sn : "an unknown algorithm");
    add_error(c, "weak_signature",
              "the %s %s is signed with %s, which is too weak (SHA-1, MD5 and MD2 are refused); "
              "ask the CA to reissue it with SHA-256",
              role, label, alg);
}

static void check_key_size(struct check *c, X509 *cert, const char *role)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    char name[32];
    int bits = 0;
    ck_key_describe(key, name, &bits, NULL, NULL);
    ERR_clear_error();
    int id = key != NULL ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;
    bool weak =
        key == NULL ||
        ((id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS || id == EVP_PKEY_DSA) && bits < 2048) ||
        (id == EVP_PKEY_EC && bits < 256);
    if (!weak)
        return;
    char label[LABEL_MAX];
    cert_label(cert, label, sizeof(label));
    add_error(c, "weak_key",
              "the %s %s has a %s key, which is too weak (RSA needs at least 2048 bits, EC at "
              "least P-256)",
              role, label, key != NULL ? name : "unreadable");
}

static void check_usage(struct check *c, X509 *leaf)
{
    if (c->leaf_info.is_ca)
        add_error(c, "ca_certificate",
                  "the certificate is a CA certificate (basicConstraints CA:TRUE); a server "
                  "certificate must not be a CA");
    /* An absent EKU allows every use (RFC 5280), so it is not refused; the Baseline
     * Requirements want serverAuth stated, so the user hears of it. */
    if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0)
        add_warning(c, "no_extended_key_usage",
                    "the certificate has no extended key usage; TLS clients accept it, but "
                    "public CAs must list serverAuth");
    else if ((X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) == 0)
        add_error(c, "missing_server_auth",
                  "the certificate's extended key usage does not allow TLS servers "
                  "(serverAuth is missing)");
}

static void compare_field(struct check *c, const char *field, const char *want, const char *got)
{
    if (!same_text(want, got))
        add_warning(c, "subject_mismatch",
                    "subject field %s differs: the CSR asked for %s, the certificate has %s", field,
                    or_none(want), or_none(got));
}

static void check_subject(struct check *c)
{
    const struct ck_dn *want = &c->csr.subject, *got = &c->leaf_info.subject;
    compare_field(c, "O", want->o, got->o);
    compare_field(c, "OU", want->ou, got->ou);
    compare_field(c, "L", want->l, got->l);
    compare_field(c, "ST", want->st, got->st);
    compare_field(c, "C", want->c, got->c);
}

static void sans_missing(struct check *c, const ck_strv *want, const ck_strv *got, bool nocase)
{
    for (size_t i = 0; i < want->len; i++) {
        const char *name = want->items[i];
        bool found = nocase ? strv_contains_nocase(got, name) : ck_strv_contains(got, name);
        if (!found)
            add_warning(c, "san_missing", "the CSR asked for %s, the certificate does not cover it",
                        name);
    }
}

static bool san_requested(const struct check *c, const ck_strv *want, const char *name, bool nocase)
{
    if (!nocase)
        return ck_strv_contains(want, name);
    /* CAs copy the CN into the SANs; a CN the CSR asked for was requested. */
    return strv_contains_nocase(want, name) ||
           (c->csr.subject.cn != NULL && strcasecmp(c->csr.subject.cn, name) == 0);
}

/* The CA may add names (the bare domain next to www): each is shown, up to a bound, after which
 * they are only counted in *hidden. */
static void sans_extra(struct check *c, const ck_strv *want, const ck_strv *got, bool nocase,
                       size_t *shown, size_t *hidden)
{
    for (size_t i = 0; i < got->len; i++) {
        const char *name = got->items[i];
        if (san_requested(c, want, name, nocase))
            continue;
        if (*shown + 1 < CK_IMPORT_MAX_PER_CODE) {
            add_warning(c, "san_extra",
                        "the certificate also covers %s, which the CSR did not ask for", name);
            (*shown)++;
        } else {
            (*hidden)++;
        }
    }
}

static void check_sans(struct check *c)
{
    size_t shown = 0, hidden = 0;
    sans_missing(c, &c->csr.dns_sans, &c->leaf_info.dns_sans, true);
    sans_missing(c, &c->csr.ip_sans, &c->leaf_info.ip_sans, false);
    sans_extra(c, &c->csr.dns_sans, &c->leaf_info.dns_sans, true, &shown, &hidden);
    sans_extra(c, &c->csr.ip_sans, &c->leaf_info.ip_sans, false, &shown, &hidden);
    if (hidden > 0)
        add_warning(c, "san_extra",
                    "the certificate also covers %zu more name%s the CSR did not ask for", hidden,
                    hidden == 1 ? "" : "s");
}

static void check_leaf(struct check *c)
{
    X509 *leaf = c->pool[c->leaf].cert;
    ck_error err;
    ck_error_clear(&err);
    if (ck_cert_info_from_x509(leaf, &c->leaf_info, &err) != 0) {
        ck_cert_info_free(&c->leaf_info);
        add_error(c, "not_certificate", "the certificate cannot be read: %s", err.message);
        return;
    }
    c->have_leaf_info = true;
    check_key(c, leaf);
    check_cn(c);
    check_validity(c);
    check_signature(c, leaf, "certificate");
    check_key_size(c, leaf, "certificate");
    check_usage(c, leaf);
    check_subject(c);
    check_sans(c);
}

/* ---- ordering the chain ---- */

/* Of the unused certificates that name cur's issuer, the one whose key verifies cur's signature;
 * failing that the first by name, so that verification can say what is wrong with it. */
static int find_issuer(const struct check *c, X509 *cur, const bool *used)
{
    int by_name = -1;
    for (int i = 0; i < c->pool_len; i++) {
        if (used[i] || !is_first(c, i) || X509_check_issued(c->pool[i].cert, cur) != X509_V_OK)
            continue;
        EVP_PKEY *key = X509_get0_pubkey(c->pool[i].cert);
        if (key != NULL && X509_verify(cur, key) == 1) {
            ERR_clear_error();
            return i;
        }
        if (by_name < 0)
            by_name = i;
    }
    ERR_clear_error();
    return by_name;
}

static void build_chain(struct check *c, bool *used)
{
    X509 *cur = c->pool[c->leaf].cert;
    used[c->leaf] = true;
    c->chain_len = 0;
    c->root = -1;
    while (c->chain_len < CK_IMPORT_MAX_CERTS && !X509_self_signed(cur, 0)) {
        int next = find_issuer(c, cur, used);
        if (next < 0)
            break;
        used[next] = true;
        if (c->pool[next].self_signed) {
            c->root = next; /* trusted by the client's own store, never sent: not kept */
            break;
        }
        c->chain_idx[c->chain_len++] = next;
        cur = c->pool[next].cert;
    }
    ERR_clear_error();
}

/* Position of pool entry i in the order certkeep uses (chain, then the root), or -1. */
static int rank_of(const struct check *c, int i)
{
    for (int j = 0; j < c->chain_len; j++)
        if (c->chain_idx[j] == i)
            return j;
    return i == c->root ? c->chain_len : -1;
}

/* The chain as given (first occurrences, body then chain field) must rise one step at a time. */
static bool given_in_order(const struct check *c)
{
    int expected = 0;
    for (int i = 0; i < c->pool_len; i++) {
        int rank = is_first(c, i) ? rank_of(c, i) : -1;
        if (rank < 0)
            continue;
        if (rank != expected)
            return false;
        expected++;
    }
    return true;
}

/* Appends one item to a comma-separated list in buf, cutting rather than overflowing. */
__attribute__((format(printf, 3, 4))) static void list_add(char *buf, size_t len, const char *fmt,
                                                           ...)
{
    size_t used = strlen(buf);
    if (used > 0 && used + 2 < len) {
        memcpy(buf + used, ", ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static void report_reordered(struct check *c)
{
    char order[400] = "", label[LABEL_MAX];
    for (int j = 0; j < c->chain_len; j++) {
        cert_label(c->pool[c->chain_idx[j]].cert, label, sizeof(label));
        list_add(order, sizeof(order), "%s", label);
    }
    if (c->root >= 0) {
        cert_label(c->pool[c->root].cert, label, sizeof(label));
        list_add(order, sizeof(order), "then the root %s", label);
    }
    add_warning(c, "chain_reordered",
                "the chain was not in order from the certificate up to the root; certkeep "
                "reordered it: %s",
                order);
}

struct extras {
    int duplicates, leaf_again, roots, unrelated;
    int example_root, example_unrelated;
};

static void count_extras(const struct check *c, const bool *used, struct extras *x)
{
    memset(x, 0, sizeof(*x));
    x->example_root = x->example_unrelated = -1;
    for (int i = 0; i < c->pool_len; i++) {
        const struct pooled *p = &c->pool[i];
        bool kept = i == c->leaf;
        for (int j = 0; j < c->chain_len; j++)
            kept = kept || c->chain_idx[j] == i;
        if (kept)
            continue;
        if (p->first == c->leaf) {
            x->leaf_again++;
        } else if (!is_first(c, i)) {
            x->duplicates++;
        } else if (p->self_signed && used[i]) {
            x->roots++;
            x->example_root = i;
        } else {
            x->unrelated++;
            x->example_unrelated = i;
        }
    }
}

static void report_extras(struct check *c, const bool *used)
{
    struct extras x;
    count_extras(c, used, &x);
    char list[CK_ERROR_MSG_MAX - 64] = "", label[LABEL_MAX];
    if (x.duplicates > 0)
        list_add(list, sizeof(list), "%d duplicate%s", x.duplicates, x.duplicates > 1 ? "s" : "");
    if (x.leaf_again > 0)
        list_add(list, sizeof(list), "the certificate itself given again");
    if (x.roots > 0) {
        cert_label(c->pool[x.example_root].cert, label, sizeof(label));
        list_add(list, sizeof(list), "1 root %s (clients hold their own roots)", label);
    }
    if (x.unrelated > 0) {
        cert_label(c->pool[x.example_unrelated].cert, label, sizeof(label));
        list_add(list, sizeof(list), "%d unrelated certificate%s (%s%s)", x.unrelated,
                 x.unrelated > 1 ? "s" : "", label, x.unrelated > 1 ? ", ..." : "");
    }
    if (list[0] != '\0')
        add_warning(c, "chain_extras_removed", "certkeep removed from the chain: %s", list);
}

static void order_chain(struct check *c)
{
    bool used[CK_IMPORT_MAX_CERTS] = {false};
    build_chain(c, used);
    if (!given_in_order(c))
        report_reordered(c);
    report_extras(c, used);
    c->out->chain = sk_X509_new_null();
    if (c->out->chain == NULL) {
        c->out_of_memory = true;
        return;
    }
    for (int j = 0; j < c->chain_len; j++) {
        X509 *cert = c->pool[c->chain_idx[j]].cert;
        if (!sk_X509_push(c->out->chain, cert)) {
            c->out_of_memory = true;
            return;
        }
        X509_up_ref(cert);
    }
}

static void check_intermediates(struct check *c)
{
    for (int j = 0; j < c->chain_len; j++) {
        X509 *cert = c->pool[c->chain_idx[j]].cert;
        check_signature(c, cert, "intermediate");
        check_key_size(c, cert, "intermediate");
    }
}

/* ---- chain verification ---- */

/* What check_leaf and check_intermediates report with their own codes; the verifier leaves
 * them out so that one problem is not also an untrusted_chain. */
#define REPORTED_BY_OWN_CHECKS                                                                     \
    (CK_VERIFY_SKIP_LEAF_VALIDITY | CK_VERIFY_SKIP_LEAF_CA | CK_VERIFY_SKIP_LEAF_SERVER_AUTH |     \
     CK_VERIFY_SKIP_WEAK_KEY | CK_VERIFY_SKIP_WEAK_SIGNATURE)
/* The roots here are the system's and the tenant's own: a private root (a company CA, pebble) is
 * not held to the public root profile's "no extended key usage" rule. */
#define NOT_CHECKED_ON_ROOTS CK_VERIFY_SKIP_ROOT_EKU

static bool is_root(STACK_OF(X509) * roots, X509 *cert)
{
    for (int i = 0; i < sk_X509_num(roots); i++)
        if (X509_cmp(sk_X509_value(roots, i), cert) == 0)
            return true;
    return false;
}

/* When the path stops short of every trusted root, what the user can do about it. */
static void missing_issuer_hint(STACK_OF(X509) * path, STACK_OF(X509) * roots, char *buf,
                                size_t len)
{
    X509 *top = sk_X509_value(path, sk_X509_num(path) - 1);
    if (top == NULL || is_root(roots, top))
        return;
    char subject[LABEL_MAX], issuer[LABEL_MAX];
    cert_label(top, subject, sizeof(subject));
    name_label(X509_get_issuer_name(top), issuer, sizeof(issuer));
    snprintf(buf, len,
             "no trusted root or given intermediate is the issuer %s of %s: add the missing "
             "intermediate to the chain, or the root to the tenant's trusted roots",
             issuer, subject);
}

/* Reasons name certificates with commas in them: "; " keeps them apart. */
static void append_sentence(char *buf, size_t len, const char *text)
{
    size_t used = strlen(buf);
    if (text[0] != '\0' && used + 1 < len)
        snprintf(buf + used, len - used, "%s%s", used > 0 ? "; " : "", text);
}

static void report_untrusted(struct check *c, const struct ck_verify_result *res,
                             STACK_OF(X509) * roots)
{
    char why[2 * CK_ERROR_MSG_MAX] = "", hint[2 * LABEL_MAX + 256] = ""; /* cut to fit */
    for (size_t i = 0; i < res->reasons.len; i++)
        append_sentence(why, sizeof(why), res->reasons.items[i]);
    missing_issuer_hint(res->chain, roots, hint, sizeof(hint));
    append_sentence(why, sizeof(why), hint);
    sanitize(why);
    add_error(c, "untrusted_chain", "the chain does not verify to a trusted root: %s", why);
}

/* The same verifier as `certkeep verify` (src/crypto/verify.h), without a host name: the
 * names were compared with the CSR's above. */
static void check_trust(struct check *c)
{
    ck_error err;
    ck_error_clear(&err);
    struct ck_verify_result res = {0};
    STACK_OF(X509) *roots = X509_STORE_get1_all_certs(c->in->trust);
    if (roots == NULL) {
        c->out_of_memory = true;
        goto cleanup;
    }
    struct ck_verify_request req = {
        .leaf = c->pool[c->leaf].cert,
        .untrusted = c->out->chain,
        .roots = roots,
        .has_time = true,
        .time = c->in->now,
        .skip = REPORTED_BY_OWN_CHECKS | NOT_CHECKED_ON_ROOTS,
    };
    if (ck_verify_chain(&req, &res, &err) != 0)
        c->out_of_memory = true;
    else if (!res.valid)
        report_untrusted(c, &res, roots);
cleanup:
    ck_verify_result_free(&res);
    sk_X509_pop_free(roots, X509_free);
    ERR_clear_error();
}

/* ---- results ---- */

static char *fullchain_pem(X509 *leaf, STACK_OF(X509) * chain)
{
    char *out = NULL, *data = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, leaf) != 1)
        goto cleanup;
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1)
            goto cleanup;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0)
        goto cleanup;
    out = malloc((size_t)len + 1);
    if (out != NULL) {
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
cleanup:
    BIO_free(bio);
    ERR_clear_error();
    return out;
}

static void finish(struct check *c)
{
    if (c->leaf < 0)
        return;
    c->out->leaf = c->pool[c->leaf].cert;
    X509_up_ref(c->out->leaf);
    if (c->out->errors.len == 0) {
        c->out->fullchain_pem = fullchain_pem(c->out->leaf, c->out->chain);
        if (c->out->fullchain_pem == NULL)
            c->out_of_memory = true;
    }
}

/* ---- the whole check ---- */

static int load_csr(struct check *c, ck_error *err)
{
    const char *pem = c->in->csr_pem;
    if (ck_csr_info_from_pem(pem, strlen(pem), &c->csr, err) != 0)
        return -1;
    c->expected_key = c->in->order_key;
    if (c->expected_key != NULL)
        return 0;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    c->req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    c->expected_key = c->req ? X509_REQ_get0_pubkey(c->req) : NULL;
    if (c->expected_key == NULL)
        return ck_error_openssl(err, 400, "invalid_csr",
                                "the order's CSR has no readable public key");
    return 0;
}

static bool too_many_blocks(struct check *c)
{
    const struct ck_import_input *in = c->in;
    size_t n = count_occurrences(in->cert_pem, in->cert_len, "-----BEGIN");
    if (in->chain_pem != NULL)
        n += count_occurrences(in->chain_pem, in->chain_len, "-----BEGIN");
    if (n <= CK_IMPORT_MAX_CERTS)
        return false;
    add_error(c, "too_many_certificates",
              "the certificate and chain hold %zu PEM blocks; at most %d certificates (the "
              "certificate and its intermediates) are accepted",
              n, CK_IMPORT_MAX_CERTS);
    return true;
}

static int check_arguments(const struct ck_import_input *in, ck_error *err)
{
    if (in == NULL || in->csr_pem == NULL || in->trust == NULL)
        return ck_error_set(err, 500, "internal", "import check called without CSR or trust");
    if ((in->cert_pem == NULL && in->cert_len > 0) || in->cert_len > INT_MAX ||
        (in->chain_pem == NULL && in->chain_len > 0) || in->chain_len > INT_MAX)
        return ck_error_set(err, 413, "too_large", "the certificate or chain is too large");
    return 0;
}

static void run_checks(struct check *c)
{
    if (too_many_blocks(c))
        return;
    read_certs(c, c->in->cert_pem, c->in->cert_len, "certificate", FROM_BODY);
    read_certs(c, c->in->chain_pem, c->in->chain_len, "chain", FROM_CHAIN);
    choose_leaf(c);
    if (c->leaf < 0)
        return;
    check_leaf(c);
    order_chain(c);
    if (c->out_of_memory)
        return;
    check_intermediates(c);
    check_trust(c);
    finish(c);
}

int ck_import_check(const struct ck_import_input *in, struct ck_import_result *out, ck_error *err)
{
    int rc = -1;
    struct check c;
    memset(&c, 0, sizeof(c));
    c.in = in;
    c.out = out;
    c.leaf = -1;
    c.root = -1;
    if (out == NULL)
        return ck_error_set(err, 500, "internal", "import check called without a result");
    if (check_arguments(in, err) != 0)
        return -1;
    if (load_csr(&c, err) != 0)
        goto cleanup;
    run_checks(&c);
    if (c.out_of_memory) {
        ck_error_set(err, 500, "out_of_memory", "out of memory while checking the certificate");
        goto cleanup;
    }
    rc = 0;
cleanup:
    for (int i = 0; i < c.pool_len; i++)
        X509_free(c.pool[i].cert);
    if (c.have_leaf_info)
        ck_cert_info_free(&c.leaf_info);
    ck_csr_info_free(&c.csr);
    X509_REQ_free(c.req);
    ERR_clear_error();
    return rc;
}

void ck_import_result_free(struct ck_import_result *r)
{
    if (r == NULL)
        return;
    free(r->errors.items);
    free(r->warnings.items);
    X509_free(r->leaf);
    sk_X509_pop_free(r->chain, X509_free);
    free(r->fullchain_pem);
    memset(r, 0, sizeof(*r));
}

json_t *ck_findings_to_json(const struct ck_findings *f)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < f->len; i++) {
        json_t *item =
            json_pack("{s:s, s:s}", "code", f->items[i].code, "message", f->items[i].message);
        if (item == NULL || json_array_append_new(array, item) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

json_t *ck_import_result_to_json(const struct ck_import_result *r)
{
    json_t *errors = ck_findings_to_json(&r->errors);
    json_t *warnings = ck_findings_to_json(&r->warnings);
    if (errors == NULL || warnings == NULL) {
        json_decref(errors);
        json_decref(warnings);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "errors", errors, "warnings", warnings);
}

static int add_roots(X509_STORE *store, const char *pem, ck_error *err)
{
    int rc = -1;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading trusted roots");
    for (int block = 1; block <= MAX_EXTRA_ROOTS; block++) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long len = 0;
        if (!PEM_read_bio(bio, &name, &header, &data, &len)) {
            if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
                rc = 0;
            else
                ck_error_set(err, 400, "invalid_roots",
                             "block %d of the trusted roots is "
                             "damaged PEM",
                             block);
            break;
        }
        X509 *cert = decode_cert_block(name, data, len);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, len > 0 ? (size_t)len : 0);
        int added = cert != NULL && X509_STORE_add_cert(store, cert) == 1;
        X509_free(cert);
        if (!added) {
            ck_error_set(err, 400, "invalid_roots",
                         "block %d of the trusted roots is not a certificate", block);
            break;
        }
    }
    ERR_clear_error();
    BIO_free(bio);
    return rc;
}

X509_STORE *ck_trust_store_with(const STACK_OF(X509) * system_roots, const char *extra_roots_pem,
                                ck_error *err)
{
    X509_STORE *store = X509_STORE_new(), *result = NULL;
    if (store == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory building the trusted roots");
        goto cleanup;
    }
    for (int i = 0; i < sk_X509_num(system_roots); i++)
        X509_STORE_add_cert(store, sk_X509_value(system_roots, i)); /* a duplicate is no error */
    ERR_clear_error();
    if (extra_roots_pem != NULL && extra_roots_pem[0] != '\0' &&
        add_roots(store, extra_roots_pem, err) != 0)
        goto cleanup;
    result = store;
    store = NULL;
cleanup:
    X509_STORE_free(store);
    return result;
}

X509_STORE *ck_trust_store_new(const char *extra_roots_pem, ck_error *err)
{
    STACK_OF(X509) *system = NULL;
    if (ck_verify_load_system_roots(&system, err) != 0)
        return NULL;
    X509_STORE *store = ck_trust_store_with(system, extra_roots_pem, err);
    sk_X509_pop_free(system, X509_free);
    return store;
}
