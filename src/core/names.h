/* names.h — checking the names users give: hostnames for certificates, resource names. */
#ifndef CK_CORE_NAMES_H
#define CK_CORE_NAMES_H

#include <stdbool.h>

#include "common/error.h"
#include "common/util.h"

/* Checks one DNS name for a certificate and lower-cases it in place: at most 253 characters,
 * labels of 1-63 letters, digits and hyphens not starting or ending with a hyphen, at least two
 * labels, a last label that is not all digits, "xn--" labels only as valid IDNA A-labels
 * (punycode that decodes), and "*" only as the whole leftmost label. On failure a 400
 * "invalid_hostname" error names the bad name and why. */
int ck_hostname_check(char *name, ck_error *err);

/* Checks and normalises a SAN list in place: every name valid, duplicates removed (the first
  * kept), and cn added first when missing. On failure sans is left untouched. */
int ck_san_list_normalise(const char *cn, ck_strv *sans, ck_error *err);

/* Resource names (enrollments): 1-63 of [A-Za-z0-9._-], starting with a letter or digit. */
bool ck_resource_name_valid(const char *name);

/* Tenant names: 1-63 of [a-z0-9-], starting with a letter or digit. */
bool ck_tenant_name_valid(const char *name);

#endif
