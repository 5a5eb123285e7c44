/* alloc_arena.h — keeps long-lived allocations apart from short-lived ones when the daemon's
 * allocator is jemalloc.
 *
 * The edge keeps up to a hundred thousand parsed certificates for hours and OpenSSL makes
 * hundreds of short-lived allocations in every handshake. From one arena, the short-lived ones
 * fill the holes between the long-lived ones, so a handshake's own objects end up spread over
 * hundreds of megabytes of pages instead of a few hot ones. A scope moves the calling thread's
 * allocations (and frees) to a second arena while it makes or frees long-lived objects.
 *
 * Without jemalloc (the unit tests, the sanitizer build) every call does nothing. No lock: each
 * scope changes only the calling thread's arena. */
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

struct ck_alloc_scope {
    unsigned previous;
    bool entered;
};

/* Until ck_alloc_arena_leave, the calling thread allocates from a. The thread's cache of freed
 * objects is flushed on the way in and out, so that neither arena's objects are handed out for
 * the other's; that flush is why scopes are for rare, slow work (a cache miss), not for every
 * handshake. */
void ck_alloc_arena_enter(const struct ck_alloc_arena *a, struct ck_alloc_scope *scope);
void ck_alloc_arena_leave(struct ck_alloc_scope *scope);

#endif
