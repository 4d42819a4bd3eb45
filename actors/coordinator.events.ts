/** Events of the coordinator machine: the replicas' answers, and its own deadline. */
import type { DvvSet } from '../src/core/dvv.js';
import type { CoordinatorInput } from './coordinator.machine.js';

export type CoordinatorEvent =
  | { type: 'replica.coordinate.ok'; from: string; reqId: string; body: { state: DvvSet } }
  | { type: 'replica.put.ok'; from: string; reqId: string; body: Record<string, never> }
  | { type: 'replica.get.ok'; from: string; reqId: string; body: { state: DvvSet | null } }
  | { type: 'replica.error'; from: string; reqId: string; body: { code: string; message: string } }
  /** The request's deadline passed (a delayed event with the explicit id "deadline"), for request reqId. */
  | { type: 'deadline'; reqId: string }
  /** The short wait for late read answers, before read repair, is over (request reqId). */
  | { type: 'repairWaitOver'; reqId: string }
  /** From the node, to an idle coordinator: serve this request (the coordinator is reused, not respawned). */
  | { type: 'coordinator.start'; input: CoordinatorInput };
