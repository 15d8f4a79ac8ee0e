import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { toolDefinitionHash } from '@mcp-audit/sdk';

/**
 * The rug-pull guard and shadowing detector. Per (upstream, tool) it remembers the approved
 * definition hash (trust on first use) and the hash last listed. A listing with a different hash
 * is a change; with the guard on, calls to that tool are refused until an operator approves the
 * new hash (or the upstream goes back to the approved one). The same tool name listed by two
 * upstreams is shadowing: a client (or model) cannot tell which one it gets.
 */
export interface ToolEntry {
  upstream: string;
  tool: string;
  approved_hash: string;
  current_hash: string;
  first_seen: string;
  changed_at?: string | undefined;
  approved_at?: string | undefined;
  approved_by?: string | undefined;
}

export interface ToolChange {
  upstream: string;
  tool: string;
  hash: string;
  previousHash: string;
  approvedHash: string;
  /** Calls are refused from now on (guard on and the hash is not the approved one). */
  blocked: boolean;
}

export interface Shadowing {
  tool: string;
  upstreams: string[];
}

export interface ListingReport {
  hashes: Map<string, string>;
  firstSeen: string[];
  changes: ToolChange[];
  /** Newly detected shadowing (each name/upstream set is reported once per process). */
  shadowing: Shadowing[];
}

export type CallCheck =
  { allowed: true; hash?: string | undefined } | { allowed: false; hash: string; approvedHash: string };

export type Approval =
  | { ok: true; entry: ToolEntry; previousApprovedHash: string }
  | { ok: false; reason: 'not_found' }
  /** The definition changed since the operator looked: `currentHash` is what would be approved. */
  | { ok: false; reason: 'hash_mismatch'; currentHash: string };

export interface ToolGuard {
  readonly enabled: boolean;
  /** `complete`: the listing is the whole list (no pagination), so names absent from it are gone. */
  observe(upstream: string, tools: ReadonlyArray<unknown>, complete?: boolean): ListingReport;
  check(upstream: string, tool: string): CallCheck;
  hashOf(upstream: string, tool: string): string | undefined;
  /**
   * Approve the current definition. With `expectedHash` (the `current_hash` the operator reviewed)
   * only if it is still the current one; without, whatever is current now.
   */
  approve(upstream: string, tool: string, by: string, expectedHash?: string): Approval;
  entries(): ToolEntry[];
}

export interface GuardStore {
  load(): ToolEntry[];
  save(entries: ToolEntry[]): void;
}

const entrySchema = z.object({
  upstream: z.string(),
  tool: z.string(),
  approved_hash: z.string().regex(/^[0-9a-f]{64}$/),
  current_hash: z.string().regex(/^[0-9a-f]{64}$/),
  first_seen: z.string(),
  changed_at: z.string().optional(),
  approved_at: z.string().optional(),
  approved_by: z.string().optional(),
});
const stateSchema = z.object({ version: z.literal(1), tools: z.array(entrySchema) });

/** A JSON file, replaced atomically (write + rename) on each change; changes are rare. */
export function fileGuardStore(file: string): GuardStore {
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const parsed = stateSchema.safeParse(JSON.parse(text));
      if (!parsed.success)
        throw new Error(
          `invalid guard state file ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      return parsed.data.tools;
    },
    save(entries) {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ version: 1, tools: entries }, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, file);
    },
  };
}

export function memoryGuardStore(initial: ToolEntry[] = []): GuardStore & { saved: number } {
  let state = initial.map((e) => ({ ...e }));
  const store = {
    saved: 0,
    load: () => state.map((e) => ({ ...e })),
    save(entries: ToolEntry[]) {
      state = entries.map((e) => ({ ...e }));
      store.saved += 1;
    },
  };
  return store;
}

const toolShape = z.object({ name: z.string().min(1) }).loose();
const key = (upstream: string, tool: string) => `${upstream}\u0000${tool}`;

export function createToolGuard(opts: {
  enabled: boolean;
  store: GuardStore;
  now?: () => number;
}): ToolGuard {
  const now = opts.now ?? Date.now;
  const entries = new Map<string, ToolEntry>();
  for (const e of opts.store.load()) entries.set(key(e.upstream, e.tool), e);
  // tool name -> upstreams currently listing it
  const listedBy = new Map<string, Set<string>>();
  const reportedShadowing = new Set<string>();
  const persist = () => opts.store.save([...entries.values()]);

  return {
    enabled: opts.enabled,
    observe(upstream, tools, complete = true) {
      const iso = new Date(now()).toISOString();
      const report: ListingReport = { hashes: new Map(), firstSeen: [], changes: [], shadowing: [] };
      let dirty = false;
      const names = new Set<string>();
      for (const raw of tools) {
        const t = toolShape.safeParse(raw);
        if (!t.success) continue;
        const tool = t.data;
        const hash = toolDefinitionHash(tool);
        names.add(tool.name);
        report.hashes.set(tool.name, hash);
        const k = key(upstream, tool.name);
        const e = entries.get(k);
        if (!e) {
          entries.set(k, {
            upstream,
            tool: tool.name,
            approved_hash: hash,
            current_hash: hash,
            first_seen: iso,
          });
          report.firstSeen.push(tool.name);
          dirty = true;
        } else if (e.current_hash !== hash) {
          report.changes.push({
            upstream,
            tool: tool.name,
            hash,
            previousHash: e.current_hash,
            approvedHash: e.approved_hash,
            blocked: opts.enabled && hash !== e.approved_hash,
          });
          e.current_hash = hash;
          e.changed_at = iso;
          dirty = true;
        }
      }
      // Shadowing: names this upstream lists that another upstream lists too.
      if (complete) for (const [name, set] of listedBy) if (!names.has(name)) set.delete(upstream);
      for (const name of names) {
        let set = listedBy.get(name);
        if (!set) listedBy.set(name, (set = new Set()));
        set.add(upstream);
        if (set.size > 1) {
          const ups = [...set].sort();
          const id = `${name}\u0000${ups.join('\u0000')}`;
          if (!reportedShadowing.has(id)) {
            reportedShadowing.add(id);
            report.shadowing.push({ tool: name, upstreams: ups });
          }
        }
      }
      if (dirty) persist();
      return report;
    },
    check(upstream, tool) {
      const e = entries.get(key(upstream, tool));
      if (!e) return { allowed: true };
      if (opts.enabled && e.current_hash !== e.approved_hash)
        return { allowed: false, hash: e.current_hash, approvedHash: e.approved_hash };
      return { allowed: true, hash: e.current_hash };
    },
    hashOf: (upstream, tool) => entries.get(key(upstream, tool))?.current_hash,
    approve(upstream, tool, by, expectedHash) {
      const e = entries.get(key(upstream, tool));
      if (!e) return { ok: false, reason: 'not_found' };
      if (expectedHash !== undefined && expectedHash !== e.current_hash)
        return { ok: false, reason: 'hash_mismatch', currentHash: e.current_hash };
      const previousApprovedHash = e.approved_hash;
      e.approved_hash = e.current_hash;
      e.approved_at = new Date(now()).toISOString();
      e.approved_by = by;
      persist();
      return { ok: true, entry: { ...e }, previousApprovedHash };
    },
    entries: () => [...entries.values()].map((e) => ({ ...e })),
  };
}
