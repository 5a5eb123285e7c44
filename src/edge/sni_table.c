/* sni_table.c — an immutable, compact SNI name index over DER certificates.
 *
 * Layout, chosen so 100,000 certificates build in well under a second and cost little more than
 * their DER: all bytes (names, DER, key blobs) live in one bump arena freed at once; certificate
 * records sit in one array; names are an open-addressing hash table of 16-byte slots pointing into
 * the arena. Wildcards "*.example.com" are stored as ".example.com" (as hitch does), so a wildcard
 * lookup is an exact lookup of the name with its first label cut off. */
#include "edge/sni_table.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define ARENA_CHUNK_SIZE (1024 * 1024)
#define DER_MAX          (UINT32_MAX / 2)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    unsigned char data[];
};

struct ck_sni_cert {
    const uint8_t *leaf;
    const uint8_t *chain;
    const uint8_t *chain_id; /* CK_SNI_ID_LEN bytes, shared by every cert with this chain */
    const uint8_t *key;
    const char *key_label;
    uint32_t leaf_len;
    uint32_t chain_len;
    uint32_t key_len;
    uint8_t id[CK_SNI_ID_LEN];
};

struct name_slot {
    const char *name; /* NULL: empty slot */
    uint32_t hash;
    uint32_t cert;
};

struct chain_slot {
    const uint8_t *der;    /* NULL: empty slot */
    const uint8_t *digest; /* in the arena, CK_SNI_ID_LEN bytes */
    uint32_t len;
};

struct ck_sni_table {
    atomic_size_t refs;
    struct arena_chunk *arena;
    struct ck_sni_cert *certs;
    size_t cert_count;
    struct name_slot *slots;
    size_t slot_mask;
    ck_sni_key_loader loader;
    void *loader_arg;
};

struct ck_sni_builder {
    struct arena_chunk *arena;
    struct ck_sni_cert *certs;
    size_t cert_count, cert_cap;
    struct name_slot *names; /* in the order added; hashed into the table at finish */
    size_t name_count, name_cap;
    struct chain_slot *chains; /* deduplication of identical chains */
    size_t chain_count, chain_mask;
    EVP_MD *sha256;
    EVP_MD_CTX *md_ctx;
    ck_sni_key_loader loader;
    void *loader_arg;
};

/* ---- arena ---- */

static void *arena_alloc(struct arena_chunk **arena, size_t len)
{
    struct arena_chunk *chunk = *arena;
    if (chunk == NULL || chunk->cap - chunk->used < len) {
        size_t cap = len > ARENA_CHUNK_SIZE / 4 ? len : ARENA_CHUNK_SIZE;
        chunk = malloc(sizeof(*chunk) + cap);
        if (chunk == NULL)
            return NULL;
        chunk->used = 0;
        chunk->cap = cap;
        if (len > ARENA_CHUNK_SIZE / 4 && *arena != NULL) {
            /* A big block gets its own chunk behind the current one, which keeps its room. */
            chunk->next = (*arena)->next;
            (*arena)->next = chunk;
        } else {
            chunk->next = *arena;
            *arena = chunk;
        }
    }
    void *p = chunk->data + chunk->used;
    chunk->used += len;
    return p;
}

static void *arena_copy(struct arena_chunk **arena, const void *data, size_t len)
{
    void *p = arena_alloc(arena, len == 0 ? 1 : len);
    if (p != NULL && len > 0)
        memcpy(p, data, len);
    return p;
}

static void arena_free(struct arena_chunk *arena)
{
    while (arena != NULL) {
        struct arena_chunk *next = arena->next;
        free(arena);
        arena = next;
    }
}

/* ---- names ---- */

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Lower-cases a DNS name into out (CK_SNI_NAME_MAX + 1 bytes) and checks its labels. A leading
 * "*." label becomes "." (the stored wildcard form). Returns the stored length, 0 when invalid. */
