export * from './env.js';
export * from './events.js';
export * from './proc.js';
export * from './pipeline.js';
export * from './collector.js';
