/* api_webhooks.h — private to src/server: the webhook routes of issue 6 (api_webhooks.c). */
#ifndef CK_SERVER_API_WEBHOOKS_H
#define CK_SERVER_API_WEBHOOKS_H

#include "server/server.h"

int ck_api_webhook_create(struct ck_request *r, ck_error *err);
int ck_api_webhook_list(struct ck_request *r, ck_error *err);
int ck_api_webhook_delete(struct ck_request *r, ck_error *err);
int ck_api_webhook_deliveries(struct ck_request *r, ck_error *err);

#endif
