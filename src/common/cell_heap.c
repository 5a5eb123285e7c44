/* cell_heap.c — see cell_heap.h. */
#include "common/cell_heap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* 64 KiB: a slab of 512-byte cells still holds 125, and the few slabs a size class has
 * partly free at any time cost little next to a hundred thousand certificates. */
#define SLAB_SIZE CK_CELL_SLAB_SIZE
#define MAX_CELLS (SLAB_SIZE / 8)

struct ck_cell_slab {
    struct ck_cell_slab *prev, *next; /* in with_room[] for its size, or (next) in empty */
    unsigned char *free_cells;        /* freed cells, each holding the next one's address */
    uint32_t cell_size;               /* 0: empty, in the heap's empty list */
    uint32_t bump;                    /* offset of the first cell never handed out */
    uint32_t used;                    /* cells handed out */
    bool listed;                      /* in with_room[] */
    /* A bit per cell in use, 1.6% of the slab: a double free or a stray pointer would otherwise
     * put a live cell on the free list and hand it out twice. */
    uint64_t in_use[MAX_CELLS / 64];
};

/* The slab's header, rounded up to 16 so that cells of 16n bytes are 16-aligned. */
#define CELLS_START ((sizeof(struct ck_cell_slab) + 15) & ~(size_t)15)

bool ck_cell_heap_init(struct ck_cell_heap *h, size_t reserve_bytes)
{
    memset(h, 0, sizeof(*h));
    size_t slabs = reserve_bytes / SLAB_SIZE;
    long page = sysconf(_SC_PAGESIZE);
    if (slabs == 0 || page <= 0 || SLAB_SIZE % (size_t)page != 0)
        return false;
    /* PROT_NONE: address space only; slabs are made writable as they are first taken. */
    size_t len = (slabs + 1) * SLAB_SIZE;
    void *mapping = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED)
        return false;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        munmap(mapping, len);
        return false;
    }
    uintptr_t aligned = ((uintptr_t)mapping + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1);
    h->mapping = mapping;
    h->mapping_len = len;
    h->page_size = (size_t)page;
    h->base = h->untouched = (unsigned char *)aligned;
    h->end = h->base + slabs * SLAB_SIZE;
    return true;
}

void ck_cell_heap_destroy(struct ck_cell_heap *h)
{
    if (h->base == NULL)
        return;
    munmap(h->mapping, h->mapping_len);
    pthread_mutex_destroy(&h->lock);
    memset(h, 0, sizeof(*h));
}

static struct ck_cell_slab *slab_of(const void *p)
{
    return (struct ck_cell_slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1));
}

static void list_push(struct ck_cell_slab **head, struct ck_cell_slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head != NULL)
        (*head)->prev = s;
    *head = s;
    s->listed = true;
}

static void list_remove(struct ck_cell_slab **head, struct ck_cell_slab *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->listed = false;
}

/* An empty slab for cells of cell_size: a released one, or the next of the range. */
static struct ck_cell_slab *take_slab(struct ck_cell_heap *h, uint32_t cell_size)
{
    struct ck_cell_slab *s = h->empty;
    if (s != NULL) {
        h->empty = s->next;
    } else {
        if ((size_t)(h->end - h->untouched) < SLAB_SIZE ||
            mprotect(h->untouched, SLAB_SIZE, PROT_READ | PROT_WRITE) != 0)
            return NULL;
        s = (struct ck_cell_slab *)h->untouched;
        h->untouched += SLAB_SIZE;
    }
    *s = (struct ck_cell_slab){.cell_size = cell_size, .bump = CELLS_START};
    return s;
}

/* The slot of the cell offset bytes into s in its in_use bitmap (the offset must be a cell's). */
static size_t cell_index(const struct ck_cell_slab *s, size_t offset)
{
    return (offset - CELLS_START) / s->cell_size;
}

static uint64_t cell_bit(size_t index)
{
    return (uint64_t)1 << (index % 64);
}

static size_t class_of(size_t size)
{
    return (size - 1) / 8;
}

