/* duration.h — the durations of an enrollment's policy ("lifetime": "90d", "renew_before":
 * "33%") as numbers.
 *
 * Syntax: one or more ASCII digits, then exactly one unit: s (seconds), m (minutes), h (hours),
 * d (days). No sign, no spaces, no fraction, no upper case, no combination ("1h30m"). The value
 * must be more than zero and fit in int64_t seconds. Where a percentage is allowed, "N%" with N
 * from 1 to 100 means that share of the certificate's lifetime.
 *
 * Errors are 400 "invalid_duration" and name the value that was given. */
#ifndef CK_COMMON_DURATION_H
#define CK_COMMON_DURATION_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* "40s" -> 40, "15m" -> 900, "12h" -> 43200, "90d" -> 7776000. */
int ck_duration_parse(const char *text, int64_t *seconds, ck_error *err);

/* A duration or a share of the lifetime, as "renew_before" takes. */
struct ck_lead_time {
    bool is_percent;
    int64_t seconds; /* when !is_percent */
    int percent;     /* 1..100 when is_percent */
};

/* Parses a duration or "N%" (N from 1 to 100). */
int ck_lead_time_parse(const char *text, struct ck_lead_time *out, ck_error *err);

/* The lead time in seconds for a certificate valid for lifetime_seconds: the percentage of it
 * (rounded down), or the duration itself. */
int64_t ck_lead_time_seconds(const struct ck_lead_time *lead, int64_t lifetime_seconds);

#endif
