#!/usr/bin/env node
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { generateKey, hashKey } from '@mcp-audit/service-kit';
import { API_SCOPES, apiKeySchema, type ApiKey } from './api-keys.js';

/**
 * API keys: `create --id <id> --scopes analyst,admin [--description …]` prints the key once and stores
 * only its SHA-256; `list`; `revoke --id <id>` (the running API re-reads the file within a second).
 * The file (MCP_AUDIT_API_KEYS_FILE or --file) is written atomically with mode 0600.
 */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  now?: () => Date;
}

function load(file: string): ApiKey[] {
  if (!existsSync(file)) return [];
  return z.array(apiKeySchema).parse(JSON.parse(readFileSync(file, 'utf8')));
}

function save(file: string, keys: ApiKey[]): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function runKeysCli(argv: string[], env: NodeJS.ProcessEnv, io: CliIo): number {
  const [cmd, ...rest] = argv;
  let a;
  try {
    a = parseArgs({
      args: rest,
      options: {
        file: { type: 'string' },
        id: { type: 'string' },
        scopes: { type: 'string' },
        description: { type: 'string' },
        json: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    io.err(`${(err as Error).message}\n`);
    return 2;
  }
  const file = a.file ?? env.MCP_AUDIT_API_KEYS_FILE;
  if (!file) {
    io.err('set MCP_AUDIT_API_KEYS_FILE or pass --file\n');
    return 2;
  }
  const keys = load(file);
  switch (cmd) {
    case 'create': {
      const id = a.id ?? '';
      const scopes = (a.scopes ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (keys.some((k) => k.id === id)) {
        io.err(`a key with id ${id} exists (revoke it, or choose another id)\n`);
        return 1;
      }
      const plain = generateKey('mcpa');
      const entry = apiKeySchema.safeParse({
        id,
        sha256: hashKey(plain),
        scopes,
        created_at: (io.now?.() ?? new Date()).toISOString(),
        ...(a.description ? { description: a.description } : {}),
      });
      if (!entry.success) {
        io.err(
          `invalid key: ${entry.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (scopes: ${API_SCOPES.join(', ')})\n`,
        );
        return 2;
      }
      save(file, [...keys, entry.data]);
      io.out(a.json ? JSON.stringify({ id, scopes, key: plain }) + '\n' : `${plain}\n`);
      io.err(`created key ${id} (${scopes.join(',')}); it is shown once: store it now\n`);
      return 0;
    }
    case 'list':
      for (const k of keys)
        io.out(
          `${k.id}\t${k.scopes.join(',')}\t${k.disabled ? 'revoked' : 'active'}\t${k.created_at ?? '-'}\t${k.description ?? ''}\n`,
        );
      return 0;
    case 'revoke': {
      const k = keys.find((x) => x.id === a.id);
      if (!k) {
        io.err(`no key with id ${a.id ?? '(none)'}\n`);
        return 1;
      }
      k.disabled = true;
      save(file, keys);
      io.err(`revoked key ${k.id}\n`);
      return 0;
    }
    default:
      io.err(
        'usage: keys create --id <id> --scopes analyst[,compliance,admin] [--description …] | list | revoke --id <id>  [--file <keys.json>]\n',
      );
      return 2;
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = runKeysCli(process.argv.slice(2), process.env, {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  });
}
