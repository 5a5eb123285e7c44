/* Unit tests for issuers/dns: dns-01 records put in place by RFC 2136 with TSIG against a real
 * BIND 9 started here on loopback (tests/integration/bind.sh), checked with the propagation
 * check, removed again; hooks; manual zone lines. Every query goes to 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "issuers/dns/dns01.h"

#define FQDN "_acme-challenge.shop.example.test"

struct fixture {
    char dir[64];
    char zone[64];
    char tsig_name[64];
    char tsig_alg[32];
    char tsig_secret[128];
    struct ck_dns_server server;
    int silent_fd; /* a UDP socket on loopback that never answers */
    struct ck_dns_server silent;
};

struct log_lines {
    char text[8192];
    int count;
};

static void collect_log(void *ctx, const char *line)
{
    struct log_lines *log = ctx;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof(log->text) - used, "%s\n", line);
    log->count++;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *source_dir(void)
{
    const char *dir = getenv("CERTKEEP_SOURCE_DIR");
    return dir != NULL ? dir : ".";
}

static int run_bind_helper(const char *function, const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "BIND_WATCH_PID=%d bash -c 'source \"%s/tests/integration/bind.sh\" && %s \"%s\"'",
             (int)getpid(), source_dir(), function, dir);
    return system(cmd);
}

static void read_env_value(const char *dir, const char *key, char *out, size_t len)
{
    char path[128], line[256];
    snprintf(path, sizeof(path), "%s/bind.env", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t key_len = strlen(key);
    out[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == '=') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, len, "%s", line + key_len + 1);
        }
    }
    fclose(f);
    assert_true(out[0] != '\0');
}

static int open_silent_udp(struct ck_dns_server *server)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    snprintf(server->host, sizeof(server->host), "127.0.0.1");
    server->port = ntohs(addr.sin_port);
    return fd;
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/certkeep-dns01.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    if (run_bind_helper("bind_start", f->dir) != 0) {
        fprintf(stderr,
                "# could not start BIND 9 named (package bind9) with %s/tests/integration/"
                "bind.sh\n",
                source_dir());
        return -1;
    }
    char port[16];
    read_env_value(f->dir, "BIND_PORT", port, sizeof(port));
    read_env_value(f->dir, "BIND_ZONE", f->zone, sizeof(f->zone));
    read_env_value(f->dir, "BIND_TSIG_NAME", f->tsig_name, sizeof(f->tsig_name));
    read_env_value(f->dir, "BIND_TSIG_ALG", f->tsig_alg, sizeof(f->tsig_alg));
    read_env_value(f->dir, "BIND_TSIG_SECRET", f->tsig_secret, sizeof(f->tsig_secret));
    snprintf(f->server.host, sizeof(f->server.host), "127.0.0.1");
    f->server.port = atoi(port);
    f->silent_fd = open_silent_udp(&f->silent);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    if (f == NULL)
        return 0;
    run_bind_helper("bind_stop", f->dir);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    close(f->silent_fd);
    free(f);
    return 0;
}

static struct ck_rfc2136_config config_of(const struct fixture *f)
{
    struct ck_rfc2136_config cfg = {.primary = f->server,
                                    .zone = f->zone,
                                    .tsig_name = f->tsig_name,
                                    .tsig_alg = f->tsig_alg,
                                    .tsig_secret_b64 = f->tsig_secret};
    return cfg;
}

/* What `dig` (not our code) reads from the server: the TXT strings as dig prints them. */
static void dig_txt(const struct fixture *f, const char *name, char *out, size_t len)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "dig +norec +short +time=1 +tries=1 -p %d @127.0.0.1 %s TXT",
             f->server.port, name);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    pclose(p);
}

