import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { REPO_ROOT, suffix } from './env.js';

export interface TestToken {
  token: string;
  sourceId: string;
}

/** Writes a collector tokens file (hashes only) and returns the plain tokens for the test. */
export function writeTokensFile(entries: Array<{ sourceId: string; scopes: string[] }>): {
  file: string;
  tokens: TestToken[];
} {
  const tokens = entries.map((e) => ({
    token: `mcpa_${randomBytes(32).toString('base64url')}`,
    sourceId: e.sourceId,
  }));
  const file = `${REPO_ROOT}.local/test-logs/tokens-${suffix()}.json`;
  mkdirSync(`${REPO_ROOT}.local/test-logs`, { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      entries.map((e, i) => ({
        id: `test-${i}`,
        source_id: e.sourceId,
        sha256: createHash('sha256').update(tokens[i]!.token).digest('hex'),
        scopes: e.scopes,
      })),
    ),
    { mode: 0o600 },
  );
  return { file, tokens };
}
