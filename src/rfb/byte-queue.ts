/**
 * A FIFO of received bytes for the resumable parsers: chunks are kept as they arrived (no copying on
 * push), peeks read across chunk boundaries, and `take(n)` copies only what a message needs. Every
 * parser first checks `length` against what it needs ("need more bytes") and resumes on the next
 * chunk, as noVNC's `rQwait()` does.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Offset into chunks[0] of the first unread byte. */
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The byte at `offset` from the read position (caller checks `length`). */
  peekU8(offset = 0): number {
    if (offset < 0 || offset >= this.size) throw new RangeError('ByteQueue.peekU8 beyond data');
    let i = offset + this.head;
    for (const c of this.chunks) {
      if (i < c.length) return c[i] as number;
      i -= c.length;
    }
    /* c8 ignore next */
    throw new RangeError('ByteQueue corrupted');
  }

  peekU16(offset = 0): number {
    return (this.peekU8(offset) << 8) | this.peekU8(offset + 1);
  }

  peekU32(offset = 0): number {
    return (
      this.peekU8(offset) * 0x1000000 +
      ((this.peekU8(offset + 1) << 16) | (this.peekU8(offset + 2) << 8) | this.peekU8(offset + 3))
    );
  }

  peekS32(offset = 0): number {
    return this.peekU32(offset) | 0;
  }

  /** Removes and returns the next `n` bytes (a fresh copy unless they lie in one chunk). */
  take(n: number): Uint8Array {
    if (n < 0 || n > this.size) throw new RangeError('ByteQueue.take beyond data');
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0] as Uint8Array;
      const m = Math.min(n - filled, c.length - this.head);
      out.set(c.subarray(this.head, this.head + m), filled);
      filled += m;
      this.advance(m);
    }
    return out;
  }

  /** Discards up to `n` bytes; returns how many were discarded. */
  skip(n: number): number {
    let left = Math.min(n, this.size);
    const done = left;
    while (left > 0) {
      const c = this.chunks[0] as Uint8Array;
      const m = Math.min(left, c.length - this.head);
      this.advance(m);
      left -= m;
    }
    return done;
  }

  takeU8(): number {
    const v = this.peekU8(0);
    this.skip(1);
    return v;
  }

  takeU16(): number {
    const v = this.peekU16(0);
    this.skip(2);
    return v;
  }

  takeU32(): number {
    const v = this.peekU32(0);
    this.skip(4);
    return v;
  }

  /** Removes and returns everything buffered. */
  takeAll(): Uint8Array {
    return this.take(this.size);
  }

  private advance(n: number): void {
    this.head += n;
    this.size -= n;
    while (this.chunks.length > 0 && this.head >= (this.chunks[0] as Uint8Array).length) {
      this.head -= (this.chunks[0] as Uint8Array).length;
      this.chunks.shift();
    }
  }
}