static void test_rfc2136_add_is_seen_by_the_check(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    const char *value = "Xq3-add_check_value_0123456789abcdefghijklm";
    ck_error err = {0};
    assert_int_equal(ck_rfc2136_txt(&cfg, true, FQDN, value, 60, 3000, &err), 0);

    char seen[512];
    dig_txt(f, FQDN, seen, sizeof(seen));
    assert_non_null(strstr(seen, "\"Xq3-add_check_value_0123456789abcdefghijklm\""));

    struct log_lines log = {0};
    assert_int_equal(ck_dns_check_txt(&f->server, 1, FQDN, value, 3000, collect_log, &log, &err),
                     0);
    assert_true(log.count >= 1);
    assert_non_null(strstr(log.text, "TXT value present"));
    assert_non_null(strstr(log.text, "all 1 server answer"));
    assert_int_equal(ck_rfc2136_txt(&cfg, false, FQDN, value, 60, 3000, &err), 0);
}

static void test_rfc2136_delete_removes_only_that_value(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    const char *name = "_acme-challenge.www.example.test.";
    ck_error err = {0};
    assert_int_equal(ck_rfc2136_txt(&cfg, true, name, "first-value", 60, 3000, &err), 0);
    assert_int_equal(ck_rfc2136_txt(&cfg, true, name, "second-value", 60, 3000, &err), 0);
    assert_int_equal(ck_rfc2136_txt(&cfg, false, name, "first-value", 60, 3000, &err), 0);

    char seen[512];
    dig_txt(f, name, seen, sizeof(seen));
    assert_null(strstr(seen, "first-value"));
    assert_non_null(strstr(seen, "second-value"));

    long long start = now_ms();
    struct log_lines log = {0};
    assert_int_equal(
        ck_dns_check_txt(&f->server, 1, name, "first-value", 600, collect_log, &log, &err), -1);
    assert_true(now_ms() - start < 600 + 1500);
    assert_string_equal(err.code, "dns_not_propagated");
    char server[32];
    snprintf(server, sizeof(server), "127.0.0.1:%d", f->server.port);
    assert_non_null(strstr(err.message, server));
    assert_non_null(strstr(err.message, "1 TXT record, none with the value"));
    assert_non_null(strstr(log.text, "gave up"));
    assert_true(log.count >= 2); /* retried within the bound */

    assert_int_equal(ck_rfc2136_txt(&cfg, false, name, "second-value", 60, 3000, &err), 0);
    /* removing a value that is no longer there is not an error */
    assert_int_equal(ck_rfc2136_txt(&cfg, false, name, "second-value", 60, 3000, &err), 0);
    assert_int_equal(ck_dns_check_txt(&f->server, 1, name, "second-value", 300, NULL, NULL, &err),
                     -1);
    assert_non_null(strstr(err.message, "answered NXDOMAIN"));
}

static void test_rfc2136_value_with_quotes_and_spaces(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    const char *value = "a \"quoted\" value; with \\ and $(no shell)";
    ck_error err = {0};
    assert_int_equal(
        ck_rfc2136_txt(&cfg, true, "_acme-challenge.q.example.test", value, 60, 3000, &err), 0);
    char seen[512];
    dig_txt(f, "_acme-challenge.q.example.test", seen, sizeof(seen));
    assert_string_equal(seen, "\"a \\\"quoted\\\" value; with \\\\ and $(no shell)\"\n");
    assert_int_equal(ck_dns_check_txt(&f->server, 1, "_acme-challenge.q.example.test", value, 2000,
                                      NULL, NULL, &err),
                     0);
    assert_int_equal(
        ck_rfc2136_txt(&cfg, false, "_acme-challenge.q.example.test", value, 60, 3000, &err), 0);
}

static void test_rfc2136_wrong_secret_is_refused(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    cfg.tsig_secret_b64 = "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmU=";
    ck_error err = {0};
    assert_int_equal(ck_rfc2136_txt(&cfg, true, FQDN, "never-added", 60, 3000, &err), -1);
    assert_string_equal(err.code, "dns_tsig_rejected");
    assert_non_null(strstr(err.message, "NOTAUTH"));
    assert_non_null(strstr(err.message, "BADSIG"));
    assert_non_null(strstr(err.message, "--tsig-secret"));
    assert_null(strstr(err.message, cfg.tsig_secret_b64)); /* secrets never in messages */

    cfg = config_of(f);
    cfg.tsig_name = "unknown-key.";
    assert_int_equal(ck_rfc2136_txt(&cfg, true, FQDN, "never-added", 60, 3000, &err), -1);
    assert_string_equal(err.code, "dns_tsig_rejected");
    assert_non_null(strstr(err.message, "BADKEY"));

    char seen[512];
    dig_txt(f, FQDN, seen, sizeof(seen));
    assert_null(strstr(seen, "never-added"));
}

