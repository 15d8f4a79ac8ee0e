import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { redactString, type Redactor } from '@mcp-audit/redaction';
import { canonicalJson, utf8ByteLength } from '@mcp-audit/schema';
import { toolDefinitionHash } from '@mcp-audit/sdk';
import { cutText } from './audit-events.js';

/**
 * The rug-pull guard and shadowing detector. Per (upstream, tool) it remembers the approved
 * definition hash (trust on first use) and the hash last listed. A listing with a different hash
 * is a change; with the guard on, calls to that tool are refused until an operator approves the
 * new hash (or the upstream goes back to the approved one). The same tool name listed by two
 * upstreams is shadowing: a client (or model) cannot tell which one it gets.
 *
 * So that an operator can see what they approve, the guard also keeps the definitions behind the
 * approved hash and behind a pending (changed, not yet approved) one.
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
  /** The definition behind `approved_hash`; absent in state files of older gateways until relisted. */
  approved_definition?: ToolDefinitionRecord | undefined;
  /** The definition behind `current_hash` while it is not the approved one. */
  pending_definition?: ToolDefinitionRecord | undefined;
}

/**
 * What `tool.definition_hash` covers (name, description, input schema; keys in canonical order),
 * kept for review. Secrets in it are replaced by redaction markers, and it is bounded to
 * MAX_DEFINITION_BYTES, so it can differ from what was hashed: `redactions` and `truncated` say so.
 */
export interface ToolDefinitionRecord {
  name: string;
  description?: unknown;
  inputSchema?: unknown;
  /** UTF-8 bytes of the canonical JSON of the definition as listed. */
  bytes: number;
  /** Over MAX_DEFINITION_BYTES: the description was cut (ends in `…[truncated]`) and/or parts `omitted`. */
  truncated?: true | undefined;
  omitted?: Array<'description' | 'inputSchema'> | undefined;
  /** Secrets replaced by markers. */
  redactions?: number | undefined;
}

/** Per recorded definition: a generous tool definition is a few KiB; a state file stays small. */
export const MAX_DEFINITION_BYTES = 64 * 1024;
const TRUNCATED = '…[truncated]';

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

