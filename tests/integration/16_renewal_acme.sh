#!/usr/bin/env bash
# The scheduler with an ACME CA (issue 6): a whole unattended life against pebble on loopback.
# Nobody creates, stages or deploys an order: the daemon orders the first certificate from pebble
# (http-01, answered by `serve --http`) as soon as the enrollment exists, deploys it to the
# production listener, then renews it twice, each time with a new key, deploying each renewal
# before the one in production expires. The enrollment's lifetime (60 s) goes to pebble as the
# order's notAfter, which pebble 2.4 (Debian) honours although its own validity is 5 years: the
# real certificates it signs expire in a minute and the renewal window (40 s before expiry) opens
# 20 s after issuance, so no clock is faked. Every event also reaches an HTTPS webhook once,
# signed. Then ACME Renewal Information (RFC 9773): pebble 2.4 has none, so ari_front.py adds
# renewalInfo in front of it; the CA's suggested window beats the policy window, is asked once,
# and the renewal's newOrder carries "replaces" with the certID computed here by hand. Last, the
# front refuses notAfter as Let's Encrypt does, and the order is placed again without it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/bind.sh"
source "$ROOT/tests/integration/receiver.sh"
cd "$WORK" || exit 1

if [ ! -x /usr/bin/pebble ] || [ ! -x "$BIND_NAMED" ]; then
    echo "1..0 # SKIP pebble or named is not installed"
    exit 0
fi
LIFETIME=60

# pebble resolves the names it validates through this BIND only (never the machine's resolver).
BIND_WATCH_PID=$$ bind_start "$WORK/bind" example.test || {
    not_ok "BIND started"
    exit 1
}
EXTRA_PIDS=$BIND_PID
printf 'server 127.0.0.1 %s\nupdate add api.example.test. 60 A 127.0.0.1\nupdate add ari.example.test. 60 A 127.0.0.1\nsend\n' \
    "$BIND_PORT" | nsupdate -k "$WORK/bind/tsig.key"

# pebble's HTTPS certificate, from a throwaway CA the issuer is told to trust (--ca-bundle).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=minica \
    -addext basicConstraints=critical,CA:TRUE -keyout minica.key -out minica.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout pebble.key -out pebble.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >pebble.ext
openssl x509 -req -in pebble.csr -CA minica.pem -CAkey minica.key -CAcreateserial -days 1 \
    -extfile pebble.ext -out pebble.pem 2>/dev/null
HTTP_PORT=$(free_port) # certkeep's http-01 listener, where pebble validates
PPORT=$(free_port)
MPORT=$(free_port)
cat >pebble.json <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$PPORT", "managementListenAddress": "127.0.0.1:$MPORT",
 "certificate": "$WORK/pebble.pem", "privateKey": "$WORK/pebble.key",
 "httpPort": $HTTP_PORT, "tlsPort": $(free_port), "ocspResponderURL": ""}}
JSON
PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=0 \
    pebble -config pebble.json -strict -dnsserver "127.0.0.1:$BIND_PORT" >pebble.log 2>&1 &
EXTRA_PIDS="$EXTRA_PIDS $!"
wait_for_http "https://127.0.0.1:$MPORT/roots/0" 15 || {
    not_ok "pebble started"
    tail -20 pebble.log | sed 's/^/#   /'
    exit 1
}
check_contains "pebble's own certificate validity is its default (5 years)" \
    "validity period of 157766400 seconds" "$(cat pebble.log)"
curl -s -k "https://127.0.0.1:$MPORT/roots/0" >pebble-root.pem

receiver_start "$WORK/hook" || {
    not_ok "webhook receiver started"
    exit 1
}
export CERTKEEP_WEBHOOK_CA_FILE=$RECEIVER_CA CERTKEEP_WEBHOOK_RETRY_BASE_MS=100
PRD=$(free_port)
start_daemon --http "127.0.0.1:$HTTP_PORT" --production "127.0.0.1:$PRD"
receiver_register "$WORK/hook"
check_eq "the receiver is registered as the tenant's webhook" 201 "$STATUS"

ck roots add pebble-root.pem >/dev/null 2>&1
check_eq "pebble's root added to the tenant's roots" 0 $?
ck issuer create peb --acme "https://127.0.0.1:$PPORT/dir" --ca-bundle minica.pem \
    --contact mailto:ops@example.test >/dev/null 2>&1
