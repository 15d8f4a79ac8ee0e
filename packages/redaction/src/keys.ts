/**
 * Decides from a key name alone whether the value under it is a credential. Keys are split into
 * words (camelCase, `-`, `_`, `.`, digits), so `apiKey`, `API_KEY`, `x-api-key` and `X-Api-Key`
 * are one name. The rules look at what the name ends with: `github_token` and `dbPassword` are
 * credentials, `token_count`, `max_tokens`, `tokenizer`, `secret_name` and `password_policy` are
 * not — their last word says the value is a count, a name or a setting.
 */

export type KeyKind =
  | 'password'
  | 'secret'
  | 'token'
  | 'api_key'
  | 'private_key'
  | 'cookie'
  | 'authorization'
  | 'credentials'
  | 'connection_string'
  | 'signature'
  | 'session'
  | 'otp';

/** Whole names (words joined) that are credentials on their own. */
const EXACT: ReadonlyMap<string, KeyKind> = new Map<string, KeyKind>([
  ['apikey', 'api_key'],
  ['xapikey', 'api_key'],
  ['privatekey', 'private_key'],
  ['secretkey', 'secret'],
  ['setcookie', 'cookie'],
  ['session', 'session'],
  ['sessionid', 'session'],
  ['sessid', 'session'],
  ['phpsessid', 'session'],
  ['jsessionid', 'session'],
  ['connectionstring', 'connection_string'],
  ['connstring', 'connection_string'],
  ['connstr', 'connection_string'],
  ['dsn', 'connection_string'],
  ['sig', 'signature'],
  ['otp', 'otp'],
  ['totp', 'otp'],
  ['mfacode', 'otp'],
  ['sas', 'token'],
  // GCP service-account keys: the id of the private key (40 hex), as sensitive as its name says.
  ['privatekeyid', 'private_key'],
]);

/** The last word of the name decides. */
const LAST_WORD: ReadonlyMap<string, KeyKind> = new Map<string, KeyKind>([
  ['password', 'password'],
  ['passwd', 'password'],
  ['pwd', 'password'],
  ['pass', 'password'],
  ['passphrase', 'password'],
  ['passcode', 'password'],
  ['secret', 'secret'],
  ['secrets', 'secret'],
  ['token', 'token'],
  ['jwt', 'token'],
  ['bearer', 'token'],
  ['apikey', 'api_key'],
  ['privatekey', 'private_key'],
  ['cookie', 'cookie'],
  ['cookies', 'cookie'],
  ['auth', 'authorization'],
  ['authorization', 'authorization'],
  ['credentials', 'credentials'],
  ['credential', 'credentials'],
  ['creds', 'credentials'],
  ['dsn', 'connection_string'],
  ['signature', 'signature'],
]);

/** Single words that end in a credential noun without a separator (`PGPASSWORD`, `csrftoken`). */
const SUFFIXES: ReadonlyArray<readonly [string, KeyKind]> = [
  ['password', 'password'],
  ['passwd', 'password'],
  ['secret', 'secret'],
  ['token', 'token'],
  ['apikey', 'api_key'],
  ['privatekey', 'private_key'],
];

/** `<word>_key` is a credential only for these words (`public_key`, `primary_key`, `cache_key` are not). */
const KEY_QUALIFIERS = new Set([
  'api',
  'private',
  'secret',
  'signing',
  'sign',
  'encryption',
  'encrypt',
  'decryption',
  'master',
  'access',
  'auth',
  'session',
  'client',
  'app',
  'application',
  'subscription',
  'account',
  'storage',
  'shared',
  'webhook',
  'hmac',
  'service',
  'license',
  'admin',
  'root',
  'deploy',
  'ssh',
  'gpg',
  'pgp',
  'management',
  'mgmt',
  'rest',
  'server',
  'bot',
  'integration',
  'personal',
  'aes',
  'jwt',
  'token',
  'write',
]);

/** `<word>_token` that is not a credential: LLM token counts, tokenizer specials, pagination cursors. */
const NON_CREDENTIAL_TOKEN = new Set([
  'max',
  'min',
  'num',
  'total',
  'input',
  'output',
  'prompt',
  'completion',
  'cached',
  'reasoning',
  'per',
  'count',
  'next',
  'prev',
  'previous',
  'page',
  'continuation',
  'pagination',
  'cursor',
  'sync',
  'cancellation',
  'cancel',
  'change',
  'stop',
  'eos',
  'bos',
  'pad',
  'unk',
  'sep',
  'cls',
  'mask',
  'special',
  'first',
  'last',
  'start',
  'end',
]);

/** `access_tokens` is a credential list, `max_tokens` and `input_tokens` are not. */
const CREDENTIAL_TOKENS_QUALIFIERS = new Set([
  'access',
  'refresh',
  'id',
  'auth',
  'api',
  'bearer',
  'session',
  'oauth',
  'personal',
  'bot',
  'csrf',
  'xsrf',
]);

