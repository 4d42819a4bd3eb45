/**
 * The nats-kv bench target needs @nats-io/kv (JetStream KV), which nothing else in ringkv uses. It is
 * an optional peer dependency, so library users who install ringkv do not get it; the bench loads
 * the target only when asked for it and says what to install when the module is missing.
 */
import type { NatsKvTargetOptions } from './nats-kv-target.js';
import type { BenchTarget } from './target.js';

/** The range package.json names for the optional peer; said in the error so the install matches. */
export const natsKvRange = '^3.4.0';

export async function openNatsKvTargetIfInstalled(opts: NatsKvTargetOptions): Promise<BenchTarget> {
  let mod: typeof import('./nats-kv-target.js');
  try {
    mod = await import('./nats-kv-target.js');
  } catch (err) {
    if (isMissing(err, '@nats-io/kv')) {
      throw new Error(`--target nats-kv needs the package @nats-io/kv, which is not installed (ringkv leaves it out for library users): run npm install @nats-io/kv@${natsKvRange}`);
    }
    throw err;
  }
  return mod.openNatsKvTarget(opts);
}

function isMissing(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === 'ERR_MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${name}'`);
}
