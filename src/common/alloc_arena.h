/* alloc_arena.h — keeps long-lived allocations apart from short-lived ones when the daemon's
 * allocator is jemalloc.
 *
 * The edge keeps up to a hundred thousand parsed certificates for hours and OpenSSL makes
 * hundreds of short-lived allocations in every handshake. From one arena, the short-lived ones
 * fill the holes between the long-lived ones, so a handshake's own objects end up spread over
 * hundreds of megabytes of pages instead of a few hot ones. A scope sends the calling thread's
 * allocations (and frees) to a second arena while it makes or frees long-lived objects: with
 * OpenSSL routed (ck_alloc_arena_route_openssl, what certkeep's main does), OpenSSL's
 * allocations only, so long-lived data made in a scope must come from OPENSSL_malloc and
 * friends; otherwise all of the thread's.
 *
 * Without jemalloc (the unit tests, the sanitizer build) every call does nothing. Entering and
 * leaving take no lock: a scope changes only the calling thread's state (the cells' allocations
 * inside one take the cell heap's). A scope is left on the thread that entered it,
 * and nested scopes are left in the reverse order. */
#ifndef CK_COMMON_ALLOC_ARENA_H
#define CK_COMMON_ALLOC_ARENA_H

#include <stdbool.h>

struct ck_alloc_arena {
    unsigned index;
    bool usable; /* false: not jemalloc, or it could not make the arena */
};

/* Makes the second arena. Never fails: without one (not jemalloc, or jemalloc with per-CPU
 * arenas), scopes do nothing. The arena is kept for the life of the process (jemalloc destroys
 * only empty ones), so make one per long-lived owner (the daemon makes two: the staging and the
 * production edge caches), not one per request. */
void ck_alloc_arena_init(struct ck_alloc_arena *a);

/* Sends OpenSSL's allocations through certkeep's hooks (CRYPTO_set_mem_functions), so that a
 * scope can route them to its arena without touching the thread's cache. Call it first in
 * main(), before any other thread starts and before anything makes OpenSSL allocate (libcurl's
 * start does): it sets OpenSSL's allocator for the whole process. Outside a scope the hooks call
 * malloc, realloc and free. False without jemalloc as the process's malloc, or when OpenSSL has
 * allocated already; scopes then take the slower way below. Once routed, a further call changes
 * nothing and returns true. */
bool ck_alloc_arena_route_openssl(void);

/* Whether p is one of the cells in which a routed scope keeps OpenSSL's small allocations (up to
 * CK_CELL_MAX bytes, cell_heap.h) instead of its arena: packed 8 bytes apart, where jemalloc
 * rounds to 16 and more. Shared by every arena. For tests and benchmarks. */
bool ck_alloc_arena_holds_cell(const void *p);

struct ck_alloc_scope {
    unsigned previous;  /* the thread's arena before (not routed) */
    int previous_flags; /* the thread's routing before (routed) */
    bool entered, routed;
};

/* Until ck_alloc_arena_leave, the calling thread's allocations come from a:
 * - with OpenSSL routed (above), OpenSSL's allocations only, at no cost to enter or leave:
 *   the small ones in cells (ck_alloc_arena_holds_cell), the others made and freed past the
 *   thread's cache (jemalloc's mallocx and dallocx with an arena and no tcache); other
 *   allocations stay where they were;
 * - otherwise all of them: the thread is moved to the arena, and its cache of freed objects is
 *   flushed on the way in and out so that neither arena's objects are handed out for the
 *   other's. The flushes cost tens of microseconds, so scopes are for rare, slow work (a cache
 *   miss), not for every handshake. */
void ck_alloc_arena_enter(const struct ck_alloc_arena *a, struct ck_alloc_scope *scope);
void ck_alloc_arena_leave(struct ck_alloc_scope *scope);

#endif
