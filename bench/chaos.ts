/**
 * `npm run bench:chaos`: one fault at a time under load (reliability issue, item 4), written to its own
 * section of bench/RESULTS.md (between the `chaos` markers; the rest of the file belongs to the other benches).
 *
 * The load, in every phase: real `porthole serve` processes (test/helpers/cluster.ts; run `npm run build`
 * first), a few dozen live consoles through them to bench/target.ts's RFB echo port (security None), each
 * sending a 6-byte PointerEvent every 250 ms and checking the echo; minting at a steady rate spread over
 * the nodes, each minted token redeemed at once twice, concurrently, on two nodes (and twice more after
 * recovery), and a few list calls. Every request has a timeout (a hang is counted, never waited out).
 *
 * The faults, one per phase, each for `--fault-seconds`:
 *  kill9     two nodes on PostgreSQL + Redis; `kill -9` of one; the fault ends when a replacement starts
 *  postgres  the same two nodes reach PostgreSQL through a TCP proxy (test/helpers/postgres.ts) that
 *            resets every connection and refuses new ones, then relays again (the shared server is untouched)
 *  redis     the same two nodes on this script's own `redis-server` (a free loopback port, no persistence),
 *            stopped and started again on the same port (the machine's Redis is never touched)
 *  disk-full one node on embedded SQLite whose data directory is a small tmpfs mounted here (needs root;
 *            skipped with the reason otherwise), filled to the last byte while the node mints, then freed
 *
 * Recorded per fault: the outcome counts (HTTP status + error code, or timeout/connection error) of the
 * calls made while it lasted; tokens redeemed twice; acknowledged rows lost (a 2xx mint without its token
 * row or its audit row, a 101 without its session row, a session row left open or without byte counts
 * after the run); recovery (fault end → first 2xx mint, and → every node's /readyz 200); the surviving
 * nodes' consoles (all still open and echoing, and the longest echo gap while the fault lasted).
 *
 * Flags: --fault-seconds N (default 8), --rate N mints/s (default 20), --consoles N per node (default 12),
 * --phases kill9,postgres,redis,disk-full, --out FILE. Every process started here is killed on exit.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { startChild, cpuModel, type Child } from './lib/proc.js';
import { openRawWs, type RawWs } from './lib/raw-ws.js';
import { mountTmpfs, tmpfsUnavailable } from '../test/helpers/disk.js';
import { createTestSchema, startTcpProxy, type TcpProxy, type TestSchema } from '../test/helpers/postgres.js';
import { writeResultsSection } from './lib/results-section.js';
import {
  clusterFleet, clusterLogin, clusterProjectId, clusterServerId, newMasterKey, sleep, startNode, tryUpgrade, websocketUrl, type NodeProcess,
} from '../test/helpers/cluster.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] ?? dflt : dflt; };
const FAULT_MS = Number(opt('fault-seconds', '8')) * 1000;
const RATE = Number(opt('rate', '20'));
const CONSOLES = Number(opt('consoles', '12'));
const PHASES = opt('phases', 'kill9,postgres,redis,disk-full').split(',');
const OUT = opt('out', path.join(ROOT, 'bench', 'RESULTS.md'));
const BEFORE_MS = 3000;
const AFTER_MS = 4000;
const TIMEOUT_MS = 5000;
const RECOVERY_LIMIT_MS = 60_000;
const BEGIN = '<!-- chaos:begin -->';
const END = '<!-- chaos:end -->';
const TSX = ['--import', 'tsx'];

const watchdog = setTimeout(() => { console.error('chaos: watchdog: still running after 12 min; stopping'); process.exit(2); }, 12 * 60_000);
watchdog.unref();
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Resolves with `p`'s value, or with `onTimeout` after `ms` (the bench never waits out a hang). */
function within<T>(p: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((resolve) => { t = setTimeout(() => resolve(onTimeout), ms); })]).finally(() => clearTimeout(t));
}

/** An outcome label: `200`, `503 APIGW.0613`, `410 token_used`, `timeout`, `ECONNREFUSED`… */
type Outcome = string;

