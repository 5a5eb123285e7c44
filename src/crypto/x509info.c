#include "crypto/x509info.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "crypto/keys.h"

/* ---- reading PEM or DER ---- */

/* Never prompt: an "encrypted" certificate block in untrusted input must not reach a terminal. */
static int refuse_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

/* PEM unless the input starts like DER (a SEQUENCE) or has no PEM header at all. */
static bool looks_like_pem(const char *text, size_t len)
{
    static const char header[] = "-----BEGIN";
    const size_t header_len = sizeof(header) - 1;
    if (len == 0 || (unsigned char)text[0] == 0x30)
        return false;
    for (size_t i = 0; i + header_len <= len; i++)
        if (text[i] == '-' && memcmp(text + i, header, header_len) == 0)
            return true;
    return false;
}

X509 *ck_x509_from_pem(const char *text, size_t len, ck_error *err)
{
    X509 *cert = NULL;
    if (text == NULL || len == 0 || len > INT_MAX) {
        ck_error_set(err, 400, "invalid_certificate", "the certificate is empty or too large");
        return NULL;
    }
    if (looks_like_pem(text, len)) {
        BIO *bio = BIO_new_mem_buf(text, (int)len);
        if (bio != NULL)
            cert = PEM_read_bio_X509(bio, NULL, refuse_password, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = (const unsigned char *)text;
        cert = d2i_X509(NULL, &p, (long)len);
    }
    if (cert == NULL)
        ck_error_openssl(err, 400, "invalid_certificate",
                         "the input is not a certificate in PEM (\"-----BEGIN CERTIFICATE-----\") "
                         "or DER form");
    return cert;
}

static X509_REQ *csr_from_text(const char *text, size_t len, ck_error *err)
{
    X509_REQ *req = NULL;
    if (text == NULL || len == 0 || len > INT_MAX) {
        ck_error_set(err, 400, "invalid_csr", "the CSR is empty or too large");
        return NULL;
    }
    if (looks_like_pem(text, len)) {
        BIO *bio = BIO_new_mem_buf(text, (int)len);
        if (bio != NULL)
            req = PEM_read_bio_X509_REQ(bio, NULL, refuse_password, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = (const unsigned char *)text;
        req = d2i_X509_REQ(NULL, &p, (long)len);
    }
    if (req == NULL)
        ck_error_openssl(err, 400, "invalid_csr",
                         "the input is not a CSR in PEM (\"-----BEGIN CERTIFICATE REQUEST-----\") "
                         "or DER form");
    return req;
}

/* ---- fields ---- */

/* A copy of raw bytes with NULs and other control characters shown as '?', so that an embedded
 * NUL cannot make "good.example\0.evil.example" display as "good.example". */
static char *printable_copy(const unsigned char *data, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = (data[i] < 0x20 || data[i] == 0x7f) ? '?' : (char)data[i];
    out[len] = '\0';
    return out;
}

static char *asn1_string_text(const ASN1_STRING *s)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) {
        ERR_clear_error();
        return printable_copy(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    }
    char *out = printable_copy(utf8, (size_t)n);
    OPENSSL_free(utf8);
    return out;
}

static char *name_field(const X509_NAME *name, int nid)
{
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0)
        return NULL;
    X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, idx);
    ASN1_STRING *value = entry ? X509_NAME_ENTRY_get_data(entry) : NULL;
    return value ? asn1_string_text(value) : NULL;
}

static char *name_text(const X509_NAME *name)
{
    char *text = NULL;
    char *data = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return NULL;
    /* RFC 2253 with UTF-8 kept as is: this is for people to read. */
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        long len = BIO_get_mem_data(bio, &data);
        text =
            printable_copy((const unsigned char *)(len > 0 ? data : ""), len > 0 ? (size_t)len : 0);
    }
    ERR_clear_error();
    BIO_free(bio);
    return text;
}

static void dn_free(struct ck_dn *dn)
{
    free(dn->cn);
    free(dn->o);
    free(dn->ou);
    free(dn->l);
    free(dn->st);
    free(dn->c);
    free(dn->text);
    memset(dn, 0, sizeof(*dn));
}

