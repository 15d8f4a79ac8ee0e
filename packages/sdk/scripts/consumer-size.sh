#!/usr/bin/env bash
# What a server author installs with @mcp-audit/sdk: packs the SDK and the workspace packages it
# needs (package.json, README and dist/src only: what a publish would carry), installs them from
# the tarballs into a fresh consumer next to @modelcontextprotocol/sdk, and prints the size and
# the number of packages. Usage (after `npx tsc -b packages/sdk`):
#   bash packages/sdk/scripts/consumer-size.sh <repo root> <consumer dir> <entry> [package...]
# e.g. consumer-size.sh /work/main /tmp/sdk-consumer-after @mcp-audit/sdk sdk schema redaction
set -euo pipefail
ROOT="$(cd "$1" && pwd)"
OUT="$2"
ENTRY="$3"
shift 3
rm -rf "$OUT"
mkdir -p "$OUT/tarballs" "$OUT/stage"
deps=()
for p in "$@"; do
  mkdir -p "$OUT/stage/$p/dist"
  cp "$ROOT/packages/$p/package.json" "$OUT/stage/$p/"
  [ -f "$ROOT/packages/$p/README.md" ] && cp "$ROOT/packages/$p/README.md" "$OUT/stage/$p/"
  cp -r "$ROOT/packages/$p/dist/src" "$OUT/stage/$p/dist/"
  # NOTE: an empty .npmignore, or npm pack applies the repository's .gitignore (dist/) and packs no code.
  : >"$OUT/stage/$p/.npmignore"
  tgz="$(cd "$OUT/stage/$p" && npm pack --silent --pack-destination "$OUT/tarballs")"
  name="$(node -p "require('$OUT/stage/$p/package.json').name")"
  deps+=("\"$name\": \"file:./tarballs/$tgz\"")
done
list="$(IFS=,; echo "${deps[*]}")"
# The workspace packages depend on each other by version (0.1.0): overrides point those at the
# tarballs too, so nothing is looked up in the registry under our names.
cat >"$OUT/package.json" <<JSON
{
  "name": "sdk-consumer",
  "private": true,
  "type": "module",
  "dependencies": { "@modelcontextprotocol/sdk": "^1.32.2", $list },
  "overrides": { $list }
}
JSON
(cd "$OUT" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$OUT/stage"
(cd "$OUT" && node --input-type=module -e "await import('$ENTRY'); console.log('import $ENTRY: ok')")
echo "size:     $(cd "$OUT" && du -sh node_modules | cut -f1) ($(cd "$OUT" && du -sk node_modules | cut -f1) KiB)"
echo "packages: $(cd "$OUT" && npm ls --all --parseable | wc -l) lines of npm ls --all --parseable"
