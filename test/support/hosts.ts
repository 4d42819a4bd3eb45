/**
 * Test support: several "hosts" on one machine (issue 20). Each host is a Linux network namespace
 * with one veth into a bridge of its own run, one nats-server listening on its address, and the
 * servers joined into one NATS cluster by explicit routes. A ringkv node per host connects only to
 * its own host's server (`nodeLauncher` runs it inside the namespace), so node-to-node traffic
 * crosses the routes between servers, as it does between machines.
 *
 * Faults are made between hosts, on the receiving side: an nft table in each namespace drops what
 * arrives from the hosts it is cut from (`cut` is one way, `partition` both ways between groups,
 * `isolate` one host from all others) or a share of it (`loss`). The test process itself sits on the
 * bridge (`clientAddress`) and is never cut: a client connected to host K's server stands for a
 * client on host K, which keeps reaching its own server whatever the network between hosts does.
 * A host's nats-server can be killed, restarted, paused and resumed.
 *
 * Facts this relies on (measured here, issue 20): with `ping_interval 2s` and `ping_max 2` a cut
 * route is noticed after 4-11 s and comes back about 1 s after healing; publishing into a cut gives
 * the publisher no error; `no_advertise` keeps a node whose server dies from reconnecting to another
 * host's server (a node belongs to its host).
 *
 * Needs root, `ip` (iproute2) and `nft`; `hostsUnavailable()` says why not, for `describe.skipIf`.
 * Names carry the test process's pid, so parallel runs never collide and `createHosts` removes
 * namespaces that a killed earlier run left behind.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { accepts } from '../../src/bench/free-port.js';
import { natsServerBinary, tempDir } from './nats-server.js';

export interface Host {
  /** h1, h2, ... */
  id: string;
  /** The network namespace. */
  ns: string;
  ip: string;
  /** Where this host's clients and its ringkv node connect. */
  natsUrl: string;
}

export interface Hosts {
  hosts: Host[];
  /** The test process's address on the bridge (never cut). */
  clientAddress: string;
  host(id: string): Host;
  /** The command prefix that runs a program inside the host's namespace (see ClusterOptions.launcher). */
  nodeLauncher(id: string): string[];
  /** Hosts in `to` drop everything that arrives from hosts in `from` (a one-way cut). */
  cut(from: string[], to: string[]): void;
  /** No traffic between any two hosts of different groups; hosts in no group are left as they are. */
  partition(groups: string[][]): void;
  /** The host reaches no other host and no other host reaches it. */
  isolate(id: string): void;
  /** The host drops this share (0-100) of what other hosts send it. */
  loss(id: string, percent: number): void;
  /** Removes every cut and every loss. */
  heal(): void;
  /** Kills the host's nats-server (SIGKILL) and waits for it to exit. */
  killNats(id: string): Promise<void>;
  /** Starts the host's nats-server again (it rejoins the NATS cluster by its routes). */
  startNats(id: string): Promise<void>;
  pauseNats(id: string): void;
  resumeNats(id: string): void;
  /** Stops every server and removes the namespaces, the bridge and the files. */
  destroy(): Promise<void>;
}

const prefix = 'rkv';
const natsPort = 4222;
const routePort = 6222;
const startTimeoutMs = 10_000;

