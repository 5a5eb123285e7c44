/* File targets: files, modes, atomic replacement, the reload command and its rollback; then a
 * real nginx started by the test, whose served certificate is checked after each deployment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/util.h"
#include "core/target.h"
#include "crypto/keys.h"

#define NGINX_BIN "/usr/sbin/nginx"

/* ---- fixtures ---- */

struct cert {
    X509 *x509;
    char *pem;
};

static void cert_free(struct cert *c)
{
    X509_free(c->x509);
    free(c->pem);
}

/* A self-signed certificate for localhost with the given serial and lifetime. */
static struct cert make_cert(EVP_PKEY *key, long serial, long days)
{
    struct cert c = {0};
    c.x509 = X509_new();
    assert_non_null(c.x509);
    X509_set_version(c.x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x509), serial);
    X509_gmtime_adj(X509_getm_notBefore(c.x509), -60);
    X509_gmtime_adj(X509_getm_notAfter(c.x509), days * 86400);
    X509_NAME *name = X509_get_subject_name(c.x509);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(c.x509, name);
    X509_set_pubkey(c.x509, key);
    assert_true(X509_sign(c.x509, key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_X509(bio, c.x509));
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    c.pem = strndup(data, (size_t)len);
    BIO_free(bio);
    return c;
}

struct fixture {
    char base[64];
    char dir[96]; /* base/certs: the target directory */
    char path[256];
    struct ck_target target;
    EVP_PKEY *key;
};

static const char *in_dir(struct fixture *f, const char *name)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
    return f->path;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->base, sizeof(f->base), "/tmp/ck_target_XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->dir, sizeof(f->dir), "%s/certs", f->base);
    assert_int_equal(mkdir(f->dir, 0755), 0);
    f->target.directory = strdup(f->dir);
    f->target.timeout_seconds = 5;
    f->key = ck_key_generate(CK_KEY_EC_P256, NULL);
    assert_non_null(f->key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
    assert_int_equal(system(cmd), 0);
    ck_target_free(&f->target);
    EVP_PKEY_free(f->key);
    free(f);
    return 0;
}

static char *slurp(const char *path)
{
    char *data = NULL;
    size_t len;
    assert_int_equal(ck_read_file(path, 1 << 20, &data, &len, NULL), 0);
    return data;
}

static void assert_file_equals(const char *path, const char *expected)
{
    char *data = slurp(path);
    assert_string_equal(data, expected);
    free(data);
}

static unsigned file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void write_file(const char *path, const char *text, unsigned mode)
{
    assert_int_equal(ck_write_file_atomic(path, text, strlen(text), mode, NULL), 0);
}

/* No temporary file of an atomic write is left: only the four names may be there. */
static void assert_only_target_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        bool known = strcmp(e->d_name, "cert.pem") == 0 || strcmp(e->d_name, "chain.pem") == 0 ||
                     strcmp(e->d_name, "fullchain.pem") == 0 || strcmp(e->d_name, "key.pem") == 0;
        if (!known)
            fail_msg("unexpected file %s in %s", e->d_name, dir);
    }
    closedir(d);
}

static char *write_script(struct fixture *f, const char *name, const char *body)
{
    char *path = malloc(256);
    assert_non_null(path);
    snprintf(path, 256, "%s/%s", f->base, name);
    char *text = malloc(strlen(body) + 32);
    assert_non_null(text);
    sprintf(text, "#!/bin/sh\n%s\n", body);
    write_file(path, text, 0755);
    free(text);
    return path;
}

static void set_reload(struct fixture *f, const char *const *argv, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(argv[i]));
    free(f->target.reload_command);
    f->target.reload_command = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
}

struct log_capture {
    char text[8192];
};

static void capture_log(void *ctx, const char *level, const char *message)
{
    struct log_capture *c = ctx;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof(c->text) - used, "%s %s\n", level, message);
}

/* ---- files ---- */

