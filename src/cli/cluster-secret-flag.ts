/**
 * `--cluster-secret-file FILE` and `ringkv secret new FILE`. The flag is moved into
 * RINGKV_CLUSTER_SECRET_FILE before a command runs, like the NATS auth flags (nats-auth-flags.ts):
 * every process the command launches finds the secret through its environment, never its argv.
 */
import type { Command } from 'commander';
import { clusterSecretFileVariable, ensureClusterSecretFile } from '../server/cluster-secret.js';

export function addClusterSecretFlag(program: Command): Command {
  program.option('--cluster-secret-file <file>', `file holding the cluster secret (default: $${clusterSecretFileVariable}, else $RINGKV_CLUSTER_SECRET)`);
  program.hook('preAction', (_this, action) => {
    const file = action.optsWithGlobals<{ clusterSecretFile?: string }>().clusterSecretFile;
    if (typeof file === 'string' && file !== '') process.env[clusterSecretFileVariable] = file;
  });
  program
    .command('secret')
    .description('cluster secrets')
    .command('new <file>')
    .description('write a new cluster secret (32 random bytes, base64url) to FILE, readable by its owner only; give the same file to every member')
    .action((file: string) => {
      const { created } = ensureClusterSecretFile(file);
      if (!created) throw Object.assign(new Error(`${file} exists already: a cluster keeps its secret (remove the file first to make a new one)`), { code: 'BAD_SECRET' });
      process.stdout.write(`wrote a new cluster secret to ${file} (mode 0600)\n`);
    });
  return program;
}
