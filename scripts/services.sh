#!/usr/bin/env bash
# Start/stop mcp-audit's own services in the background against the local stack.
#   services.sh start | stop | status | init
# init only writes the local credentials and config files (collector token, gateway key, notifier
# routes) into $MCP_AUDIT_LOCAL_DIR (default .local); docker-compose runs it once.
# Logs: .local/log/<service>.log; pids: .local/run/<service>.pid. Only what this script started is stopped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Absolute, whatever the caller passed: pid checks compare command lines, which hold absolute paths.
LOCAL="$(realpath -m "${MCP_AUDIT_LOCAL_DIR:-$ROOT/.local}")"
RUN="$LOCAL/run"
LOGS="$LOCAL/log"
SERVICES=(receiver ingester collector notifier gateway detector api retention)
# The gateway's MCP port is 9473; its health is checked on its ops port 9478. Likewise the analyst API
# and console listen on 9475, their ops port is 9476.
declare -A PORT=([receiver]=9479 [ingester]=9471 [collector]=9470 [notifier]=9472 [gateway]=9478 [detector]=9474 [api]=9476 [retention]=9477)
# The local webhook receiver (watch it: tail -f .local/log/receiver.log) is part of the notifier package.
declare -A MAIN=([receiver]=services/notifier/dist/src/local-receiver.js [ingester]=services/ingester/dist/src/main.js [collector]=services/collector/dist/src/main.js [notifier]=services/notifier/dist/src/main.js [gateway]=services/gateway/dist/src/main.js [detector]=services/detector/dist/src/main.js [api]=services/api/dist/src/main.js [retention]=services/retention/dist/src/main.js)

log() { printf '[services] %s\n' "$*" >&2; }

# Least privilege: each service is started with an environment of its own (env -i), holding the
# non-secret MCP_AUDIT_* settings and only the credentials it uses. Credentials are the variables whose
# names end in PASSWORD, TOKEN, API_KEY, REDACTION_KEY or SECRET; nothing else is passed (no admin
# password but to migrations and retention). test/e2e/service-secrets.int.test.ts reads each started
# service's /proc/<pid>/environ against this table.
declare -A SECRETS=(
  [receiver]=""
  [ingester]="MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD MCP_AUDIT_REDACTION_KEY"
  [collector]="MCP_AUDIT_REDACTION_KEY"
  [notifier]="MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD"
  [gateway]="MCP_AUDIT_REDACTION_KEY"
  [detector]="MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD"
  [api]="MCP_AUDIT_CLICKHOUSE_API_PASSWORD MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD"
  [retention]="MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD"
)
is_secret() { [[ $1 =~ (PASSWORD|TOKEN|API_KEY|REDACTION_KEY|SECRET)$ ]]; }

# The environment service $1 is started with, one NAME=VALUE per line (also: `services.sh env <service>`).
service_env() {
  local svc=$1 name allowed=" ${SECRETS[$1]:-} "
  printf 'PATH=%s\nHOME=%s\n' "$PATH" "${HOME:-/root}"
  [[ -n ${NODE_OPTIONS:-} ]] && printf 'NODE_OPTIONS=%s\n' "$NODE_OPTIONS"
  while IFS= read -r name; do
    if is_secret "$name" && [[ $allowed != *" $name "* ]]; then continue; fi
    # A signing key's path goes to its owner only (the ledger's to retention, the export key to the api).
    [[ $name == MCP_AUDIT_LEDGER_SIGNING_KEY_FILE && $svc != retention ]] && continue
    [[ $name == MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE && $svc != api ]] && continue
    printf '%s=%s\n' "$name" "${!name}"
  done < <(compgen -e | grep '^MCP_AUDIT_' || true)
  return 0
}

pid_of() {
  local f="$RUN/$1.pid" pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "${MAIN[$1]}" || return 1
  echo "$pid"
}

