/**
 * The Kubernetes manifests (issue 20 item 4): every document in infra/k8s is parsed and validated
 * against the Kubernetes schemas (the `kubernetes-models` package: types, required fields, enums),
 * and what matters for ringkv is checked against the real thing:
 *
 * - the StatefulSet's start command, run by sh with the ConfigMap's environment, starts a real
 *   `ringkv node` whose id is the pod name: an initial member forms the cluster (--members), any
 *   other pod joins through the seeds (--seeds);
 * - the probe paths and port answer on that node's HTTP server (/livez, /readyz: 200 once it serves);
 * - every environment name the manifests set is one the node or the start command reads, and the
 *   Secret holds only the nats CLI's variables;
 * - the objects refer to each other by the right names (headless Service, ConfigMap, Secret, volume
 *   claim, PodDisruptionBudget selector), and the budget keeps N-1 of every preference list;
 * - the NATS Helm values take the same user and password as the nodes.
 *
 * kubernetes-models does not reject unknown fields (the API server's strict field validation does);
 * the checks below read every field they rely on, so a misspelt one of those fails here too.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsEnvironmentVariables } from '../../src/adapters/nats/connection-options.js';
import { freePort } from '../../src/bench/free-port.js';
import { ensureBuilt, repoRoot, ringkvBin } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';
import { testSecret } from '../support/cluster-secret.js';

const k8sDir = path.join(repoRoot, 'infra', 'k8s');
/** Helm values, not a manifest. */
const helmValuesFile = 'nats-values.yaml';
const models: Record<string, { validate(doc: unknown): void }> = {
  'v1/ConfigMap': { validate: (d) => new ConfigMap(d as never).validate() },
  'v1/Secret': { validate: (d) => new Secret(d as never).validate() },
  'v1/Service': { validate: (d) => new Service(d as never).validate() },
  'apps/v1/StatefulSet': { validate: (d) => new StatefulSet(d as never).validate() },
  'policy/v1/PodDisruptionBudget': { validate: (d) => new PodDisruptionBudget(d as never).validate() },
};
/** What `ringkv` reads from the environment itself: the nats CLI's variables and the cluster name. */
const nodeEnvironment = new Set<string>([...Object.values(natsEnvironmentVariables), 'RINGKV_CLUSTER', 'RINGKV_CLUSTER_SECRET']);
/** In the image, the repository lives at /app (infra/Dockerfile). */
const imageApp = '/app';
const servingTimeoutMs = 30_000;

type Doc = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

