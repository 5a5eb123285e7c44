/* edge_tables.c — the published SNI table and the parsed-certificate cache.
 *
 * Publishing without locks on the reader side: a reader announces itself in `readers` before it
 * loads the pointer and leaves after it has taken its table reference. The writer swaps the
 * pointer, then waits until `readers` drops to zero before releasing the old table's reference.
 * A reader that announced itself after the swap (in the sequentially consistent order) loads the
 * new table, so no reader can take a reference to a freed table. Readers hold the window for a
 * few instructions, so the writer's wait is short. */
#include "edge/edge_tables.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/alloc_arena.h"
#include "common/log.h"
#include "crypto/der.h"
#include "edge/leaf_parser.h"

struct cache_item {
    uint8_t id[CK_SNI_ID_LEN];
    struct ck_edge_material material;
    struct cache_item *bucket_next;
    struct cache_item *lru_prev, *lru_next; /* lru_prev towards the most recently used */
};

/* Parsed chains, shared by every cached certificate with the same intermediates: 100,000
 * certificates from one CA have one chain, and parsing an intermediate costs as much as parsing
 * the leaf (most of a cache miss). */
#define CHAIN_CACHE_SIZE 64

struct chain_item {
    uint8_t id[CK_SNI_ID_LEN];
    STACK_OF(X509) * chain; /* NULL: free slot */
    uint64_t last_used;
};

struct ck_edge_tables {
    _Atomic(ck_sni_table *) current;
    atomic_size_t readers;
    pthread_mutex_t lock; /* guards the caches below */
    struct cache_item **buckets;
    size_t bucket_mask;
    struct cache_item *mru, *lru;
    size_t count, capacity;
    struct chain_item chains[CHAIN_CACHE_SIZE];
    uint64_t chain_clock;
    uint64_t hits, misses;       /* under lock */
    ck_leaf_parser *leaf_parser; /* thread-safe; outlives every cached leaf */
    /* Cached certificates live in an allocator arena of their own (alloc_arena.h): mixed with a
     * handshake's short-lived objects they spread those over the whole cache's pages. */
    struct ck_alloc_arena arena;
};

ck_edge_tables *ck_edge_tables_new(size_t cache_capacity, ck_error *err)
{
    ck_edge_tables *t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto nomem;
    t->capacity = cache_capacity == 0 ? CK_EDGE_CACHE_DEFAULT : cache_capacity;
    size_t buckets = 16;
    while (buckets < t->capacity)
        buckets *= 2;
    t->buckets = calloc(buckets, sizeof(*t->buckets));
    if (t->buckets == NULL)
        goto nomem;
    t->bucket_mask = buckets - 1;
    atomic_init(&t->current, NULL);
    atomic_init(&t->readers, 0);
    ck_alloc_arena_init(&t->arena);
    t->leaf_parser = ck_leaf_parser_new(err);
    if (t->leaf_parser == NULL)
        goto failed;
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        goto nomem;
    return t;
nomem:
    ck_error_set(err, 500, "out_of_memory", "out of memory creating the edge certificate tables");
failed:
    if (t != NULL) {
        ck_leaf_parser_free(t->leaf_parser);
        free(t->buckets);
    }
    free(t);
    return NULL;
}

void ck_edge_material_clear(struct ck_edge_material *m)
{
    X509_free(m->leaf);
    sk_X509_pop_free(m->chain, X509_free);
    EVP_PKEY_free(m->key);
    memset(m, 0, sizeof(*m));
}

void ck_edge_tables_free(ck_edge_tables *t)
{
    if (t == NULL)
        return;
    ck_sni_table_unref(atomic_load(&t->current));
    for (struct cache_item *item = t->mru, *next; item != NULL; item = next) {
        next = item->lru_next;
        ck_edge_material_clear(&item->material);
        OPENSSL_free(item);
    }
    for (size_t i = 0; i < CHAIN_CACHE_SIZE; i++)
        sk_X509_pop_free(t->chains[i].chain, X509_free);
    ck_leaf_parser_free(t->leaf_parser);
    pthread_mutex_destroy(&t->lock);
    free(t->buckets);
    free(t);
}

