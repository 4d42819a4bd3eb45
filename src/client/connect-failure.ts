/**
 * What a failed NATS connect becomes, for every ringkv process that connects on a user's behalf
 * (client library, admin, inspect, bench): NATS_AUTH when NATS refused the credentials (retrying will
 * not help), NO_CLUSTER when it could not be reached, and never a password or token in the message.
 */
import { isNatsAuthRefused, redactSecrets, redactUrl, secretsOf, type NatsAuthSettings } from '../adapters/nats/connection-options.js';
import { RingkvError } from './errors.js';

export function natsConnectFailure(err: unknown, settings: NatsAuthSettings, hint = ''): RingkvError {
  const where = redactUrl(settings.servers ?? 'nats://127.0.0.1:4222');
  const why = redactSecrets(err instanceof Error ? err.message : String(err), secretsOf(settings));
  if (isNatsAuthRefused(err)) return new RingkvError('NATS_AUTH', `NATS at ${where} refused the credentials: ${why}`);
  return new RingkvError('NO_CLUSTER', `cannot reach NATS at ${where}: ${why}${hint}`);
}
