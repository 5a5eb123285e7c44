#!/usr/bin/env bash
# Tokens, roles and tenant isolation.
source "$(dirname "$0")/lib.sh"
start_daemon

TOKEN=none-such api GET /v1/enrollments
check_eq "a wrong token is 401" 401 "$STATUS"
check_eq "with code invalid_token" invalid_token "$(json .error.code)"
code=$(curl -s -o "$WORK/o" -w '%{http_code}' "$CERTKEEP_ADDR/v1/enrollments")
check_eq "no token is 401" 401 "$code"
check_eq "with code missing_token" missing_token "$(jq -r .error.code "$WORK/o")"

api POST /v1/tenants '{"name":"acme"}'
check_eq "the operator admin creates a tenant" 201 "$STATUS"
api POST /v1/tenants '{"name":"acme"}'
check_eq "the same tenant twice is 409" 409 "$STATUS"
api POST /v1/tenants '{"name":"Bad Name"}'
check_eq "a bad tenant name is 400" 400 "$STATUS"

ACME_EDITOR=$(ck token create --role editor --tenant acme --name ci 2>/dev/null)
check "token create prints the token alone" grep -qE '^ck_[0-9a-f]{64}$' <<<"$ACME_EDITOR"
ACME_VIEWER=$(ck token create --role viewer --tenant acme 2>/dev/null)
ACME_ADMIN=$(ck token create --role admin --tenant acme 2>/dev/null)
OTHER_EDITOR=$(ck token create --role editor 2>/dev/null)

TOKEN=$ACME_EDITOR api POST /v1/enrollments '{"name":"shop","cn":"shop.acme.example"}'
check_eq "an editor creates an enrollment" 201 "$STATUS"
TOKEN=$ACME_EDITOR api POST /v1/enrollments/shop/orders '{}'
check_eq "an editor starts an order" 202 "$STATUS"
ORDER=$(json .id)
TOKEN=$ACME_EDITOR api GET "/v1/jobs?enrollment=shop"
JOB=$(json '.jobs[0].id')

TOKEN=$ACME_VIEWER api GET /v1/enrollments/shop
check_eq "a viewer reads" 200 "$STATUS"
TOKEN=$ACME_VIEWER api POST /v1/enrollments '{"name":"nope","cn":"nope.acme.example"}'
check_eq "a viewer cannot create (403)" 403 "$STATUS"
check_eq "with code forbidden" forbidden "$(json .error.code)"
TOKEN=$ACME_VIEWER api DELETE /v1/enrollments/shop
check_eq "a viewer cannot delete (403)" 403 "$STATUS"
TOKEN=$ACME_VIEWER api POST "/v1/orders/$ORDER/cancel"
check_eq "a viewer cannot cancel an order (403)" 403 "$STATUS"
TOKEN=$ACME_EDITOR api POST /v1/tokens '{"role":"viewer"}'
check_eq "an editor cannot create tokens (403)" 403 "$STATUS"
TOKEN=$ACME_ADMIN api POST /v1/tokens '{"role":"viewer"}'
check_eq "a tenant admin creates tokens in its tenant" 201 "$STATUS"
check_eq "in its own tenant" acme "$(json .tenant)"
TOKEN=$ACME_ADMIN api POST /v1/tokens '{"role":"viewer","tenant":"default"}'
check_eq "a tenant admin cannot create tokens for another tenant (403)" 403 "$STATUS"
TOKEN=$ACME_ADMIN api POST /v1/tenants '{"name":"evil"}'
check_eq "a tenant admin cannot create tenants (403)" 403 "$STATUS"

for path in /v1/enrollments/shop "/v1/orders/$ORDER" "/v1/orders/$ORDER/csr" "/v1/jobs/$JOB"; do
    TOKEN=$OTHER_EDITOR api GET "$path"
    check_eq "another tenant gets 404 for $path" 404 "$STATUS"
done
TOKEN=$OTHER_EDITOR api DELETE /v1/enrollments/shop
check_eq "another tenant cannot delete it (404)" 404 "$STATUS"
TOKEN=$OTHER_EDITOR api POST /v1/enrollments/shop/orders '{}'
check_eq "another tenant cannot order for it (404)" 404 "$STATUS"
TOKEN=$OTHER_EDITOR api GET /v1/enrollments
check_eq "another tenant's list is empty" 0 "$(json '.enrollments | length')"
TOKEN=$OTHER_EDITOR api GET /v1/jobs
check_eq "another tenant sees none of its jobs" 0 "$(json '.jobs | length')"

REVOKED=$(ck token create --role viewer 2>/dev/null)
TOKEN_ID=$(ck token list --json | jq -r '.tokens | max_by(.id) | .id')
ck token revoke "$TOKEN_ID" >/dev/null 2>&1
TOKEN=$REVOKED api GET /v1/enrollments
check_eq "a revoked token is 401" 401 "$STATUS"
finish
