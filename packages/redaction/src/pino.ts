import { credentialKeyKind } from './keys.js';
import type { Redactor } from './redact.js';

/** Credential field names as they appear in our own config and request objects. */
const FIELDS = [
  'password',
  'passwd',
  'pwd',
  'secret',
  'client_secret',
  'clientSecret',
  'token',
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'id_token',
  'idToken',
  'apiKey',
  'api_key',
  'apikey',
  'authorization',
  'cookie',
  'private_key',
  'privateKey',
  'credentials',
  'connection_string',
  'connectionString',
  'dsn',
  'sasl',
];

const HEADERS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  'req.headers["x-auth-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["set-cookie"]',
];

/**
 * Paths for pino's `redact` option (fast-redact syntax). NOTE: `*.x` reaches one level only, so
 * this is the cheap structural guard for log lines; anything user-supplied that is logged (tool
 * arguments, error text) must go through `redactValue` / `redactString` first.
 */
export const pinoRedactPaths: readonly string[] = [...HEADERS, ...FIELDS, ...FIELDS.map((f) => `*.${f}`)];

export interface PinoRedactOptions {
  paths: string[];
  censor: string | ((value: unknown, path: string[]) => unknown);
}

/**
 * `redact` options for pino. With a redactor the censor writes fingerprinted markers, so a secret
 * that reached a log line can be correlated with the audit events that carried it.
 */
export function pinoRedactOptions(redactor?: Pick<Redactor, 'fingerprint'>): PinoRedactOptions {
  const paths = [...pinoRedactPaths];
  if (!redactor) return { paths, censor: '[REDACTED]' };
  return {
    paths,
    censor: (value, path) => {
      if (value === undefined || value === null || value === '') return value;
      const kind = credentialKeyKind(path[path.length - 1] ?? '') ?? 'secret';
      const secret = typeof value === 'string' ? value : JSON.stringify(value);
      return `[REDACTED:${kind}:${redactor.fingerprint(secret ?? '')}]`;
    },
  };
}