static int dn_fill(const X509_NAME *name, struct ck_dn *dn, ck_error *err)
{
    if (name == NULL)
        return ck_error_set(err, 400, "invalid_certificate", "the name is missing");
    dn->cn = name_field(name, NID_commonName);
    dn->o = name_field(name, NID_organizationName);
    dn->ou = name_field(name, NID_organizationalUnitName);
    dn->l = name_field(name, NID_localityName);
    dn->st = name_field(name, NID_stateOrProvinceName);
    dn->c = name_field(name, NID_countryName);
    dn->text = name_text(name);
    if (dn->text == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading a name");
    return 0;
}

static int push_ip(ck_strv *ips, const ASN1_OCTET_STRING *ip)
{
    char buf[INET6_ADDRSTRLEN];
    const unsigned char *data = ASN1_STRING_get0_data(ip);
    int len = ASN1_STRING_length(ip);
    if (len == 4 && inet_ntop(AF_INET, data, buf, sizeof(buf)) != NULL)
        return ck_strv_push(ips, buf);
    if (len == 16 && inet_ntop(AF_INET6, data, buf, sizeof(buf)) != NULL)
        return ck_strv_push(ips, buf);
    /* Not an address (a name constraint mask, or garbage): show that, rather than hide it. */
    return ck_strv_push(ips, "invalid");
}

static int sans_fill(const GENERAL_NAMES *names, ck_strv *dns, ck_strv *ips, ck_error *err)
{
    int count = sk_GENERAL_NAME_num(names);
    for (int i = 0; i < count; i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(names, i);
        int rc = 0;
        if (gen->type == GEN_DNS) {
            const ASN1_IA5STRING *s = gen->d.dNSName;
            char *text = printable_copy(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
            rc = text ? ck_strv_push(dns, text) : -1;
            free(text);
        } else if (gen->type == GEN_IPADD) {
            rc = push_ip(ips, gen->d.iPAddress);
        }
        if (rc != 0)
            return ck_error_set(err, 500, "out_of_memory", "out of memory reading names");
    }
    return 0;
}

static void signature_name(const X509_ALGOR *alg, char *buf, size_t len)
{
    const ASN1_OBJECT *oid = NULL;
    snprintf(buf, len, "unknown");
    if (alg == NULL)
        return;
    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    if (oid == NULL || len > INT_MAX || OBJ_obj2txt(buf, (int)len, oid, 0) <= 0)
        snprintf(buf, len, "unknown");
}

static void key_fill(EVP_PKEY *key, char name[32], int *bits)
{
    if (key == NULL) {
        ERR_clear_error();
        snprintf(name, 32, "unknown");
        *bits = 0;
        return;
    }
    ck_key_describe(key, name, bits, NULL, NULL);
}

static void serial_fill(const ASN1_INTEGER *serial, char *out, size_t out_len)
{
    snprintf(out, out_len, "unknown");
    BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex != NULL) {
        /* Real serials are at most 20 bytes; a longer one is cut rather than overflow. */
        snprintf(out, out_len, "%s", hex);
        ck_ascii_lower(out);
    }
    ERR_clear_error();
    OPENSSL_free(hex);
    BN_free(bn);
}

static int time_fill(const ASN1_TIME *t, int64_t *out, ck_error *err)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return ck_error_openssl(err, 400, "invalid_certificate",
                                "the certificate has an invalid validity date");
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int fingerprint_fill(X509 *cert, char *out, size_t out_len, ck_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1 || md_len * 3 > out_len)
        return ck_error_openssl(err, 400, "invalid_certificate",
                                "cannot compute the certificate's fingerprint");
    static const char digits[] = "0123456789ABCDEF";
    for (unsigned int i = 0; i < md_len; i++) {
        out[3 * i] = digits[md[i] >> 4];
        out[3 * i + 1] = digits[md[i] & 15];
        out[3 * i + 2] = ':';
    }
    out[md_len ? 3 * md_len - 1 : 0] = '\0';
    return 0;
}

