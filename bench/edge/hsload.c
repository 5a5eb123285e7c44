/* hsload — a TLS 1.3 handshake load client that does no crypto of its own.
 *
 * On two cores an ordinary client (h2load, wrk, openssl s_time) spends more CPU per handshake
 * than the server, so it measures itself. hsload runs one real OpenSSL handshake per target at
 * start to record the exact ClientHello bytes and the shape of the server's first flight
 * (ServerHello, ChangeCipherSpec, then N encrypted records up to the server's Finished). The
 * measurement then replays that ClientHello over many non-blocking connections, reads records
 * until the N-th encrypted one is complete and resets the connection (SO_LINGER 0): the server
 * has done a whole full handshake (key exchange, signature, Finished) and the client only
 * parsed record headers. With --sni-file the server_name in the recorded ClientHello is
 * replaced per connection by a name picked at random, adjusting every enclosing length field.
 *
 *   hsload --connect 127.0.0.1:PORT [--sni NAME | --sni-file FILE] [--duration S]
 *          [--warmup S] [--concurrency N] [--check K] [--timeout-ms MS] [--server-pid PID]
 *
 * Prints one line: "hsload: ... handshakes=N errors=E seconds=S client_cpu=P% server_cpu=P%
 * per_server_cpu_second=H rate=R". With --server-pid, server_cpu is what that process (all its
 * threads) used during the window, so a figure taken on a busy machine can still be judged.
 *
 * A/B mode compares two loads on the same machine minute: a second target (--connect2 with
 * --sni2 or --sni-file2, --server-pid2; the same server with other names, or another server on
 * the same core) is measured in turn with the first, in windows of --alternate S seconds, until
 * each has had --duration seconds. Between windows the load in flight is drained, and each
 * window starts after a short settle, so neither load's handshakes are counted or paid for in
 * the other's window. A slow minute on a shared machine then slows both alike. It prints one line
 * per target (its totals over its windows) and then "hsload-ab: ratio=R (B/A per server CPU
 * second) pairs=N pair_ratios=min/median/max".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HELLO_MAX       2048
#define NAME_MAX_LEN    253
#define MAX_CONCURRENCY 4096
#define CAPTURE_READS   256
#define MAX_NAMES       10000000

enum { REC_HANDSHAKE = 22, REC_CCS = 20, REC_ALERT = 21, REC_APPDATA = 23 };

struct options {
    struct sockaddr_in addr;
    const char *target;
    const char *sni;
    const char *sni_file;
    double duration;
    double warmup;
    int concurrency;
    int check;
    int timeout_ms;
    int server_pid;
    double alternate; /* A/B window length in seconds; 0: one target */
};

/* The second target of A/B mode, as given; the rest of its options are the first target's. */
struct second_target {
    const char *target;
    const char *sni;
    const char *sni_file;
    int server_pid;
};

/* The recorded ClientHello and where its server_name lives, so a name can be swapped in. */
struct hello_template {
    unsigned char bytes[HELLO_MAX];
    size_t len;
    size_t ext_total_off; /* uint16 length of all extensions */
    size_t sni_ext_off;   /* start of the server_name extension (its type field) */
    size_t name_off;      /* first byte of the host name */
    size_t name_len;
    int flight_appdata; /* encrypted records in the server's first flight */
};

struct name_list {
    char *text;
    size_t *offsets;
    unsigned char *lengths;
    size_t count;
};

/* Incremental record-layer parser: sees only headers and skips bodies. */
struct record_parser {
    unsigned char header[5];
    size_t header_have;
    size_t body_left;
    int appdata_done;
    bool saw_alert;
    bool bad;
};

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_WRITING, CONN_READING };

struct conn {
    int fd;
    enum conn_state state;
    double started;
    size_t hello_len;
    size_t hello_sent;
    struct record_parser parser;
    unsigned char hello[HELLO_MAX + NAME_MAX_LEN];
};

struct load_stats {
    uint64_t done_total;
    uint64_t done_window;
    uint64_t errors_window;
    uint64_t errors_total;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64*: plenty for picking names, and no crypto in the load loop. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

static unsigned read_u16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void write_u16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void write_u24(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 16);
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)v;
}

