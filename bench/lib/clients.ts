/**
 * The bench's clients, all in the orchestrating process and all bounded by a deadline:
 *  - the stream check (N bytes + CRC-32 trailer) and the direct-TCP stream and echo pipe;
 *  - round-trip probes over any pipe (raw-ws.ts gives the WebSocket ones);
 *  - idle sessions: many `ws` WebSockets opened and held (with Porthole, through the browser side of
 *    the RFB handshake, security None), reporting how many stayed up;
 *  - a raw keep-alive HTTP/1.1 load generator (a few lines of parsing instead of a client library,
 *    so the client costs little CPU next to the server it measures).
 */
import { connect, type Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import WebSocket from 'ws';
import { ClientHandshake } from '../../src/rfb/client-handshake.js';

export interface StreamResult {
  /** Bytes received in total (payload + 4-byte trailer when complete). */
  bytes: number;
  /** Every payload byte arrived, and the trailer's CRC-32 matches what arrived. */
  ok: boolean;
  ms: number;
  mibps: number;
  closeCode: number | null;
  error?: string;
}

/** Checks a stream of N payload bytes followed by their big-endian CRC-32. */
export class StreamCheck {
  received = 0;
  private crc = 0;
  private readonly trailer = Buffer.alloc(4);
  constructor(private readonly n: number) {}
  push(b: Buffer): void {
    const payload = Math.max(0, Math.min(b.length, this.n - this.received));
    if (payload > 0) this.crc = crc32(payload === b.length ? b : b.subarray(0, payload), this.crc);
    for (let i = payload; i < b.length; i++) {
      const at = this.received + i - this.n;
      if (at < 4) this.trailer[at] = b[i]!;
    }
    this.received += b.length;
  }
  get complete(): boolean { return this.received >= this.n + 4; }
  get ok(): boolean { return this.received === this.n + 4 && this.trailer.readUInt32BE(0) === this.crc >>> 0; }
}

/**
 * One 'message' listener for the whole life of a WebSocket (ws emits several messages in one
 * synchronous loop, so swapping listeners after an await could drop some). With `rfb`, messages first
 * go to the browser side of Porthole's RFB handshake (security None); `ready` resolves at ServerInit.
 * Bytes after that are buffered until `sink` is set.
 */
function attach(ws: WebSocket, rfb: boolean): { ready: Promise<void>; sink(cb: (b: Buffer) => void): void } {
  const hs = rfb ? new ClientHandshake({ credential: { type: 'none' }, shared: true }) : undefined;
  let done = !hs;
  let held: Buffer[] = [];
  let out: ((b: Buffer) => void) | undefined;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
  ready.catch(() => undefined);
  const deliver = (b: Buffer) => { if (out) out(b); else held.push(b); };
  ws.on('message', (data: Buffer) => {
    if (done) return deliver(data);
    try {
      const step = hs!.feed(data);
      for (const b of step.send) ws.send(b);
      if (step.done) {
        done = true;
        if (step.done.rest.length) deliver(Buffer.from(step.done.rest));
        resolveReady();
      }
    } catch (err) { rejectReady(err as Error); ws.terminate(); }
  });
  ws.once('close', (code) => rejectReady(new Error(`closed ${code} before ServerInit`)));
  if (done) resolveReady();
  return {
    ready,
    sink(cb) { out = cb; const h = held; held = []; for (const b of h) cb(b); },
  };
}

/** Opens a WebSocket with its one message listener attached before any message can arrive. */
function openWs(url: string, rfb: boolean): Promise<{ ws: WebSocket; conn: ReturnType<typeof attach> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    const conn = attach(ws, rfb);
    ws.once('open', () => resolve({ ws, conn }));
    ws.once('unexpected-response', (_req, res) => { res.resume(); reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)); });
    ws.once('error', reject);
  });
}

const TCP_READ = Buffer.allocUnsafe(1024 * 1024);

/** The direct-TCP baseline, read the same lean way as raw-ws.ts (one reused 1 MiB buffer). */
export function tcpStream(port: number, n: number, timeoutMs: number): Promise<StreamResult> {
  const check = new StreamCheck(n);
  return new Promise((resolve) => {
    const t0 = performance.now();
    let t1 = 0;
    const s = connect({
      host: '127.0.0.1', port,
      onread: { buffer: TCP_READ, callback: (nread: number) => { check.push(TCP_READ.subarray(0, nread)); if (check.complete && !t1) t1 = performance.now(); return true; } },
    });
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const ms = (t1 || performance.now()) - t0;
      resolve({ bytes: check.received, ok: check.ok, ms, mibps: n / 1048576 / (ms / 1000), closeCode: null, ...(check.complete ? {} : { error: `got ${check.received} of ${n + 4} bytes` }) });
    });
  });
}

/** A byte pipe for round trips. */
export interface Pipe { send(b: Buffer): void; onData(cb: (b: Buffer) => void): void; close(): void }

export function tcpPipe(port: number): Promise<Pipe> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host: '127.0.0.1', port }, () => {
      s.setNoDelay(true);
      resolve({ send: (b) => { s.write(b); }, onData: (f) => { s.on('data', f); }, close: () => s.end() });
    });
    s.once('error', reject);
  });
}