static bool cert_is_ca(X509 *cert)
{
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, NULL, NULL);
    bool ca = bc != NULL && bc->ca;
    BASIC_CONSTRAINTS_free(bc);
    ERR_clear_error();
    return ca;
}

static bool cert_is_self_signed(X509 *cert)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    bool self = key != NULL &&
                X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 &&
                X509_verify(cert, key) == 1;
    ERR_clear_error();
    return self;
}

static int cert_sans_fill(X509 *cert, struct ck_cert_info *out, ck_error *err)
{
    int crit = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    ERR_clear_error();
    if (names == NULL)
        return 0;
    int rc = sans_fill(names, &out->dns_sans, &out->ip_sans, err);
    GENERAL_NAMES_free(names);
    return rc;
}

int ck_cert_info_from_x509(X509 *cert, struct ck_cert_info *out, ck_error *err)
{
    memset(out, 0, sizeof(*out));
    if (cert == NULL)
        return ck_error_set(err, 400, "invalid_certificate", "no certificate");
    const X509_ALGOR *alg = NULL;
    X509_get0_signature(NULL, &alg, cert);
    if (dn_fill(X509_get_subject_name(cert), &out->subject, err) != 0 ||
        dn_fill(X509_get_issuer_name(cert), &out->issuer, err) != 0 ||
        cert_sans_fill(cert, out, err) != 0 ||
        time_fill(X509_get0_notBefore(cert), &out->not_before, err) != 0 ||
        time_fill(X509_get0_notAfter(cert), &out->not_after, err) != 0 ||
        fingerprint_fill(cert, out->sha256_fingerprint, sizeof(out->sha256_fingerprint), err) !=
            0) {
        ck_cert_info_free(out);
        return -1;
    }
    key_fill(X509_get0_pubkey(cert), out->key_name, &out->key_bits);
    signature_name(alg, out->sig_alg, sizeof(out->sig_alg));
    serial_fill(X509_get0_serialNumber(cert), out->serial_hex, sizeof(out->serial_hex));
    out->is_ca = cert_is_ca(cert);
    out->self_signed = cert_is_self_signed(cert);
    return 0;
}

int ck_cert_info_from_pem(const char *text, size_t len, struct ck_cert_info *out, ck_error *err)
{
    memset(out, 0, sizeof(*out));
    X509 *cert = ck_x509_from_pem(text, len, err);
    if (cert == NULL)
        return -1;
    int rc = ck_cert_info_from_x509(cert, out, err);
    X509_free(cert);
    return rc;
}

void ck_cert_info_free(struct ck_cert_info *info)
{
    if (info == NULL)
        return;
    dn_free(&info->subject);
    dn_free(&info->issuer);
    ck_strv_free(&info->dns_sans);
    ck_strv_free(&info->ip_sans);
}

static int csr_sans_fill(X509_REQ *req, struct ck_csr_info *out, ck_error *err)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *names = NULL;
    if (exts != NULL)
        names = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    int rc = names ? sans_fill(names, &out->dns_sans, &out->ip_sans, err) : 0;
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc;
}

int ck_csr_info_from_pem(const char *text, size_t len, struct ck_csr_info *out, ck_error *err)
{
    memset(out, 0, sizeof(*out));
    X509_REQ *req = csr_from_text(text, len, err);
    if (req == NULL)
        return -1;
    int rc = -1;
    if (dn_fill(X509_REQ_get_subject_name(req), &out->subject, err) != 0 ||
        csr_sans_fill(req, out, err) != 0) {
        ck_csr_info_free(out);
        goto cleanup;
    }
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    key_fill(key, out->key_name, &out->key_bits);
    const X509_ALGOR *alg = NULL;
    X509_REQ_get0_signature(req, NULL, &alg);
    signature_name(alg, out->sig_alg, sizeof(out->sig_alg));
    out->signature_valid = key != NULL && X509_REQ_verify(req, key) == 1;
    ERR_clear_error();
    rc = 0;
cleanup:
    X509_REQ_free(req);
    return rc;
}

