/* output.h — how the command line shows API objects: pretty JSON for --json, and for people
 * aligned "label  value" views and tables, both described by small tables of JSON keys. */
#ifndef CK_CLI_OUTPUT_H
#define CK_CLI_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Width of the label column in views ("enrollment  shop"). */
#define CK_OUT_LABEL_WIDTH 12

/* Writes v as indented JSON and a newline to stdout; returns an exit code. */
int ck_out_json(const json_t *v);

/* The value at a dotted path ("csr.subject.text") in obj, or NULL. */
const json_t *ck_json_at(const json_t *obj, const char *path);

/* The string at a dotted path, or NULL when absent or not a string. */
const char *ck_json_str(const json_t *obj, const char *path);

/* What a person should see for a JSON value: strings as they are, numbers, yes/no for
 * booleans, "-" for null or absent, arrays joined with ", ". The caller frees the result;
 * NULL only when out of memory. */
char *ck_json_display(const json_t *v);

/* "label       value\n" with the label padded to CK_OUT_LABEL_WIDTH. */
void ck_out_field(FILE *out, const char *label, const char *value);

/* One line of a view: the value at `key` (a dotted path) shown after `label`. */
struct ck_view_row {
    const char *label;
    const char *key;
};

/* Prints one line per row (rows whose value is absent are shown as "-"). */
void ck_out_view(FILE *out, const json_t *obj, const struct ck_view_row *rows, size_t n);

/* Prints several rows on one line: "key         ec-p256    validation dv    issuer manual". */
void ck_out_pairs(FILE *out, const json_t *obj, const struct ck_view_row *rows, size_t n);

/* One column of a table: its heading and the dotted path of the value in each item. */
struct ck_column {
    const char *heading;
    const char *key;
};

/* Prints the items of a JSON array as a table with aligned columns and a heading line, or
 * `empty` (e.g. "no enrollments") when the array is empty. Returns an exit code. */
int ck_out_table(FILE *out, const json_t *items, const struct ck_column *cols, size_t n,
                 const char *empty);

#endif
