#!/usr/bin/env bash
# The ACME benchmark (issue 5): certificates from the same pebble by certkeep and by the Debian
# packages of lego, certbot and uacme, by http-01 and by dns-01 (RFC 2136 updates to a BIND on
# loopback), one after another and many at once, then with pebble refusing a share of the nonces.
# Not a test: it prints a table of seconds per certificate, completed orders and ratios.
# See bench/acme/README.md.
#
#   bench/acme/run.sh [--count N] [--concurrent N] [--parallel N] [--nonce-count N]
#                     [--nonce-reject PERCENT] [--clients "certkeep lego certbot uacme"]
#                     [--challenges "http-01 dns-01"] [--modes "sequential concurrent nonce"]
#                     [--workers N] [--keep]
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/acme
CERTKEEP=${CERTKEEP:-$ROOT/build/certkeep}
COUNT=50
CONCURRENT=200
PARALLEL=20
NONCE_COUNT=30
NONCE_REJECT=30
CLIENTS="certkeep lego certbot uacme"
CHALLENGES="http-01 dns-01"
MODES="sequential concurrent nonce"
WORKERS=""
KEEP=0
ORDER_WAIT=180 # seconds one certificate may take before it counts as not completed
WORK=$(mktemp -d /tmp/certkeep-bench-acme.XXXXXX)
RESULTS=$WORK/results.tsv
PEBBLE_PID=""
DAEMON_PID=""
HTTPD_PID=""
BIND_PID=""

usage() {
    sed -n '8,11p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=${2:?}; shift ;;
    --concurrent) CONCURRENT=${2:?}; shift ;;
    --parallel) PARALLEL=${2:?}; shift ;;
    --nonce-count) NONCE_COUNT=${2:?}; shift ;;
    --nonce-reject) NONCE_REJECT=${2:?}; shift ;;
    --clients) CLIENTS=${2:?}; shift ;;
    --challenges) CHALLENGES=${2:?}; shift ;;
    --modes) MODES=${2:?}; shift ;;
    --workers) WORKERS=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    *) usage ;;
    esac
    shift
done

