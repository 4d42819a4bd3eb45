/**
 * The installable package (issue 19, item 1), tried as a new user would: this checkout's files are
 * copied to a clean directory (tracked and new files, no dist/), `npm pack` there builds through
 * prepack, the tarball is installed into an empty project with `npm install <tarball>`, a small
 * TypeScript program that imports 'ringkv' and 'ringkv/admin' is type-checked against the installed
 * declarations and run against a real cluster whose nodes are the installed package's own
 * `ringkv node`, and the installed `ringkv up` starts a cluster the program works against too.
 *
 * The tarball must ship what a user needs and nothing else: no tests, no TypeScript sources, no
 * source maps, no in-process micro-benchmarks; @nats-io/kv (only the bench's nats-kv target needs it)
 * is not installed with it, and the bench says what to install when it is asked for that target.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/bench/free-port.js';
import { type Cluster, printNodeOutputOnFailure, repoRoot, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const run = promisify(execFile);
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
/** Packing builds with tsc and the type checks run tsc: minutes on a busy two-core machine. */
const slowMs = 420_000;

let work: string;
let project: string;
let tarball: string;
let packedFiles: string[];
let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;

/** The program a user would write: every line of it goes through the installed package. */
const program = `
import { RingkvClient, RingkvError, errorCodes, type ClientOptions, type ErrorCode, type GetResult } from 'ringkv';
import { ClusterAdmin, type ApiClusterOk, type ApiHintsOk } from 'ringkv/admin';

const options: ClientOptions = { servers: process.env.NATS_URL!, cluster: process.env.RINGKV_CLUSTER!, timeoutMs: 5000 };
const client = await RingkvClient.connect(options);
const admin = await ClusterAdmin.connect(options);
const text = new TextEncoder();
const untext = new TextDecoder();
const out: Record<string, unknown> = {};

await client.put('pkg:cart', text.encode('apple'));
const first: GetResult = await client.get('pkg:cart');
out.first = first.values.map((v) => untext.decode(v));
await client.put('pkg:cart', text.encode('pear'), { context: first.context });
out.second = (await client.get('pkg:cart')).values.map((v) => untext.decode(v));
await client.delete('pkg:cart', { context: (await client.get('pkg:cart')).context });
out.deleted = (await client.get('pkg:cart')).found;
try {
  await client.put(new Uint8Array(0), text.encode('x'));
  out.emptyKey = 'accepted';
} catch (err) {
  const code: ErrorCode | string = err instanceof RingkvError ? err.code : String(err);
  out.emptyKey = code;
}
out.knowsCodes = errorCodes.includes('UNAVAILABLE');
out.members = (await admin.status()).members.map((m) => m.nodeId).sort();
// What one node is doing is the admin's to ask ('ringkv' has no hints, transfers, aae or backup).
const hints: ApiHintsOk = await admin.hints({ via: (out.members as string[])[0]! });
out.hintsFrom = hints.nodeId;
const plan: ApiClusterOk | string = await admin.plan().catch((err: unknown) => (err instanceof RingkvError ? err.code : String(err)));
out.plan = typeof plan === 'string' ? plan : plan.changes.length;
await admin.close();
await client.close();
process.stdout.write(JSON.stringify(out));
`;

/** Must not type-check: proves the declarations are real types, not a silent any. */
const wrongProgram = `
import { RingkvClient } from 'ringkv';
const client = await RingkvClient.connect({});
await client.put('k', 'a string is not bytes');
await client.hints({ via: 'n1' });
`;

/** Must not resolve: the package's exports fence off its internals. */
const internalProgram = `
import { createNode } from 'ringkv/dist/src/runtime/create-node.js';
console.log(createNode);
`;

const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    // The package's own declarations and those it imports are checked too.
    skipLibCheck: false,
    typeRoots: [path.join(repoRoot, 'node_modules', '@types')],
    types: ['node'],
    outDir: 'out',
  },
};

function copyCheckout(to: string): Promise<void> {
  return run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, maxBuffer: 64 << 20 }).then(({ stdout }) => {
    for (const file of stdout.split('\0')) {
      if (file === '' || !existsSync(path.join(repoRoot, file))) continue; // deleted in the work tree
      mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
      copyFileSync(path.join(repoRoot, file), path.join(to, file));
    }
    // The build needs the dev dependencies; the checkout's own are linked rather than installed again.
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(to, 'node_modules'), 'dir');
  });
}

/**
 * Type-checks (and compiles) the sources in `dir`. The program a user runs is checked with
 * skipLibCheck off, so the package's declarations are checked too; the programs that must fail only
 * need to fail, and skip that (tsc is slow on a shared machine).
 */