function manifests(): Array<{ file: string; doc: Doc }> {
  const out: Array<{ file: string; doc: Doc }> = [];
  for (const file of readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== helmValuesFile).sort()) {
    for (const d of parseAllDocuments(readFileSync(path.join(k8sDir, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map(String).join('; ')}`);
      const doc = d.toJS() as Doc | null;
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

const all = manifests();
const one = (kind: string, name?: string): Doc => {
  const found = all.filter(({ doc }) => doc.kind === kind && (name === undefined || doc.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''} in infra/k8s, found ${found.length}`);
  return found[0]!.doc;
};
const sts = one('StatefulSet');
const pod = sts.spec.template.spec;
const container = pod.containers[0];
const configMap = one('ConfigMap', container.envFrom.find((e: any) => e.configMapRef).configMapRef.name);
const secret = one('Secret', container.envFrom.find((e: any) => e.secretRef).secretRef.name);
const clusterSecret = one('Secret', container.env.find((e: any) => e.name === 'RINGKV_CLUSTER_SECRET').valueFrom.secretKeyRef.name);
const startScript: string = container.command[2];

/**
 * Runs the StatefulSet's start command as the pod would (sh -c, the ConfigMap's and Secret's
 * environment, POD_NAME from the downward API), with a `node` on PATH that records its arguments
 * instead of starting; returns them.
 */
function startArguments(podName: string, overrides: Record<string, string> = {}): string[] {
  const dir = tempDir('ringkv-k8s-cmd-');
  const record = path.join(dir, 'argv');
  const shim = path.join(dir, 'node');
  writeFileSync(shim, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${record}'\n`);
  chmodSync(shim, 0o755);
  const env = { PATH: `${dir}:/usr/bin:/bin`, ...configMap.data, ...secret.stringData, POD_NAME: podName, ...overrides };
  const run = spawnSync(container.command[0], container.command.slice(1), { env, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`start command failed (${run.status}): ${run.stderr}`);
  const argv = readFileSync(record, 'utf8').split('\n').slice(0, -1);
  rmSync(dir, { recursive: true, force: true });
  return argv;
}

const flagValue = (argv: string[], flag: string) => {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
};

describe('Kubernetes manifests in infra/k8s', () => {
  it('every document validates against the Kubernetes schema of its kind', () => {
    expect(all.map(({ doc }) => doc.kind).sort()).toEqual(['ConfigMap', 'PodDisruptionBudget', 'Secret', 'Secret', 'Service', 'StatefulSet']);
    for (const { file, doc } of all) {
      const model = models[`${doc.apiVersion}/${doc.kind}`];
      expect(model, `${file}: ${doc.apiVersion} ${doc.kind} has no schema here`).toBeDefined();
      expect(() => model!.validate(doc), `${file}: ${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
  });

  it('the schema check is not a formality: a broken StatefulSet is refused', () => {
    const broken = structuredClone(sts);
    broken.spec.replicas = 'three';
    delete broken.spec.selector;
    expect(() => models['apps/v1/StatefulSet']!.validate(broken)).toThrow(/replicas|selector/);
  });

  it('the objects refer to each other by the right names', () => {
    const service = one('Service', sts.spec.serviceName);
    expect(service.spec.clusterIP).toBe('None');
    const labels = sts.spec.template.metadata.labels;
    expect(sts.spec.selector.matchLabels).toEqual(labels);
    for (const selector of [service.spec.selector, one('PodDisruptionBudget').spec.selector.matchLabels]) {
      for (const [k, v] of Object.entries(selector)) expect(labels[k], `selector ${k}=${String(v)}`).toBe(v);
    }
    // LMDB lives on the volume claim, mounted where the start command puts the data.
    const claim = sts.spec.volumeClaimTemplates[0];
    const mount = container.volumeMounts.find((m: any) => m.name === claim.metadata.name);
    expect(mount?.mountPath).toBe(flagValue(startArguments('ringkv-0'), '--data'));
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(claim.spec.resources.requests.storage).toMatch(/^\d+[MGT]i$/);
    // The image's user (infra/Dockerfile) owns the volume.
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
  });

  it('the node id is the pod name: initial members form the cluster, later pods join through the seeds', () => {
    expect(container.env).toContainEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    const initial = String(configMap.data.RINGKV_INITIAL_MEMBERS).split(',');
    expect(initial).toEqual(Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`));
    for (const podName of initial) {
      const argv = startArguments(podName);
      expect(argv.slice(0, 2)).toEqual([`${imageApp}/bin/ringkv.js`, 'node']);
      expect(flagValue(argv, '--id')).toBe(podName);
      expect(flagValue(argv, '--members')).toBe(configMap.data.RINGKV_INITIAL_MEMBERS);
      expect(argv).not.toContain('--seeds');
    }
    const later = startArguments(`${sts.metadata.name}-${initial.length}`);
    expect(flagValue(later, '--id')).toBe(`${sts.metadata.name}-${initial.length}`);
    expect(flagValue(later, '--seeds')).toBe(configMap.data.RINGKV_SEEDS);
    expect(later).not.toContain('--members');
    // A pod whose name merely contains a member's ("ringkv-10" holds "ringkv-1") is not one.
    expect(flagValue(startArguments(`${sts.metadata.name}-10`), '--seeds')).toBe(configMap.data.RINGKV_SEEDS);
    expect(flagValue(later, '--partitions')).toBe(configMap.data.RINGKV_PARTITIONS);
    expect(flagValue(later, '--n')).toBe(configMap.data.RINGKV_N);
    expect(flagValue(later, '--http-port')).toBe(configMap.data.RINGKV_HTTP_PORT);
  });

  it('every environment name set is read by the node or by the start command', () => {
    const names = [...Object.keys(configMap.data), ...Object.keys(secret.stringData ?? secret.data ?? {}), ...container.env.map((e: any) => e.name)];
    for (const name of names) {
      const read = nodeEnvironment.has(name) || new RegExp(`\\$${name}\\b`).test(startScript);
      expect(read, `${name} is set but nothing reads it`).toBe(true);
    }
    for (const name of Object.keys(secret.stringData ?? secret.data ?? {})) {
      expect(Object.values(natsEnvironmentVariables), `secret key ${name}`).toContain(name);
    }
    expect(nodeEnvironment.has('NATS_URL') && configMap.data.NATS_URL).toMatch(/^nats:\/\/nats:4222$/);
    // The cluster secret comes from a Secret of its own, by the key the node reads.
    expect(Object.keys(clusterSecret.stringData ?? clusterSecret.data ?? {})).toEqual(['RINGKV_CLUSTER_SECRET']);
  });

  it('the PodDisruptionBudget keeps N-1 replicas of every preference list', () => {
    const pdb = one('PodDisruptionBudget');
    const n = Number(configMap.data.RINGKV_N);
    expect(pdb.spec.minAvailable).toBeUndefined();
    // Each preference list holds N distinct nodes; with at most maxUnavailable pods away, it keeps
    // N - maxUnavailable of them.
    expect(n - pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(n - 1);
    expect(pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
  });

  it('the NATS Helm values run a 3-server cluster with the nodes\' user and password', () => {
    const values = parse(readFileSync(path.join(k8sDir, helmValuesFile), 'utf8'));
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(values.config.jetstream.enabled).toBe(false);
    const users = values.config.merge.authorization.users;
    expect(users).toHaveLength(1);
    expect(users[0].user).toBe(secret.stringData.NATS_USER);
    const variable = /^<< \$(\w+) >>$/.exec(users[0].password)?.[1];
    expect(variable, 'the password comes from an environment variable').toBeDefined();
    expect(values.container.env[variable!].valueFrom.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'NATS_PASSWORD' });
  });

  describe('on a real node started by the StatefulSet\'s command', () => {
    let nats: NatsServerHandle;
    let child: ChildProcess | undefined;
    let dataDir: string;
    let httpPort: number;
    let output = '';
    const podName = `${sts.metadata.name}-0`;

    beforeAll(async () => {
      ensureBuilt();
      nats = await startNatsServer();
      dataDir = tempDir('ringkv-k8s-data-');
      httpPort = await freePort();
      // One pod forming a cluster of its own: the image's paths become this checkout's.
      const argv = startArguments(podName, { RINGKV_INITIAL_MEMBERS: podName, RINGKV_HTTP_PORT: String(httpPort) }).map((a) =>
        a === `${imageApp}/bin/ringkv.js` ? ringkvBin : a === container.volumeMounts[0].mountPath ? dataDir : a,
      );
      const env = { ...process.env, ...configMap.data, NATS_URL: nats.url, NATS_USER: '', NATS_PASSWORD: '', RINGKV_CLUSTER_SECRET: testSecret() };
      child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
      const deadline = Date.now() + servingTimeoutMs;
      while (!output.includes('"node serving"')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the node did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }, 240_000);

    afterAll(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child!.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await nats?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('the probes\' paths and port answer 200 once the node serves', async () => {
      const probes = [container.startupProbe, container.readinessProbe, container.livenessProbe];
      const portName = container.ports.find((p: any) => p.containerPort === Number(configMap.data.RINGKV_HTTP_PORT))?.name;
      expect(portName).toBeDefined();
      expect(probes.map((p: any) => p.httpGet.path).sort()).toEqual(['/livez', '/livez', '/readyz']);
      for (const probe of probes) {
        expect(probe.httpGet.port).toBe(portName);
        const deadline = Date.now() + servingTimeoutMs;
        let status = 0;
        while (status !== 200 && Date.now() < deadline) {
          status = await fetch(`http://127.0.0.1:${httpPort}${probe.httpGet.path}`).then((r) => r.status, () => 0);
          if (status !== 200) await new Promise((r) => setTimeout(r, 200));
        }
        expect(status, probe.httpGet.path).toBe(200);
      }
      // A path the node does not serve is refused, so the 200s above mean something.
      expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(404);
    });

    it('the node runs under the pod\'s name', async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      expect(output + metrics).toContain(podName);
      expect(output).toMatch(new RegExp(`"members":\\["${podName}"\\]`));
    });
  });
});
