#!/usr/bin/env bash
# Job leases: a job that runs longer than its lease (here a deploy whose reload command takes
# 14 s, with --job-lease 6 and two workers) is renewed while it runs, so the other worker never
# takes it over: the reload runs once, the job finishes, nothing is refused with "lease_lost".
source "$(dirname "$0")/lib.sh"

OUT=$("$CERTKEEP" serve --data "$DATA" --api 127.0.0.1:1 --job-lease 5 2>&1)
check_eq "--job-lease 5 is a usage error (exit status 2)" 2 "$?"
check_contains "and says the range" "6 to 3600" "$OUT"
OUT=$("$CERTKEEP" serve --data "$DATA" --api 127.0.0.1:1 --job-lease 3601 2>&1)
check_eq "--job-lease 3601 is a usage error too" 2 "$?"

start_daemon --no-scheduler --workers 2 --job-lease 6
cd "$WORK" || exit 1

TARGETDIR=$WORK/certs
RELOADS=$WORK/reloads
mkdir -p "$TARGETDIR"
ck ca init >/dev/null 2>&1
ck issuer create mine --local >/dev/null 2>&1
ck enrollment create slow --cn slow.example.test --issuer mine --key ec-p256 --lifetime 1h >/dev/null 2>&1
api POST /v1/enrollments/slow/targets "{\"environment\":\"production\",\"directory\":\"$TARGETDIR\",\"reload_command\":[\"sh\",\"-c\",\"sleep 14; echo reloaded >> $RELOADS\"],\"timeout_seconds\":60}"
check_eq "a production target whose reload takes 14 s" 201 "$STATUS"


ck order start slow --no-wait >/dev/null 2>&1
ID=$(ck order list --enrollment slow --json | jq -r '.orders[0].id')
check_eq "order $ID is issued by the local CA" issued "$(wait_state "$ID" issued 20)"
ck order stage "$ID" >/dev/null 2>&1
check_eq "order $ID is staged" staged "$(wait_state "$ID" staged 10)"
START=$(date +%s)
ck order deploy "$ID" >/dev/null 2>&1
check_eq "the deploy job, longer than two leases, finished" finished "$(wait_job_end "$ID" deploy 60)"
diag "the deploy job took $(($(date +%s) - START)) s"
check_eq "the reload command ran once" 1 "$(wc -l <"$RELOADS" 2>/dev/null || echo 0)"
sleep 7 # one more lease: a takeover would start the reload again now
check_eq "and only once, a lease later" 1 "$(wc -l <"$RELOADS" 2>/dev/null || echo 0)"
JOB=$(ck jobs --order "$ID" --json | jq -r '[.jobs[] | select(.type == "deploy")][0].id')
check_eq "one deploy job" 1 "$(ck jobs --order "$ID" --json | jq '[.jobs[] | select(.type == "deploy")] | length')"
LOG=$(ck job show "$JOB" 2>&1)
check_contains "its log shows the reload" "reload" "$LOG"
check_eq "the daemon ran it once" 1 "$(grep -c "running job $JOB (deploy)" "$DAEMON_LOG")"
check_not_contains "no lease was lost or left unrenewed" "lease" "$(grep -iE "warn|error" "$DAEMON_LOG")"
check_eq "order $ID is deployed" deployed "$(ck order show "$ID" --json | jq -r .state)"

# ---- a daemon stopped in the middle of a long job keeps its lease until the job is done ----
# A second daemon shares the database. The first is asked to stop (SIGTERM) while its worker runs
# the 14 s reload of a new deployment: it finishes that job first, and its lease is renewed all
# along, so the second daemon never takes the job over and the reload runs once.
ck order start slow --no-wait >/dev/null 2>&1
ID2=$(ck order list --enrollment slow --json | jq -r '.orders[0].id')
check_eq "order $ID2 is issued" issued "$(wait_state "$ID2" issued 20)"
ck order stage "$ID2" >/dev/null 2>&1
check_eq "order $ID2 is staged" staged "$(wait_state "$ID2" staged 10)"
ck order deploy "$ID2" >/dev/null 2>&1
deploy_state() { ck jobs --order "$ID2" --json 2>/dev/null | jq -r '[.jobs[] | select(.type == "deploy")][0].state'; }
for _ in $(seq 1 100); do
    [ "$(deploy_state)" = running ] && break
    sleep 0.1
done
JOB2=$(ck jobs --order "$ID2" --json | jq -r '[.jobs[] | select(.type == "deploy")][0].id')
check_eq "the first daemon runs deploy job $JOB2" 1 "$(grep -c "running job $JOB2 (deploy)" "$DAEMON_LOG")"
PORT2=$(free_port)
"$CERTKEEP" serve --data "$DATA" --api "127.0.0.1:$PORT2" --no-scheduler --no-monitor \
    --job-lease 6 >>"$WORK/daemon2.log" 2>&1 &
DAEMON2_PID=$!
EXTRA_PIDS="${EXTRA_PIDS:-} $DAEMON2_PID"
check "a second daemon shares the database" wait_for_http "http://127.0.0.1:$PORT2/healthz" 15
STOP=$(date +%s)
stop_daemon
check_eq "the first daemon stopped cleanly, after its job" 0 "$DAEMON_STATUS"
diag "stopping took $(($(date +%s) - STOP)) s"
export CERTKEEP_ADDR=http://127.0.0.1:$PORT2
check_eq "deploy job $JOB2 finished" finished "$(ck job show "$JOB2" --json 2>/dev/null | jq -r .state)"
check_eq "the reload ran once more, not twice" 2 "$(wc -l <"$RELOADS")"
check_eq "the second daemon never ran it" 0 "$(grep -c "running job $JOB2" "$WORK/daemon2.log")"
check_eq "order $ID2 is deployed" deployed "$(ck order show "$ID2" --json | jq -r .state)"
kill -TERM "$DAEMON2_PID"
wait "$DAEMON2_PID"
check_eq "the second daemon stopped cleanly" 0 $?
finish
