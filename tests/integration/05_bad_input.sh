#!/usr/bin/env bash
# Bad input never crashes the daemon and always gets a JSON error.
source "$(dirname "$0")/lib.sh"
start_daemon

api GET /v1/nowhere
check_eq "an unknown route is a JSON 404" "404 not_found" "$STATUS $(json .error.code)"
api DELETE /v1/jobs
check_eq "a wrong method is a JSON 405" 405 "$STATUS"
api POST /v1/enrollments '[1,2,3]'
check_eq "a JSON array instead of an object is 400" 400 "$STATUS"
api POST /v1/enrollments '{"name":"a","cn":12}'
check_eq "a wrong type is 400 naming the field" "400 cn" "$STATUS $(json .error.message | grep -o cn | head -1)"
api POST /v1/enrollments '{"name":"a/b","cn":"a.example.com"}'
check_eq "a bad enrollment name is 400" 400 "$STATUS"
api GET /v1/orders/abc
check_eq "a non-numeric id is 404" 404 "$STATUS"
api GET /v1/orders/99999999999999999999999
check_eq "an overflowing id is 404" 404 "$STATUS"
api GET "/v1/enrollments/%00%ff"
check "an odd name gets an error, not a crash" test "$STATUS" -ge 400
for i in $(seq 1 20); do
    head -c $((RANDOM % 4000 + 1)) /dev/urandom >"$WORK/junk"
    (exec 3<>/dev/tcp/127.0.0.1/$PORT && cat "$WORK/junk" >&3 && timeout 2 cat <&3 >/dev/null) 2>/dev/null
done
printf 'POST /v1/enrollments HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{' >"$WORK/hdr"
(exec 3<>/dev/tcp/127.0.0.1/$PORT && cat "$WORK/hdr" >&3 && timeout 2 cat <&3 >/dev/null) 2>/dev/null
# Oversized bodies get the API's JSON error, whether sent with Content-Length or chunked.
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$WORK/big.json"
api POST /v1/enrollments "@$WORK/big.json"
check_eq "a 2 MiB body: 413 body_too_large in JSON" "413 body_too_large" "$STATUS $(json .error.code)"
check_contains "... saying the limit" "at most 1 MiB" "$(json .error.message)"
out=$(curl -s -w ' %{http_code} %{content_type}' -X POST -H "Authorization: Bearer $CERTKEEP_TOKEN" \
    -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary "@$WORK/big.json" \
    "$CERTKEEP_ADDR/v1/enrollments")
check_contains "a 2 MiB chunked body: 413 in JSON" '"code":"body_too_large"' "$out"
check_contains "... with the JSON content type" "413 application/json" "$out"
out=$(curl -s -w ' %{http_code}' -X POST --data-binary "@$WORK/big.json" "$CERTKEEP_ADDR/v1/enrollments")
check_contains "without a token too (the size is checked first)" '"code":"body_too_large"' "$out"
# Beyond the 16 MiB evhttp buffers, libevent 2.1 refuses by itself before reading the body.
printf 'POST /v1/enrollments HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{' $((17 * 1024 * 1024)) >"$WORK/hdr17"
answer=$( (exec 3<>/dev/tcp/127.0.0.1/$PORT && cat "$WORK/hdr17" >&3 && timeout 5 head -1 <&3) 2>/dev/null)
check_contains "a 17 MiB Content-Length is refused with 413 before the body is read" " 413 " "$answer"
api GET /healthz
check_eq "after 20 garbage connections and a lying Content-Length the daemon still answers" 200 "$STATUS"
api POST /v1/enrollments '{"name":"ok","cn":"ok.example.com"}'
check_eq "and still works" 201 "$STATUS"
finish
