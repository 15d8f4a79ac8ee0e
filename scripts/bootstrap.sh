#!/usr/bin/env bash
# Node.js 22 (scripts/node.sh: installed under .local/node when the machine has another), npm
# dependencies when missing or stale, then build everything (tsc -b) and the console.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v node >/dev/null || { echo "node not found: Node.js (and npm) are needed to install Node.js 22" >&2; exit 1; }
source scripts/node.sh
mcp_audit_use_node "$ROOT"
stamp=node_modules/.mcp-audit-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
echo "== build"
npx tsc -b
echo "== console"
node services/api/console/build.mjs
