/**
 * Keeps a local cluster's chatter out of the bench's output. The local cluster launcher (up())
 * copies every line its nodes and nats-server print onto this process's stdout and stderr, which
 * would break `--json` and scribble over the progress bar. While a diversion is in place, whatever
 * is written through process.stdout.write or process.stderr.write goes to a log file instead; the
 * bench itself writes through the original functions, which it takes (with `originalWriters`)
 * before any diversion starts.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export interface Writers {
  out: (text: string) => void;
  err: (text: string) => void;
}

type WriteFn = typeof process.stdout.write;

/** The process's own stdout and stderr writers, unaffected by any later diversion. */
export function originalWriters(): Writers {
  const out = process.stdout.write.bind(process.stdout) as WriteFn;
  const err = process.stderr.write.bind(process.stderr) as WriteFn;
  return { out: (text) => void out(text), err: (text) => void err(text) };
}

export interface Diversion {
  logPath: string;
  /** Puts the original writers back and closes the log file. Idempotent. */
  restore(): Promise<void>;
}

/** Sends process.stdout and process.stderr writes to `logPath` until restore(). */
export function divertProcessOutput(logPath: string): Diversion {
  const log: WriteStream = createWriteStream(logPath, { flags: 'a' });
  log.on('error', () => undefined);
  const saved = { out: process.stdout.write, err: process.stderr.write };
  const toLog = function (this: unknown, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const cb = typeof encoding === 'function' ? encoding : callback;
    if (!log.destroyed && !log.writableEnded) log.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array));
    if (typeof cb === 'function') queueMicrotask(() => (cb as () => void)());
    return true;
  } as WriteFn;
  process.stdout.write = toLog;
  process.stderr.write = toLog;
  let restored: Promise<void> | undefined;
  return {
    logPath,
    restore() {
      restored ??= new Promise<void>((resolve) => {
        // Only undo our own diversion: someone may have wrapped the writers after us.
        if (process.stdout.write === toLog) process.stdout.write = saved.out;
        if (process.stderr.write === toLog) process.stderr.write = saved.err;
        log.end(() => resolve());
      });
      return restored;
    },
  };
}
