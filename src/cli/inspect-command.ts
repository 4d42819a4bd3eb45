/**
 * `ringkv inspect`, `ringkv trace` and `ringkv diagram`: watching the state machines.
 */
import type { Command } from 'commander';
import { registerDiagramCommand } from './diagram-command.js';

export function registerInspectCommands(program: Command): void {
  registerDiagramCommand(program);
}
