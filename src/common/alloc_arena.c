/* alloc_arena.c — see alloc_arena.h. jemalloc's control interface is reached through a weak
 * reference, so the library links without jemalloc (tests, sanitizers) and only the daemon,
 * which links it, gets the second arena. */
#include "common/alloc_arena.h"

#include <stddef.h>
#include <string.h>

/* jemalloc's (Debian builds it without a prefix); NULL when another allocator is linked. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

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
    scope->entered = a != NULL && a->usable && use_arena(a->index, &scope->previous);
}

void ck_alloc_arena_leave(struct ck_alloc_scope *scope)
{
    unsigned ignored;
    if (scope->entered)
        use_arena(scope->previous, &ignored);
    scope->entered = false;
}
