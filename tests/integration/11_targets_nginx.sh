#!/usr/bin/env bash
# File targets (issue 4): added, listed and deleted through the API and the CLI, bad input refused
# with 400; then a real nginx started by the test on loopback, serving TARGETDIR/fullchain.pem and
# key.pem, whose served certificate is checked after each deployment and after a broken reload.
source "$(dirname "$0")/lib.sh"
start_daemon --no-scheduler
cd "$WORK" || exit 1

ck enrollment create shop --cn shop.example.com --key ec-p256 >/dev/null 2>&1
TARGETDIR=$WORK/nginx/certs
mkdir -p "$TARGETDIR"

# ---- API ----
api POST /v1/enrollments/shop/targets "{\"environment\":\"production\",\"directory\":\"$TARGETDIR\",\"reload_command\":[\"nginx\",\"-s\",\"reload\"],\"probe_endpoint\":\"127.0.0.1:8443\"}"
check_eq "POST /v1/enrollments/shop/targets answers 201" 201 "$STATUS"
TARGET_ID=$(json .id)
check_eq "the target's reload command is its argv" '["nginx","-s","reload"]' "$(json -c .reload_command)"
check_eq "timeout_seconds defaults to 30" 30 "$(json .timeout_seconds)"
check_eq "environment production" production "$(json .environment)"

bad() { # description body expected-message
    api POST /v1/enrollments/shop/targets "$2"
    check_eq "$1: 400" 400 "$STATUS"
    check_contains "$1: the message says why" "$3" "$(json .error.message)"
}
bad "relative directory" '{"environment":"production","directory":"certs"}' "absolute"
bad "unknown environment" '{"environment":"prod","directory":"/srv/certs"}' "staging"
bad "missing directory" '{"environment":"staging"}' "directory"
bad "timeout 0" '{"environment":"staging","directory":"/srv/c","timeout_seconds":0}' "timeout_seconds"
bad "timeout 601" '{"environment":"staging","directory":"/srv/c","timeout_seconds":601}' "timeout_seconds"
bad "reload as a shell string" '{"environment":"staging","directory":"/srv/c","reload_command":"nginx -s reload"}' "array"
bad "reload with an empty item" '{"environment":"staging","directory":"/srv/c","reload_command":[""]}' "non-empty"
bad "probe without a port" '{"environment":"staging","directory":"/srv/c","probe_endpoint":"localhost"}' "HOST:PORT"
bad "unknown field" '{"environment":"staging","directory":"/srv/c","shell":"yes"}' "shell"

api POST /v1/enrollments/nosuch/targets "{\"environment\":\"staging\",\"directory\":\"/srv/c\"}"
check_eq "a target for an unknown enrollment: 404" 404 "$STATUS"

# Viewers may list but not add.
api POST /v1/tokens '{"name":"look","role":"viewer"}'
VIEWER=$(json .token)
TOKEN=$VIEWER api POST /v1/enrollments/shop/targets '{"environment":"staging","directory":"/srv/c"}'
check_eq "a viewer cannot add a target: 403" 403 "$STATUS"
TOKEN=$VIEWER api GET /v1/enrollments/shop/targets
check_eq "a viewer lists the targets" "$TARGET_ID" "$(json '.targets[0].id')"

# Another tenant sees none of them.
api POST /v1/tenants '{"name":"other"}'
api POST /v1/tokens '{"name":"o","role":"admin","tenant":"other"}'
OTHER=$(json .token)
TOKEN=$OTHER api DELETE "/v1/targets/$TARGET_ID"
check_eq "another tenant cannot delete the target: 404" 404 "$STATUS"

# ---- CLI ----
OUT=$(ck target add shop --environment staging --dir "$TARGETDIR" --reload '/usr/sbin/nginx -s reload' --timeout 10 --probe 127.0.0.1:9443 2>&1)
check_contains "target add prints the target" "staging" "$OUT"
check_contains "target add splits --reload into argv" '/usr/sbin/nginx, -s, reload' "$OUT"
OUT=$(ck --json target list shop)
check_eq "target list shows both" 2 "$(printf '%s' "$OUT" | jq '.targets | length')"
check_eq "--timeout is kept" 10 "$(printf '%s' "$OUT" | jq '.targets[1].timeout_seconds')"
OUT=$(ck target add shop --environment staging --dir relative 2>&1)
check_eq "target add with a relative --dir fails with exit status 1" 1 "$?"
check_contains "and says why" "absolute" "$OUT"
ck target add shop --dir /srv/c >/dev/null 2>&1
check_eq "target add without --environment is a usage error (2)" 2 "$?"
ck target delete "$TARGET_ID" >/dev/null
check_eq "target delete" 0 "$?"
check_eq "one target left" 1 "$(ck --json target list shop | jq '.targets | length')"

# ---- a real nginx, deployed to by the daemon ----
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    "$ROOT/scripts/install-deps.sh" --test >/dev/null 2>&1 || true
fi
if [ ! -x "$NGINX" ]; then
    ok "nginx part # SKIP nginx is not installed (scripts/install-deps.sh --test)"
    finish
fi

