#!/usr/bin/env bash
# The edge benchmark (issue 4): full TLS 1.3 handshakes per second of certkeep's edge, nginx and
# HAProxy with the same kind of ECDSA P-256 certificate, session resumption off, each server on
# core 0 and the load client (hsload, which does no crypto) on core 1; then many certificates:
# load time, resident memory per certificate and the rate with SNI picked at random.
# Not a test: it prints figures and ratios. See bench/edge/README.md.
#
#   bench/edge/run.sh
# Environment: DURATION (s per round, default 10), WARMUP (2), ROUNDS (3: the servers are
# measured in turn ROUNDS times and the median is kept, so that a neighbour's load on a shared
# machine hits every server alike), CONCURRENCY (64), COUNT (certificates for
# certkeep, 100000), PEER_COUNT (for nginx and HAProxy, 10000), SKIP_MANY=1 (one-name part
# only), S_TIME=1 (also run `openssl s_time` against nginx, to show a crypto client is the
# bottleneck), CERTKEEP (binary, default build/certkeep), FORCE_CERTKEEP=1 (measure certkeep
# even when `certkeep serve --help` does not mention --production), KEEP=1 (keep the temp folder),
# BENCH_DIR (a folder kept between runs: certificates and certkeep's data are made only once),
# EDGE_CACHE (certkeep's --edge-cache, COUNT), FILL_SECONDS (random names sent to certkeep
# before its measured rounds, to fill its cache: 120), AB_SECONDS and AB_WINDOW (each ratio is
# also measured in hsload's A/B mode: both loads in turn in AB_WINDOW-second windows, 2, until
# each has had AB_SECONDS, 30; 0 skips it), COLD_COUNT (certificates coldcert caches in-process
# to time what a cold certificate costs, 30000, at most COUNT; 0 skips it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/edge
CERTKEEP=${CERTKEEP:-$ROOT/build/certkeep}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-64}
COUNT=${COUNT:-100000}
PEER_COUNT=${PEER_COUNT:-10000}
LOAD_WAIT=${LOAD_WAIT:-900} # seconds a server may take to load its certificates
# certkeep's cache of parsed certificates (serve --edge-cache): about 2.9 KB each for an ECDSA
# P-256 certificate, on top of 0.86 KiB each for the table, so every one of 100,000 certificates
# stays parsed within the issue's 4 KiB each (3.7 KiB)
EDGE_CACHE=${EDGE_CACHE:-$COUNT}
# Random names before certkeep's measured rounds, until its cache is full: at about 4,000
# handshakes a second, 60 s of uniformly random names touch only 90% of 100,000 (1 - e^-2.4), so
# the rounds began with twice the steady miss rate; 120 s touch 99%.
FILL_SECONDS=${FILL_SECONDS:-120}
# coldcert's certificates: 30,000 parsed take about 100 MB, three times the last-level cache here
COLD_COUNT=${COLD_COUNT:-30000}
AB_SECONDS=${AB_SECONDS:-30}
AB_WINDOW=${AB_WINDOW:-2}
SERVER_CPU=0
CLIENT_CPU=1
# BENCH_DIR: a folder kept between runs, so that certkeep's provisioning (minutes for 100,000
# certificates through the API) is done once and later runs only measure
if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
    WORK=$(cd "$BENCH_DIR" && pwd)
    KEEP=1
else
    WORK=$(mktemp -d /tmp/certkeep-bench-edge.XXXXXX)
fi
BIN=$WORK/bin
declare -A PID ONE_RATE ONE_CPU_RATE BASE_RSS SERVER_PORT AB_ONE

cleanup() {
    local name
    for name in "${!PID[@]}"; do stop_server "$name"; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }

stop_server() { # NAME
    local pid=${PID[$1]:-} i
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$1]"
}

