/**
 * Containers that run (issue 20 item 3): infra/Dockerfile is built and infra/compose.yaml is run,
 * as shipped, with podman (test/support/compose-podman.ts turns each service into a `podman run`).
 *
 * - The image builds on the base given as a build argument (here the local stand-in made by
 *   infra/podman/base-image.sh, since no image registry is reachable), runs as a non-root user, and
 *   its HEALTHCHECK asks /readyz.
 * - The compose set (three NATS servers joined by routes, three nodes, each on its own server and
 *   volume) comes up healthy; metrics answer from outside the containers on the published ports.
 * - A client on the host writes and reads through the published NATS port while one node's
 *   container is killed (SIGKILL of its whole process tree, as a crash or an OOM kill would);
 *   `restart: on-failure` brings it back, and every acknowledged write reads back afterwards.
 *
 * Needs root, podman and the base image; skipped with the reason otherwise. RINGKV_CONTAINER_TEST=0
 * skips it on purpose. .ci/run installs podman and makes the base image.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { newClusterSecretText } from '../../src/server/cluster-secret.js';
import { type ComposeProject, composeProject, loadCompose, podman } from '../support/compose-podman.js';
import { natsServerBinary, tempDir } from '../support/nats-server.js';
import { repoRoot } from '../support/cluster.js';

const baseImage = process.env.RINGKV_BASE_IMAGE ?? 'localhost/ringkv-base:bookworm-node24';
const natsImage = 'localhost/ringkv-nats-standin:test';
const composeFile = path.join(repoRoot, 'infra', 'compose.yaml');
/** A system CA bundle, passed to the image build's npm ci (a TLS-inspecting proxy may sit in front of the registry). */
const caBundle = '/etc/ssl/certs/ca-certificates.crt';
const buildTimeoutMs = 15 * 60_000;
const healthyTimeoutMs = 90_000;
const restartTimeoutMs = 90_000;
const writersCount = 4;
const text = new TextEncoder();
const untext = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function whyNot(): string | undefined {
  if (process.env.RINGKV_CONTAINER_TEST === '0') return 'RINGKV_CONTAINER_TEST=0';
  if (process.platform !== 'linux') return 'podman containers need Linux';
  if (process.getuid?.() !== 0) return 'rootful podman needs root';
  if (spawnSync('podman', ['--version']).status !== 0) return 'podman is not installed (apt-get install -y podman runc debootstrap)';
  if (spawnSync('podman', ['--runtime', 'runc', 'image', 'exists', baseImage]).status !== 0) {
    return `the base image ${baseImage} is missing (make it with infra/podman/base-image.sh; .ci/run does)`;
  }
  try {
    natsServerBinary();
  } catch {
    return 'nats-server is not installed (its binary goes into the NATS stand-in image)';
  }
  return undefined;
}

