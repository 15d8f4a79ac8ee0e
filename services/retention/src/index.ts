// The library surface the api mounts (compliance scope): holds, verify, keys. See README.md.
export {
  createLegalHolds,
  overlappingHolds,
  holdSpecSchema,
  HoldError,
  type LegalHold,
  type LegalHolds,
  type HoldSpec,
} from './holds.js';
export {
  verifyRange,
  checkChain,
  type VerifyReport,
  type VerifyDeps,
  type VerifyOptions,
  type HourReport,
  type Problem,
} from './ledger/verify.js';
export { sealOnce, DEFAULT_SEALER, type SealerConfig, type SealerDeps } from './ledger/sealer.js';
export { loadPublicKeys, loadSigningKey, createSigningKey } from './ledger/keys.js';
export { canonicalRow, leafHash, CANONICAL_COLUMNS } from './ledger/canonical.js';
export { merkleRoot, inclusionProof, verifyInclusion } from './ledger/merkle.js';
export { canonicalJson, recordHash, keyIdOf, type LedgerRecord } from './ledger/record.js';
export { planRetention, runRetention, type PartitionPlan } from './retention.job.js';
export { retiredHours } from './receipts.js';
export { retentionPolicySchema, type RetentionPolicy } from './config.js';
export { exportBundle, PRODUCT_VERSION, type Manifest, type ExportSpec } from './export/bundle.js';
export { verifyBundle, type BundleReport } from './export/verify-bundle.js';
export { exportFiltersSchema, type ExportFilters } from './export/filters.js';
export { FORMATS, type ExportFormat } from './export/formats.js';
export { createExportJobs, type ExportJob, type ExportJobs } from './export/jobs.js';
export { tarDirectory } from './export/tar.js';
export { createRowStream, type RowStream } from './ledger/stream.js';
export type { LedgerDb } from './ledger/hours.js';
export {
  clusterPartitions,
  configuredPartitions,
  singleServerPartitions,
  type Partitions,
  type PartitionRows,
} from './partitions.js';
