#!/usr/bin/env bash
# Enrollments: create, list, show, update, delete, validation and pre-fill (seed 004).
source "$(dirname "$0")/lib.sh"
start_daemon

ck enrollment create shop --cn shop.example.com --san www.shop.example.com --org "Example Ltd" \
    --ou Web --locality Paris --state IDF --country FR --key ec-p256 --validation ov \
    --contact ops@example.com >"$WORK/create.out" 2>&1
check_eq "enrollment create (the issue's example) exits 0" 0 $?
BODY=$(ck enrollment show shop --json)
check_eq "CN" shop.example.com "$(json .cn)"
check_eq "the CN is among the SANs" '["shop.example.com","www.shop.example.com"]' "$(json -c .sans)"
check_eq "subject fields" '{"o":"Example Ltd","ou":"Web","l":"Paris","st":"IDF","c":"FR"}' "$(json -c '.subject | {o,ou,l,st,c}')"
check_eq "key type" ec-p256 "$(json .key_type)"
check_eq "validation" ov "$(json .validation)"
check_eq "issuer defaults to manual" manual "$(json .issuer)"
check_eq "contacts" '["ops@example.com"]' "$(json -c .contacts)"
human=$(ck enrollment show shop)
check_contains "human view shows the SANs" "www.shop.example.com" "$human"
check_contains "enrollment list shows it" shop "$(ck enrollment list)"

ck enrollment update shop --san api.shop.example.com --key rsa-3072 --renew-before 30d >/dev/null 2>&1
BODY=$(ck enrollment show shop --json)
check_eq "update changes the key type" rsa-3072 "$(json .key_type)"
check_eq "update changes the SANs, keeping the CN" '["shop.example.com","api.shop.example.com"]' "$(json -c .sans)"
check_eq "update keeps what it was not given" "Example Ltd" "$(json .subject.o)"
check_eq "policy renew_before" 30d "$(json .policy.renew_before)"

for bad in "bad_name.example.com" "www.*.example.com" "-x.example.com" "xn--zz.example.com" "localhost"; do
    api POST /v1/enrollments "{\"name\":\"b\",\"cn\":\"ok.example.com\",\"sans\":[\"$bad\"]}"
    check_eq "hostname $bad is refused (400)" 400 "$STATUS"
    check_contains "and the error names it" "$bad" "$(json .error.message)"
done
api POST /v1/enrollments '{"name":"w","cn":"*.example.com"}'
check_eq "a wildcard CN as the whole leftmost label is accepted" 201 "$STATUS"
err=$(ck enrollment create weak --cn weak.example.com --key rsa-1024 2>&1 >/dev/null)
check_eq "rsa-1024 is refused by the CLI with exit 1" 1 $?
check_contains "with a message saying why" 2048 "$err"
api POST /v1/enrollments '{"name":"x","cn":"x.example.com","colour":"blue"}'
check_eq "an unknown field is 400" "400 unknown_field" "$STATUS $(json .error.code)"
check_contains "naming the field" colour "$(json .error.message)"
api POST /v1/enrollments '{"name":"x","cn":'
check_eq "malformed JSON is 400" "400 malformed_json" "$STATUS $(json .error.code)"
api POST /v1/enrollments '{"name":"x","cn":"x.example.com","subject":{"c":"France"}}'
check_eq "a country that is not two letters is 400" 400 "$STATUS"
api POST /v1/enrollments '{"name":"shop","cn":"dup.example.com"}'
check_eq "a duplicate name is 409" "409 enrollment_exists" "$STATUS $(json .error.code)"
api POST /v1/enrollments '{"name":"x","cn":"x.example.com","key_type":"dsa-1024"}'
check_eq "an unknown key type is 400" 400 "$STATUS"
head -c 1100000 /dev/zero | tr '\0' 'a' >"$WORK/big"
printf '{"name":"big","cn":"big.example.com","contacts":["' >"$WORK/big.json"
cat "$WORK/big" >>"$WORK/big.json"
printf '"]}' >>"$WORK/big.json"
api POST /v1/enrollments "@$WORK/big.json"
check_eq "a body over 1 MiB is 413 with a JSON error" "413 body_too_large" "$STATUS $(json .error.code)"
api GET /v1/enrollments
check_eq "none of the bad requests created anything" '["shop","w"]' "$(json -c '[.enrollments[].name] | sort')"