say() { printf '%s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

stop_pid() { # PID: TERM, then KILL after 5 s
    local i
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    # background peers (xargs and its children) first, then the servers
    for pid in $(jobs -p); do pkill -TERM -P "$pid" 2>/dev/null; done
    stop_pid "$DAEMON_PID"
    stop_pid "$HTTPD_PID"
    stop_pid "$PEBBLE_PID"
    [ -n "$BIND_PID" ] && bind_stop "$WORK/bind"
    if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

wait_for_url() { # url seconds
    local i
    for i in $(seq 1 $(($2 * 10))); do
        curl -s -o /dev/null -k "$1" && return 0
        sleep 0.1
    done
    return 1
}

median() { # reads numbers, one a line
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
        else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- shared set-up

install_peers() {
    local missing=() p
    for p in lego certbot uacme; do
        case " $CLIENTS " in *" $p "*) command -v "$p" >/dev/null || missing+=("$p") ;; esac
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

make_pebble_cert() { # pebble's HTTPS certificate, from a throwaway CA every client is told of
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=minica \
        -addext basicConstraints=critical,CA:TRUE -keyout minica.key -out minica.pem 2>/dev/null &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout pebble.key -out pebble.csr 2>/dev/null &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >pebble.ext &&
        openssl x509 -req -in pebble.csr -CA minica.pem -CAkey minica.key -CAcreateserial -days 1 \
            -extfile pebble.ext -out pebble.pem 2>/dev/null
}

start_bind() { # BIND for dns-01 and for the names' A records (pebble resolves through it)
    # shellcheck source=../../tests/integration/bind.sh
    source "$ROOT/tests/integration/bind.sh"
    BIND_WATCH_PID=$$ bind_start "$WORK/bind" example.test || return 1
    printf 'server 127.0.0.1 %s\nupdate add *.example.test. 60 A 127.0.0.1\nsend\n' "$BIND_PORT" |
        nsupdate -k "$WORK/bind/tsig.key" || return 1
    export BIND_PORT BIND_TSIG_NAME BIND_TSIG_ALG BIND_TSIG_SECRET BIND_DIR=$WORK/bind
}

start_pebble() { # NONCE_REJECT_PERCENT: a fresh pebble for each measurement; sets ACME_URL
    local port mport
    port=$(free_port) && mport=$(free_port) || return 1
    cat >"$WORK/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$port", "managementListenAddress": "127.0.0.1:$mport",
 "certificate": "$WORK/pebble.pem", "privateKey": "$WORK/pebble.key",
 "httpPort": $HTTP_PORT, "tlsPort": $(free_port), "ocspResponderURL": ""}}
JSON
    # VA_NOSLEEP: pebble validates at once, so what is measured is the clients' own waits
    PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=$1 \
        pebble -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$BIND_PORT" \
        >>"$WORK/pebble.log" 2>&1 &
    PEBBLE_PID=$!
    export ACME_URL=https://127.0.0.1:$port/dir
    wait_for_url "https://127.0.0.1:$mport/roots/0" 15 || {
        say "pebble did not start:"
        tail -5 "$WORK/pebble.log"
        return 1
    }
    curl -s -k "https://127.0.0.1:$mport/roots/0" >"$WORK/pebble-root.pem"
}

stop_pebble() {
    stop_pid "$PEBBLE_PID"
    PEBBLE_PID=""
}

# ---------------------------------------------------------------- certkeep

ck() { "$CERTKEEP" "$@"; }

certkeep_usable() { # the ACME issuer, dns providers and the http-01 listener are all wired in
    # (--help exits 2 as a usage message does: its output is read, not its status)
    [ -x "$CERTKEEP" ] &&
        grep -q -- --acme <<<"$("$CERTKEEP" issuer --help 2>&1)" &&
        grep -q -- --rfc2136 <<<"$("$CERTKEEP" dns --help 2>&1)" &&
        grep -q -- --http <<<"$("$CERTKEEP" serve --help 2>&1)"
}

start_certkeep() { # a daemon answering http-01 on pebble's httpPort
    local port args=()
    # each cell runs in a subshell: the admin token is kept in a file, not in the environment
    if [ ! -f "$WORK/ck.token" ]; then
        "$CERTKEEP" init --data "$WORK/ck" >"$WORK/ck.token" 2>>"$WORK/daemon.log" || return 1
    fi
    CERTKEEP_TOKEN=$(cat "$WORK/ck.token")
    export CERTKEEP_TOKEN
    port=$(free_port) || return 1
    export CERTKEEP_ADDR=http://127.0.0.1:$port
    [ -n "$WORKERS" ] && args=(--workers "$WORKERS")
    # --no-scheduler: only the orders started here run, nothing renews under the measurement
    "$CERTKEEP" serve --data "$WORK/ck" --api "127.0.0.1:$port" --http "127.0.0.1:$HTTP_PORT" \
        --no-scheduler "${args[@]}" >>"$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!
    wait_for_url "$CERTKEEP_ADDR/healthz" 15 || {
        say "certkeep serve did not start:"
        tail -5 "$WORK/daemon.log"
        return 1
    }
}

stop_certkeep() {
    stop_pid "$DAEMON_PID"
    DAEMON_PID=""
}

certkeep_setup() { # PREFIX CHALLENGE NAMES...: issuer, dns provider and one enrollment a name
    local prefix=$1 chal=$2 name dns=()
    shift 2
    ck roots add "$WORK/pebble-root.pem" >/dev/null 2>&1
    ck issuer create "pb-$prefix" --acme "$ACME_URL" --ca-bundle "$WORK/minica.pem" >/dev/null || return 1
    if [ "$chal" = dns-01 ]; then
        ck dns create "lab-$prefix" --rfc2136 "127.0.0.1:$BIND_PORT" --zone example.test \
            --tsig-name "$BIND_TSIG_NAME" --tsig-alg "$BIND_TSIG_ALG" \
            --tsig-secret "$BIND_TSIG_SECRET" --check-servers "127.0.0.1:$BIND_PORT" >/dev/null || return 1
        dns=(--dns "lab-$prefix")
    fi
    for name in "$@"; do
        ck enrollment create "$name" --cn "$name.example.test" --issuer "pb-$prefix" \
            --challenge "$chal" "${dns[@]}" --key ec-p256 >/dev/null || return 1
    done
}

certkeep_one() { # ENROLLMENT: starts an order and waits (bounded) until it is issued
    local id state i
    id=$(ck order start "$1" --no-wait --json 2>>"$WORK/certkeep-cli.log" | jq -r .id) || return 1
    for i in $(seq 1 $((ORDER_WAIT * 50))); do
        state=$(ck order show "$id" --json 2>/dev/null | jq -r .state)
        case $state in
        issued) return 0 ;;
        failed | cancelled) return 1 ;;
        esac
        sleep 0.02
    done
    return 1
}