void ck_edge_tables_publish(ck_edge_tables *t, ck_sni_table *table)
{
    ck_sni_table *old = atomic_exchange(&t->current, table);
    for (unsigned spins = 0; atomic_load(&t->readers) != 0; spins++)
        if (spins > 64)
            sched_yield();
    ck_sni_table_unref(old);
}

ck_sni_table *ck_edge_tables_acquire(ck_edge_tables *t)
{
    atomic_fetch_add(&t->readers, 1);
    ck_sni_table *table = ck_sni_table_ref(atomic_load(&t->current));
    atomic_fetch_sub(&t->readers, 1);
    return table;
}

/* ---- cache (callers hold t->lock) ---- */

static size_t bucket_of(const ck_edge_tables *t, const uint8_t *id)
{
    size_t h;
    memcpy(&h, id, sizeof(h));
    return h & t->bucket_mask;
}

static void lru_unlink(ck_edge_tables *t, struct cache_item *item)
{
    if (item->lru_prev != NULL)
        item->lru_prev->lru_next = item->lru_next;
    else
        t->mru = item->lru_next;
    if (item->lru_next != NULL)
        item->lru_next->lru_prev = item->lru_prev;
    else
        t->lru = item->lru_prev;
    item->lru_prev = item->lru_next = NULL;
}

static void lru_push_front(ck_edge_tables *t, struct cache_item *item)
{
    item->lru_next = t->mru;
    if (t->mru != NULL)
        t->mru->lru_prev = item;
    t->mru = item;
    if (t->lru == NULL)
        t->lru = item;
}

static struct cache_item *cache_find(ck_edge_tables *t, const uint8_t *id)
{
    for (struct cache_item *item = t->buckets[bucket_of(t, id)]; item != NULL;
         item = item->bucket_next)
        if (memcmp(item->id, id, CK_SNI_ID_LEN) == 0) {
            lru_unlink(t, item);
            lru_push_front(t, item);
            return item;
        }
    return NULL;
}

static void cache_evict_lru(ck_edge_tables *t)
{
    struct cache_item *victim = t->lru;
    struct cache_item **link = &t->buckets[bucket_of(t, victim->id)];
    while (*link != victim)
        link = &(*link)->bucket_next;
    *link = victim->bucket_next;
    lru_unlink(t, victim);
    ck_edge_material_clear(&victim->material);
    OPENSSL_free(victim);
    t->count--;
}

static void cache_insert(ck_edge_tables *t, struct cache_item *item)
{
    if (t->count >= t->capacity)
        cache_evict_lru(t);
    size_t b = bucket_of(t, item->id);
    item->bucket_next = t->buckets[b];
    t->buckets[b] = item;
    lru_push_front(t, item);
    t->count++;
}

void ck_edge_tables_cache_stats(ck_edge_tables *t, struct ck_edge_cache_stats *out)
{
    pthread_mutex_lock(&t->lock);
    *out = (struct ck_edge_cache_stats){
        .hits = t->hits, .misses = t->misses, .cached = t->count, .capacity = t->capacity};
    pthread_mutex_unlock(&t->lock);
}

/* ---- parsing on first use ---- */

/* Has OpenSSL cache cert's parsed extensions now, while a miss is in the cache's arena. libssl
 * does it in the certificate's first handshake otherwise (X509_check_purpose, through its
 * security checks), outside the arena, where the ten small objects it keeps for the
 * certificate's life would land among the handshake's short-lived ones (alloc_arena.h). False
 * when OpenSSL cannot read them. */
static bool extensions_cached(X509 *cert)
{
    return X509_check_purpose(cert, -1, 0) == 1;
}

static int parse_chain(const uint8_t *der, size_t len, STACK_OF(X509) * *out)
{
    *out = sk_X509_new_null();
    if (*out == NULL)
        return -1;
    while (len > 0) {
        const unsigned char *p = der;
        X509 *cert = d2i_X509(NULL, &p, (long)len);
        if (cert == NULL || !extensions_cached(cert) || sk_X509_push(*out, cert) == 0) {
            X509_free(cert);
            return -1;
        }
        len -= (size_t)(p - der);
        der = p;
    }
    return 0;
}

