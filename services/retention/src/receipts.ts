import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { canonicalJson, signBytes, verifyBytes, type PublicKeys, type SigningKey } from './ledger/record.js';

/** A deletion receipt (signed like ledger records: Ed25519 over its canonical JSON). */
export interface Receipt {
  v: 1;
  receipt_id: string;
  table: string;
  partition: string;
  rows: number;
  first_ts: string;
  last_ts: string;
  /** For events: the ledger records of the partition's hours (seq and SHA-256 of their canonical JSON). */
  records: Array<{ seq: number; hash: string }>;
  policy: { days: number };
  at: string;
  key_id: string;
}

export async function writeReceipt(
  deps: { ch: ClickHouse; dir: string; key: SigningKey },
  receipt: Receipt,
): Promise<string> {
  const text = canonicalJson(receipt);
  const sig = signBytes(deps.key, text);
  mkdirSync(deps.dir, { recursive: true });
  writeFileSync(
    join(deps.dir, `${receipt.at.replace(/[:]/g, '')}-${receipt.table}-${receipt.partition}.json`),
    `{"receipt":${text},"sig":"${sig}"}\n`,
    {
      flag: 'wx',
      mode: 0o444,
    },
  );
  await deps.ch.insert('retention_receipts', [
    {
      receipt_id: receipt.receipt_id,
      at: Math.floor(Date.parse(receipt.at) / 1000),
      table_name: receipt.table,
      partition: receipt.partition,
      rows: receipt.rows,
      first_ts: Math.floor(Date.parse(receipt.first_ts) / 1000),
      last_ts: Math.floor(Date.parse(receipt.last_ts) / 1000),
      receipt: text,
      key_id: receipt.key_id,
      sig,
    },
  ]);
  return sig;
}

/** Hours (ms) of events partitions removed with a validly signed receipt: verify reports them retired. */
export async function retiredHours(ch: ClickHouse, database: string, keys: PublicKeys): Promise<Set<number>> {
  const rows = await ch.query<{ receipt: string; key_id: string; sig: string }>(
    sql`SELECT receipt, key_id, sig FROM ${dbIdent(database)}.retention_receipts WHERE table_name = 'events'`,
  );
  const out = new Set<number>();
  for (const r of rows) {
    const pk = keys.get(r.key_id);
    if (!pk || !verifyBytes(pk, r.receipt, r.sig)) continue;
    const rec = JSON.parse(r.receipt) as Receipt;
    const day = Date.UTC(
      +rec.partition.slice(0, 4),
      +rec.partition.slice(4, 6) - 1,
      +rec.partition.slice(6, 8),
    );
    for (let h = 0; h < 24; h++) out.add(day + h * 3_600_000);
  }
  return out;
}
