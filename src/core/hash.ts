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
