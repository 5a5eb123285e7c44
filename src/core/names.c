#include "core/names.h"

#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#define HOSTNAME_MAX 253
#define LABEL_MAX    63

static bool is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* An A-label is valid when it decodes to Unicode and that Unicode encodes back to the same
 * A-label under IDNA2008 (libidn2), which rejects broken punycode and disallowed code points. */
static bool a_label_valid(const char *label)
{
    char *unicode = NULL, *ascii = NULL;
    bool ok = false;
    if (idn2_to_unicode_8z8z(label, &unicode, 0) != IDN2_OK)
        goto cleanup;
    if (idn2_to_ascii_8z(unicode, &ascii, IDN2_NONTRANSITIONAL) != IDN2_OK)
        goto cleanup;
    ok = strcmp(ascii, label) == 0;
cleanup:
    idn2_free(unicode);
    idn2_free(ascii);
    return ok;
}

/* Returns NULL when the label is fine, or why it is not. */
static const char *label_problem(const char *label, size_t len, bool leftmost, bool last)
{
    if (len == 0)
        return "it has an empty label";
    if (len == 1 && label[0] == '*')
        return leftmost ? NULL : "a wildcard is only allowed as the whole leftmost label";
    if (len > LABEL_MAX)
        return "a label is longer than 63 characters";
    bool all_digits = true;
    for (size_t i = 0; i < len; i++) {
        if (label[i] == '*')
            return "a wildcard is only allowed as the whole leftmost label";
        if (!is_ldh(label[i]))
            return "labels may hold only letters, digits and hyphens (use the xn-- A-label form "
                   "for international names)";
        if (label[i] < '0' || label[i] > '9')
            all_digits = false;
    }
    if (label[0] == '-' || label[len - 1] == '-')
        return "a label starts or ends with a hyphen";
    if (last && all_digits)
        return "the top-level label is all digits";
    if (len >= 4 && label[2] == '-' && label[3] == '-') {
        if (strncmp(label, "xn", 2) != 0)
            return "a label has hyphens in the third and fourth positions but is not an "
                   "xn-- A-label";
        char copy[LABEL_MAX + 1];
        memcpy(copy, label, len);
        copy[len] = '\0';
        if (!a_label_valid(copy))
            return "an xn-- label is not a valid IDNA A-label";
    }
    return NULL;
}

int ck_hostname_check(char *name, ck_error *err)
{
    ck_ascii_lower(name);
    size_t len = strlen(name);
    if (len == 0)
        return ck_error_set(err, 400, "invalid_hostname", "a hostname is empty");
    if (len > HOSTNAME_MAX)
        return ck_error_set(err, 400, "invalid_hostname",
                            "hostname %.40s... is longer than 253 characters", name);
    if (name[len - 1] == '.')
        return ck_error_set(err, 400, "invalid_hostname",
                            "hostname %s must not end with a dot", name);
    size_t labels = 0;
    const char *start = name;
    for (;;) {
        const char *dot = strchr(start, '.');
        size_t label_len = dot ? (size_t)(dot - start) : strlen(start);
        const char *why = label_problem(start, label_len, labels == 0, dot == NULL);
        if (why != NULL)
            return ck_error_set(err, 400, "invalid_hostname", "hostname %s is not valid: %s",
                                name, why);
        labels++;
        if (dot == NULL)
            break;
        start = dot + 1;
    }
    if (labels < 2)
        return ck_error_set(err, 400, "invalid_hostname",
                            "hostname %s is not valid: it needs at least two labels", name);
    if (name[0] == '*' && labels < 3)
        return ck_error_set(err, 400, "invalid_hostname",
                            "hostname %s is not valid: a wildcard needs at least two labels "
                            "after it",
                            name);
    return 0;
}

int ck_san_list_normalise(const char *cn, ck_strv *sans, ck_error *err)
{
    int rc = -1;
    ck_strv out = {0};
    char *cn_copy = ck_strdup(cn);
    if (cn == NULL || cn_copy == NULL) {
        ck_error_set(err, 400, "missing_field", "the common name (cn) is required");
        goto cleanup;
    }
    if (ck_hostname_check(cn_copy, err) != 0 || ck_strv_push(&out, cn_copy) != 0)
        goto cleanup;
    for (size_t i = 0; i < sans->len; i++) {
        if (ck_hostname_check(sans->items[i], err) != 0)
            goto cleanup;
        if (!ck_strv_contains(&out, sans->items[i]) && ck_strv_push(&out, sans->items[i]) != 0)
            goto cleanup;
    }
    ck_strv_free(sans);
    *sans = out;
    out = (ck_strv){0};
    rc = 0;
cleanup:
    ck_strv_free(&out);
    free(cn_copy);
    return rc;
}

static bool name_valid(const char *name, bool (*allowed)(char))
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 63 || name[0] == '-' || name[0] == '.' || name[0] == '_')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!allowed(name[i]))
            return false;
    return true;
}

static bool resource_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool ck_resource_name_valid(const char *name)
{
    return name_valid(name, resource_char);
}

bool ck_tenant_name_valid(const char *name)
{
    return name_valid(name, is_ldh);
}