/* A new reference to the parsed chain with this id, or NULL. Caller holds t->lock. */
static STACK_OF(X509) * chain_cache_find(ck_edge_tables *t, const uint8_t *id)
{
    for (size_t i = 0; i < CHAIN_CACHE_SIZE; i++) {
        struct chain_item *item = &t->chains[i];
        if (item->chain != NULL && memcmp(item->id, id, CK_SNI_ID_LEN) == 0) {
            item->last_used = ++t->chain_clock;
            return X509_chain_up_ref(item->chain);
        }
    }
    return NULL;
}

/* Keeps chain (the caller keeps its own reference) in place of the least recently used one.
 * Caller holds t->lock. */
static void chain_cache_insert(ck_edge_tables *t, const uint8_t *id, STACK_OF(X509) * chain)
{
    STACK_OF(X509) *copy = X509_chain_up_ref(chain);
    if (copy == NULL)
        return; /* out of memory: the next miss parses it again */
    struct chain_item *victim = &t->chains[0];
    for (size_t i = 1; i < CHAIN_CACHE_SIZE && victim->chain != NULL; i++)
        if (t->chains[i].chain == NULL || t->chains[i].last_used < victim->last_used)
            victim = &t->chains[i];
    sk_X509_pop_free(victim->chain, X509_free);
    memcpy(victim->id, id, CK_SNI_ID_LEN);
    victim->chain = copy;
    victim->last_used = ++t->chain_clock;
}

/* The certificate's chain, parsed once for every certificate that shares it. */
static int chain_for(ck_edge_tables *t, const ck_sni_cert *cert, STACK_OF(X509) * *out)
{
    const uint8_t *id = ck_sni_cert_chain_id(cert);
    pthread_mutex_lock(&t->lock);
    *out = chain_cache_find(t, id);
    pthread_mutex_unlock(&t->lock);
    if (*out != NULL)
        return 0;
    const uint8_t *der;
    size_t len;
    ck_sni_cert_chain(cert, &der, &len);
    if (parse_chain(der, len, out) != 0)
        return -1;
    pthread_mutex_lock(&t->lock);
    STACK_OF(X509) *cached = chain_cache_find(t, id); /* another thread may have parsed it */
    if (cached == NULL)
        chain_cache_insert(t, id, *out);
    pthread_mutex_unlock(&t->lock);
    if (cached != NULL) {
        sk_X509_pop_free(*out, X509_free);
        *out = cached;
    }
    return 0;
}

static int parse_pair(ck_edge_tables *t, const ck_sni_table *table, const ck_sni_cert *cert,
                      struct ck_edge_material *m, ck_error *err)
{
    const uint8_t *der;
    size_t len;
    ck_sni_cert_leaf(cert, &der, &len);
    m->leaf = ck_leaf_parser_parse(t->leaf_parser, der, len);
    if (m->leaf == NULL)
        return ck_error_openssl(err, 500, "certificate_unusable",
                                "an edge certificate is not readable DER");
    if (chain_for(t, cert, &m->chain) != 0)
        return ck_error_openssl(err, 500, "certificate_unusable",
                                "an edge certificate's chain is not readable DER or has extensions "
                                "OpenSSL cannot read");
    m->key = ck_sni_cert_load_key(table, cert, ck_leaf_parser_key_libctx(t->leaf_parser), err);
    if (m->key == NULL)
        return -1;
    /* One key object for the pair when the edge's provider holds both (the join compares them
     * itself, so a pair it takes is not compared twice); else any pair OpenSSL matches. */
    if (ck_leaf_parser_join_private_key(t->leaf_parser, m->leaf, m->key) == 0) {
        EVP_PKEY_free(m->key);
        m->key = X509_get0_pubkey(m->leaf);
        EVP_PKEY_up_ref(m->key);
        return 0;
    }
    if (X509_check_private_key(m->leaf, m->key) == 1)
        return 0;
    /* The edge's provider matches uncompressed points only: a certificate or key that encodes
     * its point another way is read the ordinary way, both of them. */
    ERR_clear_error();
    X509_free(m->leaf);
    EVP_PKEY_free(m->key);
    m->key = NULL;
    m->leaf = ck_d2i_exact(ASN1_ITEM_rptr(X509), der, len, NULL);
    if (m->leaf == NULL)
        return ck_error_openssl(err, 500, "certificate_unusable",
                                "an edge certificate is not readable DER");
    m->key = ck_sni_cert_load_key(table, cert, NULL, err);
    if (m->key == NULL)
        return -1;
    if (X509_check_private_key(m->leaf, m->key) != 1)
        return ck_error_openssl(err, 500, "certificate_unusable",
                                "an edge certificate does not match its private key");
    return 0;
}

