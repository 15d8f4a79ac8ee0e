#!/usr/bin/env bash
# Start/stop mcp-audit's own services in the background against the local stack.
#   services.sh start | stop | status
# Logs: .local/log/<service>.log; pids: .local/run/<service>.pid. Only what this script started is stopped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
RUN="$LOCAL/run"
LOGS="$LOCAL/log"
SERVICES=(ingester collector)
declare -A PORT=([ingester]=9471 [collector]=9470)

log() { printf '[services] %s\n' "$*" >&2; }

pid_of() {
  local f="$RUN/$1.pid" pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "services/$1/dist/src/main.js" || return 1
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

start() {
  mkdir -p "$RUN" "$LOGS"
  set -a; source "$LOCAL/secrets.env"; set +a
  ensure_collector_token
  set -a; source "$LOCAL/secrets.env"; set +a
  export MCP_AUDIT_COLLECTOR_TOKENS_FILE="$LOCAL/collector-tokens.json"
  for s in "${SERVICES[@]}"; do
    if pid=$(pid_of "$s"); then log "$s already running (pid $pid)"; continue; fi
    log "starting $s"
    (cd "$ROOT" || exit 1
      setsid node "services/$s/dist/src/main.js" </dev/null >>"$LOGS/$s.log" 2>&1 &
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
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
