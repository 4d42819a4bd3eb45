/**
 * What a failed NATS connect becomes, for every ringkv process that connects on a user's behalf
 * (client library, admin, inspect, bench): NATS_AUTH when NATS refused the credentials (retrying will
 * not help), NO_CLUSTER when it could not be reached, and never a password or token in the message.
 * And what a refused publish looks like once connected (permissionViolation: NATS_PERMISSION).
 */
import { PermissionViolationError } from '@nats-io/transport-node';
import { isNatsAuthRefused, NatsSettingsError, redactSecrets, redactUrl, secretsOf, type NatsAuthSettings } from '../adapters/nats/connection-options.js';
import { RingkvError } from './errors.js';

export function natsConnectFailure(err: unknown, settings: NatsAuthSettings, hint = ''): RingkvError {
  const where = redactUrl(settings.servers ?? 'nats://127.0.0.1:4222');
  const why = redactSecrets(err instanceof Error ? err.message : String(err), secretsOf(settings));
  // A setting that cannot be used (a bad inbox prefix, an unreadable file) is the caller's to fix: no connection was tried.
  if (err instanceof NatsSettingsError) return new RingkvError('BAD_REQUEST', why);
  if (isNatsAuthRefused(err)) return new RingkvError('NATS_AUTH', `NATS at ${where} refused the credentials: ${why}`);
  return new RingkvError('NO_CLUSTER', `cannot reach NATS at ${where}: ${why}${hint}`);
}

/** The PermissionViolationError in an error's causes: NATS refused a publish or a subscription. */
export function permissionViolation(err: unknown): PermissionViolationError | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    if (e instanceof PermissionViolationError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
