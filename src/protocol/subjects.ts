/**
 * NATS subjects (DESIGN.md §5). Raw user keys never appear in a subject: clients address nodes and
 * operations, never keys, so subject permissions stay simple and keys stay private.
 *
 *   ringkv.<cluster>.api.<op>             client API, served by every node in one queue group
 *   ringkv.<cluster>.node.<nodeId>.<role> directed messages to one node (roles: api, replica, ...)
 */
import type { Role } from '../ports/transport.js';

export const apiQueueGroup = 'ringkv-api';

/** Cluster and node ids become subject tokens, so they are restricted to safe characters. */
export const namePattern = /^[A-Za-z0-9_-]{1,64}$/;

export function apiSubject(cluster: string, op: string): string {
  return `ringkv.${cluster}.api.${op}`;
}

/** The wildcard a node subscribes to for the shared client API. */
export function apiWildcard(cluster: string): string {
  return `ringkv.${cluster}.api.*`;
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
