/**
 * Output helpers shared by the `ringkv` commands: column-aligned tables for people, JSON for
 * programs, and the rendering of values that may or may not be text.
 */

export interface TableOptions {
  /** A header row, printed above the rows and underlined by nothing: just aligned. */
  header?: readonly string[];
  /** Spaces between columns. */
  gap?: number;
  /**
   * Wrap the last column at spaces so that no line exceeds this width (usually the terminal's
   * columns). Continuation lines are indented under the last column.
   */
  width?: number;
}

/**
 * Formats rows as column-aligned text, one line per row, each line ending in '\n' (an empty string
 * for no rows and no header). A cell holding newlines spans several lines, the later ones indented
 * under its column. Widths count UTF-16 code units, which is close enough for terminals.
 */
export function formatTable(rows: readonly (readonly string[])[], options: TableOptions = {}): string {
  const gap = ' '.repeat(options.gap ?? 2);
  const all = options.header ? [options.header, ...rows] : [...rows];
  if (all.length === 0) return '';
  const columnCount = Math.max(...all.map((row) => row.length));
  const widths = Array.from({ length: columnCount }, (_, c) =>
    Math.max(0, ...all.map((row) => Math.max(0, ...(row[c] ?? '').split('\n').map((line) => line.length)))),
  );
  const lastStart = widths.slice(0, -1).reduce((sum, w) => sum + w + gap.length, 0);
  const lastWidth = options.width !== undefined ? Math.max(20, options.width - lastStart) : undefined;

  let out = '';
  for (const row of all) {
    const cells = Array.from({ length: columnCount }, (_, c) => {
      const lines = (row[c] ?? '').split('\n');
      return c === columnCount - 1 && lastWidth !== undefined ? lines.flatMap((l) => wrapLine(l, lastWidth)) : lines;
    });
    const height = Math.max(...cells.map((lines) => lines.length));
    for (let i = 0; i < height; i++) {
      const parts = cells.map((lines, c) => (c === columnCount - 1 ? (lines[i] ?? '') : (lines[i] ?? '').padEnd(widths[c]!)));
      out += parts.join(gap).trimEnd() + '\n';
    }
  }
  return out;
}

/** Splits one line at spaces into lines of at most `width` characters (longer words stay whole). */
export function wrapLine(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const out: string[] = [];
  let current = '';
  for (const word of line.split(' ')) {
    if (current === '') current = word;
    else if (current.length + 1 + word.length <= width) current += ' ' + word;
    else {
      out.push(current);
      current = word;
    }
  }
  out.push(current);
  return out;
}

/** Pretty JSON with a trailing newline, for `--json`. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A value as text when it is valid UTF-8, else as base64. */
export type RenderedValue = { encoding: 'utf8'; data: string } | { encoding: 'base64'; data: string };

export function renderValue(bytes: Uint8Array): RenderedValue {
  try {
    return { encoding: 'utf8', data: strictUtf8.decode(bytes) };
  } catch {
    return { encoding: 'base64', data: toBase64(bytes) };
  }
}

/** How a value reads in a table: the text itself, or its base64 with a note. */
export function describeValue(bytes: Uint8Array): string {
  const rendered = renderValue(bytes);
  return rendered.encoding === 'utf8' ? rendered.data : `${rendered.data}  (base64: the value is not UTF-8)`;
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strict base64 (standard or URL-safe alphabet); undefined when the text is not base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(trimmed) || trimmed.replace(/=+$/, '').length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64'));
}

/**
 * Partition ids as compact text: runs of consecutive ids become ranges ("0-3, 8, 10-12"), so that
 * contiguous ownership reads at a glance and round-robin ownership still fits a line or two.
 */
export function formatIdList(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : j === i + 1 ? `${sorted[i]}, ${sorted[j]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}
