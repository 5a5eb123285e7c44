#!/usr/bin/env bash
# Runs cmocka unit test binaries with TAP output ("ok N - name" / "not ok N - name").
# A binary that dies without reporting counts as one failure.
set -u
status=0
for bin in "$@"; do
    echo "# unit: $bin"
    # bounded: a test that hangs fails after 10 minutes instead of holding the suite
    out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout 600 "$bin" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if [ $rc -ne 0 ]; then
        status=1
        if ! printf '%s\n' "$out" | grep -q '^not ok'; then
            echo "not ok - $bin exited with status $rc"
        fi
    fi
done
exit $status
