/* coldcert.c — what a random name costs the edge's handshake path beyond one hot name, in-process
 * and without the handshake's cryptography: the steps that touch the chosen certificate.
 *
 * It builds the edge's SNI table and parsed-certificate cache the way the daemon does (DER leaves,
 * keys sealed under a master key made for the run, ck_unseal_private_key_ex as the key loader,
 * OpenSSL's allocations routed to the cache's arena), parses every certificate once so that all
 * are cached, then times, per selection and in CPU time, three cumulative steps:
 *   select   ck_edge_tables_select (SNI table, cache lookup, reference counts);
 *   use      + a new SSL and SSL_use_cert_and_key, as the ClientHello callback does;
 *   encode   + i2d_X509 of the leaf twice (length, then bytes), as libssl's Certificate message.
 * Each step runs with one name every time (its objects stay in the CPU caches) and with names
 * picked at random among COUNT (their objects are cold: COUNT parsed certificates take far more
 * than the last-level cache). Rounds alternate; the best of each is kept, since other work on the
 * machine only ever adds time. The difference is what cold memory costs a random-name handshake
 * on top of one name, cache misses excluded (bench/edge/README.md, "Random names").
 *
 *   make && cc -O2 -Isrc -o build/coldcert bench/edge/coldcert.c build/libcertkeep.a \
 *       $(pkg-config --libs openssl libsodium nettle) -ljemalloc
 *   taskset -c 0 build/coldcert PKI_DIR [COUNT] [SELECTIONS_PER_ROUND] [ROUNDS]
 *
 * PKI_DIR is run.sh's (names.txt, and pem/NAME.pem holding each certificate and its key). */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "common/alloc_arena.h"
#include "crypto/seal.h"
#include "edge/edge_tables.h"
#include "edge/sni_table.h"

#define NAME_MAX_LEN 253

enum step { STEP_SELECT, STEP_USE, STEP_ENCODE, STEP_COUNT };
static const char *const step_names[STEP_COUNT] = {"select", "use", "encode"};

struct bench {
    ck_master_key master_key;
    char (*names)[NAME_MAX_LEN + 1];
    size_t count;
    ck_edge_tables *tables;
    SSL_CTX *ctx;
    uint64_t random_state;
};

