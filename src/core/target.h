/* target.h — file targets: a certificate written for a server certkeep does not run (nginx,
 * HAProxy, ...), then that server's reload command, with rollback when the reload fails.
 *
 * In a target's directory certkeep writes cert.pem (the leaf), chain.pem (the issuer chain),
 * fullchain.pem (leaf then chain) and key.pem (0600), each replaced atomically. Only the four
 * files are touched. Safe to call from a worker thread. */
#ifndef CK_CORE_TARGET_H
#define CK_CORE_TARGET_H

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "common/util.h"
#include "core/model.h"

#define CK_TARGET_TIMEOUT_DEFAULT 30
#define CK_TARGET_TIMEOUT_MAX     600
#define CK_TARGET_OUTPUT_MAX      (64 * 1024) /* bytes of the reload command's output kept */
#define CK_TARGET_ARGV_MAX        64

/* Where apply and check say what they do, e.g. a job's log (ck_store_job_log). level is "info",
 * "warn" or "error". Messages never hold key material. */
struct ck_target_log {
    void (*fn)(void *ctx, const char *level, const char *message);
    void *ctx;
};

/* Parses a reload command stored as a JSON array of 1..CK_TARGET_ARGV_MAX non-empty strings into
 * argv (which must be empty). 400 "invalid_reload_command" otherwise. */
int ck_target_reload_argv(const char *json, ck_strv *argv, ck_error *err);

/* Checks what a user gives for a target: an absolute directory, a reload command as above or
 * NULL, timeout_seconds in 1..CK_TARGET_TIMEOUT_MAX, probe_endpoint "HOST:PORT" or NULL.
 * 400 with code "invalid_field" naming the field. */
int ck_target_validate(const struct ck_target *t, ck_error *err);

/* Writes the certificate into t->directory (which must exist) and runs the reload command.
 *
 * key NULL (an order from an uploaded CSR: certkeep has no key) leaves key.pem as it is.
 * The previous contents of each file are kept in memory first. The reload command runs from its
 * argv without a shell (PATH lookup for a bare name), stdin /dev/null, stdout and stderr
 * together (at most CK_TARGET_OUTPUT_MAX bytes kept), the process's environment without its
 * CERTKEEP_* variables, no other inherited descriptor, in its own process group, which is
 * killed after t->timeout_seconds.
 *
 * On a non-zero exit, a signal or the timeout the previous files are put back (files that did
 * not exist are removed), the reload command runs again, and the call fails with 502
 * "reload_failed" (504 "reload_timeout") whose message quotes the end of the output. A failure to
 * write a file puts back the files already written and fails without running anything.
 *
 * *output (if not NULL) receives the full output of the first run of the reload command, also on
 * failure ("" when there is no command); the caller frees it. log may be NULL (then ck_log). */
int ck_target_apply(const struct ck_target *t, const char *cert_pem, const char *chain_pem,
                    EVP_PKEY *key, const struct ck_target_log *log, char **output, ck_error *err);

#define CK_TARGET_CHECK_ATTEMPTS    10
#define CK_TARGET_CHECK_INTERVAL_MS 200
#define CK_TARGET_CHECK_TIMEOUT_MS  3000 /* for each TLS connection */

/* Confirms that t->probe_endpoint now serves expected_leaf (same serial and notAfter), asking
 * with SNI sni (NULL: none, or the host when it is a name) up to CK_TARGET_CHECK_ATTEMPTS times,
 * CK_TARGET_CHECK_INTERVAL_MS apart, since a reloaded server may take a moment. Returns 0 at
 * once when the target has no probe endpoint. 502 "probe_mismatch" naming what the endpoint
 * serves instead (serial, notAfter), or "probe_failed" when it could not be reached. */
int ck_target_check(const struct ck_target *t, X509 *expected_leaf, const char *sni,
                    const struct ck_target_log *log, ck_error *err);

#endif
