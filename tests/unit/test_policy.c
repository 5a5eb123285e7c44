#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/policy.h"

#define DAY   86400
#define T0    1795000000 /* a certificate's not_before, in 2026 */
#define SEEDS 2000

static struct ck_renewal_time renewal(const char *renew_before, enum ck_validation v,
                                      int64_t lifetime, uint64_t seed)
{
    struct ck_renewal_input in = {.renew_before = renew_before,
                                  .validation = v,
                                  .not_before = T0,
                                  .not_after = T0 + lifetime,
                                  .seed = seed};
    struct ck_renewal_time out = {0};
    ck_error err = {0};
    if (ck_policy_renewal_time(&in, &out, &err) != 0)
        fail_msg("renewal time refused: %s", err.message);
    return out;
}

/* The renewal starts at `expected`, or up to the spread later (1 % of the window, at most 1 h). */
static void assert_renews_near(struct ck_renewal_time got, int64_t expected, int64_t lifetime)
{
    int64_t window = T0 + lifetime - expected;
    int64_t spread = window / 100 < 3600 ? window / 100 : 3600;
    if (got.at < expected || got.at > expected + spread)
        fail_msg("renews at T0%+lld, expected T0%+lld (+0..%lld)", (long long)(got.at - T0),
                 (long long)(expected - T0), (long long)spread);
}

static void test_one_year_dv_renews_20_days_before_ov_60(void **state)
{
    (void)state;
    int64_t year = 365 * DAY;
    struct ck_renewal_time dv = renewal(NULL, CK_VALIDATION_DV, year, 7);
    assert_renews_near(dv, T0 + year - 20 * DAY, year);
    assert_int_equal(dv.basis, CK_RENEWAL_DEFAULT);
    struct ck_renewal_time ov = renewal(NULL, CK_VALIDATION_OV, year, 7);
    assert_renews_near(ov, T0 + year - 60 * DAY, year);
    assert_string_equal(ck_renewal_basis_name(ov.basis), "default");
    assert_renews_near(renewal(NULL, CK_VALIDATION_EV, year, 7), T0 + year - 60 * DAY, year);
}

static void test_default_never_covers_more_than_a_third(void **state)
{
    (void)state;
    /* 45 days: 60 d before expiry would be before issuance; two thirds is day 30. */
    struct ck_renewal_time short_cert = renewal(NULL, CK_VALIDATION_OV, 45 * DAY, 7);
    assert_renews_near(short_cert, T0 + 30 * DAY, 45 * DAY);
    assert_string_equal(ck_renewal_basis_name(short_cert.basis), "default_capped");
    /* 90 days: day 60, 30 days before expiry, not day 30. */
    assert_renews_near(renewal(NULL, CK_VALIDATION_OV, 90 * DAY, 7), T0 + 60 * DAY, 90 * DAY);
    /* 90-day DV: 20 d is within the third, so it stays 20 d. */
    assert_renews_near(renewal(NULL, CK_VALIDATION_DV, 90 * DAY, 7), T0 + 70 * DAY, 90 * DAY);
    /* A 30-second test certificate with the default renews at 20 s, not at once. */
    struct ck_renewal_time tiny = renewal(NULL, CK_VALIDATION_DV, 30, 7);
    assert_int_equal(tiny.at, T0 + 20);
}

static void test_percentage_is_a_share_of_the_lifetime(void **state)
{
    (void)state;
    /* 33 % of 90 days = 29.7 days before expiry. */
    struct ck_renewal_time got = renewal("33%", CK_VALIDATION_OV, 90 * DAY, 7);
    assert_renews_near(got, T0 + 90 * DAY - 90 * DAY * 33 / 100, 90 * DAY);
    assert_int_equal(got.basis, CK_RENEWAL_EXPLICIT);
    /* 100 % would renew at issuance every time; two thirds instead. */
    struct ck_renewal_time all = renewal("100%", CK_VALIDATION_OV, 90 * DAY, 7);
    assert_renews_near(all, T0 + 60 * DAY, 90 * DAY);
    assert_int_equal(all.basis, CK_RENEWAL_EXPLICIT_TOO_LONG);
}

