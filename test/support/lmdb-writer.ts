/**
 * Child process for the kill -9 test of LmdbStore: writes keys 0, 1, 2, ... into partition 7 with a
 * few updates in flight, and prints "acked <i>" only after update i's promise resolved. The parent
 * kills it with SIGKILL at some point and checks that every acked key survived.
 *
 * Usage: node --import tsx test/support/lmdb-writer.ts <dir> [sync]
 */
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';

const inFlightMax = 8;
const dir = process.argv[2];
if (!dir) throw new Error('usage: lmdb-writer.ts <dir> [sync]');
const store = LmdbStore.open(dir, { sync: process.argv[3] === 'sync' });

let next = 0;
function writeOne(): void {
  const i = next++;
  const key = new TextEncoder().encode(`k${i}`);
  void store
    .update(7, key, () => ({ next: [['w', 1, [new Uint8Array([i & 0xff])]]], result: i }))
    .then(() => {
      process.stdout.write(`acked ${i}\n`);
      writeOne();
    });
}
for (let n = 0; n < inFlightMax; n++) writeOne();
