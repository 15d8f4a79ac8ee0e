export * from './server.js';
export * from './validate.js';
export * from './alerts.js';
export * from './notifier.js';
export * from './uuid7.js';
