#!/usr/bin/env bash
# `npm run test:down`: stops everything the test suite leaves running for the next run to reuse: the
# tests' stack and the two cluster profiles the cluster tests bring up beside it (same directory).
# The `npm start` stack (.local) is not touched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MCP_AUDIT_LOCAL_DIR="$(realpath -m "${MCP_AUDIT_TEST_LOCAL_DIR:-$ROOT/.local/test}")"
rc=0
bash "$ROOT/deploy/local/cluster-clickhouse.sh" down || rc=1
bash "$ROOT/deploy/local/cluster-kafka.sh" down || rc=1
bash "$ROOT/deploy/local/stack.sh" down || rc=1
exit $rc
