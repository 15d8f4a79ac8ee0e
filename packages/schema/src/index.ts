export * from './event.js';
export * from './limits.js';
export * from './parse.js';
export * from './json.js';
export * from './canonical.js';
export * from './json-schema.js';
export * from './alert.js';
export * from './event-key.js';
