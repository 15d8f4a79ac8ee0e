#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, lints, brings the tests' own stack up
# (real Kafka and ClickHouse), applies migrations and runs every test.
#
# The tests get a stack of their own, under .local/test on other ports (ClickHouse 18123/19000, Kafka
# 19092/19093): a suite run never writes into the audit log of the stack `npm start` runs (an
# append-only log cannot take test events back out, and its detector and notifier would act on them),
# and the fault tests stop and restart only the tests' Kafka and ClickHouse. Before and after the run,
# scripts/stack-fingerprint.mjs checks that the `npm start` stack's tables and topics are unchanged
# (and, when none of its services runs, its row counts and topic offsets too).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Node.js 22 first on PATH (installed under .local/node when the machine has another): the build, the
# test runner and every process a test starts (process.execPath) run on it.
source scripts/node.sh
mcp_audit_use_node "$ROOT"
echo "== node $(node -v) ($(command -v node))"
bash scripts/bootstrap.sh
# The console's browser tests drive Debian's chromium (playwright-core with executablePath): never a
# browser download. Installed here when missing (machines run the tests as root).
if [[ ! -x /usr/bin/chromium ]]; then
  echo "== chromium (apt-get)"
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  fi
fi
echo "== lint"
npm run -s lint
USER_LOCAL="$ROOT/.local"
export MCP_AUDIT_LOCAL_DIR="$(realpath -m "${MCP_AUDIT_TEST_LOCAL_DIR:-$ROOT/.local/test}")"
export MCP_AUDIT_STACK_CLICKHOUSE_HTTP_PORT="${MCP_AUDIT_TEST_CLICKHOUSE_HTTP_PORT:-18123}"
export MCP_AUDIT_STACK_CLICKHOUSE_TCP_PORT="${MCP_AUDIT_TEST_CLICKHOUSE_TCP_PORT:-19000}"
export MCP_AUDIT_STACK_KAFKA_PORT="${MCP_AUDIT_TEST_KAFKA_PORT:-19092}"
export MCP_AUDIT_STACK_KAFKA_CONTROLLER_PORT="${MCP_AUDIT_TEST_KAFKA_CONTROLLER_PORT:-19093}"
# The cluster profiles the cluster tests bring up beside that stack. Below the kernel's ephemeral
# range (32768-60999 here): a port in it can be held by any process's outgoing connection (the
# brokers' own, to each other) when a server comes to bind it ("Address already in use").
export MCP_AUDIT_TEST_CLUSTER_ZOOKEEPER_PORT="${MCP_AUDIT_TEST_CLUSTER_ZOOKEEPER_PORT:-24181}"
export MCP_AUDIT_TEST_CLUSTER_CLICKHOUSE_HTTP_PORT="${MCP_AUDIT_TEST_CLUSTER_CLICKHOUSE_HTTP_PORT:-24123}"
export MCP_AUDIT_TEST_CLUSTER_CLICKHOUSE_TCP_PORT="${MCP_AUDIT_TEST_CLUSTER_CLICKHOUSE_TCP_PORT:-24200}"
export MCP_AUDIT_TEST_CLUSTER_INTERSERVER_PORT="${MCP_AUDIT_TEST_CLUSTER_INTERSERVER_PORT:-24210}"
export MCP_AUDIT_TEST_CLUSTER_KAFKA_PORT="${MCP_AUDIT_TEST_CLUSTER_KAFKA_PORT:-24392}"
export MCP_AUDIT_TEST_CLUSTER_KAFKA_CONTROLLER_PORT="${MCP_AUDIT_TEST_CLUSTER_KAFKA_CONTROLLER_PORT:-24492}"
fingerprint="$(mktemp)"
trap 'rm -f "$fingerprint"' EXIT
node scripts/stack-fingerprint.mjs "$USER_LOCAL/secrets.env" >"$fingerprint" 2>/dev/null
echo "== the tests' own stack ($MCP_AUDIT_LOCAL_DIR)"
bash deploy/local/stack.sh up
set -a; source "$MCP_AUDIT_LOCAL_DIR/secrets.env"; set +a
echo "== migrations"
node packages/clickhouse/dist/src/migrate.js
node packages/kafka/dist/src/ensure-topics.js
echo "== tests"
rc=0
node scripts/run-tests.mjs "$@" || rc=$?
echo "== the npm start stack ($USER_LOCAL)"
counts=--counts
if MCP_AUDIT_LOCAL_DIR="$USER_LOCAL" bash scripts/services.sh status 2>/dev/null | grep -q ' running '; then counts=; fi
node scripts/stack-fingerprint.mjs "$USER_LOCAL/secrets.env" --against "$fingerprint" $counts 2>&1 | grep -v '^\[' || rc=1
exit $rc
