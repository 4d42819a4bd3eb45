/**
 * Warnings and errors rate-limited per message (issue 28, item 5): what a node logs at warn or error
 * because of something that arrived (a client's puts to a key with many siblings, a peer's refused
 * versions, a corrupt object read again and again, a failing store) could otherwise be written once
 * per message, and a client could fill the disk or drown the log. Each distinct message text is
 * written at most once per `logEveryMs`; the lines held back meanwhile are counted, and the next line
 * written says how many it stood for (`suppressedSinceLastLine`), as the member gate's warnings do.
 * debug and info pass unchanged: they are not written per inbound message.
 *
 * The limiter is shared by the log and every child made from it, so one node's warnings share one
 * budget per message text, whatever the child fields.
 */
import type { Log, LogFields } from '../ports/log.js';

/** At most one line per message text and level this often. */
export const logEveryMs = 10_000;
/** Message texts remembered at most; beyond, the oldest windows are forgotten (a new text then logs at once). */
export const limitedMessagesMax = 1024;

interface Window {
  lastAtMs: number;
  suppressed: number;
}

export function rateLimitedLog(log: Log, now: () => number, everyMs = logEveryMs): Log {
  return wrap(log, now, everyMs, new Map<string, Window>());
}

function wrap(log: Log, now: () => number, everyMs: number, windows: Map<string, Window>): Log {
  const limited = (level: 'warn' | 'error') => (msg: string, fields?: LogFields) => {
    const key = `${level}\u0000${msg}`;
    const t = now();
    const w = windows.get(key);
    if (w !== undefined && t - w.lastAtMs < everyMs) {
      w.suppressed++;
      return;
    }
    const suppressed = w?.suppressed ?? 0;
    if (w === undefined) {
      if (windows.size >= limitedMessagesMax) windows.delete(windows.keys().next().value!);
      windows.set(key, { lastAtMs: t, suppressed: 0 });
    } else {
      w.lastAtMs = t;
      w.suppressed = 0;
    }
    log[level](msg, suppressed > 0 ? { ...fields, suppressedSinceLastLine: suppressed } : fields);
  };
  return {
    debug: (msg, fields) => log.debug(msg, fields),
    info: (msg, fields) => log.info(msg, fields),
    warn: limited('warn'),
    error: limited('error'),
    child: (fields) => wrap(log.child(fields), now, everyMs, windows),
  };
}
