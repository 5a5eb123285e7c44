#!/usr/bin/env bash
# The scheduler (issue 6): a whole unattended life with the local CA and a 40-second certificate.
# Nobody creates, stages or deploys an order: the daemon starts the first order as soon as the
# enrollment exists, deploys it to the production listener, then renews it twice (new key,
# later expiry each time) when the 30-second renewal window opens, deploying each renewal
# 25 seconds before the one in production expires; every event of that life reaches an HTTPS
# webhook once, signed. With faketime (when installed): a 1-year DV certificate bought by hand
# is not renewed today, and is renewed when the daemon runs 346 days later (the 20-day DV
# default): the manual issuer's renewal order gets a CSR whose job artifact is downloadable and
# a certificate_needed event naming it.
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/integration/receiver.sh"
cd "$WORK" || exit 1

receiver_start "$WORK/hook" || {
    not_ok "webhook receiver started"
    exit 1
}
export CERTKEEP_WEBHOOK_CA_FILE=$RECEIVER_CA CERTKEEP_WEBHOOK_RETRY_BASE_MS=100
PRD=$(free_port)
STG=$(free_port)
start_daemon --production "127.0.0.1:$PRD" --staging "127.0.0.1:$STG"
receiver_register "$WORK/hook"
check_eq "a webhook receiver is registered for the tenant" 201 "$STATUS"

ck ca init >/dev/null 2>&1
check_eq "ca init" 0 $?
ck ca root >root.pem 2>/dev/null
ck issuer create mine --local >/dev/null 2>&1
check_eq "issuer create mine --local" 0 $?
out=$(ck enrollment create api --cn api.example.com --issuer mine --lifetime 40s \
    --renew-before 30s --deploy-before 25s 2>&1)
check_eq "enrollment create with --lifetime 40s --renew-before 30s --deploy-before 25s" 0 $?
[ $? -eq 0 ] || diag "$out"

# served SERIAL NOTAFTER KEYHASH of the production listener's certificate for api.example.com,
# empty when it serves none
served() {
    local pem
    pem=$(openssl s_client -connect "127.0.0.1:$PRD" -servername api.example.com </dev/null \
        2>/dev/null | openssl x509 2>/dev/null) || return 0
    [ -n "$pem" ] || return 0
    printf '%s %s %s\n' \
        "$(printf '%s' "$pem" | openssl x509 -noout -serial | cut -d= -f2)" \
        "$(printf '%s' "$pem" | openssl x509 -noout -enddate | cut -d= -f2 | xargs -I{} date -d {} +%s)" \
        "$(printf '%s' "$pem" | openssl x509 -noout -pubkey | openssl sha256 | awk '{print $2}')"
}

START=$(date +%s)
first=$(wait_served none 30)
check "the first certificate is served without any order command (within 30 s)" test -n "$first"
diag "first:  $first ($(($(date +%s) - START)) s)"
second=$(wait_served "${first%% *}" 45)
check "a renewal is deployed by itself (within 45 s more)" test -n "$second"
diag "second: $second ($(($(date +%s) - START)) s)"
third=$(wait_served "${second%% *}" 45)
check "and a second renewal (within 45 s more)" test -n "$third"
diag "third:  $third ($(($(date +%s) - START)) s)"

read -r s1 e1 k1 <<<"$first"
read -r s2 e2 k2 <<<"${second:-x 0 x}"
read -r s3 e3 k3 <<<"${third:-x 0 x}"
check "each renewal has a new key (1 -> 2)" test "$k1" != "$k2"
check "each renewal has a new key (2 -> 3)" test "$k2" != "$k3"
check "and a later expiry (1 -> 2)" test "$e2" -gt "$e1"
check "and a later expiry (2 -> 3)" test "$e3" -gt "$e2"
# The renewal is deployed 25 s before expiry at the latest: what is served is never expired.
now=$(date +%s)
check "the served certificate has not expired" test "$e3" -gt "$now"

# The chain the listener serves verifies against the local CA's root.
openssl s_client -connect "127.0.0.1:$PRD" -servername api.example.com -CAfile root.pem \
    -verify_return_error </dev/null >verify.out 2>&1
check "the served chain verifies against the local CA's root" grep -q "Verify return code: 0" verify.out

api GET /v1/events
events=$(json '[.events[].type] | join(" ")')
count() { json "[.events[] | select(.type == \"$1\")] | length"; }
check "renewal_started events: at least 2 (got $(count renewal_started))" test "$(count renewal_started)" -ge 2
check "certificate_issued events: at least 3 (got $(count certificate_issued))" test "$(count certificate_issued)" -ge 3
check "deployed events: at least 3 (got $(count deployed))" test "$(count deployed)" -ge 3
# The scheduler stages each order; its staging test must wait for the listener to serve it.
check "staging_test_passed events: at least 3 (got $(count staging_test_passed))" \
    test "$(count staging_test_passed)" -ge 3
check_not_contains "no staging_test_failed" staging_test_failed "$events"
case $events in
*staging_test_failed*)
    diag "$(json -c '[.events[] | select(.type == "staging_test_failed")]')"
    api GET "/v1/jobs?type=staging_test&state=failed"
    for id in $(json '.jobs[].id'); do
        api GET "/v1/jobs/$id"
        diag "job $id: $(json -c '.log')"
    done
    grep 'edge' "$DAEMON_LOG" | tail -n 20 | while IFS= read -r line; do diag "$line"; done
    ;;
esac
check_not_contains "no certificate_needed (no human step)" certificate_needed "$events"
check_not_contains "no warnings_to_acknowledge" warnings_to_acknowledge "$events"
check_not_contains "no order failed" renewal_failed "$events"
check_contains "the renewal names why it started" '"basis"' "$(json -c '[.events[] | select(.type == "renewal_started")][0].data')"

