/**
 * The progress bar of `ringkv bench`: one line on stderr, redrawn in place, only when stderr is a
 * terminal (a pipe or a file gets nothing, so logs and --json stay clean).
 */
import type { BenchProgress } from './runner.js';

export const barWidth = 24;

/** One line for a progress snapshot, without the carriage return. */
export function formatProgress(p: BenchProgress): string {
  const filled = Math.round(Math.max(0, Math.min(1, p.fraction)) * barWidth);
  const bar = '#'.repeat(filled) + '-'.repeat(barWidth - filled);
  const where = p.phase === 'load' ? `loading (${p.concurrency} workers)` : `level ${p.level}/${p.levels}: concurrency ${p.concurrency}, ${p.phase === 'warmup' ? 'warm-up' : p.phase}`;
  const rate = `${Math.round(p.opsPerSec).toLocaleString('en-US')} ops/s`;
  const errors = p.errors > 0 ? `, ${p.errors.toLocaleString('en-US')} errors` : '';
  return `[${bar}] ${where}  ${p.ops.toLocaleString('en-US')} ops  ${rate}${errors}`;
}

export class ProgressBar {
  private shown = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly columns: () => number | undefined,
  ) {}

  update(p: BenchProgress): void {
    const width = this.columns() || 80;
    const line = formatProgress(p).slice(0, Math.max(10, width - 1));
    this.write(`\r\x1b[2K${line}`);
    this.shown = true;
  }

  /** Erases the bar, so that the next output starts on a clean line. */
  clear(): void {
    if (!this.shown) return;
    this.write('\r\x1b[2K');
    this.shown = false;
  }
}