function errorLabel(err: unknown): Outcome {
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.cause?.code ?? e?.code ?? 'error';
}

async function httpCall(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ outcome: Outcome; body?: unknown; requestId?: string }> {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await r.text();
    let body: unknown;
    try { body = JSON.parse(text); } catch { body = undefined; }
    const code = (body as { error_code?: string; code?: string } | undefined)?.error_code ?? (body as { code?: string } | undefined)?.code;
    return { outcome: r.ok ? String(r.status) : `${r.status}${code ? ` ${code}` : ''}`, body, requestId: r.headers.get('x-request-id') ?? undefined };
  } catch (err) {
    return { outcome: errorLabel(err) };
  }
}

async function upgrade(wsUrl: string): Promise<Outcome> {
  const r = await within(tryUpgrade(wsUrl).then((x) => {
    if (x.status === 101) return '101';
    let reason = '';
    try { reason = (JSON.parse(x.body) as { reason?: string }).reason ?? ''; } catch { /* not JSON */ }
    return `${x.status}${reason ? ` ${reason}` : ''}`;
  }, (err: unknown) => errorLabel(err)), TIMEOUT_MS, 'timeout');
  return r;
}

/** Counts outcomes: "200×40, 503 APIGW.0613×12". */
function tally(list: Outcome[]): string {
  const m = new Map<Outcome, number>();
  for (const o of list) m.set(o, (m.get(o) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`).join(', ') || '—';
}

/** One node slot: the process serving it now (replaced after a kill -9). */
interface Slot { node: NodeProcess }

interface Mint { t0: number; t1: number; slot: number; outcome: Outcome; consoleUrl?: string; token?: string; requestId?: string; redeem: Outcome[] }
interface Console { slot: number; token: string; ws: RawWs; lastRx: number; maxGap: number; closedAt?: number; closeCode?: number | null; sent: number; got: number }

/** What a phase provides: its nodes, the fault, and read access to its database for the checks. */
interface Rig {
  slots: Slot[];
  /** Slots whose consoles must not notice the fault. */
  survivors: number[];
  fault(): Promise<void>;
  /** Ends the fault; resolves when the repair was started (not when it finished). */
  heal(): Promise<void>;
  tokenHashes(): Promise<Set<string>>;
  /** Request ids of the successful mint audit rows. */
  mintAudits(): Promise<Set<string>>;
  sessions(): Promise<{ token_hash: string; ended_at: number | null; bytes_to_client: number | null; bytes_to_backend: number | null; close_reason: string | null }[]>;
  cleanup(): Promise<void>;
  note: string;
}

interface Result {
  fault: string; note: string; mintsDuring: string; listsDuring: string; upgradesDuring: string; hangs: number; mints: number; tokens: number;
  double: number; unusable: number; lostTokens: number; lostAudits: number; lostSessions: number; openSessions: number; noBytes: number; nodeLost: number; nodeLostNoBytes: number;
  firstMintMs: number | null; readyMs: number | null; survivors: string; others: string; skipped?: string;
}

// Throttling out of the way: every client here is 127.0.0.1, and the redemption checks alone make hundreds of upgrades.
const nodeArgs = ['--ratelimit-per-second', '1000000', '--ratelimit-per-minute', '60000000',
  '--ratelimit-per-address-per-second', '1000000', '--ratelimit-per-address-per-minute', '60000000', '--console-token-ttl-seconds', '3600', '--log-level', 'warn',
  '--cluster-heartbeat-seconds', '1', '--cluster-node-timeout-seconds', '3'];

async function runPhase(name: string, rig: Rig): Promise<Result> {
  const { slots } = rig;
  const url = (i: number) => slots[i]!.node.url;
  const iam = await clusterLogin(url(0), 'alice');
  const mintPath = `/v1/${clusterProjectId}/cloudservers/${clusterServerId('echo')}/remote_console`;
  const mintBody = JSON.stringify({ remote_console: { protocol: 'vnc', type: 'novnc' } });
  const mintOn = (slot: number) => httpCall(`${url(slot)}${mintPath}`, { method: 'POST', headers: { 'x-auth-token': iam, 'content-type': 'application/json' }, body: mintBody });
  const consoleUrlOf = (body: unknown) => (body as { remote_console: { url: string } }).remote_console.url;
  const tokenOf = (consoleUrl: string) => new URL(consoleUrl).searchParams.get('token')!;
  const wsFor = (consoleUrl: string, slot: number) => websocketUrl(consoleUrl, url(slot));

  // The live consoles: CONSOLES per node, opened before the fault.
  const consoles: Console[] = [];
  for (let slot = 0; slot < slots.length; slot++) {
    for (let i = 0; i < CONSOLES; i++) {
      const m = await mintOn(slot);
      if (m.outcome !== '200') throw new Error(`${name}: opening consoles: mint answered ${m.outcome}`);
      const consoleUrl = consoleUrlOf(m.body);
      const token = tokenOf(consoleUrl);
      const ws = openRawWs(wsFor(consoleUrl, slot), true, 120_000);
      const ok = await within(ws.ready.then(() => true, () => false), 10_000, false);
      if (!ok) throw new Error(`${name}: console ${i} on node ${slot} did not reach ServerInit`);
      const c: Console = { slot, token, ws, lastRx: Date.now(), maxGap: 0, sent: 0, got: 0 };
      ws.onData((b) => { c.got += b.length; c.lastRx = Date.now(); });
      void ws.closed.then((r) => { c.closedAt = Date.now(); c.closeCode = r.code; });
      consoles.push(c);
    }
  }
  let gapFrom = Infinity;
  let gapTo = Infinity;
  const pointer = Buffer.from([5, 0, 0, 10, 0, 10]);
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const c of consoles) {
      if (c.closedAt !== undefined) continue;
      if (now >= gapFrom && now <= gapTo) c.maxGap = Math.max(c.maxGap, now - c.lastRx);
      c.ws.send(pointer);
      c.sent += pointer.length;
    }
  }, 250);

  // Minting at a steady rate over the nodes; each 2xx token redeemed at once, twice, concurrently, on two nodes.
  const mints: Mint[] = [];
  const lists: { t0: number; outcome: Outcome }[] = [];
  const inflight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => { inflight.add(p); void p.finally(() => inflight.delete(p)); };
  let n = 0;
  const minter = setInterval(() => {
    const slot = n++ % slots.length;
    const t0 = Date.now();
    track(mintOn(slot).then(async (r) => {
      const m: Mint = { t0, t1: Date.now(), slot, outcome: r.outcome, redeem: [], ...(r.requestId ? { requestId: r.requestId } : {}) };
      mints.push(m);
      if (r.outcome !== '200') return;
      m.consoleUrl = consoleUrlOf(r.body);
      m.token = tokenOf(m.consoleUrl);
      m.redeem.push(...await Promise.all([upgrade(wsFor(m.consoleUrl, slot)), upgrade(wsFor(m.consoleUrl, (slot + 1) % slots.length))]));
    }));
  }, 1000 / RATE);
  const lister = setInterval(() => {
    const t0 = Date.now();
    track(httpCall(`${url(n % slots.length)}/v1/${clusterProjectId}/cloudservers/detail`, { headers: { 'x-auth-token': iam } }).then((r) => { lists.push({ t0, outcome: r.outcome }); }));
  }, 500);

  await sleep(BEFORE_MS);
  const tFault = Date.now();
  gapFrom = tFault;
  log(`${name}: fault`);
  await rig.fault();
  await sleep(FAULT_MS);
  const tHeal = Date.now();
  log(`${name}: fault ends`);
  await rig.heal();
  // Recovery: the first 2xx mint sent after the fault ended, and every node ready.
  let readyMs: number | null = null;
  while (Date.now() - tHeal < RECOVERY_LIMIT_MS) {
    const ready = await Promise.all(slots.map((s) => httpCall(`${s.node.url}/readyz`, {})));
    if (ready.every((r) => r.outcome === '200')) { readyMs = Date.now() - tHeal; break; }
    await sleep(100);
  }
  gapTo = Date.now();
  await sleep(AFTER_MS);
  clearInterval(minter);
  clearInterval(lister);
  await within(Promise.all([...inflight]), 3 * TIMEOUT_MS, []);
  clearInterval(ticker);
  const firstOk = mints.filter((m) => m.t0 >= tHeal && m.outcome === '200').sort((a, b) => a.t1 - b.t1)[0];
  const firstMintMs = firstOk ? firstOk.t1 - tHeal : null;

  // The surviving nodes' consoles: still open, and echoing (one more round trip each).
  const live = consoles.filter((c) => rig.survivors.includes(c.slot));
  const echoed = await Promise.all(live.map(async (c) => {
    if (c.closedAt !== undefined) return false;
    const before = c.got;
    c.ws.send(pointer);
    for (let i = 0; i < 40; i++) { if (c.got >= before + pointer.length) return true; await sleep(50); }
    return false;
  }));
  const survivorsText = `${echoed.filter(Boolean).length}/${live.length} open and echoing; longest echo gap ${Math.max(0, ...live.map((c) => c.maxGap))} ms`;
  const others = consoles.filter((c) => !rig.survivors.includes(c.slot));
  const othersText = others.length ? `${others.filter((c) => c.closedAt !== undefined).length}/${others.length} dropped (close code ${tally(others.map((c) => String(c.closeCode ?? 'none')))})` : '';

  // Close everything, then a second redemption round for every token (after recovery), then the checks.
  for (const c of consoles) c.ws.close();
  await within(Promise.all(consoles.map((c) => c.ws.closed)), 10_000, []);
  const minted = mints.filter((m) => m.token !== undefined);
  for (let i = 0; i < minted.length; i += 16) {
    await Promise.all(minted.slice(i, i + 16).map(async (m) => {
      for (const slot of [m.slot, (m.slot + 1) % slots.length]) m.redeem.push(await upgrade(wsFor(m.consoleUrl!, slot)));
    }));
  }
  const upgraded = new Set([...consoles.map((c) => sha256Hex(c.token)), ...minted.filter((m) => m.redeem.includes('101')).map((m) => sha256Hex(m.token!))]);
  // Session rows are closed by the node when the client goes (a killed node's by a survivor): bounded wait.
  let sessions = await rig.sessions();
  for (let i = 0; i < 100 && sessions.some((s) => s.ended_at === null); i++) { await sleep(200); sessions = await rig.sessions(); }
  const hashes = await rig.tokenHashes();
  const audits = await rig.mintAudits();
  const sessionHashes = new Set(sessions.map((s) => s.token_hash));
  const consoleHashes = new Set(consoles.map((c) => sha256Hex(c.token)));

  // Details of every anomaly, for the report.
  const rel = (t: number) => `${((t - tFault) / 1000).toFixed(2)} s`;
  for (const m of minted.filter((x) => !x.redeem.includes('101'))) log(`${name}: token never usable: minted at ${rel(m.t0)}..${rel(m.t1)} on node ${m.slot}; redemptions ${m.redeem.join(' | ')}`);
  for (const m of minted.filter((x) => !x.requestId || !audits.has(x.requestId))) log(`${name}: no audit row: mint at ${rel(m.t0)}..${rel(m.t1)} on node ${m.slot}, request ${m.requestId ?? '(no id)'}`);
  for (const m of minted.filter((x) => !hashes.has(sha256Hex(x.token!)))) log(`${name}: no token row: mint at ${rel(m.t0)}..${rel(m.t1)} on node ${m.slot}`);
  for (const s of sessions.filter((x) => x.ended_at === null)) {
    const m = minted.find((x) => sha256Hex(x.token!) === s.token_hash);
    log(`${name}: session left open: ${consoleHashes.has(s.token_hash) ? 'a live console' : m ? `a redemption of a token minted at ${rel(m.t0)} on node ${m.slot}, redemptions ${m.redeem.join(' | ')}` : 'unknown token'}`);
  }
  for (const h of [...upgraded].filter((x) => !sessionHashes.has(x))) log(`${name}: 101 without a session row: ${consoleHashes.has(h) ? 'live console' : 'redemption'}`);
  const during = (t: number) => t >= tFault && t < tHeal;
  const redeemDuring = mints.filter((m) => during(m.t0)).flatMap((m) => m.redeem.slice(0, 2));
  const all = [...mints.map((m) => m.outcome), ...lists.map((l) => l.outcome), ...mints.flatMap((m) => m.redeem)];
  return {
    fault: name, note: rig.note,
    mintsDuring: tally(mints.filter((m) => during(m.t0)).map((m) => m.outcome)),
    listsDuring: tally(lists.filter((l) => during(l.t0)).map((l) => l.outcome)),
    upgradesDuring: tally(redeemDuring),
    hangs: all.filter((o) => o === 'timeout').length,
    mints: mints.length, tokens: minted.length,
    double: minted.filter((m) => m.redeem.filter((o) => o === '101').length > 1).length,
    unusable: minted.filter((m) => !m.redeem.includes('101')).length,
    lostTokens: minted.filter((m) => !hashes.has(sha256Hex(m.token!))).length,
    lostAudits: minted.filter((m) => !m.requestId || !audits.has(m.requestId)).length,
    lostSessions: [...upgraded].filter((h) => !sessionHashes.has(h)).length,
    openSessions: sessions.filter((s) => s.ended_at === null).length,
    noBytes: sessions.filter((s) => consoleHashes.has(s.token_hash) && s.ended_at !== null && s.close_reason !== 'node_lost' && !(Number(s.bytes_to_backend) > 0 && Number(s.bytes_to_client) > 0)).length,
    nodeLost: sessions.filter((s) => s.close_reason === 'node_lost').length,
    nodeLostNoBytes: sessions.filter((s) => consoleHashes.has(s.token_hash) && s.close_reason === 'node_lost' && !(Number(s.bytes_to_backend) > 0)).length,
    firstMintMs, readyMs, survivors: survivorsText, others: othersText,
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function startRedis(port: number): Promise<Child> {
  return startChild('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { readyWhen: /Ready to accept connections/, readyMs: 10_000 });
}

/** Two nodes on a fresh schema (through `proxy` when given) and this script's Redis. */
async function pgRig(fleet: string, note: string, o: { proxy?: boolean; fault: 'kill9' | 'postgres' | 'redis' }): Promise<Rig> {
  const schema: TestSchema = await createTestSchema();
  await schema.admin(`set search_path to ${schema.name}`);
  const redisPort = await freePort();
  let redis: Child | undefined = await startRedis(redisPort);
  const proxy: TcpProxy | undefined = o.proxy ? await startTcpProxy(new URL(schema.url).hostname, Number(new URL(schema.url).port || 5432)) : undefined;
  const common = {
    databaseUrl: proxy ? proxy.urlFor(schema.url) : schema.url, masterKey: newMasterKey(),
    redisUrl: `redis://127.0.0.1:${redisPort}`, redisPrefix: 'chaos:', args: nodeArgs,
  };
  const slots: Slot[] = [];
  slots.push({ node: await startNode({ name: 'chaos0', ...common, fleet }) });
  slots.push({ node: await startNode({ name: 'chaos1', ...common }) });
  const dead: NodeProcess[] = [];
  return {
    slots, note, survivors: o.fault === 'kill9' ? [0] : [0, 1],
    async fault() {
      if (o.fault === 'kill9') { slots[1]!.node.kill('SIGKILL'); dead.push(slots[1]!.node); await slots[1]!.node.exited; }
      else if (o.fault === 'postgres') proxy!.refuse();
      else { await redis!.stop(); redis = undefined; }
    },
    async heal() {
      if (o.fault === 'kill9') slots[1]!.node = await startNode({ name: 'chaos1r', ...common });
      else if (o.fault === 'postgres') proxy!.restore();
      else redis = await startRedis(redisPort);
    },
    tokenHashes: async () => new Set((await schema.admin('select token_hash from console_tokens')).rows.map((r: { token_hash: string }) => r.token_hash)),
    mintAudits: async () => new Set((await schema.admin(`select request_id from audit_events where action = 'ecs:cloudServers:vnc' and result = 'success'`)).rows.map((r: { request_id: string }) => r.request_id)),
    sessions: async () => (await schema.admin('select token_hash, ended_at, bytes_to_client, bytes_to_backend, close_reason from console_sessions')).rows,
    async cleanup() {
      proxy?.restore();
      await Promise.all([...slots.map((s) => s.node.stop()), ...dead.map((d) => d.stop())]);
      await proxy?.close();
      await redis?.stop();
      await schema.drop();
    },
  };
}

/** One node on embedded SQLite in a small tmpfs (test/helpers/disk.ts); the fault fills it, the heal frees it. */
async function diskRig(fleet: string): Promise<Rig> {
  const disk = mountTmpfs(8);
  const dataDir = path.join(disk.dir, 'data');
  let node: NodeProcess;
  try {
    node = await startNode({ name: 'chaos-sqlite', dataDir, masterKey: newMasterKey(), fleet, args: nodeArgs });
  } catch (err) {
    disk.unmount();
    throw err;
  }
  const slots: Slot[] = [{ node }];
  const read = <T>(sql: string) => {
    const d = new Database(path.join(dataDir, 'porthole.db'), { readonly: true, fileMustExist: true });
    try { return d.prepare(sql).all() as T[]; } finally { d.close(); }
  };
  return {
    slots, note: '1 node, embedded SQLite on an 8 MiB tmpfs', survivors: [0],
    fault: async () => { disk.fill(); },
    heal: async () => { disk.free(); },
    tokenHashes: async () => new Set(read<{ token_hash: string }>('select token_hash from console_tokens').map((r) => r.token_hash)),
    mintAudits: async () => new Set(read<{ request_id: string }>(`select request_id from audit_events where action = 'ecs:cloudServers:vnc' and result = 'success'`).map((r) => r.request_id)),
    sessions: async () => read('select token_hash, ended_at, bytes_to_client, bytes_to_backend, close_reason from console_sessions'),
    async cleanup() {
      await slots[0]!.node.stop();
      disk.unmount();
    },
  };
}

async function main(): Promise<void> {
  if (!existsSync(path.join(ROOT, 'dist/src/main.js'))) throw new Error('dist/src/main.js is missing: run npm run build first');
  const target = await startChild('target', process.execPath, [...TSX, path.join(ROOT, 'bench/target.ts'), '--stream-mib', '1']);
  const echoPort = (target.info.ports as Record<string, number>)['rfb-echo']!;
  const fleet = clusterFleet({ echo: { host: '127.0.0.1', port: echoPort } }, null);
  const results: Result[] = [];
  const two = '2 nodes, PostgreSQL (own schema) + own Redis';
  try {
    for (const phase of PHASES) {
      let rig: Rig;
      try {
        if (phase === 'kill9') rig = await pgRig(fleet, two, { fault: 'kill9' });
        else if (phase === 'postgres') rig = await pgRig(fleet, `${two}; PostgreSQL through a TCP proxy`, { proxy: true, fault: 'postgres' });
        else if (phase === 'redis') rig = await pgRig(fleet, two, { fault: 'redis' });
        else if (phase === 'disk-full') {
          const why = tmpfsUnavailable();
          if (why) { results.push(skipped(phase, why)); continue; }
          rig = await diskRig(fleet);
        } else throw new Error(`unknown phase ${phase}`);
      } catch (err) {
        results.push(skipped(phase, (err as Error).message.split('\n')[0]!));
        continue;
      }
      try {
        log(`${phase}: ${rig.note}`);
        const r = await runPhase(phase, rig);
        log(`${phase}: ${JSON.stringify(r)}`);
        results.push(r);
      } finally {
        await rig.cleanup();
      }
    }
  } finally {
    await target.stop();
  }
  writeSection(results);
}

function skipped(fault: string, why: string): Result {
  return {
    fault, note: '', mintsDuring: '', listsDuring: '', upgradesDuring: '', hangs: 0, mints: 0, tokens: 0, double: 0, unusable: 0, lostTokens: 0,
    lostAudits: 0, lostSessions: 0, openSessions: 0, noBytes: 0, nodeLost: 0, nodeLostNoBytes: 0, firstMintMs: null, readyMs: null, survivors: '', others: '', skipped: why,
  };
}

const FAULTS: Record<string, string> = {
  kill9: '`kill -9` of node 2 (a replacement starts when the fault ends)',
  postgres: 'PostgreSQL away (proxy resets every connection, refuses new ones), then back',
  redis: 'Redis stopped (SIGTERM), then started again on its port',
  'disk-full': 'SQLite\'s disk full (tmpfs filled to the last byte while minting), then freed',
};

function writeSection(results: Result[]): void {
  const ms = (x: number | null) => (x === null ? '**none within 60 s**' : `${(x / 1000).toFixed(1)} s`);
  const rows = results.map((r) => r.skipped
    ? `| ${FAULTS[r.fault] ?? r.fault} | skipped: ${r.skipped} | | | | |`
    : `| ${FAULTS[r.fault] ?? r.fault}<br>${r.note} | mint: ${r.mintsDuring}<br>list: ${r.listsDuring}<br>redeem: ${r.upgradesDuring}<br>timeouts (whole phase): ${r.hangs} | ` +
      `${r.double} of ${r.tokens} tokens (unused after recovery: ${r.unusable}) | ` +
      `token ${r.lostTokens}, audit ${r.lostAudits} of ${r.tokens} mints; session ${r.lostSessions}; left open ${r.openSessions}; console without byte counts ${r.noBytes}` +
      `${r.nodeLost ? `; closed node_lost by a survivor ${r.nodeLost} (live consoles among them without byte counts: ${r.nodeLostNoBytes})` : ''} | ` +
      `first mint ${ms(r.firstMintMs)}; all nodes ready ${ms(r.readyMs)} | ${r.survivors}${r.others ? `<br>killed node's: ${r.others}` : ''} |`);
  const section = `${BEGIN}
## Chaos under load: one fault at a time (reliability issue, item 4)

Recorded by \`npm run bench:chaos\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${cpuModel()}, ${os.cpus().length} cores,
load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (shared machine).
Load in every phase: ${CONSOLES} live consoles per node to bench/target.ts's RFB echo port (a PointerEvent every 250 ms each,
echo checked), ${RATE} mints/s spread over the nodes, each minted token redeemed at once twice concurrently on two nodes and
twice more after recovery, a list call every 500 ms; every request with a ${TIMEOUT_MS / 1000} s timeout. Each fault lasts
${FAULT_MS / 1000} s after ${BEFORE_MS / 1000} s of load; ${AFTER_MS / 1000} s of load follow recovery. Nodes: heartbeat 1 s, node timeout 3 s.
"Errors while it lasted" are the outcomes of calls sent during the fault (HTTP status + error code, or the connection error);
"lost rows" compares what the clients were told (2xx mint, 101 upgrade) with the database after recovery.

| fault | errors while it lasted | double redemptions | lost rows | recovery (from fault end) | survivors' consoles |
|---|---|---|---|---|---|
${rows.join('\n')}

Reading: with \`kill -9\`, the connection errors are the calls the load sent to the dead node itself (a load balancer
takes it out on \`/readyz\`); its consoles drop, and a survivor closes their rows (\`node_lost\`) within the node timeout,
with the byte counts last written by the dead node (every 15 s, so none for consoles younger than that). Redis away
changes nothing a client sees: throttling counts per node until it is back (store/redis/ratelimit.ts).
${END}`;
  writeResultsSection(OUT, BEGIN, END, section);
  log(`wrote ${OUT}`);
}

main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1); });
