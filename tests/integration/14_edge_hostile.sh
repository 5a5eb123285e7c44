#!/usr/bin/env bash
# The edge under hostile clients (issue 4, "Bad input"): malformed ClientHellos, no SNI, an SNI
# of 300 bytes, a slow client that never finishes its handshake, ten thousand idle connections,
# a flood against a daemon with few file descriptors. After each, a normal client still reads OK
# and the daemon is alive. Then testssl.sh checks what both listeners offer (TLS 1.2/1.3 only,
# AEAD with forward secrecy, no compression, no insecure renegotiation, nothing HIGH or
# CRITICAL), and clients check session resumption.
source "$(dirname "$0")/lib.sh"
HOSTILE="python3 $ROOT/tests/integration/hostile_tls.py"
NAME=shop.example.com

# The daemon starts with a soft descriptor limit far below what 10,000 connections need; it must
# raise it to the hard limit itself. The hard limit must leave room for the test's own client.
HARD=$(ulimit -Hn)
# root (as in CI) may raise the hard limit for this test and its children
if [ "$HARD" != unlimited ] && [ "$HARD" -lt 20000 ] && ulimit -Hn 20000 2>/dev/null; then
    HARD=20000
fi
if [ "$HARD" != unlimited ] && [ "$HARD" -lt 10300 ]; then
    not_ok "the hard descriptor limit ($HARD) leaves room for 10,000 connections"
    finish
fi
ulimit -Sn 1024
STG=$(free_port)
PRD=$(free_port)
start_daemon --no-scheduler --staging "127.0.0.1:$STG" --production "127.0.0.1:$PRD"
ulimit -Sn "$HARD"
cd "$WORK" || exit 1

soft_limit() { awk '/^Max open files/ {print $4}' "/proc/$1/limits"; }
hard_limit() { awk '/^Max open files/ {print $5}' "/proc/$1/limits"; }
check_eq "the daemon raised its descriptor soft limit to the hard limit" \
    "$(hard_limit "$DAEMON_PID")" "$(soft_limit "$DAEMON_PID")"

# A private CA made by the test (root -> intermediate -> leaf), its leaf imported, staged and
# deployed. The leaf names a CRL so that testssl.sh judges the listener, not a bare test leaf.
source "$ROOT/tests/integration/testca.sh"
TESTCA_LEAF_KU=digitalSignature \
    TESTCA_LEAF_EXTRA="crlDistributionPoints = URI:http://127.0.0.1:9/hostile.crl" testca_make Hostile
cp ca/root.crt root.pem
ck roots add root.pem >/dev/null 2>&1
ck enrollment create shop --cn "$NAME" --key ec-p256 >/dev/null 2>&1
check_eq "enrollment" 0 $?
testca_issue shop 90
ck order stage "$ORDER" >/dev/null 2>&1 && ck order deploy "$ORDER" >/dev/null 2>&1
check_eq "order issued, staged and deployed" deployed "$(ck order show "$ORDER" --json | jq -r .state)"

fetch() { # port -> body
    curl -s --max-time 5 --resolve "$NAME:$1:127.0.0.1" --cacert root.pem "https://$NAME:$1/"
}
alive() { kill -0 "$DAEMON_PID" 2>/dev/null; }
# still_serving WHAT: a normal client reads OK and the daemon is alive, after WHAT
still_serving() {
    check_eq "after $1: a normal client still reads OK" OK "$(fetch "$PRD")"
    check "after $1: the daemon is alive" alive
}

check_eq "production serves OK" OK "$(fetch "$PRD")"
check_eq "staging serves OK" OK "$(fetch "$STG")"
check_eq "the crafted ClientHello with the right name gets a ServerHello" server_hello \
    "$($HOSTILE hello "$PRD" "$NAME")"

# ---- malformed input ----
R=$($HOSTILE random "$PRD")
check "random bytes: the server answers with an alert or closes" grep -qE '^(alert|closed)' <<<"$R"
diag "random bytes: $R"
still_serving "random bytes"

R=$($HOSTILE truncated "$PRD" "$NAME")
check "a truncated ClientHello: an alert or the connection closed" grep -qE '^(alert|closed)' <<<"$R"
diag "truncated: $R"
still_serving "a truncated ClientHello"

R=$($HOSTILE malformed "$PRD" "$NAME")
check_eq "a ClientHello whose extensions overrun it: decode_error alert (50)" "alert 50" "$R"
still_serving "a malformed ClientHello"

