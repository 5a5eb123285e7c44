/* test_alloc_arena_routed.c — src/common/alloc_arena.c with OpenSSL's allocations routed
 * (ck_alloc_arena_route_openssl, as the daemon's main does): inside a scope OpenSSL's
 * allocations, OpenSSL objects included, come from the second arena and other allocations stay
 * in the thread's; reallocs stay there, frees of either arena's objects work inside and outside,
 * and after the scope everything comes from the thread's arena again. Links jemalloc like the
 * daemon (Makefile); in the sanitizer build there is nothing to route and scopes do nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "common/alloc_arena.h"
#include "jemalloc_probe.h"

#define COUNT 48

static void check_routed(bool routed)
{
    assert_true(routed);
    struct ck_alloc_arena a;
    ck_alloc_arena_init(&a);
    if (per_cpu_arenas()) {
        assert_false(a.usable);
        return;
    }
    assert_true(a.usable);
    void *before = OPENSSL_malloc(48);
    unsigned home = arena_of(before);
    assert_int_not_equal(home, a.index);

    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&a, &scope);
    assert_true(scope.entered);
    assert_true(scope.routed);
    void *inside[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        inside[i] = OPENSSL_malloc(16 + 80 * i);
        assert_non_null(inside[i]);
        assert_int_equal(arena_of(inside[i]), a.index);
    }
    inside[0] = OPENSSL_realloc(inside[0], 4000); /* grown: still the second arena's */
    assert_non_null(inside[0]);
    assert_int_equal(arena_of(inside[0]), a.index);
    X509 *cert = X509_new(); /* an OpenSSL object, all its parts */
    assert_non_null(cert);
    assert_int_equal(arena_of(cert), a.index);
    void *plain = malloc(48); /* not OpenSSL's: left where it was */
    assert_int_equal(arena_of(plain), home);
    free(plain);
    OPENSSL_free(before); /* the thread's arena's object, freed inside */
    for (size_t i = 0; i < COUNT; i += 2)
        OPENSSL_free(inside[i]);
    assert_null(OPENSSL_malloc(0)); /* as OpenSSL's own allocator */
    ck_alloc_arena_leave(&scope);
    assert_false(scope.entered);

    void *after[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        after[i] = OPENSSL_malloc(16 + 80 * i);
        assert_non_null(after[i]);
        assert_int_equal(arena_of(after[i]), home);
    }
    for (size_t i = 0; i < COUNT; i++) {
        OPENSSL_free(after[i]);
        if (i % 2 == 1)
            OPENSSL_free(inside[i]); /* the second arena's, freed outside */
    }
    X509_free(cert);
}

static void check_without_jemalloc(bool routed)
{
    assert_false(routed);
    struct ck_alloc_arena a;
    ck_alloc_arena_init(&a);
    assert_false(a.usable);
    struct ck_alloc_scope scope;
    ck_alloc_arena_enter(&a, &scope);
    assert_false(scope.entered);
    ck_alloc_arena_leave(&scope);
    void *p = OPENSSL_malloc(64);
    assert_non_null(p);
    OPENSSL_free(p);
}

/* state: whether routing was set up at the start of main */
static void test_routed_scope_moves_openssl_allocations(void **state)
{
    bool routed = *(const bool *)*state;
    if (mallctl == NULL)
        check_without_jemalloc(routed);
    else
        check_routed(routed);
}

int main(void)
{
    bool routed = ck_alloc_arena_route_openssl(); /* first, as in certkeep's main */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_routed_scope_moves_openssl_allocations, &routed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
