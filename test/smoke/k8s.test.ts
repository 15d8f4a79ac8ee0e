// Issue 16: the Kubernetes manifests (deploy/k8s, kustomize base + overlays), rendered and checked
// offline. No kustomize binary is installed here, so this renders with a small kustomize subset of its
// own (resources, namespace, labels, images, replicas, config map and secret generators without the
// name hash, strategic-merge patches by kind and name). Every rendered object of the base and of each
// overlay is then validated against the Kubernetes API's OpenAPI schemas (kubernetes-models, a
// devDependency: the schemas compiled to validators, no cluster and no network), strictly: a field the
// schema does not know fails too (the API server would drop it silently, so a misspelt
// readOnlyRootFilesystem would switch nothing on). On top: the server-side rules the schemas leave out
// that these manifests rely on (names, label values, ports, quantities, references), and the
// project's rules: probes, requests and limits, security contexts, secrets per service (the same as
// docker-compose gives it), and NetworkPolicies that allow exactly the architecture's flows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseGatewayFile } from '@mcp-audit/gateway';
import { REPO_ROOT } from '../lib/env.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const K8S = join(REPO_ROOT, 'deploy/k8s');
const SERVICES = readdirSync(join(REPO_ROOT, 'services')).sort();

// ---- a kustomize subset
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Strategic merge as kustomize does it for these objects: maps deep, lists of named items by name. */
function merge(base: unknown, patch: unknown): unknown {
  if (isObj(base) && isObj(patch)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(patch)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  }
  if (
    Array.isArray(base) &&
    Array.isArray(patch) &&
    [...base, ...patch].every((x) => isObj(x) && 'name' in x)
  ) {
    const out = base.map((b: Obj) => {
      const p = (patch as Obj[]).find((x) => x.name === b.name);
      return p ? merge(b, p) : b;
    });
    for (const p of patch as Obj[]) if (!base.some((b: Obj) => b.name === p.name)) out.push(p);
    return out;
  }
  return patch;
}

/** Keys of a generator source: `key=path`, a file (its name), an env file (its keys; the .example when absent). */
function generated(dir: string, gen: Obj): Record<string, string> {
  const data: Record<string, string> = {};
  for (const l of (gen.literals ?? []) as string[])
    data[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
  for (const f of (gen.files ?? []) as string[]) {
    const [key, path] = f.includes('=') ? f.split('=') : [basename(f), f];
    assert.ok(
      existsSync(join(dir, path!)) || existsSync(join(dir, dirname(path!))),
      `${dir}: ${path} has no directory`,
    );
    data[key!] = `<file ${path}>`;
  }
  for (const e of (gen.envs ?? []) as string[]) {
    const file = existsSync(join(dir, e)) ? join(dir, e) : join(dir, `${e}.example`);
    assert.ok(existsSync(file), `${dir}: ${e} (or ${e}.example)`);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(line);
      if (m) data[m[1]!] = '<env>';
    }
  }
  return data;
}

const CLUSTER_SCOPED = new Set(['Namespace']);