const definitionSchema = z.object({
  name: z.string(),
  description: z.unknown().optional(),
  inputSchema: z.unknown().optional(),
  bytes: z.int().min(0),
  truncated: z.literal(true).optional(),
  omitted: z.array(z.enum(['description', 'inputSchema'])).optional(),
  redactions: z.int().min(0).optional(),
});
// Version 1 with optional definitions: files written before definitions were kept still load.
const entrySchema = z.object({
  upstream: z.string(),
  tool: z.string(),
  approved_hash: z.string().regex(/^[0-9a-f]{64}$/),
  current_hash: z.string().regex(/^[0-9a-f]{64}$/),
  first_seen: z.string(),
  changed_at: z.string().optional(),
  approved_at: z.string().optional(),
  approved_by: z.string().optional(),
  approved_definition: definitionSchema.optional(),
  pending_definition: definitionSchema.optional(),
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

type ListedTool = z.infer<typeof toolShape>;

/** Every string (keys too) through the redactor; `count` adds up what it replaced. */
function redactStrings(v: unknown, redactor: Pick<Redactor, 'redactString'>, count: { n: number }): unknown {
  if (typeof v === 'string') {
    const r = redactor.redactString(v);
    count.n += r.redactions;
    return r.value;
  }
  if (Array.isArray(v)) return v.map((x) => redactStrings(x, redactor, count));
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const rk = redactStrings(k, redactor, count) as string;
    Object.defineProperty(out, rk, {
      value: redactStrings(x, redactor, count),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** `s` cut to at most `bytes` UTF-8 bytes, on a character boundary. */
function cutUtf8(s: string, bytes: number): string {
  if (bytes <= 0) return '';
  return s.slice(0, new TextEncoder().encodeInto(s, new Uint8Array(bytes)).read);
}

/**
 * The reviewable record of a listed definition: the members toolDefinitionHash covers, in
 * canonical key order, JSON-only (canonicalJson throws where the hash would), text-redacted (key
 * rules would blank a schema property named `password`), and at most MAX_DEFINITION_BYTES: when
 * the whole does not fit, the input schema is kept if it takes at most half, and the description
 * is cut to what is left.
 */
export function definitionRecord(
  tool: ListedTool,
  redactor: Pick<Redactor, 'redactString'> = { redactString: (s) => redactString(s) },
): ToolDefinitionRecord {
  const canonical = canonicalJson({
    name: tool.name,
    description: tool.description,
    inputSchema: tool.inputSchema,
  });
  const bytes = utf8ByteLength(canonical);
  const parsed = JSON.parse(canonical) as { description?: unknown; inputSchema?: unknown };
  const size = (v: unknown) => (v === undefined ? 0 : utf8ByteLength(JSON.stringify(v)));
  const omitted: Array<'description' | 'inputSchema'> = [];
  let { description, inputSchema } = parsed;

  // What cannot be kept is dropped before redaction, so a hostile upstream's megabytes are not
  // scanned in band. A long description is pre-cut at twice the budget: a secret split there
  // cannot reach into the part that is kept, so none is kept half-redacted.
  if (typeof description === 'string' && description.length > 2 * MAX_DEFINITION_BYTES)
    description = cutText(description, 2 * MAX_DEFINITION_BYTES);
  else if (typeof description !== 'string' && size(description) > MAX_DEFINITION_BYTES) {
    description = undefined;
    omitted.push('description');
  }
  if (size(inputSchema) > MAX_DEFINITION_BYTES) {
    inputSchema = undefined;
    omitted.push('inputSchema');
  }
  const count = { n: 0 };
  description = redactStrings(description, redactor, count);
  inputSchema = redactStrings(inputSchema, redactor, count);

  const out: ToolDefinitionRecord = { name: tool.name, bytes };
  // The record's own fields at their largest, so the bound holds whatever is set below.
  const overhead = size({
    ...out,
    truncated: true,
    omitted: ['description', 'inputSchema'],
    redactions: 1e9,
  });
  if (overhead + size(description) + size(inputSchema) + 64 > MAX_DEFINITION_BYTES) {
    if (size(inputSchema) > MAX_DEFINITION_BYTES / 2) {
      inputSchema = undefined;
      omitted.push('inputSchema');
    }
    const room = MAX_DEFINITION_BYTES - overhead - size(inputSchema) - 64;
    if (description !== undefined && size(description) > room) {
      if (typeof description === 'string' && room > 1024) {
        // Bytes first, then whatever JSON escapes add (controls become \uXXXX).
        const budget = room - utf8ByteLength(TRUNCATED);
        let cut = cutUtf8(description, budget);
        while (size(cut) > budget) cut = cutText(cut, Math.floor(cut.length * 0.9));
        description = `${cut}${TRUNCATED}`;
        out.truncated = true;
      } else {
        description = undefined;
        omitted.push('description');
      }
    }
  }
  if (description !== undefined) out.description = description;
  if (inputSchema !== undefined) out.inputSchema = inputSchema;
  if (omitted.length > 0) {
    out.truncated = true;
    out.omitted = omitted;
  }
  if (count.n > 0) out.redactions = count.n;
  return out;
}

export function createToolGuard(opts: {
  enabled: boolean;
  store: GuardStore;
  /** Redacts recorded definitions (main shares the emitter's, so fingerprints match). */
  redactor?: Pick<Redactor, 'redactString'>;
  now?: () => number;
}): ToolGuard {
  const now = opts.now ?? Date.now;
  const record = (tool: ListedTool) => definitionRecord(tool, opts.redactor);
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
        // Definitions are recorded only when first seen, changed, or missing (an older state
        // file): in band, but rare, like the persist that follows.
        if (!e) {
          entries.set(k, {
            upstream,
            tool: tool.name,
            approved_hash: hash,
            current_hash: hash,
            first_seen: iso,
            approved_definition: record(tool),
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
          if (hash === e.approved_hash) {
            delete e.pending_definition;
            e.approved_definition ??= record(tool);
          } else e.pending_definition = record(tool);
          dirty = true;
        } else if (hash === e.approved_hash ? !e.approved_definition : !e.pending_definition) {
          if (hash === e.approved_hash) e.approved_definition = record(tool);
          else e.pending_definition = record(tool);
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
      if (e.current_hash !== e.approved_hash) {
        // The pending record is the one behind current_hash: unknown (never relisted since an
        // older gateway wrote the state) rather than the old definition under the new hash.
        e.approved_definition = e.pending_definition;
        delete e.pending_definition;
      }
      e.approved_hash = e.current_hash;
      e.approved_at = new Date(now()).toISOString();
      e.approved_by = by;
      persist();
      return { ok: true, entry: { ...e }, previousApprovedHash };
    },
    entries: () => [...entries.values()].map((e) => ({ ...e })),
  };
}
