import { credentialKeyKind } from './keys.js';
import { looksLikeSecretToken } from './shapes.js';

/**
 * A secret format recognised inside free text. Every regex is compiled once, uses only bounded
 * quantifiers over disjoint classes (no nested unbounded repetition, so no catastrophic
 * backtracking), and is only run when one of its cheap `triggers` occurs in the string.
 */
export interface SecretPattern {
  readonly kind: string;
  /** Flags must include `g` and `d` (match indices for the capture group). */
  readonly regex: RegExp;
  /** Capture group holding the secret; 0 is the whole match. */
  readonly group: number;
  /** At least one must occur in the string (lower-cased when `ignoreCase`). */
  readonly triggers: readonly string[];
  readonly ignoreCase?: boolean;
  /** Shortest string the regex can match (for the length short-cut). */
  readonly minLength: number;
  /** Extra validation of a match; false skips it. */
  readonly check?: (secret: string, m: RegExpExecArray) => boolean;
  /** The secret's [start, end) when no single group holds it. */
  readonly span?: (m: RegExpExecArray) => [number, number];
  /** Kind reported for a match when it depends on the match (defaults to `kind`). */
  readonly kindOf?: (m: RegExpExecArray) => string;
}

const WORD = 'A-Za-z0-9';
const BASE64_WORD = 'A-Za-z0-9_+/-';

/**
 * `lead` then `rest`, where `lead` is not glued to a preceding character of the class `notAfter`,
 * except through an escaped newline or tab (`…\\nghp_…` in a log line whose JSON was escaped once
 * more). The literal comes first and the boundary is a lookbehind after it: V8 then searches for
 * the literal instead of trying the lookbehind at every position (about 30x faster on prose).
 */
function tok(lead: string, rest: string, notAfter = WORD, lookbehindLead = lead): string {
  return `${lead}(?<=(?:^|[^${notAfter}]|\\\\[nrt])${lookbehindLead})${rest}`;
}

/** For patterns that cannot start with a literal. */
function after(notAfter: string): string {
  return `(?:(?<![${notAfter}])|(?<=\\\\[nrt]))`;
}

function re(source: string, flags = ''): RegExp {
  return new RegExp(source, `gd${flags}`);
}

const hasDigit = (s: string): boolean => /[0-9]/.test(s);
const hasUpper = (s: string): boolean => /[A-Z]/.test(s);
const hasLower = (s: string): boolean => /[a-z]/.test(s);

/** Opaque tokens are random: prose (`Bearer authentication`) is not. */
function looksRandom(s: string): boolean {
  if (s.length >= 24) return true;
  return hasDigit(s) && (hasUpper(s) || hasLower(s));
}

function decodesToUserPass(b64: string): boolean {
  if (b64.length % 4 === 1) return false;
  const text = Buffer.from(b64, 'base64').toString('latin1');
  return text.includes(':') && /^[\x20-\x7e]+$/.test(text);
}

/** Discord bot tokens start with the base64 of the bot's numeric user id. */
function discordIdSegment(first: string): boolean {
  return /^[0-9]{17,20}$/.test(Buffer.from(first, 'base64').toString('latin1'));
}

/** Values after `password=` that are placeholders or words, not secrets. */
const NOT_A_VALUE = new Set([
  'true',
  'false',
  'null',
  'nil',
  'none',
  'undefined',
  'empty',
  'unset',
  'required',
  'missing',
  'invalid',
  'expired',
  'hidden',
  'redacted',
  'bearer',
  'basic',
  'token',
  'digest',
  'string',
  'number',
  'is',
  'was',
  'the',
  'a',
  'an',
  'not',
  'no',
]);

function kvValueCheck(value: string, m: RegExpExecArray): boolean {
  if (!credentialKeyKind(m[1]!)) return false;
  if (NOT_A_VALUE.has(value.toLowerCase())) return false;
  return (
    !/^[*x.•]+$/i.test(value) && !/^<[^>]*>$/.test(value) && !/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value)
  );
}

const PROSE_KINDS: Record<string, string> = {
  secret: 'secret',
  token: 'token',
  key: 'secret',
  password: 'password',
  passwd: 'password',
  pwd: 'password',
  passphrase: 'password',
  credential: 'credentials',
};

