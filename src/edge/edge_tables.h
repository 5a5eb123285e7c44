/* edge_tables.h — what one edge listener serves right now, and hot reload.
 *
 * A ck_edge_tables holds the current SNI table of a listener (staging or production) behind an
 * atomic pointer and a bounded cache of parsed certificate material shared by every table it
 * ever publishes. Reload = build a new table off the serving path, then ck_edge_tables_publish:
 * one pointer swap that cannot fail. A handshake that already took the old table finishes with
 * it; the old table is freed once nobody holds it. Material of certificates that did not change
 * stays cached across the swap (the cache is keyed by ck_sni_cert_id). */
#ifndef CK_EDGE_EDGE_TABLES_H
#define CK_EDGE_EDGE_TABLES_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "edge/sni_table.h"

#define CK_EDGE_CACHE_DEFAULT 4096 /* parsed certificates kept, least recently used dropped */
#define CK_EDGE_CACHE_MIN     16
#define CK_EDGE_CACHE_MAX     10000000

typedef struct ck_edge_tables ck_edge_tables;

/* Certificate material ready for SSL_use_cert_and_key; the holder owns one reference of each. */
struct ck_edge_material {
    X509 *leaf;
    STACK_OF(X509) * chain; /* intermediates, never NULL once selected (may be empty) */
    EVP_PKEY *key;
};

/* cache_capacity 0 means CK_EDGE_CACHE_DEFAULT. Starts with no table: every lookup fails. */
ck_edge_tables *ck_edge_tables_new(size_t cache_capacity, ck_error *err);

/* Frees the holder, its current table reference and the cache. No handshake may be using it. */
void ck_edge_tables_free(ck_edge_tables *tables);

/* Publishes table (NULL: serve nothing), taking over the caller's reference. Thread-safe, never
 * fails; returns once no reader can still pick up the previous table. */
void ck_edge_tables_publish(ck_edge_tables *tables, ck_sni_table *table);

/* A reference to the current table, or NULL; release it with ck_sni_table_unref. Wait-free. */
ck_sni_table *ck_edge_tables_acquire(ck_edge_tables *tables);

/* Finds the certificate for an SNI name in the current table and returns its parsed material
 * (from the cache, or parsed and its key opened now). Fails with 404 "unknown_name" when no
 * certificate answers the name, 500 "certificate_unusable" when its DER or key cannot be read or
 * do not match (the detail is logged). Thread-safe. */
int ck_edge_tables_select(ck_edge_tables *tables, const char *name, size_t len,
                          struct ck_edge_material *out, ck_error *err);

/* Drops the references ck_edge_tables_select gave; out is zeroed. */
void ck_edge_material_clear(struct ck_edge_material *m);

/* What the cache did since the tables were made: selections answered from it (hits) and those
 * that parsed a certificate (misses), how many it holds and may hold. For sizing --edge-cache.
 * Any thread. */
struct ck_edge_cache_stats {
    uint64_t hits, misses;
    size_t cached, capacity;
};
void ck_edge_tables_cache_stats(ck_edge_tables *tables, struct ck_edge_cache_stats *out);

#endif
