export * from './model.js';
export * from './detector.config.js';
