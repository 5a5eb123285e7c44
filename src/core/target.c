/* File targets: four files written atomically, a reload command run without a shell, and the
 * previous files put back when the reload fails. */
#include "core/target.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "common/log.h"
#include "crypto/x509info.h"

#define PRIVATE_ENV_PREFIX "CERTKEEP_"
#define MAX_FD_TO_CLOSE    65536
#define PREVIOUS_FILE_MAX  (4 * 1024 * 1024) /* a certificate file larger than this is not ours */
#define ERROR_OUTPUT_TAIL  300
#define DEFAULT_PATH       "/usr/local/bin:/usr/bin:/bin"
#define POLL_SLICE_MS      50

extern char **environ;

/* ---- logging ---- */

static void target_log(const struct ck_target_log *log, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void target_log(const struct ck_target_log *log, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log != NULL && log->fn != NULL) {
        log->fn(log->ctx, level, msg);
        return;
    }
    enum ck_log_level l = strcmp(level, "error") == 0  ? CK_LOG_ERROR
                          : strcmp(level, "warn") == 0 ? CK_LOG_WARN
                                                       : CK_LOG_INFO;
    ck_log(l, "%s", msg);
}

/* ---- validation ---- */

int ck_target_reload_argv(const char *json, ck_strv *argv, ck_error *err)
{
    json_error_t jerr;
    json_t *arr = json != NULL ? json_loads(json, 0, &jerr) : NULL;
    int rc = -1;
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > CK_TARGET_ARGV_MAX) {
        ck_error_set(err, 400, "invalid_reload_command",
                     "the reload command must be a JSON array of 1 to %d strings, e.g. "
                     "[\"nginx\",\"-s\",\"reload\"]",
                     CK_TARGET_ARGV_MAX);
        goto cleanup;
    }
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(item)) {
            ck_error_set(err, 400, "invalid_reload_command",
                         "item %zu of the reload command must be a non-empty string without "
                         "NUL characters",
                         i);
            goto cleanup;
        }
        if (ck_strv_push(argv, s) != 0) {
            ck_error_set(err, 500, "out_of_memory", "out of memory");
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (rc != 0)
        ck_strv_free(argv);
    json_decref(arr);
    return rc;
}

/* "HOST:PORT" or "[V6]:PORT" with a port in 1..65535. */
static bool endpoint_valid(const char *ep)
{
    const char *colon = strrchr(ep, ':');
    if (colon == NULL || colon == ep || strlen(ep) > 260)
        return false;
    if (ep[0] == '[' && colon[-1] != ']')
        return false;
    if (ep[0] != '[' && memchr(ep, ':', (size_t)(colon - ep)) != NULL)
        return false;
    for (const char *p = ep; p < colon; p++)
        if (*p <= ' ' || *p == '/' || *p == 0x7f)
            return false;
    const char *port = colon + 1;
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] != '\0')
        return false;
    long n = strtol(port, NULL, 10);
    return n >= 1 && n <= 65535;
}

int ck_target_validate(const struct ck_target *t, ck_error *err)
{
    if (t->directory == NULL || t->directory[0] != '/' || strlen(t->directory) > 3000)
        return ck_error_set(err, 400, "invalid_field",
                            "directory must be an absolute path, e.g. /etc/nginx/certs/shop");
    if (t->timeout_seconds < 1 || t->timeout_seconds > CK_TARGET_TIMEOUT_MAX)
        return ck_error_set(err, 400, "invalid_field",
                            "timeout_seconds must be between 1 and %d (got %d)",
                            CK_TARGET_TIMEOUT_MAX, t->timeout_seconds);
    if (t->probe_endpoint != NULL && !endpoint_valid(t->probe_endpoint))
        return ck_error_set(err, 400, "invalid_field",
                            "probe_endpoint must be HOST:PORT, e.g. 127.0.0.1:443 or [::1]:443");
    if (t->reload_command != NULL) {
        ck_strv argv = {0};
        if (ck_target_reload_argv(t->reload_command, &argv, err) != 0)
            return -1;
        ck_strv_free(&argv);
    }
    return 0;
}

