/* dns-01 by hand: the zone lines a user creates, in master-file syntax (RFC 1035 5.1). */
#include "issuers/dns/dns01.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends value as quoted character-strings of at most 255 bytes each, escaping `"` and `\`, and
 * writing bytes outside printable ASCII as \DDD so the line survives copy and paste. */
static void append_quoted(FILE *out, const char *value)
{
    size_t len = strlen(value);
    size_t off = 0;
    do {
        size_t chunk = len - off > 255 ? 255 : len - off;
        fputs(off > 0 ? " \"" : "\"", out);
        for (size_t i = off; i < off + chunk; i++) {
            unsigned char c = (unsigned char)value[i];
            if (c == '"' || c == '\\')
                fprintf(out, "\\%c", c);
            else if (c < 0x20 || c > 0x7e)
                fprintf(out, "\\%03u", c);
            else
                fputc(c, out);
        }
        fputc('"', out);
        off += chunk;
    } while (off < len);
}

char *ck_dns_manual_zone_line(const char *fqdn, const char *value, int ttl)
{
    char *line = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&line, &size);
    if (out == NULL)
        return NULL;
    size_t name_len = strlen(fqdn);
    bool absolute = name_len > 0 && fqdn[name_len - 1] == '.';
    fprintf(out, "%s%s %d IN TXT ", fqdn, absolute ? "" : ".", ttl);
    append_quoted(out, value);
    if (fclose(out) != 0) {
        free(line);
        return NULL;
    }
    return line;
}