static void test_rfc2136_name_outside_the_zone(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    ck_error err = {0};
    assert_int_equal(ck_rfc2136_txt(&cfg, true, "_acme-challenge.example.org", "v", 60, 3000, &err),
                     -1);
    assert_string_equal(err.code, "invalid_dns_name");
    assert_non_null(strstr(err.message, "not a name inside zone example.test"));

    /* a zone the server does not serve */
    cfg.zone = "example.org";
    assert_int_equal(ck_rfc2136_txt(&cfg, true, "_acme-challenge.example.org", "v", 60, 3000, &err),
                     -1);
    assert_string_equal(err.code, "dns_update_refused");
    char server[32];
    snprintf(server, sizeof(server), "127.0.0.1:%d", f->server.port);
    assert_non_null(strstr(err.message, server));
}

static void test_rfc2136_config_check(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    ck_error err = {0};
    assert_int_equal(ck_rfc2136_config_check(&cfg, &err), 0);
    cfg.tsig_alg = "hmac-md5";
    assert_int_equal(ck_rfc2136_config_check(&cfg, &err), -1);
    assert_non_null(strstr(err.message, "hmac-sha256, hmac-sha384, hmac-sha512"));
    cfg = config_of(f);
    cfg.tsig_secret_b64 = "not base64!";
    assert_int_equal(ck_rfc2136_config_check(&cfg, &err), -1);
    assert_non_null(strstr(err.message, "not valid base64"));
    cfg.tsig_secret_b64 = "c2hvcnQ=";
    assert_int_equal(ck_rfc2136_config_check(&cfg, &err), -1);
    assert_non_null(strstr(err.message, "is 5 bytes"));
    cfg = config_of(f);
    assert_int_equal(ck_rfc2136_txt(&cfg, true, FQDN, "v", -5, 1000, &err), -1);
    assert_string_equal(err.code, "invalid_dns_ttl");
}

static void test_unreachable_server_times_out_within_the_bound(void **state)
{
    struct fixture *f = *state;
    ck_error err = {0};
    long long start = now_ms();
    assert_int_equal(ck_dns_check_txt(&f->silent, 1, FQDN, "v", 700, NULL, NULL, &err), -1);
    long long elapsed = now_ms() - start;
    assert_true(elapsed >= 600);
    assert_true(elapsed < 700 + 1200);
    assert_string_equal(err.code, "dns_not_propagated");
    assert_non_null(strstr(err.message, "no answer within"));

    struct ck_rfc2136_config cfg = config_of(f);
    cfg.primary = f->silent;
    start = now_ms();
    assert_int_equal(ck_rfc2136_txt(&cfg, true, FQDN, "v", 60, 500, &err), -1);
    assert_true(now_ms() - start < 500 + 1000);
    assert_string_equal(err.code, "dns_timeout");
    char server[32];
    snprintf(server, sizeof(server), "127.0.0.1:%d", f->silent.port);
    assert_non_null(strstr(err.message, server));
    assert_non_null(strstr(err.message, "did not answer"));
}

struct late_add {
    const struct fixture *f;
    int rc;
};

static void *add_after_a_while(void *arg)
{
    struct late_add *late = arg;
    struct ck_rfc2136_config cfg = config_of(late->f);
    usleep(600 * 1000);
    late->rc = ck_rfc2136_txt(&cfg, true, "_acme-challenge.late.example.test", "late-value", 60,
                              3000, NULL);
    return NULL;
}