void ck_csr_info_free(struct ck_csr_info *info)
{
    if (info == NULL)
        return;
    dn_free(&info->subject);
    ck_strv_free(&info->dns_sans);
    ck_strv_free(&info->ip_sans);
}

/* ---- JSON ---- */

/* Certificates may carry bytes that are not UTF-8; JSON must not, so those show as '?'. */
static json_t *json_text(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *value = json_string(s);
    if (value != NULL)
        return value;
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    value = json_string(copy);
    free(copy);
    return value;
}

static json_t *json_strv(const ck_strv *v)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < v->len; i++)
        json_array_append_new(array, json_text(v->items[i]));
    return array;
}

static json_t *json_dn(const struct ck_dn *dn)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "cn", json_text(dn->cn), "o",
                     json_text(dn->o), "ou", json_text(dn->ou), "l", json_text(dn->l), "st",
                     json_text(dn->st), "c", json_text(dn->c), "text", json_text(dn->text));
}

static json_t *json_time(int64_t t)
{
    char buf[40];
    ck_time_format(t, buf, sizeof(buf));
    return json_string(buf);
}

static int64_t days_between(int64_t from, int64_t to)
{
    int64_t diff = to - from;
    int64_t days = diff / 86400;
    if (diff % 86400 != 0 && diff < 0)
        days--;
    return days;
}

json_t *ck_cert_info_to_json(const struct ck_cert_info *info, int64_t now)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:I, s:o, s:b, s:b}",
                     "subject", json_dn(&info->subject), "issuer", json_dn(&info->issuer),
                     "dns_sans", json_strv(&info->dns_sans), "ip_sans", json_strv(&info->ip_sans),
                     "key_type", json_text(info->key_name), "key_bits", info->key_bits,
                     "signature_algorithm", json_text(info->sig_alg), "serial",
                     json_text(info->serial_hex), "not_before", json_time(info->not_before),
                     "not_after", json_time(info->not_after), "days_left",
                     (json_int_t)days_between(now, info->not_after), "sha256_fingerprint",
                     json_text(info->sha256_fingerprint), "is_ca", info->is_ca, "self_signed",
                     info->self_signed);
}

json_t *ck_csr_info_to_json(const struct ck_csr_info *info)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:o, s:b}", "subject", json_dn(&info->subject),
                     "dns_sans", json_strv(&info->dns_sans), "ip_sans", json_strv(&info->ip_sans),
                     "key_type", json_text(info->key_name), "key_bits", info->key_bits,
                     "signature_algorithm", json_text(info->sig_alg), "signature_valid",
                     info->signature_valid);
}

/* ---- fetching a live certificate ---- */

#define FETCH_HOST_MAX      256
#define FETCH_ADDRESSES_MAX 8

struct fetch_target {
    char host[FETCH_HOST_MAX];
    char port[8];
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - monotonic_ms();
    return left <= 0 ? 0 : (int)(left > INT_MAX ? INT_MAX : left);
}

