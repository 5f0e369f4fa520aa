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
