/** Events of the coordinator machine: the replicas' answers, and its own deadline. */
import type { DvvSet } from '../src/core/dvv.js';

export type CoordinatorEvent =
  | { type: 'replica.coordinate.ok'; from: string; reqId: string; body: { state: DvvSet } }
  | { type: 'replica.put.ok'; from: string; reqId: string; body: Record<string, never> }
  | { type: 'replica.get.ok'; from: string; reqId: string; body: { state: DvvSet | null } }
  | { type: 'replica.error'; from: string; reqId: string; body: { code: string; message: string } }
  /** The request's deadline passed (a delayed event with the explicit id "deadline"). */
  | { type: 'deadline' }
  /** The short wait for late read answers, before read repair, is over. */
  | { type: 'repairWaitOver' };
