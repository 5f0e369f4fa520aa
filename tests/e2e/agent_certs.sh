#!/bin/sh
# agent_certs.sh DIR: makes the certificates the link and agent tests use,
# with the openssl CLI, into DIR:
#   ca.pem ca.key                 the CA both sides trust
#   server.pem server.key         signed by ca, for 127.0.0.1 (CN and
#                                 subjectAltName DNS:127.0.0.1, IP:127.0.0.1,
#                                 DNS:localhost; mbedTLS 2.28 matches DNS names)
#   client.pem client.key         signed by ca
#   other-ca.pem other-ca.key     a second, unrelated CA
#   other.pem other.key           signed by other-ca (must be refused)
#   other-server.pem other-server.key  signed by other-ca, for 127.0.0.1 (an
#                                 impostor listener: must be refused)
#   future.pem future.key         signed by ca, valid only in 2099 (a clock or
#                                 certificate from the future: refused at start)
#   expired.pem expired.key       signed by ca, valid only in 2000
# EC P-256 keys: quick to make, supported by mbedTLS.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
newkey="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $newkey -keyout ca.key -out ca.pem -days 2 -subj /CN=canary-test-ca 2>/dev/null
openssl req -x509 $newkey -keyout other-ca.key -out other-ca.pem -days 2 \
  -subj /CN=canary-other-ca 2>/dev/null
printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\n' >server.ext
printf 'subjectAltName=DNS:canary-agent\n' >client.ext
sign() { # name ca subject ext
  openssl req $newkey -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -out "$1.pem" -days 2 -extfile "$4" 2>/dev/null
  rm -f "$1.csr"
}
sign server ca /CN=127.0.0.1 server.ext
sign client ca /CN=canary-agent client.ext
sign other other-ca /CN=canary-agent client.ext
sign other-server other-ca /CN=127.0.0.1 server.ext
# Dates outside now need `openssl ca` (OpenSSL 3.0's x509 cannot set them).
dated() { # name start end
  printf '[ca]\ndefault_ca = d\n[d]\ndatabase = dated.db\nnew_certs_dir = .\n' >dated.cnf
  printf 'serial = dated.srl\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' \
    >>dated.cnf
  : >dated.db
  echo 01 >dated.srl
  openssl req $newkey -keyout "$1.key" -out "$1.csr" -subj /CN=canary-agent 2>/dev/null
  openssl ca -batch -config dated.cnf -cert ca.pem -keyfile ca.key -in "$1.csr" -out "$1.pem" \
    -notext -startdate "$2" -enddate "$3" -extfile client.ext 2>/dev/null
  rm -f "$1.csr" dated.* 01.pem
}
dated future 20990101000000Z 20991231000000Z
dated expired 20000101000000Z 20001231000000Z
