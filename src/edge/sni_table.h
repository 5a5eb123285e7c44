/* sni_table.h — the edge's certificate table: which certificate answers which SNI name.
 *
 * A table is built once by a builder, then never changes: reload builds a new table off the
 * serving path and publishes it (see edge_tables.h). Certificates are kept compact — leaf and
 * chain as DER, the private key as the caller's opaque (sealed) bytes — and only turned into
 * X509 / EVP_PKEY when a handshake needs them, through the key loader given to the builder.
 *
 * Names are DNS names in A-label form, matched case-insensitively. "*.example.com" matches
 * exactly one extra label: "a.example.com", not "a.b.example.com" nor "example.com". Lookup tries
 * the exact name first, then the wildcard. When several entries claim the same name, the entry
 * added first wins, so the caller decides precedence by the order it adds entries. */
#ifndef CK_EDGE_SNI_TABLE_H
#define CK_EDGE_SNI_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/error.h"

#define CK_SNI_NAME_MAX 253 /* longest DNS name in text form */
#define CK_SNI_ID_LEN   32  /* SHA-256 */

/* Opens an entry's private key: `blob` and `label` are exactly what ck_sni_entry carried (for
 * certkeep, a sealed PKCS#8 key and its seal AAD). libctx is where the edge wants the key made
 * when its type allows (ck_unseal_private_key_ex); an ordinary key is always acceptable. Returns a
 * new EVP_PKEY the caller frees, or NULL with err set. Called from the TLS handshake path,
 * possibly from several threads. */
typedef EVP_PKEY *(*ck_sni_key_loader)(void *arg, const char *label, const uint8_t *blob,
                                       size_t blob_len, OSSL_LIB_CTX *libctx, ck_error *err);

/* One certificate and the names it answers. Everything is copied by ck_sni_builder_add. */
struct ck_sni_entry {
    const char *const *names; /* "shop.example.com", "*.example.com" */
    size_t name_count;
    const uint8_t *leaf_der;
    size_t leaf_der_len;
    const uint8_t *chain_der; /* intermediates, concatenated DER, issuer of the leaf first;
                                 may be empty. Identical chains are stored once. */
    size_t chain_der_len;
    const uint8_t *key_blob; /* handed to the key loader on first use */
    size_t key_blob_len;
    const char *key_label; /* handed to the key loader; may be NULL */
};

typedef struct ck_sni_builder ck_sni_builder;
typedef struct ck_sni_table ck_sni_table;

/* A certificate inside a table: valid as long as the caller holds a reference to the table. */
typedef struct ck_sni_cert ck_sni_cert;

/* loader_arg must outlive every table built from this builder. */
ck_sni_builder *ck_sni_builder_new(ck_sni_key_loader loader, void *loader_arg, ck_error *err);

/* Adds an entry. Refuses (400 invalid_hostname) names that are empty, longer than 253 bytes, not
 * letters, digits, '-' and '.', or with a '*' anywhere but as the whole first label; refuses an
 * entry with no name, no leaf or no key. On failure the builder is unchanged. */
int ck_sni_builder_add(ck_sni_builder *b, const struct ck_sni_entry *entry, ck_error *err);

/* Turns the builder into a table holding one reference, and frees the builder (also on failure;
 * always pass the builder exactly once to either this or ck_sni_builder_free). */
ck_sni_table *ck_sni_builder_finish(ck_sni_builder *b, ck_error *err);

void ck_sni_builder_free(ck_sni_builder *b);

/* Reference counting is thread-safe. unref frees the table on the last reference; NULL is
 * allowed. */
ck_sni_table *ck_sni_table_ref(ck_sni_table *t);
void ck_sni_table_unref(ck_sni_table *t);

size_t ck_sni_table_cert_count(const ck_sni_table *t);

/* Bytes the table holds (arena, records, name index), for sizing and benchmarks. */
size_t ck_sni_table_memory(const ck_sni_table *t);

/* The certificate for an SNI name (not NUL-terminated: len bytes), or NULL when no name matches
 * or the name cannot be a DNS name (empty, over 253 bytes, a NUL inside). */
const ck_sni_cert *ck_sni_table_lookup(const ck_sni_table *t, const char *name, size_t len);

/* SHA-256 over the leaf and the chain: the same certificate material in two tables has the same
 * id, so parsed material can be cached across reloads. */
const uint8_t *ck_sni_cert_id(const ck_sni_cert *c);

/* SHA-256 over the chain alone: certificates issued by one CA share it, so their chain is parsed
 * once. */
const uint8_t *ck_sni_cert_chain_id(const ck_sni_cert *c);

void ck_sni_cert_leaf(const ck_sni_cert *c, const uint8_t **der, size_t *len);
void ck_sni_cert_chain(const ck_sni_cert *c, const uint8_t **der, size_t *len);

/* Opens the private key through the table's loader (libctx: see ck_sni_key_loader). Caller frees
 * with EVP_PKEY_free. */
EVP_PKEY *ck_sni_cert_load_key(const ck_sni_table *t, const ck_sni_cert *c, OSSL_LIB_CTX *libctx,
                               ck_error *err);

#endif
