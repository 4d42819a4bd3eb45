/**
 * Client requests as the router hands them to a node (api.put, api.del, api.get, api.local.get):
 * their context already decoded and their options checked for type. Their own module: the node's
 * events and the coordinator's batch both carry them, and neither imports the other for it.
 */
import type { Sibling, VersionVector } from '../src/core/dvv.js';
import type { RequestOptions } from '../src/protocol/messages.js';

export interface ClientRequest {
  from: string;
  reqId: string;
  replyTo: string;
  key: Uint8Array;
  options: RequestOptions;
  /** True when another node already passed this request on. */
  forwarded: boolean;
  /** The encoded request, so it can be forwarded without encoding it again. */
  bytes: Uint8Array;
}

export type ClientWriteEvent = ClientRequest & { type: 'api.put' | 'api.del'; value: Sibling; context: VersionVector };
export type ClientReadEvent = ClientRequest & { type: 'api.get' };
/** A client-driven read: this node's own replica state of the key, answered without a coordinator. */
export type ClientLocalReadEvent = ClientRequest & { type: 'api.local.get' };

