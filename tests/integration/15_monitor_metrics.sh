#!/usr/bin/env bash
# Expiry monitoring and metrics (issue 6, items 5 and 6). A local-CA enrollment is deployed to
# the production listener by the scheduler; it watches an nginx started here that serves another
# (self-made) certificate, and a port nobody listens on. With --monitor-interval 2s the daemon
# raises endpoint_mismatch and endpoint_unreachable once each, and nothing for the production
# listener, which serves the deployed certificate. Then /metrics: a token needed, each tenant
# seeing its own series and the operator every one, the production expiry equal to the served
# notAfter, orders by state, handshake counters that move with real handshakes to the edge (and
# errors with an unknown SNI); /healthz stays public.
source "$(dirname "$0")/lib.sh"
cd "$WORK" || exit 1

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    "$ROOT/scripts/install-deps.sh" --test >/dev/null 2>&1 || true
fi

PRD=$(free_port)
start_daemon --production "127.0.0.1:$PRD" --monitor-interval 2s

# ---- serve options ----
for bad in 0s 8d 1x; do
    out=$("$CERTKEEP" serve --data "$DATA" --api 127.0.0.1:1 --monitor-interval "$bad" 2>&1)
    check_eq "--monitor-interval $bad is a usage error (exit 2)" 2 $?
done
check_contains "and the message says the range" "from 1s to 7d" "$out"

# ---- an nginx serving a certificate certkeep never issued ----
NDIR=$WORK/nginx
mkdir -p "$NDIR"
NPORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=api.example.com -addext subjectAltName=DNS:api.example.com \
    -keyout "$NDIR/key.pem" -out "$NDIR/cert.pem" 2>/dev/null
HAVE_NGINX=0
nginx_start "$NDIR" "$NPORT" "$NDIR/cert.pem" "$NDIR/key.pem" && HAVE_NGINX=1
check_eq "nginx listens on 127.0.0.1:$NPORT" 1 "$HAVE_NGINX"
DEAD=$(free_port)

# ---- the watch list: input checks ----
ck ca init >/dev/null 2>&1
ck issuer create mine --local >/dev/null 2>&1
check_eq "issuer create mine --local" 0 $?
bad_watch() { # description watch-json needle
    api POST /v1/enrollments "{\"name\":\"bad\",\"cn\":\"bad.example.com\",\"watch\":$2}"
    check_eq "$1: 400" 400 "$STATUS"
    check_contains "$1: the error names it" "$3" "$(json .error.message)"
}
bad_watch "port 70000" '["127.0.0.1:70000"]' '127.0.0.1:70000'
bad_watch "port 0" '["127.0.0.1:0"]' 'from 1 to 65535'
bad_watch "no port" '["example.com"]' 'port is missing'
bad_watch "bad host" '["exa_mple.com:443"]' 'exa_mple.com:443'
bad_watch "IPv6 without brackets" '["::1:443"]' 'brackets'
bad_watch "bad SNI" '["127.0.0.1:443/-x-"]' 'SNI'
bad_watch "not a list" '"127.0.0.1:443"' 'array'
api POST /v1/enrollments '{"name":"bad","cn":"bad.example.com","watch":["127.0.0.1:1","x:99999"]}'
check_eq "one bad endpoint among good ones: 400 invalid_watch" invalid_watch "$(json .error.code)"
api GET /v1/enrollments/bad
check_eq "and nothing was created" 404 "$STATUS"
out=$(ck enrollment create bad --cn bad.example.com --watch 127.0.0.1:65536 2>&1)
check "the CLI exits non-zero for --watch 127.0.0.1:65536" test $? -ne 0
check_contains "and prints which endpoint is wrong" "127.0.0.1:65536" "$out"

# ---- a second daemon on the same database: each endpoint still raises one event ----
PORT2=$(free_port)
PRD2=$(free_port)
"$CERTKEEP" serve --data "$DATA" --api "127.0.0.1:$PORT2" --production "127.0.0.1:$PRD2" \
    --monitor-interval 2s >>"$WORK/daemon2.log" 2>&1 &
DAEMON2_PID=$!
EXTRA_PIDS="${EXTRA_PIDS:-} $DAEMON2_PID"
check "a second daemon shares the database" wait_for_http "http://127.0.0.1:$PORT2/healthz" 15

