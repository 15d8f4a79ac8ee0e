export { createRedactor, createEventRedactor, type EventRedactor, type EventRedaction } from './event.js';
export {
  redactValue,
  redactString,
  redactLabels,
  DEFAULT_MAX_DEPTH,
  type Redactor,
  type RedactOptions,
  type Redaction,
} from './redact.js';
export { credentialKeyKind, type KeyKind } from './keys.js';
export { SECRET_PATTERNS, MIN_SCAN_LENGTH, type SecretPattern } from './patterns.js';
export { MARKER_RE, DEPTH_MARKER, isMarker, type FingerprintKey } from './fingerprint.js';
export { pinoRedactPaths, pinoRedactOptions } from './pino.js';
