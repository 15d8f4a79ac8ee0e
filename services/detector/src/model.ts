import type { AlertSeverity } from '@mcp-audit/schema';

/**
 * The seams inside the detector. Two kinds of detector produce `Finding`s:
 * - streaming detectors (per client, fed from the events topic, which is keyed by client.id): tool
 *   breadth, volume, off-hours, auth-failure bursts, error-rate spikes;
 * - periodic detectors (short ClickHouse queries over closed event-time windows, because they need
 *   every instance's view): spraying from one address, failures then success from an address, tool
 *   definition drift, silent source, session misuse.
 * Both hand findings to one `AlertLifecycle`, which dedups, suppresses, resolves, stores and publishes.
 * Everything runs on event time (`ts`), never on the wall clock, so that a replay reproduces the alerts.
 */

export const DETECTORS = [
  'tool_breadth',
  'new_tool',
  'volume',
  'off_hours',
  'auth_burst',
  'auth_spray',
  'auth_fail_then_success',
  'error_rate',
  'error_burst',
  'secret_in_args',
  'tool_drift',
  'silent_source',
  'session_misuse',
  'event_id_reuse',
  'pipeline_silence',
  'pipeline_stall',
  'toxic_flow',
  'tool_shadowing',
  'annotation_drift',
  'first_destructive_use',
] as const;
export type DetectorName = (typeof DETECTORS)[number];

export interface Contributor {
  value: string;
  count: number;
}

/** One detector's verdict on one window; the lifecycle turns it into an alert (or suppresses it). */
export interface Finding {
  detector: DetectorName;
  /** The entity the finding is about: a client id for most, an address/server/source for periodic ones. */
  clientId: string;
  /**
   * `${detector}:${subject}:${window length}`, e.g. `volume:client-a:1h` (the "detector + client
   * + window"): the same problem in the next window is the same alert, suppressed while it is open.
   */
  dedupKey: string;
  severity: AlertSeverity;
  title: string;
  summary: string;
  /** Event-time window the finding covers, epoch ms, end exclusive. */
  windowStart: number;
  windowEnd: number;
  observed: number;
  expected: { low: number; high: number };
  score: number;
  /** The baseline version it was judged against ('' when the detector needs none). */
  baselineVersion: string;
  contributors: { tools: Contributor[]; addresses: Contributor[]; sessions: Contributor[] };
  sampleEventIds: string[];
  /** Event time at which the finding was made (the event that crossed the band, or the window close). */
  detectedAt: number;
  /** The client's labels as its events carry them (streaming detectors), for routing alerts. */
  clientLabels?: Record<string, string>;
}

/**
 * Signals that return to their band resolve their open alert: `resolve` gets the dedup key and the event
 * time at which the signal was seen back in its band (a no-op when nothing is open under that key).
 */
export interface AlertLifecycle {
  raise(finding: Finding): Promise<void>;
  resolve(dedupKey: string, at: number, reason: string): Promise<void>;
  /** The alerts open now (reloaded ones included): what expiry by age looks at. */
  openAlerts?(): ReadonlyArray<{ dedupKey: string; detector: string; openedAt: number }>;
}

export type ClientState = 'learning' | 'active';