served() { # what nginx serves: "serial=... notAfter=..."
    openssl s_client -connect "127.0.0.1:$NPORT" -servername web.example.test </dev/null 2>/dev/null |
        openssl x509 -noout -serial -enddate 2>/dev/null | tr '\n' ' '
}
served_within() { # expected [seconds]: what nginx serves once it is `expected`, else the last
    local i s     # answer (nginx -s reload returns before the old workers have stopped)
    for i in $(seq 1 $((${2:-10} * 4))); do
        s=$(served)
        [ "$s" = "$1" ] && break
        sleep 0.25
    done
    echo "$s"
}
expected() { # order: the serial and notAfter of its certificate
    ck order cert "$1" | openssl x509 -noout -serial -enddate | tr '\n' ' '
}
issue_and_deploy() { # lifetime: prints the order id once it is deployed (or failed)
    ck enrollment update web --lifetime "$1" >/dev/null 2>&1
    ck order start web --no-wait >/dev/null 2>&1
    local id
    id=$(ck order list --enrollment web --json | jq -r '.orders[0].id')
    wait_state "$id" issued 20 >/dev/null
    ck order stage "$id" >/dev/null 2>&1
    wait_state "$id" staged 10 >/dev/null
    ck order deploy "$id" >/dev/null 2>&1
    echo "$id"
}

# nginx as the current user on a free loopback port, everything in the test's folder; it starts
# with a placeholder certificate, as any installation does before certkeep takes over.
NDIR=$WORK/nginx
WEBDIR=$NDIR/web
mkdir -p "$WEBDIR"
NPORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=placeholder \
    -keyout "$WEBDIR/key.pem" -out "$WEBDIR/fullchain.pem" 2>/dev/null
nginx_start "$NDIR" "$NPORT" "$WEBDIR/fullchain.pem" "$WEBDIR/key.pem"
check_contains "nginx serves the placeholder" "notAfter" "$(served)"

ck ca init >/dev/null 2>&1
ck issuer create mine --local >/dev/null 2>&1
ck enrollment create web --cn web.example.test --issuer mine --key ec-p256 --lifetime 1h >/dev/null 2>&1
api POST /v1/enrollments/web/targets "{\"environment\":\"production\",\"directory\":\"$WEBDIR\",\"reload_command\":[\"$NGINX\",\"-p\",\"$NDIR\",\"-c\",\"$NDIR/nginx.conf\",\"-e\",\"stderr\",\"-s\",\"reload\"],\"timeout_seconds\":10,\"probe_endpoint\":\"127.0.0.1:$NPORT\"}"
check_eq "production target for nginx" 201 "$STATUS"
NGINX_TARGET=$(json .id)

# Two deployments in a row, with different lifetimes: each time nginx serves the new certificate
# and its new expiry date (seed 004).
O1=$(issue_and_deploy 1h)
check_eq "order $O1: the deploy job finished" finished "$(wait_job_end "$O1" deploy)"
check_eq "nginx serves order $O1's certificate" "$(expected "$O1")" "$(served_within "$(expected "$O1")")"
check_eq "key.pem is 0600" 600 "$(stat -c %a "$WEBDIR/key.pem")"
check "no temporary file left in the target" test "$(ls "$WEBDIR" | sort | tr '\n' ' ')" = "cert.pem chain.pem fullchain.pem key.pem "
LOG=$(ck job show "$(ck jobs --order "$O1" --json | jq -r '[.jobs[] | select(.type == "deploy")][0].id')" 2>&1)
check_contains "the job log says where the key went" "exported the private key to $WEBDIR/key.pem" "$LOG"
check_contains "the job log has the endpoint check" "127.0.0.1:$NPORT serves the new certificate" "$LOG"
check_not_contains "the job log holds no key" "PRIVATE KEY" "$LOG"

O2=$(issue_and_deploy 2h)
check_eq "order $O2: the deploy job finished" finished "$(wait_job_end "$O2" deploy)"
check_eq "nginx serves order $O2's certificate, with the new expiry date" "$(expected "$O2")" \
    "$(served_within "$(expected "$O2")")"
check_not_contains "which is not order $O1's" "$(expected "$O1")" "$(served)"

# A reload command that fails: the files go back, the job fails with its output, nginx keeps
# serving order $O2.
api DELETE "/v1/targets/$NGINX_TARGET"
api POST /v1/enrollments/web/targets "{\"environment\":\"production\",\"directory\":\"$WEBDIR\",\"reload_command\":[\"sh\",\"-c\",\"echo config test failed >&2; exit 1\"]}"
check_eq "a target whose reload fails" 201 "$STATUS"
BEFORE=$(cat "$WEBDIR/fullchain.pem" "$WEBDIR/key.pem" | sha256sum)
O3=$(issue_and_deploy 3h)
check_eq "order $O3: the deploy job failed" failed "$(wait_job_end "$O3" deploy)"
ERR=$(ck jobs --order "$O3" --json | jq -r '[.jobs[] | select(.type == "deploy")][0].error')
check_contains "the job's error quotes the command's output" "config test failed" "$ERR"
check_contains "and says the files were put back" "put back" "$ERR"
check_eq "the target's files are order $O2's again" "$BEFORE" "$(cat "$WEBDIR/fullchain.pem" "$WEBDIR/key.pem" | sha256sum)"
check_eq "nginx still serves order $O2's certificate" "$(expected "$O2")" "$(served)"

finish