static void test_explicit_duration_is_honoured_beyond_a_third(void **state)
{
    (void)state;
    /* The test policy: lifetime 40s, renew_before 30s, deploy_before 25s. Renewal at
     * 10 s, so the new certificate exists before the 25-second deployment point (15 s). */
    struct ck_renewal_time got = renewal("30s", CK_VALIDATION_DV, 40, 99);
    assert_int_equal(got.at, T0 + 10);
    assert_string_equal(ck_renewal_basis_name(got.basis), "explicit");
    struct ck_deploy_input dep = {.deploy_before = "25s", .production_not_after = T0 + 40};
    struct ck_deploy_decision d = {0};
    assert_int_equal(ck_policy_deploy_decision(&dep, T0 + 12, &d, NULL), 0);
    assert_int_equal(d.action, CK_DEPLOY_WAIT);
    assert_int_equal(d.at, T0 + 15);
    /* An explicit 40 d on a 90-day certificate is a choice, not a mistake: kept. */
    assert_renews_near(renewal("40d", CK_VALIDATION_OV, 90 * DAY, 7), T0 + 50 * DAY, 90 * DAY);
    /* As long as the lifetime or longer: two thirds, not "at once and forever". */
    struct ck_renewal_time too_long = renewal("40s", CK_VALIDATION_DV, 30, 7);
    assert_int_equal(too_long.at, T0 + 20);
    assert_int_equal(too_long.basis, CK_RENEWAL_EXPLICIT_TOO_LONG);
    assert_int_equal(renewal("60d", CK_VALIDATION_DV, 45 * DAY, 7).basis,
                     CK_RENEWAL_EXPLICIT_TOO_LONG);
}

static void test_bad_renew_before_is_refused(void **state)
{
    (void)state;
    struct ck_renewal_input in = {.renew_before = "soon", .not_before = T0, .not_after = T0 + 90};
    struct ck_renewal_time out = {0};
    ck_error err = {0};
    assert_int_equal(ck_policy_renewal_time(&in, &out, &err), -1);
    assert_string_equal(err.code, "invalid_duration");
    assert_non_null(strstr(err.message, "soon"));
}

static void test_ari_window_wins(void **state)
{
    (void)state;
    struct ck_ari_window ari = {.start = T0 + 80 * DAY, .end = T0 + 82 * DAY};
    struct ck_renewal_input in = {.renew_before = "30d",
                                  .validation = CK_VALIDATION_DV,
                                  .not_before = T0,
                                  .not_after = T0 + 90 * DAY,
                                  .ari = &ari};
    int64_t lowest = INT64_MAX, highest = INT64_MIN;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        in.seed = seed;
        struct ck_renewal_time out = {0};
        assert_int_equal(ck_policy_renewal_time(&in, &out, NULL), 0);
        assert_int_equal(out.basis, CK_RENEWAL_ARI);
        assert_in_range(out.at, ari.start, ari.end);
        lowest = out.at < lowest ? out.at : lowest;
        highest = out.at > highest ? out.at : highest;
    }
    /* Spread over the window, not bunched at one end. */
    assert_true(lowest < ari.start + 2 * DAY / 10);
    assert_true(highest > ari.end - 2 * DAY / 10);
    /* A malformed window (ends before it starts) is ignored: the policy applies. */
    struct ck_ari_window bad = {.start = T0 + 80 * DAY, .end = T0 + 10 * DAY};
    in.ari = &bad;
    struct ck_renewal_time out = {0};
    assert_int_equal(ck_policy_renewal_time(&in, &out, NULL), 0);
    assert_int_equal(out.basis, CK_RENEWAL_EXPLICIT);
}

static void test_spread_is_bounded_and_deterministic(void **state)
{
    (void)state;
    int64_t year = 365 * DAY, base = T0 + year - 60 * DAY;
    int64_t lowest = INT64_MAX, highest = INT64_MIN;
    size_t at_base = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct ck_renewal_time a = renewal(NULL, CK_VALIDATION_OV, year, seed);
        assert_int_equal(renewal(NULL, CK_VALIDATION_OV, year, seed).at, a.at);
        assert_in_range(a.at, base, base + 3600);
        lowest = a.at < lowest ? a.at : lowest;
        highest = a.at > highest ? a.at : highest;
        at_base += a.at == base;
    }
    /* Thousands due together start across the hour, not in the same second. */
    assert_true(lowest < base + 300);
    assert_true(highest > base + 3300);
    assert_true(at_base < 10);
    /* 1 % of a 30 s window is 0 s: short test certificates are not moved. */
    for (uint64_t seed = 1; seed <= 100; seed++)
        assert_int_equal(renewal("30s", CK_VALIDATION_DV, 40, seed).at, T0 + 10);
    /* 1 % of a 10-day window (2.4 h) is capped at 1 h; 1 % of 1 day is 864 s. */
    for (uint64_t seed = 1; seed <= 100; seed++) {
        assert_in_range(renewal("1d", CK_VALIDATION_DV, 30 * DAY, seed).at, T0 + 29 * DAY,
                        T0 + 29 * DAY + 864);
    }
}