/* The check waits: a record that appears after the first attempt is found by a later one. */
static void test_check_waits_for_a_late_record(void **state)
{
    struct fixture *f = *state;
    struct late_add late = {.f = f, .rc = -1};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, add_after_a_while, &late), 0);
    struct log_lines log = {0};
    ck_error err = {0};
    int rc = ck_dns_check_txt(&f->server, 1, "_acme-challenge.late.example.test", "late-value",
                              5000, collect_log, &log, &err);
    pthread_join(thread, NULL);
    assert_int_equal(late.rc, 0);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log.text, "dns check 1: "));
    assert_non_null(strstr(log.text, "answered NXDOMAIN"));
    assert_non_null(strstr(log.text, "TXT value present"));
    assert_true(log.count >= 3);
    struct ck_rfc2136_config cfg = config_of(f);
    assert_int_equal(ck_rfc2136_txt(&cfg, false, "_acme-challenge.late.example.test", "late-value",
                                    60, 3000, &err),
                     0);
}

/* Every server must answer: one that has the record and one that never answers is a failure that
 * names only the silent one. */
static void test_check_needs_every_server(void **state)
{
    struct fixture *f = *state;
    struct ck_rfc2136_config cfg = config_of(f);
    ck_error err = {0};
    assert_int_equal(ck_rfc2136_txt(&cfg, true, FQDN, "both", 60, 3000, &err), 0);
    struct ck_dns_server servers[2] = {f->server, f->silent};
    struct log_lines log = {0};
    assert_int_equal(ck_dns_check_txt(servers, 2, FQDN, "both", 800, collect_log, &log, &err), -1);
    char silent[32], good[32];
    snprintf(silent, sizeof(silent), "127.0.0.1:%d", f->silent.port);
    snprintf(good, sizeof(good), "127.0.0.1:%d", f->server.port);
    assert_non_null(strstr(err.message, silent));
    assert_null(strstr(err.message, good));
    assert_non_null(strstr(log.text, "TXT value present"));
    assert_int_equal(ck_rfc2136_txt(&cfg, false, FQDN, "both", 60, 3000, &err), 0);
}

static void write_script(const char *path, const char *body)
{
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fprintf(out, "#!/bin/sh\n%s\n", body);
    fclose(out);
    assert_int_equal(chmod(path, 0700), 0);
}

static void test_hook_gets_action_name_and_value(void **state)
{
    struct fixture *f = *state;
    char hook[128], args[128], body[256];
    snprintf(hook, sizeof(hook), "%s/hook-args", f->dir);
    snprintf(args, sizeof(args), "%s/hook-args.txt", f->dir);
    snprintf(body, sizeof(body), "printf '[%%s]\\n' \"$@\" > '%s'\necho published", args);
    write_script(hook, body);

    char *output = NULL;
    ck_error err = {0};
    const char *value = "val ue\"$(touch /tmp/x)";
    assert_int_equal(ck_dns_hook_run(hook, true, FQDN, value, 5000, &output, &err), 0);
    assert_string_equal(output, "published\n");
    free(output);
    char recorded[512] = "";
    FILE *in = fopen(args, "r");
    assert_non_null(in);
    recorded[fread(recorded, 1, sizeof(recorded) - 1, in)] = '\0';
    fclose(in);
    assert_string_equal(recorded, "[add]\n[" FQDN "]\n[val ue\"$(touch /tmp/x)]\n");

    assert_int_equal(ck_dns_hook_run(hook, false, FQDN, "v", 5000, NULL, &err), 0);
    in = fopen(args, "r");
    assert_non_null(in);
    recorded[fread(recorded, 1, sizeof(recorded) - 1, in)] = '\0';
    fclose(in);
    assert_string_equal(recorded, "[del]\n[" FQDN "]\n[v]\n");
}

/* The hook gets the daemon's environment (a DNS provider's credentials live there) but none of
 * certkeep's own variables, which hold the master key and the API token. */
