#!/usr/bin/env bash
# Orders: a fresh key and a CSR per order, sealed keys, job logs and artifacts (seeds 000, 003).
source "$(dirname "$0")/lib.sh"
start_daemon

ck enrollment create shop --cn shop.example.com --san www.shop.example.com --org "Example Ltd" \
    --ou Web --locality Paris --state IDF --country FR --key ec-p256 >/dev/null 2>&1
out=$(ck order start shop 2>&1)
check_eq "order start exits 0" 0 $?
check_contains "and reports csr_ready" csr_ready "$out"
ORDER=$(ck order list --enrollment shop --json | jq -r '.orders[0].id')
ck order csr "$ORDER" >"$WORK/shop.csr"
check_eq "order csr writes a PEM CSR" "-----BEGIN CERTIFICATE REQUEST-----" "$(head -1 "$WORK/shop.csr")"
ck order csr "$ORDER" >"$WORK/shop2.csr"
check "re-downloading gives the same bytes" cmp -s "$WORK/shop.csr" "$WORK/shop2.csr"
text=$(openssl req -in "$WORK/shop.csr" -noout -verify -text 2>&1)
check_contains "openssl verifies the CSR signature" "verify OK" "$text"
check_contains "signed with SHA-256" "ecdsa-with-SHA256" "$text"
check_contains "subject has every field" "C = FR, ST = IDF, L = Paris, O = Example Ltd, OU = Web, CN = shop.example.com" "$text"
check_contains "SAN extension lists every name" "DNS:shop.example.com, DNS:www.shop.example.com" "$text"
check_contains "P-256 key" "prime256v1" "$text"
code=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' -H "Authorization: Bearer $CERTKEEP_TOKEN" "$CERTKEEP_ADDR/v1/orders/$ORDER/csr")
check_eq "GET /v1/orders/{id}/csr is application/pkcs10" "200 application/pkcs10" "$code"
insp=$(ck csr inspect "$WORK/shop.csr")
check_contains "csr inspect shows the SANs" "www.shop.example.com" "$insp"

api POST /v1/enrollments/shop/orders '{}'
check_eq "a second order while one is open is 409" "409 order_open" "$STATUS $(json .error.code)"
check_contains "and names the open order" "$ORDER" "$(json .error.message)"

# Jobs: the CSR job with times, log lines and the CSR as an artifact (seed 003's job logs).
jobs=$(ck jobs --state finished --json)
JOB=$(jq -r --argjson o "$ORDER" '[.jobs[] | select(.order_id == $o)][0].id' <<<"$jobs")
check "jobs --state finished lists the csr job" test "$JOB" != null
BODY=$(ck job show "$JOB" --json)
check_eq "the job is a finished csr job" "csr finished" "$(json .type) $(json .state)"
check "it has start and end times" test "$(json .started_at)" != null -a "$(json .finished_at)" != null
check_contains "its log says what it did" "ec-p256" "$(json -c .log)"
ck job artifact "$JOB" csr >"$WORK/artifact.csr"
check "the artifact is the same CSR, downloadable again" cmp -s "$WORK/shop.csr" "$WORK/artifact.csr"
check_eq "jobs filter by type" "$JOB" "$(ck jobs --type csr --enrollment shop --json | jq -r '.jobs[0].id')"
check_eq "jobs filter by state (none queued)" 0 "$(ck jobs --state queued --json | jq '.jobs | length')"
api GET "/v1/jobs?state=bogus"
check_eq "a bad filter is 400" 400 "$STATUS"

# Cancel, then a new order with a new key.
ck order cancel "$ORDER" >/dev/null 2>&1
check_eq "cancel moves it to cancelled" cancelled "$(ck order show "$ORDER" --json | jq -r .state)"
api POST "/v1/orders/$ORDER/cancel"
check_eq "cancelling twice is 409" 409 "$STATUS"
ck order start shop >/dev/null 2>&1
ORDER2=$(ck order list --enrollment shop --state csr_ready --json | jq -r '.orders[0].id')
check "a new order after cancel" test "$ORDER2" != "$ORDER"
ck order csr "$ORDER2" >"$WORK/shop-2.csr"
pub1=$(openssl req -in "$WORK/shop.csr" -noout -pubkey)
pub2=$(openssl req -in "$WORK/shop-2.csr" -noout -pubkey)
check "every order has a new key" test "$pub1" != "$pub2"

