// Issue 16: the services run and are tested on a supported Node.js LTS. package.json "engines", the
// version scripts/node.sh installs for npm start / npm test / CI, and the images' base must agree, and
// a suite started by `npm test` must itself run on it (every process a test spawns uses
// process.execPath, so it inherits the runner's Node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/env.js';

const read = (p: string) => readFileSync(join(REPO_ROOT, p), 'utf8');
/** LTS lines supported: 22 (installed) and 24 (accepted when the machine has it). */
const LTS = ['22', '24'];

test('node: engines, the installed version and the images agree on the Node 22 LTS line', () => {
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  assert.equal(engines, '>=22');
  const pinned = /^MCP_AUDIT_NODE_VERSION=(\d+)\.(\d+)\.(\d+)$/m.exec(read('scripts/node.sh'));
  assert.ok(pinned, 'scripts/node.sh pins an exact version');
  assert.equal(pinned[1], '22', 'scripts/node.sh installs Node 22');
  const image = /^ARG NODE_IMAGE=node:(\d+)[.\d]*-bookworm-slim$/m.exec(read('deploy/docker/Dockerfile'));
  assert.equal(image?.[1], pinned[1], 'the images run the Node line the tests run');
  // Every entry point selects it before running node.
  for (const script of [
    'scripts/start.sh',
    'scripts/test.sh',
    'scripts/bootstrap.sh',
    'scripts/services.sh',
    'scripts/bench.sh',
  ])
    assert.match(
      read(script),
      /source "?(\$ROOT\/)?scripts\/node\.sh"?\n\s*mcp_audit_use_node "\$ROOT"/,
      script,
    );
  assert.match(read('.ci/run'), /^npm test$/m, 'CI runs npm test');
});

test('node: mcp_audit_use_node keeps a supported machine Node and refuses to guess without npm', () => {
  // A machine whose node is already on a supported line gets no install: PATH is left alone.
  const major = process.versions.node.split('.')[0]!;
  if (LTS.includes(major)) {
    const keep = spawnSync(
      '/bin/bash',
      [
        '-c',
        'source scripts/node.sh && before=$PATH && mcp_audit_use_node /nonexistent && [[ $PATH == "$before" ]] && node -v',
      ],
      { cwd: REPO_ROOT, encoding: 'utf8', env: { PATH: `${join(process.execPath, '..')}:/usr/bin:/bin` } },
    );
    assert.equal(keep.status, 0, keep.stderr);
    assert.equal(keep.stdout.trim(), process.version);
  }
  // Without any node and npm on PATH it says what is missing instead of failing obscurely.
  const none = spawnSync('/bin/bash', ['-c', 'source scripts/node.sh && mcp_audit_use_node /nonexistent'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { PATH: '/nonexistent-bin' },
  });
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /Node\.js 22 is required and npm is needed to install it/);
});

test('node: a suite started by npm test runs on a supported LTS', (t) => {
  if (process.env.npm_lifecycle_event !== 'test') {
    t.skip('not started by npm test (a single file run by hand uses the node that ran it)');
    return;
  }
  assert.ok(LTS.includes(process.versions.node.split('.')[0]!), `npm test runs on ${process.version}`);
});
