# tests/integration/bind.sh — a BIND 9 `named` for tests that need a real DNS server: it serves
# one test zone that accepts RFC 2136 updates signed with a generated TSIG key.
#
#   source tests/integration/bind.sh
#   bind_start DIR [ZONE]   starts named in DIR (created if missing) on 127.0.0.1 and a free port
#                           only; sets BIND_PORT BIND_PID BIND_ZONE BIND_TSIG_NAME BIND_TSIG_ALG
#                           BIND_TSIG_SECRET and writes them to DIR/bind.env (shell syntax) so a
#                           program that called bind_start through `bash -c` can read them
#   bind_stop DIR           stops the named started in DIR and waits for it (bounded)
#
# With BIND_WATCH_PID set (a program that runs bind_start through `bash -c` passes its own pid),
# named is also stopped when that process is gone, so a test that crashes leaves no named behind.
#
# named runs as the current user, in the foreground (-g) with its log in DIR/named.log. It sends
# nothing off the machine: no recursion, no NOTIFY, no root hints, no control channel; the zone's
# NS is `localhost.` and it has no AAAA records. Default zone: example.test.
# Needs /usr/sbin/named and tsig-keygen (Debian package bind9); dig is used to wait for it.

BIND_NAMED=${BIND_NAMED:-/usr/sbin/named}
BIND_TSIG_KEYGEN=${BIND_TSIG_KEYGEN:-/usr/sbin/tsig-keygen}

_bind_free_port() { # a loopback port with no TCP listener (named then checks UDP by binding it)
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

_bind_write_config() { # dir zone port
    local dir=$1 zone=$2 port=$3
    cat >"$dir/named.conf" <<CONF
include "$dir/tsig.key";
options {
    directory "$dir";
    pid-file "$dir/named.pid";
    session-keyfile "$dir/session.key";
    managed-keys-directory "$dir";
    listen-on port $port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    notify no;
    dnssec-validation no;
    empty-zones-enable no;
    allow-transfer { none; };
};
controls { };
zone "$zone" {
    type primary;
    file "$dir/$zone.zone";
    allow-update { key "$BIND_TSIG_NAME"; };
};
CONF
    cat >"$dir/$zone.zone" <<ZONE
\$TTL 300
@   IN SOA localhost. hostmaster.$zone. ( 1 3600 600 86400 60 )
    IN NS  localhost.
www IN A   127.0.0.1
ZONE
}

_bind_ready() { # port zone: named answers the zone's SOA with authority
    local i answer
    for i in $(seq 1 50); do
        kill -0 "$BIND_PID" 2>/dev/null || return 1
        # captured, not piped into grep -q: under pipefail an early grep exit fails the pipe
        answer=$(dig +norec +time=1 +tries=1 -p "$1" @127.0.0.1 "$2" SOA 2>/dev/null) || answer=
        case $answer in *'flags: qr aa'*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

_bind_watch() { # watched_pid named_pid: stops named once the watched process is gone (at most 1 h)
    (
        for _ in $(seq 1 3600); do
            kill -0 "$1" 2>/dev/null || break
            kill -0 "$2" 2>/dev/null || exit 0
            sleep 1
        done
        kill "$2" 2>/dev/null
    ) </dev/null >/dev/null 2>&1 &
}

bind_start() { # dir [zone]
    local dir=$1 attempt
    BIND_ZONE=${2:-example.test}
    BIND_TSIG_NAME=certkeep-test.
    BIND_TSIG_ALG=hmac-sha256
    mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
    "$BIND_TSIG_KEYGEN" -a "$BIND_TSIG_ALG" "$BIND_TSIG_NAME" >"$dir/tsig.key" || return 1
    BIND_TSIG_SECRET=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$dir/tsig.key")
    # A port taken by someone else between the check and named's bind makes named skip the
    # interface, so the readiness check fails and another port is tried.
    for attempt in 1 2 3 4 5; do
        BIND_PORT=$(_bind_free_port) || return 1
        _bind_write_config "$dir" "$BIND_ZONE" "$BIND_PORT"
        "$BIND_NAMED" -g -n 1 -c "$dir/named.conf" >"$dir/named.log" 2>&1 &
        BIND_PID=$!
        if _bind_ready "$BIND_PORT" "$BIND_ZONE"; then
            printf 'BIND_PORT=%s\nBIND_PID=%s\nBIND_ZONE=%s\nBIND_TSIG_NAME=%s\nBIND_TSIG_ALG=%s\nBIND_TSIG_SECRET=%s\n' \
                "$BIND_PORT" "$BIND_PID" "$BIND_ZONE" "$BIND_TSIG_NAME" "$BIND_TSIG_ALG" \
                "$BIND_TSIG_SECRET" >"$dir/bind.env"
            [ -n "${BIND_WATCH_PID:-}" ] && _bind_watch "$BIND_WATCH_PID" "$BIND_PID"
            return 0
        fi
        kill "$BIND_PID" 2>/dev/null
        wait "$BIND_PID" 2>/dev/null
    done
    echo "named did not start; its log:" >&2
    tail -20 "$dir/named.log" >&2
    return 1
}

bind_stop() { # dir
    local pid i
    pid=$(sed -n 's/^BIND_PID=//p' "$1/bind.env" 2>/dev/null)
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    return 0
}