/** Trailing words that describe an encoding or a copy of the same value (`password_hash`, `token_b64`). */
const TRAILING_QUALIFIERS = new Set([
  'value',
  'val',
  'hash',
  'hashed',
  'digest',
  'b64',
  'base64',
  'hex',
  'raw',
  'plain',
  'plaintext',
  'encoded',
  'enc',
  'encrypted',
  'str',
  'data',
  'header',
  'pem',
  'der',
  'text',
  'json',
  'env',
  'input',
  'confirm',
  'confirmation',
  'old',
  'new',
  'current',
  'override',
]);

export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/([A-Za-z])([0-9])/g, '$1 $2')
    .replace(/([0-9])([A-Za-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

function classify(key: string): KeyKind | undefined {
  const words = keyWords(key);
  if (words.length === 0) return undefined;
  const exact = EXACT.get(words.join(''));
  if (exact) return exact;
  let end = words.length;
  while (end > 1 && (TRAILING_QUALIFIERS.has(words[end - 1]!) || /^[0-9]+$/.test(words[end - 1]!))) end--;
  const core = words.slice(0, end);
  const coreExact = EXACT.get(core.join(''));
  if (coreExact) return coreExact;
  const last = core[end - 1]!;
  const prev = end > 1 ? core[end - 2] : undefined;

  if (last === 'token' && prev !== undefined && NON_CREDENTIAL_TOKEN.has(prev)) return undefined;
  const byLast = LAST_WORD.get(last);
  if (byLast) return byLast;
  if ((last === 'key' || last === 'keys') && prev !== undefined && KEY_QUALIFIERS.has(prev)) {
    if (prev === 'private') return 'private_key';
    if (core.includes('secret')) return 'secret';
    if (prev === 'secret' || prev === 'signing' || prev === 'encryption' || prev === 'master')
      return 'secret';
    return 'api_key';
  }
  if (last === 'tokens' && prev !== undefined && CREDENTIAL_TOKENS_QUALIFIERS.has(prev)) return 'token';
  if (prev === 'session' && (last === 'id' || last === 'key')) return 'session';
  if (core.length === 1) {
    for (const [suffix, kind] of SUFFIXES)
      if (last.length > suffix.length && last.endsWith(suffix)) return kind;
  }
  return undefined;
}

const cache = new Map<string, KeyKind | null>();
const CACHE_MAX = 10_000;

/** The kind of credential a key name denotes, or undefined for an ordinary key. */
export function credentialKeyKind(key: string): KeyKind | undefined {
  const hit = cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const kind = key.length > 128 ? undefined : classify(key);
  // Keys repeat across events; a bounded cache keeps a flood of unique keys from growing it.
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, kind ?? null);
  return kind;
}

/** Words in a key name that make a high-entropy value under it likely a secret. */
const HINT_WORDS = new Set([
  'key',
  'keys',
  'secret',
  'token',
  'password',
  'passwd',
  'pwd',
  'pass',
  'credential',
  'cred',
  'auth',
  'apikey',
  'private',
  'signature',
  'sig',
  'hmac',
  'salt',
  'nonce',
]);

/** Words that say the value is something else (a count, a name, a public or lookup key, a cursor). */
const NOT_HINT_WORDS = new Set([
  ...NON_CREDENTIAL_TOKEN,
  'count',
  'name',
  'names',
  'type',
  'kind',
  'policy',
  'method',
  'url',
  'uri',
  'path',
  'file',
  'length',
  'size',
  'version',
  'format',
  'algorithm',
  'alg',
  'expires',
  'expiry',
  'expiration',
  'ttl',
  'at',
  'time',
  'status',
  'mode',
  'enabled',
  'required',
  'hint',
  'field',
  'public',
  'primary',
  'foreign',
  'partition',
  'sort',
  'cache',
  'idempotency',
  'dedup',
  'routing',
  'object',
  's3',
  'map',
  'lookup',
  'index',
  'row',
  'shard',
  'hash',
  'digest',
  'checksum',
  'fingerprint',
  'sha',
  'md5',
  'commit',
  'etag',
  'request',
  'trace',
  'span',
  'correlation',
  'message',
  'event',
  'id',
  'ids',
  'uuid',
]);

const hintCache = new Map<string, boolean>();

/**
 * A key name that is no credential name by `credentialKeyKind` but hints at one (`key`, `k_secret`,
 * `stripe_hmac`, `signing`): a value under it that looks machine-made is redacted as `secret`.
 */
export function secretHintKey(key: string): boolean {
  const hit = hintCache.get(key);
  if (hit !== undefined) return hit;
  const words = key.length > 128 ? [] : keyWords(key);
  const hint = words.some((w) => HINT_WORDS.has(w)) && !words.some((w) => NOT_HINT_WORDS.has(w));
  if (hintCache.size >= CACHE_MAX) hintCache.clear();
  hintCache.set(key, hint);
  return hint;
}
