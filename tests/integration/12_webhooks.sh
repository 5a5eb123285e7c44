#!/usr/bin/env bash
# Webhooks (issue 6): registered through the API and the CLI (bad URLs, roles and tenants refused),
# then a loopback HTTPS receiver that checks every signature and answers 500 to its first three
# requests: every event reaches it exactly once among the acknowledged requests, the delivery
# log shows them all delivered after retries, and GET /v1/poll still returns the events.
source "$(dirname "$0")/lib.sh"
cd "$WORK" || exit 1

# ---- the receiver: HTTPS on loopback with its own CA, signature checked on every request ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext subjectAltName=IP:127.0.0.1 -keyout receiver.key -out receiver.crt 2>/dev/null
cat >receiver.py <<'PY'
import hashlib, hmac, http.server, json, os, ssl, sys, time

work = sys.argv[1]
count = {"requests": 0}

def append(name, line):
    with open(os.path.join(work, name), "a") as f:
        f.write(line + "\n")

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        count["requests"] += 1
        fields = dict(p.split("=", 1) for p in self.headers.get("X-Certkeep-Signature", "").split(",") if "=" in p)
        with open(os.path.join(work, "secret")) as f:
            secret = f.read().strip().encode()
        stamp = fields.get("t", "0")
        expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        event = json.loads(body)
        good = (hmac.compare_digest(expected, fields.get("v1", ""))
                and stamp.isdigit() and abs(time.time() - int(stamp)) < 300
                and str(event["id"]) == self.headers.get("X-Certkeep-Event-Id")
                and event["type"] == self.headers.get("X-Certkeep-Event-Type")
                and self.headers.get("Content-Type") == "application/json")
        if not good:
            append("bad", "%s %s" % (event.get("id"), self.headers.get("X-Certkeep-Signature")))
            status = 401
        elif count["requests"] <= 3:
            append("refused", str(event["id"]))
            status = 500
        else:
            append("received", str(event["id"]))
            append("bodies", body.decode())
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(os.path.join(work, "receiver.crt"), os.path.join(work, "receiver.key"))
server.socket = tls.wrap_socket(server.socket, server_side=True)
with open(os.path.join(work, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(work, "port.tmp"), os.path.join(work, "port"))
server.serve_forever()
PY
python3 receiver.py "$WORK" 2>"$WORK/receiver.log" &
EXTRA_PIDS=$!
for _ in $(seq 1 50); do [ -f port ] && break; sleep 0.1; done
RECEIVER=https://127.0.0.1:$(cat port)/hook

export CERTKEEP_WEBHOOK_CA_FILE=$WORK/receiver.crt CERTKEEP_WEBHOOK_RETRY_BASE_MS=100
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