R=$($HOSTILE biglength "$PRD")
check_eq "a record announcing 65535 bytes: record_overflow alert (22) at once" "alert 22" "$R"
still_serving "a record with an absurd length"

# ---- names ----
check_eq "no SNI: unrecognized_name alert (112), no certificate" "alert 112" "$($HOSTILE hello "$PRD")"
NO_SNI=$(openssl s_client -connect "127.0.0.1:$PRD" -noservername </dev/null 2>&1)
check_not_contains "no SNI (openssl s_client): no certificate served" "BEGIN CERTIFICATE" "$NO_SNI"
still_serving "a ClientHello without SNI"

check_eq "an SNI of 300 bytes: unrecognized_name alert" "alert 112" "$($HOSTILE hello "$PRD" @len:300)"
still_serving "an SNI of 300 bytes"
BAD=$(printf 'ff00%.0s' $(seq 1 64))2e20$(printf '%s' "$NAME" | od -An -tx1 | tr -d ' \n')
check_eq "an SNI of 258 bytes with NUL, 0xff and space: unrecognized_name alert" "alert 112" \
    "$($HOSTILE hello "$PRD" "@hex:$BAD")"
NUL=$(printf '%s' "$NAME" | od -An -tx1 | tr -d ' \n')00$(printf '.evil' | od -An -tx1 | tr -d ' \n')
check_eq "the right name followed by a NUL: unrecognized_name alert" "alert 112" \
    "$($HOSTILE hello "$PRD" "@hex:$NUL")"
check_eq "a name of 64 dots: unrecognized_name alert" "alert 112" \
    "$($HOSTILE hello "$PRD" "$(printf '.%.0s' $(seq 1 64))")"
still_serving "malformed names"

# ---- a slow client: half a ClientHello, then nothing ----
# and one that completes its handshake, then sends its request head at a byte a second.
START=$(date +%s)
$HOSTILE slow "$PRD" "$NAME" 20 >slow.out &
SLOW=$!
$HOSTILE slowhead "$PRD" "$NAME" "$WORK/root.pem" 20 >slowhead.out &
SLOWHEAD=$!
sleep 1
still_serving "(while slow clients wait)"
wait "$SLOW" "$SLOWHEAD"
R=$(cat slow.out)
diag "slow client: $R ($(($(date +%s) - START)) s in all)"
check_contains "a slow client is dropped by the handshake timeout" "closed after" "$R"
SECS=$(printf '%s' "$R" | awk '/closed after/ {print int($3)}')
check "... within 10-12 s" test "${SECS:-99}" -ge 9 -a "${SECS:-99}" -le 12
R=$(cat slowhead.out)
diag "slow request head: $R"
check_contains "a request head trickling in is cut off too" "closed after" "$R"
SECS=$(printf '%s' "$R" | awk '/closed after/ {print int($3)}')
check "... within 10-12 s of its first byte" test "${SECS:-99}" -ge 9 -a "${SECS:-99}" -le 12
still_serving "slow clients"

# ---- ten thousand idle connections (the handshake timeout ends them too) ----
: >idle.out
timeout 90 $HOSTILE idle "$PRD" 10000 40 >idle.out 2>&1 &
IDLE=$!
for _ in $(seq 1 600); do grep -q '^connected' idle.out && break; sleep 0.1; done
diag "idle client: $(head -1 idle.out)"
check_eq "10,000 idle TCP connections open" 10000 "$(awk '/^connected/ {print $2}' idle.out)"
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
for _ in $(seq 1 100); do [ "$(fds "$DAEMON_PID")" -ge 10000 ] && break; sleep 0.1; done
FDS=$(fds "$DAEMON_PID")
check "the daemon accepted them all (it holds $FDS descriptors)" test "$FDS" -ge 10000
DURING=0
for _ in 1 2 3 4 5; do [ "$(fetch "$PRD")" = OK ] && DURING=$((DURING + 1)); done
check_eq "while they are open: 5 of 5 normal clients read OK on production" 5 "$DURING"
check_eq "while they are open: staging reads OK" OK "$(fetch "$STG")"
api GET /healthz
check_eq "while they are open: the API answers" 200 "$STATUS"
wait "$IDLE"
R=$(tail -1 idle.out)
diag "idle client: $R"
check_contains "the handshake timeout closed all 10,000" "closed_by_server 10000 of 10000" "$R"
SECS=$(printf '%s' "$R" | awk '{print int($NF == "s" ? $(NF-1) : 99)}')
check "... within 25 s of the first connect (10 s timeout, opening 10,000 takes a few)" \
    test "${SECS:-99}" -le 25
