# Shared by the integration scenarios: a temp folder per scenario removed by a trap, the real
# daemon started on a free loopback port, and TAP output ("ok - ..." / "not ok - ...").
# Scenarios: `source "$(dirname "$0")/lib.sh"`, then use start_daemon, api, ck, check_*.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CERTKEEP=${CERTKEEP:-$ROOT/build/certkeep}
WORK=$(mktemp -d /tmp/certkeep-test.XXXXXX)
DATA=$WORK/data
DAEMON_PID=""
DAEMON_LOG=$WORK/daemon.log
FAILED=0
# LeakSanitizer reports end the process with status 23 so a leak at exit fails the scenario.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
    [ -n "${EXTRA_PIDS:-}" ] && kill $EXTRA_PIDS 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() {
    echo "not ok - $*"
    FAILED=1
}
diag() { echo "#   $*"; }

check() { # description command...
    local desc=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$desc"; else not_ok "$desc"; fi
}
check_eq() { # description expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else
        not_ok "$1"
        diag "expected: $2"
        diag "actual:   $3"
    fi
}
check_contains() { # description needle haystack
    case $3 in
    *"$2"*) ok "$1" ;;
    *)
        not_ok "$1"
        diag "missing: $2"
        diag "in:      $(printf '%s' "$3" | head -c 600)"
        ;;
    esac
}
check_not_contains() { # description needle haystack
    case $3 in
    *"$2"*)
        not_ok "$1"
        diag "unexpected: $2"
        ;;
    *) ok "$1" ;;
    esac
}

free_port() { # prints a loopback TCP port nobody listens on
    local p i
    for i in $(seq 1 50); do
        # below the ephemeral range (32768-60999), where no outgoing connection holds the port
        p=$((10000 + RANDOM % 22000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# nginx_start DIR PORT CERT KEY: a real nginx (one worker, no master daemonising) serving CERT
# with TLS on 127.0.0.1:PORT, its configuration, pid and logs in DIR; 0 once it listens (5 s at
# most). Its pid joins EXTRA_PIDS, stopped by finish.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
nginx_start() {
    local dir=$1 port=$2 i
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $3;
        ssl_certificate_key $4;
        location / { return 200 "ok\n"; }
    }
}
CONF
    [ -x "$NGINX" ] || return 1
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e stderr -g 'daemon off;' 2>>"$dir/error.log" &
    EXTRA_PIDS="${EXTRA_PIDS:-} $!"
    for i in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# wait_served PREVIOUS_SERIAL SECONDS: until the scenario's own `served` function (which prints
# "SERIAL ..." of what a listener serves, or nothing) shows a certificate other than
# PREVIOUS_SERIAL; prints that line. Polls twice a second.
wait_served() {
    local i s
    for i in $(seq 1 $(($2 * 2))); do
        s=$(served)
        if [ -n "$s" ] && [ "${s%% *}" != "$1" ]; then
            echo "$s"
            return 0
        fi
        sleep 0.5
    done
    return 1
}

wait_for_http() { # url [seconds]
    local i
    for i in $(seq 1 $((${2:-10} * 10))); do
        curl -s -o /dev/null -k "$1" && return 0
        sleep 0.1
    done
    return 1
}

init_data() { # creates $DATA and sets ADMIN_TOKEN
    ADMIN_TOKEN=$("$CERTKEEP" init --data "$DATA" 2>"$WORK/init.err")
    export CERTKEEP_TOKEN=$ADMIN_TOKEN
}

start_daemon() { # [extra serve args...]; sets PORT, CERTKEEP_ADDR
    [ -f "$DATA/certkeep.db" ] || init_data
    PORT=$(free_port)
    export CERTKEEP_ADDR=http://127.0.0.1:$PORT
    "$CERTKEEP" serve --data "$DATA" --api "127.0.0.1:$PORT" "$@" >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    if ! wait_for_http "$CERTKEEP_ADDR/healthz" 15; then
        not_ok "daemon started on 127.0.0.1:$PORT"
        sed 's/^/#   /' "$DAEMON_LOG" | tail -20
        exit 1
    fi
}

stop_daemon() { # SIGTERM; sets DAEMON_STATUS
    DAEMON_STATUS=none
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID"
    DAEMON_STATUS=$?
    DAEMON_PID=""
}

# api METHOD PATH [JSON_BODY|@FILE] — sets STATUS and BODY; uses $TOKEN if set, else CERTKEEP_TOKEN.
api() {
    local method=$1 path=$2 data=${3:-} out=$WORK/api.out
    local args=(-s -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer ${TOKEN:-$CERTKEEP_TOKEN}")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    STATUS=$(curl "${args[@]}" "$CERTKEEP_ADDR$path")
    BODY=$(cat "$out")
}

ck() { "$CERTKEEP" "$@"; } # the CLI, with CERTKEEP_ADDR/CERTKEEP_TOKEN from the environment

json() { printf '%s' "$BODY" | jq -r "$@"; }

wait_state() { # order state [seconds, 30]: prints the order's state once it is `state` or failed
    local i s
    for i in $(seq 1 $((${3:-30} * 10))); do
        s=$(ck order show "$1" --json 2>/dev/null | jq -r .state)
        [ "$s" = "$2" ] || [ "$s" = failed ] && break
        sleep 0.1
    done
    echo "$s"
}

wait_job_end() { # order type [seconds, 30]: prints the state of the order's job of that type
    local i s     # once it has ended (finished or failed)
    for i in $(seq 1 $((${3:-30} * 10))); do
        s=$(ck jobs --order "$1" --json 2>/dev/null | jq -r --arg t "$2" '[.jobs[] | select(.type == $t)][0].state')
        [ "$s" = finished ] || [ "$s" = failed ] && break
        sleep 0.1
    done
    echo "$s"
}

finish() {
    if [ -n "$DAEMON_PID" ]; then
        stop_daemon
        check_eq "daemon stopped cleanly on SIGTERM (no leak, no sanitizer report)" 0 "$DAEMON_STATUS"
    fi
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$DAEMON_LOG" 2>/dev/null; then
        not_ok "no sanitizer report in the daemon log"
        grep -E -A8 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$DAEMON_LOG" | head -40 | sed 's/^/#   /'
    fi
    exit $FAILED
}