function render(dir: string): Obj[] {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
  assert.equal(k.kind, 'Kustomization', dir);
  const known = ['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'replicas'];
  for (const key of Object.keys(k))
    assert.ok(
      [...known, 'configMapGenerator', 'secretGenerator', 'patches'].includes(key),
      `${dir}: ${key} is not rendered by this test`,
    );
  let objs: Obj[] = [];
  for (const r of (k.resources ?? []) as string[]) {
    const p = join(dir, r);
    if (existsSync(join(p, 'kustomization.yaml'))) objs.push(...render(p));
    else
      for (const doc of parseAllDocuments(readFileSync(p, 'utf8'))) {
        assert.deepEqual(doc.errors, [], p);
        if (doc.contents) objs.push(doc.toJS() as Obj);
      }
  }
  for (const [kind, gens] of [
    ['ConfigMap', k.configMapGenerator],
    ['Secret', k.secretGenerator],
  ] as const) {
    for (const gen of (gens ?? []) as Obj[]) {
      const data = generated(dir, gen);
      // A Secret's data is base64, as kustomize writes it.
      if (kind === 'Secret')
        for (const key of Object.keys(data)) data[key] = Buffer.from(data[key]!).toString('base64');
      const existing = objs.find((o) => o.kind === kind && o.metadata.name === gen.name);
      if (gen.behavior === 'merge' || gen.behavior === 'replace') {
        assert.ok(existing, `${dir}: ${gen.behavior} of a missing ${kind} ${gen.name}`);
        existing.data = gen.behavior === 'merge' ? { ...existing.data, ...data } : data;
      } else {
        assert.ok(!existing, `${dir}: ${kind} ${gen.name} generated twice`);
        objs.push({
          apiVersion: 'v1',
          kind,
          metadata: { name: gen.name },
          ...(kind === 'Secret' ? { type: 'Opaque' } : {}),
          data,
        });
      }
    }
  }
  for (const p of (k.patches ?? []) as Obj[]) {
    const patch = parseYaml(readFileSync(join(dir, p.path), 'utf8')) as Obj;
    const i = objs.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
    assert.ok(i >= 0, `${dir}: patch ${p.path} matches no object`);
    objs[i] = merge(objs[i], patch) as Obj;
  }
  for (const r of (k.replicas ?? []) as Obj[]) {
    const d = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === r.name);
    assert.ok(d, `${dir}: replicas of a missing Deployment ${r.name}`);
    d.spec.replicas = r.count;
  }
  for (const im of (k.images ?? []) as Obj[]) {
    let used = false;
    for (const d of objs.filter((o) => o.kind === 'Deployment'))
      for (const c of d.spec.template.spec.containers as Obj[]) {
        const [name, tag] = String(c.image).split(':');
        if (name !== im.name) continue;
        c.image = `${im.newName ?? name}:${im.newTag ?? tag}`;
        used = true;
      }
    assert.ok(used, `${dir}: image ${im.name} is used by no container`);
  }
  for (const l of (k.labels ?? []) as Obj[])
    for (const o of objs) o.metadata.labels = { ...o.metadata.labels, ...l.pairs };
  if (k.namespace)
    objs = objs.map((o) =>
      CLUSTER_SCOPED.has(o.kind) ? o : { ...o, metadata: { ...o.metadata, namespace: k.namespace } },
    );
  return objs;
}

// ---- the API's schemas (kubernetes-models), offline
type Model = new (data: Obj) => { validate(): void };
type SchemaError = { instancePath: string; message?: string };

/** The model class of an object's apiVersion and kind; a kind the API does not have fails here. */
async function modelOf(o: Obj): Promise<Model> {
  const path = `kubernetes-models/${o.apiVersion}/${o.kind}`;
  const mod = (await import(path).catch(() => ({}))) as Record<string, Model>;
  assert.ok(
    mod[o.kind],
    `${o.kind}/${o.metadata?.name}: ${o.apiVersion} ${o.kind} is not in the Kubernetes API`,
  );
  return mod[o.kind]!;
}

function schemaErrors(model: Model, o: Obj): SchemaError[] {
  try {
    new model(o).validate();
    return [];
  } catch (e) {
    const errors = (e as { errors?: SchemaError[] }).errors;
    if (!errors) throw e;
    return errors;
  }
}

/** No schema type accepts it: given to a field the schema knows, validation reports that field. */
const NO_TYPE = [[]];

/**
 * Paths (JSON pointers) of the fields the schema does not know. The schemas allow unknown fields, as
 * the API server does when it drops them, so each field is given a value no type accepts: a known
 * field is then reported at its path, an unknown one is not.
 */
function unknownFields(model: Model, o: Obj): string[] {
  const unknown: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${path}/${i}`));
    if (!isObj(node)) return;
    for (const key of Object.keys(node)) {
      const p = `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      const value: unknown = node[key];
      node[key] = NO_TYPE;
      const known = schemaErrors(model, o).some(
        (e) => e.instancePath === p || e.instancePath.startsWith(`${p}/`),
      );
      node[key] = value;
      if (known) walk(value, p);
      else unknown.push(p);
    }
  };
  walk(o, '');
  return unknown;
}

