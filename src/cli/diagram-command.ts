/**
 * `ringkv diagram <machine|all>`: each machine's statechart as Mermaid, generated from the machine
 * definitions in actors/. Without --out it prints the Markdown page(s); with --out DIR it writes
 * DIR/<machine>.md (the committed ones live in docs/diagrams); --check compares instead of writing
 * and exits 1 when a page is stale; --readme FILE also fills the file's marked regions
 * (`<!-- ringkv-diagram:NAME -->` ... `<!-- /ringkv-diagram:NAME -->`) with the Mermaid block.
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exitCodes } from './exit-codes.js';
import { formatJson } from './output.js';

interface DiagramOptions {
  out?: string;
  readme?: string;
  check?: boolean;
}

export function registerDiagramCommand(program: Command): void {
  program
    .command('diagram')
    .description("write a machine's statechart as Mermaid, generated from its definition (all: every machine in actors/)")
    .argument('<machine>', 'a machine id (node, coordinator, replica, ...) or all')
    .option('--out <dir>', 'write <dir>/<machine>.md instead of printing (the committed diagrams are in docs/diagrams)')
    .option('--readme <file>', 'also fill the marked <!-- ringkv-diagram:NAME --> regions of this Markdown file')
    .option('--check', 'write nothing; exit 1 when a file differs from what would be written')
    .action(async (name: string, o: DiagramOptions, cmd: Command) => {
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      const { generateDiagrams, loadMachines, UnknownMachineError } = await import('../diagram/machines.js');
      const { fillMarkedRegions, machineToMermaid } = await import('../diagram/statechart.js');
      let diagrams;
      try {
        diagrams = await generateDiagrams(name === 'all' ? 'all' : [name]);
      } catch (err) {
        if (err instanceof UnknownMachineError) cmd.error(`error: ${err.message}`, { exitCode: exitCodes.usage });
        throw err;
      }

      const stale: string[] = [];
      const written: string[] = [];
      const apply = (path: string, text: string) => {
        const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
        if (current === text) return;
        if (o.check) stale.push(path);
        else {
          writeFileSync(path, text);
          written.push(path);
        }
      };

      if (o.out !== undefined) {
        if (!o.check) mkdirSync(o.out, { recursive: true });
        for (const d of diagrams) apply(join(o.out, d.fileName), d.markdown);
      }
      if (o.readme !== undefined) {
        if (!existsSync(o.readme)) cmd.error(`error: ${o.readme} does not exist`, { exitCode: exitCodes.usage });
        const mermaid = new Map((await loadMachines()).map((m) => [m.name, machineToMermaid(m.machine)]));
        const filled = fillMarkedRegions(readFileSync(o.readme, 'utf8'), mermaid);
        if (filled.unknown.length > 0) process.stderr.write(`${o.readme}: no machine named ${filled.unknown.join(', ')}\n`);
        apply(o.readme, filled.text);
      }

      if (o.out === undefined && o.readme === undefined) {
        if (json) process.stdout.write(formatJson(diagrams.map((d) => ({ machine: d.name, markdown: d.markdown }))));
        else process.stdout.write(diagrams.map((d) => d.markdown).join('\n'));
        return;
      }
      if (o.check) {
        if (stale.length > 0) {
          process.stderr.write(`stale: ${stale.join(', ')}; run ringkv diagram ${name}${o.out ? ` --out ${o.out}` : ''}${o.readme ? ` --readme ${o.readme}` : ''}\n`);
          process.exitCode = exitCodes.unexpected;
        } else if (json) process.stdout.write(formatJson({ stale: [] }));
        else process.stdout.write('every diagram is up to date\n');
        return;
      }
      if (json) process.stdout.write(formatJson({ written }));
      else process.stdout.write(written.length === 0 ? 'every diagram was already up to date\n' : written.map((p) => `wrote ${p}\n`).join(''));
    });
}
