/**
 * The NATS authentication flags every connecting command takes (and the inbox prefix, which a
 * secured NATS ties to the user as closely as its credentials). A flag is moved into the nats
 * CLI's environment variable before the command runs, so every connection the command opens (the
 * client, the admin, a node or the bench it launches) sees it the same way, flags winning over what
 * the environment held, and so the launcher hands secrets to its node processes through their
 * environment rather than their argv, which `ps` would show to every user of the machine.
 */
import { Option, type Command } from 'commander';
import { natsEnvironmentVariables, type NatsAuthSettings } from '../adapters/nats/connection-options.js';

const flags: { flag: string; key: keyof NatsAuthSettings; help: string }[] = [
  { flag: '--user <name>', key: 'user', help: 'NATS user (default: $NATS_USER, or the user in a nats://user:pass@host URL)' },
  { flag: '--password <password>', key: 'password', help: 'NATS password (default: $NATS_PASSWORD); prefer the environment, argv is visible to ps' },
  { flag: '--token <token>', key: 'token', help: 'NATS token (default: $NATS_TOKEN); prefer the environment, argv is visible to ps' },
  { flag: '--nkey <file>', key: 'nkeyFile', help: 'file holding the NATS nkey seed (default: $NATS_NKEY)' },
  { flag: '--creds <file>', key: 'credsFile', help: 'NATS creds file: user JWT and seed (default: $NATS_CREDS)' },
  { flag: '--tls-ca <file>', key: 'caFile', help: 'CA certificate to verify the NATS server with; requires TLS (default: $NATS_CA)' },
  { flag: '--tls-cert <file>', key: 'certFile', help: 'client certificate for NATS TLS (default: $NATS_CERT)' },
  { flag: '--tls-key <file>', key: 'keyFile', help: 'client key for NATS TLS (default: $NATS_KEY)' },
  {
    flag: '--inbox-prefix <prefix>',
    key: 'inboxPrefix',
    help: 'where replies arrive: the inbox family this NATS user may subscribe to, e.g. _INBOX_client (default: $RINGKV_INBOX_PREFIX, else _INBOX)',
  },
];

/** Adds the flags to the program; no default is ever shown, so no secret reaches --help. */
export function addNatsAuthFlags(program: Command): Command {
  // Commander names an option's value after its flag (--tls-ca is tlsCa), not after the setting.
  const options = flags.map((f) => ({ ...f, option: new Option(f.flag, f.help) }));
  for (const o of options) program.addOption(o.option);
  program.hook('preAction', (_this, action) => {
    const opts = action.optsWithGlobals<Record<string, unknown>>();
    for (const f of options) {
      const value = opts[f.option.attributeName()];
      if (typeof value === 'string' && value !== '') process.env[natsEnvironmentVariables[f.key]] = value;
    }
  });
  return program;
}