/* The certificate, its chain and key, complete: their extensions cached (extensions_cached). */
static int parse_material(ck_edge_tables *t, const ck_sni_table *table, const ck_sni_cert *cert,
                          struct ck_edge_material *m, ck_error *err)
{
    if (parse_pair(t, table, cert, m, err) != 0)
        return -1;
    if (!extensions_cached(m->leaf))
        return ck_error_openssl(err, 500, "certificate_unusable",
                                "an edge certificate has extensions OpenSSL cannot read");
    return 0;
}

static void material_up_ref(const struct ck_edge_material *from, struct ck_edge_material *to)
{
    X509_up_ref(from->leaf);
    EVP_PKEY_up_ref(from->key);
    to->leaf = from->leaf;
    to->key = from->key;
    to->chain = X509_chain_up_ref(from->chain);
}

/* Looks id up in the cache, parsing (outside the lock, so one slow key does not stall other
 * handshakes) and inserting it on a miss. */
static int material_for(ck_edge_tables *t, const ck_sni_table *table, const ck_sni_cert *cert,
                        struct ck_edge_material *out, ck_error *err)
{
    int rc = -1;
    struct cache_item *fresh = NULL;
    pthread_mutex_lock(&t->lock);
    struct cache_item *item = cache_find(t, ck_sni_cert_id(cert));
    if (item != NULL) {
        material_up_ref(&item->material, out);
        t->hits++;
    } else {
        t->misses++;
    }
    pthread_mutex_unlock(&t->lock);
    if (item != NULL)
        return out->chain == NULL ? -1 : 0;

    /* The parse and the eviction it may cause, in the cache's arena. */
    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&t->arena, &scope);
    fresh = OPENSSL_zalloc(sizeof(*fresh)); /* OpenSSL's allocator: routed to the arena too */
    if (fresh == NULL)
        goto cleanup;
    memcpy(fresh->id, ck_sni_cert_id(cert), CK_SNI_ID_LEN);
    if (parse_material(t, table, cert, &fresh->material, err) != 0)
        goto cleanup;
    pthread_mutex_lock(&t->lock);
    item = cache_find(t, fresh->id); /* another thread may have parsed it meanwhile */
    if (item == NULL) {
        cache_insert(t, fresh);
        item = fresh;
        fresh = NULL;
    }
    ck_alloc_arena_leave(&scope); /* what the handshake holds is short-lived */
    material_up_ref(&item->material, out);
    pthread_mutex_unlock(&t->lock);
    rc = out->chain == NULL ? -1 : 0;
cleanup:
    if (fresh != NULL) { /* made in the cache's arena (another thread won the race): freed there */
        if (!scope.entered)
            ck_alloc_arena_enter(&t->arena, &scope);
        ck_edge_material_clear(&fresh->material);
        OPENSSL_free(fresh);
    }
    ck_alloc_arena_leave(&scope);
    return rc;
}

int ck_edge_tables_select(ck_edge_tables *t, const char *name, size_t len,
                          struct ck_edge_material *out, ck_error *err)
{
    int rc = -1;
    memset(out, 0, sizeof(*out));
    ck_sni_table *table = ck_edge_tables_acquire(t);
    const ck_sni_cert *cert = table == NULL ? NULL : ck_sni_table_lookup(table, name, len);
    if (cert == NULL) {
        /* The name is client input: it stays out of the message (and so out of logs). */
        ck_error_set(err, 404, "unknown_name",
                     "no certificate on this listener answers the requested name");
        goto cleanup;
    }
    if (material_for(t, table, cert, out, err) != 0) {
        if (err != NULL && err->code[0] == '\0')
            ck_error_set(err, 500, "out_of_memory", "out of memory loading an edge certificate");
        ck_edge_material_clear(out);
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_sni_table_unref(table);
    return rc;
}