install_peers() {
    local missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_tools() {
    local flags="-O2 -std=c17 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -Wall -Wextra -Werror
        -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla"
    mkdir -p "$BIN"
    # shellcheck disable=SC2086
    cc $flags -o "$BIN/hsload" "$HERE/hsload.c" -lssl -lcrypto
    # shellcheck disable=SC2086
    cc $flags -o "$BIN/gencerts" "$HERE/gencerts.c" -lssl -lcrypto
    # hsinproc links certkeep's library (from `make`); without it, that part is skipped
    if [ -f "$ROOT/build/libcertkeep.a" ]; then
        # shellcheck disable=SC2046,SC2086
        cc $flags -I"$ROOT/src" -o "$BIN/hsinproc" "$HERE/hsinproc.c" "$ROOT/build/libcertkeep.a" \
            $(pkg-config --libs openssl libsodium nettle) -ljemalloc
        # shellcheck disable=SC2046,SC2086
        cc $flags -I"$ROOT/src" -o "$BIN/coldcert" "$HERE/coldcert.c" "$ROOT/build/libcertkeep.a" \
            $(pkg-config --libs openssl libsodium nettle) -ljemalloc || say "coldcert not built"
    fi
}

free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((10000 + RANDOM % 22000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_port PORT SECONDS PID: 0 once something accepts on 127.0.0.1:PORT.
wait_port() {
    local i
    for i in $(seq 1 $(($2 * 20))); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

# start_server NAME PORT SECONDS CMD...: starts CMD on the server core, waits for the port and
# sets LOAD_SECONDS and RSS_KIB.
start_server() {
    local name=$1 port=$2 wait=$3 started
    shift 3
    started=$(now)
    taskset -c $SERVER_CPU "$@" >>"$WORK/$name.log" 2>&1 &
    PID[$name]=$!
    if ! wait_port "$port" "$wait" "${PID[$name]}"; then
        say "$name: did not start on 127.0.0.1:$port within $wait s"
        tail -5 "$WORK/$name.log"
        stop_server "$name"
        return 1
    fi
    LOAD_SECONDS=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    RSS_KIB=$(rss_kib "${PID[$name]}")
}

# measure_once NAME PORT hsload-args...: one window against server NAME; sets RATE (handshakes
# per second) and CPU_RATE (per second of CPU the server used), appends hsload's line to the log.
measure_once() {
    local name=$1 port=$2 line
    shift 2
    line=$(taskset -c $CLIENT_CPU "$BIN/hsload" --connect "127.0.0.1:$port" --duration "$DURATION" \
        --warmup "$WARMUP" --concurrency "$CONCURRENCY" --server-pid "${PID[$name]}" "$@") || {
        say "$name: hsload failed (see above)"
        RATE=0 CPU_RATE=0
        return 0
    }
    printf '%s\n' "$line" >>"$WORK/hsload.log"
    RATE=$(printf '%s\n' "$line" | sed -n 's/.* rate=\([0-9.]*\).*/\1/p')
    CPU_RATE=$(printf '%s\n' "$line" | sed -n 's/.* per_server_cpu_second=\([0-9.]*\).*/\1/p')
    SERVER_SHARE=$(printf '%s\n' "$line" | sed -n 's/.* server_cpu=\([0-9]*%\).*/\1/p')
    CLIENT_SHARE=$(printf '%s\n' "$line" | sed -n 's/.* client_cpu=\([0-9]*%\).*/\1/p')
}

# ab NAME_A PORT_A "ARGS_A" NAME_B PORT_B "ARGS_B": hsload's A/B mode (see hsload.c), B's
# arguments in their second-target form (--sni2, --sni-file2). Both loads take turns in
# AB_WINDOW-second windows, so a slow minute on a shared machine slows both alike. Sets AB_RATIO
# (B over A, per server CPU second) and AB_PAIRS (min/median/max of the windows' pair ratios).
ab() {
    local out
    AB_RATIO=0 AB_PAIRS=-
    [ "$AB_SECONDS" != 0 ] || return 0
    # shellcheck disable=SC2086
    out=$(taskset -c $CLIENT_CPU "$BIN/hsload" --connect "127.0.0.1:$2" $3 \
        --server-pid "${PID[$1]}" --connect2 "127.0.0.1:$5" $6 --server-pid2 "${PID[$4]}" \
        --alternate "$AB_WINDOW" --duration "$AB_SECONDS" --warmup "$WARMUP" \
        --concurrency "$CONCURRENCY" --check 0 2>>"$WORK/hsload.log") || {
        say "A/B $1 and $4: hsload failed (see $WORK/hsload.log)"
        return 0
    }
    printf '%s\n' "$out" >>"$WORK/hsload.log"
    AB_RATIO=$(printf '%s\n' "$out" | sed -n 's/^hsload-ab: ratio=\([0-9.]*\).*/\1/p')
    AB_PAIRS=$(printf '%s\n' "$out" | sed -n 's/^hsload-ab: .* pair_ratios=\([0-9./]*\).*/\1/p')
}

# rounds "LABEL|NAME|PORT|hsload args" ...: measures each in turn ROUNDS times and prints the
# medians; sets MEDIAN[LABEL] and CPU_MEDIAN[LABEL].
declare -A MEDIAN CPU_MEDIAN
rounds() {
    local -A rates cpu_rates shares
    local r spec label name port
    for r in $(seq 1 "$ROUNDS"); do
        for spec in "$@"; do
            IFS='|' read -r label name port args <<<"$spec"
            # shellcheck disable=SC2086
            measure_once "$name" "$port" $args
            rates[$label]+="$RATE "
            cpu_rates[$label]+="$CPU_RATE "
            shares[$label]+="$SERVER_SHARE/$CLIENT_SHARE "
        done
    done
    for spec in "$@"; do
        label=${spec%%|*}
        MEDIAN[$label]=$(median <<<"${rates[$label]}")
        CPU_MEDIAN[$label]=$(median <<<"${cpu_rates[$label]}")
        printf '%-36s %7.0f handshakes/s  %7.0f per server CPU second  (server/client CPU: %s)\n' \
            "$label" "${MEDIAN[$label]}" "${CPU_MEDIAN[$label]}" "${shares[$label]% }"
    done
}

make_ca() {
    local d=$WORK/pki
    ONE_NAME=h1.bench.example
    ONE_PEM=$d/pem/$ONE_NAME.pem
    [ -f "$d/ca.pem" ] && [ -f "$ONE_PEM" ] && return 0 # a kept BENCH_DIR
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
        -out "$d/ca.pem" -days 365 -subj /CN=certkeep-bench-ca \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    "$BIN/gencerts" leaves "$d/ca.pem" "$d/ca.key" 1 "$d"
}

nginx_conf() { # FILE PORT SERVER_BLOCKS_FILE
    cat >"$1" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err crit;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK;
    uwsgi_temp_path $WORK; scgi_temp_path $WORK;
    server_names_hash_max_size 1048576;
    server_names_hash_bucket_size 128;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    include $3;
}
EOF
}

nginx_servers() { # NAMES_FILE PORT PEM_DIR > server blocks, the first is the default
    awk -v port="$2" -v dir="$3" '{
        printf "server { listen 127.0.0.1:%s ssl%s; server_name %s; ", port, NR == 1 ? " default_server" : "", $1
        printf "ssl_certificate %s/%s.pem; ssl_certificate_key %s/%s.pem; return 200; }\n", dir, $1, dir, $1
    }' "$1"
}

haproxy_conf() { # FILE PORT CRT_LIST
    cat >"$1" <<EOF
global
    nbthread 1
    maxconn 4096
    tune.ssl.cachesize 0
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend edge
    bind 127.0.0.1:$2 ssl crt-list $3 ssl-min-ver TLSv1.3 no-tls-tickets
    http-request return status 200
EOF
}

run_nginx() { # NAMES_FILE LABEL
    local port
    port=$(free_port)
    nginx_servers "$1" "$port" "$PKI_DIR/pem" >"$WORK/nginx-servers.conf"
    nginx_conf "$WORK/nginx.conf" "$port" "$WORK/nginx-servers.conf"
    start_server nginx "$port" "$LOAD_WAIT" nginx -c "$WORK/nginx.conf" -p "$WORK" || return 1
    PORT=$port
}

run_haproxy() { # NAMES_FILE
    local port
    port=$(free_port)
    sed "s|^|$PKI_DIR/pem/|; s|$|.pem|" "$1" >"$WORK/crt-list"
    haproxy_conf "$WORK/haproxy.cfg" "$port" "$WORK/crt-list"
    start_server haproxy "$port" "$LOAD_WAIT" haproxy -db -f "$WORK/haproxy.cfg" || return 1
    PORT=$port
}

certkeep_available() {
    [ -x "$CERTKEEP" ] || return 1
    [ "${FORCE_CERTKEEP:-0}" = 1 ] || "$CERTKEEP" serve --help 2>&1 | grep -q -- --production
}

# run_certkeep NAMES_FILE COUNT: provisions COUNT names through the API (only once), then
# restarts the daemon so the load time is the edge's table built from the store.
run_certkeep() {
    local data=$WORK/certkeep.$2 api_port port
    if [ ! -f "$data/provisioned.$2" ]; then
        rm -rf "$data"
        CERTKEEP_TOKEN=$("$CERTKEEP" init --data "$data" 2>>"$WORK/certkeep.log")
        export CERTKEEP_TOKEN
        api_port=$(free_port)
        export CERTKEEP_ADDR=http://127.0.0.1:$api_port
        # --no-scheduler: provision.py takes every order step itself
        start_server certkeep "$api_port" 30 "$CERTKEEP" serve --data "$data" \
            --api "127.0.0.1:$api_port" --no-scheduler || return 1
        "$CERTKEEP" roots add "$PKI_DIR/ca.pem" >/dev/null
        python3 "$HERE/provision.py" "127.0.0.1:$api_port" "$1" "$2" "$WORK/provision" \
            "$BIN/gencerts" "$PKI_DIR/ca.pem" "$PKI_DIR/ca.key" >>"$WORK/provision.log" || {
            tail -3 "$WORK/provision.log"
            stop_server certkeep
            return 1
        }
        stop_server certkeep
        touch "$data/provisioned.$2"
    fi
    api_port=$(free_port)
    port=$(free_port)
    local log_lines started
    touch "$WORK/certkeep.log"
    log_lines=$(wc -l <"$WORK/certkeep.log")
    started=$(now)
    start_server certkeep "$port" "$LOAD_WAIT" "$CERTKEEP" serve --data "$data" \
        --api "127.0.0.1:$api_port" --production "127.0.0.1:$port" --no-scheduler \
        --no-monitor --edge-cache "$EDGE_CACHE" || return 1
    PORT=$port
    # The listener may accept before the table is built: the load ends with the edge's
    # "edge production: serving N certificates" line.
    local i
    for i in $(seq 1 $((LOAD_WAIT * 20))); do
        tail -n +"$((log_lines + 1))" "$WORK/certkeep.log" | grep -q 'edge production: serving' && break
        sleep 0.05
    done
    LOAD_SECONDS=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    RSS_KIB=$(rss_kib "${PID[certkeep]}")
    tail -n +"$((log_lines + 1))" "$WORK/certkeep.log" | grep -o 'edge production: serving.*' || true
}

# one_name SERVERS...: starts each with one certificate, then measures them in turn.
one_name() {
    local specs=() server
    for server in "$@"; do
        if "run_$server" "$WORK/one-name.txt" 1; then
            BASE_RSS[$server]=$RSS_KIB
            specs+=("$server, one certificate|$server|$PORT|--sni $ONE_NAME")
            SERVER_PORT[$server]=$PORT
            [ "$server" = nginx ] && NGINX_PORT=$PORT
        fi
    done
    [ ${#specs[@]} -gt 0 ] || return 0
    rounds "${specs[@]}"
    for server in "$@"; do
        [ -n "${MEDIAN[$server, one certificate]:-}" ] || continue
        ONE_RATE[$server]=${MEDIAN[$server, one certificate]}
        ONE_CPU_RATE[$server]=${CPU_MEDIAN[$server, one certificate]}
    done
    if [ "${S_TIME:-0}" = 1 ] && [ -n "${PID[nginx]:-}" ]; then
        say "openssl s_time against nginx (a client doing its own crypto, for comparison):"
        taskset -c $CLIENT_CPU openssl s_time -connect "127.0.0.1:$NGINX_PORT" -new -tls1_3 \
            -time "$DURATION" 2>&1 | grep 'connections in .* real' || true
    fi
    # The same ratios in A/B mode: certkeep and one peer take turns on core 0. First certkeep
    # against itself: how far from 1 the method lands on this machine at this hour.
    local peer
    if [ -n "${PID[certkeep]:-}" ]; then
        ab certkeep "${SERVER_PORT[certkeep]}" "--sni $ONE_NAME" \
            certkeep "${SERVER_PORT[certkeep]}" "--sni2 $ONE_NAME"
        AB_ONE[itself]="$AB_RATIO (pair ratios min/median/max $AB_PAIRS)"
    fi
    for peer in nginx haproxy; do
        if [ -z "${PID[certkeep]:-}" ] || [ -z "${PID[$peer]:-}" ]; then continue; fi
        ab "$peer" "${SERVER_PORT[$peer]}" "--sni $ONE_NAME" \
            certkeep "${SERVER_PORT[certkeep]}" "--sni2 $ONE_NAME"
        AB_ONE[$peer]="$AB_RATIO (pair ratios min/median/max $AB_PAIRS)"
    done
    for server in "$@"; do stop_server "$server"; done
}

# many SERVER COUNT: load time, memory per certificate, one-name and random-name rates.
many() {
    local server=$1 count=$2 names=$WORK/names.$2.txt per_cert one random
    head -n "$count" "$PKI_DIR/names.txt" >"$names"
    if ! "run_$server" "$names" "$count"; then
        say "$server: could not load $count certificates"
        return 0
    fi
    per_cert=$(awk -v a="$RSS_KIB" -v b="${BASE_RSS[$server]:-0}" -v n="$count" \
        'BEGIN { printf "%.2f", (a - b) / n }')
    say "$server, $count certificates: loaded in $LOAD_SECONDS s, VmRSS $RSS_KIB KiB," \
        "$per_cert KiB per certificate over the one-certificate server"
    one="$server, $count certs, one name"
    random="$server, $count certs, random names"
    # A first short pass checks that random names get their own certificates.
    "$BIN/hsload" --connect "127.0.0.1:$PORT" --sni-file "$names" --check 5 --duration 0.2 \
        --warmup 0 >/dev/null || say "$server: the certificate check failed"
    if [ "$server" = certkeep ] && [ "$FILL_SECONDS" != 0 ]; then
        # Steady state: certkeep's cache of parsed certificates starts empty (the peers parse
        # everything at start), so random names run FILL_SECONDS before the measured rounds.
        taskset -c $CLIENT_CPU "$BIN/hsload" --connect "127.0.0.1:$PORT" --sni-file "$names" \
            --check 0 --duration "$FILL_SECONDS" --warmup 0 >/dev/null || true
    fi
    rounds "$one|$server|$PORT|--sni $(head -n 1 "$names") --check 0" \
        "$random|$server|$PORT|--sni-file $names --check 0"
    ab "$server" "$PORT" "--sni $(head -n 1 "$names")" "$server" "$PORT" "--sni-file2 $names"
    local ab_line="A/B ($AB_WINDOW s windows, $AB_SECONDS s each): $AB_RATIO"
    ab_line+=" (pair ratios min/median/max $AB_PAIRS)"
    # certkeep's cache of parsed certificates grew during the rounds: the memory that counts is
    # the resident size now.
    local rss_after
    rss_after=$(rss_kib "${PID[$server]}")
    say "$server, $count certificates after the rounds: VmRSS $rss_after KiB," \
        "$(awk -v a="$rss_after" -v b="${BASE_RSS[$server]:-0}" -v n="$count" \
            'BEGIN { printf "%.2f", (a - b) / n }') KiB per certificate over the one-certificate server"
    say "$server: random names / one name = $(ratio "${MEDIAN[$random]}" "${MEDIAN[$one]}")" \
        "(per server CPU second: $(ratio "${CPU_MEDIAN[$random]}" "${CPU_MEDIAN[$one]}"));" \
        "$ab_line"
    stop_server "$server"
}

main() {
    install_peers
    build_tools
    make_ca
    PKI_DIR=$WORK/pki
    echo "$ONE_NAME" >"$WORK/one-name.txt"
    say "edge benchmark: servers on core $SERVER_CPU, hsload on core $CLIENT_CPU," \
        "$DURATION s after $WARMUP s warm-up, $CONCURRENCY connections in flight"
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$load" 'BEGIN { exit !(l > 0.5) }' &&
        say "warning: load average $load: other work shares these cores; compare the figures" \
            "per server CPU second, or run again on an idle machine"
    local servers=(nginx haproxy)
    if certkeep_available; then
        servers+=(certkeep)
    else
        say "certkeep: edge not available in this build"
    fi
    if [ -x "$BIN/hsinproc" ]; then
        say "in-process, server CPU per full TLS 1.3 handshake (hsinproc, best of 4 rounds):"
        taskset -c "$SERVER_CPU" "$BIN/hsinproc" 2000 4 | tail -n 1 | sed 's/^/  /'
    fi
    one_name "${servers[@]}"
    if [ -n "${ONE_RATE[certkeep]:-}" ]; then
        say "certkeep/nginx = $(ratio "${ONE_RATE[certkeep]}" "${ONE_RATE[nginx]:-0}")," \
            "certkeep/haproxy = $(ratio "${ONE_RATE[certkeep]}" "${ONE_RATE[haproxy]:-0}")" \
            "(targets >= 1.1); per server CPU second:" \
            "$(ratio "${ONE_CPU_RATE[certkeep]}" "${ONE_CPU_RATE[nginx]:-0}")," \
            "$(ratio "${ONE_CPU_RATE[certkeep]}" "${ONE_CPU_RATE[haproxy]:-0}")"
        [ "$AB_SECONDS" = 0 ] ||
            say "A/B ($AB_WINDOW s windows, $AB_SECONDS s each, per server CPU second):" \
                "certkeep/nginx = ${AB_ONE[nginx]:-}, certkeep/haproxy = ${AB_ONE[haproxy]:-};" \
                "certkeep against itself = ${AB_ONE[itself]:-} (the method's own spread)"
    fi
    [ "${SKIP_MANY:-0}" = 1 ] && return 0
    local most=$PEER_COUNT
    [ -n "${ONE_RATE[certkeep]:-}" ] && [ "$COUNT" -gt "$most" ] && most=$COUNT
    if [ "$(wc -l <"$PKI_DIR/names.txt" 2>/dev/null || echo 0)" -lt "$most" ]; then
        say "generating $most certificates (one shared key)..."
        # The same CA and key; h1.bench.example is rewritten like the others.
        "$BIN/gencerts" leaves "$PKI_DIR/ca.pem" "$PKI_DIR/ca.key" "$most" "$PKI_DIR"
    fi
    many nginx "$PEER_COUNT"
    many haproxy "$PEER_COUNT"
    [ -n "${ONE_RATE[certkeep]:-}" ] && many certkeep "$COUNT"
    if [ -n "${ONE_RATE[certkeep]:-}" ] && [ -x "$BIN/coldcert" ] && [ "$COLD_COUNT" != 0 ]; then
        local cold=$COLD_COUNT
        [ "$cold" -le "$COUNT" ] || cold=$COUNT
        say "in-process, what a cold certificate costs the handshake steps that touch it (coldcert):"
        taskset -c "$SERVER_CPU" "$BIN/coldcert" "$PKI_DIR" "$cold" 20000 5 | sed 's/^ */  /' ||
            say "coldcert failed"
    fi
    [ -n "${ONE_RATE[certkeep]:-}" ] && [ "$COUNT" != "$PEER_COUNT" ] && say "note: nginx and HAProxy load $PEER_COUNT certificates," \
        "certkeep $COUNT (PEER_COUNT and COUNT)"
    return 0
}

main "$@"
