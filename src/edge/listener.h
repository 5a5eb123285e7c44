/* listener.h — one edge TLS listener (staging or production) on a libevent loop.
 *
 * Every connection shares one SSL_CTX; the certificate is chosen per connection in the
 * ClientHello callback from the listener's ck_edge_tables, so publishing a new table changes what
 * new handshakes get while open connections carry on. TLS 1.2 and 1.3 only, ECDHE with AEAD
 * suites for 1.2, key exchange on X25519, P-256 or P-384 only, the server's cipher order, no
 * compression, no renegotiation, session resumption (cache and tickets) on; an orderly close
 * (end of stream, idle timeout) sends close_notify so the session stays resumable.
 * No SNI, an unknown name or a name that cannot be a DNS name ends the handshake with an
 * unrecognized_name alert.
 *
 * Over TLS it speaks just enough HTTP/1.1: `GET /` (and HEAD) answers 200 with the body `OK`,
 * other paths 404, other methods 405, anything unreadable 400 and the connection closes. The
 * request head is bounded to 8 KiB; keep-alive is honoured.
 *
 * Defences: a handshake must finish within handshake_timeout_ms (counted from accept, so a client
 * trickling bytes does not extend it), and so must each request head once its first bytes have
 * arrived; an idle connection (waiting for a request) is closed after idle_timeout_ms, and
 * beyond max_connections (or the shared budget's max) new connections are closed at once. The
 * process needs a file descriptor limit above max_connections (RLIMIT_NOFILE); when accept fails
 * anyway (EMFILE, ENFILE, ENOBUFS) the listener stops accepting for 100 ms at a time, leaving
 * pending connections in the kernel's backlog, and logs once per episode. */
#ifndef CK_EDGE_LISTENER_H
#define CK_EDGE_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/error.h"
#include "edge/edge_tables.h"
#include "edge/kex_provider.h"

#define CK_EDGE_HANDSHAKE_TIMEOUT_MS 10000
#define CK_EDGE_IDLE_TIMEOUT_MS      60000
#define CK_EDGE_MAX_CONNECTIONS      20000
#define CK_EDGE_REQUEST_HEAD_MAX     8192

/* Connections of several listeners counted together, because they draw on one pool of file
 * descriptors: the process's. Used from the loop thread only; owned by the caller, shared by the
 * listeners of one event loop, and must outlive them. */
struct ck_edge_conn_budget {
    size_t open; /* TLS connections open on every listener that shares this budget */
    size_t max;  /* beyond it, new connections are closed at once */
};

struct ck_edge_listener_options {
    const char *address;      /* "127.0.0.1:8444", "[::1]:8444"; port 0 picks a free port */
    ck_edge_tables *tables;   /* not owned; must outlive the listener */
    int handshake_timeout_ms; /* 0: CK_EDGE_HANDSHAKE_TIMEOUT_MS */
    int idle_timeout_ms;      /* 0: CK_EDGE_IDLE_TIMEOUT_MS */
    size_t max_connections;   /* 0: CK_EDGE_MAX_CONNECTIONS */
    struct ck_edge_conn_budget *budget; /* optional: a limit shared with other listeners */
    /* The library context the listener's SSL_CTX lives in (kex_provider.h), not owned. It must
     * outlive the listener and the loop's turn after ck_edge_listener_free, in which libevent
     * frees the last connections' SSLs. NULL: OpenSSL's default context and its own X25519. */
    ck_edge_kex *kex;
};

typedef struct ck_edge_listener ck_edge_listener;

/* Binds and starts accepting on base. Fails with 400 "invalid_address" for an address that is
 * not "IP:port", 500 "listen_failed" when the address cannot be bound. */
ck_edge_listener *ck_edge_listener_new(struct event_base *base,
                                       const struct ck_edge_listener_options *opts, ck_error *err);

/* Closes the listening socket and every connection. Call from the loop's thread, or when the
 * loop is not running. NULL is allowed. libevent finishes releasing closed connections inside
 * the loop, so give it one more turn (event_base_loop(base, EVLOOP_NONBLOCK)) before
 * event_base_free, or their memory leaks. */
void ck_edge_listener_free(ck_edge_listener *l);

/* The bound port (useful after asking for port 0). */
int ck_edge_listener_port(const ck_edge_listener *l);

/* Open connections right now (handshaking or established). Loop thread only. */
size_t ck_edge_listener_connections(const ck_edge_listener *l);

/* Handshakes completed, and connections closed before their handshake completed (an unknown
 * or missing SNI, a protocol error, a client that gave up, the handshake timeout), since the
 * listener started. Any thread. */
void ck_edge_listener_stats(const ck_edge_listener *l, uint64_t *handshakes, uint64_t *errors);

#endif