ensure_collector_token() {
  local tokens="$LOCAL/collector-tokens.json"
  if [[ -f $tokens ]] && grep -q '^MCP_AUDIT_COLLECTOR_TOKEN=' "$LOCAL/secrets.env"; then return; fi
  local token sha
  token="mcpa_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  sha=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
  umask 077
  printf '[{"id":"local-dev","source_id":"local-dev","sha256":"%s","scopes":["ingest"]}]\n' "$sha" >"$tokens"
  sed -i '/^MCP_AUDIT_COLLECTOR_TOKEN=/d' "$LOCAL/secrets.env"
  echo "MCP_AUDIT_COLLECTOR_TOKEN=$token" >>"$LOCAL/secrets.env"
  log "created a collector token for source 'local-dev' (plain token in .local/secrets.env, hash in $tokens)"
}

# A gateway client key for local use (scopes mcp + admin): plain key in .local/secrets.env, hash only in
# .local/gateway-clients.json.
ensure_gateway_key() {
  local clients="$LOCAL/gateway-clients.json"
  if [[ -f $clients ]] && grep -q '^MCP_AUDIT_GATEWAY_API_KEY=' "$LOCAL/secrets.env"; then return; fi
  local key sha
  key="mcpg_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  sha=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
  umask 077
  printf '[{"id":"local-dev","user":"%s@localhost","sha256":"%s","scopes":["mcp","admin"]}]\n' "${USER:-dev}" "$sha" >"$clients"
  sed -i '/^MCP_AUDIT_GATEWAY_API_KEY=/d' "$LOCAL/secrets.env"
  echo "MCP_AUDIT_GATEWAY_API_KEY=$key" >>"$LOCAL/secrets.env"
  log "created a gateway key for client 'local-dev' (plain key in .local/secrets.env, hash in $clients)"
}

# An analyst API key for local use (scopes analyst + admin): plain key in .local/secrets.env, hash only in
# .local/api-keys.json. More keys: node services/api/dist/src/keys.cli.js create --id … --scopes …
ensure_api_key() {
  local keys="$LOCAL/api-keys.json"
  if [[ -f $keys ]] && grep -q '^MCP_AUDIT_API_KEY=' "$LOCAL/secrets.env"; then return; fi
  local key sha
  key="mcpa_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  sha=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
  umask 077
  printf '[{"id":"local-dev","sha256":"%s","scopes":["analyst","admin"],"created_at":"%s","description":"local development key (services.sh init)"}]\n' \
    "$sha" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$keys"
  sed -i '/^MCP_AUDIT_API_KEY=/d' "$LOCAL/secrets.env"
  echo "MCP_AUDIT_API_KEY=$key" >>"$LOCAL/secrets.env"
  log "created an analyst+admin API key 'local-dev' (plain key: MCP_AUDIT_API_KEY in $LOCAL/secrets.env, hash in $keys); console: http://127.0.0.1:9475"
}

# Local routing file for the notifier: one signed webhook to 127.0.0.1:9479 (secrets by reference).
ensure_notifier_routes() {
  local routes="$LOCAL/notifier-routes.json" secret="$LOCAL/notifier-webhook-secret"
  umask 077
  [[ -f $secret ]] || head -c 32 /dev/urandom | base64 | tr -d '=\n' >"$secret"
  # The receiver is on loopback locally; docker-compose sets the containers' networks.
  local allow="${MCP_AUDIT_NOTIFIER_LOCAL_ALLOW_NETWORKS:-\"127.0.0.1/32\"}"
  [[ -f $routes ]] || printf '{"destinations":[{"id":"local-webhook","kind":"webhook","url":{"env":"MCP_AUDIT_NOTIFIER_LOCAL_WEBHOOK_URL"},"secret":{"file":"%s"},"allow_http":true,"allow_networks":[%s]}],"rules":[{"name":"everything","destinations":["local-webhook"]}]}\n' "$secret" "$allow" >"$routes"
}

