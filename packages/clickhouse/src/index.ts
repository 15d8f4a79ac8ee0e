// NOTE: `unsafeRaw` is deliberately not exported: outside the migration runner, SQL is built only
// with `sql` and the encoders.
export {
  SqlFragment,
  sql,
  literal,
  toSql,
  str,
  int,
  float,
  bool,
  dateTime,
  array,
  tuple,
  join,
  ident,
  dbIdent,
  type SqlValue,
} from './literal.js';
export * from './errors.js';
export * from './client.js';
export {
  runMigrations,
  loadMigrations,
  splitStatements,
  rewriteDatabase,
  MIGRATION_FILE,
  type MigrationFile,
  type AppliedMigration,
  type MigrationResult,
  type RunMigrationsOptions,
} from './migrations.js';
export * from './config.js';
export { clusterStatements, LOCAL_SUFFIX, type ClusterLayout } from './cluster.js';
export {
  runClusterMigrations,
  type ClusterNode,
  type ClusterMigrationResult,
  type RunClusterMigrationsOptions,
} from './cluster-migrations.js';
