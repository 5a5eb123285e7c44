#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/rand.h>

int ck_strv_push(ck_strv *v, const char *s)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        char **items = realloc(v->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        v->items = items;
        v->cap = cap;
    }
    char *copy = strdup(s);
    if (copy == NULL)
        return -1;
    v->items[v->len++] = copy;
    return 0;
}

bool ck_strv_contains(const ck_strv *v, const char *s)
{
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->items[i], s) == 0)
            return true;
    return false;
}

int ck_strv_copy(ck_strv *dst, const ck_strv *src)
{
    for (size_t i = 0; i < src->len; i++)
        if (ck_strv_push(dst, src->items[i]) != 0)
            return -1;
    return 0;
}

void ck_strv_free(ck_strv *v)
{
    for (size_t i = 0; i < v->len; i++)
        free(v->items[i]);
    free(v->items);
    v->items = NULL;
    v->len = v->cap = 0;
}

char *ck_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int ck_read_file(const char *path, size_t max_len, char **out, size_t *out_len, ck_error *err)
{
    int rc = -1;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        ck_error_set(err, 400, "unreadable_file", "cannot read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    buf = malloc(max_len + 1);
    if (buf == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory reading %s", path);
        goto cleanup;
    }
    size_t n;
    while ((n = fread(buf + len, 1, max_len + 1 - len, f)) > 0) {
        len += n;
        if (len > max_len) {
            ck_error_set(err, 413, "file_too_large", "%s is larger than %zu bytes", path, max_len);
            goto cleanup;
        }
    }
    if (ferror(f)) {
        ck_error_set(err, 400, "unreadable_file", "cannot read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    buf = NULL;
    rc = 0;
cleanup:
    free(buf);
    if (f != NULL && f != stdin)
        fclose(f);
    return rc;
}

int ck_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         ck_error *err)
{
    int rc = -1, fd = -1;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    char *dir_copy = strdup(path);
    if (tmp == NULL || dir_copy == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory writing %s", path);
        goto cleanup;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0 || fchmod(fd, (mode_t)mode) != 0) {
        ck_error_set(err, 500, "write_failed", "cannot create %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ck_error_set(err, 500, "write_failed", "cannot write %s: %s", tmp, strerror(errno));
            goto cleanup;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        ck_error_set(err, 500, "write_failed", "cannot sync %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        ck_error_set(err, 500, "write_failed", "cannot rename %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp != NULL)
        unlink(tmp);
    free(tmp);
    free(dir_copy);
    return rc;
}

void ck_hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}

int ck_random_bytes(uint8_t *buf, size_t len, ck_error *err)
{
    if (RAND_bytes(buf, (int)len) != 1)
        return ck_error_openssl(err, 500, "random_failed", "cannot get random bytes");
    return 0;
}

char *ck_ascii_lower(char *s)
{
    for (char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

bool ck_host_is_loopback(const char *host)
{
    char bare[INET6_ADDRSTRLEN];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof(bare))
        return false;
    memcpy(bare, host, len);
    bare[len] = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, bare, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, bare, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return strcasecmp(bare, "localhost") == 0;
}
