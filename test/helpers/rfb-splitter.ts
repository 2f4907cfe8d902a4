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

/** What one `feed()` of a handshake under test gave back: bytes to send and, once finished, its result. */
export interface HandshakeStep<R extends { rest: Uint8Array }> {
  out: readonly Uint8Array[];
  done?: R | undefined;
}

export interface HandshakeRun<R> {
  /** Everything the handshake asked to send, `first` included. */
  sent: Uint8Array;
  done: R | undefined;
  /** done.rest plus every chunk fed after done (what the caller's framer would get). */
  after: Uint8Array;
  /** What feed() threw, if anything; feeding stops there. */
  error: unknown;
}

/**
 * Feeds `chunks` to a handshake until it is done or throws, the way a relay would: chunks that
 * arrive after done are kept for the next stage, not fed. The client and server handshake tests
 * share this so both run the same loop under every split. `afterStep` runs after each successful
 * feed outside the catch, so a failing per-step assertion fails the test instead of being
 * recorded as the handshake's own error.
 */
export function feedHandshake<R extends { rest: Uint8Array }>(
  chunks: readonly Uint8Array[],
  feed: (chunk: Uint8Array) => HandshakeStep<R>,
  opts: { first?: readonly Uint8Array[]; afterStep?: () => void } = {},
): HandshakeRun<R> {
  const sent: Uint8Array[] = [...(opts.first ?? [])];
  const after: Uint8Array[] = [];
  let done: R | undefined;
  let error: unknown;
  for (const c of chunks) {
    if (done) {
      after.push(c);
      continue;
    }
    try {
      const r = feed(c);
      sent.push(...r.out);
      if (r.done) {
        done = r.done;
        after.push(r.done.rest);
      }
    } catch (err) {
      error = err;
      break;
    }
    opts.afterStep?.();
  }
  return { sent: concat(sent), done, after: concat(after), error };
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
