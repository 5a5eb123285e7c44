/* api_issuers.h — private to src/server: the routes of issue 5 (local CAs, issuers, DNS
 * providers, manual dns-01 confirmation) and the enrollment checks that need the store. */
#ifndef CK_SERVER_API_ISSUERS_H
#define CK_SERVER_API_ISSUERS_H

#include "server/server.h"

/* api_ca.c */
int ck_api_ca_create(struct ck_request *r, ck_error *err);
int ck_api_ca_root(struct ck_request *r, ck_error *err);

/* api_issuers.c */
int ck_api_issuer_create(struct ck_request *r, ck_error *err);
int ck_api_issuer_list(struct ck_request *r, ck_error *err);
int ck_api_issuer_get(struct ck_request *r, ck_error *err);
int ck_api_issuer_delete(struct ck_request *r, ck_error *err);
int ck_api_dns_create(struct ck_request *r, ck_error *err);
int ck_api_dns_list(struct ck_request *r, ck_error *err);
int ck_api_dns_get(struct ck_request *r, ck_error *err);
int ck_api_dns_delete(struct ck_request *r, ck_error *err);
int ck_api_order_dns_published(struct ck_request *r, ck_error *err);

/* An enrollment's issuer, challenge and DNS provider as a whole: the issuer is "manual" or one
 * of the tenant's issuers (400 "unknown_issuer" naming it); an acme issuer needs a challenge
 * ("dns-01" or "http-01"), dns-01 needs one of the tenant's DNS providers (400 "unknown_dns");
 * other issuers take neither (400 "invalid_field"). */
int ck_api_enrollment_issuer_check(struct ck_request *r, const struct ck_enrollment *e,
                                   ck_error *err);

#endif
