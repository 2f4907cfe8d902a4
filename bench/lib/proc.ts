/**
 * Child processes for the bench and what /proc says about them: CPU time (own + reaped children +
 * live descendants, so websockify's process-per-connection is counted too), RSS and PSS of a process
 * tree, file-descriptor limits. Every child started here is killed when the bench exits, whatever
 * the reason.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

const children = new Set<ChildProcess>();

function killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      // Each child leads its own process group: websockify's per-connection processes go with it.
      try { process.kill(-c.pid, signal); } catch { try { c.kill(signal); } catch { /* gone */ } }
    }
  }
}
process.on('exit', () => killAll());
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { killAll(); process.exit(130); });

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** The first JSON line the child printed (its ports, URLs…). */
  info: Record<string, unknown>;
  /** Sends one command line to the child's stdin and resolves with its next JSON line. */
  ask(cmd: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after `ms`; resolves when it has exited. */
  stop(ms?: number): Promise<void>;
  stderr(): string;
}

/**
 * Spawns `cmd args` in its own process group and waits (at most `readyMs`) for a JSON line on stdout.
 * `readyWhen` instead waits for a line matching it (for programs that print no JSON, like websockify).
 */
export async function startChild(name: string, cmd: string, args: string[], opts: { readyMs?: number; readyWhen?: RegExp; env?: NodeJS.ProcessEnv } = {}): Promise<Child> {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...(opts.env ?? {}) } });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let err = '';
  const waiters: ((line: Record<string, unknown>) => void)[] = [];
  const lines = createInterface({ input: proc.stdout! });
  let readyResolve: ((v: Record<string, unknown>) => void) | undefined;
  let readyTimer: NodeJS.Timeout | undefined;
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    readyResolve = (v) => { clearTimeout(readyTimer); resolve(v); };
    readyTimer = setTimeout(() => reject(new Error(`${name} not ready after ${opts.readyMs ?? 20000} ms: ${err.slice(-2000)}`)), opts.readyMs ?? 20_000);
    proc.once('exit', (code, sig) => { clearTimeout(readyTimer); reject(new Error(`${name} exited (${code ?? sig}) before ready: ${err.slice(-2000)}`)); });
  });
  const onText = (line: string) => {
    if (opts.readyWhen?.test(line)) { readyResolve?.({}); readyResolve = undefined; }
  };
  lines.on('line', (line) => {
    onText(line);
    if (!line.startsWith('{')) return;
    let obj: Record<string, unknown>;
    try { obj = JSON.parse(line) as Record<string, unknown>; } catch { return; }
    if (readyResolve && !opts.readyWhen) { readyResolve(obj); readyResolve = undefined; return; }
    waiters.shift()?.(obj);
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
    for (const l of d.toString().split('\n')) onText(l);
  });
  const info = await ready;
  return {
    proc, pid: proc.pid!, info,
    ask(cmd, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: no answer to ${cmd}`)), timeoutMs);
        waiters.push((obj) => { clearTimeout(t); resolve(obj); });
        proc.stdin!.write(cmd + '\n');
      });
    },
    stop(ms = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        const t = setTimeout(() => { try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* gone */ } }, ms);
        proc.once('exit', () => { clearTimeout(t); resolve(); });
        try { process.kill(-proc.pid!, 'SIGTERM'); } catch { proc.kill('SIGTERM'); }
      });
    },
    stderr: () => err,
  };
}

const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; }
})();

/** utime+stime and cutime+cstime of one process, in ms (clock-tick resolution). */
function statCpu(pid: number): { own: number; reaped: number } | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields after the command name start at field 3 (state); utime is field 14 → index 11.
  const n = (i: number) => Number(f[i]) * (1000 / CLK_TCK);
  return { own: n(11) + n(12), reaped: n(13) + n(14) };
}

/** Direct children of a process (all threads). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch { /* thread gone */ }
  }
  return out;
}

export function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    for (const c of childPids(stack.pop()!)) { out.push(c); stack.push(c); }
  }
  return out;
}

/** CPU ms used by a process tree so far: the root's own and reaped children's time, plus live descendants' own time. */
export function treeCpuMs(pid: number): number {
  const root = statCpu(pid);
  if (!root) return NaN;
  let total = root.own + root.reaped;
  for (const d of descendants(pid)) total += statCpu(d)?.own ?? 0;
  return total;
}

function statusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

export function rssKiB(pid: number): number {
  return statusKiB(pid, 'VmRSS');
}

/** Proportional set size of a process tree (shared pages divided among sharers), KiB. */
export function treePssKiB(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      total += m ? Number(m[1]) : 0;
    } catch { /* gone */ }
  }
  return total;
}

/** Raises this process's open-file limit (inherited by children) as far as allowed; returns the soft limit. */
export function raiseNofile(want: number): { soft: number; hard: number; note: string } {
  const read = () => {
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${process.pid}/limits`, 'utf8'));
    const n = (s: string | undefined) => (s === 'unlimited' ? Infinity : Number(s));
    return { soft: n(m?.[1]), hard: n(m?.[2]) };
  };
  let note = '';
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], { stdio: 'pipe' });
  } catch (e) {
    const why = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim().split('\n')[0];
    const { hard } = read();
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'pipe' });
      note = `the hard limit of open files could not be raised from ${hard} to ${want} (${why}; raising it needs CAP_SYS_RESOURCE); using ${hard}`;
    } catch (e2) {
      note = `prlimit failed: ${(e2 as Error).message.split('\n')[0]}`;
    }
  }
  return { ...read(), note };
}

export function cpuModel(): string {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch { return 'unknown'; }
}
