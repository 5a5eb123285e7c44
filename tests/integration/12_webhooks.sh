#!/usr/bin/env bash
# Webhooks (issue 6): registered through the API and the CLI (bad URLs, roles and tenants refused),
# then a loopback HTTPS receiver that checks every signature and answers 500 to its first three
# requests: every event reaches it exactly once among the acknowledged requests, the delivery
# log shows them all delivered after retries, and GET /v1/poll still returns the events.
source "$(dirname "$0")/lib.sh"
cd "$WORK" || exit 1

# ---- the receiver: HTTPS on loopback with its own CA, signature checked on every request ----
source "$ROOT/tests/integration/receiver.sh"
receiver_start "$WORK" 3 || {
    not_ok "the webhook receiver started"
    finish
}
RECEIVER=$RECEIVER_URL

export CERTKEEP_WEBHOOK_CA_FILE=$RECEIVER_CA CERTKEEP_WEBHOOK_RETRY_BASE_MS=100
start_daemon

# ---- API and CLI ----
bad() { # description body expected-message
    api POST /v1/webhooks "$2"
    check_eq "$1: 400" 400 "$STATUS"
    check_contains "$1: the message says why" "$3" "$(json .error.message)"
}
bad "plain http to another host" '{"url":"http://hooks.example.com/in"}' "https://"
# a name that only starts like a loopback address is another host (nothing resolves it here)
bad "plain http to 127.attacker.example" '{"url":"http://127.attacker.example/in"}' "https://"
bad "not a URL" '{"url":"hooks"}' "URL"
bad "ftp" '{"url":"ftp://127.0.0.1/in"}' "https://"
bad "a short secret" '{"url":"https://hooks.example.com/in","secret":"short"}' "secret"
bad "no url" '{}' "url"
bad "unknown field" '{"url":"https://hooks.example.com/in","events":["x"]}' "events"

api POST /v1/tokens '{"name":"look","role":"viewer"}'
VIEWER=$(json .token)
TOKEN=$VIEWER api POST /v1/webhooks '{"url":"https://hooks.example.com/in"}'
check_eq "a viewer cannot add a webhook: 403" 403 "$STATUS"

OUT=$(ck webhook add https://hooks.example.com/in --secret "0123456789abcdef-given" 2>&1)
check_contains "webhook add prints the webhook" "https://hooks.example.com/in" "$OUT"
check_not_contains "a given secret is not printed back" "0123456789abcdef-given" "$OUT"
OTHER_HOOK=$(ck --json webhook list | jq -r '.webhooks[0].id')
ck webhook add http://127.0.0.1:9/in >/dev/null 2>&1
check_eq "http:// to loopback is allowed" 0 "$?"
ck webhook add http://example.com/in >/dev/null 2>&1
check_eq "webhook add with plain http elsewhere fails (1)" 1 "$?"
ck webhook add >/dev/null 2>&1
check_eq "webhook add without a URL is a usage error (2)" 2 "$?"
check_eq "webhook list shows both" 2 "$(ck --json webhook list | jq '.webhooks | length')"
for id in $(ck --json webhook list | jq -r '.webhooks[].id'); do ck webhook delete "$id" >/dev/null; done
check_eq "webhook delete removes them" 0 "$(ck --json webhook list | jq '.webhooks | length')"
api GET "/v1/webhooks/$OTHER_HOOK/deliveries"
check_eq "a deleted webhook's log is gone: 404" 404 "$STATUS"

api POST /v1/webhooks "{\"url\":\"$RECEIVER\"}"
check_eq "POST /v1/webhooks answers 201" 201 "$STATUS"
HOOK=$(json .id)
json .secret >secret
check_eq "a generated secret is returned once (64 hex digits)" 64 "$(tr -dc 0-9a-f <secret | wc -c)"
api GET /v1/webhooks
check_eq "GET /v1/webhooks never shows the secret" null "$(json '.webhooks[0].secret')"

api POST /v1/tenants '{"name":"other"}'
api POST /v1/tokens '{"name":"o","role":"admin","tenant":"other"}'
OTHER=$(json .token)
TOKEN=$OTHER api GET "/v1/webhooks/$HOOK/deliveries"
check_eq "another tenant cannot read the delivery log: 404" 404 "$STATUS"
TOKEN=$OTHER api DELETE "/v1/webhooks/$HOOK"
check_eq "another tenant cannot delete the webhook: 404" 404 "$STATUS"
TOKEN=$OTHER api GET /v1/webhooks
check_eq "another tenant lists none" 0 "$(json '.webhooks | length')"

# ---- events: a manual order's ready CSR is certificate_needed ----
for name in alpha beta gamma delta; do
    ck enrollment create "$name" --cn "$name.example.com" --key ec-p256 >/dev/null 2>&1
    ck order start "$name" >/dev/null 2>&1
done
N=0
for _ in $(seq 1 100); do
    api GET /v1/events
    N=$(json '.events | length')
    [ "$N" -ge 4 ] && break
    sleep 0.1
done
check_eq "four certificate_needed events" 4 "$N"
EVENT_IDS=$(json '.events[].id' | sort -n | tr '\n' ' ')

DONE=0
for _ in $(seq 1 300); do
    api GET "/v1/webhooks/$HOOK/deliveries"
    DONE=$(json '[.deliveries[] | select(.state == "delivered")] | length')
    [ "$DONE" -ge 4 ] && break
    sleep 0.1
done
check_eq "the delivery log shows all four delivered" 4 "$DONE"
check_eq "the log has one delivery per event" "$EVENT_IDS" "$(json '.deliveries[].event_id' | sort -n | tr '\n' ' ')"
check_eq "three failed attempts were retried: 7 attempts in all" 7 "$(json '[.deliveries[].attempts] | add')"
check_eq "the last answer of each was 200" "200 200 200 200" "$(json '.deliveries[].last_status' | tr '\n' ' ' | sed 's/ $//')"
check_eq "no error is left on a delivered one" 0 "$(json '[.deliveries[] | select(.last_error != null)] | length')"

check_eq "the receiver refused three requests" 3 "$(wc -l <refused)"
check_eq "every event was received exactly once with 2xx" "$EVENT_IDS" "$(sort -n received | tr '\n' ' ')"
check "every signature verified (t=TS,v1=HMAC over TS.BODY, fresh, event id header)" test ! -s bad
check_eq "the body is the event as GET /v1/poll shows it" "id,type,enrollment,order_id,message,data,created_at" \
    "$(head -1 bodies | jq -r 'keys_unsorted | join(",")')"
check_eq "with the enrollment's name" certificate_needed "$(grep -m1 '"enrollment":"alpha"' bodies | jq -r .type)"

OUT=$(ck webhook deliveries "$HOOK")
check_contains "webhook deliveries prints the log" "delivered" "$OUT"

api GET /v1/poll
check_eq "GET /v1/poll still returns the events" certificate_needed "$(json .event.type)"
check_eq "and counts the others" 3 "$(json .remaining)"

# A new event after all that: delivered at once, and only once.
ck enrollment create epsilon --cn epsilon.example.com --key ec-p256 >/dev/null 2>&1
ck order start epsilon >/dev/null 2>&1
for _ in $(seq 1 100); do
    [ "$(wc -l <received)" -ge 5 ] && break
    sleep 0.1
done
sleep 1.5
check_eq "a later event is delivered once too" "5 5" "$(sort -u received | wc -l) $(wc -l <received)"
finish