static void test_writes_four_files(void **state)
{
    struct fixture *f = *state;
    struct cert leaf = make_cert(f->key, 1001, 30), ca = make_cert(f->key, 7, 300);
    struct log_capture log = {0};
    struct ck_target_log logger = {capture_log, &log};
    char *output = NULL;
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, ca.pem, f->key, &logger, &output, &err),
                     0);
    assert_string_equal(output, "");
    assert_file_equals(in_dir(f, "cert.pem"), leaf.pem);
    assert_file_equals(in_dir(f, "chain.pem"), ca.pem);
    char *full = malloc(strlen(leaf.pem) + strlen(ca.pem) + 1);
    sprintf(full, "%s%s", leaf.pem, ca.pem);
    assert_file_equals(in_dir(f, "fullchain.pem"), full);
    assert_int_equal(file_mode(in_dir(f, "key.pem")), 0600);
    assert_int_equal(file_mode(in_dir(f, "cert.pem")), 0644);
    assert_int_equal(file_mode(in_dir(f, "fullchain.pem")), 0644);

    /* key.pem holds the order's key. */
    FILE *fp = fopen(in_dir(f, "key.pem"), "r");
    assert_non_null(fp);
    EVP_PKEY *read_back = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(read_back);
    assert_true(ck_key_public_equal(read_back, f->key));
    EVP_PKEY_free(read_back);
    assert_only_target_files(f->dir);

    /* The job log says where the key went, never what it is. */
    assert_non_null(strstr(log.text, "exported the private key to "));
    assert_non_null(strstr(log.text, in_dir(f, "key.pem")));
    assert_null(strstr(log.text, "PRIVATE KEY"));
    free(full);
    free(output);
    cert_free(&leaf);
    cert_free(&ca);
}

static void test_replaces_existing_files(void **state)
{
    struct fixture *f = *state;
    write_file(in_dir(f, "cert.pem"), "old cert\n", 0644);
    write_file(in_dir(f, "key.pem"), "old key\n", 0644); /* too wide: tightened by the write */
    struct cert leaf = make_cert(f->key, 1002, 30);
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, "", f->key, NULL, NULL, &err), 0);
    assert_file_equals(in_dir(f, "cert.pem"), leaf.pem);
    assert_file_equals(in_dir(f, "fullchain.pem"), leaf.pem);
    assert_file_equals(in_dir(f, "chain.pem"), "");
    assert_int_equal(file_mode(in_dir(f, "key.pem")), 0600);
    assert_only_target_files(f->dir);
    cert_free(&leaf);
}

static void test_null_key_leaves_key_alone(void **state)
{
    struct fixture *f = *state;
    write_file(in_dir(f, "key.pem"), "the key the user made for the uploaded CSR\n", 0640);
    struct cert leaf = make_cert(f->key, 1003, 30);
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, NULL, NULL, NULL, &err), 0);
    assert_file_equals(in_dir(f, "key.pem"), "the key the user made for the uploaded CSR\n");
    assert_int_equal(file_mode(in_dir(f, "key.pem")), 0640);
    assert_file_equals(in_dir(f, "cert.pem"), leaf.pem);
    cert_free(&leaf);
}

static void test_missing_directory(void **state)
{
    struct fixture *f = *state;
    free(f->target.directory);
    f->target.directory = strdup("/nonexistent/certkeep/target");
    struct cert leaf = make_cert(f->key, 1004, 30);
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, f->key, NULL, NULL, &err), -1);
    assert_string_equal(err.code, "target_directory_missing");
    assert_non_null(strstr(err.message, "/nonexistent/certkeep/target"));
    cert_free(&leaf);
}

/* ---- the reload command ---- */

