/**
 * The bench's seeded randomness: a small, fast PRNG (sfc32, seeded through splitmix32) whose
 * stream depends only on its seed, so that a bench run with the same --seed asks for the same keys
 * in the same order on every machine and against every target. Not for cryptography.
 */

export interface Random {
  /** A float in [0, 1) with 53 random bits. */
  nextDouble(): number;
  /** An unsigned 32-bit integer. */
  nextUint32(): number;
  /** An integer in [0, bound), bound ≤ 2^32. */
  nextInt(bound: number): number;
}

/** splitmix32: spreads a small seed over the 128 bits of sfc32's state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A PRNG for `seed` (any integer; only its low 32 bits are used) and an optional `stream`, so that
 * each worker of a run draws its own sequence, still fixed by the seed.
 */
export function createRandom(seed: number, stream = 0): Random {
  const init = { s: (Math.trunc(seed) ^ Math.imul(stream + 1, 0x27d4eb2d)) | 0 };
  let a = splitmix32(init);
  let b = splitmix32(init);
  let c = splitmix32(init);
  let d = splitmix32(init);
  const nextUint32 = (): number => {
    // sfc32 (Chris Doty-Humphrey's small fast chaotic PRNG).
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard the first outputs: sfc32 mixes its seed in over a few rounds.
  for (let i = 0; i < 12; i++) nextUint32();
  return {
    nextUint32,
    nextDouble: () => ((nextUint32() >>> 5) * 0x4000000 + (nextUint32() >>> 6)) / 0x20000000000000,
    nextInt: (bound: number) => Math.floor((nextUint32() / 0x1_0000_0000) * bound),
  };
}
