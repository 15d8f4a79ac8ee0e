#!/usr/bin/env bash
# The README's start command: dependencies, build, local Kafka + ClickHouse, migrations, services.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
t0=$SECONDS
# Node.js 22 first on PATH (scripts/node.sh): the migrations and every service run on it.
source scripts/node.sh
mcp_audit_use_node "$ROOT"
bash scripts/bootstrap.sh
bash deploy/local/stack.sh up
set -a; source "${MCP_AUDIT_LOCAL_DIR:-$ROOT/.local}/secrets.env"; set +a
node packages/clickhouse/dist/src/migrate.js
node packages/kafka/dist/src/ensure-topics.js
bash scripts/services.sh start
echo
bash deploy/local/stack.sh status || true
bash scripts/services.sh status
echo "mcp-audit is up in $((SECONDS - t0))s. Stop with: npm run down"