/** `public key …`, `primary key …`: the word before says the key is no secret. */
const NOT_SECRET_BEFORE =
  /(?:^|[^A-Za-z])(?:public|primary|foreign|sort|partition|cache|object|idempotency|dedup|routing|license|map|lookup|index|row|shard|s3|host|gpg|ssh|next|page|continuation|max|input|output|access)[ _-]?$/i;

function proseSecretCheck(value: string, m: RegExpExecArray): boolean {
  // The word starts a word (or follows an escaped \n, \r, \t): checked here, not by a lookbehind
  // in the regex, which V8 would try at every position of every string holding `key` or `token`.
  const prev = m.input.charCodeAt(m.index - 1);
  const isLetter = (prev >= 65 && prev <= 90) || (prev >= 97 && prev <= 122);
  if (isLetter && !/\\[nrt]$/.test(m.input.slice(Math.max(0, m.index - 2), m.index))) return false;
  const word = m[1]!.toLowerCase();
  const before = m.input.slice(Math.max(0, m.index - 16), m.index);
  if (NOT_SECRET_BEFORE.test(before)) return false;
  const token = value.replace(/[.,;:!?]+$/, '');
  // A hex digest after `key` is as often a cache or object key as a secret.
  if (word.startsWith('key') && /^[0-9a-f]+$/i.test(token)) return false;
  return looksLikeSecretToken(token);
}

const KEY_WORD_TRIGGERS = [
  'pass',
  'pwd',
  'secret',
  'token',
  'key',
  'auth',
  'cred',
  'session',
  'sessid',
  'cookie',
  'dsn',
  'sig',
  'otp',
  'jwt',
  'bearer',
  'conn',
];

/**
 * In priority order: where matches overlap they are merged into one span and the earliest
 * pattern names the kind, so specific formats come before the generic ones at the end.
 */