certkeep_count() { # STATE PREFIX: orders in that state of the enrollments PREFIX-*
    ck order list --state "$1" --json 2>/dev/null |
        jq --arg p "$2-" '[.orders[] | select(.enrollment | startswith($p))] | length'
}

certkeep_cell() { # PREFIX CHALLENGE MODE N: prints "median completed attempted"
    local prefix=$1 chal=$2 mode=$3 n=$4 names=() i t0 t1 done_ failed
    for i in $(seq 1 "$n"); do names+=("$prefix-$i"); done
    # a fresh daemon state per cell: no order of an earlier cell waits on its stopped pebble
    rm -rf "$WORK/ck" "$WORK/ck.token"
    start_certkeep || return 1
    certkeep_setup "$prefix" "$chal" "$prefix-w" "${names[@]}" || return 1
    certkeep_one "$prefix-w" || say "  (certkeep warm-up order not issued)" >&2
    if [ "$mode" = concurrent ]; then
        t0=$(now)
        for i in "${names[@]}"; do ck order start "$i" --no-wait >/dev/null 2>&1; done
        for i in $(seq 1 $((ORDER_WAIT * 10))); do
            done_=$(certkeep_count issued "$prefix")
            failed=$(certkeep_count failed "$prefix")
            [ $((done_ + failed)) -ge $((n + 1)) ] && break
            sleep 0.1
        done
        t1=$(now)
        done_=$((done_ - 1)) # the warm-up order
        printf '%s %s %s\n' "$(per_cert "$t0" "$t1" "$done_")" "$done_" "$n"
    else
        : >"$WORK/times"
        for i in "${names[@]}"; do
            t0=$(now)
            certkeep_one "$i" && elapsed "$t0" "$(now)" >>"$WORK/times" && echo >>"$WORK/times"
        done
        printf '%s %s %s\n' "$(median <"$WORK/times")" "$(grep -c . "$WORK/times")" "$n"
    fi
    stop_certkeep
}

# ---------------------------------------------------------------- peers

start_httpd() { # serves WEBROOT on pebble's httpPort, for peers' http-01 files
    export WEBROOT=$WORK/webroot
    mkdir -p "$WEBROOT/.well-known/acme-challenge"
    /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WEBROOT" "$HTTP_PORT" \
        >>"$WORK/httpd.log" 2>&1 &
    HTTPD_PID=$!
    wait_for_url "http://127.0.0.1:$HTTP_PORT/" 10
}

stop_httpd() {
    stop_pid "$HTTPD_PID"
    HTTPD_PID=""
    export WEBROOT=""
}

peer_cell() { # CLIENT PREFIX CHALLENGE MODE N: prints "median completed attempted"
    local client=$1 prefix=$2 chal=$3 mode=$4 n=$5 state=$WORK/state/$2 i t0 t1 done_
    export WEBROOT=""
    # Many processes cannot share one listening port: at once, http-01 files go to a webroot.
    [ "$mode" = concurrent ] && [ "$chal" = http-01 ] && { start_httpd || return 1; }
    [ "$client" = uacme ] && [ "$chal" = http-01 ] && [ -z "$WEBROOT" ] && { start_httpd || return 1; }
    # the warm-up registers the account (and, for certbot, holds the state copied to each process)
    "$HERE/peer.sh" "$client" "$chal" "$prefix-w.example.test" "$state/shared" ||
        say "  ($client warm-up not issued: see $state/shared/$client.log)" >&2
    if [ "$mode" = concurrent ]; then
        mkdir -p "$state/ok"
        t0=$(now)
        seq 1 "$n" | xargs -P "$PARALLEL" -I{} sh -c \
            'd=$0/p{}; [ "$1" = certbot ] && mkdir -p "$d" && cp -r "$0/shared/certbot" "$d/";
             [ "$1" = certbot ] || d=$0/shared;
             "$2/peer.sh" "$1" "$3" "$4-{}.example.test" "$d" && touch "$0/ok/{}"' \
            "$state" "$client" "$HERE" "$chal" "$prefix"
        t1=$(now)
        done_=$(find "$state/ok" -type f | wc -l)
        printf '%s %s %s\n' "$(per_cert "$t0" "$t1" "$done_")" "$done_" "$n"
    else
        : >"$WORK/times"
        for i in $(seq 1 "$n"); do
            t0=$(now)
            "$HERE/peer.sh" "$client" "$chal" "$prefix-$i.example.test" "$state/shared" &&
                elapsed "$t0" "$(now)" >>"$WORK/times" && echo >>"$WORK/times"
        done
        printf '%s %s %s\n' "$(median <"$WORK/times")" "$(grep -c . "$WORK/times")" "$n"
    fi
    stop_httpd
}

