#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, lints, brings the local stack up
# (real Kafka and ClickHouse), applies migrations and runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

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
echo "== local stack"
bash deploy/local/stack.sh up
set -a; source "${MCP_AUDIT_LOCAL_DIR:-$ROOT/.local}/secrets.env"; set +a
echo "== migrations"
node packages/clickhouse/dist/src/migrate.js
node packages/kafka/dist/src/ensure-topics.js
echo "== tests"
node scripts/run-tests.mjs "$@"
