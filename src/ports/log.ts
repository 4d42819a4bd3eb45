/**
 * Log: structured, one JSON object per line in production. Fields carry the node id and, on the
 * request path, the request id, so one request can be followed across nodes.
 */
export type LogFields = Record<string, unknown>;

export interface Log {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Log;
}

export const silentLog: Log = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLog;
  },
};

/** How deep an error's `cause` chain is written out, at most (a cycle must not loop). */
const causeDepthMax = 5;

/**
 * An Error as plain data for a log line: its type, message, stack, code and cause chain.
 * JSON.stringify of an Error gives `{}`, and String(err) drops the stack: both lose what an
 * operator needs to find where it came from.
 */
export function errorAsData(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack !== undefined) out.stack = err.stack;
  if (err.cause !== undefined && depth < causeDepthMax) out.cause = errorAsData(err.cause, depth + 1);
  return out;
}

/** Fields with every Error value (top level) turned into data (errorAsData). */
export function logFieldsAsData(fields: LogFields | undefined): LogFields | undefined {
  if (fields === undefined) return undefined;
  let out: LogFields | undefined;
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof Error) {
      out ??= { ...fields };
      out[k] = errorAsData(v);
    }
  }
  return out ?? fields;
}
