import { createPrivateKey } from 'node:crypto';
import { canonicalRow, leafHash, type CanonicalValues } from '../src/ledger/canonical.js';
import { merkleRoot } from '../src/ledger/merkle.js';
import {
  canonicalJson,
  GENESIS_PREV,
  keyIdOf,
  signRecord,
  signingKeyFromPem,
  type LedgerRecord,
} from '../src/ledger/record.js';

/** The worked example of LEDGER.md, computed. */
export const EXAMPLE_ROWS: CanonicalValues[] = [
  {
    event_id: '01890a5d-ac96-774b-bcce-b302099a8057',
    ts: 1767603600,
    ts_ms: 123,
    schema_version: 1,
    kind: 'tool_call',
    source_type: 'gateway',
    source_id: 'gw-1',
    source_version: '1.4.0',
    client_id: 'acme-bot',
    client_name: 'Acme "Bot"',
    client_user: 'alice@example.com',
    client_agent: '',
    client_ip: '10.0.0.7',
    client_user_agent: 'acme/2.0',
    session_id: 's-1',
    server_name: 'files',
    server_version: '',
    server_transport: 'http',
    method: 'tools/call',
    tool_name: 'read_file',
    tool_definition_hash: '',
    outcome: 'error',
    http_status: 200,
    rpc_error_code: null,
    tool_is_error: 1,
    trace_id: '',
    auth_method: 'api_key',
    auth_result: 'success',
    auth_reason: '',
    error_code: 'ENOENT',
    error_message: 'no such file:\n/tmp/a\\b',
    duration_ms: 12,
    request_bytes: '310',
    response_bytes: '18446744073709551615',
    args: '{"path":"/tmp/a"}',
    response_digest: '',
    label_keys: ['env'],
    label_values: ['prod'],
    raw: '{}',
  },
  {
    event_id: '01890a5d-ac96-774b-bcce-b302099a8058',
    ts: 1767603601,
    ts_ms: 0,
    schema_version: 1,
    kind: 'auth',
    source_type: 'sdk',
    source_id: 'sdk-9',
    source_version: '0.1.0',
    client_id: 'acme-bot',
    client_name: '',
    client_user: '',
    client_agent: '',
    client_ip: '',
    client_user_agent: '',
    session_id: '',
    server_name: 'files',
    server_version: '',
    server_transport: 'stdio',
    method: 'initialize',
    tool_name: '',
    tool_definition_hash: '',
    outcome: 'auth_failed',
    http_status: null,
    rpc_error_code: -32001,
    tool_is_error: null,
    trace_id: '',
    auth_method: 'oauth',
    auth_result: 'failure',
    auth_reason: 'expired token',
    error_code: '',
    error_message: '',
    duration_ms: 0,
    request_bytes: '0',
    response_bytes: '0',
    args: '{}',
    response_digest: '',
    label_keys: [],
    label_values: [],
    raw: '{"x":"\u00e9\u2603"}',
  },
];

// A fixed Ed25519 seed (32 bytes 0x01..0x20) as PKCS#8, so the signature is reproducible (Ed25519 is deterministic).
const seed = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));
export const EXAMPLE_KEY_PEM = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
  format: 'der',
  type: 'pkcs8',
})
  .export({ type: 'pkcs8', format: 'pem' })
  .toString();

export function example() {
  const key = signingKeyFromPem(EXAMPLE_KEY_PEM);
  const rows = EXAMPLE_ROWS.map(canonicalRow);
  const leaves = rows.map((r) => leafHash(r));
  const root = merkleRoot(leaves).toString('hex');
  const record: LedgerRecord = {
    v: 1,
    table: 'events',
    hour: '2026-01-05T09:00:00Z',
    kind: 'seal',
    seq: 0,
    rows: 2,
    root,
    cutoff: '2026-01-05T10:05:00Z',
    prev: GENESIS_PREV,
    key_id: keyIdOf(key.publicKey),
  };
  const signed = signRecord(key, record);
  return {
    rows,
    leaves: leaves.map((l) => l.toString('hex')),
    root,
    canonical: canonicalJson(record),
    sig: signed.sig,
    keyId: key.keyId,
  };
}
