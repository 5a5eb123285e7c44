/* x509info.h — what a certificate or a CSR says, in plain fields, for inspection, pre-fill and
 * the import checks. Parsers here take untrusted input: sizes are bounded by the caller (the API
 * refuses bodies over 1 MiB) and every failure is an error, never a crash. */
#ifndef CK_CRYPTO_X509INFO_H
#define CK_CRYPTO_X509INFO_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "common/util.h"

/* Distinguished-name fields; NULL when absent. When a field occurs several times, the first. */
struct ck_dn {
    char *cn, *o, *ou, *l, *st, *c;
    char *text; /* the whole name, RFC 2253 style, for display */
};

struct ck_cert_info {
    struct ck_dn subject;
    struct ck_dn issuer;
    ck_strv dns_sans;        /* dNSName entries, as written */
    ck_strv ip_sans;         /* iPAddress entries, printed ("192.0.2.1", "2001:db8::1") */
    char key_name[32];       /* "rsa-2048", "ec-p256", "rsa-1024", ... (see ck_key_describe) */
    int key_bits;
    char sig_alg[64];        /* "sha256WithRSAEncryption", "ecdsa-with-SHA256", ... */
    char serial_hex[132];    /* lower-case hex, no separators */
    int64_t not_before, not_after;
    char sha256_fingerprint[96]; /* "AB:CD:..." upper-case, colon-separated */
    bool is_ca;
    bool self_signed;        /* subject == issuer and the signature verifies with its own key */
};

struct ck_csr_info {
    struct ck_dn subject;
    ck_strv dns_sans;
    ck_strv ip_sans;
    char key_name[32];
    int key_bits;
    char sig_alg[64];
    bool signature_valid;
};

/* Reads exactly the first certificate of PEM text (or DER when it does not look like PEM).
 * Text before the first PEM block ("Bag Attributes" and the like) is skipped; input that starts
 * with a DER SEQUENCE byte (0x30) or has no "-----BEGIN" line is read as DER. */
X509 *ck_x509_from_pem(const char *text, size_t len, ck_error *err);

int ck_cert_info_from_x509(X509 *cert, struct ck_cert_info *out, ck_error *err);
int ck_cert_info_from_pem(const char *text, size_t len, struct ck_cert_info *out, ck_error *err);
void ck_cert_info_free(struct ck_cert_info *info);

/* Parses a CSR in PEM (or DER) and checks its self-signature (signature_valid). */
int ck_csr_info_from_pem(const char *text, size_t len, struct ck_csr_info *out, ck_error *err);
void ck_csr_info_free(struct ck_csr_info *info);

/* JSON views used by the API and `--json` output. Keys: subject{cn,o,ou,l,st,c,text},
 * issuer{...}, dns_sans[], ip_sans[], key_type, key_bits, signature_algorithm, serial,
 * not_before, not_after (RFC 3339), days_left, sha256_fingerprint, is_ca, self_signed;
 * for a CSR: subject, dns_sans, ip_sans, key_type, key_bits, signature_algorithm,
 * signature_valid. */
json_t *ck_cert_info_to_json(const struct ck_cert_info *info, int64_t now);
json_t *ck_csr_info_to_json(const struct ck_csr_info *info);

/* Connects to host:port over TLS (SNI = sni, or host when sni is NULL and host is a name),
 * without verifying anything, and returns the leaf certificate the server sent plus the rest of
 * its chain (*chain may be NULL when the caller does not want it). Gives up after timeout_ms.
 * "host:port" accepts "[::1]:443". Caller frees with X509_free / sk_X509_pop_free(chain, X509_free). */
int ck_fetch_peer_certificate(const char *host_port, const char *sni, int timeout_ms,
                              X509 **leaf, STACK_OF(X509) **chain, ck_error *err);
/* The same, also giving up as soon as cancel_fd turns readable (503 "cancelled"), e.g. the read
 * end of a pipe written to at shutdown; -1 never cancels. Name resolution is not cancelled. */
int ck_fetch_peer_certificate_cancellable(const char *host_port, const char *sni, int timeout_ms,
                                          int cancel_fd, X509 **leaf, STACK_OF(X509) **chain,
                                          ck_error *err);

#endif
