/**
 * The production log (src/server/json-log.ts) keeps what an operator needs of an error: its type,
 * message, stack, code and cause chain, not the bare message of String(err).
 */
import { describe, expect, it } from 'vitest';
import { jsonLog } from '../../src/server/json-log.js';
import { errorAsData } from '../../src/ports/log.js';

describe('jsonLog', () => {
  it('writes an Error field with its stack, code and cause', () => {
    const lines: string[] = [];
    const log = jsonLog('info', { node: 'n1' }, (l) => lines.push(l));
    const cause = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    log.error('commit failed', { err: new TypeError('could not commit', { cause }), partition: 3 });
    const line = JSON.parse(lines[0]!) as Record<string, any>;
    expect(line).toMatchObject({ level: 'error', msg: 'commit failed', node: 'n1', partition: 3 });
    expect(line.err).toMatchObject({ type: 'TypeError', message: 'could not commit', cause: { type: 'Error', message: 'disk full', code: 'ENOSPC' } });
    expect(line.err.stack).toContain('json-log.test.ts');
    expect(line.err.cause.stack).toContain('disk full');
  });

  it('leaves other fields as they are, and stops a cause cycle', () => {
    const lines: string[] = [];
    jsonLog('info', {}, (l) => lines.push(l)).info('x', { err: 'just text', n: 1 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ err: 'just text', n: 1 });
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    let depth = 0;
    for (let e = errorAsData(a) as { cause?: unknown } | undefined; e; e = e.cause as typeof e) depth++;
    expect(depth).toBeLessThanOrEqual(6);
  });
});
