/** Reported as `source.version` of every event. */
export const GATEWAY_VERSION = '0.1.0';