# Pre-fill from a PEM certificate.
openssl req -x509 -newkey rsa:3072 -nodes -days 30 -keyout "$WORK/live.key" -out "$WORK/live.crt" \
    -subj "/C=DE/ST=Berlin/L=Berlin/O=Live GmbH/OU=Ops/CN=live.example.org" \
    -addext "subjectAltName=DNS:live.example.org,DNS:www.live.example.org" 2>/dev/null
ck enrollment create fromcert --from-cert "$WORK/live.crt" >/dev/null 2>&1
check_eq "create from a PEM certificate" 0 $?
BODY=$(ck enrollment show fromcert --json)
check_eq "copies CN" live.example.org "$(json .cn)"
check_eq "copies SANs" '["live.example.org","www.live.example.org"]' "$(json -c .sans)"
check_eq "copies subject fields" '{"o":"Live GmbH","ou":"Ops","l":"Berlin","st":"Berlin","c":"DE"}' "$(json -c '.subject | {o,ou,l,st,c}')"
check_eq "copies the key type" rsa-3072 "$(json .key_type)"

# Pre-fill from a live HOST:PORT served by openssl s_server on loopback, chosen by SNI.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -days 30 -keyout "$WORK/other.key" \
    -out "$WORK/other.crt" -subj "/O=Other/CN=other.example.net" 2>/dev/null
LPORT=$(free_port)
openssl s_server -accept "127.0.0.1:$LPORT" -cert "$WORK/other.crt" -key "$WORK/other.key" \
    -servername live.example.org -cert2 "$WORK/live.crt" -key2 "$WORK/live.key" -www -quiet >/dev/null 2>&1 &
EXTRA_PIDS=$!
for i in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$LPORT) 2>/dev/null && break; sleep 0.1; done
ck enrollment create fromhost --from-host "127.0.0.1:$LPORT" --sni live.example.org --key ec-p256 >/dev/null 2>"$WORK/fromhost.err" || diag "$(cat "$WORK/fromhost.err")"
check_eq "create from a live HOST:PORT with SNI" 0 $?
BODY=$(ck enrollment show fromhost --json)
check_eq "copies the served certificate's CN (chosen by SNI)" live.example.org "$(json .cn)"
check_eq "copies its SANs" '["live.example.org","www.live.example.org"]' "$(json -c .sans)"
check_eq "a field given explicitly wins over the copied one" ec-p256 "$(json .key_type)"
api POST "/v1/enrollments?from_host=127.0.0.1:$LPORT" '{"name":"fromquery"}'
check_eq "?from_host= without SNI gets the default certificate" "201 other.example.net ec-p384" "$STATUS $(json .cn) $(json .key_type)"
api POST /v1/enrollments "{\"name\":\"dead\",\"from_host\":\"127.0.0.1:$(free_port)\"}"
check_eq "an unreachable host is a clear 4xx/5xx error, nothing created" "true" "$([ "$STATUS" -ge 400 ] && echo true)"

ck enrollment delete w >/dev/null 2>&1
api GET /v1/enrollments/w
check_eq "delete removes it" 404 "$STATUS"

# Paging: 150 enrollments in a tenant of their own come 100 at a time, by name.
api POST /v1/tenants '{"name":"many"}'
MANY=$(ck token create --role editor --tenant many 2>/dev/null)
for i in $(seq -w 1 150); do
    printf '{"name":"m%s","cn":"m%s.example.com"}\n' "$i" "$i"
done >"$WORK/many.jsonl"
created=0
while read -r body; do
    TOKEN=$MANY api POST /v1/enrollments "$body"
    [ "$STATUS" = 201 ] && created=$((created + 1))
done <"$WORK/many.jsonl"
check_eq "150 enrollments created" 150 "$created"
TOKEN=$MANY api GET /v1/enrollments
check_eq "the first page: 100 (the default limit), m001 to m100, with next" "100 m001 m100 m100" \
    "$(json '.enrollments | length') $(json '.enrollments[0].name') $(json '.enrollments[-1].name') $(json .next)"
TOKEN=$MANY api GET "/v1/enrollments?cursor=$(json .next)"
check_eq "the second page: the other 50 and next null" "50 m101 m150 null" \
    "$(json '.enrollments | length') $(json '.enrollments[0].name') $(json '.enrollments[-1].name') $(json .next)"