/* Feeds bytes from the server; returns false once the stream is not what a handshake sends. */
static bool parser_feed(struct record_parser *p, const unsigned char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && !p->bad) {
        if (p->body_left > 0) {
            size_t take = len - i < p->body_left ? len - i : p->body_left;
            p->body_left -= take;
            i += take;
            if (p->body_left == 0 && p->header[0] == REC_APPDATA)
                p->appdata_done++;
            continue;
        }
        p->header[p->header_have++] = buf[i++];
        if (p->header_have < 5)
            continue;
        p->header_have = 0;
        p->body_left = read_u16(p->header + 3);
        if (p->header[0] == REC_ALERT)
            p->saw_alert = true;
        if (p->header[0] < REC_CCS || p->header[0] > REC_APPDATA || p->body_left == 0 ||
            p->saw_alert)
            p->bad = true;
    }
    return !p->bad;
}

/* Finds the server_name extension in a ClientHello record; false when the layout is unexpected. */
static bool locate_sni(struct hello_template *t)
{
    const unsigned char *b = t->bytes;
    size_t pos = 5 + 4 + 2 + 32; /* record header, handshake header, version, random */
    if (t->len < pos + 1 || b[0] != REC_HANDSHAKE || b[5] != 1)
        return false;
    pos += 1 + b[pos]; /* legacy session id */
    if (t->len < pos + 2)
        return false;
    pos += 2 + read_u16(b + pos); /* cipher suites */
    if (t->len < pos + 1)
        return false;
    pos += 1 + b[pos]; /* compression methods */
    if (t->len < pos + 2)
        return false;
    t->ext_total_off = pos;
    size_t end = pos + 2 + read_u16(b + pos);
    if (end != t->len)
        return false;
    pos += 2;
    while (pos + 4 <= end) {
        unsigned type = read_u16(b + pos), ext_len = read_u16(b + pos + 2);
        if (type == 0 && ext_len >= 5 && pos + 4 + ext_len <= end) {
            t->sni_ext_off = pos;
            t->name_len = read_u16(b + pos + 7);
            t->name_off = pos + 9;
            return b[pos + 6] == 0 && t->name_off + t->name_len == pos + 4 + ext_len;
        }
        pos += 4 + ext_len;
    }
    return false;
}

/* Writes the template with NAME as server_name into OUT; returns the length. */
static size_t patch_hello(const struct hello_template *t, const char *name, size_t name_len,
                          unsigned char *out)
{
    size_t head = t->name_off, tail = t->len - (t->name_off + t->name_len);
    memcpy(out, t->bytes, head);
    memcpy(out + head, name, name_len);
    memcpy(out + head + name_len, t->bytes + t->name_off + t->name_len, tail);
    size_t total = head + name_len + tail;
    write_u16(out + 3, total - 5);
    write_u24(out + 6, total - 9);
    write_u16(out + t->ext_total_off, total - t->ext_total_off - 2);
    size_t ext_len = read_u16(t->bytes + t->sni_ext_off + 2) - t->name_len + name_len;
    write_u16(out + t->sni_ext_off + 2, ext_len);
    write_u16(out + t->sni_ext_off + 4, ext_len - 2);
    write_u16(out + t->sni_ext_off + 7, name_len);
    return total;
}

