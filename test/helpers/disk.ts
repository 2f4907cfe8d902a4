/**
 * A small file system to run out of space on: a tmpfs mounted on a fresh directory (needs root;
 * `tmpfsUnavailable()` says why not), filled to its last byte and freed again. Used by the disk-full
 * test and bench/chaos.ts; the machine's own file systems are never filled.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Resolves to false when this process may mount a tmpfs, else to the reason it may not. */
export function tmpfsUnavailable(): string | false {
  if (process.platform !== 'linux') return 'mounting a tmpfs needs Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  return false;
}

export interface SmallDisk {
  /** The mount point. */
  readonly dir: string;
  /** Fills the file system to its last byte (a filler file beside the rest). */
  fill(): void;
  /** Removes the filler. */
  free(): void;
  /** Unmounts and removes the mount point. */
  unmount(): void;
}

export function mountTmpfs(sizeMiB: number): SmallDisk {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir]);
  const filler = path.join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      try {
        // Big writes until ENOSPC, then ever smaller ones down to a single byte.
        for (let size = chunk.length; size >= 1; size >>= 1) {
          try { for (;;) writeSync(fd, chunk, 0, size); } catch (err) { if ((err as { code?: string }).code !== 'ENOSPC') throw err; }
        }
      } finally { closeSync(fd); }
    },
    free() { rmSync(filler, { force: true }); },
    unmount() {
      rmSync(filler, { force: true });
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