/* "host:port", "[v6]:port"; the port defaults to 443. */
static int target_parse(const char *host_port, struct fetch_target *t, ck_error *err)
{
    const char *host = host_port, *port = "443";
    size_t host_len = 0;
    if (host_port == NULL || host_port[0] == '\0')
        return ck_error_set(err, 400, "invalid_field", "a host to connect to is required");
    if (host_port[0] == '[') {
        const char *end = strchr(host_port, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return ck_error_set(err, 400, "invalid_field",
                                "\"%.80s\" is not HOST:PORT or [IPv6]:PORT", host_port);
        host = host_port + 1;
        host_len = (size_t)(end - host);
        if (end[1] == ':')
            port = end + 2;
    } else {
        const char *colon = strchr(host_port, ':');
        bool one_colon = colon != NULL && strchr(colon + 1, ':') == NULL;
        host_len = one_colon ? (size_t)(colon - host_port) : strlen(host_port);
        if (one_colon)
            port = colon + 1;
    }
    char *end = NULL;
    long port_num = strtol(port, &end, 10);
    if (host_len == 0 || host_len >= sizeof(t->host) || *port == '\0' || *end != '\0' ||
        port_num < 1 || port_num > 65535)
        return ck_error_set(err, 400, "invalid_field",
                            "\"%.80s\" is not HOST:PORT (port 1-65535) or [IPv6]:PORT", host_port);
    memcpy(t->host, host, host_len);
    t->host[host_len] = '\0';
    snprintf(t->port, sizeof(t->port), "%ld", port_num);
    return 0;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* When a fetch gives up: at its deadline, or as soon as cancel_fd (-1: never) turns readable. */
struct fetch_limit {
    int64_t deadline;
    int cancel_fd;
};

/* Waits for events on fd: 1 ready, 0 the deadline passed, -1 poll failed (errno), -2 cancelled. */
static int wait_for(int fd, short events, const struct fetch_limit *lim)
{
    /* poll skips an entry whose descriptor is negative: no cancel_fd, no cancelling. */
    struct pollfd pfd[2] = {{.fd = fd, .events = events}, {.fd = lim->cancel_fd, .events = POLLIN}};
    for (;;) {
        int left = remaining_ms(lim->deadline);
        int n = left > 0 ? poll(pfd, 2, left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n;
        return pfd[1].revents != 0 ? -2 : 1;
    }
}

/* One non-blocking connect, waited for with poll until the limit. Returns the socket or -1
 * with errno set (ETIMEDOUT when the deadline passed, ECANCELED when cancelled). */
static int connect_one(const struct addrinfo *ai, const struct fetch_limit *lim)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int saved = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        saved = errno;
        goto fail;
    }
    int n = wait_for(fd, POLLOUT, lim);
    if (n <= 0) {
        saved = n == 0 ? ETIMEDOUT : n == -2 ? ECANCELED : errno;
        goto fail;
    }
    socklen_t len = sizeof(saved);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &len) != 0)
        saved = errno;
    if (saved == 0)
        return fd;
fail:
    close(fd);
    errno = saved;
    return -1;
}

static int connect_target(const struct fetch_target *t, const struct fetch_limit *lim,
                          ck_error *err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(t->host, t->port, &hints, &list);
    if (gai != 0)
        return ck_error_set(err, 502, "connect_failed", "cannot resolve %s: %s", t->host,
                            gai_strerror(gai));
    int fd = -1, last_errno = ECONNREFUSED, tried = 0;
    for (const struct addrinfo *ai = list; ai != NULL && fd < 0 && tried < FETCH_ADDRESSES_MAX;
         ai = ai->ai_next, tried++) {
        if (remaining_ms(lim->deadline) == 0) {
            last_errno = ETIMEDOUT;
            break;
        }
        fd = connect_one(ai, lim);
        if (fd < 0 && (last_errno = errno) == ECANCELED)
            break;
    }
    freeaddrinfo(list);
    if (fd >= 0)
        return fd;
    if (last_errno == ECANCELED)
        return ck_error_set(err, 503, "cancelled", "connecting to %s port %s was cancelled",
                            t->host, t->port);
    if (last_errno == ETIMEDOUT)
        return ck_error_set(err, 504, "timeout", "connecting to %s port %s timed out", t->host,
                            t->port);
    return ck_error_set(err, 502, "connect_failed", "cannot connect to %s port %s: %s", t->host,
                        t->port, strerror(last_errno));
}

/* Drives SSL_connect on a non-blocking socket until it completes or the deadline passes. */
static int handshake(SSL *ssl, int fd, const struct fetch_target *t, const struct fetch_limit *lim,
                     ck_error *err)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            return 0;
        int why = SSL_get_error(ssl, r);
        if (why != SSL_ERROR_WANT_READ && why != SSL_ERROR_WANT_WRITE)
            return ck_error_openssl(err, 502, "tls_failed", "TLS handshake with %s port %s failed",
                                    t->host, t->port);
        int n = wait_for(fd, why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, lim);
        if (n == -2)
            return ck_error_set(err, 503, "cancelled", "TLS handshake with %s port %s cancelled",
                                t->host, t->port);
        if (n == 0)
            return ck_error_set(err, 504, "timeout", "TLS handshake with %s port %s timed out",
                                t->host, t->port);
        if (n < 0)
            return ck_error_set(err, 502, "tls_failed", "waiting for %s port %s failed: %s",
                                t->host, t->port, strerror(errno));
    }
}