static void test_reload_gets_argv_not_secrets_or_descriptors(void **state)
{
    struct fixture *f = *state;
    char *script = write_script(f, "reload.sh",
                                "out=\"$(dirname \"$0\")/ran.txt\"\n"
                                "{ echo \"argc=$#\"; for a in \"$@\"; do echo \"arg=$a\"; done\n"
                                "  echo \"secret=${CERTKEEP_TEST_SECRET:-unset}\"\n"
                                "  echo \"other=${TARGET_TEST_VAR:-unset}\"\n"
                                "  if [ -e /proc/$$/fd/42 ]; then echo fd42=open; fi\n"
                                "  m=$(awk '/^SigIgn/ {print $2}' /proc/$$/status)\n"
                                "  if [ $((0x$m & 0x1000)) -ne 0 ]; then echo sigpipe=ignored; fi\n"
                                "  head -c 27 \"$(dirname \"$0\")/certs/cert.pem\"; echo\n"
                                "} > \"$out\"\n"
                                "echo reloaded fine");
    const char *argv[] = {script, "one arg", "$HOME", "*"};
    set_reload(f, argv, 4);
    setenv("CERTKEEP_TEST_SECRET", "do-not-leak", 1);
    setenv("TARGET_TEST_VAR", "kept", 1);
    int fd = open("/dev/null", O_RDONLY); /* not close-on-exec: must still not reach the child */
    assert_int_equal(dup2(fd, 42), 42);
    close(fd);
    signal(SIGPIPE, SIG_IGN); /* as the daemon does */

    struct cert leaf = make_cert(f->key, 1005, 30);
    char *output = NULL;
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, f->key, NULL, &output, &err), 0);
    close(42);
    signal(SIGPIPE, SIG_DFL);
    unsetenv("CERTKEEP_TEST_SECRET");
    unsetenv("TARGET_TEST_VAR");
    assert_string_equal(output, "reloaded fine\n");

    char ran[300];
    snprintf(ran, sizeof(ran), "%s/ran.txt", f->base);
    assert_file_equals(ran, "argc=3\narg=one arg\narg=$HOME\narg=*\nsecret=unset\nother=kept\n"
                            "-----BEGIN CERTIFICATE-----\n");
    free(output);
    free(script);
    cert_free(&leaf);
}

static void test_failing_reload_restores_previous_files(void **state)
{
    struct fixture *f = *state;
    struct cert old = make_cert(f->key, 2001, 30), bad = make_cert(f->key, 2002, 30);
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, old.pem, NULL, f->key, NULL, NULL, &err), 0);
    char *old_key = slurp(in_dir(f, "key.pem"));
    char bad_path[300];
    snprintf(bad_path, sizeof(bad_path), "%s/bad.pem", f->base);
    write_file(bad_path, bad.pem, 0644);
    /* Like a server refusing the new certificate and accepting the old one again. */
    char *script = write_script(f, "reload.sh",
                                "here=$(dirname \"$0\")\n"
                                "echo run >> \"$here/runs.txt\"\n"
                                "if cmp -s \"$here/certs/cert.pem\" \"$here/bad.pem\"; then\n"
                                "  echo 'nginx: [emerg] cannot load certificate: bad one' >&2\n"
                                "  exit 1\n"
                                "fi");
    set_reload(f, (const char *[]){script}, 1);
    EVP_PKEY *new_key = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct log_capture log = {0};
    struct ck_target_log logger = {capture_log, &log};
    char *output = NULL;
    assert_int_equal(ck_target_apply(&f->target, bad.pem, NULL, new_key, &logger, &output, &err),
                     -1);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "reload_failed");
    assert_non_null(strstr(err.message, "exit status 1"));
    assert_non_null(strstr(err.message, "cannot load certificate: bad one"));
    assert_non_null(strstr(err.message, "put back"));
    assert_non_null(strstr(output, "cannot load certificate"));

    assert_file_equals(in_dir(f, "cert.pem"), old.pem);
    assert_file_equals(in_dir(f, "fullchain.pem"), old.pem);
    assert_file_equals(in_dir(f, "key.pem"), old_key);
    assert_int_equal(file_mode(in_dir(f, "key.pem")), 0600);
    assert_only_target_files(f->dir);
    char runs[300];
    snprintf(runs, sizeof(runs), "%s/runs.txt", f->base);
    assert_file_equals(runs, "run\nrun\n"); /* the reload ran again with the old files */
    assert_non_null(strstr(log.text, "succeeded"));
    free(output);
    free(old_key);
    free(script);
    EVP_PKEY_free(new_key);
    cert_free(&old);
    cert_free(&bad);
}

static void test_failing_reload_removes_files_that_were_not_there(void **state)
{
    struct fixture *f = *state;
    set_reload(f, (const char *[]){"false"}, 1);
    struct cert leaf = make_cert(f->key, 3001, 30);
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, f->key, NULL, NULL, &err), -1);
    assert_string_equal(err.code, "reload_failed");
    assert_non_null(strstr(err.message, "`false`"));
    assert_non_null(strstr(err.message, "(no output)"));
    assert_false(file_exists(in_dir(f, "cert.pem")));
    assert_false(file_exists(in_dir(f, "key.pem")));
    assert_false(file_exists(in_dir(f, "fullchain.pem")));
    assert_false(file_exists(in_dir(f, "chain.pem")));
    cert_free(&leaf);
}