/* ---- the files ---- */

enum target_file { FILE_KEY, FILE_CERT, FILE_CHAIN, FILE_FULLCHAIN, FILE_COUNT };

static const char *const file_names[FILE_COUNT] = {"key.pem", "cert.pem", "chain.pem",
                                                   "fullchain.pem"};

/* One file of the target: what it held before (to put it back) and what goes in now. */
struct target_file_state {
    char *path;
    bool existed;
    mode_t old_mode;
    char *old_data;
    size_t old_len;
    char *new_data;
    size_t new_len;
    unsigned new_mode;
    bool written;
};

static void file_state_free(struct target_file_state *f)
{
    free(f->path);
    /* The key's contents are secret: wipe them, whichever file they were in. */
    OPENSSL_clear_free(f->old_data, f->old_len);
    OPENSSL_clear_free(f->new_data, f->new_len);
    memset(f, 0, sizeof(*f));
}

static int remember_previous(struct target_file_state *f, ck_error *err)
{
    struct stat st;
    if (lstat(f->path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return ck_error_set(err, 500, "target_unreadable", "cannot read %s: %s", f->path,
                            strerror(errno));
    }
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return ck_error_set(err, 409, "target_not_a_file",
                            "%s is not a regular file; remove it or pick another directory",
                            f->path);
    if (ck_read_file(f->path, PREVIOUS_FILE_MAX, &f->old_data, &f->old_len, err) != 0)
        return -1;
    if (S_ISLNK(st.st_mode) && stat(f->path, &st) != 0)
        return ck_error_set(err, 500, "target_unreadable", "cannot read %s: %s", f->path,
                            strerror(errno));
    f->existed = true;
    f->old_mode = st.st_mode & 0777;
    return 0;
}

static int key_pem(EVP_PKEY *key, char **out, size_t *out_len, ck_error *err)
{
    int rc = -1;
    /* A secure-memory BIO wipes its buffer when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len;
    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
        (len = BIO_get_mem_data(bio, &data)) <= 0) {
        ck_error_openssl(err, 500, "key_export_failed", "cannot write the private key as PEM");
        goto cleanup;
    }
    if ((*out = malloc((size_t)len)) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    memcpy(*out, data, (size_t)len);
    *out_len = (size_t)len;
    rc = 0;
cleanup:
    BIO_free(bio);
    return rc;
}

static char *join_pem(const char *a, const char *b, size_t *len)
{
    size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0;
    bool newline = la > 0 && a[la - 1] != '\n' && lb > 0;
    char *s = malloc(la + lb + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    if (newline)
        s[la++] = '\n';
    if (lb > 0)
        memcpy(s + la, b, lb);
    *len = la + lb;
    s[*len] = '\0';
    return s;
}

/* Fills the new contents of every file and reads what the files hold now. */
static int prepare_files(const struct ck_target *t, const char *cert_pem, const char *chain_pem,
                         EVP_PKEY *key, struct target_file_state files[FILE_COUNT], ck_error *err)
{
    struct stat st;
    if (stat(t->directory, &st) != 0 || !S_ISDIR(st.st_mode))
        return ck_error_set(err, 409, "target_directory_missing",
                            "target directory %s does not exist or is not a directory; create it",
                            t->directory);
    for (int i = 0; i < FILE_COUNT; i++) {
        if (i == FILE_KEY && key == NULL)
            continue;
        size_t len = strlen(t->directory) + strlen(file_names[i]) + 2;
        if ((files[i].path = malloc(len)) == NULL)
            return ck_error_set(err, 500, "out_of_memory", "out of memory");
        bool slash = t->directory[strlen(t->directory) - 1] == '/';
        snprintf(files[i].path, len, "%s%s%s", t->directory, slash ? "" : "/", file_names[i]);
        files[i].new_mode = i == FILE_KEY ? 0600 : 0644;
        if (remember_previous(&files[i], err) != 0)
            return -1;
    }
    if (key != NULL && key_pem(key, &files[FILE_KEY].new_data, &files[FILE_KEY].new_len, err) != 0)
        return -1;
    files[FILE_CERT].new_data = join_pem(cert_pem, NULL, &files[FILE_CERT].new_len);
    files[FILE_CHAIN].new_data =
        join_pem(chain_pem ? chain_pem : "", NULL, &files[FILE_CHAIN].new_len);
    files[FILE_FULLCHAIN].new_data = join_pem(cert_pem, chain_pem, &files[FILE_FULLCHAIN].new_len);
    if (files[FILE_CERT].new_data == NULL || files[FILE_CHAIN].new_data == NULL ||
        files[FILE_FULLCHAIN].new_data == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    return 0;
}

/* Puts back what the written files held; returns how many could not be put back. */
static int restore_files(struct target_file_state files[FILE_COUNT],
                         const struct ck_target_log *log)
{
    int failures = 0;
    for (int i = 0; i < FILE_COUNT; i++) {
        struct target_file_state *f = &files[i];
        if (!f->written)
            continue;
        ck_error e = {0};
        if (f->existed) {
            if (ck_write_file_atomic(f->path, f->old_data, f->old_len, f->old_mode, &e) != 0) {
                target_log(log, "error", "could not put back %s: %s", f->path, e.message);
                failures++;
                continue;
            }
            target_log(log, "info", "put back the previous %s", f->path);
        } else {
            if (unlink(f->path) != 0 && errno != ENOENT) {
                target_log(log, "error", "could not remove %s: %s", f->path, strerror(errno));
                failures++;
                continue;
            }
            target_log(log, "info", "removed %s (it did not exist before)", f->path);
        }
        f->written = false;
    }
    return failures;
}

static int write_files(struct target_file_state files[FILE_COUNT], const struct ck_target_log *log,
                       ck_error *err)
{
    for (int i = 0; i < FILE_COUNT; i++) {
        struct target_file_state *f = &files[i];
        if (f->path == NULL)
            continue;
        if (ck_write_file_atomic(f->path, f->new_data, f->new_len, f->new_mode, err) != 0) {
            restore_files(files, log);
            return -1;
        }
        f->written = true;
        if (i == FILE_KEY)
            target_log(log, "info", "exported the private key to %s", f->path);
        else
            target_log(log, "info", "wrote %s", f->path);
    }
    return 0;
}

/* ---- the reload command ---- */

struct run_result {
    char *output; /* NUL-terminated, at most CK_TARGET_OUTPUT_MAX bytes */
    size_t len;
    bool truncated;
    bool timed_out;
    int status;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The process's environment without certkeep's own variables (master key, token). The strings
 * stay environ's; the caller frees the array. */
static char **child_environment(void)
{
    size_t count = 0;
    while (environ != NULL && environ[count] != NULL)
        count++;
    char **env = calloc(count + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t kept = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp(environ[i], PRIVATE_ENV_PREFIX, strlen(PRIVATE_ENV_PREFIX)) != 0)
            env[kept++] = environ[i];
    return env;
}

/* The executable for argv[0]: as given when it holds a slash, else the first match in PATH.
 * Looked up before fork, since execvp is not async-signal-safe. Caller frees. */
static char *find_program(const char *name, ck_error *err)
{
    if (strchr(name, '/') != NULL) {
        if (access(name, X_OK) != 0) {
            ck_error_set(err, 400, "reload_failed", "reload command %s cannot be executed: %s",
                         name, strerror(errno));
            return NULL;
        }
        return ck_strdup(name);
    }
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = DEFAULT_PATH;
    for (const char *p = path; *p != '\0';) {
        size_t dlen = strcspn(p, ":");
        size_t len = dlen + strlen(name) + 2;
        char *candidate = malloc(len);
        if (candidate == NULL)
            break;
        snprintf(candidate, len, "%.*s/%s", (int)dlen, dlen > 0 ? p : ".", name);
        if (access(candidate, X_OK) == 0)
            return candidate;
        free(candidate);
        p += dlen;
        if (*p == ':')
            p++;
    }
    ck_error_set(err, 400, "reload_failed",
                 "reload command %s was not found in PATH (%s); give its full path", name, path);
    return NULL;
}

/* Runs in the forked child: only async-signal-safe calls, since the daemon has other threads. */
static void exec_child(const char *program, char *const argv[], char *const env[], int out_fd,
                       int max_fd)
{
    static const char msg[] = "certkeep: could not execute the reload command\n";
    setpgid(0, 0); /* its own group, so a timeout kills whatever it started too */
    /* Ignored signals and the blocked mask survive exec: the daemon ignores SIGPIPE, which would
     * change how pipelines in a reload script end. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(out_fd, STDERR_FILENO) < 0)
        _exit(127);
    for (int fd = STDERR_FILENO + 1; fd < max_fd; fd++) /* the daemon's database and sockets */
        close(fd);
    execve(program, argv, env);
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

static void output_append(struct run_result *r, const char *buf, size_t n)
{
    size_t room = CK_TARGET_OUTPUT_MAX - r->len;
    if (n > room) {
        n = room;
        r->truncated = true;
    }
    if (n == 0)
        return;
    char *grown = realloc(r->output, r->len + n + 1);
    if (grown == NULL) {
        r->truncated = true;
        return;
    }
    r->output = grown;
    memcpy(r->output + r->len, buf, n);
    r->len += n;
    r->output[r->len] = '\0';
}

/* Reads the output until the command has exited and its output is drained (a server it started
 * may keep the pipe open: once the command itself exited, what is not there yet is not waited
 * for), or the deadline passes. Returns false on timeout. */
static bool wait_for_command(pid_t pid, int fd, long long deadline, struct run_result *r)
{
    char buf[4096];
    bool eof = false, exited = false;
    for (;;) {
        if (!exited) {
            pid_t done = waitpid(pid, &r->status, WNOHANG);
            exited = done == pid || (done < 0 && errno == ECHILD);
        }
        long long remaining = deadline - now_ms();
        if ((exited && eof) || remaining <= 0)
            return exited;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int slice = exited ? 0 : (remaining < POLL_SLICE_MS ? (int)remaining : POLL_SLICE_MS);
        int ready = eof ? (poll(NULL, 0, slice), 0) : poll(&pfd, 1, slice);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            if (exited)
                return true;
            continue;
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            eof = true;
        else
            output_append(r, buf, (size_t)n);
    }
}

static int run_command(const ck_strv *argv, int timeout_seconds, struct run_result *r,
                       ck_error *err)
{
    int rc = -1, fds[2] = {-1, -1};
    char **env = NULL, **args = NULL;
    char *program = find_program(argv->items[0], err);
    if (program == NULL)
        goto cleanup;
    env = child_environment();
    args = calloc(argv->len + 1, sizeof(*args));
    if (env == NULL || args == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    memcpy(args, argv->items, argv->len * sizeof(*args));
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        ck_error_set(err, 500, "reload_failed", "could not run %s: %s", program, strerror(errno));
        goto cleanup;
    }
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = open_max > 0 && open_max < MAX_FD_TO_CLOSE ? (int)open_max : MAX_FD_TO_CLOSE;
    long long deadline = now_ms() + (long long)timeout_seconds * 1000;
    pid_t pid = fork();
    if (pid < 0) {
        ck_error_set(err, 500, "reload_failed", "could not start %s: %s", program, strerror(errno));
        goto cleanup;
    }
    if (pid == 0)
        exec_child(program, args, env, fds[1], max_fd);
    setpgid(pid, pid); /* also here: the child may not have run yet when we kill the group */
    close(fds[1]);
    fds[1] = -1;
    if (!wait_for_command(pid, fds[0], deadline, r)) {
        r->timed_out = true;
        kill(-pid, SIGKILL);
        waitpid(pid, &r->status, 0);
    }
    if (r->output == NULL && (r->output = ck_strdup("")) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(program);
    free(args);
    free(env);
    return rc;
}

static bool run_succeeded(const struct run_result *r)
{
    return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* "exit status 1", "signal 9", "timeout after 30 s" */
static void describe_run(const struct run_result *r, int timeout_seconds, char *buf, size_t len)
{
    if (r->timed_out)
        snprintf(buf, len, "did not finish within %d s and was killed", timeout_seconds);
    else if (WIFSIGNALED(r->status))
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(r->status));
    else
        snprintf(buf, len, "failed with exit status %d",
                 WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1);
}

/* The end of the output on one line, for an error message (written into buf). */
static const char *output_tail(const char *output, char *buf, size_t len)
{
    size_t n = output != NULL ? strlen(output) : 0;
    while (n > 0 && (output[n - 1] == '\n' || output[n - 1] == ' ' || output[n - 1] == '\r'))
        n--;
    if (n == 0)
        return "(no output)";
    size_t start = n > ERROR_OUTPUT_TAIL ? n - ERROR_OUTPUT_TAIL : 0;
    snprintf(buf, len, "%.*s", (int)(n - start), output + start);
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return buf;
}

static char *argv_text(const ck_strv *argv)
{
    size_t len = 1;
    for (size_t i = 0; i < argv->len; i++)
        len += strlen(argv->items[i]) + 1;
    char *s = calloc(1, len);
    for (size_t i = 0; s != NULL && i < argv->len; i++) {
        if (i > 0)
            strcat(s, " ");
        strcat(s, argv->items[i]);
    }
    return s;
}

/* After a failed reload: the previous files back, the reload again, and the error. */
static int roll_back(const ck_strv *argv, const char *command, int timeout_seconds,
                     const struct run_result *failed, struct target_file_state files[FILE_COUNT],
                     const struct ck_target_log *log, ck_error *err)
{
    char what[128], tail[ERROR_OUTPUT_TAIL + 1], again[256];
    describe_run(failed, timeout_seconds, what, sizeof(what));
    target_log(log, "error", "reload command `%s` %s; putting the previous files back", command,
               what);
    int not_restored = restore_files(files, log);
    struct run_result second = {0};
    ck_error second_err = {0};
    if (run_command(argv, timeout_seconds, &second, &second_err) != 0) {
        snprintf(again, sizeof(again), "running it again failed too");
    } else if (run_succeeded(&second)) {
        snprintf(again, sizeof(again), "it ran again with the previous files and succeeded");
    } else {
        char what2[128];
        describe_run(&second, timeout_seconds, what2, sizeof(what2));
        snprintf(again, sizeof(again), "it ran again with the previous files and %s too", what2);
    }
    target_log(log, run_succeeded(&second) ? "info" : "error", "reload command: %s", again);
    free(second.output);
    return ck_error_set(err, failed->timed_out ? 504 : 502,
                        failed->timed_out ? "reload_timeout" : "reload_failed",
                        "reload command `%s` %s; its output: %s. %s; %s", command, what,
                        output_tail(failed->output, tail, sizeof(tail)),
                        not_restored == 0 ? "the previous files were put back"
                                          : "some previous files could not be put back",
                        again);
}

static int reload(const struct ck_target *t, struct target_file_state files[FILE_COUNT],
                  const struct ck_target_log *log, char **output, ck_error *err)
{
    int rc = -1;
    ck_strv argv = {0};
    struct run_result r = {0};
    char *command = NULL;
    if (ck_target_reload_argv(t->reload_command, &argv, err) != 0 ||
        (command = argv_text(&argv)) == NULL) {
        if (command == NULL && argv.len > 0)
            ck_error_set(err, 500, "out_of_memory", "out of memory");
        restore_files(files, log);
        goto cleanup;
    }
    target_log(log, "info", "running the reload command `%s`", command);
    if (run_command(&argv, t->timeout_seconds, &r, err) != 0) {
        restore_files(files, log);
        goto cleanup;
    }
    if (r.truncated)
        target_log(log, "warn",
                   "the reload command printed more than %d bytes; the rest was "
                   "dropped",
                   CK_TARGET_OUTPUT_MAX);
    if (!run_succeeded(&r)) {
        roll_back(&argv, command, t->timeout_seconds, &r, files, log, err);
    } else {
        target_log(log, "info", "reload command `%s` succeeded", command);
        rc = 0;
    }
    if (output != NULL) {
        *output = r.output;
        r.output = NULL;
    }
cleanup:
    free(r.output);
    free(command);
    ck_strv_free(&argv);
    return rc;
}

int ck_target_apply(const struct ck_target *t, const char *cert_pem, const char *chain_pem,
                    EVP_PKEY *key, const struct ck_target_log *log, char **output, ck_error *err)
{
    int rc = -1;
    struct target_file_state files[FILE_COUNT] = {0};
    if (output != NULL)
        *output = NULL;
    if (t->directory == NULL || t->directory[0] != '/') {
        ck_error_set(err, 400, "invalid_field", "a target needs an absolute directory");
        goto cleanup;
    }
    if (cert_pem == NULL || cert_pem[0] == '\0') {
        ck_error_set(err, 409, "certificate_not_ready", "the order has no certificate to deploy");
        goto cleanup;
    }
    if (prepare_files(t, cert_pem, chain_pem, key, files, err) != 0 ||
        write_files(files, log, err) != 0)
        goto cleanup;
    if (key == NULL)
        target_log(log, "info", "no private key in certkeep (uploaded CSR): left key.pem as it is");
    if (t->reload_command == NULL) {
        if (output != NULL && (*output = ck_strdup("")) == NULL) {
            ck_error_set(err, 500, "out_of_memory", "out of memory");
            goto cleanup;
        }
        rc = 0;
        goto cleanup;
    }
    rc = reload(t, files, log, output, err);
cleanup:
    for (int i = 0; i < FILE_COUNT; i++)
        file_state_free(&files[i]);
    return rc;
}

/* ---- checking the endpoint ---- */

static bool same_certificate(X509 *a, X509 *b)
{
    return ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)) == 0 &&
           ASN1_TIME_compare(X509_get0_notAfter(a), X509_get0_notAfter(b)) == 0;
}

static void describe_cert(X509 *cert, char *buf, size_t len)
{
    char *serial = NULL, not_after[64] = "?";
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    if (bn != NULL)
        serial = BN_bn2hex(bn);
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem != NULL && ASN1_TIME_print(mem, X509_get0_notAfter(cert)) > 0) {
        int n = BIO_read(mem, not_after, sizeof(not_after) - 1);
        not_after[n > 0 ? n : 0] = '\0';
    }
    snprintf(buf, len, "serial %s, expiring %s", serial ? serial : "?", not_after);
    BIO_free(mem);
    OPENSSL_free(serial);
    BN_free(bn);
}

int ck_target_check(const struct ck_target *t, X509 *expected_leaf, const char *sni,
                    const struct ck_target_log *log, ck_error *err)
{
    if (t->probe_endpoint == NULL)
        return 0;
    char want[256], got[256] = "";
    describe_cert(expected_leaf, want, sizeof(want));
    ck_error last = {0};
    for (int attempt = 1; attempt <= CK_TARGET_CHECK_ATTEMPTS; attempt++) {
        if (attempt > 1) {
            struct timespec pause = {0, CK_TARGET_CHECK_INTERVAL_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        X509 *leaf = NULL;
        ck_error_clear(&last);
        if (ck_fetch_peer_certificate(t->probe_endpoint, sni, CK_TARGET_CHECK_TIMEOUT_MS, &leaf,
                                      NULL, &last) != 0)
            continue;
        bool same = same_certificate(leaf, expected_leaf);
        describe_cert(leaf, got, sizeof(got));
        X509_free(leaf);
        if (same) {
            target_log(log, "info", "%s serves the new certificate (%s)", t->probe_endpoint, want);
            return 0;
        }
    }
    if (got[0] != '\0') {
        target_log(log, "error", "%s still serves %s", t->probe_endpoint, got);
        return ck_error_set(err, 502, "probe_mismatch",
                            "%s serves %s instead of the new certificate (%s)", t->probe_endpoint,
                            got, want);
    }
    target_log(log, "error", "could not reach %s: %s", t->probe_endpoint, last.message);
    return ck_error_set(err, 502, "probe_failed", "could not check %s: %s", t->probe_endpoint,
                        last.message);
}