/* The certificates the server sent after its leaf, each with a reference of its own. */
static STACK_OF(X509) * chain_without_leaf(SSL *ssl, X509 *leaf)
{
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl);
    STACK_OF(X509) *rest = sk_X509_new_null();
    if (rest == NULL)
        return NULL;
    for (int i = 0; i < sk_X509_num(sent); i++) {
        X509 *c = sk_X509_value(sent, i);
        if (i == 0 && X509_cmp(c, leaf) == 0)
            continue;
        if (X509_up_ref(c) != 1 || sk_X509_push(rest, c) <= 0) {
            sk_X509_pop_free(rest, X509_free);
            return NULL;
        }
    }
    return rest;
}

static int tls_fetch(int fd, const struct fetch_target *t, const char *sni,
                     const struct fetch_limit *lim, X509 **leaf, STACK_OF(X509) * *chain,
                     ck_error *err)
{
    int rc = -1;
    SSL *ssl = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
        ck_error_openssl(err, 500, "tls_failed", "cannot set up a TLS client");
        goto cleanup;
    }
    /* Inspection only, nothing is trusted: accept whatever the server shows, weak keys too. */
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    SSL_set_security_level(ssl, 0);
    if (sni != NULL && sni[0] != '\0' && SSL_set_tlsext_host_name(ssl, sni) != 1) {
        ck_error_openssl(err, 400, "invalid_field", "cannot use \"%.80s\" as SNI", sni);
        goto cleanup;
    }
    if (handshake(ssl, fd, t, lim, err) != 0)
        goto cleanup;
    *leaf = SSL_get1_peer_certificate(ssl);
    if (*leaf == NULL) {
        ck_error_set(err, 502, "tls_failed", "%s port %s sent no certificate", t->host, t->port);
        goto cleanup;
    }
    if (chain != NULL && (*chain = chain_without_leaf(ssl, *leaf)) == NULL) {
        X509_free(*leaf);
        *leaf = NULL;
        ck_error_set(err, 500, "out_of_memory", "out of memory reading a certificate chain");
        goto cleanup;
    }
    rc = 0;
cleanup:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return rc;
}

int ck_fetch_peer_certificate(const char *host_port, const char *sni, int timeout_ms, X509 **leaf,
                              STACK_OF(X509) * *chain, ck_error *err)
{
    return ck_fetch_peer_certificate_cancellable(host_port, sni, timeout_ms, -1, leaf, chain, err);
}

int ck_fetch_peer_certificate_cancellable(const char *host_port, const char *sni, int timeout_ms,
                                          int cancel_fd, X509 **leaf, STACK_OF(X509) * *chain,
                                          ck_error *err)
{
    struct fetch_target target;
    *leaf = NULL;
    if (chain != NULL)
        *chain = NULL;
    if (target_parse(host_port, &target, err) != 0)
        return -1;
    if (sni == NULL && !is_ip_literal(target.host))
        sni = target.host;
    const struct fetch_limit lim = {
        .deadline = monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 10000), .cancel_fd = cancel_fd};

    /* A server that closes early would raise SIGPIPE on the handshake write; keep it pending
     * for this thread and drop it afterwards instead of letting it end the process. */
    sigset_t pipe_set, old_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

    int rc = -1;
    int fd = connect_target(&target, &lim, err);
    if (fd >= 0) {
        rc = tls_fetch(fd, &target, sni, &lim, leaf, chain, err);
        close(fd);
    }

    sigpending(&pending);
    if (!was_pending && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    return rc;
}