export const SECRET_PATTERNS: readonly SecretPattern[] = [
  {
    kind: 'private_key',
    // A complete PEM block, or a truncated one (no END line): everything base64-ish after BEGIN.
    regex: re(
      String.raw`-----BEGIN ((?:[A-Z0-9]{1,20} ){0,3})PRIVATE KEY( BLOCK)?-----(?:[\s\S]{0,16384}?-----END \1PRIVATE KEY\2-----|[A-Za-z0-9+/=\s\\:,-]{16,16384})`,
    ),
    group: 0,
    triggers: ['PRIVATE KEY'],
    minLength: 32,
  },
  {
    kind: 'age_secret_key',
    regex: re(String.raw`AGE-SECRET-KEY-1[A-Z0-9]{58}`),
    group: 0,
    triggers: ['AGE-SECRET-KEY-'],
    minLength: 74,
  },
  {
    kind: 'jwt',
    regex: re(
      tok(
        'eyJ',
        String.raw`[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{4,16384}\.[A-Za-z0-9_-]{0,4096}`,
        BASE64_WORD,
      ),
    ),
    group: 0,
    triggers: ['eyJ'],
    minLength: 17,
  },
  {
    kind: 'github_token',
    regex: re(String.raw`gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251}`),
    group: 0,
    triggers: ['gh', 'github_pat_'],
    minLength: 33,
  },
  {
    kind: 'gitlab_token',
    regex: re(
      String.raw`gl(?:pat|dt|rt|ptt|cbt|oat|soat|ft|imt|feed|agent)-[A-Za-z0-9_-]{20,128}|GR1348941[A-Za-z0-9_-]{20,64}`,
    ),
    group: 0,
    triggers: ['gl', 'GR1348941'],
    minLength: 25,
  },
  {
    kind: 'slack_webhook',
    regex: re(String.raw`hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9/_-]{20,256})`),
    group: 1,
    triggers: ['hooks.slack.com/'],
    minLength: 44,
  },
  {
    kind: 'slack_token',
    regex: re(tok('(?:xox[abposre]|xapp)-', '[A-Za-z0-9-]{10,250}')),
    group: 0,
    triggers: ['xox', 'xapp-'],
    minLength: 15,
  },
  {
    kind: 'discord_webhook',
    regex: re(String.raw`discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/([A-Za-z0-9_-]{60,100})`),
    group: 1,
    triggers: ['/api/webhooks/'],
    minLength: 100,
  },
  {
    kind: 'stripe_key',
    regex: re(tok('(?:sk|rk)_(?:live|test)_', '[A-Za-z0-9]{16,247}')),
    group: 0,
    triggers: ['_live_', '_test_'],
    minLength: 24,
  },
  {
    kind: 'stripe_webhook_secret',
    regex: re(tok('whsec_', '[A-Za-z0-9+/=]{24,128}')),
    group: 0,
    triggers: ['whsec_'],
    minLength: 30,
  },
  {
    kind: 'anthropic_api_key',
    regex: re(tok('sk-ant-', '[A-Za-z0-9_-]{20,250}')),
    group: 0,
    triggers: ['sk-ant-'],
    minLength: 27,
  },
  {
    kind: 'openai_api_key',
    regex: re(tok('sk-', '(?:proj-|svcacct-|admin-|None-)?([A-Za-z0-9_-]{20,250})')),
    group: 0,
    triggers: ['sk-'],
    minLength: 23,
    check: (_s, m) => {
      const body = m[1]!;
      return hasDigit(body) && hasUpper(body) && hasLower(body);
    },
  },
  {
    // `sk-` and 32 hex digits (DeepSeek and other OpenAI-compatible providers).
    kind: 'llm_api_key',
    regex: re(tok('sk-', '[a-f0-9]{32}(?![A-Za-z0-9_-])')),
    group: 0,
    triggers: ['sk-'],
    minLength: 35,
  },
  {
    kind: 'google_api_key',
    regex: re(tok('AIza', '[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])', BASE64_WORD)),
    group: 0,
    triggers: ['AIza'],
    minLength: 39,
  },
  {
    kind: 'google_oauth_token',
    regex: re(tok(String.raw`ya29\.`, '[0-9A-Za-z_-]{20,2048}')),
    group: 0,
    triggers: ['ya29.'],
    minLength: 25,
  },
  {
    kind: 'google_oauth_client_secret',
    regex: re(tok('GOCSPX-', '[0-9A-Za-z_-]{24,40}')),
    group: 0,
    triggers: ['GOCSPX-'],
    minLength: 31,
  },
  {
    kind: 'aws_access_key_id',
    regex: re(
      tok('(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)', '[A-Z0-9]{16}(?![A-Z0-9])', 'A-Z0-9'),
    ),
    group: 0,
    triggers: ['AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'AIPA', 'ANPA', 'ANVA', 'ABIA', 'ACCA'],
    minLength: 20,
  },
  {
    kind: 'aws_secret_access_key',
    regex: re(
      tok(
        'secret',
        String.raw`[_-]?(?:access[_-]?)?key(?:[_-]?id)?["']?[ \t]{0,3}(?:=>|:=|[:=])[ \t]{0,3}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
        WORD,
        '(?:aws[_-]?)?secret',
      ),
      'i',
    ),
    group: 1,
    triggers: ['secret'],
    ignoreCase: true,
    minLength: 50,
  },
  {
    kind: 'npm_token',
    regex: re(tok('npm_', '[A-Za-z0-9]{36}(?![A-Za-z0-9])')),
    group: 0,
    triggers: ['npm_'],
    minLength: 40,
  },
  {
    kind: 'pypi_token',
    regex: re(tok('pypi-AgE', '[A-Za-z0-9_-]{50,300}')),
    group: 0,
    triggers: ['pypi-AgE'],
    minLength: 58,
  },
  {
    kind: 'sendgrid_api_key',
    regex: re(tok(String.raw`SG\.`, String.raw`[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,64}`)),
    group: 0,
    triggers: ['SG.'],
    minLength: 49,
  },
  {
    kind: 'twilio_api_key',
    regex: re(tok('SK', '[0-9a-fA-F]{32}(?![A-Za-z0-9])')),
    group: 0,
    triggers: ['SK'],
    minLength: 34,
  },
  {
    kind: 'huggingface_token',
    regex: re(tok('hf_', '[A-Za-z0-9]{30,40}(?![A-Za-z0-9])')),
    group: 0,
    triggers: ['hf_'],
    minLength: 33,
    check: (s) => hasDigit(s) && hasUpper(s),
  },
  {
    kind: 'digitalocean_token',
    regex: re(tok('do[opr]_v1_', '[a-f0-9]{64}')),
    group: 0,
    triggers: ['_v1_'],
    minLength: 71,
  },
  {
    kind: 'shopify_token',
    regex: re(tok('shp(?:at|ca|pa|ss)_', '[a-fA-F0-9]{32}')),
    group: 0,
    triggers: ['shp'],
    minLength: 38,
  },
  {
    kind: 'databricks_token',
    regex: re(tok('dapi', '[a-f0-9]{32}(?:-[0-9])?(?![A-Za-z0-9])')),
    group: 0,
    triggers: ['dapi'],
    minLength: 36,
  },
  {
    kind: 'vault_token',
    regex: re(tok(String.raw`hv[sbr]\.`, '[A-Za-z0-9_-]{24,512}')),
    group: 0,
    triggers: ['hvs.', 'hvb.', 'hvr.'],
    minLength: 28,
  },
  {
    kind: 'groq_api_key',
    regex: re(tok('gsk_', '[A-Za-z0-9]{48,56}')),
    group: 0,
    triggers: ['gsk_'],
    minLength: 52,
  },
  {
    kind: 'xai_api_key',
    regex: re(tok('xai-', '[A-Za-z0-9]{70,90}')),
    group: 0,
    triggers: ['xai-'],
    minLength: 74,
  },
  {
    kind: 'perplexity_api_key',
    regex: re(tok('pplx-', '[A-Za-z0-9]{40,56}')),
    group: 0,
    triggers: ['pplx-'],
    minLength: 45,
  },
  {
    kind: 'replicate_token',
    regex: re(tok('r8_', '[A-Za-z0-9]{37}(?![A-Za-z0-9])')),
    group: 0,
    triggers: ['r8_'],
    minLength: 40,
  },
  {
    kind: 'linear_api_key',
    regex: re(tok('lin_api_', '[A-Za-z0-9]{40}')),
    group: 0,
    triggers: ['lin_api_'],
    minLength: 48,
  },
  {
    kind: 'notion_token',
    regex: re(tok('(?:secret|ntn)_', '[A-Za-z0-9]{40,50}(?![A-Za-z0-9])')),
    group: 0,
    triggers: ['secret_', 'ntn_'],
    minLength: 44,
    check: (s) => hasDigit(s),
  },
  {
    kind: 'doppler_token',
    regex: re(tok(String.raw`dp\.(?:pt|st|sa|ct|scim|audit)\.`, '[A-Za-z0-9]{40,44}')),
    group: 0,
    triggers: ['dp.'],
    minLength: 46,
  },
  {
    kind: 'postman_api_key',
    regex: re(tok('PMAK-', '[a-f0-9]{24}-[a-f0-9]{34}')),
    group: 0,
    triggers: ['PMAK-'],
    minLength: 64,
  },
  {
    kind: 'atlassian_api_token',
    regex: re(tok('ATATT3', '[A-Za-z0-9_=-]{150,300}')),
    group: 0,
    triggers: ['ATATT3'],
    minLength: 156,
  },
  {
    kind: 'sentry_token',
    regex: re(tok('sntry[su]_', '(?:eyJ[A-Za-z0-9+/=_-]{50,600}|[a-f0-9]{64})')),
    group: 0,
    triggers: ['sntry'],
    minLength: 61,
  },
  {
    kind: 'telegram_bot_token',
    regex: re(`(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])`),
    group: 0,
    triggers: [':AA'],
    minLength: 44,
  },
  {
    kind: 'discord_bot_token',
    // Starts at the first dot (a literal V8 can search for); the id segment is read behind it.
    regex: re(
      String.raw`\.(?<=${after(BASE64_WORD)}([MNO][A-Za-z0-9_-]{23,27})\.)[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}(?![A-Za-z0-9_-])`,
    ),
    group: 0,
    span: (m) => [m.indices![1]![0], m.index + m[0].length],
    triggers: ['.'],
    minLength: 59,
    check: (_s, m) => discordIdSegment(m[1]!),
  },
  {
    kind: 'azure_storage_key',
    regex: re(tok('(?:AccountKey|SharedAccessKey)=', '([A-Za-z0-9+/]{20,200}={0,2})'), 'i'),
    group: 1,
    triggers: ['accountkey=', 'sharedaccesskey='],
    ignoreCase: true,
    minLength: 31,
  },
  {
    kind: 'azure_sas_signature',
    regex: re(String.raw`[?&;]sig=([A-Za-z0-9%+/=]{16,256})`),
    group: 1,
    triggers: ['sig='],
    minLength: 21,
  },
  {
    kind: 'connection_password',
    // scheme://user:password@host — only the password is replaced; user and host stay readable.
    // The password class admits `@` so `p@ss@host` is cut at the last `@` of the authority.
    regex: re(String.raw`://(?<=[A-Za-z][A-Za-z0-9+.-]{1,30}://)[^\s:@/?#"<>]{0,256}:([^\s/?#"<>]{1,512})@`),
    group: 1,
    triggers: ['://'],
    minLength: 9,
  },
  {
    kind: 'basic_auth',
    regex: re(tok('(?:Basic|basic|BASIC)', String.raw`[ \t]{1,5}([A-Za-z0-9+/]{8,4096}={0,2})`)),
    group: 1,
    triggers: ['basic'],
    ignoreCase: true,
    minLength: 14,
    check: decodesToUserPass,
  },
  {
    kind: 'bearer_token',
    regex: re(tok('(?:Bearer|bearer|BEARER)', String.raw`[ \t]{1,5}([A-Za-z0-9._~+/-]{8,4096}={0,2})`)),
    group: 1,
    triggers: ['bearer'],
    ignoreCase: true,
    minLength: 15,
    check: looksRandom,
  },
  {
    kind: 'cookie',
    // A Cookie / Set-Cookie header: every `name=value` pair (and attribute) of it.
    regex: re(
      tok('cookie', '', 'A-Za-z0-9_-', '(?:set-)?cookie') +
        String.raw`[ \t]{0,3}:[ \t]{0,3}([^\s=;,"()]{1,256}=[^\s;,"()]{0,4096}(?:;[ \t]{0,2}[^\s=;,"()]{1,256}(?:=[^\s;,"()]{0,4096})?){0,64})`,
      'i',
    ),
    group: 1,
    triggers: ['cookie'],
    ignoreCase: true,
    minLength: 8,
  },
  {
    kind: 'secret',
    // `my aws secret is …`, `the staging token for the import: …`, `signing secret …`: a word that
    // names a credential, up to three words, then a token that looks machine-made (shapes.ts).
    regex: re(
      String.raw`(secret|token|key|passw(?:or)?d|pwd|passphrase|credentials?)s?(?![A-Za-z])(?:[ \t:=-]{1,4}[A-Za-z][A-Za-z0-9_-]{0,24}){0,3}?[ \t:=]{1,7}["'\x60]?([^\s"'\x60<>()[\]{},;|]{16,256})(?=[\s"'\x60<>()[\]{},;|]|$)`,
      'i',
    ),
    group: 2,
    triggers: ['secret', 'token', 'key', 'passw', 'pwd', 'passphrase', 'credential'],
    ignoreCase: true,
    minLength: 20,
    check: proseSecretCheck,
    kindOf: (m) => PROSE_KINDS[m[1]!.toLowerCase().replace(/s$/, '')] ?? 'secret',
  },
  {
    kind: 'assignment',
    // `password=…`, `"api_key": "…"`, `DB_PASSWORD: …`, `?access_token=…`: the key decides (the same
    // rules as object keys) and the kind reported is the key's kind.
    regex: re(
      String.raw`${after('A-Za-z0-9_')}([A-Za-z][A-Za-z0-9_.-]{0,63})["']?[ \t]{0,3}(?:=>|:=|[:=])[ \t]{0,3}(?:(?:Bearer|bearer|Basic|basic|Token|token)[ \t]{1,3})?(\$\{[A-Za-z_][A-Za-z0-9_]{0,63}\}|"(?:[^"\\\r\n]|\\.){1,512}"|'(?:[^'\\\r\n]|\\.){1,512}'|[^\s"'\x60,;&<>(){}[\]]{1,512})`,
    ),
    group: 2,
    triggers: KEY_WORD_TRIGGERS,
    ignoreCase: true,
    minLength: 5,
    check: kvValueCheck,
    kindOf: (m) => credentialKeyKind(m[1]!) ?? 'secret',
  },
];

/** Strings shorter than this cannot hold any recognised secret, so they are not scanned. */
export const MIN_SCAN_LENGTH = Math.min(...SECRET_PATTERNS.map((p) => p.minLength));
