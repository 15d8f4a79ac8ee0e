export * from './model.js';
export * from './config.js';
export { Lifecycle, liveSink, loadOpenAlerts, stableUuid } from './alert.lifecycle.js';
export { DETECTOR_TABLES } from './app.js';
export {
  createPipelineWatchdog,
  kafkaGroupOffsets,
  type CheckResult,
  type GroupOffsets,
  type OffsetsSource,
  type PipelineWatchdog,
} from './watchdog/pipeline.watchdog.js';
export {
  createPeriodicRunner,
  eventIdReuseDetector,
  secretInArgsDetector,
  parseMarker,
} from './periodic/index.js';
export { memorySink } from './replay.js';
