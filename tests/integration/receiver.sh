# tests/integration/receiver.sh — a loopback HTTPS webhook receiver for the scenarios that check
# webhook deliveries alongside something else (13, 16). It checks every request's signature
# (X-Certkeep-Signature: t=TS,v1=HMAC-SHA256(secret, "TS.BODY")), its freshness and its event
# headers, and answers 200 to every good one (500 to the first N good ones when asked, to make
# certkeep retry).
#
#   source tests/integration/receiver.sh
#   receiver_start DIR [N]  starts it with its own certificate in DIR, refusing the first N good
#                        requests with 500 (DIR/refused); sets RECEIVER_URL and RECEIVER_CA (the
#                        certificate to pass as CERTKEEP_WEBHOOK_CA_FILE) and adds its pid to
#                        EXTRA_PIDS
#   DIR/secret           the webhook's secret, written by the scenario once the webhook exists;
#                        until then every request is answered 503 (and retried by certkeep)
#   DIR/received         one event id per acknowledged request
#   DIR/bodies           the bodies of the acknowledged requests, one JSON per line
#   DIR/bad              one line per request whose signature or headers did not check

receiver_start() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=127.0.0.1" -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$dir/receiver.key" -out "$dir/receiver.crt" 2>/dev/null
    touch "$dir/received" "$dir/bodies" "$dir/bad" "$dir/refused"
    cat >"$dir/receiver.py" <<'PY'
import hashlib, hmac, http.server, json, os, ssl, sys, time

work = sys.argv[1]
refuse_first = int(sys.argv[2])
good_requests = [0]

def append(name, line):
    with open(os.path.join(work, name), "a") as f:
        f.write(line + "\n")

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            with open(os.path.join(work, "secret")) as f:
                secret = f.read().strip().encode()
        except OSError:
            secret = b""
        status = 503
        if secret:
            fields = dict(p.split("=", 1)
                          for p in self.headers.get("X-Certkeep-Signature", "").split(",")
                          if "=" in p)
            stamp = fields.get("t", "0")
            expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            event = json.loads(body)
            good = (hmac.compare_digest(expected, fields.get("v1", ""))
                    and stamp.isdigit() and abs(time.time() - int(stamp)) < 300
                    and str(event["id"]) == self.headers.get("X-Certkeep-Event-Id")
                    and event["type"] == self.headers.get("X-Certkeep-Event-Type")
                    and self.headers.get("Content-Type") == "application/json")
            if good:
                good_requests[0] += 1
            if good and good_requests[0] <= refuse_first:
                append("refused", str(event["id"]))
                status = 500
            elif good:
                append("received", str(event["id"]))
                append("bodies", body.decode())
                status = 200
            else:
                append("bad", "%s %s" % (event.get("id"), self.headers.get("X-Certkeep-Signature")))
                status = 401
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
    python3 "$dir/receiver.py" "$dir" "${2:-0}" 2>"$dir/receiver.log" &
    EXTRA_PIDS="${EXTRA_PIDS:-} $!"
    local i
    for i in $(seq 1 50); do
        [ -f "$dir/port" ] && break
        sleep 0.1
    done
    [ -f "$dir/port" ] || return 1
    RECEIVER_URL=https://127.0.0.1:$(cat "$dir/port")/hook
    RECEIVER_CA=$dir/receiver.crt
}

# receiver_register DIR: registers RECEIVER_URL as a webhook of the caller's tenant (api from
# lib.sh) and hands its secret to the receiver; sets RECEIVER_HOOK (the webhook's id) and
# RECEIVER_AFTER (the newest event before it: a webhook receives the events after it was added)
receiver_register() {
    api GET /v1/events
    RECEIVER_AFTER=$(json '[.events[].id] | max // 0')
    api POST /v1/webhooks "{\"url\":\"$RECEIVER_URL\"}"
    RECEIVER_HOOK=$(json .id)
    json .secret >"$1/secret.tmp" && mv "$1/secret.tmp" "$1/secret"
}

# receiver_check DIR SECONDS: waits until every event of the tenant (GET /v1/events) since the
# webhook was added was acknowledged, then checks each was received exactly once with a good signature
receiver_check() {
    local dir=$1 i ids got
    for i in $(seq 1 $(($2 * 5))); do
        api GET /v1/events
        ids=$(json --argjson a "$RECEIVER_AFTER" '.events[].id | select(. > $a)' | sort -n | tr '\n' ' ')
        got=$(sort -nu "$dir/received" | tr '\n' ' ')
        [ -n "$ids" ] && [ "$ids" = "$got" ] && break
        sleep 0.2
    done
    check_eq "webhook: every event reached the receiver (ids)" "$ids" "$got"
    check_eq "webhook: each exactly once" "$(sort -n "$dir/received" | uniq | wc -l)" "$(wc -l <"$dir/received")"
    check "webhook: every signature verified (t=TS,v1=HMAC over TS.BODY, fresh, event headers)" \
        test ! -s "$dir/bad"
    api GET "/v1/webhooks/$RECEIVER_HOOK/deliveries"
    check_eq "webhook: the delivery log shows each delivered" \
        "$(printf '%s' "$ids" | wc -w)" "$(json '[.deliveries[] | select(.state == "delivered")] | length')"
}
