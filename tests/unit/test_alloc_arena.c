/* test_alloc_arena.c — src/common/alloc_arena.c: inside a scope this thread allocates from the
 * second arena, after it from its own again, and objects freed inside are not handed out after.
 * This test links jemalloc like the daemon (Makefile); the sanitizer build has no jemalloc, and
 * there the arena must be unusable and a scope must do nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc_arena.h"
#include "jemalloc_probe.h"

#define COUNT 64

/* The sanitizer build: ASan's allocator, no second arena, scopes change nothing. */
static void check_without_jemalloc(void)
{
    struct ck_alloc_arena a;
    ck_alloc_arena_init(&a);
    assert_false(a.usable);
    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&a, &scope);
    assert_false(scope.entered);
    ck_alloc_arena_leave(&scope);
    void *p = malloc(64);
    assert_non_null(p);
    free(p);
}

static void check_with_jemalloc(void)
{
    struct ck_alloc_arena a;
    ck_alloc_arena_init(&a);
    if (per_cpu_arenas()) { /* a thread could not be given its arena back: no scopes */
        assert_false(a.usable);
        return;
    }
    assert_true(a.usable);
    void *before = malloc(48);
    unsigned home = arena_of(before);
    assert_int_not_equal(home, a.index);

    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&a, &scope);
    assert_true(scope.entered);
    void *inside[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        inside[i] = malloc(16 + 64 * i); /* small size classes, and a few larger */
        assert_non_null(inside[i]);
        assert_int_equal(arena_of(inside[i]), a.index);
    }
    for (size_t i = 0; i < COUNT; i += 2) /* freed inside: back to the second arena */
        free(inside[i]);
    ck_alloc_arena_leave(&scope);
    assert_false(scope.entered);

    void *after[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        after[i] = malloc(16 + 64 * i);
        assert_non_null(after[i]);
        assert_int_equal(arena_of(after[i]), home);
    }
    for (size_t i = 0; i < COUNT; i++) {
        free(after[i]);
        if (i % 2 == 1)
            free(inside[i]); /* freed outside a scope: any arena's object may be freed anywhere */
    }
    free(before);
}

/* What a scope does depends on the allocator the binary was linked with. */
static void test_scope_moves_allocations(void **state)
{
    (void)state;
    if (mallctl == NULL)
        check_without_jemalloc();
    else
        check_with_jemalloc();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_moves_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
