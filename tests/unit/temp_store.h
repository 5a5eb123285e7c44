/* temp_store.h — the unit tests' store: a fresh SQLite store (migrated, as the daemon opens it)
 * in a temporary folder of its own, removed afterwards with every file SQLite made beside it.
 * Header-only because each unit test is one translation unit. */
#ifndef CK_TESTS_TEMP_STORE_H
#define CK_TESTS_TEMP_STORE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "crypto/seal.h"
#include "store/store.h"

struct temp_store {
    char dir[64];
    char path[96]; /* the database file, for a second connection to the same store */
    struct ck_store *st;
};

/* Closes the store and removes its files and folder. Safe on a store that failed to open, on a
 * zeroed struct and twice. */
static inline void temp_store_remove(struct temp_store *t)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[sizeof(t->path) + 16];
    ck_store_close(t->st);
    t->st = NULL;
    if (t->path[0] != '\0')
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
            snprintf(file, sizeof(file), "%s%s", t->path, suffixes[i]);
            unlink(file);
        }
    if (t->dir[0] != '\0')
        rmdir(t->dir);
    t->path[0] = t->dir[0] = '\0';
}

/* Makes /tmp/ck-TAG-XXXXXX and names the database file in it, with no store opened yet (for a
 * test that writes an old database itself). 0, or -1 with the reason on stderr. */
static inline int temp_store_folder(struct temp_store *t, const char *tag)
{
    *t = (struct temp_store){0};
    snprintf(t->dir, sizeof(t->dir), "/tmp/ck-%s-XXXXXX", tag);
    if (mkdtemp(t->dir) == NULL) {
        perror("temp_store: mkdtemp");
        t->dir[0] = '\0';
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s/certkeep.db", t->dir);
    return 0;
}

/* temp_store_folder, then opens the store in it. 0, or -1 with the reason on stderr and nothing
 * left behind. */
static inline int temp_store_open(struct temp_store *t, const char *tag)
{
    ck_error err = {0};
    if (temp_store_folder(t, tag) != 0)
        return -1;
    if (ck_store_open(t->path, &t->st, &err) != 0) {
        fprintf(stderr, "temp_store: %s\n", err.message);
        temp_store_remove(t);
        return -1;
    }
    return 0;
}

/* A temp store with a fresh master key and one tenant ("lab") besides the operator: the fixture
 * of the tests that run a job or an order step against a store. */
struct tenant_store {
    struct temp_store db;
    ck_master_key mk;
    int64_t tenant_id;
};

/* 0, or -1 (with the reason on stderr); tenant_store_remove cleans up after either. */
static inline int tenant_store_open(struct tenant_store *f, const char *tag)
{
    struct ck_tenant t = {0};
    ck_error err = {0};
    if (RAND_bytes(f->mk.bytes, sizeof(f->mk.bytes)) != 1 || temp_store_open(&f->db, tag) != 0)
        return -1;
    if (ck_store_tenant_create(f->db.st, "lab", &t, &err) != 0) {
        fprintf(stderr, "tenant_store_open: %s\n", err.message);
        return -1;
    }
    f->tenant_id = t.id;
    ck_tenant_free(&t);
    return 0;
}

static inline void tenant_store_remove(struct tenant_store *f)
{
    temp_store_remove(&f->db);
    ck_master_key_wipe(&f->mk);
}

/* cmocka fixture halves: a new tenant_store in *state, and its removal. */
static inline int tenant_store_setup(void **state, const char *tag)
{
    struct tenant_store *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return tenant_store_open(f, tag);
}

static inline int tenant_store_teardown(void **state)
{
    struct tenant_store *f = *state;
    tenant_store_remove(f);
    free(f);
    return 0;
}

#endif