check_eq "issuer create peb --acme (pebble)" 0 $?
out=$(ck enrollment create api --cn api.example.test --issuer peb --challenge http-01 \
    --key ec-p256 --lifetime ${LIFETIME}s --renew-before 40s --deploy-before 30s 2>&1)
check_eq "enrollment create --issuer peb --lifetime ${LIFETIME}s --renew-before 40s --deploy-before 30s" 0 $?
[ $? -eq 0 ] || diag "$out"

# served SERIAL NOTAFTER KEYHASH ISSUER LIFETIME of the production listener's certificate for
# $NAME (api.example.test), empty when it serves none
NAME=api.example.test
served() {
    local pem
    pem=$(openssl s_client -connect "127.0.0.1:$PRD" -servername "$NAME" </dev/null \
        2>/dev/null | openssl x509 2>/dev/null) || return 0
    [ -n "$pem" ] || return 0
    printf '%s %s %s %s %s\n' \
        "$(printf '%s' "$pem" | openssl x509 -noout -serial | cut -d= -f2)" \
        "$(printf '%s' "$pem" | openssl x509 -noout -enddate | cut -d= -f2 | xargs -I{} date -d {} +%s)" \
        "$(printf '%s' "$pem" | openssl x509 -noout -pubkey | openssl sha256 | awk '{print $2}')" \
        "$(printf '%s' "$pem" | openssl x509 -noout -issuer | tr -d ' ' | cut -c1-40)" \
        "$(($(printf '%s' "$pem" | openssl x509 -noout -enddate | cut -d= -f2 | xargs -I{} date -d {} +%s) -
            $(printf '%s' "$pem" | openssl x509 -noout -startdate | cut -d= -f2 | xargs -I{} date -d {} +%s)))"
}

START=$(date +%s)
first=$(wait_served none 40)
check "the first certificate from pebble is served without any order command (within 40 s)" \
    test -n "$first"
diag "first:  $first ($(($(date +%s) - START)) s)"
second=$(wait_served "${first%% *}" 60)
check "a renewal from pebble is deployed by itself (within 60 s more)" test -n "$second"
diag "second: $second ($(($(date +%s) - START)) s)"
third=$(wait_served "${second%% *}" 60)
check "and a second renewal (within 60 s more)" test -n "$third"
diag "third:  $third ($(($(date +%s) - START)) s)"

read -r s1 e1 k1 i1 l1 <<<"$first"
read -r s2 e2 k2 _ l2 <<<"${second:-x 0 x x 0}"
read -r s3 e3 k3 _ l3 <<<"${third:-x 0 x x 0}"
check_contains "the served certificate is pebble's" "Pebble" "$i1"
# pebble backdates notBefore by a little; the lifetime asked is what bounds notAfter
check "each lives about the ${LIFETIME} s asked as notAfter, not pebble's 5 years ($l1 $l2 $l3 s)" \
    test "$l1" -le $((LIFETIME + 120)) -a "$l2" -le $((LIFETIME + 120)) -a "$l3" -le $((LIFETIME + 120))
check "each renewal has a new key (1 -> 2)" test "$k1" != "$k2"
check "each renewal has a new key (2 -> 3)" test "$k2" != "$k3"
check "and a new serial and later expiry (1 -> 2)" test "$s1" != "$s2" -a "$e2" -gt "$e1"
check "and a new serial and later expiry (2 -> 3)" test "$s2" != "$s3" -a "$e3" -gt "$e2"
check "the served certificate has not expired" test "$e3" -gt "$(date +%s)"

openssl s_client -connect "127.0.0.1:$PRD" -servername api.example.test -CAfile pebble-root.pem \
    -verify_return_error </dev/null >verify.out 2>&1
check "the served chain verifies against pebble's root" grep -q "Verify return code: 0" verify.out

api GET "/v1/orders?enrollment=api"
orders=$BODY
check "at least 3 orders, all from the scheduler" test "$(jq '.orders | length' <<<"$orders")" -ge 3
check_eq "exactly one deployed order" 1 "$(jq '[.orders[] | select(.state == "deployed")] | length' <<<"$orders")"
check "the older ones are superseded" test "$(jq '[.orders[] | select(.state == "superseded")] | length' <<<"$orders")" -ge 2
check_eq "no order failed" 0 "$(jq '[.orders[] | select(.state == "failed")] | length' <<<"$orders")"
DEPLOYED=$(jq -r '[.orders[] | select(.state == "deployed")][0].id' <<<"$orders")
api GET "/v1/orders/$DEPLOYED/certificate"
check_eq "the deployed order's certificate is the one served" "$s3" \
    "$(printf '%s' "$BODY" | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2)"

