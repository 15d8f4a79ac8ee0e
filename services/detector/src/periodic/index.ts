/**
 * Periodic detectors: the ones keyed by something other than the client (an address, a session, a
 * source, a server's tool, an event id), which need every instance's view. Each is a few short
 * ClickHouse queries over one closed window of mcp_audit.events (event time; ingestion time for
 * event_id_reuse); the runner evaluates every aligned window once the watermark has passed it, in
 * order, and remembers where it is.
 */
import type { ClickHouse } from '@mcp-audit/clickhouse';
import type { Logger } from '@mcp-audit/service-kit';
import { authFailThenSuccessDetector } from './auth-fail-success.detector.js';
import { authSprayDetector } from './auth-spray.detector.js';
import type { PeriodicConfig } from '../config.js';
import { sessionMisuseDetector } from './session-misuse.detector.js';
import { eventIdReuseDetector } from './event-id-reuse.detector.js';
import { silentSourceDetector } from './silent-source.detector.js';
import { toolDriftDetector } from './tool-drift.detector.js';
import { secretInArgsDetector } from './secret-in-args.detector.js';
import { toxicFlowDetector } from './toxic-flow.detector.js';
import { toolShadowingDetector } from './tool-shadowing.detector.js';
import { annotationDriftDetector } from './annotation-drift.detector.js';
import { firstDestructiveUseDetector } from './first-destructive-use.detector.js';
import type { PeriodicDetector } from './types.js';

export * from './types.js';
export * from '../config.js';
export * from './periodic.runner.js';
export * from './periodic.metrics.js';
export * from './progress.store.js';
export { windowLabel, dedupKeyOf, alignDown, alignUp } from './windows.js';
export { authSprayDetector } from './auth-spray.detector.js';
export { authFailThenSuccessDetector } from './auth-fail-success.detector.js';
export { toolDriftDetector, driftedHashes } from './tool-drift.detector.js';
export { silentSourceDetector, judgeSilence, quietAtThisHourBefore } from './silent-source.detector.js';
export { sessionMisuseDetector } from './session-misuse.detector.js';
export { secretInArgsDetector, parseMarker, secretSubject } from './secret-in-args.detector.js';
export { toxicFlowDetector, findFlows } from './toxic-flow.detector.js';
export { toolShadowingDetector, newShadowing } from './tool-shadowing.detector.js';
export { annotationDriftDetector } from './annotation-drift.detector.js';
export { firstDestructiveUseDetector } from './first-destructive-use.detector.js';
export {
  eventIdReuseDetector,
  byPrecedence,
  differingColumns,
  CONTENT_COLUMNS,
  BOOKKEEPING_COLUMNS,
  type StoredCopy,
} from './event-id-reuse.detector.js';

export interface PeriodicDetectorsDeps {
  /** Reader client (the analyst user: SELECT only); its database holds `events`. */
  ch: ClickHouse;
  config: PeriodicConfig;
  log: Logger;
}

/** The enabled periodic detectors, in a fixed order (ties between windows ending together). */
export function createPeriodicDetectors(deps: PeriodicDetectorsDeps): PeriodicDetector[] {
  const { ch, config } = deps;
  const out: PeriodicDetector[] = [];
  if (config.authSpray.enabled) out.push(authSprayDetector(ch, config.authSpray));
  if (config.authFailThenSuccess.enabled)
    out.push(authFailThenSuccessDetector(ch, config.authFailThenSuccess));
  if (config.toolDrift.enabled) out.push(toolDriftDetector(ch, config.toolDrift));
  if (config.silentSource.enabled) out.push(silentSourceDetector(ch, config.silentSource));
  if (config.sessionMisuse.enabled) out.push(sessionMisuseDetector(ch, config.sessionMisuse));
  if (config.eventIdReuse.enabled) out.push(eventIdReuseDetector(ch, config.eventIdReuse));
  if (config.secretInArgs.enabled) out.push(secretInArgsDetector(ch, config.secretInArgs));
  if (config.toxicFlow.enabled) out.push(toxicFlowDetector(ch, config.toxicFlow, config.toolClasses));
  if (config.toolShadowing.enabled) out.push(toolShadowingDetector(ch, config.toolShadowing));
  if (config.annotationDrift.enabled) out.push(annotationDriftDetector(ch, config.annotationDrift));
  if (config.firstDestructiveUse.enabled)
    out.push(firstDestructiveUseDetector(ch, config.firstDestructiveUse, config.toolClasses));
  deps.log.debug({ detectors: out.map((d) => d.name) }, 'periodic detectors configured');
  return out;
}