still_serving "10,000 idle connections"

# ---- few descriptors: a second daemon on the same database, allowed only 256 ----
# The edge keeps a reserve for the rest of the daemon: its listeners together hold at most half
# of so small a limit (the limit less 256 above 512), and close the connections beyond that at
# once. (Running out of descriptors anyway, accept pauses: tests/unit/test_edge.c.)
API2=$(free_port)
PRD2=$(free_port)
LOG2=$WORK/daemon2.log
(
    ulimit -n 256
    exec "$CERTKEEP" serve --data "$DATA" --api "127.0.0.1:$API2" --no-scheduler \
        --production "127.0.0.1:$PRD2"
) >>"$LOG2" 2>&1 &
D2=$!
EXTRA_PIDS=$D2
check "a second daemon limited to 256 descriptors starts" wait_for_http "http://127.0.0.1:$API2/healthz" 15
for _ in $(seq 1 30); do [ "$(fetch "$PRD2")" = OK ] && break; sleep 0.2; done
check_eq "it serves OK" OK "$(fetch "$PRD2")"
: >flood.out
timeout 60 $HOSTILE idle "$PRD2" 600 8 >flood.out 2>&1 &
FLOOD=$!
for _ in $(seq 1 300); do grep -q '^connected' flood.out && break; sleep 0.1; done
diag "flood: $(head -1 flood.out)"
sleep 1
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
T1=$(cpu_ticks "$D2")
sleep 3
T2=$(cpu_ticks "$D2")
diag "flooded: $((T2 - T1)) CPU ticks in 3 s, $(fds "$D2") descriptors open"
check "flooded, the daemon does not spin (under 1 s of CPU in 3 s)" test $((T2 - T1)) -lt "$(getconf CLK_TCK)"
check_eq "flooded, its API still answers (descriptors in reserve)" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$API2/healthz")"
check "it is alive" kill -0 "$D2"
wait "$FLOOD"
R=$(tail -1 flood.out)
diag "flood: $R"
CLOSED=$(printf '%s' "$R" | awk '/^closed_by_server/ {print $2}')
HELD=$((600 - ${CLOSED:-0}))
check "the edge held 128 of them at most and closed the others at once (held: $HELD)" \
    test "$HELD" -le 128 -a "$HELD" -ge 64
AFTER=""
for _ in $(seq 1 30); do
    AFTER=$(fetch "$PRD2")
    [ "$AFTER" = OK ] && break
    sleep 0.5
done
check_eq "once the flood is gone, a normal client reads OK again (within 20 s)" OK "$AFTER"
kill -TERM "$D2"
wait "$D2"
check_eq "the second daemon stops cleanly on SIGTERM" 0 $?
EXTRA_PIDS=""
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG2"; then
    not_ok "no sanitizer report in the second daemon's log"
    grep -E -A8 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG2" | head -40 | sed 's/^/#   /'
fi

