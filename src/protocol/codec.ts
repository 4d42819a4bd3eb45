/**
 * The wire and disk format: MessagePack via msgpackr, with every option set explicitly so that an
 * upgrade of msgpackr's defaults can never change what we write (DESIGN.md §5). Records, structured
 * clone and bundled strings are off: every message is plain MessagePack that any language can read.
 * Byte strings decode as Uint8Array (a Buffer in Node).
 */
import { Packr } from 'msgpackr';
import { costs } from './cost-counters.js';

const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: false,
  useFloat32: 0,
  int64AsType: 'number',
  largeBigIntToFloat: false,
  encodeUndefinedAsNil: true,
  copyBuffers: true,
});

export function encode(value: unknown): Uint8Array {
  costs.encodes++;
  return packr.pack(value);
}

/** Throws on bytes that are not one complete MessagePack value; callers turn that into a code. */
export function decode(bytes: Uint8Array): unknown {
  costs.decodes++;
  return packr.unpack(bytes);
}
