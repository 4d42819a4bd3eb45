/**
 * Test support: runs a compose file (infra/compose.yaml) with plain podman, so the file the container
 * test exercises is the file that ships, without podman-compose or docker.
 *
 * It reads the file with the `yaml` package (merge keys `<<:` resolved, as compose does) and turns
 * every service into one `podman run` on one podman network, with the service name as its DNS alias.
 * It understands the compose keys infra/compose.yaml uses and refuses any other, so a key added to the
 * file cannot be silently ignored by the test: image, build (read by the test, which builds the
 * image), command, environment, ports, volumes, healthcheck, restart, init, stop_grace_period and
 * depends_on (service_started or service_healthy).
 *
 * What differs from `docker compose up`, on purpose:
 * - published ports bind to 127.0.0.1 only, and each host port is replaced by a free one (the test
 *   must not take 4222 or 8081 from a developer's cluster); `hostPort()` says which;
 * - names (containers, network, volumes) carry the project name given, so runs never collide;
 * - an image may be replaced per service (`images`), since no registry is reachable here;
 * - podman runs no healthcheck timers without systemd, so health is asked with `podman healthcheck
 *   run`, which runs the container's own healthcheck command once.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { freePort } from '../../src/bench/free-port.js';

const execFileAsync = promisify(execFile);

/** Every podman command names the runtime: crun does not work on these machines, runc does. */
export const podmanRuntimeArgs = ['--runtime', 'runc'];
/** How long one podman command may take (a build is run elsewhere). */
const podmanCommandTimeoutMs = 120_000;
const healthPollMs = 1_000;

const serviceKeys = new Set([
  'image', 'build', 'command', 'environment', 'ports', 'volumes', 'healthcheck', 'restart', 'init', 'stop_grace_period', 'depends_on',
]);
const topKeys = new Set(['name', 'services', 'volumes']);

export interface ComposeService {
  name: string;
  image: string;
  build?: { context: string; dockerfile: string };
  command: string[];
  environment: Record<string, string>;
  /** [host port, container port] pairs. */
  ports: Array<[number, number]>;
  /** Named volumes and bind mounts, as [source, target, mode?]; bind sources are absolute paths. */
  volumes: Array<{ source: string; target: string; named: boolean; mode?: string }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number; startPeriod?: string };
  restart?: string;
  init: boolean;
  stopGraceSeconds?: number;
  dependsOn: Array<{ service: string; condition: 'service_started' | 'service_healthy' }>;
}

export interface ComposeFile {
  name: string;
  dir: string;
  services: ComposeService[];
  volumes: string[];
}

class ComposeError extends Error {}

function fail(what: string): never {
  throw new ComposeError(`compose file: ${what}`);
}

function stringList(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(`${where} must be a list of strings`);
  return v as string[];
}

