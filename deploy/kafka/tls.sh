#!/usr/bin/env bash
# TLS material for the SASL_SSL broker (deploy/kafka/broker.sh), made once with the JDK's keytool:
# a private CA, the broker's key and certificate signed by it, and the CA certificate for clients.
# docker-compose runs it in the kafka-tls job; test/smoke/kafka-acls.int.test.ts runs it locally.
#
#   tls.sh <private-dir> <public-dir> <hostname>...
#     <private-dir>/broker.p12       broker key + certificate chain (SAN: the hostnames, localhost, 127.0.0.1)
#     <private-dir>/truststore.p12   the CA certificate (inter-broker and controller connections)
#     <private-dir>/store.password   the PKCS12 stores' password (0600)
#     <private-dir>/ca.p12           the CA's key: it signs nothing else; keep it off the broker in production
#     <public-dir>/ca.pem            what clients trust (MCP_AUDIT_KAFKA_SSL_CA_FILE, NODE_EXTRA_CA_CERTS)
# KAFKA_TLS_OWNER=uid:gid chowns the private files (the broker does not run as root in its image).
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: tls.sh <private-dir> <public-dir> <hostname>..." >&2; exit 2; }
priv="$1" pub="$2"; shift 2
umask 077
mkdir -p "$priv"
install -d -m 0755 "$pub"
if [[ ! -f "$priv/broker.p12" ]]; then
  rm -f "$priv"/*.p12 "$priv"/*.pem "$priv"/*.csr
  pw="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
  printf '%s' "$pw" >"$priv/store.password"
  san="dns:localhost,ip:127.0.0.1"
  for h in "$@"; do san="dns:$h,$san"; done
  kt() { keytool -storetype PKCS12 -storepass "$pw" "$@" 2>/dev/null; }
  kt -genkeypair -alias ca -dname "CN=mcp-audit kafka CA" -keyalg EC -groupname secp256r1 -validity 3650 \
    -ext bc:c -ext KU=keyCertSign,cRLSign -keystore "$priv/ca.p12"
  kt -exportcert -alias ca -rfc -keystore "$priv/ca.p12" -file "$priv/ca.pem"
  kt -genkeypair -alias broker -dname "CN=$1" -keyalg EC -groupname secp256r1 -validity 825 -keystore "$priv/broker.p12"
  kt -certreq -alias broker -keystore "$priv/broker.p12" -file "$priv/broker.csr"
  kt -gencert -alias ca -keystore "$priv/ca.p12" -infile "$priv/broker.csr" -outfile "$priv/broker.pem" -rfc \
    -validity 825 -ext "SAN=$san" -ext KU=digitalSignature -ext EKU=serverAuth,clientAuth
  kt -importcert -noprompt -alias ca -file "$priv/ca.pem" -keystore "$priv/broker.p12"
  kt -importcert -noprompt -alias broker -file "$priv/broker.pem" -keystore "$priv/broker.p12"
  kt -importcert -noprompt -alias ca -file "$priv/ca.pem" -keystore "$priv/truststore.p12"
  rm -f "$priv/broker.csr"
fi
install -m 0644 "$priv/ca.pem" "$pub/ca.pem"
if [[ -n "${KAFKA_TLS_OWNER:-}" ]]; then chown -R "$KAFKA_TLS_OWNER" "$priv"; fi