/** Schema errors and unknown fields of one object, as `Kind/name: /path message` lines. */
async function apiSchemaProblems(o: Obj): Promise<string[]> {
  const model = await modelOf(o);
  const where = `${o.kind}/${o.metadata?.name}`;
  return [
    ...schemaErrors(model, o).map((e) => `${where}: ${e.instancePath || '/'} ${e.message}`),
    ...unknownFields(model, o).map((p) => `${where}: ${p} is not a field of ${o.apiVersion} ${o.kind}`),
  ];
}

// ---- structural rules of the API (the subset these manifests use)
const KINDS: Record<string, string> = {
  ServiceAccount: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  Deployment: 'apps/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
};
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PORT_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const CPU = /^(\d+m|\d+(\.\d+)?)$/;
const MEMORY = /^\d+(Ki|Mi|Gi|Ti)?$/;
const cpu = (q: string) => (q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));
const bytes = (q: string) =>
  Number(/^\d+/.exec(q)![0]) * 1024 ** ['', 'Ki', 'Mi', 'Gi', 'Ti'].indexOf(q.replace(/^\d+/, ''));

const FIELDS: Record<string, string[]> = {
  container: [
    'name',
    'image',
    'imagePullPolicy',
    'command',
    'args',
    'ports',
    'env',
    'resources',
    'startupProbe',
    'livenessProbe',
    'readinessProbe',
    'securityContext',
    'volumeMounts',
  ],
  podSpec: [
    'serviceAccountName',
    'automountServiceAccountToken',
    'enableServiceLinks',
    'terminationGracePeriodSeconds',
    'securityContext',
    'containers',
    'volumes',
  ],
  probe: ['httpGet', 'periodSeconds', 'timeoutSeconds', 'failureThreshold'],
};
const onlyFields = (o: Obj, allowed: string[], where: string) => {
  for (const k of Object.keys(o)) assert.ok(allowed.includes(k), `${where}: unknown field ${k}`);
};

function checkStructure(o: Obj): void {
  const where = `${o.kind}/${o.metadata?.name}`;
  assert.equal(o.apiVersion, KINDS[o.kind], `${where}: apiVersion of ${o.kind}`);
  assert.match(
    o.metadata.name,
    o.kind === 'Service' ? /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/ : DNS_SUBDOMAIN,
    where,
  );
  for (const [k, v] of Object.entries((o.metadata.labels ?? {}) as Record<string, string>)) {
    assert.match(
      k,
      /^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
      `${where}: label ${k}`,
    );
    assert.equal(typeof v, 'string', `${where}: label ${k} must be a string`);
    assert.match(v, LABEL_VALUE, `${where}: label ${k}`);
  }
  if (o.kind === 'ConfigMap' || o.kind === 'Secret')
    for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, unknown>)) {
      assert.match(k, /^[-._a-zA-Z0-9]+$/, `${where}: key ${k}`);
      assert.equal(typeof v, 'string', `${where}: ${k} must be a string (quote 'true', numbers)`);
    }
  if (o.kind !== 'Deployment') return;
  const spec = o.spec;
  assert.ok(Number.isInteger(spec.replicas) && spec.replicas >= 1, `${where}: replicas`);
  const tpl = spec.template;
  for (const [k, v] of Object.entries(spec.selector.matchLabels as Record<string, string>))
    assert.equal(tpl.metadata.labels[k], v, `${where}: the selector selects its own pods (${k})`);
  onlyFields(tpl.spec, FIELDS.podSpec!, `${where} pod`);
  const volumes = new Map((tpl.spec.volumes as Obj[]).map((v) => [v.name as string, v]));
  assert.equal(volumes.size, tpl.spec.volumes.length, `${where}: volume names unique`);
  for (const c of tpl.spec.containers as Obj[]) {
    const cw = `${where} container ${c.name}`;
    onlyFields(c, FIELDS.container!, cw);
    assert.match(c.name, DNS_LABEL, cw);
    const ports = new Map((c.ports as Obj[]).map((p) => [p.name as string, p.containerPort as number]));
    for (const [n, p] of ports) {
      assert.match(n, PORT_NAME, `${cw}: port name ${n}`);
      assert.ok(Number.isInteger(p) && p > 0 && p < 65536, `${cw}: port ${p}`);
    }
    const envNames = (c.env as Obj[]).map((e) => e.name as string);
    assert.equal(new Set(envNames).size, envNames.length, `${cw}: env names unique`);
    for (const e of c.env as Obj[]) {
      assert.match(e.name, ENV_NAME, cw);
      assert.ok('value' in e !== 'valueFrom' in e, `${cw}: ${e.name} has value or valueFrom`);
      if ('value' in e) assert.equal(typeof e.value, 'string', `${cw}: ${e.name} must be a string`);
    }
    const { requests, limits } = c.resources;
    assert.match(requests.cpu, CPU, cw);
    assert.match(limits.cpu, CPU, cw);
    assert.match(requests.memory, MEMORY, cw);
    assert.match(limits.memory, MEMORY, cw);
    assert.ok(cpu(requests.cpu) <= cpu(limits.cpu), `${cw}: cpu request <= limit`);
    assert.ok(bytes(requests.memory) <= bytes(limits.memory), `${cw}: memory request <= limit`);
    for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const probe = c[kind] as Obj;
      assert.ok(probe, `${cw}: ${kind}`);
      onlyFields(probe, FIELDS.probe!, `${cw} ${kind}`);
      assert.ok(ports.has(probe.httpGet.port), `${cw}: ${kind} port ${probe.httpGet.port} is a named port`);
    }
    const paths = new Set<string>();
    for (const m of c.volumeMounts as Obj[]) {
      assert.ok(volumes.has(m.name), `${cw}: mount of a missing volume ${m.name}`);
      assert.ok(!paths.has(m.mountPath), `${cw}: ${m.mountPath} mounted twice`);
      paths.add(m.mountPath);
    }
  }
}

