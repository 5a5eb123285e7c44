/* clock.h — the one clock every decision reads (seconds since the epoch, UTC).
 * Tests drive it with faketime(1); nothing else in certkeep calls time(). */
#ifndef CK_COMMON_CLOCK_H
#define CK_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t ck_clock_now(void);

/* Formats t as RFC 3339 UTC ("2026-11-22T07:50:01Z") into buf (at least 21 bytes). */
void ck_time_format(int64_t t, char *buf, size_t len);

/* Parses RFC 3339 ("2026-11-22T07:50:01Z", an offset, or fractional seconds) into *out. */
int ck_time_parse(const char *text, int64_t *out);

#endif
