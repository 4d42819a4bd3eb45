import { describe, expect, it } from 'vitest';
import type { Log, LogFields } from '../../src/ports/log.js';
import { limitedMessagesMax, logEveryMs, rateLimitedLog } from '../../src/runtime/log-limiter.js';

function setup() {
  let now = 0;
  const lines: [string, string, LogFields | undefined][] = [];
  const base = (prefix: LogFields = {}): Log => ({
    debug: (m, f) => void lines.push(['debug', m, { ...prefix, ...f }]),
    info: (m, f) => void lines.push(['info', m, { ...prefix, ...f }]),
    warn: (m, f) => void lines.push(['warn', m, { ...prefix, ...f }]),
    error: (m, f) => void lines.push(['error', m, { ...prefix, ...f }]),
    child: (f) => base({ ...prefix, ...f }),
  });
  const log = rateLimitedLog(base(), () => now);
  return { log, lines, advance: (ms: number) => (now += ms) };
}

describe('rate-limited warnings', () => {
  it('writes each warning text once per window, then says how many it stood for; info passes', () => {
    const { log, lines, advance } = setup();
    for (let i = 0; i < 10_000; i++) log.warn('key has many siblings: clients should merge them', { siblings: 25 + i });
    for (let i = 0; i < 3; i++) log.info('ring changed');
    expect(lines.filter(([l]) => l === 'warn')).toHaveLength(1);
    expect(lines.filter(([l]) => l === 'info')).toHaveLength(3);
    advance(logEveryMs);
    log.warn('key has many siblings: clients should merge them', { siblings: 1 });
    expect(lines.at(-1)).toEqual(['warn', 'key has many siblings: clients should merge them', { siblings: 1, suppressedSinceLastLine: 9999 }]);
  });

  it('keeps one budget per text and level, shared by children; bounded in the texts it remembers', () => {
    const { log, lines } = setup();
    const a = log.child({ partition: 1 });
    const b = log.child({ partition: 2 });
    a.warn('x');
    b.warn('x');
    a.error('x');
    log.warn('y');
    expect(lines.map(([l, m]) => `${l}:${m}`)).toEqual(['warn:x', 'error:x', 'warn:y']);
    for (let i = 0; i < limitedMessagesMax + 10; i++) log.warn(`text ${i}`);
    expect(lines).toHaveLength(3 + limitedMessagesMax + 10);
  });
});