const production = render(join(K8S, 'overlays/production'));
const base = render(join(K8S, 'base'));
const byKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
const find = (kind: string, name: string) =>
  production.find((o) => o.kind === kind && o.metadata.name === name);
const deployments = byKind(production, 'Deployment');
const containerOf = (d: Obj) => d.spec.template.spec.containers[0] as Obj;

test('k8s: base and production overlay render; every object passes the structural rules', () => {
  for (const objs of [base, production]) {
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.equal(new Set(names).size, names.length, 'no object twice');
    objs.forEach(checkStructure);
  }
  assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), SERVICES, 'one Deployment per service');
  for (const o of production) assert.equal(o.metadata.namespace, 'mcp-audit', `${o.kind}/${o.metadata.name}`);
  for (const d of deployments)
    assert.equal(containerOf(d).image, `registry.example.com/mcp-audit/${d.metadata.name}:0.1.0`);
  assert.equal(find('Deployment', 'ingester')!.spec.replicas, 3, 'overlay replicas');
  const api = containerOf(find('Deployment', 'api')!).env as Obj[];
  assert.equal(
    api.find((e) => e.name === 'MCP_AUDIT_API_ALLOWED_HOSTS')?.value,
    'audit.example.com',
    'overlay patch',
  );
  assert.ok(
    api.some((e) => e.name === 'MCP_AUDIT_API_KEYS_FILE'),
    'the patch merged the env list by name',
  );
});

const OVERLAYS = readdirSync(join(K8S, 'overlays')).sort();

test('k8s: every rendered object of the base and of each overlay passes the API schemas, strictly', async () => {
  assert.ok(OVERLAYS.includes('production'), 'overlays found');
  const renders: Array<[string, Obj[]]> = [
    ['base', base],
    ...OVERLAYS.map((o): [string, Obj[]] => [`overlays/${o}`, render(join(K8S, 'overlays', o))]),
  ];
  for (const [name, objs] of renders) {
    assert.ok(byKind(objs, 'Deployment').length === SERVICES.length, `${name}: rendered`);
    const problems = (await Promise.all(objs.map(apiSchemaProblems))).flat();
    assert.deepEqual(problems, [], `${name}: schema problems`);
  }
});

