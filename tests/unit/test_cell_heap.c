/* test_cell_heap.c — src/common/cell_heap.c: cells of every size up to CK_CELL_MAX, 8 bytes apart
 * and aligned, that never overlap and know their size class; freed cells reused; an emptied slab
 * taken by another size; ownership by address; a used-up range; a double free or stray pointer
 * stops the process; cells made and freed by two threads at once. Runs in the sanitizer build too
 * (the heap needs no jemalloc). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "common/cell_heap.h"

#define RESERVE     ((size_t)64 << 20)
#define SMALL_SLABS 2

static int heap_setup(void **state)
{
    struct ck_cell_heap *h = malloc(sizeof(*h));
    if (h == NULL || !ck_cell_heap_init(h, RESERVE)) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int heap_teardown(void **state)
{
    ck_cell_heap_destroy(*state);
    free(*state);
    return 0;
}

/* Every size 1..CK_CELL_MAX: a cell of the size rounded up to 8, aligned to 8 (16 for sizes of
 * 16n), inside the range, filled without touching any other cell. */
static void test_every_size_gets_its_own_cell(void **state)
{
    struct ck_cell_heap *h = *state;
    unsigned char *cells[CK_CELL_MAX + 1] = {0};
    for (size_t size = 1; size <= CK_CELL_MAX; size++) {
        cells[size] = ck_cell_heap_alloc(h, size);
        assert_non_null(cells[size]);
        assert_true(ck_cell_heap_owns(h, cells[size]));
        size_t rounded = (size + 7) / 8 * 8;
        assert_int_equal(ck_cell_heap_size(h, cells[size]), rounded);
        assert_true(ck_cell_heap_fits(h, cells[size], rounded - 7)); /* its size class, */
        assert_true(ck_cell_heap_fits(h, cells[size], rounded));
        assert_false(ck_cell_heap_fits(h, cells[size], rounded + 1)); /* and no other */
        assert_false(ck_cell_heap_fits(h, cells[size], 0));
        assert_int_equal((uintptr_t)cells[size] % (rounded % 16 == 0 ? 16 : 8), 0);
        memset(cells[size], (int)(size & 0xff), rounded);
    }
    assert_int_equal(ck_cell_heap_live_cells(h), CK_CELL_MAX);
    for (size_t size = 1; size <= CK_CELL_MAX; size++) {
        size_t rounded = (size + 7) / 8 * 8;
        for (size_t i = 0; i < rounded; i++)
            assert_int_equal(cells[size][i], size & 0xff);
        ck_cell_heap_free(h, cells[size]);
    }
    assert_int_equal(ck_cell_heap_live_cells(h), 0);
}

static void test_refuses_what_is_not_small(void **state)
{
    struct ck_cell_heap *h = *state;
    assert_null(ck_cell_heap_alloc(h, 0));
    assert_null(ck_cell_heap_alloc(h, CK_CELL_MAX + 1));
    int on_stack = 0;
    void *from_malloc = malloc(24);
    assert_non_null(from_malloc);
    assert_false(ck_cell_heap_owns(h, &on_stack));
    assert_false(ck_cell_heap_owns(h, from_malloc));
    free(from_malloc);
}

/* 24-byte objects are packed 24 apart (jemalloc would space them 32), and a freed one is the next
 * one handed out. */
static void test_cells_packed_and_reused(void **state)
{
    struct ck_cell_heap *h = *state;
    unsigned char *a = ck_cell_heap_alloc(h, 24), *b = ck_cell_heap_alloc(h, 20);
    unsigned char *c = ck_cell_heap_alloc(h, 24);
    assert_non_null(a);
    assert_ptr_equal(b, a + 24);
    assert_ptr_equal(c, b + 24);
    ck_cell_heap_free(h, b);
    assert_ptr_equal(ck_cell_heap_alloc(h, 17), b);
    ck_cell_heap_free(h, a);
    ck_cell_heap_free(h, b);
    ck_cell_heap_free(h, c);
}

/* Two full slabs of 512-byte cells, all freed: one stays for its size, the other is given back
 * and is the slab the next new size takes. */
static void test_emptied_slab_taken_by_another_size(void **state)
{
    struct ck_cell_heap *h = *state;
    size_t per_slab = ck_cell_heap_slab_capacity(CK_CELL_MAX), count = 2 * per_slab;
    unsigned char **cells = calloc(count, sizeof(*cells));
    assert_non_null(cells);
    for (size_t i = 0; i < count; i++) {
        cells[i] = ck_cell_heap_alloc(h, CK_CELL_MAX);
        assert_non_null(cells[i]);
        memset(cells[i], 0xa5, CK_CELL_MAX);
    }
    uintptr_t first_slab = (uintptr_t)cells[0] & ~(uintptr_t)(CK_CELL_SLAB_SIZE - 1);
    uintptr_t second_slab = (uintptr_t)cells[count - 1] & ~(uintptr_t)(CK_CELL_SLAB_SIZE - 1);
    assert_int_not_equal(first_slab, second_slab);
    for (size_t i = 0; i < count; i++)
        ck_cell_heap_free(h, cells[i]);
    /* A size no slab holds yet, enough cells to reach well past the first page, whose pages
     * were given back (they come back zeroed) and are used again. */
    enum { OTHER_COUNT = 400 };
    unsigned char *other[OTHER_COUNT];
    for (size_t i = 0; i < OTHER_COUNT; i++) {
        other[i] = ck_cell_heap_alloc(h, 40);
        assert_non_null(other[i]);
        uintptr_t taken = (uintptr_t)other[i] & ~(uintptr_t)(CK_CELL_SLAB_SIZE - 1);
        assert_true(taken == first_slab || taken == second_slab);
        memset(other[i], (int)(i & 0xff), 40);
    }
    assert_true(other[OTHER_COUNT - 1] - other[0] > 3 * 4096);
    for (size_t i = 0; i < OTHER_COUNT; i++) {
        for (size_t j = 0; j < 40; j++)
            assert_int_equal(other[i][j], i & 0xff);
        ck_cell_heap_free(h, other[i]);
    }
    free(cells);
}