static void test_hook_gets_no_certkeep_secrets_or_descriptors(void **state)
{
    struct fixture *f = *state;
    char hook[128];
    snprintf(hook, sizeof(hook), "%s/hook-env", f->dir);
    int open_fd = open("/dev/null", O_RDONLY); /* as the daemon's database would be */
    assert_true(open_fd > 2);
    char body[128];
    snprintf(body, sizeof(body), "env\n[ -e /proc/$$/fd/%d ] && echo descriptor-leaked\nexit 0",
             open_fd);
    write_script(hook, body);
    setenv("CERTKEEP_MASTER_KEY", "master-key-that-must-not-leak", 1);
    setenv("DNS_PROVIDER_TOKEN", "provider-token-for-the-hook", 1);
    char *output = NULL;
    ck_error err = {0};
    assert_int_equal(ck_dns_hook_run(hook, true, FQDN, "v", 5000, &output, &err), 0);
    unsetenv("CERTKEEP_MASTER_KEY");
    unsetenv("DNS_PROVIDER_TOKEN");
    assert_null(strstr(output, "master-key-that-must-not-leak"));
    assert_non_null(strstr(output, "DNS_PROVIDER_TOKEN=provider-token-for-the-hook"));
    assert_null(strstr(output, "descriptor-leaked"));
    free(output);
    close(open_fd);
}

static void test_failing_hook_output_is_in_the_error(void **state)
{
    struct fixture *f = *state;
    char hook[128];
    snprintf(hook, sizeof(hook), "%s/hook-fail", f->dir);
    write_script(hook, "echo 'checking zone'\necho 'zone shop.example.test is locked' >&2\nexit 3");
    char *output = NULL;
    ck_error err = {0};
    assert_int_equal(ck_dns_hook_run(hook, true, FQDN, "v", 5000, &output, &err), -1);
    assert_null(output);
    assert_string_equal(err.code, "dns_hook_failed");
    assert_non_null(strstr(err.message, "exit status 3"));
    assert_non_null(strstr(err.message, "zone shop.example.test is locked"));
    assert_non_null(strstr(err.message, hook));

    snprintf(hook, sizeof(hook), "%s/does-not-exist", f->dir);
    assert_int_equal(ck_dns_hook_run(hook, true, FQDN, "v", 5000, NULL, &err), -1);
    assert_non_null(strstr(err.message, "cannot be executed"));
}

static char process_state(const char *pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    FILE *in = fopen(path, "r");
    if (in == NULL)
        return 'X'; /* gone */
    char *got = fgets(line, sizeof(line), in);
    fclose(in);
    const char *close = got != NULL ? strrchr(line, ')') : NULL;
    return close != NULL && close[1] == ' ' ? close[2] : '?';
}

static void test_hook_that_hangs_is_killed(void **state)
{
    struct fixture *f = *state;
    char hook[128], pidfile[128], body[256];
    snprintf(hook, sizeof(hook), "%s/hook-hang", f->dir);
    snprintf(pidfile, sizeof(pidfile), "%s/hook-hang.pid", f->dir);
    snprintf(body, sizeof(body), "echo starting\nsleep 60 &\necho $! > '%s'\nwait", pidfile);
    write_script(hook, body);
    ck_error err = {0};
    long long start = now_ms();
    assert_int_equal(ck_dns_hook_run(hook, true, FQDN, "v", 400, NULL, &err), -1);
    assert_true(now_ms() - start < 400 + 1000);
    assert_string_equal(err.code, "dns_hook_timeout");
    assert_non_null(strstr(err.message, "within 400 ms"));
    assert_non_null(strstr(err.message, "starting"));

    char pid[32] = "";
    FILE *in = fopen(pidfile, "r");
    assert_non_null(in);
    assert_non_null(fgets(pid, sizeof(pid), in));
    fclose(in);
    pid[strcspn(pid, "\n")] = '\0';
    char st = 'R';
    for (int i = 0; i < 50 && st != 'X' && st != 'Z'; i++) { /* the kill is delivered at once */
        st = process_state(pid);
        usleep(10000);
    }
    assert_true(st == 'X' || st == 'Z'); /* what the hook started was killed with it */
}