/** Why this machine cannot make hosts, or undefined when it can. */
export function hostsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root, as CI does)';
  for (const tool of ['ip', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool} || test -x /sbin/${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  // Making a namespace is the only sure test (a container may forbid it even to root).
  const probe = `${prefix}probe${process.pid}`;
  const made = spawnSync(ipBin(), ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `cannot create a network namespace: ${made.stderr.trim()}`;
  spawnSync(ipBin(), ['netns', 'del', probe]);
  return undefined;
}

function ipBin(): string {
  return existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : existsSync('/sbin/ip') ? '/sbin/ip' : 'ip';
}

function nftBin(): string {
  return existsSync('/usr/sbin/nft') ? '/usr/sbin/nft' : existsSync('/sbin/nft') ? '/sbin/nft' : 'nft';
}

function run(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status)}): ${r.stderr.trim()}`);
}

const ip = (...args: string[]) => run(ipBin(), args);
const inNs = (ns: string, cmd: string, args: string[], input?: string) => run(ipBin(), ['netns', 'exec', ns, cmd, ...args], input);

/** Namespaces and bridges of earlier runs whose process is gone. */
function removeLeftovers(): void {
  const list = spawnSync(ipBin(), ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${prefix}(\\d+)h\\d+)`).exec(line.trim());
    if (m && !alive(Number(m[2]))) spawnSync(ipBin(), ['netns', 'del', m[1]!]);
  }
  const links = spawnSync(ipBin(), ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of links.split('\n')) {
    const m = new RegExp(`^\\d+: (${prefix}(\\d+)(?:br|h\\d+))[@:]`).exec(line);
    if (m && !alive(Number(m[2]))) spawnSync(ipBin(), ['link', 'del', m[1]!]);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** A /24 of 10.0.0.0/8 picked by the pid, so parallel runs use different subnets. */
function subnetOf(pid: number): string {
  return `10.${100 + ((pid >> 8) % 150)}.${pid % 256}`;
}

export async function createHosts(opts: { hosts: number; natsCluster?: string }): Promise<Hosts> {
  removeLeftovers();
  const pid = process.pid;
  const subnet = subnetOf(pid);
  const bridge = `${prefix}${pid}br`;
  const dir = tempDir('ringkv-hosts-');
  const natsCluster = opts.natsCluster ?? `ringkv-hosts-${pid}`;
  const hosts: Host[] = Array.from({ length: opts.hosts }, (_, i) => {
    const hostIp = `${subnet}.${i + 1}`;
    return { id: `h${i + 1}`, ns: `${prefix}${pid}h${i + 1}`, ip: hostIp, natsUrl: `nats://${hostIp}:${natsPort}` };
  });
  const clientAddress = `${subnet}.254`;
  const servers = new Map<string, { child: ChildProcess; exited: Promise<void> }>();
  /** Per receiving host: the hosts it drops, and its loss percentage. */
  const drops = new Map<string, Set<string>>(hosts.map((h) => [h.id, new Set<string>()]));
  const losses = new Map<string, number>();

  const byId = (id: string): Host => {
    const h = hosts.find((x) => x.id === id);
    if (!h) throw new Error(`no host ${id} (hosts: ${hosts.map((x) => x.id).join(', ')})`);
    return h;
  };

  const teardownNetwork = () => {
    for (const h of hosts) spawnSync(ipBin(), ['netns', 'del', h.ns]);
    spawnSync(ipBin(), ['link', 'del', bridge]);
  };

  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${clientAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (const [i, h] of hosts.entries()) {
      const outside = `${prefix}${pid}h${i + 1}`;
      ip('netns', 'add', h.ns);
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      ip('link', 'set', outside, 'master', bridge);
      ip('link', 'set', outside, 'up');
      inNs(h.ns, ipBin(), ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      inNs(h.ns, ipBin(), ['link', 'set', 'eth0', 'up']);
      inNs(h.ns, ipBin(), ['link', 'set', 'lo', 'up']);
      // The fault table: rules are replaced as a whole by applyRules.
      inNs(h.ns, nftBin(), ['-f', '-'], `table inet ringkv_faults {\n  chain input { type filter hook input priority 0; policy accept; }\n}\n`);
    }
  } catch (err) {
    teardownNetwork();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const applyRules = (id: string) => {
    const h = byId(id);
    const dropped = [...(drops.get(id) ?? [])].map((x) => byId(x).ip);
    const others = hosts.filter((x) => x.id !== id).map((x) => x.ip);
    const percent = losses.get(id) ?? 0;
    const rules = [
      'flush chain inet ringkv_faults input',
      ...(dropped.length > 0 ? [`add rule inet ringkv_faults input ip saddr { ${dropped.join(', ')} } drop`] : []),
      ...(percent > 0 ? [`add rule inet ringkv_faults input ip saddr { ${others.join(', ')} } numgen random mod 100 < ${percent} drop`] : []),
    ];
    inNs(h.ns, nftBin(), ['-f', '-'], rules.join('\n') + '\n');
  };

  const configOf = (h: Host): string => {
    const routes = hosts.filter((x) => x.id !== h.id).map((x) => `nats://${x.ip}:${routePort}`);
    const file = path.join(dir, `${h.id}.conf`);
    writeFileSync(
      file,
      [
        `server_name: ${h.id}`,
        `listen: "${h.ip}:${natsPort}"`,
        'max_payload: 8MB',
        // A cut route is noticed within seconds, not minutes (nats-server's defaults are 2 min x 2).
        'ping_interval: "2s"',
        'ping_max: 2',
        'cluster {',
        `  name: ${natsCluster}`,
        `  listen: "${h.ip}:${routePort}"`,
        `  routes: [${routes.map((r) => `"${r}"`).join(', ')}]`,
        // A node belongs to its host: it must not learn other hosts' client URLs and move there.
        '  no_advertise: true',
        '}',
        '',
      ].join('\n'),
    );
    return file;
  };

  const startNats = async (id: string) => {
    const h = byId(id);
    const old = servers.get(id);
    if (old && old.child.exitCode === null && old.child.signalCode === null) return;
    mkdirSync(dir, { recursive: true });
    const child = spawn(ipBin(), ['netns', 'exec', h.ns, natsServerBinary(), '-c', configOf(h)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      stderr = (stderr + c).slice(-4000);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    servers.set(id, { child, exited });
    const deadline = Date.now() + startTimeoutMs;
    while (!(await accepts(natsPort, h.ip))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server of ${id} did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const killNats = async (id: string) => {
    const s = servers.get(id);
    if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
    s.child.kill('SIGCONT');
    s.child.kill('SIGKILL');
    await s.exited;
  };

  const all = hosts.map((h) => h.id);
  const result: Hosts = {
    hosts,
    clientAddress,
    host: byId,
    nodeLauncher: (id) => [ipBin(), 'netns', 'exec', byId(id).ns],
    cut(from, to) {
      for (const t of to) {
        for (const f of from) if (f !== t) drops.get(t)!.add(f);
        applyRules(t);
      }
    },
    partition(groups) {
      for (const [gi, g] of groups.entries()) {
        const others = groups.filter((_, j) => j !== gi).flat();
        result.cut(others, g);
      }
    },
    isolate(id) {
      result.cut(all.filter((x) => x !== id), [id]);
      result.cut([id], all.filter((x) => x !== id));
    },
    loss(id, percent) {
      losses.set(id, percent);
      applyRules(id);
    },
    heal() {
      for (const id of all) {
        drops.get(id)!.clear();
        losses.delete(id);
        applyRules(id);
      }
    },
    killNats,
    startNats,
    pauseNats(id) {
      servers.get(id)?.child.kill('SIGSTOP');
    },
    resumeNats(id) {
      servers.get(id)?.child.kill('SIGCONT');
    },
    async destroy() {
      await Promise.all(all.map(killNats));
      teardownNetwork();
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    // Start in order: each later server finds the earlier ones' route ports open.
    for (const h of hosts) await startNats(h.id);
  } catch (err) {
    await result.destroy();
    throw err;
  }
  process.once('exit', () => {
    for (const s of servers.values()) s.child.kill('SIGKILL');
    teardownNetwork();
  });
  return result;
}
