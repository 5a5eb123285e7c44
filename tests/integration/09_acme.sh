#!/usr/bin/env bash
# The ACME issuer (issue 5) end to end on loopback: pebble (PEBBLE_VA_NOSLEEP, its resolver the
# test's BIND), certkeep's ACME client with dns-01 by RFC 2136 (TSIG), by hook and by manual
# confirmation, a name the CA refuses, and each issued chain verified against pebble's root.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/bind.sh"
cd "$WORK" || exit 1

if [ ! -x /usr/bin/pebble ] || [ ! -x "$BIND_NAMED" ]; then
    echo "1..0 # SKIP pebble or named is not installed"
    exit 0
fi

last_order() { ck order list --enrollment "$1" --json | jq -r '.orders[0].id'; }
txt() { dig +short +norec -p "$BIND_PORT" @127.0.0.1 "$1" TXT; }

BIND_WATCH_PID=$$ bind_start "$WORK/bind" example.test || {
    not_ok "BIND started"
    exit 1
}
EXTRA_PIDS=$BIND_PID

# pebble's HTTPS certificate, from a throwaway CA the issuer is told to trust (--ca-bundle).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=minica \
    -addext basicConstraints=critical,CA:TRUE -keyout minica.key -out minica.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout pebble.key -out pebble.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >pebble.ext
openssl x509 -req -in pebble.csr -CA minica.pem -CAkey minica.key -CAcreateserial -days 1 \
    -extfile pebble.ext -out pebble.pem 2>/dev/null
start_pebble() { # name extra_json nonce_reject: sets PPORT MPORT (pebble's ACME and management)
    PPORT=$(free_port)
    MPORT=$(free_port)
    cat >"$1.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$PPORT", "managementListenAddress": "127.0.0.1:$MPORT",
 "certificate": "$WORK/pebble.pem", "privateKey": "$WORK/pebble.key",
 "httpPort": $HTTP_PORT, "tlsPort": $(free_port), "ocspResponderURL": "",
 "domainBlocklist": ["blocked.example.test"]$2}}
JSON
    PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=$3 \
        pebble -config "$1.json" -strict -dnsserver "127.0.0.1:$BIND_PORT" >"$1.log" 2>&1 &
    EXTRA_PIDS="$EXTRA_PIDS $!"
    wait_for_http "https://127.0.0.1:$MPORT/roots/0" 15 || {
        not_ok "pebble $1 started"
        tail -20 "$1.log" | sed 's/^/#   /'
        exit 1
    }
}
HTTP_PORT=$(free_port) # certkeep's http-01 listener, where pebble validates http-01
EAB_KEY=zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W
start_pebble eab ', "externalAccountBindingRequired": true, "externalAccountMACKeys": {"kid-1": "'$EAB_KEY'"}' 30
EAB_PPORT=$PPORT
EAB_MPORT=$MPORT
start_pebble pebble "" "${NONCE_REJECT:-0}"
curl -s -k "https://127.0.0.1:$MPORT/roots/0" >pebble-root.pem

start_daemon --no-scheduler --http "127.0.0.1:$HTTP_PORT"
ck roots add pebble-root.pem >/dev/null 2>&1
check_eq "pebble's root (it has an EKU: a private root) added to the tenant's roots" 0 $?

out=$(ck issuer create peb --acme "https://127.0.0.1:$PPORT/dir" --ca-bundle minica.pem \
    --contact mailto:ops@example.test 2>&1)
check_eq "issuer create --acme exits 0" 0 $?
out=$(ck issuer create bad --acme "http://127.0.0.1:$PPORT/dir" 2>&1)
check_eq "a plain http directory is refused" 1 $?
out=$(ck dns create lab --rfc2136 "127.0.0.1:$BIND_PORT" --zone example.test \
    --tsig-name "$BIND_TSIG_NAME" --tsig-alg "$BIND_TSIG_ALG" --tsig-secret "$BIND_TSIG_SECRET" \
    --check-servers "127.0.0.1:$BIND_PORT" 2>&1)
