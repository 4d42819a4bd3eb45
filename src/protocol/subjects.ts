/**
 * NATS subjects (DESIGN.md §5), one family per role, so that a NATS permission can tell a client
 * from an admin from a node. Raw user keys never appear in a subject: clients address nodes and
 * operations, never keys, so subject permissions stay simple and keys stay private.
 *
 *   ringkv.<cluster>.api.<op>                client operations (get, put, del, status), one queue group
 *   ringkv.<cluster>.node.<nodeId>.api       client operations for one node (local.get, a chosen coordinator)
 *   ringkv.<cluster>.admin.<op>              admin operations (cluster, aae, hints, transfers), one queue group
 *   ringkv.<cluster>.node.<nodeId>.admin     admin operations for one node
 *   ringkv.<cluster>.node.<nodeId>.inspect   inspection of one node (snapshots, follow sessions, traces)
 *   ringkv.<cluster>.node.<nodeId>.<internal> node-to-node traffic: replica, handoff, aae, gossip, forward,
 *                                            inspect-peer (inspection between nodes: inspect.correlate)
 *
 * A node checks that each message's kind belongs to the role of the subject it arrived on
 * (src/runtime/router.ts), so a permission on the subject is a permission on the operation.
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
  return [`ringkv.${cluster}.api.>`, `ringkv.${cluster}.node.*.api`];
}

/** An admin may do what a client does, and the admin operations and inspection besides. */
export function adminPublishSubjects(cluster: string): string[] {
  return [...clientPublishSubjects(cluster), `ringkv.${cluster}.admin.>`, `ringkv.${cluster}.node.*.admin`, `ringkv.${cluster}.node.*.inspect`];
}

/** Node-to-node subjects, one per internal role: what only a node may publish to. */
export function internalSubjects(cluster: string): string[] {
  return internalRoles.map((role) => `ringkv.${cluster}.node.*.${role}`);
}