# ---- the enrollment: deployed by the scheduler, watched by the monitor ----
out=$(ck enrollment create api --cn api.example.com --issuer mine \
    --watch "127.0.0.1:$NPORT/API.example.com" --watch "127.0.0.1:$DEAD" 2>&1)
check_eq "enrollment create with two --watch" 0 $?
check_contains "show lists the watched endpoints (SNI lower-cased)" "127.0.0.1:$NPORT/api.example.com" "$out"
# A 60-second certificate renewed 50 s before expiry: the production listener serves a
# certificate inside its renewal window until the renewal is deployed 5 s before expiry.
out=$(ck enrollment create soon --cn soon.example.com --issuer mine --lifetime 60s \
    --renew-before 50s --deploy-before 5s 2>&1)
check_eq "enrollment create soon (60 s lifetime, renewal window 50 s)" 0 $?
api GET /v1/enrollments/api
check_eq "the API shows watch" "[\"127.0.0.1:$NPORT/api.example.com\",\"127.0.0.1:$DEAD\"]" "$(json -c .watch)"

served_pem() {
    openssl s_client -connect "127.0.0.1:$PRD" -servername api.example.com </dev/null 2>/dev/null |
        openssl x509 2>/dev/null
}
PEM=""
for _ in $(seq 1 60); do
    PEM=$(served_pem)
    [ -n "$PEM" ] && break
    sleep 0.5
done
check "the production listener serves api.example.com (within 30 s)" test -n "$PEM"

count_events() { # type [endpoint]
    api GET /v1/events
    json "[.events[] | select(.type == \"$1\") | select(\"${2:-}\" == \"\" or (.data.endpoint == \"${2:-}\"))] | length"
}
wait_event() { # type endpoint seconds
    local i
    for i in $(seq 1 $(($3 * 2))); do
        [ "$(count_events "$1" "$2")" -ge 1 ] && return 0
        sleep 0.5
    done
    return 1
}
# The monitor leaves a fresh deployment alone for 10 s, then probes every 2 s.
check "endpoint_mismatch for the nginx (within 30 s)" wait_event endpoint_mismatch "127.0.0.1:$NPORT/api.example.com" 30
check "endpoint_unreachable for the closed port (within 15 s)" wait_event endpoint_unreachable "127.0.0.1:$DEAD" 15
sleep 5 # two more intervals: the statuses hold, no new event
check_eq "endpoint_mismatch raised once, not every probe (two daemons probing)" 1 "$(count_events endpoint_mismatch)"
check_eq "endpoint_unreachable raised once" 1 "$(count_events endpoint_unreachable)"
api GET /v1/events
check_eq "no event about the production listener for api" 0 "$(json '[.events[] | select(.type | startswith("endpoint_")) | select(.data.endpoint == "production/api.example.com")] | length')"
check "endpoint_expiring for soon on the production listener (within 30 s)" \
    wait_event endpoint_expiring production/soon.example.com 30
check_eq "raised once" 1 "$(count_events endpoint_expiring production/soon.example.com)"
check_contains "the mismatch event says what is served" "not the deployed one" \
    "$(json '[.events[] | select(.type == "endpoint_mismatch")][0].message')"
