#!/usr/bin/env bash
# `certkeep probe` against `openssl s_server` on loopback: a leaf signed by a test CA, a second
# leaf chosen by SNI, then a port nobody listens on. No daemon.
source "$(dirname "$0")/lib.sh"

cd "$WORK" || exit 1
leaf_ext() { # dns-name
    printf '%s\n' "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" \
        "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" \
        "subjectAltName = DNS:$1, IP:127.0.0.1"
}
make_leaf() { # name cn org days
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -subj "/O=$3/CN=$2" -out "$1.csr" 2>/dev/null
    leaf_ext "$2" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$4" \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
# req -x509's defaults add basicConstraints CA:TRUE, SKI and AKI; certkeep's verifier also wants
# a key usage on a CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -subj "/CN=Probe Test CA" -days 30 -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem 2>/dev/null
make_leaf shop shop.example.com "Example Ltd" 89
make_leaf other other.example.com "Other Org" 40
check "test certificates made" test -s shop.pem -a -s other.pem

TLS_PORT=$(free_port)
openssl s_server -quiet -www -accept "127.0.0.1:$TLS_PORT" -cert shop.pem -key shop.key \
    -servername other.example.com -cert2 other.pem -key2 other.key >s_server.log 2>&1 </dev/null &
EXTRA_PIDS=$!
for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null && break
    sleep 0.1
done

OUT=$("$CERTKEEP" probe "localhost:$TLS_PORT" --sni shop.example.com --roots ca.pem 2>&1)
check_eq "probe with --roots exits 0" 0 $?
check_contains "subject shown" "CN=shop.example.com" "$OUT"
check_contains "organisation shown" "O=Example Ltd" "$OUT"
check_contains "SANs shown" "shop.example.com" "$(printf '%s\n' "$OUT" | grep '^dns sans')"
check_contains "IP SAN shown" "127.0.0.1" "$(printf '%s\n' "$OUT" | grep '^ip sans')"
check_contains "issuer shown" "CN=Probe Test CA" "$(printf '%s\n' "$OUT" | grep '^issuer')"
DAYS=$(printf '%s\n' "$OUT" | awk '/^days left/ {print $3}')
check "days left is 88 or 89 (got $DAYS)" test "$DAYS" -ge 88 -a "$DAYS" -le 89
FP=$(openssl x509 -in shop.pem -noout -fingerprint -sha256 | cut -d= -f2)
check_contains "SHA-256 fingerprint matches openssl's" "$FP" "$OUT"
SERIAL=$(openssl x509 -in shop.pem -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
check_contains "serial matches openssl's" "$SERIAL" "$(printf '%s\n' "$OUT" | grep '^serial')"
check_contains "chain valid" "chain       valid" "$OUT"

OUT=$("$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni shop.example.com --roots ca.pem --json)
check_eq "probe --json exits 0" 0 $?
check_eq "json endpoint" "127.0.0.1:$TLS_PORT" "$(printf '%s' "$OUT" | jq -r .endpoint)"
check_eq "json sni" "shop.example.com" "$(printf '%s' "$OUT" | jq -r .sni)"
check_eq "json subject cn" "shop.example.com" "$(printf '%s' "$OUT" | jq -r .certificate.subject.cn)"
check_eq "json fingerprint" "$FP" "$(printf '%s' "$OUT" | jq -r .certificate.sha256_fingerprint)"
check_eq "json chain_status" "valid" "$(printf '%s' "$OUT" | jq -r .chain_status)"
check_eq "json chain_problems empty" "0" "$(printf '%s' "$OUT" | jq -r '.chain_problems | length')"
check_eq "json chain[0] is the leaf" "shop.example.com" \
    "$(printf '%s' "$OUT" | jq -r '.chain[0].subject' | sed 's/.*CN=//; s/,.*//')"

OUT=$("$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --roots ca.pem --json)
check_eq "IP literal without --sni verifies against the IP SAN" 0 $?
check_eq "no SNI sent for an IP literal" "null" "$(printf '%s' "$OUT" | jq -r .sni)"

OUT=$("$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni shop.example.com 2>&1)
check_eq "probe without --roots still shows what is served (exit 0)" 0 $?
check_contains "chain invalid with a reason" "chain       invalid: " "$OUT"
"$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni shop.example.com --strict >/dev/null 2>&1
check_eq "probe --strict exits 1 when the chain does not verify (test CA not trusted)" 1 $?
"$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni shop.example.com --roots ca.pem --strict >/dev/null 2>&1
check_eq "probe --strict exits 0 when it does" 0 $?
OUT=$("$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni shop.example.com --json)
check_eq "json chain_status invalid" "invalid" "$(printf '%s' "$OUT" | jq -r .chain_status)"
check "json chain_problems not empty" test "$(printf '%s' "$OUT" | jq -r '.chain_problems | length')" -ge 1

OUT=$("$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni other.example.com --roots ca.pem 2>&1)
check_eq "--sni other.example.com exits 0" 0 $?
check_contains "--sni picks the second certificate" "CN=other.example.com" "$OUT"
check_contains "second certificate's organisation" "O=Other Org" "$OUT"

OUT=$("$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni wrong.example.com --roots ca.pem 2>&1)
check_contains "a name the certificate lacks: chain invalid" "chain       invalid: " "$OUT"
"$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --sni wrong.example.com --roots ca.pem --strict \
    >/dev/null 2>&1
check_eq "and --strict exits 1 for it" 1 $?

DEAD_PORT=$(free_port)
START=$(date +%s)
OUT=$("$CERTKEEP" probe "127.0.0.1:$DEAD_PORT" --timeout 5 2>&1)
RC=$?
check_eq "unreachable port exits 1" 1 $RC
check_contains "unreachable port says why" "cannot connect" "$OUT"
check "unreachable port fails within 3 s" test $(($(date +%s) - START)) -le 3

"$CERTKEEP" probe >/dev/null 2>&1
check_eq "probe without an endpoint is a usage error" 2 $?
"$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --timeout abc >/dev/null 2>&1
check_eq "bad --timeout is a usage error" 2 $?
"$CERTKEEP" probe "127.0.0.1:$TLS_PORT" --roots "$WORK/missing.pem" >/dev/null 2>&1
check_eq "unreadable --roots is a usage error" 2 $?

finish
