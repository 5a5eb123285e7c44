#include "common/duration.h"

#include <string.h>

/* Long values are cut in messages so a pasted blob cannot fill the error. */
#define SHOWN_MAX "48"

#define DURATION_HELP "a number followed by s, m, h or d (such as 40s, 15m, 12h or 90d)"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads the leading digits of text into *value; *end points after them. Returns false when
 * there are none or the number does not fit. Digits are read by hand because strtoll would also
 * take spaces and a sign, which a duration may not have. */
static bool leading_number(const char *text, int64_t *value, const char **end, bool *overflow)
{
    int64_t n = 0;
    const char *p = text;
    *overflow = false;
    for (; is_digit(*p); p++) {
        int digit = *p - '0';
        if (n > (INT64_MAX - digit) / 10)
            *overflow = true;
        else
            n = n * 10 + digit;
    }
    *value = n;
    *end = p;
    return p != text && !*overflow;
}

static int64_t unit_seconds(char unit)
{
    switch (unit) {
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    default:
        return 0;
    }
}

/* help: what to give instead, for the message. */
static int duration_parse(const char *text, int64_t *seconds, const char *help, ck_error *err)
{
    int64_t n = 0;
    const char *end = NULL;
    bool overflow = false;
    if (text == NULL || text[0] == '\0')
        return ck_error_set(err, 400, "invalid_duration", "the duration is empty: give %s", help);
    bool has_number = leading_number(text, &n, &end, &overflow);
    if (overflow)
        return ck_error_set(err, 400, "invalid_duration",
                            "duration \"%." SHOWN_MAX "s\" is too large", text);
    /* The unit is the one character after the digits, and the last. */
    int64_t unit = has_number && end[0] != '\0' && end[1] == '\0' ? unit_seconds(end[0]) : 0;
    if (unit == 0)
        return ck_error_set(err, 400, "invalid_duration",
                            "duration \"%." SHOWN_MAX "s\" is not valid: give %s", text, help);
    if (n == 0)
        return ck_error_set(err, 400, "invalid_duration",
                            "duration \"%." SHOWN_MAX "s\" must be more than zero", text);
    if (n > INT64_MAX / unit)
        return ck_error_set(err, 400, "invalid_duration",
                            "duration \"%." SHOWN_MAX "s\" is too large", text);
    *seconds = n * unit;
    return 0;
}

int ck_duration_parse(const char *text, int64_t *seconds, ck_error *err)
{
    return duration_parse(text, seconds, DURATION_HELP, err);
}

static int percent_parse(const char *text, int *percent, ck_error *err)
{
    int64_t n = 0;
    const char *end = NULL;
    bool overflow = false;
    if (!leading_number(text, &n, &end, &overflow) || strcmp(end, "%") != 0 || n < 1 || n > 100)
        return ck_error_set(err, 400, "invalid_duration",
                            "percentage \"%." SHOWN_MAX "s\" is not valid: give a whole number "
                            "from 1 to 100 followed by %% (such as 33%%)",
                            text);
    *percent = (int)n;
    return 0;
}

int ck_lead_time_parse(const char *text, struct ck_lead_time *out, ck_error *err)
{
    struct ck_lead_time lead = {0};
    if (text != NULL && text[0] != '\0' && text[strlen(text) - 1] == '%') {
        if (percent_parse(text, &lead.percent, err) != 0)
            return -1;
        lead.is_percent = true;
    } else if (duration_parse(text, &lead.seconds,
                              DURATION_HELP " or a percentage of the "
                                            "lifetime (such as 33%)",
                              err) != 0) {
        return -1;
    }
    *out = lead;
    return 0;
}

int64_t ck_lead_time_seconds(const struct ck_lead_time *lead, int64_t lifetime_seconds)
{
    if (!lead->is_percent)
        return lead->seconds;
    /* Divide first so a lifetime near INT64_MAX cannot overflow; the remainder keeps precision. */
    return lifetime_seconds / 100 * lead->percent + lifetime_seconds % 100 * lead->percent / 100;
}
