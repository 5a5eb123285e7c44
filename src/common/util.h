/* util.h — small helpers shared by every module: string lists, bounded file I/O, hex. */
#ifndef CK_COMMON_UTIL_H
#define CK_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A growable list of owned, NUL-terminated strings. Zero-initialise; free with ck_strv_free. */
typedef struct ck_strv {
    char **items;
    size_t len;
    size_t cap;
} ck_strv;

int ck_strv_push(ck_strv *v, const char *s);            /* copies s; -1 on allocation failure */
bool ck_strv_contains(const ck_strv *v, const char *s); /* exact comparison */
int ck_strv_copy(ck_strv *dst, const ck_strv *src);     /* dst must be empty */
void ck_strv_free(ck_strv *v);

/* strdup that returns NULL for NULL. */
char *ck_strdup(const char *s);

/* Reads a whole file of at most max_len bytes, NUL-terminated. `path` "-" means stdin.
 * The caller frees *out. */
int ck_read_file(const char *path, size_t max_len, char **out, size_t *out_len, ck_error *err);

/* Writes data to path atomically: temporary file in the same folder created with `mode`,
 * fsync, rename, fsync of the folder. Secrets never exist with a wider mode. */
int ck_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         ck_error *err);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void ck_hex_encode(const uint8_t *data, size_t len, char *out);

/* Fills buf with cryptographically secure random bytes (OpenSSL RAND_bytes). */
int ck_random_bytes(uint8_t *buf, size_t len, ck_error *err);

/* ASCII lower-casing in place; returns s. */
char *ck_ascii_lower(char *s);

/* Whether host names this machine's loopback: "localhost" (any case), 127.0.0.0/8, or ::1
 * with or without its brackets. No DNS lookup. */
bool ck_host_is_loopback(const char *host);

#endif
