export * from './app.js';
export * from './events.row.js';
export * from './audit-events.handler.js';
export { ingesterEnvSchema } from './config.js';
export * from './event-ids.guard.js';
export { clickHouseEventIdStore } from './event-ids.store.js';