static void test_hook_output_is_bounded(void **state)
{
    struct fixture *f = *state;
    char hook[128];
    snprintf(hook, sizeof(hook), "%s/hook-loud", f->dir);
    write_script(hook, "head -c 300000 /dev/zero | tr '\\0' 'x'\necho done");
    char *output = NULL;
    ck_error err = {0};
    assert_int_equal(ck_dns_hook_run(hook, true, FQDN, "v", 5000, &output, &err), 0);
    assert_int_equal(strlen(output), CK_DNS_HOOK_OUTPUT_MAX);
    free(output);
}

static void test_manual_zone_line(void **state)
{
    (void)state;
    char *line = ck_dns_manual_zone_line("_acme-challenge.shop.example.com", "VALUE", 300);
    assert_string_equal(line, "_acme-challenge.shop.example.com. 300 IN TXT \"VALUE\"");
    free(line);
    line = ck_dns_manual_zone_line("_acme-challenge.shop.example.com.",
                                   "gfj9Xq...Rg85nM_ACME-token", 60);
    assert_string_equal(
        line, "_acme-challenge.shop.example.com. 60 IN TXT \"gfj9Xq...Rg85nM_ACME-token\"");
    free(line);
    line = ck_dns_manual_zone_line("a.example.com", "say \"hi\" \\ \n", 300);
    assert_string_equal(line, "a.example.com. 300 IN TXT \"say \\\"hi\\\" \\\\ \\010\"");
    free(line);
}

