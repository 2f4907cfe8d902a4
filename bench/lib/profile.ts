/**
 * Where the time goes: a V8 `.cpuprofile` (node --cpu-prof) reduced to self time per function and per
 * area (Porthole's relay, ws, Node streams/net, GC, native), and an `strace -c -f` summary reduced to
 * system calls per MiB relayed.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface ProfileSummary {
  totalMs: number;
  top: { name: string; where: string; ms: number; pct: number }[];
  areas: { area: string; ms: number; pct: number }[];
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)' || fn === '(root)') return 'native (V8/libuv, outside JS)';
  if (url.includes('/src/proxy/') || url.includes('/src/rfb/')) return 'Porthole relay (src/proxy, src/rfb)';
  if (url.includes('/src/') ) return 'Porthole other (src/)';
  if (url.includes('node_modules/ws/')) return 'ws';
  if (url.includes('node_modules/pino') || url.includes('node_modules/fastify') || url.includes('node_modules/kysely') || url.includes('better-sqlite3')) return 'API stack (fastify, pino, kysely, sqlite)';
  if (url.includes('bench/')) return 'bench script';
  if (/node:(internal\/)?(stream|net|streams|internal\/stream_base_commons)/.test(url) || url.includes('stream_base_commons')) return 'Node net/streams (incl. syscalls they make)';
  if (url.startsWith('node:')) return 'Node other';
  if (!url) return 'native (V8/libuv, outside JS)';
  return 'other';
}

export function summarizeCpuProfile(file: string, topN = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    total += us;
    const short = url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/');
    // Native frames without a script (libuv reads, V8 entries such as the inspector's dispatch) are outside JS.
    const name = !url && functionName && !functionName.startsWith('(') ? `${functionName} (native)` : functionName || '(anonymous)';
    const key = `${name}@${short}:${lineNumber + 1}`;
    const e = fns.get(key) ?? { name, where: short ? `${short}:${lineNumber + 1}` : '', us: 0 };
    e.us += us;
    fns.set(key, e);
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((1000 * us) / total) / 10;
  return {
    totalMs: total / 1000,
    top: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, topN).map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, pct: pct(e.us) })),
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([a, us]) => ({ area: a, ms: us / 1000, pct: pct(us) })),
  };
}

export interface SyscallRow { syscall: string; calls: number; seconds: number; errors: number }

/** Parses `strace -c` output (the summary table). */
export function parseStraceSummary(text: string): SyscallRow[] {
  const rows: SyscallRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(\d+)?\s*([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[4] !== 'total') rows.push({ syscall: m[4]!, seconds: Number(m[1]), calls: Number(m[2]), errors: Number(m[3] ?? 0) });
  }
  return rows.sort((a, b) => b.calls - a.calls);
}