TOKEN=$MANY api GET "/v1/enrollments?limit=7&cursor=m140"
check_eq "limit and cursor together" "7 m141 m147" "$(json '.enrollments | length') $(json '.enrollments[0].name') $(json .next)"
listed=$(CERTKEEP_TOKEN=$MANY ck enrollment list | grep -c '^m[0-9]')
check_eq "enrollment list (CLI) follows the cursor and prints all 150" 150 "$listed"
check_eq "... and so does --json" 150 "$(CERTKEEP_TOKEN=$MANY ck enrollment list --json | jq '.enrollments | length')"
for bad in "limit=0" "limit=1001" "limit=abc" "limit=-5" "limit=07"; do
    TOKEN=$MANY api GET "/v1/enrollments?$bad"
    check_eq "$bad: 400 invalid_limit" "400 invalid_limit" "$STATUS $(json .error.code)"
done
TOKEN=$MANY api GET "/v1/enrollments?cursor=not%20a%20name"
check_eq "a cursor that is no name: 400 invalid_cursor" "400 invalid_cursor" "$STATUS $(json .error.code)"
api GET /v1/enrollments
check_not_contains "the tenant's own pages never show another tenant's enrollments" '"m001"' "$BODY"

# A pre-fill from a host that accepts TCP and never answers waits out its 10 s off the event
# loop: everything else answers at once meanwhile.
SPORT=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
time.sleep(60)' "$SPORT" &
EXTRA_PIDS="$EXTRA_PIDS $!"
for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$SPORT) 2>/dev/null && break; sleep 0.1; done
prefill_bg() { # name out-file [curl args...]: a pre-fill from the silent host, in the background
    local name=$1 out=$2
    shift 2
    curl -s -o "$out" -w '%{http_code}' "$@" -X POST -H "Authorization: Bearer $CERTKEEP_TOKEN" \
        --data-binary "{\"name\":\"$name\"}" "$CERTKEEP_ADDR/v1/enrollments?from_host=127.0.0.1:$SPORT" >"$out.status" 2>/dev/null
}
prefill_bg hung0 "$WORK/pf0" --max-time 30 &
PF0=$!
prefill_bg gone "$WORK/pfgone" --max-time 1 &
PF_OTHERS=()
for i in $(seq 2 15); do
    prefill_bg "hung$i" "$WORK/pf$i" --max-time 30 &
    PF_OTHERS+=($!)
done
sleep 2 # all 16 are in flight (the "gone" client has left, its fetch goes on)
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$CERTKEEP_ADDR/healthz")
check_eq "GET /healthz answers during 16 pre-fills" 200 "${t%% *}"
check "... at once (under 1 s; took ${t#* } s)" awk -v s="${t#* }" 'BEGIN { exit !(s < 1) }'
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Authorization: Bearer $CERTKEEP_TOKEN" "$CERTKEEP_ADDR/v1/enrollments/shop")
check_eq "GET /v1/enrollments/shop answers during the pre-fills" 200 "${t%% *}"
check "... at once (under 1 s; took ${t#* } s)" awk -v s="${t#* }" 'BEGIN { exit !(s < 1) }'
api POST "/v1/enrollments?from_host=127.0.0.1:$SPORT" '{"name":"onetoomany"}'
check_eq "a 17th pre-fill at once is refused: 503 prefill_busy" "503 prefill_busy" "$STATUS $(json .error.code)"
api POST /v1/enrollments '{"name":"plain","cn":"plain.example.com"}'
check_eq "a create without pre-fill still works meanwhile" 201 "$STATUS"
wait "$PF0" "${PF_OTHERS[@]}"
BODY=$(cat "$WORK/pf0")
check_eq "the pre-fill then fails with its timeout error" "504 timeout" "$(cat "$WORK/pf0.status") $(json .error.code)"
check_contains "... naming the host" "127.0.0.1" "$(json .error.message)"
api GET /v1/enrollments/hung0
check_eq "a failed pre-fill creates nothing" 404 "$STATUS"
api GET /v1/enrollments/gone
check_eq "a pre-fill whose client left ends without harm (its fetch timed out: nothing created)" 404 "$STATUS"

# SIGTERM with a pre-fill in flight: the daemon cancels it and stops cleanly.
prefill_bg atstop "$WORK/pfstop" --max-time 30 &
PF_STOP=$!
sleep 0.5
stop_start=$(date +%s)
stop_daemon
check_eq "SIGTERM during a pre-fill: exit 0 (no leak, no sanitizer report)" 0 "$DAEMON_STATUS"
stop_took=$(($(date +%s) - stop_start))
check "... at once: the fetch is cancelled, not waited for ($stop_took s)" test "$stop_took" -le 3
wait "$PF_STOP"
finish
