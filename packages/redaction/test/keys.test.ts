import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRedactor, credentialKeyKind } from '../src/index.js';

const redactor = createRedactor({ fingerprintKey: 'test-redaction-key-0123456789' });

describe('credential key names', () => {
  const credentials: Array<[string, string]> = [
    ['password', 'password'],
    ['Password', 'password'],
    ['passwd', 'password'],
    ['pwd', 'password'],
    ['dbPassword', 'password'],
    ['DB_PASSWORD', 'password'],
    ['PGPASSWORD', 'password'],
    ['password_confirmation', 'password'],
    ['passwordHash', 'password'],
    ['secret', 'secret'],
    ['client_secret', 'secret'],
    ['clientSecret', 'secret'],
    ['webhookSecret', 'secret'],
    ['token', 'token'],
    ['access_token', 'token'],
    ['accessToken', 'token'],
    ['refresh_token', 'token'],
    ['id_token', 'token'],
    ['GITHUB_TOKEN', 'token'],
    ['x-auth-token', 'token'],
    ['X-Amz-Security-Token', 'token'],
    ['csrftoken', 'token'],
    ['auth', 'authorization'],
    ['Authorization', 'authorization'],
    ['proxy-authorization', 'authorization'],
    ['basicAuth', 'authorization'],
    ['api_key', 'api_key'],
    ['apiKey', 'api_key'],
    ['APIKey', 'api_key'],
    ['apikey', 'api_key'],
    ['x-api-key', 'api_key'],
    ['X-Api-Key', 'api_key'],
    ['openaiApiKey', 'api_key'],
    ['Ocp-Apim-Subscription-Key', 'api_key'],
    ['aws_secret_access_key', 'secret'],
    ['private_key', 'private_key'],
    ['privateKey', 'private_key'],
    ['signing_key', 'secret'],
    ['cookie', 'cookie'],
    ['Set-Cookie', 'cookie'],
    ['cookies', 'cookie'],
    ['session', 'session'],
    ['sessionId', 'session'],
    ['JSESSIONID', 'session'],
    ['credentials', 'credentials'],
    ['awsCredentials', 'credentials'],
    ['connection_string', 'connection_string'],
    ['connectionString', 'connection_string'],
    ['dsn', 'connection_string'],
    ['SENTRY_DSN', 'connection_string'],
    ['signature', 'signature'],
    ['X-Hub-Signature-256', 'signature'],
    ['otp', 'otp'],
  ];
  for (const [key, kind] of credentials) {
    it(`${key} is a ${kind}`, () => assert.equal(credentialKeyKind(key), kind));
  }

  const ordinary = [
    'token_count',
    'tokenCount',
    'max_tokens',
    'maxTokens',
    'tokens',
    'input_tokens',
    'completion_tokens',
    'total_tokens',
    'tokenizer',
    'token_type',
    'next_page_token',
    'nextPageToken',
    'eos_token',
    'password_policy',
    'passwordResetRequired',
    'passwordless',
    'secret_name',
    'secretArn',
    'auth_method',
    'authMethod',
    'author',
    'authenticated',
    'oauth',
    'public_key',
    'primary_key',
    'cache_key',
    'key',
    'keys',
    'api_key_id',
    'session_timeout',
    'cookie_consent',
    'signature_algorithm',
    'bypass',
    'compass',
    'description',
    'definition_hash',
  ];
  for (const key of ordinary) {
    it(`${key} is not a credential`, () => assert.equal(credentialKeyKind(key), undefined));
  }
});

describe('redaction by key', () => {
  it('replaces the whole value, including objects and arrays', () => {
    const r = redactor.redactValue({
      auth: { type: 'bearer', token: 'abc' },
      credentials: ['user', 'pass'],
      nested: { deeper: { clientSecret: 'shh-its-a-secret' } },
    });
    const v = r.value as { auth: string; credentials: string; nested: { deeper: { clientSecret: string } } };
    assert.match(v.auth, /^\[REDACTED:authorization:[0-9a-f]{8}\]$/);
    assert.match(v.credentials, /^\[REDACTED:credentials:[0-9a-f]{8}\]$/);
    assert.match(v.nested.deeper.clientSecret, /^\[REDACTED:secret:[0-9a-f]{8}\]$/);
    assert.equal(r.redactions, 3);
    assert.deepEqual(r.kinds, ['authorization', 'credentials', 'secret']);
  });

  it('redacts a numeric password but not token counts', () => {
    const r = redactor.redactValue({ pin_password: 123456, token_count: 1834, max_tokens: 4096, tokens: 17 });
    const v = r.value as Record<string, unknown>;
    assert.match(String(v.pin_password), /^\[REDACTED:password:/);
    assert.equal(v.token_count, 1834);
    assert.equal(v.max_tokens, 4096);
    assert.equal(v.tokens, 17);
    assert.equal(r.redactions, 1);
  });

  it('keeps values that carry no secret: null, booleans, empty strings and containers', () => {
    const input = { password: null, token: false, secret: '', credentials: {}, cookies: [] };
    assert.deepEqual(redactor.redactValue(input), { value: input, redactions: 0, kinds: [] });
  });

  it('redacts a secret used as a key name', () => {
    const token = `ghp_${'aB3'.repeat(12)}`;
    const r = redactor.redactValue({ seen: { [token]: true } });
    assert.ok(!JSON.stringify(r.value).includes(token));
    assert.equal(r.redactions, 1);
  });

  it('keeps a __proto__ key as data without touching the prototype', () => {
    const input = JSON.parse('{"__proto__":{"password":"x1"},"a":1}') as Record<string, unknown>;
    const out = redactor.redactValue(input).value as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.ok(Object.hasOwn(out, '__proto__'));
    assert.match(JSON.stringify(out), /"__proto__":\{"password":"\[REDACTED:password:/);
  });

  it('redacts labels by key and by value', () => {
    const npm = `npm_${'Ab1'.repeat(12)}`;
    const r = redactor.redactLabels({ env: 'prod', api_key: 'k-123', note: `uses ${npm}` });
    assert.equal(r.value.env, 'prod');
    assert.match(r.value.api_key!, /^\[REDACTED:api_key:[0-9a-f]{8}\]$/);
    assert.match(r.value.note!, /^uses \[REDACTED:npm_token:[0-9a-f]{8}\]$/);
    assert.equal(r.redactions, 2);
  });
});
