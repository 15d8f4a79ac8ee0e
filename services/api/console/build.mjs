#!/usr/bin/env node
// Builds the analyst console: type-checks console/src (its own tsconfig, DOM lib), bundles it with
// esbuild and writes dist/console/index.html plus content-hashed files under dist/console/assets/.
// The page has no inline script or style, so the api can serve it under a strict CSP.
//   node console/build.mjs [--no-check] [--watch-free: run again by hand]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', 'dist', 'console');
const assets = join(outDir, 'assets');

if (!process.argv.includes('--no-check')) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('console: type errors');
    process.exit(1);
  }
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, 'src', 'main.ts')],
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  outdir: assets,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  splitting: true,
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.entries(result.metafile.outputs);
const js = outputs.find(([f, o]) => f.endsWith('.js') && o.entryPoint);
const css = outputs.find(([f]) => f.endsWith('.css'));
// Chunks the entry imports statically are preloaded, so they do not wait for the entry to parse.
const preload = js ? js[1].imports.filter((i) => i.kind === 'import-statement').map((i) => i.path) : [];
if (!js || !css) throw new Error('esbuild produced no js/css entry');
const href = (f) => `/assets/${basename(f)}`;

// The favicon is a file too: CSP default-src 'self' refuses data: URLs.
const icon = readFileSync(join(here, 'favicon.svg'));
const iconName = `favicon-${createHash('sha256').update(icon).digest('hex').slice(0, 8)}.svg`;
copyFileSync(join(here, 'favicon.svg'), join(assets, iconName));

const html = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="same-origin" />
    <title>mcp-audit</title>
    <link rel="icon" href="/assets/${iconName}" type="image/svg+xml" />
    <link rel="stylesheet" href="${href(css[0])}" />
${preload.map((p) => `    <link rel="modulepreload" href="${href(p)}" />\n`).join('')}    <script type="module" src="${href(js[0])}"></script>
  </head>
  <body>
    <noscript>The mcp-audit console needs JavaScript.</noscript>
    <div id="app"></div>
  </body>
</html>
`;
writeFileSync(join(outDir, 'index.html'), html);

for (const [f, o] of outputs)
  if (!f.endsWith('.map') && !f.endsWith('.LEGAL.txt'))
    console.log(`console: ${relative(join(here, '..'), f)} ${(o.bytes / 1024).toFixed(1)} KiB`);