const skipReason = whyNot();
if (skipReason) console.warn(`test/containers/podman.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('containers: infra/Dockerfile and infra/compose.yaml on podman', () => {
  // The cluster secret the compose file mounts into every node (git ignores it): made once. Readable
  // by the image's non-root user, as the compose file's header says.
  const secretFile = path.join(repoRoot, 'infra', 'cluster.secret');
  if (skipReason === undefined && !existsSync(secretFile)) writeFileSync(secretFile, newClusterSecretText() + '\n', { mode: 0o644 });
  const file = loadCompose(composeFile);
  const nodes = file.services.filter((s) => s.build !== undefined).map((s) => s.name);
  const natsServices = file.services.filter((s) => s.build === undefined).map((s) => s.name);
  let project: ComposeProject;
  let client: RingkvClient | undefined;
  let ringkvImage: string;

  beforeAll(async () => {
    // The NATS stand-in: the base image plus this machine's nats-server.
    const natsContext = tempDir('ringkv-nats-image-');
    copyFileSync(natsServerBinary(), path.join(natsContext, 'nats-server'));
    copyFileSync(path.join(repoRoot, 'infra', 'podman', 'nats.Containerfile'), path.join(natsContext, 'Containerfile'));
    await podman(['build', '--format', 'docker', '--build-arg', `BASE=${baseImage}`, '-t', natsImage, natsContext], { timeoutMs: buildTimeoutMs });
    rmSync(natsContext, { recursive: true, force: true });

    // The ringkv image, built as the compose file says (context and Dockerfile), tagged as it names it.
    const build = file.services.find((s) => s.build)!;
    ringkvImage = `localhost/${build.image}`;
    const secret = existsSync(caBundle) ? ['--secret', `id=npm-ca,src=${caBundle}`] : [];
    await podman(
      ['build', '--format', 'docker', '--build-arg', `BASE=${baseImage}`, ...secret, '-f', path.join(build.build!.context, build.build!.dockerfile), '-t', ringkvImage, build.build!.context],
      { timeoutMs: buildTimeoutMs },
    );

    const images: Record<string, string> = {};
    for (const s of natsServices) images[s] = natsImage;
    for (const s of nodes) images[s] = ringkvImage;
    project = await composeProject(file, { project: `ringkv-test-${process.pid}`, images });
    await project.down();
    try {
      await project.up();
      for (const n of nodes) await project.waitHealthy(n, healthyTimeoutMs);
    } catch (err) {
      for (const s of file.services) console.error(`--- ${s.name}\n${await project.logs(s.name)}`);
      throw err;
    }
  }, buildTimeoutMs + 5 * 60_000);

  afterAll(async () => {
    await client?.close();
    if (project) await project.down();
  }, 120_000);

  it('the image runs as a non-root user, keeps data in a volume and checks /readyz', async () => {
    const inspect = JSON.parse(await podman(['image', 'inspect', ringkvImage]))[0];
    const config = inspect.Config ?? {};
    expect(config.User).toBe('10001:10001');
    expect(Object.keys(config.Volumes ?? {})).toContain('/data');
    expect(inspect.Healthcheck?.Test).toEqual(['CMD', 'node', '/app/infra/healthcheck.mjs']);
    const id = (await podman(['exec', project.containerName(nodes[0]!), 'id', '-u'])).trim();
    expect(id).toBe('10001');
  });

  it('metrics and health answer from outside the containers on the published ports', async () => {
    const httpPorts = file.services.filter((s) => nodes.includes(s.name)).map((s) => s.ports.find(([, c]) => c === 8080)![0]);
    expect(httpPorts).toHaveLength(nodes.length);
    for (const p of httpPorts) {
      const ready = await fetch(`http://127.0.0.1:${project.hostPort(p)}/readyz`);
      expect(ready.status).toBe(200);
      const metrics = await fetch(`http://127.0.0.1:${project.hostPort(p)}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^ringkv_/m);
    }
  });

  it("the nodes' restart policy brings back a failed process but not one that exited 0, as a graceful stop does", async () => {
    const policy = file.services.find((s) => s.name === nodes[0])!.restart;
    expect(policy).toBe('on-failure');
    // A graceful stop (SIGTERM) exits 0: `--version` exits 0 the same way; a usage error exits 2, as a
    // crash exits non-zero. A node that left exits 11 (exitCodes.nodeLeft), which on-failure restarts
    // with back-off: compose cannot exclude one status (README, "Stopping a node").
    const left = `${project.project}-policy-left`;
    const failed = `${project.project}-policy-failed`;
    try {
      await podman(['run', '-d', '--name', left, '--restart', policy!, ringkvImage, '--version']);
      await podman(['run', '-d', '--name', failed, '--restart', policy!, ringkvImage, 'node', '--no-such-flag']);
      const deadline = Date.now() + 30_000;
      let failedRestarts = 0;
      while (failedRestarts === 0 && Date.now() < deadline) {
        await sleep(1_000);
        failedRestarts = JSON.parse(await podman(['inspect', failed]))[0].RestartCount ?? 0;
      }
      expect(failedRestarts).toBeGreaterThan(0);
      const l = JSON.parse(await podman(['inspect', left]))[0];
      expect(l.State.Running).toBe(false);
      expect(l.State.ExitCode).toBe(0);
      expect(l.RestartCount ?? 0).toBe(0);
    } finally {
      await podman(['rm', '-f', '-v', '-t', '0', left, failed]).catch(() => undefined);
    }
  }, 60_000);

  it('every acknowledged write survives a node container killed mid-run, and on-failure restarts it', async () => {
    const natsPort = file.services.find((s) => s.ports.some(([, c]) => c === 4222))!.ports.find(([, c]) => c === 4222)![0];
    client = await RingkvClient.connect({ servers: `nats://127.0.0.1:${project.hostPort(natsPort)}`, cluster: 'ringkv', timeoutMs: 3_000 });
    for (let attempt = 0; ; attempt++) {
      const outcome = await client.put('probe', text.encode('p'), { w: 3 }).then(() => 'ok', (e: Error) => e.message);
      if (outcome === 'ok') break;
      if (attempt > 100) throw new Error(`the cluster does not serve through the published port: ${outcome}`);
      await sleep(300);
    }

    const victim = nodes[1]!;
    const acked = new Map<string, string>();
    let attempted = 0;
    let running = true;
    const writer = async (w: number) => {
      for (let i = 0; running; i++) {
        const key = `w${w}-${i}`;
        const value = `v-${w}-${i}`;
        attempted++;
        try {
          await client!.put(key, text.encode(value));
          acked.set(key, value);
        } catch {
          // TIMEOUT or UNAVAILABLE: the outcome is unknown, so the key is not counted as acknowledged.
        }
      }
    };
    const writers = Array.from({ length: writersCount }, (_, w) => writer(w));

    await sleep(3_000);
    const before = acked.size;
    const state = JSON.parse(await podman(['inspect', project.containerName(victim)]))[0].State;
    // SIGKILL of the container's first process takes the whole PID namespace with it: a crash.
    process.kill(state.Pid as number, 'SIGKILL');

    const deadline = Date.now() + restartTimeoutMs;
    let restarts = 0;
    for (;;) {
      const s = JSON.parse(await podman(['inspect', project.containerName(victim)]))[0];
      restarts = s.RestartCount ?? 0;
      if (restarts > 0 && s.State.Running) break;
      if (Date.now() > deadline) throw new Error(`${victim} was not restarted by its restart policy (${s.State.Status}, exit ${s.State.ExitCode})`);
      await sleep(500);
    }
    await project.waitHealthy(victim, healthyTimeoutMs);
    await sleep(3_000);
    running = false;
    await Promise.all(writers);

    expect(restarts).toBeGreaterThan(0);
    expect(before).toBeGreaterThan(0);
    expect(acked.size).toBeGreaterThan(before);
    console.log(`containers: ${acked.size} of ${attempted} writes acknowledged across the kill and restart of ${victim}'s container`);

    const missing: string[] = [];
    for (const [key, value] of acked) {
      const got = await client.get(key);
      if (!got.values.map((v) => untext.decode(v)).includes(value)) missing.push(key);
    }
    expect(missing).toEqual([]);
  }, 240_000);
});
