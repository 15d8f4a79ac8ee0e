/** CLI: make the cluster's ACLs exactly deploy/kafka/acls.json's (or the file given). Run as a super user. */
import { createLogger, loadConfigOrExit } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, kafkaConfigFromEnv } from './config.js';
import { createKafka } from './client.js';
import { applyAcls, loadAclSpec } from './acls.js';

const env = loadConfigOrExit(kafkaEnvSchema);
const log = createLogger('apply-acls');
try {
  const spec = loadAclSpec(process.argv[2]);
  const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-apply-acls'), log);
  const r = await applyAcls(kafka, spec, log);
  process.stdout.write(
    `kafka ACLs: ${r.total} declared, ${r.created} created, ${r.deleted} undeclared deleted\n`,
  );
} catch (err) {
  process.stderr.write(`could not apply kafka ACLs: ${(err as Error).message}\n`);
  process.exit(1);
}
