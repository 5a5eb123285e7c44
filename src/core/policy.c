/* policy.c — renewal, deployment and retry decisions; see policy.h and docs/DESIGN.md. */
#include "core/policy.h"

#include <stddef.h>

#include "common/duration.h"

/* Salts so the ARI point, the renewal spread and the retry jitter of one enrollment are
 * independent of each other although they share its id as seed. */
#define SALT_ARI    0x41524921u
#define SALT_SPREAD 0x53505244u
#define SALT_RETRY  0x52545259u

/* splitmix64's finaliser: a well-spread 64-bit value from any seed, the same on every run.
 * This only spreads times; nothing here needs to be unpredictable. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* A value in [0, span] (span >= 0) drawn from seed and salt. */
static int64_t pick(uint64_t seed, uint64_t salt, int64_t span)
{
    if (span <= 0)
        return 0;
    return (int64_t)(mix64(mix64(seed) ^ salt) % ((uint64_t)span + 1));
}

const char *ck_renewal_basis_name(enum ck_renewal_basis b)
{
    switch (b) {
    case CK_RENEWAL_NO_CERTIFICATE:
        return "no_certificate";
    case CK_RENEWAL_DEFAULT:
        return "default";
    case CK_RENEWAL_DEFAULT_CAPPED:
        return "default_capped";
    case CK_RENEWAL_EXPLICIT:
        return "explicit";
    case CK_RENEWAL_EXPLICIT_TOO_LONG:
        return "explicit_too_long";
    case CK_RENEWAL_ARI:
        return "ari";
    }
    return "unknown";
}

const char *ck_deploy_action_name(enum ck_deploy_action a)
{
    switch (a) {
    case CK_DEPLOY_NOW:
        return "deploy_now";
    case CK_DEPLOY_WAIT:
        return "wait";
    case CK_DEPLOY_NEEDS_ACK:
        return "needs_ack";
    }
    return "unknown";
}

/* not_before + 2/3 of the lifetime, computed without overflowing for any lifetime. */
static int64_t two_thirds_point(int64_t not_before, int64_t lifetime)
{
    return not_before + lifetime / 3 * 2 + lifetime % 3 * 2 / 3;
}

/* The policy's renewal point before the spread: the default with its one-third cap, or an
 * explicit lead time as given unless it covers the whole lifetime. */
static int policy_point(const struct ck_renewal_input *in, int64_t lifetime,
                        struct ck_renewal_time *out, ck_error *err)
{
    int64_t latest_start = two_thirds_point(in->not_before, lifetime);
    if (in->renew_before == NULL) {
        int64_t lead = in->validation == CK_VALIDATION_DV ? CK_POLICY_RENEW_BEFORE_DEFAULT_DV
                                                          : CK_POLICY_RENEW_BEFORE_DEFAULT;
        bool capped = lead > lifetime / 3;
        out->at = capped ? latest_start : in->not_after - lead;
        out->basis = capped ? CK_RENEWAL_DEFAULT_CAPPED : CK_RENEWAL_DEFAULT;
        return 0;
    }
    struct ck_lead_time lead = {0};
    if (ck_lead_time_parse(in->renew_before, &lead, err) != 0)
        return -1;
    int64_t seconds = ck_lead_time_seconds(&lead, lifetime);
    /* A lead time as long as the certificate would renew at once, every time, forever. */
    bool too_long = seconds >= lifetime;
    out->at = too_long ? latest_start : in->not_after - seconds;
    out->basis = too_long ? CK_RENEWAL_EXPLICIT_TOO_LONG : CK_RENEWAL_EXPLICIT;
    return 0;
}

