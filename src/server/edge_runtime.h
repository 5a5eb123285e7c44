/* edge_runtime.h — private to src/server: the daemon's edge. The staging and production TLS
 * listeners (src/edge) serving tables built from the store, the plain HTTP listener for ACME
 * http-01 (http01.h), and hot reload.
 *
 * Everything runs on the daemon's event loop and uses its store connection. A table is rebuilt
 * from ck_store_edge_each whenever ck_store_edge_generation differs from the generation the
 * table was built from: a 1 s timer checks it (several daemons sharing one database converge
 * within a second) and the API calls ck_edge_runtime_refresh right after its own changes. */
#ifndef CK_SERVER_EDGE_RUNTIME_H
#define CK_SERVER_EDGE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/error.h"
#include "common/util.h"
#include "crypto/seal.h"
#include "edge/edge_tables.h"
#include "edge/kex_provider.h"
#include "store/store.h"

enum ck_edge_kind { CK_EDGE_STAGING, CK_EDGE_PRODUCTION, CK_EDGE_HTTP, CK_EDGE_KIND_COUNT };

/* "staging", "production", "http": the keys of GET /v1/edge. */
const char *ck_edge_kind_name(enum ck_edge_kind kind);

struct ck_edge_runtime;

/* addresses[kind]: "IP:PORT" each (port 0 picks a free one), possibly empty. cache_capacity:
 * parsed certificates each TLS environment keeps (0: CK_EDGE_CACHE_DEFAULT). base, st and key are
 * not owned and must outlive the runtime; kex (the TLS listeners' library context,
 * kex_provider.h; NULL: OpenSSL's own) must also outlive the loop's turn after
 * ck_edge_runtime_free, in which the last connections are freed. Builds and publishes the first
 * tables before it returns, so the listeners serve from their first connection. With a TLS
 * listener, it raises the process's RLIMIT_NOFILE soft limit to the hard limit and lets the TLS
 * listeners together hold that limit less 256 connections (half of a limit of 512 or less): the
 * rest is the API's, the store's and the jobs'. */
/* Whether addresses ask for a TLS listener (staging or production): what needs the key-exchange
 * context and the descriptor budget. */
bool ck_edge_runtime_serves_tls(const ck_strv addresses[CK_EDGE_KIND_COUNT]);

int ck_edge_runtime_start(struct event_base *base, struct ck_store *st, const ck_master_key *key,
                          const ck_strv addresses[CK_EDGE_KIND_COUNT], size_t cache_capacity,
                          ck_edge_kex *kex, struct ck_edge_runtime **out, ck_error *err);

/* Calls fn(arg) on every tick of the 1 s timer, after the tables are refreshed (the daemon's
 * deferred deploys). */
void ck_edge_runtime_on_tick(struct ck_edge_runtime *rt, void (*fn)(void *arg), void *arg);

/* Rebuilds and publishes the tables whose generation changed. Loop thread only. NULL is fine. */
void ck_edge_runtime_refresh(struct ck_edge_runtime *rt);

/* Closes every listener and frees everything. Loop thread, or the loop is not running; give
 * the loop one more turn before event_base_free (see listener.h). NULL is fine. */
void ck_edge_runtime_free(struct ck_edge_runtime *rt);

/* The addresses actually bound, "127.0.0.1:8444" / "[::1]:8444" (a port 0 replaced by the port
 * picked). NULL rt gives an empty list. */
const ck_strv *ck_edge_runtime_addresses(const struct ck_edge_runtime *rt, enum ck_edge_kind kind);

/* Handshakes completed and failed on every listener of env since the daemon started
 * (listener.h, ck_edge_listener_stats); zeros without such a listener. NULL rt is fine. */
void ck_edge_runtime_handshakes(const struct ck_edge_runtime *rt, enum ck_environment env,
                                uint64_t *handshakes, uint64_t *errors);

/* The parsed-certificate cache of env's listeners (edge_tables.h); zeros without a listener.
 * NULL rt is fine. */
void ck_edge_runtime_cache_stats(const struct ck_edge_runtime *rt, enum ck_environment env,
                                 struct ck_edge_cache_stats *out);

/* Splits "IP:PORT" or "[IPv6]:PORT" into host (without brackets) and port (0..65535).
 * 400 "invalid_address" otherwise. */
int ck_edge_address_split(const char *address, char *host, size_t host_len, int *port,
                          ck_error *err);

#endif