test('k8s: the schema check refuses a misspelt field, a wrong type, a bad quantity, a missing field, an unknown kind', async () => {
  const broken = (edit: (d: Obj) => void): Obj => {
    const d = structuredClone(find('Deployment', 'api')!);
    edit(d);
    return d;
  };
  const c = '/spec/template/spec/containers/0';
  const cases: Array<[(d: Obj) => void, RegExp]> = [
    [
      (d) => (containerOf(d).securityContext.readOnlyRootFileSystem = true),
      new RegExp(`${c}/securityContext/readOnlyRootFileSystem is not a field of apps/v1 Deployment`),
    ],
    [
      (d) => (containerOf(d).ports[0].containerPort = '9475'),
      new RegExp(`${c}/ports/0/containerPort must be integer`),
    ],
    [
      (d) => (containerOf(d).resources.limits.cpu = 'lots'),
      new RegExp(`${c}/resources/limits/cpu must match format "quantity"`),
    ],
    [(d) => delete d.spec.selector, /Deployment\/api: \/spec must have required property selector/],
  ];
  for (const [edit, expected] of cases) {
    const problems = await apiSchemaProblems(broken(edit));
    assert.ok(
      problems.some((p) => expected.test(p)),
      `${expected}: got ${JSON.stringify(problems)}`,
    );
  }
  // (kubernetes-models also has API versions removed since, such as extensions/v1beta1 Deployments:
  // checkStructure pins each kind's current apiVersion.)
  await assert.rejects(
    apiSchemaProblems(broken((d) => (d.kind = 'Deploymnet'))),
    /apps\/v1 Deploymnet is not in the Kubernetes API/,
  );
});

