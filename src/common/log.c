#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static enum ck_log_level threshold(void)
{
    /* Read on each call: cheap, and keeps the module free of mutable globals. */
    const char *env = getenv("CERTKEEP_LOG");
    if (env == NULL)
        return CK_LOG_INFO;
    for (int i = CK_LOG_DEBUG; i <= CK_LOG_ERROR; i++)
        if (strcmp(env, level_names[i]) == 0)
            return (enum ck_log_level)i;
    return CK_LOG_INFO;
}

void ck_log(enum ck_log_level level, const char *fmt, ...)
{
    if (level < threshold())
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s %s\n", stamp, level_names[level], line);
}
