#!/usr/bin/env bash
# Benchmarks run against the local stack: bring it up (idempotent), then run the given script.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh >/dev/null
# The same Node.js as the services and tests (scripts/node.sh: 22 LTS first on PATH).
source scripts/node.sh
mcp_audit_use_node "$ROOT"
bash deploy/local/stack.sh up
set -a; source "${MCP_AUDIT_LOCAL_DIR:-$ROOT/.local}/secrets.env"; set +a
node packages/clickhouse/dist/src/migrate.js >/dev/null
node packages/kafka/dist/src/ensure-topics.js >/dev/null
node "$@"
