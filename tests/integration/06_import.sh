#!/usr/bin/env bash
# Certificate import: every error refused with the order unchanged, warnings acknowledged,
# download, events to poll, tenant roots and uploaded CSRs (seeds 000, 001, 002).
source "$(dirname "$0")/lib.sh"
start_daemon --no-scheduler
cd "$WORK" || exit 1

# A private CA made by the test: root -> intermediate -> leaves, signed with `openssl ca` so
# that dates, subject and digest can be chosen.
source "$ROOT/tests/integration/testca.sh"
testca_make Test
testca_root stranger
sign() { testca_sign "$@"; }

ck enrollment create shop --cn shop.example.com --san www.shop.example.com --org "Example Ltd" --country FR --key ec-p256 >/dev/null 2>&1
ck order start shop >/dev/null 2>&1
ORDER=$(ck order list --enrollment shop --json | jq -r '.orders[0].id')
ck order csr "$ORDER" >shop.csr

api GET /v1/poll
check_eq "a manual order's ready CSR is an event to poll" "certificate_needed $ORDER" "$(json .event.type) $(json .event.order_id)"

ck roots add ca/root.crt >/dev/null 2>&1
check_eq "roots add: the tenant's private root" 0 $?
api GET /v1/roots
check_eq "roots list shows it" 1 "$(json '.roots | length')"
api POST /v1/roots "$(jq -n --rawfile p shop.csr '{pem:$p}')"
check_eq "a CSR is not a root (400)" 400 "$STATUS"

# import CERT_FILE CHAIN_FILE -> STATUS, BODY
import() {
    jq -n --rawfile c "$1" --rawfile ch "${2:-/dev/null}" '{certificate:$c, chain:$ch}' >import.json
    api POST "/v1/orders/$ORDER/certificate" "@$WORK/import.json"
}
codes() { json -c '[.errors[]?.code] | sort'; }
order_state() { ck order show "$ORDER" --json | jq -r .state; }
refused() { # description expected-code cert chain
    import "$3" "${4:-}"
    check_eq "$1: refused (422)" 422 "$STATUS"
    check_contains "$1: error $2 listed" "\"$2\"" "$(codes)"
    check_eq "$1: the order is unchanged" csr_ready "$(order_state)"
}

printf 'hello, this is not a certificate\n' >garbage.txt
refused "garbage" not_pem garbage.txt
refused "a CSR pasted instead" not_certificate shop.csr
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
    -subj "/C=FR/O=Example Ltd/CN=shop.example.com" -addext subjectAltName=DNS:shop.example.com,DNS:www.shop.example.com -out other.csr 2>/dev/null