NGINX_SERIAL=$(openssl x509 -in "$NDIR/cert.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
check_eq "and its data names the served serial" "$NGINX_SERIAL" \
    "$(json '[.events[] | select(.type == "endpoint_mismatch")][0].data.served_serial' | sed 's/^0*//')"

api GET /v1/enrollments/api/watch
check_eq "GET .../watch: 200" 200 "$STATUS"
st() { json ".endpoints[] | select(.endpoint == \"$1\") | .status"; }
check_eq "the production listener: ok" ok "$(st production/api.example.com)"
api GET /v1/enrollments/soon/watch
check_eq "soon on the production listener: expiring" expiring "$(st production/soon.example.com)"
api GET /v1/enrollments/api/watch
check_eq "the nginx: mismatch" mismatch "$(st "127.0.0.1:$NPORT/api.example.com")"
check_eq "the closed port: unreachable" unreachable "$(st "127.0.0.1:$DEAD")"
check_eq "kinds" "production custom custom" "$(json '[.endpoints[].kind] | join(" ")')"
check_eq "the interval" 2 "$(json .interval_seconds)"
out=$(ck enrollment watch api 2>&1)
check_contains "certkeep enrollment watch: mismatch" "mismatch" "$out"
check_contains "certkeep enrollment watch: unreachable" "unreachable" "$out"
check_contains "certkeep enrollment watch: the production listener" "production/api.example.com" "$out"

# ---- metrics ----
METRICS=$WORK/metrics.txt
metrics() { # [token]: sets MSTATUS, writes $METRICS
    MSTATUS=$(curl -s -o "$METRICS" -D "$WORK/metrics.head" -w '%{http_code}' \
        ${1:+-H "Authorization: Bearer $1"} "$CERTKEEP_ADDR/metrics")
}
metrics
check_eq "/metrics without a token: 401" 401 "$MSTATUS"
VIEWER=$(ck token create --role viewer 2>/dev/null)
metrics "$VIEWER"
check_eq "/metrics with a viewer token: 200" 200 "$MSTATUS"
check_contains "a viewer sees its tenant's expiries" 'enrollment="api"' "$(cat "$METRICS")"
api POST /v1/tenants '{"name":"acme"}'
ACME_ADMIN=$(ck token create --role admin --tenant acme 2>/dev/null)
metrics "$ACME_ADMIN"
check_eq "/metrics with another tenant's admin token: 200" 200 "$MSTATUS"
check "but nothing of tenant default crosses to it" \
    bash -c "! grep -q 'tenant=\"default\"' '$METRICS'"
check_contains "while the edge's counters are there" "certkeep_edge_handshakes_total" "$(cat "$METRICS")"
metrics "$ADMIN_TOKEN"
check_eq "/metrics with the operator's admin token: 200" 200 "$MSTATUS"
check_contains "Content-Type is the text format 0.0.4" "text/plain; version=0.0.4" "$(cat "$WORK/metrics.head")"
M=$(cat "$METRICS")
check_contains "HELP line" "# HELP certkeep_certificate_expiry_timestamp_seconds " "$M"
check_contains "TYPE line" "# TYPE certkeep_certificate_expiry_timestamp_seconds gauge" "$M"
NOT_AFTER=$(date -d "$(printf '%s' "$PEM" | openssl x509 -noout -enddate | cut -d= -f2)" +%s)
check_contains "the expiry equals the served certificate's notAfter" \
    "certkeep_certificate_expiry_timestamp_seconds{tenant=\"default\",enrollment=\"api\"} $NOT_AFTER" "$M"
check_contains "orders by state" 'certkeep_orders{tenant="default",state="deployed"} 2' "$M"
check_contains "job failures by type" 'certkeep_job_failures_total{type="issue"} 0' "$M"
check_contains "webhook failures family" "# TYPE certkeep_webhook_delivery_failures_total counter" "$M"
check_contains "watched endpoints by status" 'certkeep_watch_endpoints{tenant="default",status="mismatch"} 1' "$M"

edge_metric() { # name listener
    metrics "$ADMIN_TOKEN"
    sed -n "s/^$1{listener=\"$2\"} //p" "$METRICS"
}
H0=$(edge_metric certkeep_edge_handshakes_total production)
E0=$(edge_metric certkeep_edge_handshake_errors_total production)
C0=$(edge_metric certkeep_edge_cache_hits_total production)
check "a production handshake counter exists" test -n "$H0"
for _ in 1 2 3; do
    openssl s_client -connect "127.0.0.1:$PRD" -servername api.example.com </dev/null >/dev/null 2>&1
done
H1=$(edge_metric certkeep_edge_handshakes_total production)
check "3 handshakes later the counter grew by at least 3 ($H0 -> $H1)" test "$H1" -ge $((H0 + 3))
# The same certificate three times: parsed once at most, then found in the cache.
C1=$(edge_metric certkeep_edge_cache_hits_total production)
check "and the certificate cache answered at least 2 of them ($C0 -> $C1)" test "$C1" -ge $((C0 + 2))
check "the cache parsed it once at least (misses >= 1)" \
    test "$(edge_metric certkeep_edge_cache_misses_total production)" -ge 1
check "the cache holds it (and soon's, which the monitor probed)" \
    test "$(edge_metric certkeep_edge_cache_entries production)" -ge 1
check_eq "the cache's capacity is the default --edge-cache" 4096 \
    "$(edge_metric certkeep_edge_cache_capacity production)"
openssl s_client -connect "127.0.0.1:$PRD" -servername unknown.example.org </dev/null >/dev/null 2>&1
E1=$(edge_metric certkeep_edge_handshake_errors_total production)
check "an unknown SNI counts as a handshake error ($E0 -> $E1)" test "$E1" -ge $((E0 + 1))
check_eq "the staging listener (none here) counts nothing" 0 "$(edge_metric certkeep_edge_handshakes_total staging)"

# ---- health ----
check_eq "/healthz without a token: 200 ok" '200 {"status":"ok"}' \
    "$(curl -s -w '%{http_code}' -o "$WORK/h" "$CERTKEEP_ADDR/healthz"; printf ' %s' "$(cat "$WORK/h")")"

# ---- clearing the watch list ----
out=$(ck enrollment update api --no-watch 2>&1)
check_eq "enrollment update --no-watch" 0 $?
api GET /v1/enrollments/api/watch
check_eq "only the production listener is left" "production/api.example.com" "$(json '[.endpoints[].endpoint] | join(" ")')"
out=$(ck enrollment update api --watch 127.0.0.1:1 --no-watch 2>&1)
check_eq "--watch with --no-watch is a usage error" 2 $?

kill -TERM "$DAEMON2_PID"
wait "$DAEMON2_PID"
check_eq "the second daemon stopped cleanly on SIGTERM" 0 $?
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$WORK/daemon2.log"; then
    not_ok "no sanitizer report in the second daemon's log"
    grep -E -A8 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$WORK/daemon2.log" | head -40 | sed 's/^/#   /'
fi

# ---- endpoints that never answer are probed side by side, not one after another ----
# Four listeners that accept each connection and say nothing until the client closes it (the
# monitor's probe gives up after 5 s). They record the most connections open at once on each
# port and on all four. One daemon is left: with one probing thread there would be one at a time
# (two for an instant, when the next probe connects before the last close is seen), and an
# endpoint probed by two threads at once would show two on its port.
HOLDS=""
for _ in 1 2 3 4; do HOLDS="$HOLDS $(free_port)"; done
python3 - "$WORK/held" $HOLDS <<'PY' &
import selectors, socket, sys, time
out, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
sel = selectors.DefaultSelector()
for port in ports:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ, ("listen", port))
open_on = {p: 0 for p in ports}
most_on = {p: 0 for p in ports}
most = 0
end = time.time() + 120
while time.time() < end:
    for key, _ in sel.select(timeout=1):
        kind, port = key.data
        if kind == "listen":
            conn, _ = key.fileobj.accept()
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ, ("conn", port))
            open_on[port] += 1
        else:
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if data:
                continue
            sel.unregister(key.fileobj)
            key.fileobj.close()
            open_on[port] -= 1
        most = max(most, sum(open_on.values()))
        most_on[port] = max(most_on[port], open_on[port])
        with open(out, "w") as f:
            f.write("%d %d\n" % (most, max(most_on.values())))
