#!/usr/bin/env bash
# Starts a KRaft broker+controller with SASL/SCRAM and ACLs (deploy/kafka/server.properties.tmpl).
# The docker-compose kafka service's entrypoint; test/smoke/kafka-acls.int.test.ts runs it against
# the locally installed Kafka.
#
# Environment:
#   KAFKA_RUN               how to run a Kafka class (compose: /opt/kafka/bin/kafka-run-class.sh)
#   KAFKA_CONF_DIR          where the rendered server.properties and admin.properties go (0700)
#   KAFKA_DATA_DIR          log.dirs; formatted on first start
#   KAFKA_LISTEN_HOST, KAFKA_ADVERTISED_HOST, KAFKA_NODE_HOST, KAFKA_PORT, KAFKA_CONTROLLER_PORT
#   KAFKA_TLS_DIR           optional: deploy/kafka/tls.sh's private dir; listeners become SASL_SSL
#   KAFKA_NODE_ID, KAFKA_QUORUM_VOTERS   optional, for a cluster of combined broker+controllers
#                           (default: node 1, the only voter, 1@KAFKA_NODE_HOST:KAFKA_CONTROLLER_PORT)
#   KAFKA_REPLICATION_FACTOR  optional: of the internal topics and new topics' default (default 1);
#                           min.insync.replicas becomes 2 from 3 brokers up (deploy/local/cluster-kafka.sh)
#   MCP_AUDIT_KAFKA_PASSWORD_<NAME>   one per SCRAM user (NAME upper-case, '_' for '-'); ADMIN required.
#                           Users are created when the storage is formatted (first start); add one
#                           later with kafka-configs.sh --alter --entity-type users --add-config
#                           'SCRAM-SHA-512=[password=…]' as the admin.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "kafka broker: $*" >&2; exit 1; }
: "${KAFKA_RUN:?}" "${KAFKA_CONF_DIR:?}" "${KAFKA_DATA_DIR:?}" "${KAFKA_PORT:?}" "${KAFKA_CONTROLLER_PORT:?}"
listen="${KAFKA_LISTEN_HOST:-0.0.0.0}"
advertised="${KAFKA_ADVERTISED_HOST:-$(hostname)}"
node="${KAFKA_NODE_HOST:-$advertised}"
admin_pw="${MCP_AUDIT_KAFKA_PASSWORD_ADMIN:-}"
node_id="${KAFKA_NODE_ID:-1}"
voters="${KAFKA_QUORUM_VOTERS:-$node_id@$node:$KAFKA_CONTROLLER_PORT}"
rf="${KAFKA_REPLICATION_FACTOR:-1}"
[[ "$node_id" =~ ^[0-9]+$ ]] || die "KAFKA_NODE_ID: a number, got '$node_id'"
[[ "$voters" =~ ^[0-9]+@[A-Za-z0-9.:-]+(,[0-9]+@[A-Za-z0-9.:-]+)*$ ]] || die "KAFKA_QUORUM_VOTERS: id@host:port[,…], got '$voters'"
[[ "$rf" =~ ^[1-9]$ ]] || die "KAFKA_REPLICATION_FACTOR: 1 to 9, got '$rf'"
min_isr=$((rf >= 3 ? 2 : 1))
[[ -n "$admin_pw" ]] || die "MCP_AUDIT_KAFKA_PASSWORD_ADMIN is not set"

# Passwords end up in JAAS lines and --add-scram's [name=…,password=…]: no quotes, commas, brackets.
scram=()
for var in "${!MCP_AUDIT_KAFKA_PASSWORD_@}"; do
  pw="${!var}"
  name="$(tr 'A-Z_' 'a-z-' <<<"${var#MCP_AUDIT_KAFKA_PASSWORD_}")"
  [[ "$pw" =~ ^[A-Za-z0-9._~+/=-]{12,}$ ]] ||
    die "$var: at least 12 characters of A-Z a-z 0-9 . _ ~ + / = - (it is written into JAAS and SCRAM arguments)"
  scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$pw]")
done

protocol=SASL_PLAINTEXT
if [[ -n "${KAFKA_TLS_DIR:-}" ]]; then
  protocol=SASL_SSL
  for f in broker.p12 truststore.p12 store.password; do
    [[ -r "$KAFKA_TLS_DIR/$f" ]] || die "KAFKA_TLS_DIR: $KAFKA_TLS_DIR/$f is missing (deploy/kafka/tls.sh makes it)"
  done
  store_pw="$(cat "$KAFKA_TLS_DIR/store.password")"
fi

umask 077
mkdir -p "$KAFKA_CONF_DIR" "$KAFKA_DATA_DIR"
sed -e "s#@PROTOCOL@#$protocol#g" -e "s#@LISTEN_HOST@#$listen#g" -e "s#@ADVERTISED_HOST@#$advertised#g" -e "s#@NODE_HOST@#$node#g" \
    -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@DATA@#$KAFKA_DATA_DIR#g" -e "s#@ADMIN_PASSWORD@#$admin_pw#g" \
    -e "s#@NODE_ID@#$node_id#g" -e "s#@VOTERS@#$voters#g" -e "s#@RF@#$rf#g" -e "s#@MIN_ISR@#$min_isr#g" \
    "$here/server.properties.tmpl" >"$KAFKA_CONF_DIR/server.properties"
tls_props() {
  cat <<PROPS
ssl.keystore.type=PKCS12
ssl.keystore.location=$KAFKA_TLS_DIR/broker.p12
ssl.keystore.password=$store_pw
ssl.key.password=$store_pw
ssl.truststore.type=PKCS12
ssl.truststore.location=$KAFKA_TLS_DIR/truststore.p12
ssl.truststore.password=$store_pw
ssl.enabled.protocols=TLSv1.3,TLSv1.2
PROPS
}
[[ $protocol == SASL_SSL ]] && tls_props >>"$KAFKA_CONF_DIR/server.properties"
# The admin's client settings (healthcheck, kafka-acls.sh, kafka-configs.sh --command-config).
{
  echo "security.protocol=$protocol"
  echo "sasl.mechanism=SCRAM-SHA-512"
  echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin_pw\";"
  if [[ $protocol == SASL_SSL ]]; then tls_props | grep '^ssl.truststore'; fi
} >"$KAFKA_CONF_DIR/admin.properties"

if [[ ! -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
  cluster_id="${KAFKA_CLUSTER_ID:-$($KAFKA_RUN kafka.tools.StorageTool random-uuid | tail -n1)}"
  $KAFKA_RUN kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONF_DIR/server.properties" "${scram[@]}" >/dev/null ||
    die "storage format failed"
fi
exec $KAFKA_RUN kafka.Kafka "$KAFKA_CONF_DIR/server.properties"
