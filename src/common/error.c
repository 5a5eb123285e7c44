#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common/log.h"

__attribute__((format(printf, 4, 0))) static void error_vset(ck_error *err, int status,
                                                         const char *code, const char *fmt,
                                                         va_list ap)
{
    if (err == NULL)
        return;
    err->status = status;
    snprintf(err->code, sizeof(err->code), "%s", code);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
}

int ck_error_set(ck_error *err, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, status, code, fmt, ap);
    va_end(ap);
    return -1;
}

int ck_error_openssl(ck_error *err, int status, const char *code, const char *fmt, ...)
{
    char buf[CK_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char detail[256];
        ERR_error_string_n(e, detail, sizeof(detail));
        ck_log(CK_LOG_DEBUG, "%s: openssl: %s", buf, detail);
    }
    return ck_error_set(err, status, code, "%s", buf);
}

void ck_error_clear(ck_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}