int ck_policy_renewal_time(const struct ck_renewal_input *in, struct ck_renewal_time *out,
                           ck_error *err)
{
    if (in->not_after == 0) {
        *out = (struct ck_renewal_time){.at = 0, .basis = CK_RENEWAL_NO_CERTIFICATE};
        return 0;
    }
    /* RFC 9773 section 4.2: a uniformly chosen point inside the suggested window; it is
     * already spread, so no further spread is added. A window that ends before it starts is
     * malformed and ignored. */
    if (in->ari != NULL && in->ari->end >= in->ari->start) {
        int64_t span = in->ari->end - in->ari->start;
        out->at = in->ari->start + pick(in->seed, SALT_ARI, span);
        out->basis = CK_RENEWAL_ARI;
        return 0;
    }
    int64_t lifetime = in->not_after > in->not_before ? in->not_after - in->not_before : 0;
    if (policy_point(in, lifetime, out, err) != 0)
        return -1;
    /* Later, never earlier, so the one-third rule and an explicit lead time stay upper bounds. */
    int64_t window = in->not_after - out->at;
    int64_t spread = window / 100 < CK_POLICY_SPREAD_MAX ? window / 100 : CK_POLICY_SPREAD_MAX;
    out->at += pick(in->seed, SALT_SPREAD, spread);
    return 0;
}

int ck_policy_should_renew(const struct ck_renewal_input *in, int64_t now, bool *renew,
                           int64_t *next_check, ck_error *err)
{
    struct ck_renewal_time when = {0};
    if (ck_policy_renewal_time(in, &when, err) != 0)
        return -1;
    *renew = now >= when.at;
    if (*renew)
        *next_check = now;
    else
        *next_check = when.at - now < CK_POLICY_RECHECK_MAX ? when.at : now + CK_POLICY_RECHECK_MAX;
    return 0;
}

static int deploy_before_seconds(const char *deploy_before, int64_t *seconds, ck_error *err)
{
    if (deploy_before == NULL) {
        *seconds = CK_POLICY_DEPLOY_BEFORE_DEFAULT;
        return 0;
    }
    return ck_duration_parse(deploy_before, seconds, err);
}

int ck_policy_deploy_decision(const struct ck_deploy_input *in, int64_t now,
                              struct ck_deploy_decision *out, ck_error *err)
{
    int64_t lead = 0;
    if (deploy_before_seconds(in->deploy_before, &lead, err) != 0)
        return -1;
    /* Seed 002: a not-before date replaces the "7 days before expiry" rule; with no production
     * certificate there is nothing to wait for. */
    int64_t time_ok_at = now;
    if (in->deploy_not_before != 0)
        time_ok_at = in->deploy_not_before;
    else if (in->production_not_after != 0)
        time_ok_at = in->production_not_after - lead;
    bool acked = !in->always_test_on_staging || in->staging_acked_at != 0;
    if (!acked)
        *out = (struct ck_deploy_decision){.action = CK_DEPLOY_NEEDS_ACK, .at = time_ok_at};
    else if (now >= time_ok_at)
        *out = (struct ck_deploy_decision){.action = CK_DEPLOY_NOW, .at = now};
    else
        *out = (struct ck_deploy_decision){.action = CK_DEPLOY_WAIT, .at = time_ok_at};
    return 0;
}

int64_t ck_policy_retry_ceiling(int attempt)
{
    int doublings = attempt < 1 ? 0 : attempt - 1;
    int64_t ceiling = CK_POLICY_RETRY_BASE;
    for (int i = 0; i < doublings && ceiling < CK_POLICY_RETRY_CAP; i++)
        ceiling *= 2;
    return ceiling < CK_POLICY_RETRY_CAP ? ceiling : CK_POLICY_RETRY_CAP;
}

int64_t ck_policy_retry_after(int attempt, int64_t now, uint64_t seed)
{
    int64_t ceiling = ck_policy_retry_ceiling(attempt);
    uint64_t salt = SALT_RETRY ^ mix64((uint64_t)(attempt < 1 ? 1 : attempt));
    return now + 1 + pick(seed, salt, ceiling - 1);
}

int ck_policy_is_urgent(const char *deploy_before, int64_t production_not_after,
                        bool certificate_ready, int64_t now, bool *urgent, ck_error *err)
{
    int64_t lead = 0;
    if (deploy_before_seconds(deploy_before, &lead, err) != 0)
        return -1;
    *urgent = production_not_after != 0 && !certificate_ready && production_not_after - now < lead;
    return 0;
}
