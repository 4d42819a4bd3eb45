/**
 * Where ringkv's own files are: the package root, found from this module, so it works from src/
 * (tsx) and from dist/ (the built CLI) alike. Its own module so that everything that needs it (the
 * local cluster launcher, service discovery's version, the CLI) imports it without importing each
 * other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding ringkv's package.json, found from this module (works from src/ and dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'ringkv') return dir;
      } catch {
        // Not ours or unreadable: keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the ringkv package root from ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

