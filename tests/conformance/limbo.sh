#!/bin/sh
# x509-limbo conformance: every SERVER case through `certkeep verify --limbo` (the same verifier
# as `certkeep verify`), scored against the targets, and every failure checked against
# tests/conformance/limbo-expected-failures.txt ("ID<TAB>reason" lines; # starts a comment).
# Usage: tests/conformance/limbo.sh [CERTKEEP_BINARY]   (default: build/certkeep)
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
suite="$here/../../../shared/conformance/x509-limbo/limbo.json.gz"
bin=${1:-"$repo/build/certkeep"}
expected="$here/limbo-expected-failures.txt"

if [ ! -r "$suite" ]; then
    echo "1..0 # SKIP x509-limbo suite not found at $suite"
    exit 0
fi
if [ ! -x "$bin" ]; then
    echo "Bail out! $bin not built (run make)"
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

echo "1..3"
if ! zcat "$suite" | "$bin" verify --limbo - >"$work/results" 2>"$work/summary"; then
    echo "Bail out! certkeep verify --limbo failed: $(tail -n 3 "$work/summary")"
    exit 1
fi
# summary line: "server P/T limbo P/T"
set -- $(tail -n 1 "$work/summary")
server_passed=${2%/*} server_total=${2#*/} own_passed=${4%/*} own_total=${4#*/}

status=0
score() { # name passed total min_percent
    pct=$(awk -v p="$2" -v t="$3" 'BEGIN { printf "%.1f", t ? 100 * p / t : 0 }')
    if awk -v p="$2" -v t="$3" -v m="$4" 'BEGIN { exit !(t > 0 && 100 * p >= m * t) }'; then
        echo "ok - $1: $2/$3 ($pct%) >= $4%"
    else
        echo "not ok - $1: $2/$3 ($pct%) < $4%"
        status=1
    fi
}
score "limbo server cases" "$server_passed" "$server_total" 99
score "limbo's own server cases (not bettertls)" "$own_passed" "$own_total" 90

awk -F '\t' '$2 == "FAIL" { print $1 }' "$work/results" | sort >"$work/failing"
grep -v '^#' "$expected" | awk -F '\t' 'NF >= 2 && $2 != "" { print $1 }' | sort >"$work/listed"
unlisted=$(comm -23 "$work/failing" "$work/listed")
fixed=$(comm -13 "$work/failing" "$work/listed")
for id in $fixed; do
    echo "# listed as expected failure but passes now: $id"
done
if [ -z "$unlisted" ]; then
    echo "ok - failures match tests/conformance/limbo-expected-failures.txt"
else
    echo "not ok - failures match tests/conformance/limbo-expected-failures.txt"
    for id in $unlisted; do
        echo "#   not listed: $(grep -F "$id	" "$work/results" | head -n 1)"
    done
    status=1
fi
exit $status