test('k8s: every reference resolves (Secrets, ConfigMaps, keys, claims, Service ports, ServiceAccount)', () => {
  for (const d of deployments) {
    const pod = d.spec.template.spec;
    const where = d.metadata.name;
    assert.ok(find('ServiceAccount', pod.serviceAccountName), `${where}: service account`);
    for (const e of containerOf(d).env as Obj[]) {
      const ref = (e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef) as Obj | undefined;
      if (!ref) continue;
      const obj = find(e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap', ref.name);
      assert.ok(obj, `${where}: ${e.name} refers to a missing ${ref.name}`);
      assert.ok(ref.key in obj.data, `${where}: ${ref.name} has no key ${ref.key}`);
    }
    for (const v of pod.volumes as Obj[]) {
      if (v.secret) {
        const s = find('Secret', v.secret.secretName);
        assert.ok(s, `${where}: Secret ${v.secret.secretName}`);
        for (const it of v.secret.items as Obj[])
          assert.ok(it.key in s.data, `${where}: ${v.secret.secretName} has ${it.key}`);
      }
      if (v.configMap)
        assert.ok(find('ConfigMap', v.configMap.name), `${where}: ConfigMap ${v.configMap.name}`);
      if (v.persistentVolumeClaim)
        assert.ok(find('PersistentVolumeClaim', v.persistentVolumeClaim.claimName), `${where}: claim`);
    }
  }
  for (const s of byKind(production, 'Service')) {
    const d = deployments.find((x) =>
      Object.entries(s.spec.selector as Record<string, string>).every(
        ([k, v]) => x.spec.template.metadata.labels[k] === v,
      ),
    );
    assert.ok(d, `Service ${s.metadata.name} selects a Deployment`);
    for (const p of s.spec.ports as Obj[])
      assert.ok(
        (containerOf(d).ports as Obj[]).some((cp) => cp.name === p.targetPort),
        `${s.metadata.name}: ${p.targetPort}`,
      );
  }
  const gw = find('ConfigMap', 'mcp-audit-gateway-config')!;
  assert.ok('gateway.json' in gw.data);
  parseGatewayFile(JSON.parse(readFileSync(join(K8S, 'base/gateway.json'), 'utf8')), 'gateway.json', '/');
});

test('k8s: probes on the ops port, non-root, read-only root filesystem, no capabilities, no token', () => {
  for (const d of deployments) {
    const name = d.metadata.name as string;
    const pod = d.spec.template.spec;
    const c = containerOf(d);
    const config = readFileSync(join(REPO_ROOT, `services/${name}/src/config.ts`), 'utf8');
    const ops = /opsEnv\('\w+', (\d+)\)/.exec(config) ?? /_OPS_PORT: envInt\((\d+),/.exec(config);
    const opsPort = (c.ports as Obj[]).find((p) => p.name === c.livenessProbe.httpGet.port)!.containerPort;
    assert.equal(opsPort, Number(ops![1]), `${name}: probes hit the ops port of its config`);
    assert.equal(c.livenessProbe.httpGet.path, '/healthz', name);
    assert.equal(c.startupProbe.httpGet.path, '/healthz', name);
    assert.equal(c.readinessProbe.httpGet.path, '/readyz', name);
    assert.deepEqual(c.command, ['node', `services/${name}/dist/src/main.js`], name);
    assert.equal(pod.automountServiceAccountToken, false, name);
    assert.equal(pod.securityContext.runAsNonRoot, true, name);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault', name);
    assert.deepEqual(
      c.securityContext,
      {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      },
      name,
    );
    // Writable: /tmp (emptyDir) and its data volumes only.
    for (const m of c.volumeMounts as Obj[]) {
      const v = (pod.volumes as Obj[]).find((x) => x.name === m.name)!;
      if (v.secret || v.configMap) assert.equal(m.readOnly, true, `${name}: ${m.mountPath} read-only`);
      if (!m.readOnly)
        assert.match(m.mountPath, /^(\/tmp|\/var\/lib\/mcp-audit\/(ledger|exports|gateway))$/, name);
    }
  }
});

test('k8s: each service gets only its own secrets, the same ones docker-compose gives it', () => {
  const compose = parseYaml(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; volumes?: Array<string | Obj> }>;
  };
  for (const d of deployments) {
    const name = d.metadata.name as string;
    const c = containerOf(d);
    const secretEnv = (c.env as Obj[]).filter((e) => e.valueFrom?.secretKeyRef);
    for (const e of secretEnv)
      assert.equal(e.valueFrom.secretKeyRef.name, `mcp-audit-${name}`, `${name}: ${e.name}`);
    const composeSecrets = Object.entries(compose.services[name]!.environment ?? {})
      .filter(([, v]) => /^\$\{/.test(String(v)))
      .map(([k]) => k)
      .sort();
    assert.deepEqual(
      secretEnv.map((e) => e.name).sort(),
      composeSecrets,
      `${name}: the secret settings compose gives it`,
    );
    const files = (d.spec.template.spec.volumes as Obj[]).filter((v) => v.secret);
    for (const v of files) assert.equal(v.secret.secretName, `mcp-audit-${name}-files`, name);
    const composeFiles = (compose.services[name]!.volumes ?? [])
      .flatMap((v) => (typeof v === 'object' && v.source === 'secrets' ? [v.volume.subpath as string] : []))
      .filter((f) => f !== 'ledger/keys') // public keys: a ConfigMap here
      .sort();
    assert.deepEqual(
      files.flatMap((v) => (v.secret.items as Obj[]).map((i) => i.key)).sort(),
      composeFiles,
      `${name}: secret files`,
    );
  }
  // Plain settings never carry a secret.
  for (const d of deployments)
    for (const e of containerOf(d).env as Obj[])
      if ('value' in e)
        assert.doesNotMatch(
          e.name,
          /PASSWORD|SECRET|TOKEN$|_KEY$/,
          `${d.metadata.name}: ${e.name} in plain text`,
        );
});

/** The architecture's flows (DESIGN.md data flow): who may talk to whom, and on which port. */
const FLOWS: Record<string, { ingress: string[]; egress: string[] }> = {
  collector: { ingress: ['anyone:9470'], egress: ['kafka:9092'] },
  gateway: { ingress: ['anyone:9473', 'monitoring:9478'], egress: ['kafka:9092', 'mcp-upstream:any'] },
  ingester: { ingress: ['monitoring:9471'], egress: ['clickhouse:8123', 'kafka:9092'] },
  detector: { ingress: ['monitoring:9474'], egress: ['clickhouse:8123', 'kafka:9092'] },
  notifier: { ingress: ['monitoring:9472'], egress: ['clickhouse:8123', 'internet:443', 'kafka:9092'] },
  api: { ingress: ['anyone:9475', 'monitoring:9476'], egress: ['clickhouse:8123', 'kafka:9092'] },
  retention: { ingress: ['monitoring:9477'], egress: ['clickhouse:8123', 'kafka:9092'] },
};

function peer(p: Obj): string {
  if (p.ipBlock)
    return p.ipBlock.cidr === '0.0.0.0/0' && p.ipBlock.except?.includes('10.0.0.0/8')
      ? 'internet'
      : p.ipBlock.cidr === '0.0.0.0/0'
        ? 'anyone'
        : `cidr ${p.ipBlock.cidr}`;
  const ns = p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
  const app = p.podSelector?.matchLabels?.['app.kubernetes.io/name'];
  if (ns === 'monitoring' && !p.podSelector) return 'monitoring';
  if (ns === 'mcp-audit-data' && (app === 'kafka' || app === 'clickhouse')) return app;
  if (p.podSelector?.matchLabels?.['mcp-audit/mcp-upstream'] === 'true') return 'mcp-upstream';
  if (p.namespaceSelector && Object.keys(p.namespaceSelector).length === 0 && !p.podSelector) return 'anyone';
  return `unexpected ${JSON.stringify(p)}`;
}

test('k8s: NetworkPolicies deny by default and allow exactly the architecture’s flows', () => {
  const policies = byKind(production, 'NetworkPolicy');
  const deny = policies.find((p) => p.metadata.name === 'default-deny')!;
  assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  const dns = policies.find((p) => p.metadata.name === 'allow-dns')!;
  assert.deepEqual(dns.spec.policyTypes, ['Egress']);
  assert.deepEqual(
    (dns.spec.egress[0].ports as Obj[]).map((p) => p.port),
    [53, 53],
  );
  for (const d of deployments) {
    const name = d.metadata.name as string;
    const labels = d.spec.template.metadata.labels as Record<string, string>;
    const mine = policies.filter(
      (p) =>
        p.metadata.name !== 'default-deny' &&
        p.metadata.name !== 'allow-dns' &&
        Object.entries((p.spec.podSelector.matchLabels ?? {}) as Record<string, string>).every(
          ([k, v]) => labels[k] === v,
        ),
    );
    const flows = { ingress: new Set<string>(), egress: new Set<string>() };
    for (const p of mine) {
      for (const dir of ['ingress', 'egress'] as const)
        for (const rule of (p.spec[dir] ?? []) as Obj[]) {
          const peers = (rule[dir === 'ingress' ? 'from' : 'to'] as Obj[]).map(peer);
          const ports = ((rule.ports ?? [{ port: 'any' }]) as Obj[]).map((x) => x.port);
          for (const pe of new Set(peers)) for (const po of ports) flows[dir].add(`${pe}:${po}`);
        }
    }
    assert.deepEqual([...flows.ingress].sort(), FLOWS[name]!.ingress, `${name}: ingress`);
    assert.deepEqual([...flows.egress].sort(), FLOWS[name]!.egress.sort(), `${name}: egress`);
  }
});

test('k8s: the once-only work is leased, so detector and retention may run several replicas', () => {
  for (const name of ['detector', 'retention']) {
    const d = find('Deployment', name)!;
    assert.ok(d.spec.replicas >= 2, `${name}: replicas`);
    const env = containerOf(d).env as Obj[];
    assert.equal(env.find((e) => e.name === `MCP_AUDIT_${name.toUpperCase()}_LEASE`)?.value, 'true', name);
  }
  for (const claim of ['mcp-audit-ledger', 'mcp-audit-exports'])
    assert.deepEqual(
      find('PersistentVolumeClaim', claim)!.spec.accessModes,
      ['ReadWriteMany'],
      `${claim}: shared by replicas`,
    );
});
