/* dns-01 by a hook executable: `HOOK add|del NAME VALUE`, run without a shell, bounded in time
 * and in how much of its output is kept. */
#include "issuers/dns/dns_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

#define ERROR_OUTPUT_TAIL  300
#define PRIVATE_ENV_PREFIX "CERTKEEP_"
#define MAX_FD_TO_CLOSE    65536

extern char **environ;

struct hook_output {
    char *data; /* NUL-terminated, at most CK_DNS_HOOK_OUTPUT_MAX bytes */
    size_t len;
    bool truncated;
};

/* The daemon's environment without certkeep's own variables: CERTKEEP_MASTER_KEY and
 * CERTKEEP_TOKEN must not reach a script. The strings stay environ's; the caller frees the array.
 */
static char **hook_environment(void)
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

/* Runs in the forked child: only async-signal-safe calls, since the daemon has other threads. */
static void exec_hook(const char *path, char *const argv[], char *const env[], int out_fd,
                      int max_fd)
{
    static const char msg[] = "certkeep: could not execute the hook\n";
    setpgid(0, 0); /* its own group, so a timeout kills whatever it started too */
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(out_fd, STDERR_FILENO) < 0)
        _exit(127);
    for (int fd = STDERR_FILENO + 1; fd < max_fd; fd++) /* the daemon's database and sockets */
        close(fd);
    execve(path, argv, env);
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

static int output_append(struct hook_output *out, const char *buf, size_t n)
{
    size_t room = CK_DNS_HOOK_OUTPUT_MAX - out->len;
    if (n > room) {
        n = room;
        out->truncated = true;
    }
    char *grown = realloc(out->data, out->len + n + 1);
    if (grown == NULL)
        return -1;
    out->data = grown;
    memcpy(out->data + out->len, buf, n);
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

/* Reads the hook's output until it closes it or the deadline passes; false on timeout. Output past
 * the bound is read and dropped, so the hook never blocks on a full pipe. */
static bool collect_output(int fd, long long deadline, struct hook_output *out)
{
    char buf[4096];
    for (;;) {
        long long remaining = deadline - ck_dns_now_ms();
        if (remaining <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)remaining);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return ready == 0 ? false : true;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return true;
        if (output_append(out, buf, (size_t)n) != 0)
            out->truncated = true;
    }
}

/* Waits for the hook to exit until the deadline (it may close its output and go on running);
 * returns false on timeout. */
static bool wait_until(pid_t pid, long long deadline, int *status)
{
    for (;;) {
        pid_t done = waitpid(pid, status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR))
            return true;
        if (ck_dns_now_ms() >= deadline)
            return false;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        nanosleep(&pause, NULL);
    }
}

/* The last part of the output, on one line, for an error message. */
static const char *output_tail(struct hook_output *out)
{
    if (out->data == NULL)
        return "(no output)";
    while (out->len > 0 && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == ' '))
        out->data[--out->len] = '\0';
    if (out->len == 0)
        return "(no output)";
    char *tail = out->data + (out->len > ERROR_OUTPUT_TAIL ? out->len - ERROR_OUTPUT_TAIL : 0);
    for (char *p = tail; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return tail;
}

static int hook_result(const char *hook_path, const char *action, const char *fqdn, bool timed_out,
                       int timeout_ms, int status, struct hook_output *out, ck_error *err)
{
    if (timed_out)
        return ck_error_set(err, 504, "dns_hook_timeout",
                            "hook %s %s %s did not finish within %d ms and was killed; its "
                            "output: %s",
                            hook_path, action, fqdn, timeout_ms, output_tail(out));
    if (WIFSIGNALED(status))
        return ck_error_set(err, 502, "dns_hook_failed",
                            "hook %s %s %s was killed by signal %d; its output: %s", hook_path,
                            action, fqdn, WTERMSIG(status), output_tail(out));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return ck_error_set(err, 502, "dns_hook_failed",
                            "hook %s %s %s failed with exit status %d; its output: %s", hook_path,
                            action, fqdn, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                            output_tail(out));
    return 0;
}

int ck_dns_hook_run(const char *hook_path, bool add, const char *fqdn, const char *value,
                    int timeout_ms, char **output, ck_error *err)
{
    int rc = -1, fds[2] = {-1, -1}, status = 0;
    struct hook_output out = {0};
    char **env = NULL;
    const char *action = add ? "add" : "del";
    if (access(hook_path, X_OK) != 0) {
        ck_error_set(err, 400, "dns_hook_failed", "hook %s cannot be executed: %s", hook_path,
                     strerror(errno));
        goto cleanup;
    }
    char *argv[] = {(char *)hook_path, (char *)action, (char *)fqdn, (char *)value, NULL};
    if ((env = hook_environment()) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        ck_error_set(err, 500, "dns_hook_failed", "could not run hook %s: %s", hook_path,
                     strerror(errno));
        goto cleanup;
    }
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = open_max > 0 && open_max < MAX_FD_TO_CLOSE ? (int)open_max : MAX_FD_TO_CLOSE;
    long long deadline = ck_dns_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pid_t pid = fork();
    if (pid < 0) {
        ck_error_set(err, 500, "dns_hook_failed", "could not start hook %s: %s", hook_path,
                     strerror(errno));
        goto cleanup;
    }
    if (pid == 0)
        exec_hook(hook_path, argv, env, fds[1], max_fd);
    setpgid(pid, pid); /* also here: the child may not have run yet when we kill the group */
    close(fds[1]);
    fds[1] = -1;
    bool finished = collect_output(fds[0], deadline, &out) && wait_until(pid, deadline, &status);
    if (!finished) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    rc = hook_result(hook_path, action, fqdn, !finished, timeout_ms, status, &out, err);
    if (rc == 0 && output != NULL) {
        *output = out.data != NULL ? out.data : ck_strdup("");
        out.data = NULL;
        if (*output == NULL)
            rc = ck_error_set(err, 500, "out_of_memory", "out of memory");
    }
cleanup:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(out.data);
    free(env);
    return rc;
}