static int connect_blocking(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void close_with_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static SSL_CTX *client_context(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/* Sends the ClientHello SSL wrote and keeps a copy in T unless T already holds one. */
static bool send_client_hello(BIO *wbio, int fd, struct hello_template *t)
{
    char *data;
    long n = BIO_get_mem_data(wbio, &data);
    if (n <= 0 || (size_t)n > HELLO_MAX)
        return false;
    if (t->len == 0) {
        memcpy(t->bytes, data, (size_t)n);
        t->len = (size_t)n;
    }
    bool sent = send(fd, data, (size_t)n, MSG_NOSIGNAL) == n;
    (void)BIO_reset(wbio);
    return sent;
}

/* One real handshake: records the ClientHello into T (when T->len is 0) and the flight shape;
 * with CHECK_NAME, also tells whether the certificate served matches that name. */
static bool capture_once(const struct options *opt, SSL_CTX *ctx, const char *sni,
                         struct hello_template *t, bool *name_matches)
{
    bool ok = false;
    int fd = -1;
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL)
        goto cleanup;
    SSL_set_bio(ssl, rbio, wbio);
    rbio = wbio = NULL;
    SSL_set_tlsext_host_name(ssl, sni);
    SSL_set_connect_state(ssl);
    fd = connect_blocking(&opt->addr);
    if (fd < 0) {
        fprintf(stderr, "hsload: cannot connect to %s: %s\n", opt->target, strerror(errno));
        goto cleanup;
    }
    struct record_parser parser = {0};
    unsigned char buf[16384];
    for (int i = 0; i < CAPTURE_READS; i++) {
        int r = SSL_do_handshake(ssl);
        /* Only the ClientHello goes out: the client's Finished is never sent, as in the load. */
        if (i == 0 && !send_client_hello(SSL_get_wbio(ssl), fd, t))
            goto cleanup;
        if (r == 1) {
            t->flight_appdata = parser.appdata_done;
            X509 *leaf = SSL_get0_peer_certificate(ssl);
            *name_matches = leaf != NULL && X509_check_host(leaf, sni, 0, 0, NULL) == 1;
            ok = parser.header_have == 0 && parser.body_left == 0 && t->flight_appdata > 0;
            goto cleanup;
        }
        if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0 || !parser_feed(&parser, buf, (size_t)n))
            break;
        BIO_write(SSL_get_rbio(ssl), buf, (int)n);
    }
    fprintf(stderr, "hsload: TLS 1.3 handshake with %s (SNI %s) failed\n", opt->target, sni);
    ERR_print_errors_fp(stderr);
cleanup:
    if (fd >= 0)
        close_with_reset(fd);
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_free(ssl);
    return ok;
}

static bool load_names(const char *path, struct name_list *names)
{
    bool ok = false;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "hsload: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 1024, size = 0;
    char line[512];
    names->offsets = malloc(cap * sizeof *names->offsets);
    names->lengths = malloc(cap);
    size_t text_cap = 65536;
    names->text = malloc(text_cap);
    if (names->offsets == NULL || names->lengths == NULL || names->text == NULL)
        goto cleanup;
    while (names->count < MAX_NAMES && fgets(line, sizeof line, f) != NULL) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0 || len > NAME_MAX_LEN)
            continue;
        if (names->count == cap) {
            cap *= 2;
            size_t *o = realloc(names->offsets, cap * sizeof *o);
            if (o != NULL)
                names->offsets = o;
            unsigned char *l = realloc(names->lengths, cap);
            if (l != NULL)
                names->lengths = l;
            if (o == NULL || l == NULL)
                goto cleanup;
        }
        if (size + len + 1 > text_cap) {
            text_cap = text_cap * 2 + len;
            char *grown = realloc(names->text, text_cap);
            if (grown == NULL)
                goto cleanup;
            names->text = grown;
        }
        memcpy(names->text + size, line, len);
        names->text[size + len] = '\0';
        names->offsets[names->count] = size;
        names->lengths[names->count] = (unsigned char)len;
        names->count++;
        size += len + 1;
    }
    ok = names->count > 0;
    if (!ok)
        fprintf(stderr, "hsload: %s holds no names\n", path);
cleanup:
    fclose(f);
    return ok;
}

static void names_free(struct name_list *names)
{
    free(names->text);
    free(names->offsets);
    free(names->lengths);
}

/* Records the template and checks a few names with real handshakes before any load. */
static bool prepare(const struct options *opt, const struct name_list *names,
                    struct hello_template *t)
{
    bool ok = false, matches = false;
    SSL_CTX *ctx = client_context();
    if (ctx == NULL)
        goto cleanup;
    const char *first = names->count > 0 ? names->text : opt->sni;
    if (!capture_once(opt, ctx, first, t, &matches))
        goto cleanup;
    if (!locate_sni(t)) {
        fprintf(stderr, "hsload: the recorded ClientHello has no server_name to patch\n");
        goto cleanup;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < opt->check; i++) {
        size_t pick = names->count > 0 ? (size_t)(next_random(&rng) % names->count) : 0;
        const char *name = names->count > 0 ? names->text + names->offsets[pick] : opt->sni;
        struct hello_template probe = {.len = 1}; /* len 1: keep no ClientHello */
        if (!capture_once(opt, ctx, name, &probe, &matches))
            goto cleanup;
        if (!matches || probe.flight_appdata != t->flight_appdata) {
            fprintf(stderr, "hsload: %s: the server's certificate does not match %s\n", opt->target,
                    name);
            goto cleanup;
        }
    }
    ok = true;
cleanup:
    SSL_CTX_free(ctx);
    return ok;
}