static void die(const char *what, const ck_error *err)
{
    fprintf(stderr, "coldcert: %s%s%s\n", what, err != NULL ? ": " : "",
            err != NULL ? err->message : "");
    exit(1);
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static EVP_PKEY *load_key(void *arg, const char *label, const uint8_t *blob, size_t blob_len,
                          OSSL_LIB_CTX *libctx, ck_error *err)
{
    return ck_unseal_private_key_ex(arg, label, blob, blob_len, libctx, err);
}

/* Adds NAME's certificate, its key sealed under the run's master key, to the builder. */
static void add_certificate(struct bench *b, ck_sni_builder *builder, const char *pki_dir,
                            size_t index)
{
    char path[4096], label[32];
    ck_error err = {0};
    snprintf(path, sizeof(path), "%s/pem/%s.pem", pki_dir, b->names[index]);
    snprintf(label, sizeof(label), "coldcert/%zu", index);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die(path, NULL);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    unsigned char *der = NULL;
    int der_len = cert != NULL ? i2d_X509(cert, &der) : -1;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    if (key == NULL || der_len <= 0 ||
        ck_seal_private_key(&b->master_key, label, key, &sealed, &sealed_len, &err) != 0)
        die(path, &err);
    const char *names[1] = {b->names[index]};
    const struct ck_sni_entry entry = {.names = names,
                                       .name_count = 1,
                                       .leaf_der = der,
                                       .leaf_der_len = (size_t)der_len,
                                       .chain_der = (const uint8_t *)"",
                                       .chain_der_len = 0,
                                       .key_blob = sealed,
                                       .key_blob_len = sealed_len,
                                       .key_label = label};
    if (ck_sni_builder_add(builder, &entry, &err) != 0)
        die(path, &err);
    OPENSSL_free(sealed);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    X509_free(cert);
}

static void load(struct bench *b, const char *pki_dir, size_t count)
{
    char path[4096];
    ck_error err = {0};
    snprintf(path, sizeof(path), "%s/names.txt", pki_dir);
    FILE *f = fopen(path, "r");
    b->names = calloc(count, sizeof(*b->names));
    if (f == NULL || b->names == NULL)
        die(path, NULL);
    while (b->count < count && fscanf(f, "%253s", b->names[b->count]) == 1)
        b->count++;
    fclose(f);
    if (b->count == 0)
        die("no names in names.txt", NULL);
    if (RAND_bytes(b->master_key.bytes, sizeof(b->master_key.bytes)) != 1)
        die("RAND_bytes", NULL);
    ck_sni_builder *builder = ck_sni_builder_new(load_key, &b->master_key, &err);
    if (builder == NULL)
        die("ck_sni_builder_new", &err);
    for (size_t i = 0; i < b->count; i++)
        add_certificate(b, builder, pki_dir, i);
    ck_sni_table *table = ck_sni_builder_finish(builder, &err);
    b->tables = table != NULL ? ck_edge_tables_new(b->count, &err) : NULL;
    if (b->tables == NULL)
        die("building the tables", &err);
    ck_edge_tables_publish(b->tables, table);
}

/* One selection of name through the steps up to last. */
static void select_once(struct bench *b, const char *name, enum step last)
{
    struct ck_edge_material material = {0};
    ck_error err = {0};
    unsigned char encoded[8192];
    SSL *ssl = NULL;
    if (ck_edge_tables_select(b->tables, name, strlen(name), &material, &err) != 0)
        die("select", &err);
    if (last >= STEP_USE &&
        ((ssl = SSL_new(b->ctx)) == NULL ||
         SSL_use_cert_and_key(ssl, material.leaf, material.key, material.chain, 1) != 1))
        die("SSL_use_cert_and_key", NULL);
    if (last >= STEP_ENCODE) {
        unsigned char *p = encoded;
        int len = i2d_X509(material.leaf, NULL);
        if (len <= 0 || len > (int)sizeof(encoded) || i2d_X509(material.leaf, &p) != len)
            die("i2d_X509", NULL);
    }
    ck_edge_material_clear(&material);
    SSL_free(ssl);
}

static size_t next_random(struct bench *b)
{
    b->random_state ^= b->random_state << 13; /* xorshift64: the same names every run */
    b->random_state ^= b->random_state >> 7;
    b->random_state ^= b->random_state << 17;
    return (size_t)(b->random_state % b->count);
}

/* Microseconds of CPU per selection. */
static double measure(struct bench *b, enum step last, bool random_names, int selections)
{
    double start = cpu_seconds();
    for (int i = 0; i < selections; i++)
        select_once(b, b->names[random_names ? next_random(b) : 0], last);
    return (cpu_seconds() - start) / selections * 1e6;
}

int main(int argc, char **argv)
{
    ck_alloc_arena_route_openssl(); /* as the daemon's main: first */
    if (argc < 2) {
        fprintf(stderr, "usage: coldcert PKI_DIR [COUNT] [SELECTIONS_PER_ROUND] [ROUNDS]\n");
        return 2;
    }
    size_t count = argc > 2 ? strtoul(argv[2], NULL, 10) : 30000;
    int selections = argc > 3 ? atoi(argv[3]) : 20000;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    if (count == 0 || selections <= 0 || rounds <= 0)
        die("COUNT, SELECTIONS_PER_ROUND and ROUNDS must be positive", NULL);
    struct bench b = {.random_state = 0x9e3779b97f4a7c15u};
    load(&b, argv[1], count);
    b.ctx = SSL_CTX_new(TLS_server_method());
    if (b.ctx == NULL)
        die("SSL_CTX_new", NULL);
    for (size_t i = 0; i < b.count; i++) /* every certificate parsed and cached */
        select_once(&b, b.names[i], STEP_SELECT);

    double best[STEP_COUNT][2];
    for (int s = 0; s < STEP_COUNT; s++)
        best[s][0] = best[s][1] = 1e30;
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < STEP_COUNT; s++)
            for (int random_names = 0; random_names < 2; random_names++) {
                double us = measure(&b, (enum step)s, random_names, selections);
                if (us < best[s][random_names])
                    best[s][random_names] = us;
            }
    printf("%zu certificates cached, best of %d rounds of %d selections, CPU µs per selection:\n",
           b.count, rounds, selections);
    for (int s = 0; s < STEP_COUNT; s++)
        printf("  %-7s one name %6.2f  random names %6.2f  random costs %5.2f more\n",
               step_names[s], best[s][0], best[s][1], best[s][1] - best[s][0]);

    SSL_CTX_free(b.ctx);
    ck_edge_tables_free(b.tables);
    ck_master_key_wipe(&b.master_key);
    free(b.names);
    return 0;
}
