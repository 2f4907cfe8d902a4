/**
 * Read buffers for the relay's backend sockets (net `onread`), measured in bench/RESULTS.md.
 *
 * Node's default socket reads allocate a fresh 64 KiB buffer per read() and hand it on; relaying a
 * framebuffer stream that way costs one allocation, one read and one writev per 64 KiB, and the
 * allocations (fresh pages, then GC of external memory) were the largest avoidable cost in the
 * profile. Instead every backend socket of the process reads into one shared 1 MiB buffer (reads are
 * synchronous callbacks on the one JS thread, so sharing is safe), and each read is copied out at
 * once: large reads into a block from a small pool of 1 MiB blocks that were already touched (and
 * go back to the pool when the WebSocket has written them), small reads into an exact-size buffer.
 * An idle session holds no read memory at all; the pool holds at most POOL_MAX_BLOCKS blocks.
 */

/** Bytes one read() on a backend socket may return (the shared buffer's size). */
export const RELAY_READ_BYTES = 1024 * 1024;
/** Reads at least this large are copied into a pooled block; smaller ones into an exact-size buffer. */
export const POOLED_MIN_BYTES = 32 * 1024;
/** Blocks kept for reuse; more in flight at once are allocated and left to the GC when returned. */
export const POOL_MAX_BLOCKS = 16;

let shared: Buffer | undefined;
const pool: Buffer[] = [];

/** The buffer every backend socket reads into (`onread.buffer`). Its bytes are valid only inside the read callback. */
export function sharedReadBuffer(): Buffer {
  shared ??= Buffer.allocUnsafe(RELAY_READ_BYTES);
  return shared;
}

export interface CopiedRead {
  bytes: Buffer;
  /** Gives a pooled block back once nothing refers to `bytes` any more (after the write completed). Idempotent. */
  release: (() => void) | undefined;
}

/**
 * Copies the `n` bytes just read into the shared buffer out of it. `pooled` allows a pooled block:
 * only when the caller will call `release` after the bytes are written and never keep them.
 */
export function copyRead(n: number, pooled: boolean): CopiedRead {
  const src = sharedReadBuffer();
  if (!pooled || n < POOLED_MIN_BYTES) {
    const bytes = Buffer.allocUnsafe(n);
    src.copy(bytes, 0, 0, n);
    return { bytes, release: undefined };
  }
  const block = pool.pop() ?? Buffer.allocUnsafe(RELAY_READ_BYTES);
  src.copy(block, 0, 0, n);
  let released = false;
  return {
    bytes: block.subarray(0, n),
    release: () => {
      if (released) return;
      released = true;
      if (pool.length < POOL_MAX_BLOCKS) pool.push(block);
    },
  };
}
