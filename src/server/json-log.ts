/**
 * The production Log: one JSON object per line on stdout, with the node id (and on the request
 * path the request id) in every line, so `ringkv up`'s merged output and log shippers can follow
 * one request across nodes. An Error in the fields is written with its type, message, stack, code
 * and cause chain (ports/log.ts errorAsData), not as the bare message String(err) gives.
 */
import { logFieldsAsData, type Log, type LogFields } from '../ports/log.js';

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof levels;

export function jsonLog(level: LogLevel = 'info', base: LogFields = {}, write: (line: string) => void = (l) => process.stdout.write(l)): Log {
  const min = levels[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (levels[lvl] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...logFieldsAsData(fields) }) + '\n');
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => jsonLog(level, { ...base, ...fields }, write),
  };
}
