#!/usr/bin/env node
// The `ringkv` command: a shim that runs the compiled CLI in dist/. Kept tiny so that `npx ringkv`
// works from a checkout (after `npm run build`) and from an installed package alike.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('ringkv: run npm run build first (npm start and npm test do it for you)\n');
  process.exit(2);
}
await import(main.href);
