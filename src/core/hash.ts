/**
 * The key hash: ringkv-hash64 = fmix64(fnv1a64(key bytes)).
 *
 * FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the key's bytes (UTF-8 for
 * string keys), then MurmurHash3's 64-bit finalizer (fmix64), because partitions are taken from the
 * top bits and FNV alone mixes its last bytes poorly into them. Only integer arithmetic modulo 2^64,
 * so every platform and every implementation gets the same value: clients in other languages can
 * route keys exactly as nodes do.
 */
const FNV_PRIME_LOW = 0x1b3; // prime = 2^40 + 0x1b3
const MASK64 = (1n << 64n) - 1n;

export function fnv1a64(bytes: Uint8Array): bigint {
  // Two 32-bit halves keep the loop in plain numbers; h * prime = h * 0x1b3 + (h << 40).
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    const loMul = lo * FNV_PRIME_LOW;
    const carry = Math.floor(loMul / 0x1_0000_0000);
    const newHi = (hi * FNV_PRIME_LOW + carry + ((lo << 8) >>> 0)) % 0x1_0000_0000;
    lo = loMul >>> 0;
    hi = newHi >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

export function fmix64(h: bigint): bigint {
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h;
}

export function hash64(key: Uint8Array): bigint {
  return fmix64(fnv1a64(key));
}

/** The hash's two 32-bit halves. hash64Parts returns one shared object, overwritten by the next call. */
export interface Hash64Parts {
  hi: number;
  lo: number;
}

const parts: Hash64Parts = { hi: 0, lo: 0 };

/** (hi:lo * ch:cl) mod 2^64 into `parts`, in exact double and 32-bit integer arithmetic. */
function mul64(hi: number, lo: number, ch: number, cl: number): void {
  const a0 = lo & 0xffff;
  const a1 = lo >>> 16;
  const b0 = cl & 0xffff;
  const b1 = cl >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const low = a0 * b0 + (mid % 0x10000) * 0x10000; // < 2^33
  const carry = Math.floor(low / 0x1_0000_0000);
  parts.lo = low >>> 0;
  parts.hi = (a1 * b1 + Math.floor(mid / 0x10000) + carry + Math.imul(hi, cl) + Math.imul(lo, ch)) >>> 0;
}

/**
 * ringkv-hash64 of bytes[0, length) as two 32-bit halves, without BigInt: the same values as
 * hash64 (test/unit/hash.test.ts compares them), several times faster, because every request
 * hashes its key and BigInt arithmetic allocates. The result is shared: read it before the next call.
 */
export function hash64Parts(bytes: Uint8Array, length = bytes.length): Hash64Parts {
  // FNV-1a 64: h = (h ^ byte) * (2^40 + 0x1b3).
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    const loMul = lo * 0x1b3; // < 2^41: exact
    hi = (Math.imul(hi, 0x1b3) + ((loMul / 0x1_0000_0000) | 0) + (lo << 8)) >>> 0;
    lo = loMul >>> 0;
  }
  // fmix64: h ^= h >>> 33; h *= C1; h ^= h >>> 33; h *= C2; h ^= h >>> 33.
  lo = (lo ^ (hi >>> 1)) >>> 0;
  mul64(hi, lo, 0xff51afd7, 0xed558ccd);
  hi = parts.hi;
  lo = (parts.lo ^ (parts.hi >>> 1)) >>> 0;
  mul64(hi, lo, 0xc4ceb9fe, 0x1a85ec53);
  parts.lo = (parts.lo ^ (parts.hi >>> 1)) >>> 0;
  return parts;
}
