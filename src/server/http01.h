/* http01.h — private to src/server: the edge's plain HTTP listener (`certkeep serve --http`).
 *
 * GET (or HEAD) /.well-known/acme-challenge/TOKEN answers the key authorization stored for that
 * token (ck_store_http01_get) as text/plain, 404 when there is none; every other request gets a
 * 301 to https://HOST/PATH (HOST from the request's Host header without its port). Runs on the
 * daemon's loop with the daemon's store connection. */
#ifndef CK_SERVER_HTTP01_H
#define CK_SERVER_HTTP01_H

#include <event2/event.h>

#include "common/error.h"
#include "common/util.h"
#include "store/store.h"

#define CK_HTTP01_TOKEN_MAX 256 /* longer tokens are not ACME tokens: 404 */

struct ck_http01;

/* Binds every address ("IP:PORT", port 0 picks one) and appends what was bound, with the real
 * port, to *bound. 400 "invalid_address", 500 "listen_failed". */
int ck_http01_start(struct event_base *base, struct ck_store *st, const ck_strv *addresses,
                    ck_strv *bound, struct ck_http01 **out, ck_error *err);

/* Closes the listener. NULL is fine. */
void ck_http01_free(struct ck_http01 *h);

#endif
