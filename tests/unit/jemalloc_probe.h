/* jemalloc_probe.h — what the allocator-arena tests ask jemalloc: which arena an allocation came
 * from, what the thread has allocated, and whether arenas are per CPU. mallctl is a weak reference,
 * NULL in the sanitizer build (no jemalloc). Header-only, for tests that link jemalloc; include it
 * after <cmocka.h>. */
#ifndef CK_TESTS_JEMALLOC_PROBE_H
#define CK_TESTS_JEMALLOC_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

/* The arena p was allocated from (jemalloc must know p). */
static inline unsigned arena_of(void *p)
{
    unsigned index = 0;
    size_t len = sizeof(index);
    assert_int_equal(mallctl("arenas.lookup", &index, &len, &p, sizeof(p)), 0);
    return index;
}

/* One of jemalloc's per-thread totals: "thread.allocated" or "thread.deallocated" (bytes). */
static inline uint64_t thread_counter(const char *name)
{
    uint64_t value = 0;
    size_t len = sizeof(value);
    assert_int_equal(mallctl(name, &value, &len, NULL, 0), 0);
    return value;
}

static inline bool per_cpu_arenas(void)
{
    const char *percpu = NULL;
    size_t len = sizeof(percpu);
    return mallctl("opt.percpu_arena", &percpu, &len, NULL, 0) == 0 && percpu != NULL &&
           strcmp(percpu, "disabled") != 0;
}

#endif