static bool has_room(const struct ck_cell_slab *s)
{
    return s->free_cells != NULL || s->bump + s->cell_size <= SLAB_SIZE;
}

void *ck_cell_heap_alloc(struct ck_cell_heap *h, size_t size)
{
    if (h->base == NULL || size == 0 || size > CK_CELL_MAX)
        return NULL;
    size_t size_class = class_of(size);
    unsigned char *cell = NULL;
    pthread_mutex_lock(&h->lock);
    struct ck_cell_slab *s = h->with_room[size_class];
    if (s == NULL) {
        s = take_slab(h, (uint32_t)(size_class + 1) * 8);
        if (s == NULL)
            goto cleanup;
        list_push(&h->with_room[size_class], s);
    }
    if (s->free_cells != NULL) {
        cell = s->free_cells;
        memcpy(&s->free_cells, cell, sizeof(s->free_cells));
    } else {
        cell = (unsigned char *)s + s->bump;
        s->bump += s->cell_size;
    }
    size_t index = cell_index(s, (size_t)(cell - (unsigned char *)s));
    s->in_use[index / 64] |= cell_bit(index);
    s->used++;
    h->cells++;
    if (!has_room(s))
        list_remove(&h->with_room[size_class], s);
cleanup:
    pthread_mutex_unlock(&h->lock);
    return cell;
}

size_t ck_cell_heap_size(const struct ck_cell_heap *h, const void *p)
{
    (void)h;
    return slab_of(p)->cell_size;
}

bool ck_cell_heap_fits(const struct ck_cell_heap *h, const void *p, size_t size)
{
    return size > 0 && size <= CK_CELL_MAX && class_of(size) == class_of(ck_cell_heap_size(h, p));
}

/* Gives an empty slab's pages but the header's back to the kernel; the slab can then take
 * another size. */
static void release(struct ck_cell_heap *h, struct ck_cell_slab *s)
{
    (void)madvise((unsigned char *)s + h->page_size, SLAB_SIZE - h->page_size, MADV_DONTNEED);
    *s = (struct ck_cell_slab){.next = h->empty};
    h->empty = s;
}

static _Noreturn void corrupt(const void *p)
{
    fprintf(stderr,
            "certkeep: freeing %p, which is not a cell in use (a double free or a stray "
            "pointer): memory is corrupt\n",
            p);
    abort();
}

void ck_cell_heap_free(struct ck_cell_heap *h, void *p)
{
    struct ck_cell_slab *s = slab_of(p);
    size_t offset = (size_t)((unsigned char *)p - (unsigned char *)s);
    pthread_mutex_lock(&h->lock);
    /* A slab never handed out is not readable: its header is checked only after. */
    if ((unsigned char *)p >= h->untouched || s->cell_size == 0 || offset < CELLS_START ||
        offset >= s->bump || (offset - CELLS_START) % s->cell_size != 0)
        corrupt(p);
    size_t index = cell_index(s, offset);
    if ((s->in_use[index / 64] & cell_bit(index)) == 0)
        corrupt(p);
    s->in_use[index / 64] &= ~cell_bit(index);
    size_t size_class = class_of(s->cell_size);
    memcpy(p, &s->free_cells, sizeof(s->free_cells));
    s->free_cells = p;
    s->used--;
    h->cells--;
    if (!s->listed)
        list_push(&h->with_room[size_class], s);
    /* The last slab with room for its size stays: cells made and freed within one miss would
     * otherwise fault its pages back in every time. */
    if (s->used == 0 && (s->prev != NULL || s->next != NULL)) {
        list_remove(&h->with_room[size_class], s);
        release(h, s);
    }
    pthread_mutex_unlock(&h->lock);
}

size_t ck_cell_heap_slab_capacity(size_t cell_size)
{
    return (SLAB_SIZE - CELLS_START) / cell_size;
}

size_t ck_cell_heap_live_cells(struct ck_cell_heap *h)
{
    pthread_mutex_lock(&h->lock);
    size_t cells = h->cells;
    pthread_mutex_unlock(&h->lock);
    return cells;
}