static size_t normalize_name(const char *name, size_t len, bool allow_wildcard, char *out)
{
    if (len == 0 || len > CK_SNI_NAME_MAX)
        return 0;
    size_t start = 0;
    if (allow_wildcard && len > 2 && name[0] == '*' && name[1] == '.')
        start = 1;
    size_t label_len = 0;
    for (size_t i = start; i < len; i++) {
        char c = ascii_lower(name[i]);
        if (c == '.') {
            if (label_len == 0 && !(start == 1 && i == start))
                return 0; /* an empty label; only the wildcard's own dot may start the name */
            label_len = 0;
        } else if (is_ldh(c) && ++label_len <= 63) {
            /* part of a label */
        } else {
            return 0;
        }
        out[i - start] = c;
    }
    if (label_len == 0)
        return 0;
    out[len - start] = '\0';
    return len - start;
}

static const struct name_slot *find_slot(const ck_sni_table *t, const char *name, size_t len)
{
    uint32_t hash = name_hash(name, len);
    for (size_t i = hash & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        const struct name_slot *slot = &t->slots[i];
        if (slot->name == NULL)
            return NULL;
        if (slot->hash == hash && memcmp(slot->name, name, len) == 0 && slot->name[len] == '\0')
            return slot;
    }
}

/* ---- builder ---- */