static void conn_reset(struct conn *c)
{
    if (c->fd >= 0)
        close_with_reset(c->fd);
    c->fd = -1;
    c->state = CONN_IDLE;
}

static bool conn_start(struct conn *c, int ep, const struct options *opt,
                       const struct hello_template *t, const struct name_list *names, uint64_t *rng,
                       double now)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (names->count > 0) {
        size_t pick = (size_t)(next_random(rng) % names->count);
        c->hello_len =
            patch_hello(t, names->text + names->offsets[pick], names->lengths[pick], c->hello);
    } else if (c->hello_len == 0) {
        memcpy(c->hello, t->bytes, t->len);
        c->hello_len = t->len;
    }
    c->hello_sent = 0;
    memset(&c->parser, 0, sizeof c->parser);
    c->started = now;
    int r = connect(c->fd, (const struct sockaddr *)&opt->addr, sizeof opt->addr);
    if (r != 0 && errno != EINPROGRESS) {
        conn_reset(c);
        return false;
    }
    c->state = r == 0 ? CONN_WRITING : CONN_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_reset(c);
        return false;
    }
    return true;
}

/* Advances one connection; returns 1 when its handshake is complete, -1 on error, 0 otherwise. */
static int conn_step(struct conn *c, int ep, const struct hello_template *t, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP) && c->state != CONN_READING)
        return -1;
    if (c->state == CONN_CONNECTING || c->state == CONN_WRITING) {
        c->state = CONN_WRITING;
        ssize_t n =
            send(c->fd, c->hello + c->hello_sent, c->hello_len - c->hello_sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->hello_sent += (size_t)n;
        if (c->hello_sent < c->hello_len)
            return 0;
        c->state = CONN_READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0 ? 0 : -1;
    }
    unsigned char buf[16384];
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0 || !parser_feed(&c->parser, buf, (size_t)n))
            return -1;
        if (c->parser.appdata_done >= t->flight_appdata)
            return 1;
    }
    return 0;
}

/* One target's load: its options, its recorded ClientHello and names (owned), its connections. */
struct load_run {
    const struct options *opt;
    struct hello_template *t;
    struct name_list names;
    struct conn *conns;
    int ep;
    uint64_t rng;
    struct load_stats stats;
};

static void count_outcome(struct load_run *run, bool done, bool in_window)
{
    if (done) {
        run->stats.done_total++;
        run->stats.done_window += in_window;
    } else {
        run->stats.errors_total++;
        run->stats.errors_window += in_window;
    }
}

static void expire_slow(struct load_run *run, double now, bool in_window)
{
    double limit = run->opt->timeout_ms / 1000.0;
    for (int i = 0; i < run->opt->concurrency; i++) {
        struct conn *c = &run->conns[i];
        if (c->state != CONN_IDLE && now - c->started > limit) {
            conn_reset(c);
            count_outcome(run, false, in_window);
        }
    }
}

/* Keeps every connection busy until END; outcomes count in the window only when IN_WINDOW. */
static void run_phase(struct load_run *run, double end, bool in_window)
{
    const struct options *opt = run->opt;
    double now = now_seconds(), last_scan = now;
    struct epoll_event events[256];
    while (now < end) {
        for (int i = 0; i < opt->concurrency; i++) {
            if (run->conns[i].state == CONN_IDLE &&
                !conn_start(&run->conns[i], run->ep, opt, run->t, &run->names, &run->rng, now))
                count_outcome(run, false, in_window);
        }
        int n = epoll_wait(run->ep, events, 256, 50);
        now = now_seconds();
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            int r = conn_step(c, run->ep, run->t, events[i].events);
            if (r != 0) {
                conn_reset(c);
                count_outcome(run, r > 0, in_window && now < end);
            }
        }
        if (now - last_scan > 0.1) {
            expire_slow(run, now, in_window);
            last_scan = now;
        }
    }
}