per_cert() { # t0 t1 completed: wall seconds per completed certificate
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.3f", (b - a) / n; else print "-" }'
}

# ---------------------------------------------------------------- the runs

run_cell() { # CLIENT CHALLENGE MODE
    local client=$1 chal=$2 mode=$3 n=$COUNT nonce=0 prefix out
    [ "$mode" = concurrent ] && n=$CONCURRENT
    [ "$mode" = nonce ] && n=$NONCE_COUNT && nonce=$NONCE_REJECT
    prefix=$client-${chal%-01}-${mode:0:3}
    say "$client $chal $mode: $n certificate(s)$([ "$nonce" != 0 ] && echo ", $nonce% of nonces refused")"
    start_pebble "$nonce" || return 1
    if [ "$client" = certkeep ]; then
        out=$(certkeep_cell "$prefix" "$chal" "$mode" "$n") || out="- 0 $n"
        stop_certkeep
    else
        out=$(peer_cell "$client" "$prefix" "$chal" "$mode" "$n") || out="- 0 $n"
        stop_httpd
    fi
    stop_pebble
    say "  $out  (s/cert completed attempted)"
    printf '%s\t%s\t%s\t%s\n' "$client" "$chal" "$mode" "$out" | tr ' ' '\t' >>"$RESULTS"
}

print_table() {
    say ""
    say "sequential: median seconds from start to issued; concurrent: wall seconds / completed;"
    say "nonce: dns-01 one after another with ${NONCE_REJECT}% of nonces refused."
    say "ratio = certkeep / peer (below 1: certkeep is faster)"
    printf '%-9s %-8s %-11s %9s %11s %8s\n' client challenge mode s/cert completed ratio
    awk -F'\t' '
        { c[NR] = $1; ch[NR] = $2; m[NR] = $3; s[NR] = $4; ok[NR] = $5; n[NR] = $6
          if ($1 == "certkeep") ck[$2 "/" $3] = $4 }
        END { for (i = 1; i <= NR; i++) {
            k = ch[i] "/" m[i]; r = "-"
            if (c[i] != "certkeep" && (k in ck) && ck[k] != "-" && s[i] != "-" && s[i] > 0)
                r = sprintf("%.3f", ck[k] / s[i])
            printf "%-9s %-8s %-11s %9s %11s %8s\n", c[i], ch[i], m[i], s[i], ok[i] "/" n[i], r } }
    ' "$RESULTS"
}

main() {
    local client chal mode
    cd "$WORK" || exit 1
    : >"$RESULTS"
    install_peers || say "could not install every peer; the missing ones are skipped"
    command -v pebble >/dev/null && [ -x /usr/sbin/named ] || {
        say "pebble and BIND (packages pebble, bind9) are needed"
        exit 1
    }
    make_pebble_cert || exit 1
    start_bind || exit 1
    BIND_PID=$(sed -n 's/^BIND_PID=//p' "$WORK/bind/bind.env")
    HTTP_PORT=$(free_port)
    export HTTP_PORT MINICA=$WORK/minica.pem PEER_TIMEOUT=$ORDER_WAIT
    for client in $CLIENTS; do
        if [ "$client" = certkeep ] && ! certkeep_usable; then
            say "certkeep skipped: $CERTKEEP lacks the ACME issuer (issuer --acme, dns --rfc2136, serve --http)"
            continue
        fi
        if [ "$client" != certkeep ] && ! command -v "$client" >/dev/null; then
            say "$client skipped: not installed"
            continue
        fi
        for mode in $MODES; do
            for chal in $CHALLENGES; do
                [ "$mode" = nonce ] && [ "$chal" != dns-01 ] && continue
                run_cell "$client" "$chal" "$mode"
            done
        done
    done
    print_table
}

main