PY
EXTRA_PIDS="${EXTRA_PIDS:-} $!"
WATCH_ARGS=()
for p in $HOLDS; do WATCH_ARGS+=(--watch "127.0.0.1:$p"); done
ck enrollment create slow --cn slow.example.com --issuer mine "${WATCH_ARGS[@]}" >/dev/null 2>&1
check_eq "an enrollment watching four silent endpoints" 0 $?
held() { cut -d' ' -f"$1" "$WORK/held" 2>/dev/null || echo 0; }
for _ in $(seq 1 90); do
    [ "$(held 1)" -ge 3 ] && break
    sleep 0.5
done
check "the monitor probed silent endpoints side by side (at most $(held 1) at once, within 45 s)" \
    test "$(held 1)" -ge 3
check_eq "and never one endpoint twice at once" 1 "$(held 2)"
for p in $HOLDS; do
    wait_event endpoint_unreachable "127.0.0.1:$p" 20 >/dev/null
done
sleep 3
api GET /v1/events
check_eq "each of them raised endpoint_unreachable once" "1 1 1 1" \
    "$(for p in $HOLDS; do json "[.events[] | select(.type == \"endpoint_unreachable\") | select(.data.endpoint == \"127.0.0.1:$p\")] | length"; done | tr '\n' ' ' | sed 's/ $//')"

finish