/* CPU seconds the server process has used (all its threads), or -1 when it cannot be read. */
static double server_cpu_seconds(int pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* Fields after the command name, which may hold spaces, start past the last ')'. */
    const char *p = strrchr(text, ')');
    unsigned long long utime, stime;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static bool parse_target(const char *text, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host)
        return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    return *end == '\0' && port > 0 && port < 65536 &&
           inet_pton(AF_INET, host, &addr->sin_addr) == 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: hsload --connect IP:PORT [--sni NAME | --sni-file FILE] "
                    "[--duration S] [--warmup S] [--concurrency N] [--check K] "
                    "[--timeout-ms MS] [--server-pid PID]\n"
                    "       [--alternate S --connect2 IP:PORT [--sni2 NAME | --sni-file2 FILE] "
                    "[--server-pid2 PID]]\n");
    return 2;
}

static bool parse_second(const char *k, const char *v, struct options *opt,
                         struct second_target *second)
{
    if (strcmp(k, "--alternate") == 0)
        opt->alternate = atof(v);
    else if (strcmp(k, "--connect2") == 0)
        second->target = v;
    else if (strcmp(k, "--sni2") == 0)
        second->sni = v;
    else if (strcmp(k, "--sni-file2") == 0)
        second->sni_file = v;
    else if (strcmp(k, "--server-pid2") == 0)
        second->server_pid = atoi(v);
    else
        return false;
    return true;
}

static bool second_target_given(const struct second_target *second)
{
    return second->target != NULL || second->sni != NULL || second->sni_file != NULL ||
           second->server_pid != 0;
}

/* The second target's options: the first's, with its own address, names and server. */
static bool second_options(const struct options *opt, const struct second_target *second,
                           struct options *opt2)
{
    *opt2 = *opt;
    opt2->target = second->target;
    opt2->sni = second->sni != NULL ? second->sni : opt->sni;
    if (second->sni != NULL || second->sni_file != NULL)
        opt2->sni_file = second->sni_file;
    opt2->server_pid = second->server_pid;
    /* Both server pids or neither: a ratio of one per CPU second to one per second means
     * nothing. */
    return second->target != NULL && parse_target(second->target, &opt2->addr) &&
           strlen(opt2->sni) <= NAME_MAX_LEN && opt->alternate >= 0.2 &&
           opt->alternate <= opt->duration && (opt->server_pid > 0) == (opt2->server_pid > 0);
}

static bool parse_options(int argc, char **argv, struct options *opt, struct second_target *second)
{
    *opt = (struct options){.sni = "localhost",
                            .duration = 10,
                            .warmup = 2,
                            .concurrency = 64,
                            .check = 1,
                            .timeout_ms = 5000};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--connect") == 0)
            opt->target = v;
        else if (strcmp(k, "--sni") == 0)
            opt->sni = v;
        else if (strcmp(k, "--sni-file") == 0)
            opt->sni_file = v;
        else if (strcmp(k, "--duration") == 0)
            opt->duration = atof(v);
        else if (strcmp(k, "--warmup") == 0)
            opt->warmup = atof(v);
        else if (strcmp(k, "--concurrency") == 0)
            opt->concurrency = atoi(v);
        else if (strcmp(k, "--check") == 0)
            opt->check = atoi(v);
        else if (strcmp(k, "--timeout-ms") == 0)
            opt->timeout_ms = atoi(v);
        else if (strcmp(k, "--server-pid") == 0)
            opt->server_pid = atoi(v);
        else if (!parse_second(k, v, opt, second))
            return false;
    }
    return argc % 2 == 1 && opt->target != NULL && parse_target(opt->target, &opt->addr) &&
           opt->duration > 0 && opt->duration <= 3600 && opt->warmup >= 0 && opt->warmup <= 600 &&
           opt->concurrency > 0 && opt->concurrency <= MAX_CONCURRENCY && opt->check >= 0 &&
           opt->timeout_ms > 0 && strlen(opt->sni) <= NAME_MAX_LEN;
}