ck_sni_builder *ck_sni_builder_new(ck_sni_key_loader loader, void *loader_arg, ck_error *err)
{
    ck_sni_builder *b = NULL;
    if (loader == NULL) {
        ck_error_set(err, 500, "internal_error", "the SNI table needs a key loader");
        goto cleanup;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        goto nomem;
    b->loader = loader;
    b->loader_arg = loader_arg;
    b->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    b->md_ctx = EVP_MD_CTX_new();
    if (b->sha256 == NULL || b->md_ctx == NULL)
        goto nomem;
    return b;
nomem:
    ck_error_set(err, 500, "out_of_memory", "out of memory building the SNI table");
cleanup:
    ck_sni_builder_free(b);
    return NULL;
}

void ck_sni_builder_free(ck_sni_builder *b)
{
    if (b == NULL)
        return;
    arena_free(b->arena);
    free(b->certs);
    free(b->names);
    free(b->chains);
    EVP_MD_CTX_free(b->md_ctx);
    EVP_MD_free(b->sha256);
    free(b);
}

static int grow(void **items, size_t *cap, size_t need, size_t item_size)
{
    if (need <= *cap)
        return 0;
    size_t new_cap = *cap < 64 ? 64 : *cap;
    while (new_cap < need)
        new_cap *= 2;
    void *p = realloc(*items, new_cap * item_size);
    if (p == NULL)
        return -1;
    *items = p;
    *cap = new_cap;
    return 0;
}

static int digest(ck_sni_builder *b, const void *a, size_t a_len, const void *c, size_t c_len,
                  uint8_t out[CK_SNI_ID_LEN])
{
    if (EVP_DigestInit_ex(b->md_ctx, b->sha256, NULL) != 1 ||
        EVP_DigestUpdate(b->md_ctx, a, a_len) != 1 ||
        (c_len > 0 && EVP_DigestUpdate(b->md_ctx, c, c_len) != 1) ||
        EVP_DigestFinal_ex(b->md_ctx, out, NULL) != 1)
        return -1;
    return 0;
}

static int chains_grow(ck_sni_builder *b)
{
    size_t old_size = b->chains == NULL ? 0 : b->chain_mask + 1;
    if ((b->chain_count + 1) * 2 <= old_size)
        return 0;
    size_t size = old_size == 0 ? 64 : old_size * 2;
    struct chain_slot *slots = calloc(size, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < old_size; i++) {
        const struct chain_slot *old = &b->chains[i];
        if (old->der == NULL)
            continue;
        uint32_t h;
        memcpy(&h, old->digest, sizeof(h));
        size_t j = h & (size - 1);
        while (slots[j].der != NULL)
            j = (j + 1) & (size - 1);
        slots[j] = *old;
    }
    free(b->chains);
    b->chains = slots;
    b->chain_mask = size - 1;
    return 0;
}

/* Stores a chain and its digest once however many certificates share it. */
static const struct chain_slot *intern_chain(ck_sni_builder *b, const uint8_t *der, size_t len)
{
    uint8_t chain_digest[CK_SNI_ID_LEN];
    if (digest(b, der, len, NULL, 0, chain_digest) != 0 || chains_grow(b) != 0)
        return NULL;
    uint32_t h;
    memcpy(&h, chain_digest, sizeof(h));
    size_t i = h & b->chain_mask;
    for (; b->chains[i].der != NULL; i = (i + 1) & b->chain_mask)
        if (memcmp(b->chains[i].digest, chain_digest, CK_SNI_ID_LEN) == 0)
            return &b->chains[i];
    const uint8_t *copy = arena_copy(&b->arena, der, len);
    const uint8_t *digest_copy = arena_copy(&b->arena, chain_digest, CK_SNI_ID_LEN);
    if (copy == NULL || digest_copy == NULL)
        return NULL;
    b->chains[i] = (struct chain_slot){.der = copy, .digest = digest_copy, .len = (uint32_t)len};
    b->chain_count++;
    return &b->chains[i];
}

static int check_entry(const struct ck_sni_entry *e, ck_error *err)
{
    if (e->name_count == 0 || e->names == NULL)
        return ck_error_set(err, 400, "invalid_entry", "a certificate for the edge needs a name");
    if (e->leaf_der == NULL || e->leaf_der_len == 0 || e->leaf_der_len > DER_MAX ||
        e->chain_der_len > DER_MAX || (e->chain_der_len > 0 && e->chain_der == NULL))
        return ck_error_set(err, 400, "invalid_entry",
                            "certificate for %s: the certificate or its chain is missing or "
                            "too large",
                            e->names[0]);
    if (e->key_blob == NULL || e->key_blob_len == 0 || e->key_blob_len > DER_MAX)
        return ck_error_set(err, 400, "invalid_entry", "certificate for %s has no private key",
                            e->names[0]);
    char normalized[CK_SNI_NAME_MAX + 1];
    for (size_t i = 0; i < e->name_count; i++) {
        const char *name = e->names[i] == NULL ? "" : e->names[i];
        if (normalize_name(name, strlen(name), true, normalized) == 0)
            return ck_error_set(err, 400, "invalid_hostname",
                                "\"%.260s\" is not a DNS name the edge can serve (letters, "
                                "digits, '-', dots, at most 253 bytes, '*.' only as a prefix)",
                                name);
    }
    return 0;
}

static int add_names(ck_sni_builder *b, const struct ck_sni_entry *e, uint32_t cert)
{
    char normalized[CK_SNI_NAME_MAX + 1];
    for (size_t i = 0; i < e->name_count; i++) {
        size_t len = normalize_name(e->names[i], strlen(e->names[i]), true, normalized);
        char *copy = arena_copy(&b->arena, normalized, len + 1);
        if (copy == NULL)
            return -1;
        b->names[b->name_count + i] =
            (struct name_slot){.name = copy, .hash = name_hash(copy, len), .cert = cert};
    }
    return 0;
}

int ck_sni_builder_add(ck_sni_builder *b, const struct ck_sni_entry *e, ck_error *err)
{
    if (check_entry(e, err) != 0)
        return -1;
    if (b->cert_count >= UINT32_MAX - 1 ||
        grow((void **)&b->certs, &b->cert_cap, b->cert_count + 1, sizeof(*b->certs)) != 0 ||
        grow((void **)&b->names, &b->name_cap, b->name_count + e->name_count, sizeof(*b->names)) !=
            0)
        goto nomem;
    struct ck_sni_cert *c = &b->certs[b->cert_count];
    memset(c, 0, sizeof(*c));
    c->leaf = arena_copy(&b->arena, e->leaf_der, e->leaf_der_len);
    const struct chain_slot *chain = intern_chain(b, e->chain_der, e->chain_der_len);
    c->key = arena_copy(&b->arena, e->key_blob, e->key_blob_len);
    c->key_label =
        e->key_label == NULL ? NULL : arena_copy(&b->arena, e->key_label, strlen(e->key_label) + 1);
    if (c->leaf == NULL || chain == NULL || c->key == NULL ||
        (e->key_label != NULL && c->key_label == NULL))
        goto nomem;
    c->chain = chain->der;
    c->chain_id = chain->digest;
    if (digest(b, e->leaf_der, e->leaf_der_len, c->chain_id, CK_SNI_ID_LEN, c->id) != 0 ||
        add_names(b, e, (uint32_t)b->cert_count) != 0)
        goto nomem;
    c->leaf_len = (uint32_t)e->leaf_der_len;
    c->chain_len = (uint32_t)e->chain_der_len;
    c->key_len = (uint32_t)e->key_blob_len;
    b->cert_count++;
    b->name_count += e->name_count;
    return 0;
nomem:
    return ck_error_set(err, 500, "out_of_memory", "out of memory building the SNI table");
}

static int build_slots(ck_sni_table *t, const struct name_slot *names, size_t count)
{
    size_t size = 16;
    while (size < count * 2)
        size *= 2;
    t->slots = calloc(size, sizeof(*t->slots));
    if (t->slots == NULL)
        return -1;
    t->slot_mask = size - 1;
    for (size_t n = 0; n < count; n++) {
        size_t i = names[n].hash & t->slot_mask;
        for (; t->slots[i].name != NULL; i = (i + 1) & t->slot_mask)
            if (t->slots[i].hash == names[n].hash && strcmp(t->slots[i].name, names[n].name) == 0)
                break; /* the first entry with a name keeps it */
        if (t->slots[i].name == NULL)
            t->slots[i] = names[n];
    }
    return 0;
}

ck_sni_table *ck_sni_builder_finish(ck_sni_builder *b, ck_error *err)
{
    ck_sni_table *t = calloc(1, sizeof(*t));
    if (t == NULL || build_slots(t, b->names, b->name_count) != 0) {
        ck_error_set(err, 500, "out_of_memory", "out of memory building the SNI table");
        if (t != NULL)
            free(t->slots);
        free(t);
        t = NULL;
        goto cleanup;
    }
    atomic_init(&t->refs, 1);
    t->arena = b->arena;
    t->certs = b->certs;
    t->cert_count = b->cert_count;
    t->loader = b->loader;
    t->loader_arg = b->loader_arg;
    b->arena = NULL;
    b->certs = NULL;
cleanup:
    ck_sni_builder_free(b);
    return t;
}

/* ---- table ---- */

ck_sni_table *ck_sni_table_ref(ck_sni_table *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void ck_sni_table_unref(ck_sni_table *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    arena_free(t->arena);
    free(t->certs);
    free(t->slots);
    free(t);
}

size_t ck_sni_table_cert_count(const ck_sni_table *t)
{
    return t->cert_count;
}

size_t ck_sni_table_memory(const ck_sni_table *t)
{
    size_t bytes =
        sizeof(*t) + t->cert_count * sizeof(*t->certs) + (t->slot_mask + 1) * sizeof(*t->slots);
    for (const struct arena_chunk *chunk = t->arena; chunk != NULL; chunk = chunk->next)
        bytes += sizeof(*chunk) + chunk->cap;
    return bytes;
}

const ck_sni_cert *ck_sni_table_lookup(const ck_sni_table *t, const char *name, size_t len)
{
    char lower[CK_SNI_NAME_MAX + 1];
    size_t lower_len = normalize_name(name, len, false, lower);
    if (lower_len == 0 || lower_len != len)
        return NULL;
    const struct name_slot *slot = find_slot(t, lower, len);
    if (slot == NULL) {
        const char *dot = memchr(lower, '.', len);
        if (dot == NULL)
            return NULL;
        slot = find_slot(t, dot, len - (size_t)(dot - lower));
    }
    return slot == NULL ? NULL : &t->certs[slot->cert];
}

const uint8_t *ck_sni_cert_id(const ck_sni_cert *c)
{
    return c->id;
}

const uint8_t *ck_sni_cert_chain_id(const ck_sni_cert *c)
{
    return c->chain_id;
}

void ck_sni_cert_leaf(const ck_sni_cert *c, const uint8_t **der, size_t *len)
{
    *der = c->leaf;
    *len = c->leaf_len;
}

void ck_sni_cert_chain(const ck_sni_cert *c, const uint8_t **der, size_t *len)
{
    *der = c->chain;
    *len = c->chain_len;
}

EVP_PKEY *ck_sni_cert_load_key(const ck_sni_table *t, const ck_sni_cert *c, OSSL_LIB_CTX *libctx,
                               ck_error *err)
{
    return t->loader(t->loader_arg, c->key_label, c->key, c->key_len, libctx, err);
}
