/* error.h — errors a person can act on.
 *
 * Every fallible function takes a `ck_error *err` (may be NULL) and fills it on failure with an
 * HTTP-like status, a stable machine code and a sentence for a person ("certificate CN
 * shop.example.org does not match the CSR's CN shop.example.com"). Technical detail (an OpenSSL
 * error queue, an SQLite message) goes to the log, not into the message.
 *
 * Functions return 0 on success and -1 on failure unless their header says otherwise. */
#ifndef CK_COMMON_ERROR_H
#define CK_COMMON_ERROR_H

#include <stddef.h>

#define CK_ERROR_CODE_MAX 64
#define CK_ERROR_MSG_MAX  512

typedef struct ck_error {
    int status;                    /* 400 bad input, 401, 403, 404, 409 conflict, 413, 500 ... */
    char code[CK_ERROR_CODE_MAX];  /* stable, snake_case: "invalid_hostname", "not_found" */
    char message[CK_ERROR_MSG_MAX];
} ck_error;

/* Sets err (if not NULL). Always returns -1 so callers can `return ck_error_set(...)`. */
int ck_error_set(ck_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like ck_error_set, and appends the OpenSSL error queue to the log (not to the message), then
 * clears the queue. */
int ck_error_openssl(ck_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void ck_error_clear(ck_error *err);

#endif
