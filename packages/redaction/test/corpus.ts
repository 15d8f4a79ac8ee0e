/**
 * Fake secrets with the real shapes and lengths of each format, drawn from a seeded generator so
 * failures reproduce. None of these is a live credential.
 */

export interface SecretSample {
  name: string;
  /** The part that must never reach storage. */
  secret: string;
  /** How it appears in the wild (with its label, scheme or surrounding URL when it needs one). */
  text: string;
}

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const ALNUM = UPPER + LOWER + DIGITS;
const HEX = '0123456789abcdef';
const B64 = ALNUM + '+/';
const B64URL = ALNUM + '-_';

/** mulberry32: tiny, seeded, good enough to make test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  pick(alphabet: string, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
  /** Random characters from `alphabet`, guaranteed to mix upper, lower and digits (real keys do). */
  mixed(alphabet: string, n: number): string {
    for (;;) {
      const s = this.pick(alphabet, n);
      if (/[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9]/.test(s)) return s;
    }
  }
  alnum(n: number): string {
    return this.mixed(ALNUM, n);
  }
  hex(n: number): string {
    return this.pick(HEX, n);
  }
  digits(n: number): string {
    return this.pick('123456789', 1) + this.pick(DIGITS, n - 1);
  }
  b64url(n: number): string {
    return this.mixed(B64URL, n);
  }
  b64(n: number): string {
    return this.mixed(B64, n);
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

function b64urlJson(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

function pem(g: Gen, label: string, bodyChars: number): string {
  const body = g.b64(bodyChars);
  const lines = body.match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${lines}\n-----END ${label}-----`;
}

function sample(name: string, secret: string, text = secret): SecretSample {
  return { name, secret, text };
}

/** One sample of every format; `seed` varies the random parts (two seeds → two different secrets). */
export function secretCorpus(seed: number): SecretSample[] {
  const g = new Gen(seed);
  const pw = () => g.alnum(10) + '!' + g.alnum(6);
  const jwt = [
    b64urlJson({ alg: 'HS256', typ: 'JWT' }),
    b64urlJson({ sub: `user_${g.digits(6)}`, iat: 1718000000, exp: 1718003600, scope: 'tools:call' }),
    g.b64url(43),
  ].join('.');
  const basicCreds = Buffer.from(`svc-reporting:${pw()}`).toString('base64');
  const pgPass = pw();
  const mongoPass = pw();
  const redisPass = g.alnum(24);
  const amqpPass = g.alnum(20);
  const mysqlPass = g.alnum(18);
  const chPass = g.alnum(22);
  const awsSecret = g.b64(40);
  const azureKey = g.b64(86) + '==';
  const sasSig = encodeURIComponent(g.b64(43) + '=');
  const genericPw = pw();
  const clientSecret = g.b64url(40);
  const envPw = g.alnum(20);
  const adoPw = g.alnum(16);
  const cookieSession = g.b64url(48);
  const slackPath = `T${g.pick(UPPER + DIGITS, 10)}/B${g.pick(UPPER + DIGITS, 10)}/${g.alnum(24)}`;
  const discordWebhook = g.b64url(68);
  const discordId = g.digits(18);
  const discordBot = `${Buffer.from(discordId).toString('base64').replace(/=+$/, '')}.${g.b64url(6)}.${g.b64url(38)}`;
  const bearer = g.b64url(40);
  return [
    sample('aws_access_key_id', `AKIA${g.pick(UPPER + '234567', 16)}`),
    sample('aws_sts_key_id', `ASIA${g.pick(UPPER + '234567', 16)}`),
    sample('aws_secret_access_key', awsSecret, `aws_secret_access_key = ${awsSecret}`),
    sample('github_pat_classic', `ghp_${g.alnum(36)}`),
    sample('github_oauth', `gho_${g.alnum(36)}`),
    sample('github_user_to_server', `ghu_${g.alnum(36)}`),
    sample('github_server_to_server', `ghs_${g.alnum(36)}`),
    sample('github_refresh', `ghr_${g.alnum(36)}`),
    sample('github_pat_fine_grained', `github_pat_${g.alnum(22)}_${g.alnum(59)}`),
    sample('gitlab_pat', `glpat-${g.b64url(20)}`),
    sample('slack_bot', `xoxb-${g.digits(12)}-${g.digits(13)}-${g.alnum(24)}`),
    sample('slack_user', `xoxp-${g.digits(12)}-${g.digits(12)}-${g.digits(13)}-${g.hex(32)}`),
    sample('slack_app', `xapp-1-A${g.pick(UPPER + DIGITS, 10)}-${g.digits(13)}-${g.hex(64)}`),
    sample('slack_webhook', slackPath, `https://hooks.slack.com/services/${slackPath}`),
    sample('stripe_secret_live', `sk_live_${g.alnum(99)}`),
    sample('stripe_restricted_live', `rk_live_${g.alnum(99)}`),
    sample('stripe_secret_test', `sk_test_${g.alnum(99)}`),
    sample('stripe_webhook', `whsec_${g.alnum(32)}`),
    sample('openai_legacy', `sk-${g.alnum(20)}T3BlbkFJ${g.alnum(20)}`),
    sample('openai_project', `sk-proj-${g.b64url(156)}`),
    sample('openai_service_account', `sk-svcacct-${g.b64url(120)}`),
    sample('anthropic', `sk-ant-api03-${g.b64url(93)}AA`),
    sample('google_api_key', `AIza${g.b64url(35)}`),
    sample('google_oauth_access', `ya29.${g.b64url(150)}`),
    sample('google_oauth_client_secret', `GOCSPX-${g.b64url(28)}`),
    sample('jwt', jwt),
    sample('bearer_opaque', bearer, `Bearer ${bearer}`),
    sample('basic_auth', basicCreds, `Basic ${basicCreds}`),
    sample('pem_rsa', pem(g, 'RSA PRIVATE KEY', 1600)),
    sample('pem_pkcs8', pem(g, 'PRIVATE KEY', 1600)),
    sample('pem_openssh', pem(g, 'OPENSSH PRIVATE KEY', 400)),
    sample('pem_ec', pem(g, 'EC PRIVATE KEY', 160)),
    sample('pgp_private', pem(g, 'PGP PRIVATE KEY BLOCK', 800)),
    sample('postgres_url', pgPass, `postgres://app_user:${pgPass}@db.internal:5432/orders?sslmode=require`),
    sample('mongodb_srv', mongoPass, `mongodb+srv://reporting:${mongoPass}@cluster0.ab1cd.mongodb.net/prod`),
    sample('redis_url', redisPass, `redis://:${redisPass}@cache.internal:6379/0`),
    sample('amqp_url', amqpPass, `amqp://worker:${amqpPass}@mq.internal:5672/vhost`),
    sample('mysql_url', mysqlPass, `mysql://root:${mysqlPass}@10.0.0.12:3306/app`),
    sample('clickhouse_url', chPass, `clickhouse://analyst:${chPass}@ch.internal:8123/mcp_audit`),
    sample('npm', `npm_${g.alnum(36)}`),
    sample('pypi', `pypi-AgEIcHlwaS5vcmc${g.b64url(70)}`),
    sample('sendgrid', `SG.${g.b64url(22)}.${g.b64url(43)}`),
    sample('twilio_api_key', `SK${g.hex(32)}`),
    sample(
      'azure_storage',
      azureKey,
      `DefaultEndpointsProtocol=https;AccountName=auditlogs;AccountKey=${azureKey};EndpointSuffix=core.windows.net`,
    ),
    sample(
      'azure_sas',
      sasSig,
      `https://auditlogs.blob.core.windows.net/exports/day.json?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&sig=${sasSig}`,
    ),
    sample('huggingface', `hf_${g.alnum(34)}`),
    sample('vault', `hvs.${g.b64url(90)}`),
    sample('digitalocean', `dop_v1_${g.hex(64)}`),
    sample('shopify', `shpat_${g.hex(32)}`),
    sample('databricks', `dapi${g.hex(32)}`),
    sample('groq', `gsk_${g.alnum(52)}`),
    sample('xai', `xai-${g.alnum(80)}`),
    sample('perplexity', `pplx-${g.alnum(48)}`),
    sample('replicate', `r8_${g.alnum(37)}`),
    sample('linear', `lin_api_${g.alnum(40)}`),
    sample('notion', `ntn_${g.alnum(46)}`),
    sample('doppler', `dp.pt.${g.alnum(43)}`),
    sample('postman', `PMAK-${g.hex(24)}-${g.hex(34)}`),
    sample('atlassian', `ATATT3xFfGF0${g.b64url(180)}=${g.hex(8).toUpperCase()}`),
    sample('sentry_user', `sntryu_${g.hex(64)}`),
    sample('telegram_bot', `${g.digits(10)}:AA${g.b64url(33)}`),
    sample('discord_bot', discordBot),
    sample(
      'discord_webhook',
      discordWebhook,
      `https://discord.com/api/webhooks/${g.digits(19)}/${discordWebhook}`,
    ),
    sample('age', `AGE-SECRET-KEY-1${g.pick(UPPER + DIGITS, 58)}`),
    sample('password_assignment', genericPw, `password=${genericPw}`),
    sample('json_client_secret', clientSecret, `{"client_id":"mcp-gw","client_secret":"${clientSecret}"}`),
    sample('env_db_password', envPw, `DB_PASSWORD=${envPw}`),
    sample('ado_connection_string', adoPw, `Server=sql01;Database=audit;User Id=sa;Password=${adoPw};`),
    sample('cookie_header', cookieSession, `Cookie: session=${cookieSession}; theme=dark`),
  ];
}

/** Ordinary strings that must come out byte-identical. */
export function ordinaryCorpus(): string[] {
  const g = new Gen(7);
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), g.bytes(3000)]);
  return [
    '3f2b8c1e-7a4d-4e8b-9c2a-1b5d6e7f8a9b',
    '01912d68-783e-7a55-8c2f-3c9d4b6a1e20',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'da39a3ee5e6b4b0d3255bfef95601890afd80709',
    'commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (HEAD -> main)',
    'a1b2c3d',
    '/home/user/project/src/index.ts',
    'C:\\Users\\alice\\AppData\\Local\\Temp\\report-2024.docx',
    'https://example.com/docs/getting-started?page=2&lang=en#install',
    'https://api.github.com/repos/modelcontextprotocol/servers/commits/9fceb02d0ae598e95dc970b74767f19372d61af8',
    'ssh://git@github.com/acme/mcp-audit.git',
    'http://localhost:8080/health',
    '2024-06-01T12:34:56.789Z',
    'Fri, 07 Jun 2024 10:15:00 GMT',
    'alice.smith+audit@example.co.uk',
    `data:image/png;base64,${png.toString('base64')}`,
    '1234567890',
    '3.141592653589793',
    'tokenizer',
    'The password reset flow sends an email with a one-time link.',
    'Rotate your API key from the dashboard if you think it leaked.',
    'The tokenizer splits text into tokens before counting max_tokens.',
    'Bearer token required',
    'Basic authentication is disabled for this server',
    'JSON Web Token validation failed: signature mismatch',
    'Error: connect ECONNREFUSED 127.0.0.1:5432',
    'max_tokens=4096, temperature=0.2',
    'token_count: 1834',
    'secret_name: prod/orders/db',
    'scikit-learn==1.5.0 and risk-assessment-report-final',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
    'SELECT count() FROM mcp_audit.events WHERE client_id = {client:String}',
    'npm install @modelcontextprotocol/sdk@1.12.0',
    'The session expired; please sign in again.',
    'key=value; path=/; HttpOnly',
    'urn:uuid:3f2b8c1e-7a4d-4e8b-9c2a-1b5d6e7f8a9b',
  ];
}