# The dead-letter key pair: the collector and the ingester get only the public key (they seal
# rejected originals to it); the private key is for `dlq replay` and is never exported to a service.
ensure_dlq_keys() {
  [[ -f $LOCAL/dlq-private.pem && -f $LOCAL/dlq-public.pem ]] && return
  (umask 077 && openssl genpkey -algorithm X25519 -out "$LOCAL/dlq-private.pem")
  openssl pkey -in "$LOCAL/dlq-private.pem" -pubout -out "$LOCAL/dlq-public.pem"
  log "created the dead-letter key pair (public: $LOCAL/dlq-public.pem; private, for dlq replay only: $LOCAL/dlq-private.pem)"
}

# Ed25519 signing keys (PKCS#8 PEM, 0600) with their public keys published as <key_id>.pub (SPKI PEM;
# key id = first 16 hex digits of SHA-256 of the raw public key, services/retention/LEDGER.md §4):
# the ledger's (retention only) and the API's export-manifest key. Same as `retention keygen`.
ensure_signing_key() {
  local key=$1 pubdir="$LOCAL/ledger/keys" id
  mkdir -p "$pubdir"
  [[ -f $key ]] && return
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
  chmod 600 "$key"
  id=$(openssl pkey -in "$key" -pubout -outform DER | tail -c 32 | sha256sum | cut -c1-16)
  openssl pkey -in "$key" -pubout -out "$pubdir/$id.pub"
  chmod 644 "$pubdir/$id.pub"
  log "created signing key $key (key id $id, public key $pubdir/$id.pub)"
}

init() {
  mkdir -p "$LOCAL"
  ensure_signing_key "$LOCAL/ledger-signing.key"
  ensure_signing_key "$LOCAL/api-export-signing.key"
  ensure_dlq_keys
  touch "$LOCAL/secrets.env"
  ensure_collector_token
  ensure_gateway_key
  ensure_notifier_routes
  ensure_api_key
}

# Loads .local/secrets.env, creates what is missing, exports every service's settings.
prepare() {
  set -a; source "$LOCAL/secrets.env"; set +a
  ensure_collector_token
  set -a; source "$LOCAL/secrets.env"; set +a
  export MCP_AUDIT_COLLECTOR_TOKENS_FILE="$LOCAL/collector-tokens.json"
  ensure_dlq_keys
  export MCP_AUDIT_DLQ_PUBLIC_KEY_FILE="${MCP_AUDIT_DLQ_PUBLIC_KEY_FILE:-$LOCAL/dlq-public.pem}"
  ensure_notifier_routes
  export MCP_AUDIT_NOTIFIER_ROUTES_FILE="${MCP_AUDIT_NOTIFIER_ROUTES_FILE:-$LOCAL/notifier-routes.json}"
  export MCP_AUDIT_NOTIFIER_LOCAL_WEBHOOK_URL="${MCP_AUDIT_NOTIFIER_LOCAL_WEBHOOK_URL:-http://127.0.0.1:9479/webhook}"
  export MCP_AUDIT_RECEIVER_SECRET_FILE="$LOCAL/notifier-webhook-secret"
  ensure_gateway_key
  ensure_api_key
  set -a; source "$LOCAL/secrets.env"; set +a
  export MCP_AUDIT_API_KEYS_FILE="${MCP_AUDIT_API_KEYS_FILE:-$LOCAL/api-keys.json}"
  export MCP_AUDIT_GATEWAY_CONFIG="${MCP_AUDIT_GATEWAY_CONFIG:-$ROOT/deploy/gateway/gateway.sample.json}"
  export MCP_AUDIT_GATEWAY_CLIENTS_FILE="${MCP_AUDIT_GATEWAY_CLIENTS_FILE:-$LOCAL/gateway-clients.json}"
  # The gateway's events go straight to Kafka locally (the ingester writes them to ClickHouse).
  export MCP_AUDIT_SDK_SINK="${MCP_AUDIT_SDK_SINK:-kafka}"
  # Retention: the ledger (records, published keys), receipts; the api verifies and exports with them.
  ensure_signing_key "$LOCAL/ledger-signing.key"
  ensure_signing_key "$LOCAL/api-export-signing.key"
  export MCP_AUDIT_LEDGER_SIGNING_KEY_FILE="${MCP_AUDIT_LEDGER_SIGNING_KEY_FILE:-$LOCAL/ledger-signing.key}"
  export MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR="${MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR:-$LOCAL/ledger/keys}"
  export MCP_AUDIT_LEDGER_DIR="${MCP_AUDIT_LEDGER_DIR:-$LOCAL/ledger/records}"
  export MCP_AUDIT_RETENTION_RECEIPTS_DIR="${MCP_AUDIT_RETENTION_RECEIPTS_DIR:-$LOCAL/ledger/receipts}"
  export MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE="${MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE:-$LOCAL/api-export-signing.key}"
  export MCP_AUDIT_API_EXPORT_DIR="${MCP_AUDIT_API_EXPORT_DIR:-$LOCAL/exports}"
  # Detector tuning (time zones, business hours, thresholds): .local/detector.json when present.
  if [[ -z ${MCP_AUDIT_DETECTOR_CONFIG:-} && -f $LOCAL/detector.json ]]; then export MCP_AUDIT_DETECTOR_CONFIG="$LOCAL/detector.json"; fi
}