JOB=$(ck jobs --json | jq -r --argjson o "$DEPLOYED" '[.jobs[] | select(.order_id == $o and .type == "issue")][0].id')
log=$(ck job show "$JOB" --json | jq -r '.log[].message')
check_contains "the issue job says the order asked notAfter" "acme: the order asks notAfter" "$log"
check_contains "and names the certificate it renews by its ARI certID" "renews order" "$log"
check_not_contains "pebble 2.4 has no renewalInfo: no replaces is sent" "acme: the order replaces" "$log"

api GET /v1/events
count() { json "[.events[] | select(.type == \"$1\")] | length"; }
events=$(json '[.events[].type] | join(" ")')
check "renewal_started events: at least 2 (got $(count renewal_started))" test "$(count renewal_started)" -ge 2
check "certificate_issued events: at least 3 (got $(count certificate_issued))" test "$(count certificate_issued)" -ge 3
check "deployed events: at least 3 (got $(count deployed))" test "$(count deployed)" -ge 3
check_not_contains "no certificate_needed (no human step)" certificate_needed "$events"
check_not_contains "no dns_records_needed" dns_records_needed "$events"
check_not_contains "no renewal_failed" renewal_failed "$events"
check_not_contains "no expiry_near" expiry_near "$events"
check_contains "the renewal names why it started" '"basis":"explicit"' \
    "$(json -c '[.events[] | select(.type == "renewal_started")][0].data')"

receiver_check "$WORK/hook" 20
check_eq "webhook: the deployed events arrived as JSON with the enrollment" "api" \
    "$(grep '"type":"deployed"' "$WORK/hook/bodies" | head -1 | jq -r .enrollment)"

# ---- ACME Renewal Information (RFC 9773) ----
# pebble 2.4 has no renewalInfo, so a front (ari_front.py) passes every request to pebble and
# adds renewalInfo to the directory, answering it itself. For the first certificate of "ari" it
# suggests a window from 3 to 7 s after it is asked: long before the policy window (renew-before
# 10s of 60s, at 50 s), which the CA's window must beat.
mkdir -p ari
python3 "$ROOT/tests/integration/ari_front.py" "$WORK/ari" "$PPORT" pebble.pem pebble.key minica.pem \
    2>ari/front.log &
EXTRA_PIDS="$EXTRA_PIDS $!"
for _ in $(seq 1 50); do [ -f ari/port ] && break; sleep 0.1; done
ck issuer create aripeb --acme "https://127.0.0.1:$(cat ari/port)/dir" --ca-bundle minica.pem >/dev/null 2>&1
check_eq "issuer create aripeb --acme (pebble behind the ARI front)" 0 $?
echo "+3 +7 21600" >ari/window
T0=$(date +%s)
ck enrollment create ari --cn ari.example.test --issuer aripeb --challenge http-01 --key ec-p256 \
    --lifetime ${LIFETIME}s --renew-before 10s --deploy-before 50s >/dev/null 2>&1
check_eq "enrollment create ari (renew-before 10s of ${LIFETIME}s)" 0 $?
NAME=ari.example.test
afirst=$(wait_served none 40)
check "its first certificate is served" test -n "$afirst"
asecond=$(wait_served "${afirst%% *}" 40)
check "and renewed within the CA's window, long before its policy window (after $(($(date +%s) - T0)) s)" \
    test -n "$asecond"
# certID by hand (RFC 9773 4.1): base64url(AKI keyIdentifier) "." base64url(serial DER value)
ck order cert "$(ck order list --enrollment ari --json | jq -r '.orders[-1].id')" >ari-first.pem 2>/dev/null
CERT_ID=$(python3 - ari-first.pem <<'PY'
import base64, re, subprocess, sys
text = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-serial", "-ext",
                       "authorityKeyIdentifier"], capture_output=True, text=True).stdout
