export * from './app.js';
export * from './events.row.js';
export * from './audit-events.handler.js';
export { ingesterEnvSchema } from './config.js';
