/* prom.h — writing the Prometheus text exposition format, version 0.0.4 (GET /metrics).
 *
 * A family is announced once with its # HELP and # TYPE lines, then its samples follow, each
 * "name{label="value",...} value". Label values are escaped (backslash, double quote, line
 * feed), help text too (backslash, line feed); metric and label names are the caller's
 * constants. Values are integers: every certkeep metric is a count or a Unix time.
 *
 * The buffer grows as needed; after an allocation failure every later call does nothing and
 * ck_prom_text returns NULL. */
#ifndef CK_COMMON_PROM_H
#define CK_COMMON_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CK_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct ck_prom {
    char *buf;
    size_t len, cap;
    bool failed;
};

/* One label: name (a constant like "tenant") and value (any UTF-8 text, escaped here). */
struct ck_prom_label {
    const char *name, *value;
};

/* "# HELP name help" and "# TYPE name type" (type: "counter", "gauge", ...). */
void ck_prom_family(struct ck_prom *p, const char *name, const char *type, const char *help);
/* One sample line; labels may be NULL when n_labels is 0. */
void ck_prom_sample(struct ck_prom *p, const char *name, const struct ck_prom_label *labels,
                    size_t n_labels, int64_t value);
/* The text so far (NUL-terminated, owned by p), or NULL after a failure. */
const char *ck_prom_text(const struct ck_prom *p, size_t *len);
void ck_prom_free(struct ck_prom *p);

#endif
