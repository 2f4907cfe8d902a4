/**
 * Byte-splitting for parser tests (STYLE §15): the same input fed whole, one byte at a time and in
 * seeded random splits, so every "need more bytes" path of a resumable parser is exercised and a
 * failure names the seed that reproduces it.
 */

/** Small deterministic PRNG (mulberry32): same seed, same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random integer in [lo, hi]. */
export function randomInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export function randomBytes(rng: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

/** Splits `bytes` into chunks of random sizes in [1, maxChunk] (zero-length chunks sometimes too). */
export function randomSplit(bytes: Uint8Array, rng: () => number, maxChunk = 16): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    if (rng() < 0.05) out.push(new Uint8Array(0));
    const n = Math.min(bytes.length - i, randomInt(rng, 1, maxChunk));
    out.push(bytes.slice(i, i + n));
    i += n;
  }
  return out;
}

export function everyByte(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (b) => Uint8Array.of(b));
}

export interface Split {
  name: string;
  chunks: Uint8Array[];
}

/** Whole, one byte at a time, and `randomCount` seeded random splits of `bytes`. */
export function splits(bytes: Uint8Array, seed = 1, randomCount = 20): Split[] {
  const out: Split[] = [
    { name: 'whole', chunks: [bytes] },
    { name: 'one byte at a time', chunks: everyByte(bytes) },
  ];
  for (let i = 0; i < randomCount; i++) {
    const s = seed * 1000 + i;
    out.push({ name: `random split seed ${s}`, chunks: randomSplit(bytes, seededRandom(s), 1 + (i % 7) * 5) });
  }
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}
