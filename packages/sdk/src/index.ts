export { toolDefinitionHash, type ToolLike } from './hash.js';
export { outcomeOf, type OutcomeLayers } from './outcome.js';
export { uuidv7 } from './uuid.js';
export { capArgs, digestMarker, DEFAULT_MAX_ARG_VALUE_BYTES } from './args.js';
export { AuditDeliveryError, type AuditEvent, type AuditSink, type SinkSendResult } from './sink.js';
export {
  createAuditEmitter,
  DROPPED_METHOD,
  DROPPED_ERROR_CODE,
  type AuditEmitter,
  type AuditEmitterOptions,
  type AuditEmitterStats,
  type AuditEventDraft,
} from './emitter.js';
export { createCollectorSink, type CollectorSinkOptions } from './sinks/collector.sink.js';
export { sinkFromEnv } from './sinks/sink-from-env.js';
export { SdkConfigError } from './env.js';
export { type AuditLogger, type AuditLogLevel } from './logger.js';
export {
  auditMcpServer,
  defaultClientIdentity,
  IN_FLIGHT_LIMIT_REASON,
  type AuditServerOptions,
  type AuditedServer,
  type ClientContext,
  type ClientIdentity,
} from './wrap.js';
export {
  cleanText,
  cutText,
  defaultTextRedactor,
  eventAnnotations,
  eventIdentifier,
  eventMethod,
  MAX_EVENT_IDENTIFIER,
  requestNames,
  wellFormedText,
  wellFormedValue,
  type TextRedactor,
} from './sanitize.js';
export { SDK_VERSION } from './version.js';