function seconds(duration: string, where: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(duration);
  if (!m) fail(`${where}: a duration like 10s, got ${duration}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

/** Reads and checks a compose file. */
export function loadCompose(file: string): ComposeFile {
  const doc = parse(readFileSync(file, 'utf8'), { merge: true }) as Record<string, unknown>;
  const dir = path.dirname(path.resolve(file));
  for (const k of Object.keys(doc)) if (!topKeys.has(k) && !k.startsWith('x-')) fail(`top-level key ${k} is not supported`);
  if (typeof doc.name !== 'string') fail('name is required');
  const volumes = Object.keys((doc.volumes as Record<string, unknown> | null | undefined) ?? {});
  const services: ComposeService[] = [];
  for (const [name, raw] of Object.entries((doc.services ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const k of Object.keys(raw)) if (!serviceKeys.has(k)) fail(`service ${name}: key ${k} is not supported`);
    if (typeof raw.image !== 'string') fail(`service ${name}: image is required`);
    const build = raw.build as { context?: string; dockerfile?: string } | undefined;
    const env = raw.environment ?? {};
    const environment: Record<string, string> = {};
    if (Array.isArray(env)) {
      for (const e of stringList(env, `service ${name}: environment`)) {
        const i = e.indexOf('=');
        environment[i < 0 ? e : e.slice(0, i)] = i < 0 ? '' : e.slice(i + 1);
      }
    } else {
      for (const [k, v] of Object.entries(env as Record<string, unknown>)) environment[k] = String(v);
    }
    const ports = stringList(raw.ports ?? [], `service ${name}: ports`).map((p): [number, number] => {
      const m = /^(\d+):(\d+)$/.exec(p);
      if (!m) fail(`service ${name}: port ${p} is not HOST:CONTAINER`);
      return [Number(m[1]), Number(m[2])];
    });
    const vols = stringList(raw.volumes ?? [], `service ${name}: volumes`).map((v) => {
      const [source, target, mode, ...rest] = v.split(':');
      if (!source || !target || rest.length > 0) fail(`service ${name}: volume ${v} is not SOURCE:TARGET[:MODE]`);
      const bind = source.startsWith('.') || source.startsWith('/');
      if (!bind && !volumes.includes(source)) fail(`service ${name}: volume ${source} is not declared under volumes`);
      return { source: bind ? path.resolve(dir, source) : source, target, named: !bind, ...(mode ? { mode } : {}) };
    });
    const hc = raw.healthcheck as Record<string, unknown> | undefined;
    let healthcheck: ComposeService['healthcheck'];
    if (hc) {
      const test = stringList(hc.test, `service ${name}: healthcheck.test`);
      if (test[0] !== 'CMD') fail(`service ${name}: healthcheck.test must be exec form ["CMD", ...]`);
      healthcheck = {
        test: test.slice(1),
        ...(typeof hc.interval === 'string' ? { interval: hc.interval } : {}),
        ...(typeof hc.timeout === 'string' ? { timeout: hc.timeout } : {}),
        ...(typeof hc.retries === 'number' ? { retries: hc.retries } : {}),
        ...(typeof hc.start_period === 'string' ? { startPeriod: hc.start_period } : {}),
      };
    }
    const deps = raw.depends_on ?? {};
    const dependsOn = Array.isArray(deps)
      ? stringList(deps, `service ${name}: depends_on`).map((service) => ({ service, condition: 'service_started' as const }))
      : Object.entries(deps as Record<string, { condition?: string }>).map(([service, d]) => {
          const condition = d?.condition ?? 'service_started';
          if (condition !== 'service_started' && condition !== 'service_healthy') fail(`service ${name}: condition ${condition} is not supported`);
          return { service, condition: condition as ComposeService['dependsOn'][number]['condition'] };
        });
    services.push({
      name,
      image: raw.image,
      ...(build ? { build: { context: path.resolve(dir, build.context ?? '.'), dockerfile: build.dockerfile ?? 'Dockerfile' } } : {}),
      command: raw.command === undefined ? [] : stringList(raw.command, `service ${name}: command`),
      environment,
      ports,
      volumes: vols,
      ...(healthcheck ? { healthcheck } : {}),
      ...(typeof raw.restart === 'string' ? { restart: raw.restart } : {}),
      init: raw.init === true,
      ...(typeof raw.stop_grace_period === 'string' ? { stopGraceSeconds: seconds(raw.stop_grace_period, `service ${name}: stop_grace_period`) } : {}),
      dependsOn,
    });
  }
  for (const s of services) for (const d of s.dependsOn) if (!services.some((o) => o.name === d.service)) fail(`service ${s.name} depends on unknown ${d.service}`);
  return { name: doc.name, dir, services, volumes };
}

export async function podman(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await execFileAsync('podman', [...podmanRuntimeArgs, ...args], {
    timeout: opts.timeoutMs ?? podmanCommandTimeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Exit status of a podman command (0 = success), without throwing. */
export async function podmanStatus(args: string[]): Promise<number> {
  try {
    await podman(args);
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'number' ? code : 1;
  }
}

export interface ComposeProject {
  file: ComposeFile;
  project: string;
  network: string;
  containerName(service: string): string;
  /** The free host port that stands for the file's host port (bound on 127.0.0.1). */
  hostPort(filePort: number): number;
  /** Starts every service in dependency order, waiting for service_healthy where asked. */
  up(): Promise<void>;
  /** Resolves once the service's healthcheck passes. */
  waitHealthy(service: string, timeoutMs: number): Promise<void>;
  /** Removes every container, the network and the named volumes. */
  down(): Promise<void>;
  logs(service: string): Promise<string>;
  /** The `podman run` arguments of a service (for the report of a failure). */
  runArgs(service: string): string[];
}

export async function composeProject(
  file: ComposeFile,
  opts: { project: string; images?: Record<string, string> },
): Promise<ComposeProject> {
  const project = opts.project;
  const network = `${project}_default`;
  const ports = new Map<number, number>();
  for (const s of file.services) for (const [host] of s.ports) if (!ports.has(host)) ports.set(host, await freePort());
  const containerName = (service: string) => `${project}-${service}`;
  const volumeName = (v: string) => `${project}_${v}`;

  const runArgs = (service: string): string[] => {
    const s = file.services.find((x) => x.name === service);
    if (!s) throw new Error(`no service ${service}`);
    const args = ['run', '-d', '--name', containerName(s.name), '--network', network, '--network-alias', s.name, '--hostname', s.name];
    for (const [k, v] of Object.entries(s.environment)) args.push('-e', `${k}=${v}`);
    for (const [host, container] of s.ports) args.push('-p', `127.0.0.1:${ports.get(host)}:${container}`);
    for (const v of s.volumes) args.push('-v', `${v.named ? volumeName(v.source) : v.source}:${v.target}${v.mode ? `:${v.mode}` : ''}`);
    if (s.healthcheck) {
      const h = s.healthcheck;
      args.push('--health-cmd', JSON.stringify(h.test));
      if (h.interval) args.push('--health-interval', h.interval);
      if (h.timeout) args.push('--health-timeout', h.timeout);
      if (h.retries !== undefined) args.push('--health-retries', String(h.retries));
      if (h.startPeriod) args.push('--health-start-period', h.startPeriod);
    }
    if (s.restart) args.push('--restart', s.restart);
    if (s.init) args.push('--init');
    if (s.stopGraceSeconds !== undefined) args.push('--stop-timeout', String(Math.ceil(s.stopGraceSeconds)));
    args.push(opts.images?.[s.name] ?? s.image, ...s.command);
    return args;
  };

  const waitHealthy = async (service: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await podmanStatus(['healthcheck', 'run', containerName(service)])) === 0) return;
      if (Date.now() > deadline) throw new Error(`service ${service} is not healthy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, healthPollMs));
    }
  };

  const up = async () => {
    await podman(['network', 'create', network]);
    const started = new Set<string>();
    const start = async (s: ComposeService, seen: string[]): Promise<void> => {
      if (started.has(s.name)) return;
      if (seen.includes(s.name)) throw new Error(`compose file: depends_on cycle through ${s.name}`);
      for (const d of s.dependsOn) {
        await start(file.services.find((o) => o.name === d.service)!, [...seen, s.name]);
        if (d.condition === 'service_healthy') await waitHealthy(d.service, 60_000);
      }
      await podman(runArgs(s.name));
      started.add(s.name);
    };
    for (const s of file.services) await start(s, []);
  };

  const down = async () => {
    for (const s of file.services) await podmanStatus(['rm', '-f', '-v', '-t', '2', containerName(s.name)]);
    for (const v of file.volumes) await podmanStatus(['volume', 'rm', '-f', volumeName(v)]);
    await podmanStatus(['network', 'rm', '-f', network]);
  };

  const logs = async (service: string) => {
    try {
      const { stdout, stderr } = await execFileAsync('podman', [...podmanRuntimeArgs, 'logs', '--tail', '60', containerName(service)], { maxBuffer: 16 * 1024 * 1024 });
      return stdout + stderr;
    } catch (err) {
      return `(no logs: ${err instanceof Error ? err.message : String(err)})`;
    }
  };

  return {
    file,
    project,
    network,
    containerName,
    hostPort: (p) => {
      const mapped = ports.get(p);
      if (mapped === undefined) throw new Error(`the compose file publishes no host port ${p}`);
      return mapped;
    },
    up,
    waitHealthy,
    down,
    logs,
    runArgs,
  };
}
