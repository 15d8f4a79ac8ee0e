export * from './model.js';
export * from './config.js';