static long long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000LL + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void test_reload_past_timeout_is_killed(void **state)
{
    struct fixture *f = *state;
    write_file(in_dir(f, "cert.pem"), "previous\n", 0644);
    char pidfile[300];
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", f->base);
    /* A child in the background too: the whole process group must go. */
    char body[600];
    snprintf(body, sizeof(body), "echo starting\nsleep 30 &\necho $! > '%s'\nsleep 30", pidfile);
    char *script = write_script(f, "slow.sh", body);
    set_reload(f, (const char *[]){script}, 1);
    f->target.timeout_seconds = 1;
    struct cert leaf = make_cert(f->key, 4001, 30);
    ck_error err = {0};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, f->key, NULL, NULL, &err), -1);
    long long took = elapsed_ms(&start);
    assert_true(took >= 1000 && took < 6000); /* two runs of at most 1 s, plus margin */
    assert_int_equal(err.status, 504);
    assert_string_equal(err.code, "reload_timeout");
    assert_non_null(strstr(err.message, "within 1 s"));
    assert_non_null(strstr(err.message, "starting"));
    assert_file_equals(in_dir(f, "cert.pem"), "previous\n");
    assert_false(file_exists(in_dir(f, "key.pem")));

    char *pid_text = slurp(pidfile);
    pid_t bg = (pid_t)atol(pid_text);
    free(pid_text);
    assert_true(bg > 0);
    /* Killed (and reaped by init, or a zombie of our own that kill still finds): give it up to
     * a second to disappear. */
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        char stat_path[64], *st = NULL;
        size_t len;
        snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)bg);
        gone = ck_read_file(stat_path, 4096, &st, &len, NULL) != 0 || strstr(st, ") Z ") != NULL;
        free(st);
        if (!gone)
            usleep(10000);
    }
    assert_true(gone);
    free(script);
    cert_free(&leaf);
}

static void test_output_is_bounded_and_a_background_child_does_not_hold_it(void **state)
{
    struct fixture *f = *state;
    /* 100 KiB of output, then a child left running with the output pipe open. */
    char *script = write_script(f, "chatty.sh",
                                "head -c 102400 /dev/zero | tr '\\0' x\n"
                                "sleep 3 &\n"
                                "exit 0");
    set_reload(f, (const char *[]){script}, 1);
    struct cert leaf = make_cert(f->key, 5101, 30);
    char *output = NULL;
    ck_error err = {0};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, f->key, NULL, &output, &err), 0);
    assert_true(elapsed_ms(&start) < 2500);
    assert_int_equal(strlen(output), CK_TARGET_OUTPUT_MAX);
    assert_int_equal(strspn(output, "x"), CK_TARGET_OUTPUT_MAX);
    free(output);
    free(script);
    cert_free(&leaf);
}

static void test_unknown_program(void **state)
{
    struct fixture *f = *state;
    write_file(in_dir(f, "cert.pem"), "previous\n", 0644);
    set_reload(f, (const char *[]){"certkeep-no-such-reload-command"}, 1);
    struct cert leaf = make_cert(f->key, 5001, 30);
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&f->target, leaf.pem, NULL, f->key, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.message, "not found in PATH"));
    assert_file_equals(in_dir(f, "cert.pem"), "previous\n");
    cert_free(&leaf);
}

static void test_validate(void **state)
{
    (void)state;
    struct ck_target t = {.directory = "/etc/nginx/certs", .timeout_seconds = 30};
    ck_error err = {0};
    assert_int_equal(ck_target_validate(&t, &err), 0);
    t.directory = "certs";
    assert_int_equal(ck_target_validate(&t, &err), -1);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.message, "absolute"));
    t.directory = "/srv/certs";
    t.timeout_seconds = 0;
    assert_int_equal(ck_target_validate(&t, &err), -1);
    t.timeout_seconds = 601;
    assert_int_equal(ck_target_validate(&t, &err), -1);
    t.timeout_seconds = 600;
    assert_int_equal(ck_target_validate(&t, &err), 0);
    const char *good[] = {"127.0.0.1:443", "[::1]:8443", "shop.example.com:443"};
    for (size_t i = 0; i < CK_ARRAY_LEN(good); i++) {
        t.probe_endpoint = (char *)good[i];
        assert_int_equal(ck_target_validate(&t, &err), 0);
    }
    const char *bad[] = {"127.0.0.1", "::1:443", "host:0", "host:65536",
                         "host:",     ":443",    "a b:443"};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad); i++) {
        t.probe_endpoint = (char *)bad[i];
        assert_int_equal(ck_target_validate(&t, &err), -1);
        assert_non_null(strstr(err.message, "probe_endpoint"));
    }
    t.probe_endpoint = NULL;
    const char *bad_reload[] = {"[]", "\"nginx -s reload\"", "[\"\"]", "[1]", "not json"};
    for (size_t i = 0; i < CK_ARRAY_LEN(bad_reload); i++) {
        t.reload_command = (char *)bad_reload[i];
        assert_int_equal(ck_target_validate(&t, &err), -1);
        assert_string_equal(err.code, "invalid_reload_command");
    }
    t.reload_command = "[\"nginx\",\"-s\",\"reload\"]";
    assert_int_equal(ck_target_validate(&t, &err), 0);
}

