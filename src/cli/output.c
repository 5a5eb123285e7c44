#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int ck_out_json(const json_t *v)
{
    if (json_dumpf(v, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF) {
        fputs("certkeep: cannot write the output\n", stderr);
        return CK_EXIT_FAILED;
    }
    return CK_EXIT_OK;
}

const json_t *ck_json_at(const json_t *obj, const char *path)
{
    char key[128];
    const json_t *cur = obj;
    while (cur != NULL && *path != '\0') {
        size_t len = strcspn(path, ".");
        if (len >= sizeof(key))
            return NULL;
        memcpy(key, path, len);
        key[len] = '\0';
        cur = json_object_get(cur, key);
        path += len;
        if (*path == '.')
            path++;
    }
    return cur;
}

const char *ck_json_str(const json_t *obj, const char *path)
{
    return json_string_value(ck_json_at(obj, path));
}

static void display_scalar(FILE *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        fputs(json_string_value(v), out);
        break;
    case JSON_INTEGER:
        fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        fprintf(out, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        fputs("yes", out);
        break;
    case JSON_FALSE:
        fputs("no", out);
        break;
    default: /* null, or an object that has no one-line form */
        fputs("-", out);
        break;
    }
}

char *ck_json_display(const json_t *v)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return NULL;
    if (v == NULL) {
        fputs("-", out);
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            if (i > 0)
                fputs(", ", out);
            display_scalar(out, item);
        }
        if (json_array_size(v) == 0)
            fputs("-", out);
    } else {
        display_scalar(out, v);
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

void ck_out_field(FILE *out, const char *label, const char *value)
{
    fprintf(out, "%-*s%s\n", CK_OUT_LABEL_WIDTH, label, value ? value : "-");
}

void ck_out_view(FILE *out, const json_t *obj, const struct ck_view_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *value = ck_json_display(ck_json_at(obj, rows[i].key));
        ck_out_field(out, rows[i].label, value);
        free(value);
    }
}

void ck_out_pairs(FILE *out, const json_t *obj, const struct ck_view_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *value = ck_json_display(ck_json_at(obj, rows[i].key));
        if (i == 0)
            fprintf(out, "%-*s%s", CK_OUT_LABEL_WIDTH, rows[i].label, value ? value : "-");
        else
            fprintf(out, "    %s %s", rows[i].label, value ? value : "-");
        free(value);
    }
    fputc('\n', out);
}

static void print_row(FILE *out, char **cells, const size_t *widths, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        if (c + 1 < n)
            fprintf(out, "%-*s  ", (int)widths[c], cells[c]);
        else
            fprintf(out, "%s\n", cells[c]);
    }
}

int ck_out_table(FILE *out, const json_t *items, const struct ck_column *cols, size_t n,
                 const char *empty)
{
    int rc = CK_EXIT_FAILED;
    size_t rows = json_array_size(items);
    char **cells = calloc((rows + 1) * n, sizeof(*cells));
    size_t *widths = calloc(n, sizeof(*widths));
    if (rows == 0) {
        fprintf(out, "%s\n", empty);
        rc = CK_EXIT_OK;
        goto cleanup;
    }
    if (cells == NULL || widths == NULL)
        goto cleanup;
    for (size_t c = 0; c < n; c++) {
        cells[c] = strdup(cols[c].heading);
        for (size_t r = 0; r < rows; r++)
            cells[(r + 1) * n + c] =
                ck_json_display(ck_json_at(json_array_get(items, r), cols[c].key));
    }
    for (size_t i = 0; i < (rows + 1) * n; i++) {
        if (cells[i] == NULL)
            goto cleanup;
        size_t len = strlen(cells[i]);
        if (len > widths[i % n])
            widths[i % n] = len;
    }
    for (size_t r = 0; r <= rows; r++)
        print_row(out, cells + r * n, widths, n);
    rc = CK_EXIT_OK;
cleanup:
    if (rc != CK_EXIT_OK)
        fputs("certkeep: out of memory\n", stderr);
    for (size_t i = 0; cells != NULL && i < (rows + 1) * n; i++)
        free(cells[i]);
    free(cells);
    free(widths);
    return rc;
}
