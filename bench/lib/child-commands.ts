/**
 * The child's side of the bench's stdin protocol (lib/proc.ts is the parent's side): one command a
 * line on stdin, each answered by one JSON line on stdout, which is why a child writes nothing else
 * there. A child also leaves when its stdin ends or on SIGTERM, so none outlives a bench that died
 * without stopping it.
 */

/** Answers one command: one JSON line on stdout, the line the parent's `ask()` resolves with. */
export function reply(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** A full GC when the child was started with --expose-gc; a no-op without it. */
export function fullGc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Memory after a full GC (see fullGc), with the child's own gauges beside it. */
export function memoryAfterGc(gauges: Record<string, number>): object {
  fullGc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, ...gauges };
}

/**
 * Calls `handle` with each trimmed command line from stdin (a chunk may hold several lines or part
 * of one). `exit` runs when stdin ends or on SIGTERM; the default just exits.
 */
export function serveCommands(handle: (cmd: string) => void, exit: () => void = () => process.exit(0)): void {
  process.stdin.setEncoding('utf8');
  let pending = '';
  process.stdin.on('data', (d: string) => {
    pending += d;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const cmd = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      handle(cmd);
    }
  });
  process.stdin.on('end', exit);
  process.on('SIGTERM', exit);
}