/* ---- a real nginx ---- */

struct nginx {
    struct fixture f;
    pid_t pid;
    int port;
    char conf[256];
    char endpoint[32];
};

static int free_loopback_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

static void write_nginx_conf(struct nginx *n)
{
    const char *b = n->f.base;
    char text[2048];
    snprintf(text, sizeof(text),
             "worker_processes 1;\n"
             "pid %s/nginx.pid;\n"
             "error_log %s/error.log;\n"
             "events { worker_connections 64; }\n"
             "http {\n"
             "  access_log off;\n"
             "  client_body_temp_path %s/body;\n"
             "  proxy_temp_path %s/proxy;\n"
             "  fastcgi_temp_path %s/fastcgi;\n"
             "  uwsgi_temp_path %s/uwsgi;\n"
             "  scgi_temp_path %s/scgi;\n"
             "  server {\n"
             "    listen 127.0.0.1:%d ssl;\n"
             "    server_name localhost;\n"
             "    ssl_certificate %s/fullchain.pem;\n"
             "    ssl_certificate_key %s/key.pem;\n"
             "    location / { return 200 \"ok\\n\"; }\n"
             "  }\n"
             "}\n",
             b, b, b, b, b, b, b, n->port, n->f.dir, n->f.dir);
    snprintf(n->conf, sizeof(n->conf), "%s/nginx.conf", b);
    write_file(n->conf, text, 0644);
}

static int nginx_setup(void **state)
{
    if (access(NGINX_BIN, X_OK) != 0)
        return 0; /* the tests skip themselves */
    struct nginx *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    void *fs = NULL;
    setup(&fs);
    n->f = *(struct fixture *)fs;
    free(fs);
    n->port = free_loopback_port();
    snprintf(n->endpoint, sizeof(n->endpoint), "127.0.0.1:%d", n->port);
    n->f.target.probe_endpoint = strdup(n->endpoint);
    write_nginx_conf(n);
    const char *reload[] = {NGINX_BIN, "-p",     n->f.base, "-c",    n->conf,
                            "-e",      "stderr", "-s",      "reload"};
    set_reload(&n->f, reload, CK_ARRAY_LEN(reload));
    *state = n;
    return 0;
}

static void nginx_start(struct nginx *n)
{
    n->pid = fork();
    assert_true(n->pid >= 0);
    if (n->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        execl(NGINX_BIN, NGINX_BIN, "-p", n->f.base, "-c", n->conf, "-e", "stderr", "-g",
              "daemon off;", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !port_open(n->port); i++)
        usleep(50000);
    assert_true(port_open(n->port));
}

static int nginx_teardown(void **state)
{
    struct nginx *n = *state;
    if (n == NULL)
        return 0;
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        int status;
        bool reaped = false;
        for (int i = 0; i < 100 && !reaped; i++) {
            reaped = waitpid(n->pid, &status, WNOHANG) == n->pid;
            if (!reaped)
                usleep(20000);
        }
        if (!reaped) {
            kill(n->pid, SIGKILL);
            waitpid(n->pid, &status, 0);
        }
    }
    struct fixture *f = malloc(sizeof(*f));
    *f = n->f;
    free(n);
    void *fs = f;
    return teardown(&fs);
}

