#!/usr/bin/env bash
# Installs the Debian packages certkeep needs, only those missing.
#   scripts/install-deps.sh          build and run certkeep
#   scripts/install-deps.sh --test   also what the test suite uses
set -euo pipefail

# libjemalloc-dev: the daemon's allocator (see the Makefile); libsodium-dev: the edge's X25519;
# nettle-dev: the edge's TLS 1.3 key schedule (HMAC on the CPU's SHA extensions)
build_pkgs=(build-essential pkg-config libssl-dev libcurl4-openssl-dev libjansson-dev
            libsqlite3-dev sqlite3 libevent-dev libidn2-dev libldns-dev libjemalloc-dev libsodium-dev nettle-dev openssl
            ca-certificates curl)
# python3: the tests' webhook receiver and ARI front (standard library only)
test_pkgs=(libcmocka-dev jq clang libclang-rt-dev xxd procps python3 pebble bind9 bind9-utils
           bind9-dnsutils nginx-light faketime testssl.sh)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