/* Records the target's ClientHello, checks its names and opens its connections' epoll set. */
static bool run_open(struct load_run *run, const struct options *opt, uint64_t seed)
{
    *run = (struct load_run){.opt = opt, .ep = -1, .rng = seed | 1};
    run->t = calloc(1, sizeof *run->t);
    if (run->t == NULL || (opt->sni_file != NULL && !load_names(opt->sni_file, &run->names)) ||
        !prepare(opt, &run->names, run->t))
        return false;
    run->conns = calloc((size_t)opt->concurrency, sizeof *run->conns);
    run->ep = epoll_create1(0);
    if (run->conns == NULL || run->ep < 0)
        return false;
    for (int i = 0; i < opt->concurrency; i++)
        run->conns[i].fd = -1;
    return true;
}

static void run_close(struct load_run *run)
{
    if (run->conns != NULL) {
        for (int i = 0; i < run->opt->concurrency; i++)
            conn_reset(&run->conns[i]);
    }
    if (run->ep >= 0)
        close(run->ep);
    free(run->conns);
    names_free(&run->names);
    free(run->t);
}

static int in_flight(const struct load_run *run)
{
    int n = 0;
    for (int i = 0; i < run->opt->concurrency; i++)
        n += run->conns[i].state != CONN_IDLE;
    return n;
}

/* Lets the handshakes in flight finish without starting new ones (for at most LIMIT seconds),
 * so that the next window, of either load, finds none of this load's work on the server. */
static void run_drain(struct load_run *run, double limit)
{
    double end = now_seconds() + limit;
    struct epoll_event events[256];
    while (in_flight(run) > 0 && now_seconds() < end) {
        int n = epoll_wait(run->ep, events, 256, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            int r = conn_step(c, run->ep, run->t, events[i].events);
            if (r != 0) {
                conn_reset(c);
                count_outcome(run, r > 0, false);
            }
        }
    }
    for (int i = 0; i < run->opt->concurrency; i++) {
        if (run->conns[i].state != CONN_IDLE) {
            conn_reset(&run->conns[i]);
            count_outcome(run, false, false);
        }
    }
}

/* What one target did in its measured time (one window, or the sum of its A/B windows). */
struct window {
    uint64_t handshakes;
    uint64_t errors;
    double seconds;
    double client_cpu;
    double server_cpu; /* 0 without --server-pid */
};

static double per_server_cpu_second(const struct window *w)
{
    return w->server_cpu > 0 ? (double)w->handshakes / w->server_cpu : 0.0;
}

/* What A/B mode compares: handshakes per server CPU second, or per second without a server pid. */
static double compared_rate(const struct window *w)
{
    if (w->server_cpu > 0)
        return per_server_cpu_second(w);
    return w->seconds > 0 ? (double)w->handshakes / w->seconds : 0.0;
}

/* After SETTLE seconds of uncounted load (the connections filling up), SECONDS of measured load. */
static struct window run_window(struct load_run *run, double settle, double seconds)
{
    run_phase(run, now_seconds() + settle, false);
    uint64_t done = run->stats.done_window, errors = run->stats.errors_window;
    int pid = run->opt->server_pid;
    double cpu_start = cpu_seconds(), started = now_seconds();
    double server_start = pid > 0 ? server_cpu_seconds(pid) : -1;
    run_phase(run, started + seconds, true);
    double server_end = server_start >= 0 ? server_cpu_seconds(pid) : -1;
    return (struct window){.handshakes = run->stats.done_window - done,
                           .errors = run->stats.errors_window - errors,
                           .seconds = now_seconds() - started,
                           .client_cpu = cpu_seconds() - cpu_start,
                           .server_cpu = server_end >= 0 ? server_end - server_start : 0};
}

static void window_add(struct window *sum, const struct window *w)
{
    sum->handshakes += w->handshakes;
    sum->errors += w->errors;
    sum->seconds += w->seconds;
    sum->client_cpu += w->client_cpu;
    sum->server_cpu += w->server_cpu;
}