/* A heap of two slabs: cells until both are full, then NULL (the caller's allocator takes
 * over); a freed cell makes room again. */
static void test_used_up_range_returns_null(void **state)
{
    (void)state;
    struct ck_cell_heap h;
    assert_true(ck_cell_heap_init(&h, SMALL_SLABS * CK_CELL_SLAB_SIZE));
    size_t per_slab = ck_cell_heap_slab_capacity(256), made = 0;
    unsigned char *last = NULL, *cell;
    while ((cell = ck_cell_heap_alloc(&h, 256)) != NULL && made <= SMALL_SLABS * per_slab) {
        last = cell;
        made++;
    }
    assert_null(cell);
    assert_int_equal(made, SMALL_SLABS * per_slab);
    assert_null(ck_cell_heap_alloc(&h, 8)); /* no slab left for another size either */
    ck_cell_heap_free(&h, last);
    assert_ptr_equal(ck_cell_heap_alloc(&h, 256), last);
    ck_cell_heap_destroy(&h);
    assert_false(ck_cell_heap_owns(&h, last));
    assert_null(ck_cell_heap_alloc(&h, 8)); /* destroyed: unusable */
}

/* Frees p in a child process: true when the child stopped with SIGABRT. */
static bool free_aborts(struct ck_cell_heap *h, void *p, bool free_first)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(STDERR_FILENO);
        if (free_first)
            ck_cell_heap_free(h, p);
        ck_cell_heap_free(h, p);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* Freeing anything but a live cell means memory is corrupt: the process stops, before the free
 * list can hand a cell out twice. */
static void test_bad_free_aborts(void **state)
{
    struct ck_cell_heap *h = *state;
    unsigned char *cell = ck_cell_heap_alloc(h, 64), *neighbour = ck_cell_heap_alloc(h, 64);
    assert_non_null(cell);
    assert_non_null(neighbour);
    assert_false(free_aborts(h, cell, false));    /* the control: a good free exits normally */
    assert_true(free_aborts(h, cell + 8, false)); /* inside a cell */
    assert_true(free_aborts(h, cell, true));      /* twice */
    assert_true(free_aborts(h, neighbour + 64, false)); /* past the last cell handed out */
    assert_true(free_aborts(h, cell + 16 * CK_CELL_SLAB_SIZE, false)); /* a slab never handed out */
    ck_cell_heap_free(h, cell);
    ck_cell_heap_free(h, neighbour);
}

#define THREAD_ROUNDS 20000
#define THREAD_LIVE   64

struct worker {
    struct ck_cell_heap *heap;
    unsigned char tag;
    bool ok;
};

/* Keeps THREAD_LIVE cells of varied sizes filled with its tag, replacing one each round, and
 * checks every cell it frees still holds the tag. */
static void *worker_run(void *arg)
{
    struct worker *w = arg;
    unsigned char *live[THREAD_LIVE] = {0};
    size_t sizes[THREAD_LIVE] = {0};
    uint32_t rng = w->tag * 2654435761u;
    w->ok = true;
    for (int round = 0; round < THREAD_ROUNDS; round++) {
        rng = rng * 1103515245u + 12345u;
        size_t slot = (rng >> 8) % THREAD_LIVE, size = 1 + (rng >> 16) % CK_CELL_MAX;
        if (live[slot] != NULL) {
            for (size_t i = 0; i < sizes[slot]; i++)
                w->ok &= live[slot][i] == w->tag;
            ck_cell_heap_free(w->heap, live[slot]);
        }
        live[slot] = ck_cell_heap_alloc(w->heap, size);
        if (live[slot] == NULL) {
            w->ok = false;
            break;
        }
        sizes[slot] = size;
        memset(live[slot], w->tag, size);
    }
    for (size_t slot = 0; slot < THREAD_LIVE; slot++)
        if (live[slot] != NULL)
            ck_cell_heap_free(w->heap, live[slot]);
    return NULL;
}

static void test_two_threads_share_the_heap(void **state)
{
    struct ck_cell_heap *h = *state;
    struct worker workers[2] = {{.heap = h, .tag = 0x3c}, {.heap = h, .tag = 0xc3}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_true(workers[i].ok);
    }
    assert_int_equal(ck_cell_heap_live_cells(h), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_size_gets_its_own_cell, heap_setup,
                                        heap_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_what_is_not_small, heap_setup, heap_teardown),
        cmocka_unit_test_setup_teardown(test_cells_packed_and_reused, heap_setup, heap_teardown),
        cmocka_unit_test_setup_teardown(test_emptied_slab_taken_by_another_size, heap_setup,
                                        heap_teardown),
        cmocka_unit_test(test_used_up_range_returns_null),
        cmocka_unit_test_setup_teardown(test_bad_free_aborts, heap_setup, heap_teardown),
        cmocka_unit_test_setup_teardown(test_two_threads_share_the_heap, heap_setup, heap_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
