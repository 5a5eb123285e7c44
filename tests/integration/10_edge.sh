#!/usr/bin/env bash
# The edge: staging and production listeners, stage and staging test, acknowledgement, deploy
# (now and at a date), supersede, rollback, hot reload under load, http-01 listener (seeds 000,
# 002, 004).
source "$(dirname "$0")/lib.sh"
STG=$(free_port)
PRD=$(free_port)
HTP=$(free_port)
# --edge-cache 16, the smallest cache: every certificate of this scenario still serves.
start_daemon --no-scheduler --staging "127.0.0.1:$STG" --production "127.0.0.1:$PRD" \
    --http "127.0.0.1:$HTP" --edge-cache 16
cd "$WORK" || exit 1

for bad in 0 15 x 10000001; do
    out=$("$CERTKEEP" serve --data "$DATA" --api 127.0.0.1:1 --edge-cache "$bad" 2>&1)
    check_eq "serve --edge-cache $bad is a usage error (exit 2)" 2 $?
done
check_contains "and the message says the range" "from 16 to 10000000" "$out"

# A private CA made by the test: root -> intermediate -> leaves.
source "$ROOT/tests/integration/testca.sh"
testca_make Edge

ck roots add ca/root.crt >/dev/null 2>&1
ck enrollment create shop --cn shop.example.com --san '*.shop.example.com' --key ec-p256 >/dev/null 2>"$WORK/enroll.err"
check_eq "enrollment with a wildcard name" 0 $?