static void test_server_parse(void **state)
{
    (void)state;
    struct ck_dns_server s;
    ck_error err = {0};
    char text[80];
    assert_int_equal(ck_dns_server_parse("127.0.0.1:5353", 53, &s, &err), 0);
    assert_string_equal(s.host, "127.0.0.1");
    assert_int_equal(s.port, 5353);
    assert_int_equal(ck_dns_server_parse("127.0.0.1", 53, &s, &err), 0);
    assert_int_equal(s.port, 53);
    assert_int_equal(ck_dns_server_parse("[::1]:5300", 53, &s, &err), 0);
    assert_string_equal(s.host, "::1");
    assert_int_equal(s.port, 5300);
    ck_dns_server_format(&s, text, sizeof(text));
    assert_string_equal(text, "[::1]:5300");
    assert_int_equal(ck_dns_server_parse("::1", 53, &s, &err), 0);
    assert_int_equal(s.port, 53);
    const char *bad[] = {
        "ns1.example.com:53", "127.0.0.1:0", "127.0.0.1:70000", "[::1", "127.0.0.1:x", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ck_dns_server_parse(bad[i], 53, &s, &err), -1);
        assert_string_equal(err.code, "invalid_dns_server");
    }
    assert_non_null(strstr(err.message, "host names are not accepted"));

    struct ck_dns_server *list = NULL;
    size_t n = 0;
    assert_int_equal(ck_dns_servers_parse("127.0.0.1:53,[::1]:5353,127.0.0.2", 53, &list, &n, &err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(list[1].port, 5353);
    assert_string_equal(list[2].host, "127.0.0.2");
    free(list);
    assert_int_equal(ck_dns_servers_parse("127.0.0.1,ns.example.com", 53, &list, &n, &err), -1);
    assert_non_null(strstr(err.message, "ns.example.com"));
}

static void test_record_name_and_modes(void **state)
{
    (void)state;
    char *name = ck_dns01_record_name("*.shop.example.com");
    assert_string_equal(name, "_acme-challenge.shop.example.com");
    free(name);
    name = ck_dns01_record_name("shop.example.com");
    assert_string_equal(name, "_acme-challenge.shop.example.com");
    free(name);
    enum ck_dns01_mode mode;
    assert_int_equal(ck_dns01_mode_parse("hook", &mode), 0);
    assert_int_equal(mode, CK_DNS01_HOOK);
    assert_string_equal(ck_dns01_mode_name(CK_DNS01_RFC2136), "rfc2136");
    assert_int_equal(ck_dns01_mode_parse("route53", &mode), -1);
}

/* The per-enrollment entry point: RFC 2136 publishes and the check asks the primary by default;
 * manual publishes nothing and logs the zone line; a hook is called; explicit check servers win. */
static void test_dns01_set_by_mode(void **state)
{
    struct fixture *f = *state;
    struct ck_dns01_config cfg = {
        .mode = CK_DNS01_RFC2136, .rfc2136 = config_of(f), .ttl = 120, .timeout_ms = 3000};
    char *fqdn = ck_dns01_record_name("*.mode.example.test");
    struct log_lines log = {0};
    ck_error err = {0};
    assert_int_equal(ck_dns01_set(&cfg, true, fqdn, "by-mode", collect_log, &log, &err), 0);
    struct ck_dns_server *servers = NULL;
    size_t n = 0;
    assert_int_equal(ck_dns01_check_servers(&cfg, fqdn, &servers, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(servers[0].port, f->server.port);
    assert_int_equal(ck_dns_check_txt(servers, n, fqdn, "by-mode", 2000, collect_log, &log, &err),
                     0);
    free(servers);
    assert_int_equal(ck_dns01_set(&cfg, false, fqdn, "by-mode", collect_log, &log, &err), 0);
    assert_non_null(
        strstr(log.text, "dns rfc2136: add TXT _acme-challenge.mode.example.test: done"));
    cfg.rfc2136.tsig_secret_b64 = "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmU=";
    assert_int_equal(ck_dns01_set(&cfg, true, fqdn, "x", collect_log, &log, &err), -1);
    assert_non_null(strstr(log.text, "failed: "));
    assert_non_null(strstr(log.text, "BADSIG"));

    cfg.mode = CK_DNS01_MANUAL;
    memset(&log, 0, sizeof(log));
    assert_int_equal(ck_dns01_set(&cfg, true, fqdn, "by-hand", collect_log, &log, &err), 0);
    assert_string_equal(log.text, "dns manual: create this record: "
                                  "_acme-challenge.mode.example.test. 120 IN TXT \"by-hand\"\n");

    cfg.mode = CK_DNS01_HOOK;
    cfg.hook_path = "/bin/false";
    assert_int_equal(ck_dns01_set(&cfg, true, fqdn, "v", NULL, NULL, &err), -1);
    assert_string_equal(err.code, "dns_hook_failed");
    assert_non_null(strstr(err.message, "exit status 1"));

    struct ck_dns_server explicit[2] = {f->silent, f->server};
    cfg.check_servers = explicit;
    cfg.check_server_count = 2;
    assert_int_equal(ck_dns01_check_servers(&cfg, fqdn, &servers, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(servers[0].port, f->silent.port);
    free(servers);
    free(fqdn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc2136_add_is_seen_by_the_check),
        cmocka_unit_test(test_rfc2136_delete_removes_only_that_value),
        cmocka_unit_test(test_rfc2136_value_with_quotes_and_spaces),
        cmocka_unit_test(test_rfc2136_wrong_secret_is_refused),
        cmocka_unit_test(test_rfc2136_name_outside_the_zone),
        cmocka_unit_test(test_rfc2136_config_check),
        cmocka_unit_test(test_unreachable_server_times_out_within_the_bound),
        cmocka_unit_test(test_check_waits_for_a_late_record),
        cmocka_unit_test(test_check_needs_every_server),
        cmocka_unit_test(test_hook_gets_action_name_and_value),
        cmocka_unit_test(test_hook_gets_no_certkeep_secrets_or_descriptors),
        cmocka_unit_test(test_failing_hook_output_is_in_the_error),
        cmocka_unit_test(test_hook_that_hangs_is_killed),
        cmocka_unit_test(test_hook_output_is_bounded),
        cmocka_unit_test(test_manual_zone_line),
        cmocka_unit_test(test_server_parse),
        cmocka_unit_test(test_record_name_and_modes),
        cmocka_unit_test(test_dns01_set_by_mode),
    };
    return cmocka_run_group_tests_name("dns01", tests, group_setup, group_teardown);
}