sign other.csr wrongkey.crt
refused "wrong key" key_mismatch wrongkey.crt ca/inter.crt
sign shop.csr wrongcn.crt -subj "/C=FR/O=Example Ltd/CN=shop.example.org"
refused "wrong CN" cn_mismatch wrongcn.crt ca/inter.crt
check_contains "the CN message names both names" "certificate CN shop.example.org does not match the CSR's CN shop.example.com" "$(json -c .errors)"
sign shop.csr expired.crt -startdate 20200101000000Z -enddate 20210101000000Z
refused "expired" expired expired.crt ca/inter.crt
sign shop.csr future.crt -startdate 20400101000000Z -enddate 20410101000000Z
refused "not yet valid" not_yet_valid future.crt ca/inter.crt
sign shop.csr sha1.crt -md sha1
refused "SHA-1 signature" weak_signature sha1.crt ca/inter.crt
openssl req -new -newkey rsa:1024 -nodes -keyout rsa1024.key -subj "/CN=shop.example.com" -out rsa1024.csr 2>/dev/null
sign rsa1024.csr rsa1024.crt
refused "RSA-1024 key" weak_key rsa1024.crt ca/inter.crt
sign shop.csr ca-leaf.crt -extensions leaf_ca
refused "a CA certificate" ca_certificate ca-leaf.crt ca/inter.crt
sign shop.csr client.crt -extensions leaf_client
refused "EKU without serverAuth" missing_server_auth client.crt ca/inter.crt
sign shop.csr good.crt
refused "chain missing its intermediate" untrusted_chain good.crt /dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca/sinter.key -subj "/CN=Stranger Intermediate" -out ca/sinter.csr 2>/dev/null
openssl ca -batch -config ca/ca.cnf -cert ca/stranger.crt -keyfile ca/stranger.key -in ca/sinter.csr -out ca/sinter.crt -extensions inter -notext 2>/dev/null
openssl ca -batch -config ca/ca.cnf -cert ca/sinter.crt -keyfile ca/sinter.key -in shop.csr -out stranger.crt -extensions leaf -notext 2>/dev/null
refused "an unknown root" untrusted_chain stranger.crt ca/sinter.crt
cat good.crt wrongkey.crt >two-leaves.pem
refused "two leaves" multiple_leaves two-leaves.pem ca/inter.crt
sign shop.csr both.crt -subj "/C=FR/O=Example Ltd/CN=shop.example.org" -startdate 20200101000000Z -enddate 20210101000000Z
import both.crt ca/inter.crt
check_eq "every error is listed at once (wrong CN and expired)" '["cn_mismatch","expired"]' "$(json -c '[.errors[].code | select(. == "cn_mismatch" or . == "expired")] | sort')"
for i in $(seq 1 500); do cat ca/inter.crt; done >many.pem
refused "a PEM with 500 certificates" too_many_certificates good.crt many.pem
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' 'A' >huge.txt
import huge.txt
check_eq "a 5 MiB paste is refused (413)" 413 "$STATUS"
check_eq "and the order is unchanged" csr_ready "$(order_state)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CERTKEEP_TOKEN" "$CERTKEEP_ADDR/v1/orders/$ORDER/certificate")
check_eq "no certificate to download while refused" 409 "$code"
ck order import "$ORDER" --cert expired.crt --chain ca/inter.crt >/dev/null 2>cli-err.txt
check_eq "order import exits 1 on errors" 1 $?
check_contains "and prints them" expired "$(cat cli-err.txt)"

# Warnings: other subject fields, a missing SAN, the chain given in disorder with extras.
sign shop.csr warn.crt -subj "/C=DE/O=Other Ltd/CN=shop.example.com" -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:shop.example.com,DNS:extra.example.com\n') -extensions default
[ -s warn.crt ] || sign shop.csr warn.crt -subj "/C=DE/O=Other Ltd/CN=shop.example.com"
cat ca/root.crt ca/inter.crt warn.crt ca/inter.crt >messy-chain.pem
ck order import "$ORDER" --cert warn.crt --chain messy-chain.pem >import-out.txt 2>&1
check_eq "an import with warnings succeeds (exit 0)" 0 $?
check_eq "and waits for acknowledgement" awaiting_ack "$(order_state)"
BODY=$(ck order show "$ORDER" --json)
w=$(json -c '[.warnings[].code] | unique')
check_contains "warning: O differs" subject_mismatch "$w"
check_contains "warning: a SAN of the CSR is missing" san_missing "$w"
check_contains "warning: an extra SAN" san_extra "$w"
check_contains "warning: chain reordered" chain_reordered "$w"
check_contains "warning: chain extras removed" chain_extras_removed "$w"
check_contains "the CLI prints the warnings" www.shop.example.com "$(cat import-out.txt)"
api POST "/v1/orders/$ORDER/certificate" "$(jq -n --rawfile c good.crt '{certificate:$c}')"
check_eq "importing again once accepted is 409" 409 "$STATUS"
ck order ack "$ORDER" >/dev/null 2>&1
check_eq "order ack moves it to issued" issued "$(order_state)"
ck order cert "$ORDER" >served.pem
check_eq "order cert returns the leaf then the ordered chain" "$(cat warn.crt ca/inter.crt | grep -c BEGIN)" "$(grep -c BEGIN served.pem)"
check "the leaf comes first" cmp -s <(openssl x509 -in served.pem) <(openssl x509 -in warn.crt)
check "the chain verifies with openssl" openssl verify -CAfile ca/root.crt -untrusted served.pem served.pem

# Events: certificate_needed, warnings_to_acknowledge, certificate_issued; confirm in order.
seen=""
for i in $(seq 1 10); do
    api GET /v1/poll
    [ "$(json .event)" = null ] && break
    seen="$seen $(json .event.type)"
    id=$(json .event.id)
    remaining=$(json .remaining)
    ck poll confirm "$id" >/dev/null 2>&1