check_eq "dns create --rfc2136 exits 0" 0 $?
shown=$(ck dns show lab --json 2>&1)
check_eq "the TSIG secret shows as configured" configured "$(jq -r .tsig_secret <<<"$shown")"
check_not_contains "and is never shown" "$BIND_TSIG_SECRET" "$shown$(ck dns list --json)"

out=$(ck enrollment create shop --cn shop.example.test --issuer peb --key ec-p256 2>&1)
check_eq "an acme enrollment needs a challenge" 1 $?
out=$(ck enrollment create shop --cn shop.example.test --issuer peb --challenge dns-01 2>&1)
check_eq "dns-01 needs a DNS provider" 1 $?
out=$(ck enrollment create shop --cn shop.example.test --issuer peb --challenge dns-01 --dns nope 2>&1)
check_contains "an unknown DNS provider is named" nope "$out"

# ---- dns-01 by RFC 2136 ----
ck enrollment create shop --cn shop.example.test --san www.shop.example.test --issuer peb \
    --challenge dns-01 --dns lab --key ec-p256 >/dev/null 2>&1
check_eq "enrollment create --issuer peb --challenge dns-01 --dns lab" 0 $?
ck order start shop >/dev/null 2>&1
ORDER=$(last_order shop)
state=$(wait_state "$ORDER" issued 60)
check_eq "dns-01 by RFC 2136: the order reaches issued by itself" issued "$state"
[ "$state" = issued ] || ck order show "$ORDER" 2>&1 | sed 's/^/#   /'
ck order cert "$ORDER" >shop-chain.pem
check "openssl verifies the chain against pebble's root" \
    openssl verify -CAfile pebble-root.pem -untrusted shop-chain.pem shop-chain.pem
check_contains "the leaf has both names" "DNS:shop.example.test, DNS:www.shop.example.test" \
    "$(openssl x509 -in shop-chain.pem -noout -ext subjectAltName 2>&1)"
check_eq "the TXT records were removed after validation" "" \
    "$(txt _acme-challenge.shop.example.test)$(txt _acme-challenge.www.shop.example.test)"
JOB=$(ck jobs --json | jq -r --argjson o "$ORDER" '[.jobs[] | select(.order_id == $o and .type == "issue")][0].id')
log=$(ck job show "$JOB" --json | jq -c .log)
check_contains "the job log has the propagation check" "TXT value present" "$log"
check_contains "and the ACME steps" "acme: validating" "$log"
check_contains "the issuer now has its account" "https://127.0.0.1:$PPORT/" "$(ck issuer show peb --json | jq -r .account_url)"

# ---- dns-01 by hook ----
cat >hook.sh <<HOOK
#!/bin/sh
op=add; [ "\$1" = del ] && op=delete
printf 'server 127.0.0.1 $BIND_PORT\nupdate %s %s 60 TXT "%s"\nsend\n' "\$op" "\$2" "\$3" |
    nsupdate -k "$WORK/bind/tsig.key"
HOOK
chmod +x hook.sh
ck dns create hooked --hook "$WORK/hook.sh" --check-servers "127.0.0.1:$BIND_PORT" >/dev/null 2>&1
ck enrollment create blog --cn blog.example.test --issuer peb --challenge dns-01 --dns hooked \
    --key ec-p256 >/dev/null 2>&1
ck order start blog >/dev/null 2>&1
ORDER=$(last_order blog)
check_eq "dns-01 by hook: the order reaches issued" issued "$(wait_state "$ORDER" issued 60)"
ck order cert "$ORDER" >blog-chain.pem
check "its chain verifies against pebble's root" \
    openssl verify -CAfile pebble-root.pem -untrusted blog-chain.pem blog-chain.pem