static void print_window(const struct load_run *run, const struct window *w)
{
    const struct options *opt = run->opt;
    printf("hsload: %s sni=%s names=%zu concurrency=%d flight_records=%d handshakes=%llu "
           "errors=%llu seconds=%.2f client_cpu=%.0f%% server_cpu=%.0f%% "
           "per_server_cpu_second=%.1f rate=%.1f\n",
           opt->target, opt->sni_file != NULL ? opt->sni_file : opt->sni, run->names.count,
           opt->concurrency, run->t->flight_appdata, (unsigned long long)w->handshakes,
           (unsigned long long)w->errors, w->seconds, 100.0 * w->client_cpu / w->seconds,
           100.0 * w->server_cpu / w->seconds, per_server_cpu_second(w),
           (double)w->handshakes / w->seconds);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A/B mode (see the top of this file). Returns the process status. */
static int run_alternating(struct load_run *a, struct load_run *b)
{
    const struct options *opt = a->opt;
    int pairs = (int)(opt->duration / opt->alternate + 0.5);
    pairs += pairs % 2; /* as many pairs with A first as with B first */
    double settle = opt->alternate / 4 < 0.2 ? opt->alternate / 4 : 0.2;
    double *ratios = calloc((size_t)pairs, sizeof *ratios);
    if (ratios == NULL)
        return 1;
    struct load_run *runs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        run_phase(runs[k], now_seconds() + opt->warmup, false);
        run_drain(runs[k], 2.0);
    }
    struct window sums[2] = {{0}, {0}};
    for (int i = 0; i < pairs; i++) {
        struct window w[2];
        /* A B, then B A: a machine slowing down during a pair does not favour either. */
        for (int step = 0; step < 2; step++) {
            int k = (i + step) % 2;
            w[k] = run_window(runs[k], settle, opt->alternate);
            run_drain(runs[k], 2.0);
            window_add(&sums[k], &w[k]);
        }
        double rate_a = compared_rate(&w[0]);
        ratios[i] = rate_a > 0 ? compared_rate(&w[1]) / rate_a : 0; /* 0: left out below */
        fprintf(stderr, "hsload-ab: pair %d%s: %.1f %.1f ratio %.3f\n", i + 1,
                i % 2 == 0 ? " (A first)" : " (B first)", rate_a, compared_rate(&w[1]), ratios[i]);
    }
    print_window(a, &sums[0]);
    print_window(b, &sums[1]);
    double total_a = compared_rate(&sums[0]), total_b = compared_rate(&sums[1]);
    qsort(ratios, (size_t)pairs, sizeof *ratios, compare_doubles);
    int first = 0; /* pairs without a rate (no handshake, no CPU reading) sort first */
    while (first < pairs && ratios[first] <= 0)
        first++;
    int valid = pairs - first;
    double median = valid == 0 ? 0.0
                    : valid % 2 == 1
                        ? ratios[first + valid / 2]
                        : (ratios[first + valid / 2 - 1] + ratios[first + valid / 2]) / 2;
    printf("hsload-ab: ratio=%.3f pairs=%d pair_ratios=%.3f/%.3f/%.3f\n",
           total_a > 0 ? total_b / total_a : 0.0, valid, valid > 0 ? ratios[first] : 0.0, median,
           valid > 0 ? ratios[pairs - 1] : 0.0);
    free(ratios);
    return sums[0].handshakes > 0 && sums[1].handshakes > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int status = 1;
    struct options opt, opt2;
    struct second_target second = {0};
    struct load_run run = {.opt = &opt, .ep = -1}, run2 = {.opt = &opt2, .ep = -1};
    if (!parse_options(argc, argv, &opt, &second) ||
        (opt.alternate > 0 && !second_options(&opt, &second, &opt2)) ||
        (opt.alternate <= 0 && second_target_given(&second))) {
        status = usage();
        goto cleanup;
    }
    uint64_t seed = (uint64_t)time(NULL);
    if (!run_open(&run, &opt, seed) ||
        (opt.alternate > 0 && !run_open(&run2, &opt2, seed * 0x9e3779b97f4a7c15ULL)))
        goto cleanup;
    if (opt.alternate > 0) {
        status = run_alternating(&run, &run2);
        goto cleanup;
    }
    struct window w = run_window(&run, opt.warmup, opt.duration);
    print_window(&run, &w);
    status = w.handshakes > 0 ? 0 : 1;
cleanup:
    run_close(&run);
    if (opt.alternate > 0)
        run_close(&run2);
    return status;
}