start() {
  mkdir -p "$RUN" "$LOGS"
  # Node.js 22 (scripts/node.sh): each service is started as `node` from the PATH it is given.
  source "$ROOT/scripts/node.sh"
  mcp_audit_use_node "$ROOT"
  log "node $(node -v)"
  prepare
  for s in "${SERVICES[@]}"; do
    if pid=$(pid_of "$s"); then log "$s already running (pid $pid)"; continue; fi
    log "starting $s"
    (cd "$ROOT" || exit 1
      mapfile -t senv < <(service_env "$s")
      setsid env -i "${senv[@]}" node "${MAIN[$s]}" </dev/null >>"$LOGS/$s.log" 2>&1 &
      echo $! >"$RUN/$s.pid")
  done
  for s in "${SERVICES[@]}"; do
    local deadline=$((SECONDS + 60))
    until curl -sf -m 2 "http://127.0.0.1:${PORT[$s]}/health" >/dev/null; do
      pid_of "$s" >/dev/null || { log "ERROR: $s exited during start-up; see $LOGS/$s.log"; tail -n 20 "$LOGS/$s.log" >&2; exit 1; }
      ((SECONDS < deadline)) || { log "ERROR: $s not healthy after 60s; see $LOGS/$s.log"; exit 1; }
      sleep 0.5
    done
    log "$s healthy on http://127.0.0.1:${PORT[$s]}"
  done
}

stop() {
  for s in "${SERVICES[@]}"; do
    if ! pid=$(pid_of "$s"); then rm -f "$RUN/$s.pid"; continue; fi
    log "stopping $s (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$RUN/$s.pid"
  done
}

status() {
  for s in "${SERVICES[@]}"; do
    if pid=$(pid_of "$s"); then printf '%-12s %-8s %-8s %-22s %s\n' "$s" running "$pid" "127.0.0.1:${PORT[$s]}" "$LOGS/$s.log"
    else printf '%-12s %-8s %-8s %-22s %s\n' "$s" stopped - "127.0.0.1:${PORT[$s]}" "$LOGS/$s.log"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  init) init ;;
  # The environment a service gets, after loading .local/secrets.env like `start` (for tests and audits).
  env)
    [[ -n ${2:-} && -n ${MAIN[${2}]:-} ]] || { echo "usage: $0 env <${SERVICES[*]}>" >&2; exit 2; }
    prepare
    service_env "$2" ;;
  *) echo "usage: $0 start|stop|status|init|env <service>" >&2; exit 2 ;;
esac