# new_order DAYS -> ORDER: an order whose certificate (signed by the intermediate) is issued.
new_order() { testca_issue shop "$1"; }
order_state() { ck order show "$1" --json | jq -r .state; }
serial_of() { openssl x509 -noout -serial -in "$1" | cut -d= -f2; }
served_serial() { # port name
    openssl s_client -connect "127.0.0.1:$1" -servername "$2" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
fetch() { # port name -> body
    curl -s --max-time 5 --resolve "$2:$1:127.0.0.1" --cacert ca/root.crt "https://$2:$1/"
}
# wait_job ORDER TYPE -> JOB (finished or failed), within 20 s
wait_job() {
    local i state
    for i in $(seq 1 200); do
        api GET "/v1/jobs?order=$1&type=$2"
        JOB=$(json '.jobs[0].id // empty')
        state=$(json '.jobs[0].state // empty')
        [ "$state" = finished ] || [ "$state" = failed ] && return 0
        sleep 0.1
    done
    return 1
}

new_order 90
O1=$ORDER
check_eq "first order issued" issued "$(order_state "$O1")"

ck order stage "$O1" >/dev/null 2>"$WORK/stage.err"
check_eq "order stage" 0 $?
check_eq "staged" staged "$(order_state "$O1")"

S=$(openssl s_client -connect "127.0.0.1:$STG" -servername shop.example.com -showcerts </dev/null 2>/dev/null)
check_eq "staging serves the full chain (leaf + intermediate)" 2 "$(printf '%s' "$S" | grep -c 'BEGIN CERTIFICATE')"
check_eq "staging serves the order's certificate" "$(serial_of "o$O1.crt")" "$(served_serial "$STG" shop.example.com)"
check_eq "curl with the private root reads OK on staging" OK "$(fetch "$STG" shop.example.com)"
check_eq "a wildcard name is served" OK "$(fetch "$STG" a.shop.example.com)"
U=$(openssl s_client -connect "127.0.0.1:$STG" -servername unknown.example.org </dev/null 2>&1)
check_contains "an unknown name gets an alert" "alert" "$U"
check_not_contains "an unknown name gets no certificate" "BEGIN CERTIFICATE" "$U"
check "production does not serve a staged certificate" test -z "$(fetch "$PRD" shop.example.com)"

wait_job "$O1" staging_test
check_eq "staging_test job finished" finished "$(json '.jobs[0].state')"
api GET "/v1/jobs/$JOB"
check_eq "staging_test: one passed line per name" 2 "$(json '[.log[].message | select(test("passed \\("))] | length')"
check_contains "the wildcard tested with a test label" "certkeep-test.shop.example.com: passed" "$BODY"
api GET "/v1/events?order=$O1"
check_contains "event staging_test_passed" staging_test_passed "$BODY"

api GET "/v1/edge?enrollment=shop"
check_eq "/v1/edge lists staging" "127.0.0.1:$STG" "$(json '.staging[0]')"
check_eq "/v1/edge lists production" "127.0.0.1:$PRD" "$(json '.production[0]')"
check_eq "/v1/edge lists http" "127.0.0.1:$HTP" "$(json '.http[0]')"
check_eq "/v1/edge hosts line (seed 000)" "127.0.0.1 shop.example.com" "$(json '.hosts.staging[0]')"
check_contains "certkeep edge prints the hosts lines" "127.0.0.1 certkeep-test.shop.example.com" "$(ck edge --enrollment shop)"

# Seed 002: always test on staging -> the acknowledgement is required.
api PATCH /v1/enrollments/shop '{"policy":{"always_test_on_staging":true}}'
check_eq "enrollment: always_test_on_staging" true "$(json .policy.always_test_on_staging)"
api POST "/v1/orders/$O1/deploy" '{}'
check_eq "deploy refused without the staging acknowledgement (409)" "409 staging_not_acknowledged" "$STATUS $(json .error.code)"
check_contains "the refusal names the command" "ack-staging $O1" "$(json .error.message)"
ck order ack-staging "$O1" >/dev/null
check_eq "ack-staging" 0 $?
ck order deploy "$O1" >/dev/null 2>"$WORK/deploy.err"
check_eq "deploy after the acknowledgement" deployed "$(order_state "$O1")"
check_eq "production serves it" OK "$(fetch "$PRD" shop.example.com)"
wait_job "$O1" probe
check_eq "probe job finished (seed 004)" finished "$(json '.jobs[0].state')"
api GET "/v1/jobs/$JOB"
check_contains "probe logs the new expiry date" "new expiry date" "$BODY"
check_contains "probe: the production chain verifies" "chain valid" "$BODY"

# A second order, deployed while a client keeps connecting: not one failure (hot reload).
new_order 60
O2=$ORDER
ck order stage "$O2" >/dev/null && ck order ack-staging "$O2" >/dev/null
: >loop.out
(for i in $(seq 1 200); do fetch "$PRD" shop.example.com >>loop.out || echo FAIL >>loop.out; echo >>loop.out; done) &
LOOP=$!
sleep 0.3
ck order deploy "$O2" >/dev/null
wait "$LOOP"
check_eq "200 requests during a deploy: all OK" 200 "$(grep -c '^OK$' loop.out)"
check_eq "second order deployed" deployed "$(order_state "$O2")"
check_eq "first order superseded" superseded "$(order_state "$O1")"
check_eq "production serves the second certificate" "$(serial_of "o$O2.crt")" "$(served_serial "$PRD" shop.example.com)"

api POST "/v1/orders/$O1/rollback" '{}'
check_eq "rollback from an order not in production is refused (409)" 409 "$STATUS"
ck order rollback "$O2" >/dev/null 2>"$WORK/rollback.err"
check_eq "order rollback" 0 $?
check_eq "after rollback the first order is deployed" deployed "$(order_state "$O1")"
check_eq "after rollback the second is superseded" superseded "$(order_state "$O2")"
check_eq "production serves the first certificate again" "$(serial_of "o$O1.crt")" "$(served_serial "$PRD" shop.example.com)"

# Deploy at a date: stored, answered 202, done by the daemon when the time comes; a production
# file target gets the certificate too.
mkdir -p "$WORK/target"
ck target add shop --environment production --dir "$WORK/target" --reload true >/dev/null 2>&1
check_eq "a production file target" 0 $?
new_order 30
O3=$ORDER
ck order stage "$O3" >/dev/null && ck order ack-staging "$O3" >/dev/null
AT=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
api POST "/v1/orders/$O3/deploy" "{\"not_before\":\"$AT\"}"
check_eq "deploy with a future not_before: 202 with deploy_at" "202 $AT" "$STATUS $(json .deploy_at)"
check_eq "not deployed before its date" staged "$(order_state "$O3")"
for i in $(seq 1 80); do [ "$(order_state "$O3")" = deployed ] && break; sleep 0.1; done
check_eq "deployed once the date passed" deployed "$(order_state "$O3")"
check_eq "production serves the third certificate" "$(serial_of "o$O3.crt")" "$(served_serial "$PRD" shop.example.com)"
wait_job "$O3" deploy
check_eq "deploy job (file target) finished" finished "$(json '.jobs[0].state')"
check_eq "the target's cert.pem is the third certificate" "$(serial_of "o$O3.crt")" "$(serial_of "$WORK/target/cert.pem")"
check_eq "the target's key.pem is 0600" 600 "$(stat -c %a "$WORK/target/key.pem")"

# TLS 1.2 and 1.3 only.
T=$(openssl s_client -connect "127.0.0.1:$PRD" -servername shop.example.com -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1)
check_not_contains "TLS 1.1 refused" "BEGIN CERTIFICATE" "$(printf '%s' "$T" | grep -v '^depth')"
check_contains "TLS 1.1 handshake fails" "alert" "$T"

# The http-01 listener.
R=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: shop.example.com' "http://127.0.0.1:$HTP/path?q=1")
check_eq "http listener redirects to https" "301 https://shop.example.com/path?q=1" "$R"
R=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTP/.well-known/acme-challenge/unknownToken_1")
check_eq "an unknown http-01 token is 404" 404 "$R"

finish
