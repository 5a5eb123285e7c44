#!/usr/bin/env bash
# Installs what certkeep needs, builds it, initialises a data folder (once) and runs the daemon
# on loopback with SQLite. Usage: scripts/quickstart.sh [DATA_DIR] [ADDR:PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-./certkeep-data}
api=${2:-127.0.0.1:8443}

scripts/install-deps.sh
make -j"$(nproc)"

if [ ! -f "$data/certkeep.db" ]; then
    token=$(build/certkeep init --data "$data")
    (umask 077 && printf '%s\n' "$token" >"$data/admin.token")
    echo "initialised $data; the admin token is in $data/admin.token" >&2
fi
cat >&2 <<MSG
certkeep is starting on http://$api (Ctrl-C stops it). In another shell:
  export CERTKEEP_ADDR=http://$api CERTKEEP_TOKEN=\$(cat $data/admin.token)
  build/certkeep enrollment create shop --cn shop.example.com --san www.shop.example.com --key ec-p256
  build/certkeep order start shop && build/certkeep order csr 1
MSG
exec build/certkeep serve --data "$data" --api "$api"
