import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderEventJsonSchema } from './json-schema.js';

// Compiled to packages/schema/dist/src/, four levels below the repository root.
export const EVENT_JSON_SCHEMA_PATH = fileURLToPath(
  new URL('../../../../schemas/event.v1.json', import.meta.url),
);

/** Writes schemas/event.v1.json, or with `check` only compares. Returns whether the file was current. */
export function generateEventJsonSchema(opts: { check?: boolean; path?: string } = {}): boolean {
  const path = opts.path ?? EVENT_JSON_SCHEMA_PATH;
  const expected = renderEventJsonSchema();
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === expected) return true;
  if (!opts.check) writeFileSync(path, expected);
  return false;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes('--check');
  const current = generateEventJsonSchema({ check });
  if (check && !current) {
    console.error(`${EVENT_JSON_SCHEMA_PATH} is stale: run npm run schema:generate`);
    process.exit(1);
  }
  console.log(current ? `${EVENT_JSON_SCHEMA_PATH} is up to date` : `wrote ${EVENT_JSON_SCHEMA_PATH}`);
}