# RSA 4096 (seed 004: 2048 or 4096 bits).
ck enrollment create big --cn big.example.com --key rsa-4096 >/dev/null 2>&1
ck order start big >/dev/null 2>&1
BIG=$(ck order list --enrollment big --json | jq -r '.orders[0].id')
ck order csr "$BIG" >"$WORK/big.csr"
check_contains "rsa-4096 CSR" "Public-Key: (4096 bit)" "$(openssl req -in "$WORK/big.csr" -noout -text)"

# Paging: orders and jobs come newest first, `next` until the last page.
api GET "/v1/orders?limit=2"
check_eq "orders?limit=2: the two newest, with next" "2 $BIG $ORDER2 $ORDER2" \
    "$(json '.orders | length') $(json '.orders[0].id') $(json '.orders[1].id') $(json .next)"
api GET "/v1/orders?limit=2&cursor=$(json .next)"
check_eq "the next page: the oldest order, next null" "1 $ORDER null" "$(json '.orders | length') $(json '.orders[0].id') $(json .next)"
check_eq "order list (CLI) shows all three" 3 "$(ck order list --json | jq '.orders | length')"
all_jobs=$(ck jobs --json | jq -c '[.jobs[].id]')
paged='[]' cursor='' pages=0
while [ $pages -lt 50 ]; do
    api GET "/v1/jobs?limit=1${cursor:+&cursor=$cursor}"
    paged=$(jq -c --argjson page "$(json -c '[.jobs[].id]')" '. + $page' <<<"$paged")
    cursor=$(json '.next // empty')
    pages=$((pages + 1))
    [ -n "$cursor" ] || break
done
check_eq "jobs one a page: the same jobs, in the same order, as jobs (CLI)" "$all_jobs" "$paged"
check "... one page a job ($pages)" test "$pages" -eq "$(jq length <<<"$all_jobs")"
api GET "/v1/jobs?cursor=abc"
check_eq "a cursor that is no id: 400 invalid_cursor" "400 invalid_cursor" "$STATUS $(json .error.code)"
api GET "/v1/orders?limit=5000"
check_eq "a limit over 1000: 400 invalid_limit" "400 invalid_limit" "$STATUS $(json .error.code)"

# The key is stored only sealed: export it (operator tool), then look for it everywhere else.
stop_daemon
check_eq "daemon stopped cleanly" 0 "$DAEMON_STATUS"
"$CERTKEEP" key export --data "$DATA" "$ORDER2" >"$WORK/order2.key" 2>"$WORK/export.err"
check_eq "key export works offline" 0 $?
check_eq "the exported key matches the CSR" "$pub2" "$(openssl pkey -in "$WORK/order2.key" -pubout)"
"$CERTKEEP" key export --data "$DATA" "$BIG" >"$WORK/big.key" 2>/dev/null
leaks=0
for key in "$WORK/order2.key" "$WORK/big.key"; do
    der_hex=$(openssl pkey -in "$key" -outform DER | xxd -p | tr -d '\n')
    body=$(grep -v -- '-----' "$key" | head -2 | tr -d '\n')
    # A 24-byte run from the middle of the private key DER (inside the secret part).
    probe=${der_hex:120:48}
    for f in "$DATA"/certkeep.db* "$DAEMON_LOG" "$WORK/init.err"; do
        [ -f "$f" ] || continue
        if xxd -p "$f" | tr -d '\n' | grep -q "$probe"; then leaks=$((leaks + 1)); diag "key bytes in $f"; fi
        if grep -qF "$body" "$f"; then leaks=$((leaks + 1)); diag "PEM key text in $f"; fi
        if grep -q "PRIVATE KEY" "$f"; then leaks=$((leaks + 1)); diag "PRIVATE KEY in $f"; fi
    done
done
check_eq "no private key in clear in the database, WAL or logs" 0 "$leaks"
finish
