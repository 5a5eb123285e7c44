#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/duration.h"

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void test_durations_in_seconds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t seconds;
    } cases[] = {
        {"40s", 40},        {"15m", 900},
        {"12h", 43200},     {"90d", 7776000},
        {"1s", 1},          {"007m", 420},
        {"398d", 34387200}, {"106751991167300d", 106751991167300 * 86400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t seconds = -1;
        ck_error err = {0};
        if (ck_duration_parse(cases[i].text, &seconds, &err) != 0)
            fail_msg("%s refused: %s", cases[i].text, err.message);
        assert_int_equal(seconds, cases[i].seconds);
    }
}

static void test_bad_durations_refused_naming_the_value(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *says;
    } cases[] = {
        {"5", "\"5\" is not valid"},
        {"5x", "\"5x\" is not valid"},
        {"-5s", "\"-5s\" is not valid"},
        {"+5s", "\"+5s\" is not valid"},
        {" 5s", "\" 5s\" is not valid"},
        {"5s ", "\"5s \" is not valid"},
        {"5S", "\"5S\" is not valid"},
        {"1h30m", "\"1h30m\" is not valid"},
        {"1.5h", "\"1.5h\" is not valid"},
        {"d", "\"d\" is not valid"},
        {"0s", "\"0s\" must be more than zero"},
        {"99999999999999999999d", "\"99999999999999999999d\" is too large"},
        {"106751991167301d", "\"106751991167301d\" is too large"},
        {"33%", "\"33%\" is not valid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t seconds = 12345;
        ck_error err = {0};
        if (ck_duration_parse(cases[i].text, &seconds, &err) == 0)
            fail_msg("\"%s\" accepted as %lld s", cases[i].text, (long long)seconds);
        assert_int_equal(seconds, 12345);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_duration");
        assert_contains(err.message, cases[i].says);
    }
}

static void test_empty_and_null_refused(void **state)
{
    (void)state;
    int64_t seconds = 0;
    ck_error err = {0};
    assert_int_equal(ck_duration_parse("", &seconds, &err), -1);
    assert_contains(err.message, "empty");
    assert_contains(err.message, "90d");
    assert_int_equal(ck_duration_parse(NULL, &seconds, &err), -1);
    assert_int_equal(ck_duration_parse("5x", &seconds, NULL), -1);
}

static void test_lead_times(void **state)
{
    (void)state;
    struct ck_lead_time lead = {0};
    ck_error err = {0};
    assert_int_equal(ck_lead_time_parse("33%", &lead, &err), 0);
    assert_true(lead.is_percent);
    assert_int_equal(lead.percent, 33);
    assert_int_equal(ck_lead_time_seconds(&lead, 90 * 86400), 33 * 90 * 86400 / 100);
    assert_int_equal(ck_lead_time_seconds(&lead, 100), 33);
    assert_int_equal(ck_lead_time_seconds(&lead, INT64_MAX), INT64_MAX / 100 * 33 + 2);

    assert_int_equal(ck_lead_time_parse("100%", &lead, &err), 0);
    assert_int_equal(ck_lead_time_seconds(&lead, 3600), 3600);

    assert_int_equal(ck_lead_time_parse("30d", &lead, &err), 0);
    assert_false(lead.is_percent);
    assert_int_equal(lead.seconds, 30 * 86400);
    assert_int_equal(ck_lead_time_seconds(&lead, 90 * 86400), 30 * 86400);
}

static void test_bad_lead_times_refused_naming_the_value(void **state)
{
    (void)state;
    static const char *const bad[] = {"0%",    "101%", "%",     "-5%",
                                      "33.3%", "33 %", "1000%", "99999999999999999999%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ck_lead_time lead = {0};
        ck_error err = {0};
        if (ck_lead_time_parse(bad[i], &lead, &err) == 0)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_string_equal(err.code, "invalid_duration");
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i]);
        assert_contains(err.message, quoted);
        assert_contains(err.message, "from 1 to 100");
    }
    struct ck_lead_time lead = {0};
    ck_error err = {0};
    assert_int_equal(ck_lead_time_parse("5x", &lead, &err), -1);
    assert_contains(err.message, "\"5x\" is not valid");
    assert_contains(err.message, "33%");
    assert_int_equal(ck_lead_time_parse("", &lead, &err), -1);
    assert_int_equal(ck_lead_time_parse(NULL, &lead, &err), -1);
}

static void test_long_values_are_cut_in_messages(void **state)
{
    (void)state;
    char text[2000];
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    int64_t seconds = 0;
    ck_error err = {0};
    assert_int_equal(ck_duration_parse(text, &seconds, &err), -1);
    assert_contains(err.message, "90d");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_in_seconds),
        cmocka_unit_test(test_bad_durations_refused_naming_the_value),
        cmocka_unit_test(test_empty_and_null_refused),
        cmocka_unit_test(test_lead_times),
        cmocka_unit_test(test_bad_lead_times_refused_naming_the_value),
        cmocka_unit_test(test_long_values_are_cut_in_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
