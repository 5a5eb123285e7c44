#include "common/sleeper.h"

#include <errno.h>
#include <time.h>

int ck_sleeper_init(struct ck_sleeper *s)
{
    pthread_condattr_t attr;
    int rc = -1;
    *s = (struct ck_sleeper){0};
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    /* monotonic: a clock step (or faketime in the tests) neither shortens nor stretches a wait */
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->wake, &attr) != 0)
        goto cleanup;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pthread_cond_destroy(&s->wake);
        goto cleanup;
    }
    rc = 0;
cleanup:
    pthread_condattr_destroy(&attr);
    return rc;
}

void ck_sleeper_destroy(struct ck_sleeper *s)
{
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
}

bool ck_sleeper_sleep(struct ck_sleeper *s, int64_t ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    /* spurious wake-ups go back to sleep; only a wake, a stop or the deadline end it */
    while (!s->stopping && !s->woken &&
           pthread_cond_timedwait(&s->wake, &s->lock, &deadline) != ETIMEDOUT) {
    }
    s->woken = false;
    bool go_on = !s->stopping;
    pthread_mutex_unlock(&s->lock);
    return go_on;
}

void ck_sleeper_wake(struct ck_sleeper *s)
{
    pthread_mutex_lock(&s->lock);
    s->woken = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

void ck_sleeper_stop(struct ck_sleeper *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

bool ck_sleeper_stopping(struct ck_sleeper *s)
{
    pthread_mutex_lock(&s->lock);
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stopping;
}
