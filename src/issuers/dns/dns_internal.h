/* dns_internal.h — helpers shared by the dns-01 files; not part of the contract (see dns01.h). */
#ifndef CK_ISSUERS_DNS_INTERNAL_H
#define CK_ISSUERS_DNS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <ldns/ldns.h>

#include "common/error.h"
#include "issuers/dns/dns01.h"

/* A resolver that asks only `server`: no system configuration, recursion off, one try of at most
 * timeout_ms, TCP when the UDP answer is truncated. NULL with err set on failure. */
ldns_resolver *ck_dns_resolver_new(const struct ck_dns_server *server, int timeout_ms,
                                   ck_error *err);

/* "NOERROR", "REFUSED", "NOTAUTH" ... or "RCODE n". */
const char *ck_dns_rcode_name(int rcode);

/* value as one TXT rdata field list: character-strings of at most 255 bytes. Pushed onto rr. */
int ck_dns_txt_push_value(ldns_rr *rr, const char *value);

/* true when rr is a TXT record whose strings, joined, equal value. */
bool ck_dns_txt_equals(const ldns_rr *rr, const char *value);

/* Milliseconds on the monotonic clock. */
long long ck_dns_now_ms(void);

#endif
