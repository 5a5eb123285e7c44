#!/usr/bin/env bash
# The whole test suite (`make check`). Every suite prints TAP-style lines ("ok - ..." /
# "not ok - ..."); this script runs them all, keeps their output in build/test-logs/, and ends
# with the one line "N passed, N failed". Exit status 0 only when nothing failed.
#
#   tests/run.sh [SUITE...]   suites: unit asan-unit integration conformance fuzz (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
logs=$root/build/test-logs
mkdir -p "$logs"
rm -f "$logs"/*.log

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit asan-unit integration conformance fuzz)

scripts/install-deps.sh --test || { echo "not ok - installing the test dependencies"; echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
build_ok=1
make -s -j"$jobs" all tests >"$logs/build.log" 2>&1 || build_ok=0
make -s -j"$jobs" SANITIZE=1 all tests >"$logs/build-asan.log" 2>&1 || build_ok=0

run_suite() { # name command...
    local name=$1; shift
    echo "# suite $name"
    "$@" 2>&1 | tee "$logs/$name.log" | grep -E '^(not )?ok\b|^# ' || true
}

unit_bins() { # build dir
    find "$1/tests" -maxdepth 1 -type f -name 'test_*' -perm -u+x 2>/dev/null | sort
}

for s in "${suites[@]}"; do
    case $s in
    unit) run_suite unit tests/run-unit.sh $(unit_bins build) ;;
    asan-unit)
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_suite asan-unit tests/run-unit.sh $(unit_bins build/asan)
        ;;
    integration)
        for t in tests/integration/[0-9]*.sh; do
            CERTKEEP="$root/build/asan/certkeep" run_suite "integration-$(basename "$t" .sh)" bash "$t"
        done
        ;;
    conformance)
        [ -x tests/conformance/limbo.sh ] && run_suite conformance tests/conformance/limbo.sh
        ;;
    fuzz) [ -x tests/fuzz/run.sh ] && run_suite fuzz tests/fuzz/run.sh ;;
    *) echo "not ok - unknown suite $s" | tee "$logs/unknown.log" ;;
    esac
done

passed=$(cat "$logs"/*.log 2>/dev/null | grep -cE '^ok\b' || true)
failed=$(cat "$logs"/*.log 2>/dev/null | grep -cE '^not ok\b' || true)
if [ $build_ok -eq 0 ]; then
    echo "not ok - build failed (see build/test-logs/build*.log)"
    tail -20 "$logs/build.log" "$logs/build-asan.log"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
