import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toEvent, type FullRow } from '../src/events.queries.js';

/** A row as FULL_COLUMNS selects it (JSONEachRow: UInt64 as text). */
const row = (raw: string): FullRow => ({
  event_id: '0193a6f2-7c4e-7b1a-9c3d-2e4f5a6b7c8d',
  ts_s: 1_763_720_130,
  ts_ms: 42,
  kind: 'tool_call',
  outcome: 'ok',
  client_id: 'c1',
  client_user: '',
  client_ip: '',
  session_id: 's1',
  source_id: 'gw-1',
  server_name: 'fs',
  tool_name: 'read_file',
  method: 'tools/call',
  duration_ms: 5,
  error_message: '',
  label_keys: ['env'],
  label_values: ['prod'],
  schema_version: 1,
  source_type: 'gateway',
  source_version: '1.0.0',
  client_name: '',
  client_agent: '',
  client_user_agent: '',
  server_version: '',
  server_transport: 'stdio',
  tool_definition_hash: '',
  http_status: null,
  rpc_error_code: null,
  tool_is_error: null,
  trace_id: '',
  auth_method: '',
  auth_result: '',
  auth_reason: '',
  error_code: '',
  request_bytes: '10',
  response_bytes: '20',
  args: '{"path":"/etc/hosts"}',
  response_digest: '',
  tool_annotations: '{"readOnlyHint":true}',
  raw,
  ingested_s: 1_763_720_131,
});

const event = {
  schema_version: 1,
  event_id: '0193a6f2-7c4e-7b1a-9c3d-2e4f5a6b7c8d',
  ts: '2025-11-21T10:15:30.042Z',
  kind: 'tool_call',
  source: { type: 'gateway', id: 'gw-1', version: '1.0.0' },
  client: { id: 'c1', session_id: 's1' },
  server: { name: 'fs', transport: 'stdio' },
  method: 'tools/call',
  tool: { name: 'read_file', annotations: { readOnlyHint: true, vendorHint: 'x' } },
  outcome: 'ok',
  duration_ms: 5,
  request_bytes: 10,
  response_bytes: 20,
  args: { path: '/etc/hosts' },
  labels: { env: 'prod' },
  vendor: { region: 'eu' },
};

test('an event read back gives the whole stored event as raw: typed columns plus the remainder', () => {
  const remainder = JSON.stringify({
    remainder: { tool: { annotations: event.tool.annotations }, vendor: event.vendor },
  });
  assert.deepEqual(toEvent(row(remainder)).raw, event);
});

test('an older row (raw = the whole event) reads the same', () => {
  assert.deepEqual(toEvent(row(JSON.stringify(event))).raw, event);
});
