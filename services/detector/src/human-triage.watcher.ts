import { dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { HealthReport, Logger } from '@mcp-audit/service-kit';

/**
 * Learns of human resolves (services/api appends them to alert_transitions with the analyst's key id
 * as actor) for the alerts this detector holds open, every `intervalMs`, and closes them in the
 * lifecycle without a message. A restart needs none of this: loadOpenAlerts already skips resolved
 * alerts. Between two polls the detector may still resolve a human-resolved alert itself (a second
 * resolve for PagerDuty's dedup key, which it ignores; the API keeps the human's resolution).
 */
export interface HumanTriageWatcherDeps {
  reader: ClickHouse;
  lifecycle: { openAlerts(): Array<{ alertId: string }>; closeByHuman(alertId: string): boolean };
  log: Logger;
  intervalMs?: number;
}

const CHUNK = 1_000;

export function createHumanTriageWatcher(deps: HumanTriageWatcherDeps) {
  const intervalMs = deps.intervalMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let lastOk = 0;
  let lastError: string | undefined;

  async function poll(): Promise<number> {
    const ids = deps.lifecycle.openAlerts().map((a) => a.alertId);
    let closed = 0;
    const db = dbIdent(deps.reader.database);
    for (let i = 0; i < ids.length; i += CHUNK) {
      const rows = await deps.reader.query<{ alert_id: string }>(sql`
        SELECT DISTINCT alert_id FROM ${db}.alert_transitions
        WHERE alert_id IN ${tuple(ids.slice(i, i + CHUNK))} AND to_status = 'resolved'
          AND actor NOT IN ('detector', 'replay')`);
      for (const r of rows) if (deps.lifecycle.closeByHuman(r.alert_id)) closed++;
    }
    if (closed > 0) deps.log.info({ closed }, 'alerts resolved by a human left the open set');
    lastOk = Date.now();
    return closed;
  }

  const tick = () => {
    running = poll()
      .then(() => {
        lastError = undefined;
      })
      .catch((err: unknown) => {
        lastError = (err as Error).message;
        deps.log.warn({ err }, 'human triage poll failed; retrying');
      })
      .finally(() => {
        running = undefined;
        if (timer) timer = setTimeout(tick, intervalMs).unref();
      });
  };

  return {
    poll,
    start() {
      timer = setTimeout(tick, intervalMs).unref();
    },
    async stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
    health(): HealthReport {
      return { ok: true, details: { lastOk, lastError: lastError ?? null } };
    },
  };
}
