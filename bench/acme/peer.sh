#!/usr/bin/env bash
# One certificate from pebble by one peer client, for bench/acme/run.sh (which sets the
# environment below). Exits 0 when the client says it got the certificate.
#
#   peer.sh lego|certbot|uacme http-01|dns-01 NAME STATE_DIR
#   peer.sh hook-uacme METHOD TYPE IDENT TOKEN AUTH      (uacme's -h hook)
#   peer.sh hook-certbot auth|cleanup                     (certbot's --manual hooks, CERTBOT_* env)
#
# Environment: ACME_URL, MINICA (pebble's HTTPS CA), BIND_PORT, BIND_DIR (its tsig.key),
# BIND_TSIG_NAME, BIND_TSIG_ALG, BIND_TSIG_SECRET, HTTP_PORT (pebble's httpPort), WEBROOT (set:
# http-01 files are written there and served by run.sh's http.server; empty: the client's own
# standalone listener), BENCH_CHALLENGE (for the hooks), PEER_TIMEOUT (s, default 180).
set -u

nsupdate_txt() { # add|delete FQDN VALUE
    printf 'server 127.0.0.1 %s\nupdate %s %s. 60 TXT "%s"\nsend\n' "$BIND_PORT" "$1" "$2" "$3" |
        nsupdate -k "$BIND_DIR/tsig.key"
}

hook_uacme() { # METHOD TYPE IDENT TOKEN AUTH: non-zero declines a challenge type
    local method=$1 type=$2 ident=$3 token=$4 auth=$5
    [ "$type" = "$BENCH_CHALLENGE" ] || return 1
    case $type:$method in
    http-01:begin)
        mkdir -p "$WEBROOT/.well-known/acme-challenge" &&
            printf '%s' "$auth" >"$WEBROOT/.well-known/acme-challenge/$token"
        ;;
    http-01:*) rm -f "$WEBROOT/.well-known/acme-challenge/$token" ;;
    dns-01:begin) nsupdate_txt add "_acme-challenge.$ident" "$auth" ;;
    dns-01:*) nsupdate_txt delete "_acme-challenge.$ident" "$auth" ;;
    *) return 1 ;;
    esac
}

hook_certbot() { # auth|cleanup
    local op=add
    [ "$1" = cleanup ] && op=delete
    nsupdate_txt "$op" "_acme-challenge.$CERTBOT_DOMAIN" "$CERTBOT_VALIDATION"
}

run_lego() { # challenge name state
    local args=(--server "$ACME_URL" --accept-tos --email bench@example.test --path "$3/lego"
        --key-type ec256 --domains "$2")
    if [ "$1" = dns-01 ]; then
        # lego's propagation check asks the zone's NS (localhost:53), which is not this BIND: it is
        # skipped; nsupdate returns once BIND has the record.
        args+=(--dns rfc2136 --dns.resolvers "127.0.0.1:$BIND_PORT" --dns.disable-cp)
    elif [ -n "$WEBROOT" ]; then
        args+=(--http --http.webroot "$WEBROOT")
    else
        args+=(--http --http.port "127.0.0.1:$HTTP_PORT")
    fi
    LEGO_CA_CERTIFICATES=$MINICA RFC2136_NAMESERVER=127.0.0.1:$BIND_PORT \
        RFC2136_TSIG_KEY=$BIND_TSIG_NAME RFC2136_TSIG_SECRET=$BIND_TSIG_SECRET \
        RFC2136_TSIG_ALGORITHM=$BIND_TSIG_ALG. \
        timeout "${PEER_TIMEOUT:-180}" lego "${args[@]}" run
}

run_certbot() { # challenge name state
    local self args
    self=$(realpath "$0")
    args=(certonly --non-interactive --agree-tos --register-unsafely-without-email
        --server "$ACME_URL" --config-dir "$3/certbot/config" --work-dir "$3/certbot/work"
        --logs-dir "$3/certbot/logs" --key-type ecdsa -d "$2")
    if [ "$1" = dns-01 ]; then
        args+=(--manual --preferred-challenges dns --manual-auth-hook "$self hook-certbot auth"
            --manual-cleanup-hook "$self hook-certbot cleanup")
    elif [ -n "$WEBROOT" ]; then
        args+=(--webroot -w "$WEBROOT")
    else
        args+=(--standalone --http-01-port "$HTTP_PORT" --http-01-address 127.0.0.1)
    fi
    REQUESTS_CA_BUNDLE=$MINICA timeout "${PEER_TIMEOUT:-180}" certbot "${args[@]}"
}

run_uacme() { # challenge name state
    # uacme has no CA option and libcurl-gnutls reads the system bundle only: pebble's CA is
    # bind-mounted over it in a private mount namespace of this one process.
    local hook=$3/uacme-hook.sh
    # uacme runs its hook without a shell, so the hook is one program path
    [ -x "$hook" ] || printf '#!/bin/sh\nexec "%s" hook-uacme "$@"\n' "$(realpath "$0")" >"$hook" &&
        chmod +x "$hook"
    [ -f "$3/uacme/private/key.pem" ] || uacme_in_ns -c "$3/uacme" -y new bench@example.test || return 1
    BENCH_CHALLENGE=$1 uacme_in_ns -c "$3/uacme" -t EC -h "$hook" issue "$2"
}

uacme_in_ns() { # uacme arguments...
    BENCH_CHALLENGE=${BENCH_CHALLENGE:-} timeout "${PEER_TIMEOUT:-180}" \
        unshare -m --propagation private sh -c \
        'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec uacme "$@"' \
        "$MINICA" -a "$ACME_URL" "$@"
}

case ${1:-} in
hook-uacme) hook_uacme "${@:2}" ;;
hook-certbot) hook_certbot "$2" ;;
lego | certbot | uacme)
    [ $# -eq 4 ] || exit 2
    mkdir -p "$4"
    "run_$1" "$2" "$3" "$4" >>"$4/$1.log" 2>&1
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
