/**
 * The data directory holds the SQLite database (every token hash, audit row and sealed secret), the
 * generated master key and the demo's credentials: it is the operator's alone. These helpers give the
 * directory mode 0700 and its files mode 0600 whatever the process umask — `mkdir`/`open` modes are
 * masked by the umask and never change what already exists, so the modes are set explicitly.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';

/** Creates `dir` (and its parents) if needed and sets its mode to 0700. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Creates `file` empty if it does not exist, and sets its mode to 0600. */
export function makePrivateFile(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
}

/** Sets mode 0600 on each of `files` that exists. */
export function restrictFiles(...files: string[]): void {
  for (const f of files) {
    try {
      chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
