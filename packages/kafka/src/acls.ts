import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import kafkajs, {
  type AclEntry,
  type AclOperationTypes,
  type AclResourceTypes,
  type Kafka,
  type ResourcePatternTypes,
} from 'kafkajs';
import type { Logger } from '@mcp-audit/service-kit';

// NOTE: kafkajs is CommonJS and its enums are not detectable named exports under ESM.
const {
  AclOperationTypes: Op,
  AclPermissionTypes,
  AclResourceTypes: Res,
  ResourcePatternTypes: Pattern,
} = kafkajs;

/**
 * Kafka ACLs of mcp-audit, declared per principal in deploy/kafka/acls.json (what each service
 * produces to, consumes from, and with which consumer groups) and applied so that the cluster's
 * ACL set is exactly the declared one. Brokers run with StandardAuthorizer, no ACL = denied, and
 * only the admin principal is a super user.
 */
const topic = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/);
const principalSchema = z
  .object({
    description: z.string().optional(),
    produce: z.array(topic).default([]),
    consume: z.array(topic).default([]),
    groups: z.array(z.string().min(1)).default([]),
    groupPrefixes: z.array(z.string().min(1)).default([]),
    /** Groups whose committed offsets this principal may read (DESCRIBE), never join. */
    describeGroups: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((p) => p.consume.length === 0 || p.groups.length + p.groupPrefixes.length > 0, {
    message: 'a principal that consumes needs its consumer group(s)',
  });
const specSchema = z
  .object({
    $comment: z.string().optional(),
    superUsers: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/)).min(1),
    /** Every principal may DESCRIBE (see metadata, not data) the topics under this prefix. */
    describeTopicPrefix: z.string().min(1),
    principals: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), principalSchema),
  })
  .strict();
export type AclSpec = z.infer<typeof specSchema>;

/** packages/kafka/dist/src → repo root deploy/kafka/acls.json */
export const DEFAULT_ACLS_FILE = fileURLToPath(
  new URL('../../../../deploy/kafka/acls.json', import.meta.url),
);

export function loadAclSpec(file = DEFAULT_ACLS_FILE): AclSpec {
  const spec = specSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  for (const su of spec.superUsers)
    if (spec.principals[su]) throw new Error(`acls: ${su} is a super user and needs no ACLs`);
  return spec;
}

const allow = (
  principal: string,
  resourceType: AclResourceTypes,
  resourceName: string,
  resourcePatternType: ResourcePatternTypes,
  operation: AclOperationTypes,
): AclEntry => ({
  principal: `User:${principal}`,
  host: '*',
  resourceType,
  resourceName,
  resourcePatternType,
  operation,
  permissionType: AclPermissionTypes.ALLOW,
});

/** The ACL entries a spec means (WRITE/READ/DELETE imply DESCRIBE in Kafka's authorizer). */
export function aclEntries(spec: AclSpec): AclEntry[] {
  const out: AclEntry[] = [];
  for (const [name, p] of Object.entries(spec.principals)) {
    // ensureDeclaredTopics lists the topics at start-up: a topic it cannot see it would try to create.
    out.push(allow(name, Res.TOPIC, spec.describeTopicPrefix, Pattern.PREFIXED, Op.DESCRIBE));
    for (const t of p.produce) out.push(allow(name, Res.TOPIC, t, Pattern.LITERAL, Op.WRITE));
    // Idempotent producers (acks=-1, idempotent: true) ask for a producer id.
    if (p.produce.length > 0)
      out.push(allow(name, Res.CLUSTER, 'kafka-cluster', Pattern.LITERAL, Op.IDEMPOTENT_WRITE));
    for (const t of p.consume) out.push(allow(name, Res.TOPIC, t, Pattern.LITERAL, Op.READ));
    for (const g of p.groups) out.push(allow(name, Res.GROUP, g, Pattern.LITERAL, Op.READ));
    for (const g of p.describeGroups) out.push(allow(name, Res.GROUP, g, Pattern.LITERAL, Op.DESCRIBE));
    for (const g of p.groupPrefixes) {
      out.push(allow(name, Res.GROUP, g, Pattern.PREFIXED, Op.READ));
      // One-off groups (the dlq replay command's) are deleted when done.
      out.push(allow(name, Res.GROUP, g, Pattern.PREFIXED, Op.DELETE));
    }
  }
  return out;
}

export const aclKey = (a: AclEntry): string =>
  [
    a.principal,
    a.host,
    a.resourceType,
    a.resourceName,
    a.resourcePatternType,
    a.operation,
    a.permissionType,
  ].join('|');

/** Every ACL on the cluster. */
export async function describeAllAcls(kafka: Kafka): Promise<AclEntry[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await admin.describeAcls({
      resourceType: Res.ANY,
      resourcePatternType: Pattern.ANY,
      operation: Op.ANY,
      permissionType: AclPermissionTypes.ANY,
    });
    return res.resources.flatMap((r) =>
      r.acls.map((a) => ({
        ...a,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        resourcePatternType: r.resourcePatternType,
      })),
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * Make the cluster's ACLs exactly the spec's: create what is missing, delete what is not declared
 * (an ACL added by hand is reported and removed). Idempotent. Needs a super user's credentials.
 */
export async function applyAcls(
  kafka: Kafka,
  spec: AclSpec,
  log?: Logger,
): Promise<{ created: number; deleted: number; total: number }> {
  const wanted = aclEntries(spec);
  const wantedKeys = new Set(wanted.map(aclKey));
  const before = await describeAllAcls(kafka);
  const beforeKeys = new Set(before.map(aclKey));
  const missing = wanted.filter((a) => !beforeKeys.has(aclKey(a)));
  const extra = before.filter((a) => !wantedKeys.has(aclKey(a)));
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (missing.length > 0) await admin.createAcls({ acl: missing });
    if (extra.length > 0) {
      log?.warn({ acls: extra.map(aclKey) }, 'kafka ACLs not in the spec: deleting');
      await admin.deleteAcls({ filters: extra });
    }
  } finally {
    await admin.disconnect();
  }
  return { created: missing.length, deleted: extra.length, total: wanted.length };
}