static void apply_and_check(struct nginx *n, struct cert *c, EVP_PKEY *key)
{
    char *output = NULL;
    ck_error err = {0};
    if (ck_target_apply(&n->f.target, c->pem, NULL, key, NULL, &output, &err) != 0)
        fail_msg("apply failed: %s", err.message);
    free(output);
    if (ck_target_check(&n->f.target, c->x509, "localhost", NULL, &err) != 0)
        fail_msg("check failed: %s", err.message);
}

static void test_nginx_serves_each_deployment(void **state)
{
    struct nginx *n = *state;
    if (n == NULL)
        skip();
    /* The first certificate is in place before nginx starts, as for any installation. */
    struct cert first = make_cert(n->f.key, 6001, 30);
    char *saved_reload = n->f.target.reload_command;
    n->f.target.reload_command = NULL;
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&n->f.target, first.pem, NULL, n->f.key, NULL, NULL, &err), 0);
    n->f.target.reload_command = saved_reload;
    nginx_start(n);
    assert_int_equal(ck_target_check(&n->f.target, first.x509, "localhost", NULL, &err), 0);

    /* Two deployments in a row, each with a new key, serial and expiry date. */
    EVP_PKEY *k2 = ck_key_generate(CK_KEY_EC_P256, NULL);
    EVP_PKEY *k3 = ck_key_generate(CK_KEY_RSA_2048, NULL);
    struct cert second = make_cert(k2, 6002, 60), third = make_cert(k3, 6003, 90);
    apply_and_check(n, &second, k2);
    apply_and_check(n, &third, k3);

    /* The previous certificate is no longer what the endpoint serves, once nginx's old worker,
     * which may still take a connection or two after the reload, has gone (bounded: 10 s). */
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = ck_target_check(&n->f.target, second.x509, "localhost", NULL, &err);
        if (rc == 0)
            usleep(100 * 1000);
    }
    assert_int_equal(rc, -1);
    assert_string_equal(err.code, "probe_mismatch");
    assert_non_null(strstr(err.message, "serial 1773")); /* 6003 in hex: what it serves instead */

    cert_free(&first);
    cert_free(&second);
    cert_free(&third);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

static void test_nginx_keeps_serving_after_a_broken_reload(void **state)
{
    struct nginx *n = *state;
    if (n == NULL)
        skip();
    struct cert good = make_cert(n->f.key, 7001, 30);
    char *nginx_reload = n->f.target.reload_command;
    n->f.target.reload_command = NULL;
    ck_error err = {0};
    assert_int_equal(ck_target_apply(&n->f.target, good.pem, NULL, n->f.key, NULL, NULL, &err), 0);
    nginx_start(n);
    n->f.target.reload_command = nginx_reload;
    EVP_PKEY *k2 = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct cert newer = make_cert(k2, 7002, 60);
    apply_and_check(n, &newer, k2);

    /* A reload that fails: the files go back, and nginx still serves the deployed one. */
    n->f.target.reload_command = strdup("[\"false\"]");
    EVP_PKEY *k3 = ck_key_generate(CK_KEY_EC_P256, NULL);
    struct cert broken = make_cert(k3, 7003, 90);
    assert_int_equal(ck_target_apply(&n->f.target, broken.pem, NULL, k3, NULL, NULL, &err), -1);
    assert_string_equal(err.code, "reload_failed");
    assert_file_equals(in_dir(&n->f, "fullchain.pem"), newer.pem);
    assert_int_equal(ck_target_check(&n->f.target, newer.x509, "localhost", NULL, &err), 0);

    /* And the restored files are what nginx loads on its next reload. */
    free(n->f.target.reload_command);
    n->f.target.reload_command = nginx_reload;
    apply_and_check(n, &newer, k2);

    cert_free(&good);
    cert_free(&newer);
    cert_free(&broken);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_four_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaces_existing_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_key_leaves_key_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_gets_argv_not_secrets_or_descriptors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_reload_restores_previous_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_reload_removes_files_that_were_not_there,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_past_timeout_is_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_output_is_bounded_and_a_background_child_does_not_hold_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_program, setup, teardown),
        cmocka_unit_test(test_validate),
        cmocka_unit_test_setup_teardown(test_nginx_serves_each_deployment, nginx_setup,
                                        nginx_teardown),
        cmocka_unit_test_setup_teardown(test_nginx_keeps_serving_after_a_broken_reload, nginx_setup,
                                        nginx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
