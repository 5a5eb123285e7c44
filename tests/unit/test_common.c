#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/sleeper.h"
#include "common/util.h"

static void test_time_round_trip(void **state)
{
    (void)state;
    char buf[32];
    ck_time_format(1795219200, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-21T00:00:00Z");
    int64_t t = 0;
    assert_int_equal(ck_time_parse("2026-11-21T00:00:00Z", &t), 0);
    assert_int_equal(t, 1795219200);
    assert_int_equal(ck_time_parse("2026-11-21T02:00:00.250+02:00", &t), 0);
    assert_int_equal(t, 1795219200);
    assert_int_equal(ck_time_parse("2026-11-21", &t), -1);
    assert_int_equal(ck_time_parse("2026-11-21T00:00:00", &t), -1);
    assert_int_equal(ck_time_parse("2026-11-21T00:00:00Zjunk", &t), -1);
}

static void test_strv(void **state)
{
    (void)state;
    ck_strv v = {0}, copy = {0};
    for (int i = 0; i < 10; i++) {
        char s[8];
        snprintf(s, sizeof(s), "n%d", i);
        assert_int_equal(ck_strv_push(&v, s), 0);
    }
    assert_int_equal(v.len, 10);
    assert_true(ck_strv_contains(&v, "n9"));
    assert_false(ck_strv_contains(&v, "n10"));
    assert_int_equal(ck_strv_copy(&copy, &v), 0);
    assert_string_equal(copy.items[3], "n3");
    ck_strv_free(&v);
    ck_strv_free(&copy);
    assert_null(v.items);
}

static void test_file_atomic_and_bounded_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/ck-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/secret", dir);
    ck_error err = {0};
    assert_int_equal(ck_write_file_atomic(path, "hello", 5, 0600, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(ck_read_file(path, 5, &data, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    assert_int_equal(ck_read_file(path, 4, &data, &len, &err), -1);
    assert_int_equal(err.status, 413);
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(ck_read_file(path, 4, &data, &len, &err), -1);
    assert_string_equal(err.code, "unreadable_file");
    snprintf(path, sizeof(path), "%s/secret", dir);
    unlink(path);
    rmdir(dir);
}

static void test_hex(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0xab, 0xff};
    char out[7];
    ck_hex_encode(bytes, sizeof(bytes), out);
    assert_string_equal(out, "00abff");
}

static void *wake_from_thread(void *arg)
{
    usleep(20 * 1000); /* most often while the test sleeps; before is fine too */
    ck_sleeper_wake(arg);
    return NULL;
}

static void *stop_from_thread(void *arg)
{
    usleep(20 * 1000);
    ck_sleeper_stop(arg);
    return NULL;
}

/* A 60 s sleep must end on a wake and on a stop from another thread, or the test would hang
 * until the suite's timeout; a wake that came while nobody slept ends the next sleep. */
static void test_sleeper(void **state)
{
    (void)state;
    struct ck_sleeper s;
    pthread_t thread;
    assert_int_equal(ck_sleeper_init(&s), 0);
    assert_true(ck_sleeper_sleep(&s, 1));
    ck_sleeper_wake(&s);
    assert_true(ck_sleeper_sleep(&s, 60000));
    assert_int_equal(pthread_create(&thread, NULL, wake_from_thread, &s), 0);
    assert_true(ck_sleeper_sleep(&s, 60000));
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(pthread_create(&thread, NULL, stop_from_thread, &s), 0);
    assert_false(ck_sleeper_sleep(&s, 60000));
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(ck_sleeper_stopping(&s));
    assert_false(ck_sleeper_sleep(&s, 60000));
    ck_sleeper_destroy(&s);
}

static void test_host_is_loopback(void **state)
{
    (void)state;
    assert_true(ck_host_is_loopback("127.0.0.1"));
    assert_true(ck_host_is_loopback("127.8.9.10"));
    assert_true(ck_host_is_loopback("localhost"));
    assert_true(ck_host_is_loopback("LocalHost"));
    assert_true(ck_host_is_loopback("::1"));
    assert_true(ck_host_is_loopback("[::1]"));
    assert_false(ck_host_is_loopback("10.0.0.1"));
    assert_false(ck_host_is_loopback("128.0.0.1"));
    assert_false(ck_host_is_loopback("[::2]"));
    assert_false(ck_host_is_loopback("localhost.example.com"));
    assert_false(ck_host_is_loopback("127.0.0.1.example.com"));
    assert_false(ck_host_is_loopback(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_sleeper),
        cmocka_unit_test(test_strv),
        cmocka_unit_test(test_file_atomic_and_bounded_read),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_host_is_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
