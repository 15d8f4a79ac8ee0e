export { buildApi, type ApiDeps } from './app.js';
export { apiEnvSchema, apiConfigFromEnv, defaultApiConfig, type ApiConfig } from './config.js';
export { staticKeyRing, fileKeyRing, apiKeySchema, type ApiKey } from './api-keys.js';
export { clickHouseAccessLog, type AccessLogWriter, type AccessLogRow } from './access-log.js';
