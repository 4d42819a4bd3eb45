/**
 * `--stately-inspect` is free when off: @statelyai/inspect is imported by stately-inspector.ts
 * alone, and that module only dynamically, by node-process.ts when the flag is given. A static
 * import anywhere would load the library (and its WebSocket stack) into every node.
 *
 * Checked on the import graph of a real node process: a child process loads node-process.ts (the
 * code behind `ringkv node`) with a module hook that reports every module resolved; neither the
 * inspector module nor the library may be among them.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cluster.js';

describe('the Stately inspector when off', () => {
  it('is not loaded by the node process module', () => {
    const hooks = `data:text/javascript,${encodeURIComponent(
      "export async function resolve(s, c, next) { const r = await next(s, c); console.log('RESOLVED ' + r.url); return r; }",
    )}`;
    const nodeProcess = pathToFileURL(path.join(repoRoot, 'src', 'server', 'node-process.ts')).href;
    const script = `import { register } from 'node:module'; register(${JSON.stringify(hooks)}); await import('tsx/esm'); await import(${JSON.stringify(nodeProcess)});`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const resolved = r.stdout.split('\n').filter((l) => l.startsWith('RESOLVED '));
    // The check would pass vacuously if the hook saw nothing: it must have seen the node's modules.
    expect(resolved.some((l) => l.includes('/src/runtime/create-node.'))).toBe(true);
    expect(resolved.some((l) => l.includes('/node_modules/xstate/'))).toBe(true);
    expect(resolved.filter((l) => l.includes('stately-inspector') || l.includes('@statelyai'))).toEqual([]);
  });
});
