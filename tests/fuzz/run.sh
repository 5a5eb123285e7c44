#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a bounded time (FUZZ_SECONDS, default 45),
# starting from its seed corpus in tests/fuzz/corpus/<target>/. A crash is a failure; its input
# is kept in build/fuzz/ for the fix.
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-45}
if ! make -s fuzz >build/fuzz-build.log 2>&1; then
    echo "not ok - fuzz targets build (see build/fuzz-build.log)"
    tail -20 build/fuzz-build.log | sed 's/^/#   /'
    exit 1
fi
status=0
for bin in build/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    corpus=build/fuzz/corpus-$name
    mkdir -p "$corpus"
    seeds=tests/fuzz/corpus/$name
    [ -d "$seeds" ] || seeds=""
    if "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -artifact_prefix=build/fuzz/ \
        "$corpus" $seeds >"build/fuzz/$name.log" 2>&1; then
        echo "ok - $name ran ${seconds}s without a crash"
    else
        echo "not ok - $name found a crash (build/fuzz/$name.log)"
        grep -m5 -E 'ERROR|SUMMARY' "build/fuzz/$name.log" | sed 's/^/#   /'
        status=1
    fi
done
exit $status