# ---- what testssl.sh finds on both listeners ----
# By IP with the name for SNI, no DNS; protocols, cipher categories, forward secrecy, server
# preferences and defaults, vulnerabilities.
testssl_json() { # port file
    timeout 170 testssl --warnings batch --nodns none --ip 127.0.0.1 --sneaky --color 0 \
        --add-ca "$WORK/root.pem" -p -s -f -S -P -U --jsonfile "$2" "$NAME:$1" >"$2.log" 2>&1
}
finding() { jq -r --arg id "$2" '[.[] | select(.id == $id) | .finding][0] // "absent"' "$1"; }
for LISTENER in production staging; do
    [ $LISTENER = production ] && P=$PRD || P=$STG
    J=$WORK/testssl-$LISTENER.json
    START=$(date +%s)
    testssl_json "$P" "$J"
    RC=$?
    diag "testssl.sh on $LISTENER: exit $RC in $(($(date +%s) - START)) s"
    if ! check "testssl.sh on $LISTENER finished with JSON" jq -e 'length > 10' "$J"; then
        tail -20 "$J.log" | sed 's/^/#   /'
        continue
    fi
    for id in SSLv2 SSLv3 TLS1 TLS1_1; do
        check_contains "$LISTENER: $id not offered" "not offered" "$(finding "$J" $id)"
    done
    check_eq "$LISTENER: TLS 1.2 offered" offered "$(finding "$J" TLS1_2)"
    check_contains "$LISTENER: TLS 1.3 offered" offered "$(finding "$J" TLS1_3)"
    for id in cipherlist_NULL cipherlist_aNULL cipherlist_EXPORT cipherlist_LOW \
        cipherlist_3DES_IDEA cipherlist_AVERAGE; do
        check_eq "$LISTENER: $id not offered (no NULL, export, RC4, 3DES or CBC suites)" \
            "not offered" "$(finding "$J" $id)"
    done
    check_eq "$LISTENER: forward secrecy" offered "$(finding "$J" PFS)"
    check_eq "$LISTENER: no finite-field DH group offered" absent "$(finding "$J" DH_groups)"
    check_eq "$LISTENER: the server chooses the cipher" server "$(finding "$J" cipher_order)"
    check_contains "$LISTENER: no TLS compression (CRIME)" "not vulnerable" "$(finding "$J" CRIME_TLS)"
    check_contains "$LISTENER: no client-initiated renegotiation" "not vulnerable" \
        "$(finding "$J" secure_client_renego)"
    # testssl.sh 3.0.8 tests resumption with `openssl s_client </dev/null`, which often quits
    # before a TLS 1.3 ticket arrives (more so against an ASan build; a ticket missed in an
    # earlier probe even makes it run s_client with an empty protocol: "connect problem"), so
    # resumption is checked below with clients that wait; here it is only reported.
    diag "$LISTENER: testssl.sh resumption: ticket $(finding "$J" sessionresumption_ticket), ID $(finding "$J" sessionresumption_ID)"
    check_eq "$LISTENER: chain of trust" passed. "$(finding "$J" cert_chain_of_trust)"
    BAD=$(jq -r '.[] | select(.severity == "HIGH" or .severity == "CRITICAL") | "\(.severity) \(.id): \(.finding)"' "$J")
    check_eq "$LISTENER: no HIGH or CRITICAL finding" "" "$BAD"
    [ $FAILED -eq 0 ] || grep -vE '^\s*$' "$J.log" | tail -40 | sed 's/^/#   /'
    jq -r '.[] | select(.severity == "MEDIUM" or .severity == "LOW" or .severity == "WARN") |
        "\(.severity) \(.id): \(.finding)"' "$J" | sed "s/^/$LISTENER: /" | while read -r line; do diag "$line"; done
done
# testssl.sh 3.0.8 checks secure renegotiation without SNI, which the edge refuses by design
# (an unknown name gets an alert), so check RFC 5746 and refused renegotiation with the name.
R=$( (printf 'R\n'; sleep 2) | timeout 10 openssl s_client -connect "127.0.0.1:$PRD" -servername "$NAME" -tls1_2 2>&1)
check_contains "TLS 1.2: secure renegotiation (RFC 5746) supported" "Secure Renegotiation IS supported" "$R"
check_contains "TLS 1.2: a client-initiated renegotiation is refused" "no renegotiation" "$R"
still_serving "testssl.sh"

# Session resumption (the issue requires it): by session ID and by ticket in TLS 1.2, by ticket in
# TLS 1.3. The client keeps its input open a moment so that the TLS 1.3 ticket, sent after the
# handshake, is read before it closes.
resumed() { # port args... -> "Reused" or "New"
    local port=$1
    shift
    rm -f sess.pem
    (sleep 1) | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$NAME" "$@" \
        -sess_out sess.pem >/dev/null 2>&1
    [ -s sess.pem ] || { echo "no session"; return; }
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$NAME" "$@" \
        -sess_in sess.pem </dev/null 2>/dev/null | grep -oE '^(Reused|New)' | head -1
}
for LISTENER in production staging; do
    [ $LISTENER = production ] && P=$PRD || P=$STG
    check_eq "$LISTENER: TLS 1.2 resumes by session ID" Reused "$(resumed "$P" -tls1_2 -no_ticket)"
    check_eq "$LISTENER: TLS 1.2 resumes by ticket" Reused "$(resumed "$P" -tls1_2)"
    check_eq "$LISTENER: TLS 1.3 resumes by ticket" Reused "$(resumed "$P" -tls1_3)"
done

finish
