/* sleeper.h — how the daemon's background threads (scheduler, monitor, webhook worker) wait
 * between passes: a timed sleep on the monotonic clock that another thread can cut short with
 * ck_sleeper_wake (work arrived) or end for good with ck_sleeper_stop (shutdown).
 *
 * A stop is never missed: it is a flag under the lock, checked before and after each wait, so a
 * thread that is in a pass when the stop comes sees it at its next ck_sleeper_sleep (or sooner,
 * through ck_sleeper_stopping). */
#ifndef CK_COMMON_SLEEPER_H
#define CK_COMMON_SLEEPER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ck_sleeper {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool woken;    /* under lock: a wake came since the last sleep began */
    bool stopping; /* under lock */
};

/* 0, or -1 when the system refused a mutex or condition variable. */
int ck_sleeper_init(struct ck_sleeper *s);
void ck_sleeper_destroy(struct ck_sleeper *s);

/* Waits up to ms milliseconds, less if woken; a wake that came while the caller was busy ends
 * the next sleep at once. False when stopping (then it does not wait). */
bool ck_sleeper_sleep(struct ck_sleeper *s, int64_t ms);

/* Ends every current sleep, and the next one if nobody is asleep. */
void ck_sleeper_wake(struct ck_sleeper *s);

/* From now on every sleep returns false at once. */
void ck_sleeper_stop(struct ck_sleeper *s);

bool ck_sleeper_stopping(struct ck_sleeper *s);

#endif