export interface RttResult { samples: number; p50us: number; p99us: number; meanUs: number }

/** A pipe set up for round trips: `run(count)` records `count` sequential round trips of a 6-byte RFB PointerEvent. */
export function rttProbe(pipe: Pipe): { run(count: number, deadlineMs: number): Promise<number[]>; close(): void } {
  const msg = Buffer.from([5, 0, 0, 10, 0, 10]);
  let got = 0;
  let waiter: (() => void) | undefined;
  pipe.onData((b) => { got += b.length; if (got >= msg.length && waiter) { got -= msg.length; const w = waiter; waiter = undefined; w(); } });
  return {
    async run(count, deadlineMs) {
      const times: number[] = [];
      const deadline = Date.now() + deadlineMs;
      for (let i = 0; i < count && Date.now() < deadline; i++) {
        const t0 = process.hrtime.bigint();
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('no echo within 2 s')), 2000);
          waiter = () => { clearTimeout(t); resolve(); };
          pipe.send(msg);
        });
        times.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      return times;
    },
    close: () => pipe.close(),
  };
}

export function rttSummary(times: number[]): RttResult {
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  return { samples: sorted.length, p50us: q(0.5), p99us: q(0.99), meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

export interface IdleResult {
  wanted: number;
  opened: number;
  failed: number;
  /** Sessions that closed while they should have been held. */
  dropped: number;
  firstError?: string;
  openMs: number;
  close(): Promise<void>;
}

/**
 * Opens `urls.length` WebSocket sessions, at most `concurrency` opening at a time, within `deadlineMs`.
 * With `rfb`, a session counts as open once ServerInit arrived (the backend is connected).
 */
export async function idleSessions(urls: string[], opts: { rfb: boolean; concurrency: number; deadlineMs: number }): Promise<IdleResult> {
  const t0 = performance.now();
  const deadline = Date.now() + opts.deadlineMs;
  const open: WebSocket[] = [];
  let failed = 0;
  let dropped = 0;
  let holding = true;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < urls.length && Date.now() < deadline) {
      const url = urls[next++]!;
      try {
        const { ws, conn } = await openWs(url, opts.rfb);
        ws.on('error', () => undefined);
        let t: NodeJS.Timeout | undefined;
        try {
          await Promise.race([conn.ready, new Promise((_r, j) => { t = setTimeout(() => j(new Error('no ServerInit in 10 s')), 10_000); })]);
        } finally { clearTimeout(t); }
        ws.on('close', () => { if (holding) dropped++; });
        open.push(ws);
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const openMs = performance.now() - t0;
  return {
    wanted: urls.length, opened: open.length, failed, get dropped() { return dropped; }, ...(firstError ? { firstError } : {}), openMs,
    async close() {
      holding = false;
      await Promise.all(open.map((ws) => new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        const t = setTimeout(() => { ws.terminate(); resolve(); }, 5000);
        ws.once('close', () => { clearTimeout(t); resolve(); });
        ws.close();
      })));
    },
  };
}

export interface LoadResult { requests: number; ok: number; errors: number; rps: number; p50ms: number; p99ms: number; statuses: Record<string, number> }

/**
 * Keep-alive HTTP/1.1 load: `connections` sockets, one request in flight on each, until `durationMs`
 * has passed or `maxRequests` were sent. `onBody` sees each 2xx body (to collect minted URLs).
 */
export async function httpLoad(o: {
  port: number; method: string; path: string; headers: Record<string, string>; body: string;
  connections: number; durationMs: number; maxRequests?: number; onBody?: (body: Buffer) => void;
}): Promise<LoadResult> {
  const head = `${o.method} ${o.path} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\nConnection: keep-alive\r\nContent-Length: ${Buffer.byteLength(o.body)}\r\n` +
    Object.entries(o.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  const request = Buffer.concat([Buffer.from(head), Buffer.from(o.body)]);
  const statuses: Record<string, number> = {};
  const lat: number[] = [];
  let sent = 0;
  let ok = 0;
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  const max = o.maxRequests ?? Infinity;
  const one = () => new Promise<void>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: o.port });
    s.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let started = 0;
    const fire = () => {
      if (performance.now() >= end || sent >= max) { s.end(); return; }
      sent++;
      started = performance.now();
      s.write(request);
    };
    s.on('connect', fire);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const he = buf.indexOf('\r\n\r\n');
        if (he < 0) return;
        const headText = buf.subarray(0, he).toString('latin1');
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headText)?.[1] ?? 0);
        if (buf.length < he + 4 + len) return;
        const status = headText.slice(9, 12);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status.startsWith('2')) { ok++; o.onBody?.(buf.subarray(he + 4, he + 4 + len)); } else errors++;
        lat.push(performance.now() - started);
        buf = buf.subarray(he + 4 + len);
        fire();
      }
    });
    s.on('error', () => { errors++; });
    s.on('close', () => resolve());
  });
  await Promise.all(Array.from({ length: o.connections }, one));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { requests: sent, ok, errors, rps: ok / secs, p50ms: q(0.5), p99ms: q(0.99), statuses };
}
