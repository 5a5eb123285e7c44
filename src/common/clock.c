#include "common/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ck_clock_now(void)
{
    return (int64_t)time(NULL);
}

void ck_time_format(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

int ck_time_parse(const char *text, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return -1;
    if (*rest == '.') {
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    long offset = 0;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        int hh, mm;
        if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
            return -1;
        offset = (hh * 3600L + mm * 60L) * (*rest == '+' ? 1 : -1);
        rest += 6;
    } else {
        return -1;
    }
    if (*rest != '\0')
        return -1;
    *out = (int64_t)timegm(&tm) - offset;
    return 0;
}
