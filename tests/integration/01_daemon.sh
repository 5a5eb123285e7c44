#!/usr/bin/env bash
# init, serve, HTTPS, the loopback rule, SIGTERM and restart.
source "$(dirname "$0")/lib.sh"

out=$("$CERTKEEP" init --data "$DATA" 2>"$WORK/init.err")
check_eq "init exits 0" 0 $?
check_eq "init prints one line on stdout" 1 "$(printf '%s\n' "$out" | wc -l)"
check "the line is a token" grep -qE '^ck_[0-9a-f]{64}$' <<<"$out"
export CERTKEEP_TOKEN=$out
check_eq "master key file is 0600" 600 "$(stat -c %a "$DATA/master.key")"
check_eq "database is 0600" 600 "$(stat -c %a "$DATA/certkeep.db")"
check_eq "database is in WAL mode" wal "$(sqlite3 "$DATA/certkeep.db" 'PRAGMA journal_mode;')"
check "schema version is recorded" test "$(sqlite3 "$DATA/certkeep.db" 'SELECT max(version) FROM schema_migrations;')" -ge 1
check_eq "the token is stored hashed, never in clear" 0 "$(grep -c "${out#ck_}" "$DATA/certkeep.db" || true)"

"$CERTKEEP" init --data "$DATA" >/dev/null 2>"$WORK/init2.err"
check_eq "a second init refuses to overwrite (exit 1)" 1 $?
check_contains "and says why" "already" "$(cat "$WORK/init2.err")"

"$CERTKEEP" serve --data "$DATA" --api 0.0.0.0:1 >/dev/null 2>"$WORK/nonloop.err"
check_eq "plain HTTP on a non-loopback address is refused (exit 2)" 2 $?
check_contains "with a message naming --insecure-http" "--insecure-http" "$(cat "$WORK/nonloop.err")"

start_daemon
api GET /healthz
check_eq "healthz answers 200" 200 "$STATUS"
api POST /v1/enrollments '{"name":"keep","cn":"keep.example.com"}'
check_eq "an enrollment is created" 201 "$STATUS"
stop_daemon
check_eq "SIGTERM stops the daemon with status 0 (no leak)" 0 "$DAEMON_STATUS"

start_daemon
api GET /v1/enrollments/keep
check_eq "after a restart the enrollment is still there" "200 keep.example.com" "$STATUS $(json .cn)"
stop_daemon

# HTTPS with a certificate of the test's own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/api.key" -out "$WORK/api.crt" 2>/dev/null
PORT=$(free_port)
"$CERTKEEP" serve --data "$DATA" --api "127.0.0.1:$PORT" --api-cert "$WORK/api.crt" --api-key "$WORK/api.key" >>"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!
wait_for_http "https://127.0.0.1:$PORT/healthz" 15
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/api.crt" -H "Authorization: Bearer $CERTKEEP_TOKEN" "https://127.0.0.1:$PORT/v1/enrollments/keep")
check_eq "HTTPS API answers with --api-cert/--api-key" 200 "$code"
proto=$(curl -s -o /dev/null -w '%{http_code}' --tls-max 1.1 --cacert "$WORK/api.crt" "https://127.0.0.1:$PORT/healthz" || true)
check_eq "TLS 1.1 is refused" 000 "$proto"
CERTKEEP_ADDR=https://127.0.0.1:$PORT CERTKEEP_CA_FILE=$WORK/api.crt "$CERTKEEP" enrollment show keep >"$WORK/show.out" 2>&1
check_eq "the CLI talks HTTPS with CERTKEEP_CA_FILE" 0 $?
finish