done
check_eq "polled events, oldest first" " certificate_needed warnings_to_acknowledge certificate_issued" "$seen"
api GET /v1/poll
check_eq "nothing left after confirming" "null 0" "$(json .event) $(json .remaining)"
api GET "/v1/events?order=$ORDER"
check_eq "confirmed events are kept for the history" 3 "$(json '.events | length')"

# A clean import goes straight to issued.
api POST /v1/enrollments/shop/orders '{}'
check_eq "an issued order not yet deployed is still open: no second order" 409 "$STATUS"
ck enrollment create clean --cn shop.example.com --san www.shop.example.com --org "Example Ltd" --country FR --key rsa-2048 >/dev/null 2>&1
ck order start clean >/dev/null 2>&1
ORDER=$(ck order list --enrollment clean --json | jq -r '.orders[0].id')
ck order csr "$ORDER" >shop2.csr
# 12 hours short of 90 days, so that days_left (checked below) is 89 however fast the steps in
# between run: a certificate of exactly 90 days read within its first second has 90 days left.
sign shop2.csr clean.crt -enddate "$(date -u -d '+90 days -12 hours' +%Y%m%d%H%M%SZ)"
ck order import "$ORDER" --cert clean.crt --chain ca/inter.crt >/dev/null 2>&1
check_eq "a clean import goes straight to issued" issued "$(order_state)"
check_eq "with no warnings" 0 "$(ck order show "$ORDER" --json | jq '.warnings | length')"

# Bring your own CSR (seed 001's prepareOrder).
ck enrollment create byo --cn byo.example.com --key rsa-2048 >/dev/null 2>&1
openssl req -new -newkey rsa:2048 -nodes -keyout byo.key -subj "/CN=byo.example.com" -addext subjectAltName=DNS:byo.example.com -out byo.csr 2>/dev/null
ck order start byo --csr byo.csr >/dev/null 2>&1
check_eq "order start --csr uses the uploaded CSR" 0 $?
BYO=$(ck order list --enrollment byo --json | jq -r '.orders[0].id')
BODY=$(ck order show "$BYO" --json)
check_eq "the order has no key inside certkeep" "csr_ready true false" "$(json .state) $(json .csr_uploaded) $(json .has_key)"
check "its CSR is the uploaded one" cmp -s byo.csr <(ck order csr "$BYO")
sign byo.csr byo.crt
ORDER=$BYO
ck order import "$BYO" --cert byo.crt --chain ca/inter.crt >/dev/null 2>&1
check_eq "its certificate is checked against the CSR's key and accepted" issued "$(order_state)"
ck enrollment create weakbyo --cn weak.example.com >/dev/null 2>&1
api POST /v1/enrollments/weakbyo/orders "$(jq -n --rawfile c rsa1024.csr '{csr:$c}')"
check_eq "an uploaded CSR with an RSA-1024 key is refused (400)" "400 invalid_csr" "$STATUS $(json .error.code)"
sed '5s/./A/;6s/./B/' other.csr >tampered.csr
api POST /v1/enrollments/weakbyo/orders "$(jq -n --rawfile c tampered.csr '{csr:$c}')"
check_eq "a tampered CSR is refused (400)" 400 "$STATUS"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x.key -subj "/CN=bad_name.example.com" -out badname.csr 2>/dev/null
api POST /v1/enrollments/weakbyo/orders "$(jq -n --rawfile c badname.csr '{csr:$c}')"
check_contains "a CSR with an invalid name is refused, naming it" bad_name.example.com "$(json -c .error)"
api GET "/v1/orders?enrollment=weakbyo"
check_eq "no order was created by the refused CSRs" 0 "$(json '.orders | length')"
# The offline inspector agrees with openssl.
insp=$(ck cert inspect clean.crt)
check_contains "cert inspect shows the SANs" "www.shop.example.com" "$insp"
fp=$(openssl x509 -in clean.crt -noout -fingerprint -sha256 | cut -d= -f2)
check_contains "cert inspect shows the SHA-256 fingerprint" "$fp" "$insp"
check_eq "cert inspect --json days_left" 89 "$(ck cert inspect clean.crt --json | jq .days_left)"
ck cert inspect garbage.txt >/dev/null 2>&1
check_eq "cert inspect of garbage exits 1" 1 $?
ck cert inspect /nonexistent >/dev/null 2>&1
check_eq "cert inspect of an unreadable file exits 2" 2 $?
finish
