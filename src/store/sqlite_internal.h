/* sqlite_internal.h — what sqlite.c shares with migrations.c; nothing outside src/store/ includes
 * it. */
#ifndef CK_STORE_SQLITE_INTERNAL_H
#define CK_STORE_SQLITE_INTERNAL_H

#include <stddef.h>

/* The order states ck_order_state_is_open() calls open, as an SQL list. The partial unique index
 * and every "is there an open order" query use this one list, so they cannot disagree. */
#define CK_STORE_OPEN_ORDER_STATES                                                                 \
    "('new', 'csr_ready', 'pending_validation', 'checking', 'awaiting_ack', 'issued', 'staged')"

/* The schema scripts in order: script i brings the schema to version i + 1. Scripts are fixed
 * text (no user data) and use only SQL that PostgreSQL also accepts. */
const char *const *ck_store_migrations(size_t *count);

#endif