check_eq "the hook removed its record" "" "$(txt _acme-challenge.blog.example.test)"

# ---- dns-01 by hand ----
ck dns create byhand --manual --zone example.test --check-servers "127.0.0.1:$BIND_PORT" >/dev/null 2>&1
ck enrollment create wiki --cn wiki.example.test --issuer peb --challenge dns-01 --dns byhand \
    --key ec-p256 >/dev/null 2>&1
ck order start wiki >/dev/null 2>&1
ORDER=$(last_order wiki)
line=""
for _ in $(seq 1 100); do
    line=$(ck events --order "$ORDER" --json 2>/dev/null |
        jq -r '[.events[] | select(.type == "dns_records_needed")][0].data.records[0] // empty')
    [ -n "$line" ] && break
    sleep 0.1
done
check_contains "manual: the order shows the zone line to create" \
    '_acme-challenge.wiki.example.test. 60 IN TXT "' "$line"
check_eq "and waits in pending_validation" pending_validation "$(ck order show "$ORDER" --json | jq -r .state)"
shown=$(ck order show "$ORDER" --json)
check_eq "the order shows the record to create" "_acme-challenge.wiki.example.test" \
    "$(jq -r '.validation.records[0].record' <<<"$shown")"
check_contains "and its value" "$(jq -r '.validation.records[0].value' <<<"$shown")" "$line"
check_contains "order show prints it too" "dns-01 _acme-challenge.wiki.example.test" "$(ck order show "$ORDER")"
value=$(sed 's/.*TXT "\(.*\)"/\1/' <<<"$line")
printf 'server 127.0.0.1 %s\nupdate add _acme-challenge.wiki.example.test. 60 TXT "%s"\nsend\n' \
    "$BIND_PORT" "$value" | nsupdate -k "$WORK/bind/tsig.key"
out=$(ck order dns-published "$ORDER" 2>&1)
check_eq "order dns-published exits 0" 0 $?
check_eq "manual: the order reaches issued once confirmed" issued "$(wait_state "$ORDER" issued 60)"

# ---- a name the CA refuses ----
ck enrollment create blocked --cn blocked.example.test --issuer peb --challenge dns-01 --dns lab \
    --key ec-p256 >/dev/null 2>&1
ck order start blocked >/dev/null 2>&1
ORDER=$(last_order blocked)
check_eq "a refused name fails the order" failed "$(wait_state "$ORDER" failed 30)"
check_contains "with the CA's problem as it sent it" "rejectedIdentifier" \
    "$(ck order show "$ORDER" --json | jq -r .error)$(ck jobs --json | jq -c .)$(ck job show "$(ck jobs --json | jq -r --argjson o "$ORDER" '[.jobs[] | select(.order_id == $o and .type == "issue")][0].id')" --json | jq -c .log)"

# ---- http-01, answered by certkeep serve --http ----
printf 'server 127.0.0.1 %s\nupdate add web.example.test. 60 A 127.0.0.1\nsend\n' "$BIND_PORT" |
    nsupdate -k "$WORK/bind/tsig.key"
ck enrollment create web --cn web.example.test --issuer peb --challenge http-01 --key ec-p256 >/dev/null 2>&1
ck order start web >/dev/null 2>&1
ORDER=$(last_order web)
state=$(wait_state "$ORDER" issued 60)
check_eq "http-01: the order reaches issued" issued "$state"
[ "$state" = issued ] || ck order show "$ORDER" 2>&1 | sed 's/^/#   /'
ck order cert "$ORDER" >web-chain.pem
check "its chain verifies against pebble's root" \
    openssl verify -CAfile pebble-root.pem -untrusted web-chain.pem web-chain.pem

