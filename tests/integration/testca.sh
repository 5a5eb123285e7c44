# A private CA made by a scenario with `openssl ca` (root -> intermediate -> leaves), so that
# dates, subject, digest and extensions of each leaf can be chosen. Source it after lib.sh, from
# the scenario's working folder; it writes ca/.
#
#   testca_make NAME                 ca/root.{crt,key} ("NAME Root"), ca/inter.{crt,key}
#                                    ("NAME Intermediate"); TESTCA_LEAF_KU and TESTCA_LEAF_EXTRA
#                                    (extension lines) shape the [leaf] section
#   testca_root NAME                 one more self-signed root, ca/NAME.{crt,key}
#   testca_sign CSR OUT [opts...]    a leaf signed by the intermediate (`openssl ca` options,
#                                    e.g. -days 30 -extensions leaf_client)
#   testca_issue ENROLLMENT DAYS     starts an order, signs its CSR, imports it with the
#                                    intermediate and acknowledges any warning; sets ORDER
# shellcheck shell=bash

testca_make() {
    mkdir -p ca/db && touch ca/db/index
    cat >ca/ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = ca
database = ca/db/index
new_certs_dir = ca/db
rand_serial = yes
policy = anything
unique_subject = no
copy_extensions = copy
default_md = sha256
default_days = 90
[anything]
commonName = optional
organizationName = optional
organizationalUnitName = optional
localityName = optional
stateOrProvinceName = optional
countryName = optional
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,${TESTCA_LEAF_KU:-digitalSignature,keyEncipherment}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
${TESTCA_LEAF_EXTRA:-}
[leaf_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
[leaf_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
    testca_root root "$1 Root"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca/inter.key \
        -subj "/O=Test/CN=$1 Intermediate" -out ca/inter.csr 2>/dev/null
    openssl ca -batch -config ca/ca.cnf -cert ca/root.crt -keyfile ca/root.key -in ca/inter.csr \
        -out ca/inter.crt -extensions inter -days 3000 -notext 2>/dev/null
}

testca_root() { # file-name [subject CN]
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/O=Test/CN=${2:-$1}" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -addext subjectKeyIdentifier=hash \
        -keyout "ca/$1.key" -out "ca/$1.crt" 2>/dev/null
}

testca_sign() { # csr out [openssl ca options...]
    local csr=$1 out=$2
    shift 2
    openssl ca -batch -config ca/ca.cnf -cert ca/inter.crt -keyfile ca/inter.key -in "$csr" \
        -out "$out" -notext -extensions leaf "$@" 2>/dev/null
}

testca_issue() { # enrollment days
    ck order start "$1" >/dev/null 2>&1
    ORDER=$(ck order list --enrollment "$1" --state csr_ready --json | jq -r '.orders[0].id')
    ck order csr "$ORDER" >"o$ORDER.csr"
    testca_sign "o$ORDER.csr" "o$ORDER.crt" -days "$2"
    ck order import "$ORDER" --cert "o$ORDER.crt" --chain ca/inter.crt >/dev/null 2>&1
    [ "$(ck order show "$ORDER" --json | jq -r .state)" = awaiting_ack ] && ck order ack "$ORDER" >/dev/null
    return 0
}
