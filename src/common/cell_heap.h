/* cell_heap.h — small long-lived objects packed in size classes 8 bytes apart.
 *
 * jemalloc rounds every request of 16 bytes or more up to a multiple of 16 (and coarser above
 * 128): a 24-byte object takes 32, a 40-byte one 48. OpenSSL keeps about 64 small objects for
 * each certificate the edge holds parsed (ASN.1 strings of 24 bytes, extensions of 40, names and
 * stacks), and the rounding costs 300 of the 3,170 bytes each, a tenth of the edge's memory for a
 * hundred thousand certificates. A cell heap serves requests of up to CK_CELL_MAX bytes from
 * slabs whose cells all have one size, a multiple of 8.
 *
 * Alignment: a cell is aligned to 8 bytes, and to 16 when its size is a multiple of 16. C's
 * malloc promises 16 for every request of 16 bytes or more (for long double), so a cell heap is
 * not a general malloc: certkeep gives it only the OpenSSL allocations of an edge cache miss or
 * eviction (alloc_arena.h), certificate and key objects and the parse's short-lived ones, whose
 * types need 8 on the platforms certkeep builds for, as mimalloc's 24-byte blocks do.
 *
 * Slabs come from one range of address space reserved at init, so whether a pointer is a cell is
 * two comparisons (ck_cell_heap_owns) and its slab is the pointer rounded down. A slab whose
 * cells are all free gives its pages but the first back to the kernel and can take another
 * size, except the one slab of a size that is last with room, kept for the next cells. Each slab
 * keeps a bit per cell in use, so a free of anything but a live cell stops the process. When the
 * range is used up, alloc returns NULL and the caller falls back to its allocator.
 *
 * Thread-safe: one mutex, taken by every small OpenSSL allocation and free of a miss or an
 * eviction (a few hundred a miss) and by a handshake's last reference to an evicted certificate;
 * never by a handshake's own allocations. */
#ifndef CK_COMMON_CELL_HEAP_H
#define CK_COMMON_CELL_HEAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define CK_CELL_MAX         512
#define CK_CELL_CLASS_COUNT (CK_CELL_MAX / 8)
#define CK_CELL_SLAB_SIZE   ((size_t)64 * 1024) /* slabs are aligned to their size */

struct ck_cell_slab;

struct ck_cell_heap {
    pthread_mutex_t lock;
    unsigned char *base, *end; /* the reserved range, in whole slabs; NULL base: unusable */
    void *mapping;             /* what mmap returned (base is aligned inside it) */
    size_t mapping_len, page_size;
    unsigned char *untouched;                            /* first slab never handed out */
    struct ck_cell_slab *with_room[CK_CELL_CLASS_COUNT]; /* per size: slabs with a free cell */
    struct ck_cell_slab *empty;                          /* slabs to reuse for any size */
    size_t cells;                                        /* handed out and not freed */
};

/* Reserves reserve_bytes of address space (rounded to whole slabs; nothing resident until used).
 * False when it cannot: the heap is then unusable and alloc always returns NULL. */
bool ck_cell_heap_init(struct ck_cell_heap *h, size_t reserve_bytes);

/* Unmaps the range. Every cell is gone with it. */
void ck_cell_heap_destroy(struct ck_cell_heap *h);

/* A cell of at least size bytes, or NULL when size is 0 or over CK_CELL_MAX, or the range is used
 * up. The cell's contents are undefined. */
void *ck_cell_heap_alloc(struct ck_cell_heap *h, size_t size);

/* Whether p points into the heap's range: then it must be a cell alloc returned. */
static inline bool ck_cell_heap_owns(const struct ck_cell_heap *h, const void *p)
{
    return h->base != NULL && (const unsigned char *)p >= h->base &&
           (const unsigned char *)p < h->end;
}

/* The usable size of cell p (its class: the request rounded up to 8). */
size_t ck_cell_heap_size(const struct ck_cell_heap *h, const void *p);

/* Whether live cell p is the cell alloc would give for size bytes (the same size class): a
 * realloc to size can keep it. */
bool ck_cell_heap_fits(const struct ck_cell_heap *h, const void *p, size_t size);

/* Frees cell p (ck_cell_heap_owns must hold). Anything but a live cell (a double free, a pointer
 * inside a cell or past the cells handed out) aborts: it can only come from memory corruption. */
void ck_cell_heap_free(struct ck_cell_heap *h, void *p);

/* How many cells of cell_size bytes (a multiple of 8, at most CK_CELL_MAX) one slab holds (for
 * tests). */
size_t ck_cell_heap_slab_capacity(size_t cell_size);

/* Cells handed out and not freed (for tests). */
size_t ck_cell_heap_live_cells(struct ck_cell_heap *h);

#endif