# ---- external account binding, with 30% of the nonces refused ----
curl -s -k "https://127.0.0.1:$EAB_MPORT/roots/0" >eab-root.pem
ck roots add eab-root.pem >/dev/null 2>&1
ck issuer create noeab --acme "https://127.0.0.1:$EAB_PPORT/dir" --ca-bundle minica.pem >/dev/null 2>&1
ck issuer create witheab --acme "https://127.0.0.1:$EAB_PPORT/dir" --ca-bundle minica.pem \
    --eab-kid kid-1 --eab-hmac "$EAB_KEY" >/dev/null 2>&1
shown=$(ck issuer show witheab --json 2>&1)
check_eq "the EAB key shows as configured" configured "$(jq -r .eab <<<"$shown")"
check_not_contains "and is never shown" "$EAB_KEY" "$shown$(ck issuer list --json)"
ck enrollment create noacct --cn noacct.example.test --issuer noeab --challenge dns-01 --dns lab \
    --key ec-p256 >/dev/null 2>&1
ck order start noacct >/dev/null 2>&1
ORDER=$(last_order noacct)
check_eq "without EAB the CA's refusal fails the order" failed "$(wait_state "$ORDER" failed 60)"
check_contains "with the CA's problem" "externalAccountRequired" "$(ck order show "$ORDER" --json | jq -r .error)"
for n in 1 2 3; do
    ck enrollment create eab$n --cn eab$n.example.test --issuer witheab --challenge dns-01 \
        --dns lab --key ec-p256 >/dev/null 2>&1
    ck order start eab$n --no-wait >/dev/null 2>&1
done
for n in 1 2 3; do
    ORDER=$(last_order eab$n)
    state=$(wait_state "$ORDER" issued 90)
    check_eq "EAB with 30% of nonces refused: order $n issued" issued "$state"
    [ "$state" = issued ] || ck order show "$ORDER" 2>&1 | sed 's/^/#   /'
done
ck order cert "$ORDER" >eab-chain.pem
check "its chain verifies against that pebble's root" \
    openssl verify -CAfile eab-root.pem -untrusted eab-chain.pem eab-chain.pem

# ---- kill -9 in the middle of an order: the restart continues the same ACME order ----
ck enrollment create wiki2 --cn wiki2.example.test --issuer peb --challenge dns-01 --dns byhand \
    --key ec-p256 >/dev/null 2>&1
ck order start wiki2 >/dev/null 2>&1
ORDER=$(last_order wiki2)
line=""
for _ in $(seq 1 100); do
    line=$(ck events --order "$ORDER" --json 2>/dev/null |
        jq -r '[.events[] | select(.type == "dns_records_needed")][0].data.records[0] // empty')
    [ -n "$line" ] && break
    sleep 0.1
done
issue_logs() { # all issue jobs' logs of order $1
    ck jobs --json | jq -r --argjson o "$1" '.jobs[] | select(.order_id == $o and .type == "issue") | .id' |
        while read -r j; do ck job show "$j" --json | jq -r '.log[].message'; done
}
url1=$(issue_logs "$ORDER" | sed -n 's/^acme: ordered //p' | head -1)
check_contains "the order was placed with pebble" "https://127.0.0.1:$PPORT/" "$url1"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=""
start_daemon --no-scheduler --http "127.0.0.1:$HTTP_PORT"
value=$(sed 's/.*TXT "\(.*\)"/\1/' <<<"$line")
printf 'server 127.0.0.1 %s\nupdate add _acme-challenge.wiki2.example.test. 60 TXT "%s"\nsend\n' \
    "$BIND_PORT" "$value" | nsupdate -k "$WORK/bind/tsig.key"
ck order dns-published "$ORDER" >/dev/null 2>&1
check_eq "after kill -9 and a restart the order reaches issued" issued "$(wait_state "$ORDER" issued 60)"
logs=$(issue_logs "$ORDER")
check_contains "continuing the stored ACME order" "continuing the ACME order from step authorizations_fetched, order $url1" "$logs"
check_eq "never ordering twice" 1 "$(grep -c '^acme: ordered' <<<"$logs")"

finish
