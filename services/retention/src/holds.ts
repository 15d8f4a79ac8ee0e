import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';

/**
 * Legal holds: append-only rows in legal_holds, one per action. A hold is active while it has a
 * 'create' row and no 'release' row. The api mounts this surface (compliance scope); the CLI too.
 */
export const holdSpecSchema = z
  .object({
    case_id: z.string().min(1).max(200),
    reason: z.string().min(1).max(2_000),
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    clients: z.array(z.string().min(1).max(256)).max(1_000).default([]),
    actor: z.string().min(1).max(200),
  })
  .refine((h) => Date.parse(h.from) < Date.parse(h.to), { message: 'from must be before to' });
export type HoldSpec = z.input<typeof holdSpecSchema>;

export interface LegalHold {
  hold_id: string;
  case_id: string;
  reason: string;
  from: string;
  to: string;
  clients: string[];
  created_by: string;
  created_at: string;
  released_by?: string;
  released_at?: string;
  release_note?: string;
  active: boolean;
}

export interface LegalHolds {
  create(spec: HoldSpec): Promise<LegalHold>;
  release(holdId: string, actor: string, note: string): Promise<LegalHold>;
  list(opts?: { activeOnly?: boolean }): Promise<LegalHold[]>;
}

export class HoldError extends Error {
  constructor(
    readonly code: 'AUDIT_ERR_HOLD_NOT_FOUND' | 'AUDIT_ERR_HOLD_RELEASED',
    message: string,
  ) {
    super(message);
  }
}

interface Row {
  hold_id: string;
  action: string;
  case_id: string;
  reason: string;
  from_ms: string;
  to_ms: string;
  clients: string[];
  actor: string;
  note: string;
  at_ms: string;
}

/** `ch` must be allowed to insert into legal_holds (the retention admin, or the api's writer). */
export function createLegalHolds(deps: { ch: ClickHouse; database: string; now?: () => number }): LegalHolds {
  const now = deps.now ?? Date.now;
  const table = sql`${dbIdent(deps.database)}.legal_holds`;
  const iso = (ms: number) => new Date(ms).toISOString();
  const load = async (): Promise<LegalHold[]> => {
    const rows = await deps.ch.query<Row>(
      sql`SELECT hold_id, action, case_id, reason, from_ms, to_ms, clients, actor, note, at_ms FROM ${table} ORDER BY at_ms, action`,
    );
    const holds = new Map<string, LegalHold>();
    for (const r of rows) {
      if (r.action === 'create' && !holds.has(r.hold_id)) {
        holds.set(r.hold_id, {
          hold_id: r.hold_id,
          case_id: r.case_id,
          reason: r.reason,
          from: iso(Number(r.from_ms)),
          to: iso(Number(r.to_ms)),
          clients: r.clients,
          created_by: r.actor,
          created_at: iso(Number(r.at_ms)),
          active: true,
        });
      } else if (r.action === 'release') {
        const h = holds.get(r.hold_id);
        if (h && h.active)
          Object.assign(h, {
            active: false,
            released_by: r.actor,
            released_at: iso(Number(r.at_ms)),
            release_note: r.note,
          });
      }
    }
    return [...holds.values()];
  };
  const write = (
    row: Omit<Row, 'from_ms' | 'to_ms' | 'at_ms'> & { from_ms: number; to_ms: number; at_ms: number },
  ) => deps.ch.insert('legal_holds', [{ ...row, at: Math.floor(row.at_ms / 1000) }]);
  return {
    async create(spec) {
      const s = holdSpecSchema.parse(spec);
      const at = now();
      const hold_id = randomUUID();
      await write({
        hold_id,
        action: 'create',
        case_id: s.case_id,
        reason: s.reason,
        from_ms: Date.parse(s.from),
        to_ms: Date.parse(s.to),
        clients: s.clients,
        actor: s.actor,
        note: s.reason,
        at_ms: at,
      });
      return {
        hold_id,
        case_id: s.case_id,
        reason: s.reason,
        from: iso(Date.parse(s.from)),
        to: iso(Date.parse(s.to)),
        clients: s.clients,
        created_by: s.actor,
        created_at: iso(at),
        active: true,
      };
    },
    async release(holdId, actor, note) {
      const h = (await load()).find((x) => x.hold_id === holdId);
      if (!h) throw new HoldError('AUDIT_ERR_HOLD_NOT_FOUND', `no legal hold ${holdId}`);
      if (!h.active)
        throw new HoldError('AUDIT_ERR_HOLD_RELEASED', `legal hold ${holdId} is already released`);
      const at = Math.max(now(), Date.parse(h.created_at) + 1);
      await write({
        hold_id: holdId,
        action: 'release',
        case_id: h.case_id,
        reason: h.reason,
        from_ms: Date.parse(h.from),
        to_ms: Date.parse(h.to),
        clients: h.clients,
        actor,
        note,
        at_ms: at,
      });
      return { ...h, active: false, released_by: actor, released_at: iso(at), release_note: note };
    },
    async list(opts = {}) {
      const all = await load();
      return opts.activeOnly ? all.filter((h) => h.active) : all;
    },
  };
}

/** Whether [fromMs, toMs) overlaps an active hold (a hold naming clients still keeps whole partitions). */
export function overlappingHolds(holds: readonly LegalHold[], fromMs: number, toMs: number): LegalHold[] {
  return holds.filter((h) => h.active && Date.parse(h.from) < toMs && Date.parse(h.to) > fromMs);
}
