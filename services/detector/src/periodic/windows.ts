/**
 * Pure window arithmetic of the periodic runner. Windows are half-open [start, end) in event time
 * (epoch ms), aligned to multiples of their length since the epoch, so every run, live or replay,
 * cuts the same windows.
 */
import type { DetectorName } from '../model.js';

export const alignDown = (t: number, windowMs: number): number => Math.floor(t / windowMs) * windowMs;
export const alignUp = (t: number, windowMs: number): number => Math.ceil(t / windowMs) * windowMs;

/** `15m`, `1h`, `1d`, `90s`: the window length as it appears in dedup keys. */
export function windowLabel(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError(`invalid window length: ${ms}`);
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** `${detector}:${subject}:${window length}` (model.ts). */
export const dedupKeyOf = (detector: DetectorName, subject: string, windowMs: number): string =>
  `${detector}:${subject}:${windowLabel(windowMs)}`;

export interface WindowSlot {
  /** Index of the detector in the runner's list. */
  detector: number;
  start: number;
  end: number;
}

export interface Cursor {
  windowMs: number;
  /** Event time past the window end that must be closed too before the window is evaluated. */
  lookaheadMs: number;
  /** Start of the next window to evaluate (aligned). */
  next: number;
}

/**
 * The windows that are closed at `closedUntil` (the watermark minus allowed lateness), earliest
 * end first (ties: detector order), at most `max` of them. A detector's windows come strictly in
 * order, so a bounded tick never skips one.
 */
export function dueWindows(cursors: readonly Cursor[], closedUntil: number, max: number): WindowSlot[] {
  const next = cursors.map((c) => c.next);
  const out: WindowSlot[] = [];
  while (out.length < max) {
    let best = -1;
    for (let i = 0; i < cursors.length; i++) {
      const c = cursors[i]!;
      const end = next[i]! + c.windowMs;
      if (end + c.lookaheadMs > closedUntil) continue;
      if (best < 0 || end < next[best]! + cursors[best]!.windowMs) best = i;
    }
    if (best < 0) break;
    const start = next[best]!;
    const end = start + cursors[best]!.windowMs;
    out.push({ detector: best, start, end });
    next[best] = end;
  }
  return out;
}

/** Every window of every detector inside [from, to) (whole windows only), in `dueWindows` order. */
export function rangeWindows(
  cursors: ReadonlyArray<Pick<Cursor, 'windowMs'>>,
  from: number,
  to: number,
): WindowSlot[] {
  if (!(Number.isFinite(from) && Number.isFinite(to))) throw new RangeError('runRange needs finite bounds');
  const all: WindowSlot[] = [];
  cursors.forEach((c, detector) => {
    for (let start = alignUp(from, c.windowMs); start + c.windowMs <= to; start += c.windowMs) {
      all.push({ detector, start, end: start + c.windowMs });
    }
  });
  return all.sort((a, b) => a.end - b.end || a.detector - b.detector);
}

/**
 * Where a detector resumes: right after its last evaluated window when there is one (aligned up,
 * in case the window length changed since), else at the last window already closed, so a first
 * start neither replays history (that is what `replay` is for) nor waits a whole window.
 */
export function resumeAt(
  lastEnd: number | undefined,
  windowMs: number,
  lookaheadMs: number,
  closedUntil: number,
): number {
  if (lastEnd !== undefined) return alignUp(lastEnd, windowMs);
  return alignDown(closedUntil - lookaheadMs, windowMs) - windowMs;
}