static void test_should_renew_and_when_to_look_again(void **state)
{
    (void)state;
    struct ck_renewal_input in = {.renew_before = "30s", .not_before = T0, .not_after = T0 + 40};
    bool renew = true;
    int64_t next = 0;
    assert_int_equal(ck_policy_should_renew(&in, T0 + 3, &renew, &next, NULL), 0);
    assert_false(renew);
    assert_int_equal(next, T0 + 10);
    assert_int_equal(ck_policy_should_renew(&in, T0 + 10, &renew, &next, NULL), 0);
    assert_true(renew);
    assert_int_equal(next, T0 + 10);
    /* An expired certificate renews at once. */
    assert_int_equal(ck_policy_should_renew(&in, T0 + 400, &renew, &next, NULL), 0);
    assert_true(renew);
    /* A renewal months away: look again within 6 h (policy or ARI may change). */
    struct ck_renewal_input year = {.not_before = T0, .not_after = T0 + 365 * DAY, .seed = 3};
    assert_int_equal(ck_policy_should_renew(&year, T0 + DAY, &renew, &next, NULL), 0);
    assert_false(renew);
    assert_int_equal(next, T0 + DAY + 6 * 3600);
    /* No certificate yet: the first order starts at once. */
    struct ck_renewal_input none = {.seed = 3};
    assert_int_equal(ck_policy_should_renew(&none, T0, &renew, &next, NULL), 0);
    assert_true(renew);
    assert_int_equal(next, T0);
}

static struct ck_deploy_decision deploy(struct ck_deploy_input in, int64_t now)
{
    struct ck_deploy_decision d = {0};
    ck_error err = {0};
    if (ck_policy_deploy_decision(&in, now, &d, &err) != 0)
        fail_msg("deploy decision refused: %s", err.message);
    return d;
}

static void test_deploy_decisions(void **state)
{
    (void)state;
    int64_t expiry = T0 + 365 * DAY;
    /* No production certificate: at once. */
    struct ck_deploy_decision d = deploy((struct ck_deploy_input){0}, T0);
    assert_int_equal(d.action, CK_DEPLOY_NOW);
    assert_string_equal(ck_deploy_action_name(d.action), "deploy_now");
    /* 50 days before expiry: wait until 7 days before. */
    d = deploy((struct ck_deploy_input){.production_not_after = expiry}, expiry - 50 * DAY);
    assert_int_equal(d.action, CK_DEPLOY_WAIT);
    assert_int_equal(d.at, expiry - 7 * DAY);
    /* 7 days before expiry: now; and after expiry too. */
    d = deploy((struct ck_deploy_input){.production_not_after = expiry}, expiry - 7 * DAY);
    assert_int_equal(d.action, CK_DEPLOY_NOW);
    d = deploy((struct ck_deploy_input){.production_not_after = expiry}, expiry + DAY);
    assert_int_equal(d.action, CK_DEPLOY_NOW);
    /* A configured deploy_before. */
    d = deploy((struct ck_deploy_input){.deploy_before = "14d", .production_not_after = expiry},
               expiry - 10 * DAY);
    assert_int_equal(d.action, CK_DEPLOY_NOW);
}

static void test_deploy_not_before_and_staging_ack(void **state)
{
    (void)state;
    int64_t expiry = T0 + 365 * DAY, date = expiry - 3 * DAY;
    /* A not-before date replaces the 7-day rule: 7 days before expiry it still waits. */
    struct ck_deploy_input dated = {.production_not_after = expiry, .deploy_not_before = date};
    struct ck_deploy_decision d = deploy(dated, expiry - 7 * DAY);
    assert_int_equal(d.action, CK_DEPLOY_WAIT);
    assert_int_equal(d.at, date);
    assert_int_equal(deploy(dated, date).action, CK_DEPLOY_NOW);
    /* ... also with no production certificate, and early dates allow early deployment. */
    assert_int_equal(deploy((struct ck_deploy_input){.deploy_not_before = date}, T0).action,
                     CK_DEPLOY_WAIT);
    dated.deploy_not_before = T0 + DAY;
    assert_int_equal(deploy(dated, T0 + DAY).action, CK_DEPLOY_NOW);
    /* Always test on staging: the acknowledgement is needed, and the time rule still holds. */
    struct ck_deploy_input acked = {.production_not_after = expiry, .always_test_on_staging = true};
    d = deploy(acked, expiry - DAY);
    assert_int_equal(d.action, CK_DEPLOY_NEEDS_ACK);
    assert_string_equal(ck_deploy_action_name(d.action), "needs_ack");
    acked.staging_acked_at = T0 + DAY;
    assert_int_equal(deploy(acked, expiry - 30 * DAY).action, CK_DEPLOY_WAIT);
    assert_int_equal(deploy(acked, expiry - DAY).action, CK_DEPLOY_NOW);
    /* Both set: both must hold. */
    struct ck_deploy_input both = {
        .production_not_after = expiry, .deploy_not_before = date, .always_test_on_staging = true};
    d = deploy(both, date + 1);
    assert_int_equal(d.action, CK_DEPLOY_NEEDS_ACK);
    assert_int_equal(d.at, date);
    both.staging_acked_at = T0 + DAY;
    assert_int_equal(deploy(both, date - 1).action, CK_DEPLOY_WAIT);
    assert_int_equal(deploy(both, date).action, CK_DEPLOY_NOW);
}