async function typeCheck(dir: string, sources: Record<string, string>, opts: { skipLibCheck?: boolean } = {}): Promise<{ code: number; output: string }> {
  mkdirSync(dir, { recursive: true });
  for (const [name, source] of Object.entries(sources)) writeFileSync(path.join(dir, name), source);
  const compilerOptions = { ...tsconfig.compilerOptions, skipLibCheck: opts.skipLibCheck ?? false };
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: Object.keys(sources) }, null, 2));
  try {
    const { stdout } = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir });
    return { code: 0, output: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function runProgram(natsUrl: string, clusterName: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [path.join(project, 'out', 'main.js')], {
    cwd: project,
    env: { ...process.env, NATS_URL: natsUrl, RINGKV_CLUSTER: clusterName },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

const installedBin = () => path.join(project, 'node_modules', 'ringkv', 'bin', 'ringkv.js');

beforeAll(async () => {
  work = tempDir('ringkv-package-');
  const checkout = path.join(work, 'checkout');
  await copyCheckout(checkout);
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: checkout, maxBuffer: 64 << 20, timeout: 200_000 });
  // prepack's tsc writes to stdout before npm's JSON; the JSON is the last thing printed.
  const json = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[\n'))) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, json[0]!.filename);
  packedFiles = json[0]!.files.map((f) => f.path);

  project = path.join(work, 'project');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'ringkv-user', version: '1.0.0', private: true, type: 'module' }, null, 2));
  await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project, timeout: 200_000 });
}, slowMs);

afterAll(async () => {
  await cluster?.stopAll();
  await nats?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('ships the compiled library with declarations, the bin and the protocol document, and nothing a user does not need', () => {
    for (const file of ['package.json', 'README.md', 'docs/protocol.md', 'bin/ringkv.js', 'infra/nats-server.conf', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/admin-index.js', 'dist/src/admin-index.d.ts', 'dist/src/cli/main.js', 'dist/actors/node.machine.js']) {
      expect(packedFiles, file).toContain(file);
    }
    const unwanted = packedFiles.filter(
      (f) => f.startsWith('test/') || f.startsWith('src/') || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || /(store-bench|hop-cost|inspect-bench|request-cost-bench)\./.test(f) || f.startsWith('.ci/'),
    );
    expect(unwanted).toEqual([]);
  });

  it('installs without the bench-only dependency @nats-io/kv', () => {
    expect(existsSync(path.join(project, 'node_modules', 'ringkv', 'dist', 'src', 'index.js'))).toBe(true);
    expect(existsSync(path.join(project, 'node_modules', '@nats-io', 'kv'))).toBe(false);
    const manifest = JSON.parse(readFileSync(path.join(project, 'node_modules', 'ringkv', 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(Object.keys(manifest.dependencies!)).not.toContain('@nats-io/kv');
  });

  it('type-checks a program that imports ringkv and ringkv/admin, and refuses a wrong one and an internal import', async () => {
    const good = await typeCheck(project, { 'main.ts': program });
    expect(good.output).toBe('');
    expect(good.code).toBe(0);
    // Inside the project, so that 'ringkv' resolves to the installed package as for main.ts.
    const bad = await typeCheck(path.join(project, 'bad'), { 'wrong.ts': wrongProgram, 'internal.ts': internalProgram }, { skipLibCheck: true });
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/wrong\.ts.*TS2345: Argument of type 'string' is not assignable to parameter of type 'Uint8Array/);
    // The admin operations are ClusterAdmin's ('ringkv/admin'), not the client's.
    expect(bad.output).toMatch(/wrong\.ts.*TS2339: Property 'hints' does not exist on type 'RingkvClient'/);
    expect(bad.output).toMatch(/internal\.ts.*TS2307: Cannot find module 'ringkv\/dist\/src\/runtime\/create-node\.js'/);
  }, slowMs);
});

describe('the installed package against a real cluster', () => {
  printNodeOutputOnFailure(() => cluster);

  it('runs the program against nodes started with the installed `ringkv node`', async () => {
    nats = await startNatsServer();
    cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot: path.join(work, 'data'), cluster: 'pkgtest', bin: installedBin() });
    const out = await runProgram(nats.url, 'pkgtest');
    expect(out).toEqual({ first: ['apple'], second: ['pear'], deleted: false, emptyKey: 'BAD_REQUEST', knowsCodes: true, members: ['n1', 'n2', 'n3'], hintsFrom: 'n1', plan: 'NO_CHANGES' });
    await cluster.stopAll();
    cluster = undefined;
    await nats.stop();
    nats = undefined;
  }, slowMs);

  it('starts a local cluster with the installed `ringkv up`, which the program works against', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const child: ChildProcess = spawn(process.execPath, [installedBin(), '--server', url, '--cluster', 'pkgup', 'up', '--nodes', '3', '--partitions', '16', '--http-port-base', '0', '--data', path.join(work, 'up-data')], {
      cwd: project,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`ringkv up did not show three nodes serving within 60 s:\n${output}`)), 60_000);
        const onData = (chunk: Buffer) => {
          output += chunk.toString('utf8');
          // `up` passes on each node's log lines, prefixed with the node's name.
          if ((output.match(/node serving/g) ?? []).length >= 3) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        void exited.then((code) => reject(new Error(`ringkv up exited (${String(code)}) early:\n${output}`)));
      });
      const out = await runProgram(url, 'pkgup');
      expect(out.second).toEqual(['pear']);
      expect(out.members).toEqual(['n1', 'n2', 'n3']);
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  }, slowMs);

  it('says what to install when the bench is asked for the nats-kv target', async () => {
    const result = await run(process.execPath, [installedBin(), 'bench', '--target', 'nats-kv', '--duration', '1000'], { cwd: project }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code?: number; stderr?: string }) => ({ code: err.code ?? 1, stderr: err.stderr ?? '' }),
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/npm install @nats-io\/kv@\^3\.4\.0/);
  }, slowMs);
});