api GET "/v1/orders?enrollment=api"
orders=$BODY
check "at least 3 orders, all from the scheduler" test "$(printf '%s' "$orders" | jq '.orders | length')" -ge 3
check_eq "exactly one deployed order" 1 "$(printf '%s' "$orders" | jq '[.orders[] | select(.state == "deployed")] | length')"
check "the older ones are superseded" test "$(printf '%s' "$orders" | jq '[.orders[] | select(.state == "superseded")] | length')" -ge 2

api GET /v1/events
started=$(count renewal_started)
receiver_check "$WORK/hook" 20
check_eq "webhook: the renewal_started events arrived with their data" "$started" \
    "$(grep -c '"type":"renewal_started".*"basis"' "$WORK/hook/bodies")"

# ---- an unknown serve option value ----
out=$("$CERTKEEP" serve --data "$DATA" --api 127.0.0.1:1 --max-concurrent-orders 0 2>&1)
check_eq "--max-concurrent-orders 0 is a usage error (exit 2)" 2 $?
check_contains "and says the range" "from 1 to" "$out"

stop_daemon
check_eq "daemon stopped cleanly on SIGTERM with the scheduler running" 0 "$DAEMON_STATUS"

# ---- faketime: the real 20-day DV default ----
if ! command -v faketime >/dev/null 2>&1; then
    echo "ok - # SKIP faketime is not installed (apt-get install faketime)"
    finish
fi
# A 1-year DV certificate for a manual enrollment, signed by a throwaway CA and imported by hand.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 3650 -subj "/CN=Test Root" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
start_daemon --no-scheduler
ck roots add ca.pem >/dev/null 2>&1
ck enrollment create shop --cn shop.example.com --validation dv >/dev/null 2>&1
api POST /v1/enrollments/shop/orders '{}'
ORDER=$(json .id)
for i in $(seq 1 50); do
    api GET "/v1/orders/$ORDER"
    [ "$(json .state)" = csr_ready ] && break
    sleep 0.1
done
ck order csr "$ORDER" >shop.csr 2>/dev/null
openssl x509 -req -in shop.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -out shop.pem \
    -extfile <(printf 'subjectAltName=DNS:shop.example.com\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n') >/dev/null 2>&1
ck order import "$ORDER" --cert shop.pem >import.out 2>&1
check_eq "the 1-year certificate is imported by hand" 0 $?
ck order stage "$ORDER" >/dev/null 2>&1
ck order deploy "$ORDER" >/dev/null 2>&1
api GET "/v1/orders/$ORDER"
check_eq "and deployed by hand" deployed "$(json .state)"
stop_daemon

orders_of_shop() {
    api GET "/v1/orders?enrollment=shop"
    json '.orders | length'
}
start_daemon
sleep 3
check_eq "today: no renewal of a certificate with 364 days left" 1 "$(orders_of_shop)"
stop_daemon

export FAKETIME="+346d"
FAKE_LIB=$(ls /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 2>/dev/null | head -1)
# ASan wants its runtime first among the libraries; libfaketime preloaded before it is harmless
# (it only wraps the clock calls), so the order check is off for this daemon only.
ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 LD_PRELOAD=$FAKE_LIB start_daemon
for i in $(seq 1 20); do
    [ "$(orders_of_shop)" = 2 ] && break
    sleep 0.5
done
check_eq "346 days later (19 days left, DV window 20 days): the renewal has started" 2 "$(orders_of_shop)"
api GET /v1/events
check_contains "with a renewal_started event" renewal_started "$(json '[.events[].type] | join(" ")')"
RENEWAL=$(ck order list --enrollment shop --json | jq -r '.orders[0].id')
needed=""
for i in $(seq 1 20); do
    api GET /v1/events
    needed=$(json -c --argjson o "$RENEWAL" '[.events[] | select(.type == "certificate_needed" and .order_id == $o)][0] // empty')
    [ -n "$needed" ] && break
    sleep 0.5
done
check_contains "and the CSR-ready event of a manual issuer, for the renewal order" certificate_needed "$needed"
ARTIFACT=$(jq -r '.data.artifact // empty' <<<"$needed")
CSR_JOB=$(jq -r '.data.job_id // empty' <<<"$needed")
check_eq "the event names the CSR job's artifact" "/v1/jobs/$CSR_JOB/artifacts/csr" "$ARTIFACT"
api GET "/v1/jobs/$CSR_JOB"
check_eq "that job is the renewal order's csr job" "csr $RENEWAL" "$(json '"\(.type) \(.order_id)"')"
curl -s -o artifact.csr -w '%{http_code} %{content_type}' -H "Authorization: Bearer $CERTKEEP_TOKEN" \
    "$CERTKEEP_ADDR$ARTIFACT" >artifact.status
check_eq "GET the artifact: 200 application/pkcs10" "200 application/pkcs10" "$(cat artifact.status)"
ck order csr "$RENEWAL" >renewal.csr 2>/dev/null
check "the artifact's bytes are the renewal order's CSR" cmp artifact.csr renewal.csr
ck job artifact "$CSR_JOB" csr >cli-artifact.csr 2>/dev/null
check "certkeep job artifact gives the same bytes" cmp cli-artifact.csr renewal.csr
check_contains "for the enrollment's name" "DNS:shop.example.com" \
    "$(openssl req -in artifact.csr -noout -text 2>/dev/null | grep -A1 'Subject Alternative Name')"
check "with a new key (not the one in production)" test \
    "$(openssl req -in artifact.csr -noout -pubkey | openssl sha256)" != \
    "$(openssl x509 -in shop.pem -noout -pubkey | openssl sha256)"
unset FAKETIME
finish
