// What a service's image will hold (deploy/docker/Dockerfile's deps stage: `npm ci --omit=dev
// --workspace services/<name>`) is enough to run it: every package its compiled code, and that of the
// workspace packages it uses, imports at run time is a production dependency of the workspace that
// imports it. A package imported but declared only as a devDependency (or not at all) works in the
// monorepo, where everything is installed, and fails in the image at start-up; the images are never
// built on the project's machines (no Docker engine), so this is where it is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../lib/env.js';

interface Workspace {
  name: string;
  dir: string;
  dependencies: string[];
  /** Peer dependencies: satisfied when the image installs them for another member (npm ci installs
   * non-optional ones itself). */
  peers: Array<{ name: string; optional: boolean }>;
}

function workspaces(): Map<string, Workspace> {
  const out = new Map<string, Workspace>();
  for (const group of ['packages', 'services']) {
    for (const d of readdirSync(join(REPO_ROOT, group))) {
      const dir = join(REPO_ROOT, group, d);
      const pkgFile = join(dir, 'package.json');
      if (!existsSync(pkgFile)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
        peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      };
      out.set(pkg.name, {
        name: pkg.name,
        dir,
        dependencies: Object.keys(pkg.dependencies ?? {}),
        peers: Object.keys(pkg.peerDependencies ?? {}).map((name) => ({
          name,
          optional: pkg.peerDependenciesMeta?.[name]?.optional === true,
        })),
      });
    }
  }
  return out;
}

function jsFiles(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) jsFiles(p, out);
    else if (name.endsWith('.js')) out.push(p);
  }
  return out;
}

// Static imports and re-exports, and import() of a literal, as tsc emits them.
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s+(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The package a bare specifier names ('@scope/x/y' → '@scope/x', 'x/y' → 'x'); undefined when relative. */
function packageOf(spec: string): string | undefined {
  if (spec.startsWith('.') || spec.startsWith('/')) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const BUILTIN = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * Every bare import of a workspace's run-time code (dist/src) that the image does not give it: not
 * its dependency, nor a peer dependency the image installs (`installed`).
 */
function undeclared(ws: Workspace, installed: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const file of jsFiles(join(ws.dir, 'dist', 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (BUILTIN.has(spec) || BUILTIN.has(spec.split('/')[0]!)) continue;
      const pkg = packageOf(spec);
      if (pkg === undefined || pkg === ws.name || ws.dependencies.includes(pkg)) continue;
      if (ws.peers.some((p) => p.name === pkg) && installed.has(pkg)) continue;
      problems.push(`${relative(REPO_ROOT, file)} imports '${spec}', not a dependency of ${ws.name}`);
    }
  }
  return problems;
}

/** The workspace packages a service's image installs: its own dependencies among them, transitively. */
function closure(all: Map<string, Workspace>, root: Workspace): Workspace[] {
  const seen = new Map<string, Workspace>([[root.name, root]]);
  const queue = [root];
  while (queue.length > 0) {
    for (const dep of queue.shift()!.dependencies) {
      const ws = all.get(dep);
      if (ws && !seen.has(dep)) {
        seen.set(dep, ws);
        queue.push(ws);
      }
    }
  }
  return [...seen.values()];
}

const all = workspaces();
const services = [...all.values()].filter((w) => w.dir.includes(`${join(REPO_ROOT, 'services')}/`));

test('the checker finds an import that is not a dependency (on a file of its own)', () => {
  const text =
    "import { a } from './a.js';\nimport fc from 'fast-check';\nexport * from '@scope/pkg/sub';\nconst m = await import('node:fs');\n";
  const specs = [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2]);
  assert.deepEqual(specs, ['./a.js', 'fast-check', '@scope/pkg/sub', 'node:fs']);
  assert.equal(packageOf('@scope/pkg/sub'), '@scope/pkg');
  assert.equal(packageOf('fast-check'), 'fast-check');
});

for (const svc of services) {
  test(`${svc.name}: its image's code imports only production dependencies (its own and its workspace packages')`, () => {
    const members = closure(all, svc);
    const files = members.reduce((n, w) => n + jsFiles(join(w.dir, 'dist', 'src')).length, 0);
    assert.ok(files > 0, `${svc.name}: no compiled code found (build first)`);
    const installed = new Set(
      members.flatMap((w) => [...w.dependencies, ...w.peers.filter((p) => !p.optional).map((p) => p.name)]),
    );
    assert.deepEqual(
      members.flatMap((w) => undeclared(w, installed)),
      [],
    );
  });
}