static void test_bad_deploy_before_is_refused(void **state)
{
    (void)state;
    struct ck_deploy_input in = {.deploy_before = "10%", .production_not_after = T0};
    struct ck_deploy_decision d = {0};
    ck_error err = {0};
    assert_int_equal(ck_policy_deploy_decision(&in, T0, &d, &err), -1);
    assert_string_equal(err.code, "invalid_duration");
}

static void test_retry_backoff_grows_is_capped_and_jittered(void **state)
{
    (void)state;
    assert_int_equal(ck_policy_retry_ceiling(0), 60);
    assert_int_equal(ck_policy_retry_ceiling(1), 60);
    assert_int_equal(ck_policy_retry_ceiling(2), 120);
    assert_int_equal(ck_policy_retry_ceiling(5), 960);
    assert_int_equal(ck_policy_retry_ceiling(9), 15360);
    assert_int_equal(ck_policy_retry_ceiling(10), 6 * 3600);
    assert_int_equal(ck_policy_retry_ceiling(1000000), 6 * 3600);
    for (int attempt = 1; attempt <= 12; attempt++) {
        int64_t ceiling = ck_policy_retry_ceiling(attempt), sum = 0, highest = 0;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            int64_t at = ck_policy_retry_after(attempt, T0, seed);
            assert_int_equal(ck_policy_retry_after(attempt, T0, seed), at);
            assert_in_range(at, T0 + 1, T0 + ceiling);
            sum += at - T0;
            highest = at - T0 > highest ? at - T0 : highest;
        }
        /* Full jitter: the mean is about half the ceiling and the top is reached. */
        int64_t mean = sum / SEEDS;
        assert_in_range(mean, ceiling * 4 / 10, ceiling * 6 / 10);
        assert_true(highest > ceiling * 9 / 10);
    }
    /* One enrollment's successive waits differ, not one jitter value scaled. */
    assert_int_not_equal(ck_policy_retry_after(3, T0, 5) - T0,
                         4 * (ck_policy_retry_after(1, T0, 5) - T0));
}

static void test_urgency(void **state)
{
    (void)state;
    int64_t expiry = T0 + 90 * DAY;
    bool urgent = true;
    assert_int_equal(ck_policy_is_urgent(NULL, expiry, false, expiry - 8 * DAY, &urgent, NULL), 0);
    assert_false(urgent);
    assert_int_equal(ck_policy_is_urgent(NULL, expiry, false, expiry - 6 * DAY, &urgent, NULL), 0);
    assert_true(urgent);
    assert_int_equal(ck_policy_is_urgent(NULL, expiry, false, expiry + DAY, &urgent, NULL), 0);
    assert_true(urgent);
    /* A certificate is ready to replace it: not urgent. */
    assert_int_equal(ck_policy_is_urgent(NULL, expiry, true, expiry - DAY, &urgent, NULL), 0);
    assert_false(urgent);
    /* No production certificate: nothing expires. */
    assert_int_equal(ck_policy_is_urgent(NULL, 0, false, T0, &urgent, NULL), 0);
    assert_false(urgent);
    /* The window follows deploy_before. */
    assert_int_equal(ck_policy_is_urgent("25s", T0 + 40, false, T0 + 14, &urgent, NULL), 0);
    assert_false(urgent);
    assert_int_equal(ck_policy_is_urgent("25s", T0 + 40, false, T0 + 16, &urgent, NULL), 0);
    assert_true(urgent);
    ck_error err = {0};
    assert_int_equal(ck_policy_is_urgent("7 days", expiry, false, T0, &urgent, &err), -1);
    assert_string_equal(err.code, "invalid_duration");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_year_dv_renews_20_days_before_ov_60),
        cmocka_unit_test(test_default_never_covers_more_than_a_third),
        cmocka_unit_test(test_percentage_is_a_share_of_the_lifetime),
        cmocka_unit_test(test_explicit_duration_is_honoured_beyond_a_third),
        cmocka_unit_test(test_bad_renew_before_is_refused),
        cmocka_unit_test(test_ari_window_wins),
        cmocka_unit_test(test_spread_is_bounded_and_deterministic),
        cmocka_unit_test(test_should_renew_and_when_to_look_again),
        cmocka_unit_test(test_deploy_decisions),
        cmocka_unit_test(test_deploy_not_before_and_staging_ack),
        cmocka_unit_test(test_bad_deploy_before_is_refused),
        cmocka_unit_test(test_retry_backoff_grows_is_capped_and_jittered),
        cmocka_unit_test(test_urgency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
