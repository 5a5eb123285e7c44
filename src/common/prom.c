/* prom.c — the Prometheus text format (prom.h). */
#include "common/prom.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(struct ck_prom *p, const char *s, size_t n)
{
    if (p->failed)
        return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (p->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(p->buf, cap);
        if (grown == NULL) {
            p->failed = true;
            return;
        }
        p->buf = grown;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void append_str(struct ck_prom *p, const char *s)
{
    append(p, s, strlen(s));
}

/* The text with backslash and line feed escaped, and the double quote too for label values. */
static void append_escaped(struct ck_prom *p, const char *s, bool quote)
{
    size_t start = 0, i = 0;
    for (; s[i] != '\0'; i++) {
        const char *repl = s[i] == '\\'           ? "\\\\"
                           : s[i] == '\n'         ? "\\n"
                           : s[i] == '"' && quote ? "\\\""
                                                  : NULL;
        if (repl == NULL)
            continue;
        append(p, s + start, i - start);
        append_str(p, repl);
        start = i + 1;
    }
    append(p, s + start, i - start);
}

void ck_prom_family(struct ck_prom *p, const char *name, const char *type, const char *help)
{
    append_str(p, "# HELP ");
    append_str(p, name);
    append_str(p, " ");
    append_escaped(p, help, false);
    append_str(p, "\n# TYPE ");
    append_str(p, name);
    append_str(p, " ");
    append_str(p, type);
    append_str(p, "\n");
}

void ck_prom_sample(struct ck_prom *p, const char *name, const struct ck_prom_label *labels,
                    size_t n_labels, int64_t value)
{
    char number[32];
    append_str(p, name);
    for (size_t i = 0; i < n_labels; i++) {
        append_str(p, i == 0 ? "{" : ",");
        append_str(p, labels[i].name);
        append_str(p, "=\"");
        append_escaped(p, labels[i].value ? labels[i].value : "", true);
        append_str(p, "\"");
    }
    snprintf(number, sizeof(number), "%s %" PRId64 "\n", n_labels ? "}" : "", value);
    append_str(p, number);
}

const char *ck_prom_text(const struct ck_prom *p, size_t *len)
{
    if (p->failed)
        return NULL;
    if (len != NULL)
        *len = p->len;
    return p->buf != NULL ? p->buf : "";
}

void ck_prom_free(struct ck_prom *p)
{
    free(p->buf);
    *p = (struct ck_prom){0};
}
