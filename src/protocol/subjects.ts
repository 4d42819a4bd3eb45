/**
 * NATS subjects (DESIGN.md §5), one family per role, so that a NATS permission can tell a client
 * from an admin from a node. Raw user keys never appear in a subject: clients address nodes and
 * operations, never keys, so subject permissions stay simple and keys stay private.
 *
 *   ringkv.<cluster>.api.<op>                client operations (get, put, del, status), one queue group
 *   ringkv.<cluster>.node.<nodeId>.api.<op>  client operations for one node (local.get, a chosen coordinator)
 *   ringkv.<cluster>.admin.<op>              admin operations (cluster, aae, hints, transfers), one queue group
 *   ringkv.<cluster>.node.<nodeId>.admin.<op> admin operations for one node
 *   ringkv.<cluster>.node.<nodeId>.inspect   inspection of one node (snapshots, follow sessions, traces)
 *   ringkv.<cluster>.node.<nodeId>.<internal> node-to-node traffic: replica, handoff, aae, gossip, forward,
 *                                            inspect-peer (inspection between nodes: inspect.correlate)
 *
 * A node checks that each message's kind belongs to the role of the subject it arrived on, and a
 * client or admin request's kind to the operation its subject names (`api.put` only on `...api.put`;
 * kindMatchesSubject, src/runtime/router.ts), so a permission on the subject is a permission on the
 * operation: a user allowed `ringkv.<c>.api.get` and `ringkv.<c>.node.*.api.get` can read and
 * cannot write (readerPublishSubjects).
 */
import { internalRoles, type Role } from '../ports/transport.js';

export const apiQueueGroup = 'ringkv-api';
export const adminQueueGroup = 'ringkv-admin';

/** Cluster and node ids become subject tokens, so they are restricted to safe characters. */
export const namePattern = /^[A-Za-z0-9_-]{1,64}$/;

/** A client operation through the queue group (any node coordinates it). */
export function apiSubject(cluster: string, op: string): string {
  return `ringkv.${cluster}.api.${op}`;
}

/** The wildcard a node subscribes to for the shared client API. */
export function apiWildcard(cluster: string): string {
  return `ringkv.${cluster}.api.*`;
}

/** An admin operation through the admin queue group. */
export function adminSubject(cluster: string, op: string): string {
  return `ringkv.${cluster}.admin.${op}`;
}

/** The wildcard a node subscribes to for the shared admin API. */
export function adminWildcard(cluster: string): string {
  return `ringkv.${cluster}.admin.*`;
}

export function nodeSubject(cluster: string, nodeId: string, role: Role): string {
  return `ringkv.${cluster}.node.${nodeId}.${role}`;
}

/**
 * A client or admin operation addressed to one node: the operation is the subject's last token(s)
 * (`local.get` makes two), so that a NATS permission can name it.
 */
export function nodeOpSubject(cluster: string, nodeId: string, role: 'api' | 'admin', op: string): string {
  return `ringkv.${cluster}.node.${nodeId}.${role}.${op}`;
}

/** The wildcard a node subscribes to for the operations of one role addressed to it. */
export function nodeOpWildcard(cluster: string, nodeId: string, role: 'api' | 'admin'): string {
  return `ringkv.${cluster}.node.${nodeId}.${role}.>`;
}

/**
 * Whether a request of `kind` (`api.<op>`) may be taken on the subject it arrived on for `role`:
 * the subject must end in `.<role>.<op>` (`ringkv.<c>.api.put`, `ringkv.<c>.node.n1.api.put`,
 * `ringkv.<c>.admin.cluster`). Only subjects a node subscribes to arrive, and the role comes from
 * the subject (nats-transport.ts), so the suffix is the whole check: one comparison per request.
 */
export function kindMatchesSubject(role: 'api' | 'admin', kind: string, subject: string): boolean {
  const op = kind.startsWith('api.') ? kind.slice(4) : kind;
  return subject.endsWith(`.${role}.${op}`);
}

/** The wildcard a node subscribes to for all of its directed roles. */
export function nodeWildcard(cluster: string, nodeId: string): string {
  return `ringkv.${cluster}.node.${nodeId}.*`;
}

/** The role named by the last token of a directed subject, or undefined for a foreign subject. */
export function roleOfSubject(subject: string): string | undefined {
  const dot = subject.lastIndexOf('.');
  return dot < 0 ? undefined : subject.slice(dot + 1);
}

/**
 * The subject patterns of each permission set (infra/nats-server.secure.conf, src/server/secure-nats.ts):
 * what a client, an admin and a node may publish to. Replies travel on the requester's inbox, in
 * the inbox family of its user (`_INBOX_<role>`, src/server/secure-nats.ts).
 */
export function clientPublishSubjects(cluster: string): string[] {
  return [`ringkv.${cluster}.api.>`, `ringkv.${cluster}.node.*.api.>`];
}

/**
 * A read-only client: reads (`get` through the queue group or at a chosen node, the client-driven
 * `local.get` of replicas) and `status` (how a client learns the ring), nothing that writes.
 */
export function readerPublishSubjects(cluster: string): string[] {
  const ops = ['get', 'status'];
  return [...ops.map((op) => apiSubject(cluster, op)), ...[...ops, 'local.get'].map((op) => `ringkv.${cluster}.node.*.api.${op}`)];
}

/** An admin may do what a client does, and the admin operations and inspection besides. */
export function adminPublishSubjects(cluster: string): string[] {
  return [...clientPublishSubjects(cluster), `ringkv.${cluster}.admin.>`, `ringkv.${cluster}.node.*.admin.>`, `ringkv.${cluster}.node.*.inspect`];
}

/** Node-to-node subjects, one per internal role: what only a node may publish to. */
export function internalSubjects(cluster: string): string[] {
  return internalRoles.map((role) => `ringkv.${cluster}.node.*.${role}`);
}