serial = re.search(r"serial=([0-9A-F]+)", text).group(1)
serial = ("0" + serial) if len(serial) % 2 else serial
raw = bytes.fromhex(serial)
raw = b"\0" + raw if raw[0] & 0x80 else raw
keyid = bytes.fromhex(re.search(r"((?:[0-9A-F]{2}:)+[0-9A-F]{2})", text.split("Identifier", 1)[1]).group(1).replace(":", ""))
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
print(b64(keyid) + "." + b64(raw))
PY
)
read -r asked_id ASKED <<<"$(head -1 ari/asked)"
check_eq "the scheduler asked renewalInfo for the production certificate's certID" "$CERT_ID" \
    "$asked_id"
check_eq "once (twice a day at most; Retry-After 6 h)" 1 "$(grep -c "^$CERT_ID " ari/asked)"
api GET /v1/events
started=$(json -c '[.events[] | select(.type == "renewal_started" and .enrollment == "ari")][0].data')
check_eq "renewal_started says the CA's window decided (basis ari, the window given)" \
    "ari $((ASKED + 3)) $((ASKED + 7))" "$(jq -r '"\(.basis) \(.ari_window.start) \(.ari_window.end)"' <<<"$started")"
at=$(date -d "$(json '[.events[] | select(.type == "renewal_started" and .enrollment == "ari")][0].created_at')" +%s)
check "it started inside the window (asked at T0+$((ASKED - T0)) s, started at T0+$((at - T0)) s; the policy says T0+50 s or later)" \
    test "$at" -ge $((ASKED + 3)) -a "$at" -le $((ASKED + 9))
check_contains "the daemon logs the window the CA suggested" \
    "($CERT_ID): the CA suggests renewing between $(date -u -d @$((ASKED + 3)) +%Y-%m-%dT%H:%M:%SZ)" \
    "$(cat "$DAEMON_LOG")"
check_eq "the first newOrder named no certificate to replace" null "$(head -1 ari/orders | jq -r .replaces)"
check_eq "the renewal's newOrder carries replaces: the certID" "$CERT_ID" \
    "$(sed -n 2p ari/orders | jq -r .replaces)"
check "and pebble issued it (the renewal is served: new serial)" test "${asecond%% *}" != "${afirst%% *}"
for _ in $(seq 1 20); do # the new production certificate is asked about at once: 404 here
    api GET /v1/enrollments/ari
    [ "$(json '.renewal_info.last_error // empty')" != "" ] && break
    sleep 0.5
done
check_eq "enrollment show: the new certificate's renewal info (asked once, no window, 404)" \
    "true null 43200" \
    "$(json '"\(.renewal_info.offered) \(.renewal_info.window) \((.renewal_info.next_check_at | fromdate) - (.renewal_info.checked_at | fromdate))"')"
check_contains "with the CA's answer as the error" "HTTP 404" "$(json .renewal_info.last_error)"
api GET /v1/enrollments/api
check_eq "an enrollment of plain pebble: no renewalInfo offered" "false null" \
    "$(json '"\(.renewal_info.offered) \(.renewal_info.window)"')"

# ---- a CA that refuses notAfter (as Let's Encrypt does): ordered again without it ----
touch ari/refuse_not_after
printf 'server 127.0.0.1 %s\nupdate add le.example.test. 60 A 127.0.0.1\nsend\n' "$BIND_PORT" |
    nsupdate -k "$WORK/bind/tsig.key"
ck enrollment create le --cn le.example.test --issuer aripeb --challenge http-01 --key ec-p256 \
    --lifetime ${LIFETIME}s >/dev/null 2>&1
NAME=le.example.test
lefirst=$(wait_served none 40)
check "an enrollment whose CA refuses notAfter still gets its certificate" test -n "$lefirst"
read -r _ _ _ _ lelife <<<"${lefirst:-x 0 x x 0}"
check "with the CA's own lifetime ($lelife s), not the one asked" test "$lelife" -gt 86400
check_eq "the refused newOrder had notAfter, the next one not" "true false" \
    "$(grep '"le.example.test"' ari/orders | head -2 | jq -r 'has("notAfter")' | tr '\n' ' ' | sed 's/ $//')"
LE_ORDER=$(ck order list --enrollment le --json | jq -r '.orders[0].id')
JOB=$(ck jobs --json | jq -r --argjson o "$LE_ORDER" '[.jobs[] | select(.order_id == $o and .type == "issue")][0].id')
check_contains "the job log says so" "the CA refused notAfter or replaces: ordered without them" \
    "$(ck job show "$JOB" --json | jq -r '.log[].message')"

finish
