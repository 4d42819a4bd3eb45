/**
 * Exit codes of the `ringkv` command, and the pure mapping from an error to its exit code. Scripts
 * depend on these numbers, so they only ever grow: never renumber one.
 */
import { errorCodes } from '../protocol/errors.js';
import { isNatsAuthRefused } from '../adapters/nats/connection-options.js';
export const exitCodes = {
  /** The command did what was asked. */
  ok: 0,
  /** Anything not listed below: a bug, or an error ringkv does not know. */
  unexpected: 1,
  /** Usage or bad input: unknown option, malformed argument, BAD_REQUEST, TOO_LARGE. */
  usage: 2,
  /** NATS is unreachable, or no ringkv node of the cluster answers (NO_CLUSTER). */
  noCluster: 3,
  /** `get` found no value for the key. */
  notFound: 4,
  /** Too few replicas are alive for the quorum asked for (UNAVAILABLE). */
  unavailable: 5,
  /** The deadline passed (TIMEOUT): the outcome is unknown, a write may or may not have happened. */
  timeout: 6,
  /** Any other error code from the cluster (TOO_MANY_SIBLINGS, NOT_OWNER, OVERLOADED, INTERNAL, and the cluster admin codes). */
  serverError: 7,
  /** NATS refused this process's credentials (Authorization Violation, an expired user JWT): retrying will not help. */
  natsAuth: 8,
  /**
   * The cluster secret is missing or unusable (NO_SECRET, BAD_SECRET: a node, above all one started
   * with --seeds, cannot be heard without it), or a node refused an inspect request for the lack
   * of it (UNAUTHENTICATED).
   */
  clusterSecret: 9,
  /**
   * Another cluster with this name answers on this NATS (CLUSTER_MISMATCH): its id is not the one
   * this node's secret gives. A stray cluster, or the wrong secret; a node refuses to start beside it.
   */
  clusterMismatch: 10,
  /**
   * `ringkv node` only: the node left the cluster (its leave was committed and it handed everything
   * over, or it was force-removed). Started again on the same data it would only exit again, so a
   * supervisor must not restart it: systemd `RestartPreventExitStatus=11`; see the README.
   */
  nodeLeft: 11,
  /**
   * Not permitted: NATS refused a publish or subscription of this user (NATS_PERMISSION), or a node
   * refused an operation sent on another role's subject (WRONG_SUBJECT).
   */
  forbidden: 12,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

/** The text for `ringkv --help`. */
export const exitCodesHelp = `Exit codes:
  0  ok
  1  unexpected error
  2  usage or bad input (BAD_REQUEST, TOO_LARGE)
  3  NATS unreachable, or no ringkv node answers (NO_CLUSTER)
  4  not found
  5  UNAVAILABLE: too few replicas alive for the quorum
  6  TIMEOUT: the outcome is unknown (a write may or may not have taken effect)
  7  any other error code from the cluster (TOO_MANY_SIBLINGS, NOT_OWNER, OVERLOADED, INTERNAL,
     NO_CHANGES, UNKNOWN_NODE, TOO_FEW_NODES, ALREADY_MEMBER, NOT_READY)
  8  NATS refused the credentials (Authorization Violation): fix --user/--password, --token,
     --nkey, --creds or the TLS client certificate
  9  the cluster secret is missing or unusable (NO_SECRET, BAD_SECRET), or a node refused a request
     for the lack of it (UNAUTHENTICATED): give --cluster-secret-file or RINGKV_CLUSTER_SECRET_FILE
  10 another cluster with this name but another id answers on this NATS (CLUSTER_MISMATCH): a stray
     cluster, or the wrong secret; stop it or pick another --cluster name
  11 ringkv node: this node left the cluster (leave committed and handed over, or force-removed);
     do not restart it on the same data (systemd: RestartPreventExitStatus=11). A graceful stop
     (SIGTERM, SIGINT) exits 0

  12 not permitted: NATS refused this user the subject (NATS_PERMISSION: a client user asking for
     an admin operation), or a node refused an operation on another role's subject (WRONG_SUBJECT)`;

/** The exit code for an error code of the client library (RingkvError.code). */
export function exitCodeForErrorCode(code: string): ExitCode {
  switch (code) {
    case 'BAD_REQUEST':
    case 'TOO_LARGE':
      return exitCodes.usage;
    case 'NO_CLUSTER':
      return exitCodes.noCluster;
    case 'NATS_AUTH':
      return exitCodes.natsAuth;
    case 'NO_SECRET':
    case 'BAD_SECRET':
    case 'UNAUTHENTICATED':
      return exitCodes.clusterSecret;
    case 'CLUSTER_MISMATCH':
      return exitCodes.clusterMismatch;
    case 'NATS_PERMISSION':
    case 'WRONG_SUBJECT':
      return exitCodes.forbidden;
    case 'UNAVAILABLE':
      return exitCodes.unavailable;
    case 'TIMEOUT':
      return exitCodes.timeout;
    case 'TOO_MANY_SIBLINGS':
    case 'NOT_OWNER':
    case 'OVERLOADED':
    case 'NO_CHANGES':
    case 'UNKNOWN_NODE':
    case 'TOO_FEW_NODES':
    case 'TOO_MANY_NODES':
    case 'ALREADY_MEMBER':
    case 'NOT_READY':
    case 'INTERNAL':
      return exitCodes.serverError;
    default:
      return exitCodes.unexpected;
  }
}

const ringkvErrorCodes = new Set<string>([...errorCodes, 'NO_CLUSTER', 'NATS_AUTH', 'NATS_PERMISSION', 'NO_SECRET', 'BAD_SECRET', 'CLUSTER_MISMATCH']);

/** The ringkv error code an error carries, if it carries one (RingkvError, or anything shaped so). */
export function ringkvErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && ringkvErrorCodes.has(code) ? code : undefined;
}

/**
 * Whether an error says that NATS itself could not be reached: a refused or failed TCP connection,
 * or the NATS client giving up on connecting. These exit 3 like NO_CLUSTER, since the fix is the same.
 */
export function isNatsUnreachable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ECONNRESET') return true;
    if (name === 'ConnectionError') return true;
    if (typeof message === 'string' && /connection refused|CONNECTION_REFUSED/i.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The exit code for anything a command may throw. */
export function exitCodeForError(err: unknown): ExitCode {
  const code = ringkvErrorCode(err);
  if (code !== undefined) return exitCodeForErrorCode(code);
  // Before the unreachable check: nats.js reports a refusal as a ConnectionError-shaped failure too.
  if (isNatsAuthRefused(err)) return exitCodes.natsAuth;
  if (isNatsUnreachable(err)) return exitCodes.noCluster;
  return exitCodes.unexpected;
}
