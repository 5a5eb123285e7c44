/* alloc_arena.c — see alloc_arena.h. jemalloc's control interface is reached through a weak
 * reference, so the library links without jemalloc (tests, sanitizers) and only the daemon,
 * which links it, gets the second arena. */
#include "common/alloc_arena.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/cell_heap.h"

/* jemalloc's (Debian builds it without a prefix); NULL when another allocator is linked. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
extern void *mallocx(size_t size, int flags) __attribute__((weak));
extern void *rallocx(void *ptr, size_t size, int flags) __attribute__((weak));
extern void dallocx(void *ptr, int flags) __attribute__((weak));

/* jemalloc.h's MALLOCX_ARENA and MALLOCX_TCACHE_NONE (its header is not needed for two). */
#define ARENA_FLAG(index) ((int)(((unsigned)(index) + 1) << 20))
#define NO_TCACHE_FLAG    ((int)((-1 + 2) << 8))

/* ---- OpenSSL's allocations, routed while a scope is open ---- */

/* mallocx flags for OpenSSL's allocations on this thread, 0 outside a scope. Per thread, as
 * jemalloc's own thread.arena is: a scope belongs to the thread that opened it. */
static _Thread_local int openssl_flags;

/* Where a scope's small allocations go (cell_heap.h), for every arena: OpenSSL's hooks take no
 * argument to find an owner by, and a cell may be freed by any thread, in a scope or not. Set up
 * once by ck_alloc_arena_route_openssl before the hooks (and any thread) exist, then only read
 * outside its own lock. 8 GiB of address space: 2.8 million edge certificates. */
static struct ck_cell_heap openssl_cells;
#define CELL_RESERVE ((size_t)8 << 30)

/* As OpenSSL's own allocator: a size of 0 gets NULL, realloc to 0 frees. */
static void *route_malloc(size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    if (size == 0)
        return NULL;
    if (openssl_flags == 0)
        return malloc(size);
    void *cell = ck_cell_heap_alloc(&openssl_cells, size);
    return cell != NULL ? cell : mallocx(size, openssl_flags);
}

static void route_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p == NULL)
        return;
    if (ck_cell_heap_owns(&openssl_cells, p))
        ck_cell_heap_free(&openssl_cells, p);
    else if (openssl_flags == 0)
        free(p);
    else
        dallocx(p, NO_TCACHE_FLAG); /* to the object's own arena, not the thread's cache */
}

/* A cell grows or shrinks into whatever the thread allocates from now (a cell of the new size
 * in a scope, malloc's outside); within its size class it stays. */
static void *realloc_cell(void *p, size_t size, const char *file, int line)
{
    if (ck_cell_heap_fits(&openssl_cells, p, size))
        return p;
    size_t have = ck_cell_heap_size(&openssl_cells, p);
    void *moved = route_malloc(size, file, line);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, size < have ? size : have);
    ck_cell_heap_free(&openssl_cells, p);
    return moved;
}

static void *route_realloc(void *p, size_t size, const char *file, int line)
{
    if (p == NULL)
        return route_malloc(size, file, line);
    if (size == 0) {
        route_free(p, file, line);
        return NULL;
    }
    if (ck_cell_heap_owns(&openssl_cells, p))
        return realloc_cell(p, size, file, line);
    return openssl_flags == 0 ? realloc(p, size) : rallocx(p, size, openssl_flags);
}

/* jemalloc loaded is not enough: under a preloaded allocator, malloc and free are another's, and
 * what mallocx made inside a scope would be freed by that one outside. jemalloc counts what its
 * malloc hands this thread. */
static bool malloc_is_jemalloc(void)
{
    uint64_t before = 0, after = 0;
    size_t len = sizeof(before);
    if (mallctl == NULL || mallctl("thread.allocated", &before, &len, NULL, 0) != 0)
        return false;
    void *probe = malloc(64);
    len = sizeof(after);
    int rc = mallctl("thread.allocated", &after, &len, NULL, 0);
    free(probe);
    return probe != NULL && rc == 0 && after > before;
}

static bool openssl_is_routed(void)
{
    CRYPTO_malloc_fn current = NULL;
    CRYPTO_get_mem_functions(&current, NULL, NULL);
    return current == route_malloc;
}

bool ck_alloc_arena_route_openssl(void)
{
    if (openssl_is_routed())
        return true;
    if (mallocx == NULL || rallocx == NULL || dallocx == NULL || !malloc_is_jemalloc())
        return false;
    /* Without the reserve the scopes still work, from their arenas alone. */
    bool made = openssl_cells.base == NULL && ck_cell_heap_init(&openssl_cells, CELL_RESERVE);
    if (CRYPTO_set_mem_functions(route_malloc, route_realloc, route_free) == 1)
        return true;
    if (made) /* OpenSSL has allocated already: nothing will ever be a cell */
        ck_cell_heap_destroy(&openssl_cells);
    return false;
}

bool ck_alloc_arena_holds_cell(const void *p)
{
    return ck_cell_heap_owns(&openssl_cells, p);
}

/* ---- the arena ---- */

/* With per-CPU arenas (MALLOC_CONF=percpu_arena:...) jemalloc lets a thread onto a manual arena
 * but refuses to set it back to an automatic one: scopes are then left unused. */
static bool arenas_per_thread(void)
{
    const char *percpu = NULL;
    size_t len = sizeof(percpu);
    return mallctl("opt.percpu_arena", &percpu, &len, NULL, 0) != 0 || percpu == NULL ||
           strcmp(percpu, "disabled") == 0;
}

void ck_alloc_arena_init(struct ck_alloc_arena *a)
{
    size_t len = sizeof(a->index);
    a->usable = mallctl != NULL && arenas_per_thread() &&
                mallctl("arenas.create", &a->index, &len, NULL, 0) == 0;
}

/* Switches even when the flush fails (a thread without a cache, MALLOC_CONF=tcache:false), so
 * that leaving a scope always gives the thread its arena back. */
static bool use_arena(unsigned index, unsigned *previous)
{
    size_t len = sizeof(*previous);
    (void)mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    return mallctl("thread.arena", previous, &len, &index, sizeof(index)) == 0;
}

void ck_alloc_arena_enter(const struct ck_alloc_arena *a, struct ck_alloc_scope *scope)
{
    scope->entered = scope->routed = false;
    if (a == NULL || !a->usable)
        return;
    if (openssl_is_routed()) {
        scope->previous_flags = openssl_flags;
        openssl_flags = ARENA_FLAG(a->index) | NO_TCACHE_FLAG;
        scope->entered = scope->routed = true;
        return;
    }
    scope->entered = use_arena(a->index, &scope->previous);
}

void ck_alloc_arena_leave(struct ck_alloc_scope *scope)
{
    unsigned ignored;
    if (scope->entered && scope->routed)
        openssl_flags = scope->previous_flags;
    else if (scope->entered)
        use_arena(scope->previous, &ignored);
    scope->entered = scope->routed = false;
}
