export * from './app.js';
export * from './source-tokens.js';
export { collectorEnvSchema } from './config.js';
