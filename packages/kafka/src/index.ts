export * from './config.js';
export * from './client.js';
export * from './topics.js';
export * from './producer.js';
export * from './consumer.js';
export * from './sealed-box.js';
export * from './dead-letter.js';
export * from './acls.js';
