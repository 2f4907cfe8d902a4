/**
 * `npm run bench:soak` (`node --import tsx bench/soak.ts`): a soak with churn (reliability issue,
 * item 3). Two real `porthole serve` processes (test/helpers/cluster.ts `startNode`; run `npm run
 * build` first) on one fresh PostgreSQL schema and one Redis key prefix hold `--consoles` live
 * consoles to the bench target (bench/target.ts, RFB None, echo mode) for `--minutes`, minted on one
 * node and redeemed on the other, while every second some close and as many open (`--churn`), URLs
 * are minted and machines listed at a steady rate (`--mint-rate`, `--list-rate`) and, every
 * `--assist-every` seconds, a remote-assistance cycle runs (the desktop user asks, the helpdesk reads
 * the invitation, joins on one node, watches through a console, cancels on the other; the helper must
 * be closed with 4020). Each console sends an RFB PointerEvent every few seconds; the target echoes it.
 *
 * Every 10 s, per node: RSS and open descriptors (/proc), event-loop delay p99, active handles and
 * timers and the JS heap (its /metrics: prom-client's default metrics, whose event-loop histogram is
 * reset at each scrape, so p99 is over the last 10 s), database connections (pg_stat_activity for the
 * node's own application_name); Redis used_memory. At the end every console closes and the bench
 * checks: no session open on either node or in the store, every console session row closed with its
 * byte counts, descriptors and timers back near their start values, no backend socket left open at
 * the target. Writes its own section of bench/RESULTS.md (between the `soak` markers; runs shorter
 * than 5 minutes write bench/RESULTS.partial.md). Loopback only; every loop bounded; a watchdog ends
 * the run; every process started here is killed on exit.
 *
 * Flags: --minutes N (default 20), --consoles N (300), --churn N per second (consoles/60, at least 1),
 * --mint-rate N/s (5), --list-rate N/s (2), --assist-every S (30), --out FILE.
 */
import { readdirSync, existsSync } from 'node:fs';
import { writeResultsSection } from './lib/results-section.js';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cpuModel, raiseNofile, rssKiB, startChild, treeCpuMs, type Child } from './lib/proc.js';
import { openRawWs, type RawWs } from './lib/raw-ws.js';
import { deriveProjectId, deriveResourceId } from '../src/domain/fleet.js';
import { createTestSchema, type TestSchema } from '../test/helpers/postgres.js';
import { createTestRedis, TEST_REDIS_URL, type TestRedis } from '../test/helpers/redis.js';
import { MAIN_JS, newMasterKey, startNode, websocketUrl, type NodeProcess } from '../test/helpers/cluster.js';
import { call, login } from '../test/helpers/gateway.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] ?? dflt : dflt; };
const num = (name: string, dflt: number) => {
  const v = Number(opt(name, String(dflt)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`);
  return v;
};
const MINUTES = num('minutes', 20);
const CONSOLES = Math.round(num('consoles', 300));
const CHURN = Math.round(num('churn', Math.max(1, Math.round(CONSOLES / 60))));
const MINT_RATE = num('mint-rate', 5);
const LIST_RATE = num('list-rate', 2);
const ASSIST_EVERY_S = num('assist-every', 30);
const SAMPLE_MS = 10_000;
const POINTER_EVERY_MS = 5_000;
const OPEN_TIMEOUT_MS = 15_000;
const MAX_OPENING = 24;
const OUT = opt('out', path.join(ROOT, 'bench', MINUTES < 5 ? 'RESULTS.partial.md' : 'RESULTS.md'));
const BEGIN = '<!-- soak:begin -->';
const END = '<!-- soak:end -->';
const WATCHDOG_MS = (MINUTES + 6) * 60_000;

const watchdog = setTimeout(() => { console.error(`soak: watchdog: still running after ${WATCHDOG_MS / 60_000} min; stopping everything`); process.exit(2); }, WATCHDOG_MS);
watchdog.unref();
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

const PASSWORD = 'soak-password-1';
const DOMAIN = 'soak';
const PROJECT = 'lab';
const projectId = deriveProjectId(DOMAIN, PROJECT);
const SERVERS = ['echo-1', 'echo-2', 'echo-3', 'echo-4'];
const serverId = (name: string) => deriveResourceId(projectId, 'cloudserver', name);
const desktopId = deriveResourceId(projectId, 'desktop', 'desk-1');
const MINT_BODY = { remote_console: { protocol: 'vnc', type: 'novnc' } };
/** An RFB PointerEvent (RFC 6143 §7.5.5): the target echoes it back, so bytes flow both ways. */
const POINTER = Buffer.from([5, 0, 0, 10, 0, 10]);

function fleetYaml(echoPort: number, idlePort: number): string {
  return `
domains:
  - name: ${DOMAIN}
    users:
      - { name: op, password: ${PASSWORD}, roles: { ${PROJECT}: operator } }
      - { name: helpdesk, password: ${PASSWORD}, roles: { ${PROJECT}: operator } }
      - { name: deskuser, password: ${PASSWORD}, roles: { ${PROJECT}: operator } }
    projects:
      - name: ${PROJECT}
        cloudservers:
${SERVERS.map((n) => `          - name: ${n}\n            console: { url: "vnc://127.0.0.1:${echoPort}", security: none }`).join('\n')}
        desktops:
          - name: desk-1
            console: { url: "vnc://127.0.0.1:${idlePort}", security: none }
            attributes: { desktop_type: DEDICATED, user_list: [deskuser], user_name: deskuser }
`;
}

// ------------------------------------------------------------------------------------------------
// Counters (per 10 s window and in total)

interface Window {
  opened: number; openFailed: number; closedByBench: number; droppedUnexpectedly: number;
  mints: number; mintErrors: number; lists: number; listErrors: number; assistOk: number; assistFailed: number;
  apiMs: number[];
}
const newWindow = (): Window => ({ opened: 0, openFailed: 0, closedByBench: 0, droppedUnexpectedly: 0, mints: 0, mintErrors: 0, lists: 0, listErrors: 0, assistOk: 0, assistFailed: 0, apiMs: [] });
let win = newWindow();
const total = newWindow();
const errors = new Map<string, number>();
function count<K extends Exclude<keyof Window, 'apiMs'>>(k: K, n = 1): void { win[k] += n; total[k] += n; }
function noteError(what: string): void {
  const key = what.slice(0, 160);
  errors.set(key, (errors.get(key) ?? 0) + 1);
  if ((errors.get(key) ?? 0) <= 3) log(`error: ${key}`);
}

// ------------------------------------------------------------------------------------------------
// Consoles

interface Console { id: number; ws: RawWs; echoed: boolean; closing: boolean; bytesIn: number }
const live = new Map<number, Console>();
let opening = 0;
let nextId = 0;
let stopping = false;
/** Set when a node process exits before the bench stops it (someone else's kill, a crash): the soak ends early and says so. */
let nodeDied: string | undefined;

interface Env { nodes: NodeProcess[]; tokens: { op: string[]; helpdesk: string[]; deskuser: string[] } }

async function timedCall(url: string, init: Parameters<typeof call>[1]): Promise<Awaited<ReturnType<typeof call>>> {
  const t0 = performance.now();
  const r = await call(url, init);
  win.apiMs.push(performance.now() - t0);
  return r;
}

async function mint(env: Env, node: number, server: string): Promise<string> {
  const r = await timedCall(`${env.nodes[node]!.url}/v1/${projectId}/cloudservers/${serverId(server)}/remote_console`, {
    headers: { 'x-auth-token': env.tokens.op[node]! }, json: MINT_BODY,
  });
  const url = (r.body as { remote_console?: { url?: string } } | undefined)?.remote_console?.url;
  if (r.status !== 200 || !url) throw new Error(`mint on node ${node}: ${r.status} ${r.text.slice(0, 200)}`);
  return url;
}

/** Mints on one node, redeems on the other, does the RFB handshake; the console then lives until closed. */
async function openConsole(env: Env): Promise<void> {
  const id = nextId++;
  const mintNode = id % 2;
  const wsNode = 1 - mintNode;
  opening++;
  try {
    const consoleUrl = await mint(env, mintNode, SERVERS[id % SERVERS.length]!);
    const ws = openRawWs(websocketUrl(consoleUrl, env.nodes[wsNode]!.url), true, WATCHDOG_MS);
    const c: Console = { id, ws, echoed: false, closing: false, bytesIn: 0 };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([ws.ready, new Promise((_r, reject) => { timer = setTimeout(() => reject(new Error('not ready in time')), OPEN_TIMEOUT_MS); })]);
    } catch (err) {
      ws.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    ws.onData((b) => { c.bytesIn += b.length; c.echoed = true; });
    ws.send(POINTER);
    live.set(id, c);
    count('opened');
    void ws.closed.then(({ code, error }) => {
      live.delete(id);
      if (!c.closing && !stopping) { count('droppedUnexpectedly'); noteError(`console dropped: close ${code ?? '-'} ${error ?? ''}`); }
    });
  } catch (err) {
    count('openFailed');
    noteError(`open: ${(err as Error).message}`);
  } finally {
    opening--;
  }
}

function closeConsole(c: Console): void {
  c.closing = true;
  count('closedByBench');
  c.ws.close();
}

/** Opens consoles until `CONSOLES` are live or opening, at most MAX_OPENING at once. */
function refill(env: Env): void {
  while (!stopping && live.size + opening < CONSOLES && opening < MAX_OPENING) void openConsole(env);
}

/** Every second: close `CHURN` consoles that have seen their echo (random ones), open as many. */
function churnTick(): void {
  const candidates = [...live.values()].filter((c) => c.echoed && !c.closing);
  for (let i = 0; i < CHURN && candidates.length > 0; i++) {
    const k = Math.floor(Math.random() * candidates.length);
    closeConsole(candidates.splice(k, 1)[0]!);
  }
}

let pointerCursor = 0;
/** Spreads one PointerEvent per console per POINTER_EVERY_MS over the second-ticks. */
function pointerTick(): void {
  const all = [...live.values()];
  const share = Math.ceil(all.length / (POINTER_EVERY_MS / 1000));
  for (let i = 0; i < share && all.length > 0; i++) {
    const c = all[(pointerCursor++) % all.length]!;
    if (!c.closing) c.ws.send(POINTER);
  }
}

// ------------------------------------------------------------------------------------------------
// API load and assistance

let apiInFlight = 0;
function apiTick(env: Env, tick: number): void {
  const fire = (what: 'mint' | 'list', n: number) => {
    for (let i = 0; i < n; i++) {
      if (apiInFlight >= 32) return;
      apiInFlight++;
      const node = (tick + i) % 2;
      const p = what === 'mint'
        ? mint(env, node, SERVERS[i % SERVERS.length]!).then(() => count('mints'))
        : timedCall(`${env.nodes[node]!.url}${i % 2 === 0 ? `/v1/${projectId}/cloudservers/detail` : `/v2/${projectId}/desktops`}`, { headers: { 'x-auth-token': env.tokens.op[node]! } })
          .then((r) => { if (r.status !== 200) throw new Error(`list: ${r.status} ${r.text.slice(0, 200)}`); count('lists'); });
      p.catch((err: unknown) => { count(what === 'mint' ? 'mintErrors' : 'listErrors'); noteError((err as Error).message); }).finally(() => { apiInFlight--; });
    }
  };
  // Fractional rates: spread over seconds.
  const n = (rate: number) => Math.floor(rate * (tick + 1)) - Math.floor(rate * tick);
  fire('mint', n(MINT_RATE));
  fire('list', n(LIST_RATE));
}

let assistRound = 0;
/** One remote-assistance cycle across the two nodes; throws on anything unexpected. */
async function assistCycle(env: Env): Promise<void> {
  const a = assistRound++ % 2;
  const b = 1 - a;
  const url = (n: number) => `${env.nodes[n]!.url}/v2/${projectId}/desktops/${desktopId}/remote-assistance`;
  const created = await timedCall(url(a), { method: 'POST', headers: { 'x-auth-token': env.tokens.deskuser[a]! } });
  if (created.status !== 200) throw new Error(`assistance create: ${created.status} ${created.text.slice(0, 200)}`);
  let helper: RawWs | undefined;
  try {
    const shown = await timedCall(url(b), { headers: { 'x-auth-token': env.tokens.helpdesk[b]! } });
    const s = shown.body as { invitation_code?: string; share_space_passwd?: string; status?: string };
    if (shown.status !== 200 || !s.invitation_code || !s.share_space_passwd) throw new Error(`assistance show: ${shown.status} ${shown.text.slice(0, 200)}`);
    const joined = await timedCall(`${env.nodes[a]!.url}/assist/v1/join`, { json: { code: s.invitation_code, password: s.share_space_passwd, name: `soak helper ${assistRound}` } });
    const consoleUrl = (joined.body as { console_url?: string } | undefined)?.console_url;
    if (joined.status !== 200 || !consoleUrl) throw new Error(`assistance join: ${joined.status} ${joined.text.slice(0, 200)}`);
    helper = openRawWs(websocketUrl(new URL(consoleUrl, env.nodes[a]!.url).toString(), env.nodes[a]!.url), true, 60_000);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([helper.ready, new Promise((_r, reject) => { timer = setTimeout(() => reject(new Error('helper console not ready in time')), OPEN_TIMEOUT_MS); })]);
    } finally { clearTimeout(timer); }
    helper.send(POINTER); // view only: dropped by the gateway
    await sleep(3000);
  } finally {
    const cancelled = await timedCall(url(b), { method: 'DELETE', headers: { 'x-auth-token': env.tokens.helpdesk[b]! } });
    if (cancelled.status !== 204) noteError(`assistance cancel: ${cancelled.status} ${cancelled.text.slice(0, 200)}`);
  }
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([helper.closed, new Promise<{ code: null; error: string }>((r) => { timer = setTimeout(() => r({ code: null, error: 'not closed 15 s after cancel' }), 15_000); })]);
  clearTimeout(timer);
  if (closed.code !== 4020) { helper.destroy(); throw new Error(`helper closed with ${closed.code ?? '-'} ${closed.error ?? ''} (4020 expected)`); }
}

// ------------------------------------------------------------------------------------------------
// Sampling

interface NodeSample { rssMiB: number; fds: number; loopP99ms: number; handles: number; timers: number; heapMiB: number; active: number; dbConns: number; cpuS: number }
interface Sample { t: number; phase: 'baseline' | 'ramp' | 'soak' | 'drain' | 'end'; nodes: NodeSample[]; redisMiB: number; live: number; openRows: number; rows: number; tokens: number; window: Window; benchFds: number }

function openFds(pid: number): number {
  try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return NaN; }
}

function metric(text: string, name: string, labels = ''): number {
  const re = new RegExp(`^${name}${labels ? `\\{${labels.replace(/[{}"]/g, (c) => `\\${c}`)}\\}` : ''}\\s+(\\S+)`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
}

const appName = (i: number, schema: string) => `soak-${i}-${schema}`.slice(0, 63);

async function sample(env: Env, schema: TestSchema, redis: TestRedis, phase: Sample['phase'], t0: number): Promise<Sample> {
  const conns = await schema.admin('select application_name, count(*)::int as n from pg_stat_activity where application_name like $1 group by 1', [`soak-%-${schema.name}`]);
  const byApp = new Map<string, number>(conns.rows.map((r: { application_name: string; n: number }) => [r.application_name, r.n]));
  const nodes: NodeSample[] = [];
  for (const [i, n] of env.nodes.entries()) {
    let text = '';
    try {
      const r = await fetch(`${n.url}/metrics`, { signal: AbortSignal.timeout(5000) });
      text = await r.text();
    } catch (err) { noteError(`metrics node ${i}: ${(err as Error).message}`); }
    nodes.push({
      rssMiB: rssKiB(n.pid) / 1024, fds: openFds(n.pid), loopP99ms: metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
      handles: metric(text, 'nodejs_active_handles_total'), timers: metric(text, 'nodejs_active_resources', 'type="Timeout"'),
      heapMiB: metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20, active: metric(text, 'porthole_console_sessions_active'),
      dbConns: byApp.get(appName(i, schema.name)) ?? 0, cpuS: treeCpuMs(n.pid) / 1000,
    });
  }
  const info = await redis.client.info('memory');
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
  const rows = (await schema.admin(`select count(*)::int as n, count(*) filter (where ended_at is null)::int as open from ${schema.name}.console_sessions`)).rows[0] as { n: number; open: number };
  const tokens = (await schema.admin(`select count(*)::int as n from ${schema.name}.console_tokens`)).rows[0].n as number;
  const s: Sample = { t: (Date.now() - t0) / 1000, phase, nodes, redisMiB: used / 2 ** 20, live: live.size, openRows: rows.open, rows: rows.n, tokens, window: win, benchFds: openFds(process.pid) };
  win = newWindow();
  const p = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
  log(`${phase} t=${s.t.toFixed(0)}s live ${s.live} | ` + nodes.map((x, i) => `n${i}: rss ${x.rssMiB.toFixed(1)} MiB heap ${x.heapMiB.toFixed(1)} fds ${x.fds} p99 ${x.loopP99ms.toFixed(1)} ms timers ${p(x.timers)} handles ${p(x.handles)} active ${p(x.active)} db ${x.dbConns}`).join(' | ') +
    ` | redis ${s.redisMiB.toFixed(2)} MiB rows ${s.rows} open ${s.openRows} tokens ${s.tokens} | opened ${s.window.opened} failed ${s.window.openFailed} dropped ${s.window.droppedUnexpectedly} mints ${s.window.mints}/${s.window.mintErrors} lists ${s.window.lists}/${s.window.listErrors} assist ${s.window.assistOk}/${s.window.assistFailed}`);
  return s;
}

/** Least-squares slope of y over t (per minute). */
function slopePerMin(points: { t: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0, den = 0;
  for (const p of points) { num += (p.t - mt) * (p.y - my); den += (p.t - mt) ** 2; }
  return den === 0 ? NaN : (num / den) * 60;
}

function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(MAIN_JS)) throw new Error('dist/src/main.js is missing: run npm run build first');
  const nofile = raiseNofile(65_536);
  const loadStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  log(`soak: ${MINUTES} min, ${CONSOLES} consoles, churn ${CHURN}/s, ${MINT_RATE} mints/s, ${LIST_RATE} lists/s, assistance every ${ASSIST_EVERY_S} s; load ${loadStart}`);
  const schema = await createTestSchema();
  const redis = await createTestRedis();
  let target: Child | undefined;
  const nodes: NodeProcess[] = [];
  const samples: Sample[] = [];
  const t0 = Date.now();
  let verdict: Verdict | undefined;
  try {
    target = await startChild('target', process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/target.ts'), '--stream-mib', '1']);
    const ports = target.info.ports as Record<string, number>;
    const fleet = fleetYaml(ports['rfb-echo']!, ports['rfb-idle']!);
    const masterKey = newMasterKey();
    for (let i = 0; i < 2; i++) {
      const u = new URL(schema.url);
      u.searchParams.set('application_name', appName(i, schema.name));
      nodes.push(await startNode({
        name: `soak${i}`, databaseUrl: u.toString(), masterKey, redisUrl: TEST_REDIS_URL, redisPrefix: redis.prefix, fleet, readyMs: 60_000,
        args: ['--log-level', 'warn', '--ratelimit-per-second', '1000000', '--ratelimit-per-minute', '60000000', '--ratelimit-per-address-per-second', '1000000', '--ratelimit-per-address-per-minute', '60000000', '--console-token-ttl-seconds', '600'],
      }));
    }
    for (const [i, n] of nodes.entries()) {
      void n.exited.then(({ code, signal }) => {
        if (stopping || nodeDied) return;
        const last = n.logs().slice(-3).map((l) => l.msg).filter(Boolean).join(' / ');
        nodeDied = `node ${i} (pid ${n.pid}) exited (${signal ?? `code ${code}`}) at t=${((Date.now() - t0) / 1000).toFixed(0)} s, not stopped by the bench${last ? `; its last log lines: ${last}` : ''}`;
        log(`ABORT: ${nodeDied}`);
      });
    }
    const tokens = { op: [] as string[], helpdesk: [] as string[], deskuser: [] as string[] };
    for (const n of nodes) for (const user of ['op', 'helpdesk', 'deskuser'] as const) tokens[user].push(await login(n.url, user, PASSWORD, DOMAIN, projectId));
    const env: Env = { nodes, tokens };
    // Baseline: no console yet; one mint and one list per node warmed the paths.
    for (const i of [0, 1]) { await mint(env, i, SERVERS[0]!); await call(`${nodes[i]!.url}/v1/${projectId}/cloudservers/detail`, { headers: { 'x-auth-token': tokens.op[i]! } }); }
    await sleep(SAMPLE_MS);
    samples.push(await sample(env, schema, redis, 'baseline', t0));

    // Ramp up, bounded.
    const rampUntil = Date.now() + Math.max(60_000, CONSOLES * 200);
    while (live.size < CONSOLES && Date.now() < rampUntil) { refill(env); await sleep(100); }
    log(`ramp: ${live.size}/${CONSOLES} consoles live after ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    // The soak: one tick a second, a sample every 10 s, assistance every ASSIST_EVERY_S.
    const soakStart = Date.now();
    const soakEnd = soakStart + MINUTES * 60_000;
    let tick = 0;
    let nextSample = Date.now() + SAMPLE_MS;
    let nextAssist = Date.now() + 5000;
    let assisting = false;
    while (Date.now() < soakEnd && !nodeDied) {
      const tickStart = Date.now();
      churnTick();
      refill(env);
      pointerTick();
      apiTick(env, tick++);
      if (ASSIST_EVERY_S > 0 && !assisting && Date.now() >= nextAssist) {
        assisting = true;
        nextAssist = Date.now() + ASSIST_EVERY_S * 1000;
        void Promise.race([assistCycle(env), sleep(60_000).then(() => { throw new Error('assistance cycle not done in 60 s'); })])
          .then(() => count('assistOk'), (err: unknown) => { count('assistFailed'); noteError((err as Error).message); })
          .finally(() => { assisting = false; });
      }
      if (Date.now() >= nextSample) {
        nextSample += SAMPLE_MS;
        samples.push(await sample(env, schema, redis, 'soak', t0));
      }
      await sleep(Math.max(0, 1000 - (Date.now() - tickStart)));
    }

    const soakStopped = Date.now();
    // Drain: stop the load, close every console, wait (bounded) for the nodes and the store to settle.
    stopping = true;
    const drainT0 = Date.now();
    for (let i = 0; assisting && i < 600; i++) await sleep(100);
    for (let i = 0; (apiInFlight > 0 || opening > 0) && i < 300; i++) await sleep(100);
    const closing = [...live.values()].map((c) => { c.closing = true; c.ws.close(); return c.ws.closed; });
    await Promise.race([Promise.all(closing), sleep(30_000)]);
    for (const c of live.values()) c.ws.destroy();
    const base = samples[0]!;
    let last: Sample | undefined;
    for (const until = Date.now() + (nodeDied ? 0 : 60_000); Date.now() < until;) {
      await sleep(5000);
      last = await sample(env, schema, redis, 'drain', t0);
      samples.push(last);
      const settled = last.openRows === 0 && last.nodes.every((n, i) => n.active === 0 && n.fds <= base.nodes[i]!.fds + 4 && n.timers <= base.nodes[i]!.timers + 4);
      if (settled) break;
    }
    log(`drain: ${((Date.now() - drainT0) / 1000).toFixed(0)} s`);
    const end = await sample(env, schema, redis, 'end', t0);
    samples.push(end);
    const rowCheck = (await schema.admin(`select resource_kind, count(*)::int as n,
        count(*) filter (where ended_at is null)::int as open,
        count(*) filter (where ended_at is not null and close_reason is null)::int as no_reason,
        count(*) filter (where bytes_to_client = 0)::int as zero_to_client,
        count(*) filter (where bytes_to_backend = 0)::int as zero_to_backend,
        coalesce(sum(bytes_to_client), 0)::bigint as to_client, coalesce(sum(bytes_to_backend), 0)::bigint as to_backend
      from ${schema.name}.console_sessions group by resource_kind order by 1`)).rows as RowCheck[];
    const targetOpen = Number((await target.ask('stats')).open);
    verdict = { rowCheck, targetOpen, soakMinutes: (soakStopped - soakStart) / 60_000, nofile: nofile.soft };
    writeSection(samples, verdict, loadStart);
  } finally {
    stopping = true;
    for (const c of live.values()) c.ws.destroy();
    await Promise.all(nodes.map((n) => n.stop()));
    await target?.stop();
    await redis.cleanup().catch(() => undefined);
    await schema.drop().catch(() => undefined);
  }
  if (verdict && !verdict.ok) process.exitCode = 1;
}

interface RowCheck { resource_kind: string; n: number; open: number; no_reason: number; zero_to_client: number; zero_to_backend: number; to_client: string; to_backend: string }
interface Verdict { rowCheck: RowCheck[]; targetOpen: number; soakMinutes: number; nofile: number; ok?: boolean }

function writeSection(samples: Sample[], v: Verdict, loadStart: string): void {
  const base = samples.find((s) => s.phase === 'baseline')!;
  const soak = samples.filter((s) => s.phase === 'soak');
  const first = soak[0] ?? base;
  const lastSoak = soak[soak.length - 1] ?? base;
  const end = samples[samples.length - 1]!;
  const afterWarmup = soak.slice(Math.floor(soak.length / 3));
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const perNode = [0, 1].map((i) => {
    const rss = slopePerMin(afterWarmup.map((s) => ({ t: s.t, y: s.nodes[i]!.rssMiB })));
    const heap = slopePerMin(afterWarmup.map((s) => ({ t: s.t, y: s.nodes[i]!.heapMiB })));
    const p99s = soak.map((s) => s.nodes[i]!.loopP99ms);
    return { rss, heap, p99max: Math.max(...p99s), p99med: percentile(p99s, 0.5) };
  });
  const cloud = v.rowCheck.find((r) => r.resource_kind === 'cloudserver');
  const desk = v.rowCheck.find((r) => r.resource_kind === 'desktop');
  const openRows = v.rowCheck.reduce((a, r) => a + r.open, 0);
  const fdsBack = [0, 1].every((i) => end.nodes[i]!.fds <= base.nodes[i]!.fds + 4);
  const timersBack = [0, 1].every((i) => end.nodes[i]!.timers <= base.nodes[i]!.timers + 4);
  // A smoke run (under 5 minutes) is mostly warm-up: its slope says nothing, so only longer runs are judged on it.
  const rssOk = MINUTES < 5 || perNode.every((n) => n.rss <= 1);
  const sessionsOk = openRows === 0 && (cloud?.zero_to_backend ?? 1) === 0 && (cloud?.zero_to_client ?? 1) === 0 && end.nodes.every((n) => n.active === 0) && v.targetOpen === 0;
  const healthy = total.openFailed === 0 && total.droppedUnexpectedly === 0 && total.mintErrors === 0 && total.listErrors === 0 && total.assistFailed === 0;
  v.ok = rssOk && sessionsOk && fdsBack && timersBack && healthy && !nodeDied;
  const yes = (b: boolean) => (b ? 'met' : '**missed**');
  const L: string[] = [];
  L.push(BEGIN, '## Soak with churn: two nodes on PostgreSQL + Redis (reliability issue, item 3)', '');
  L.push(`Recorded by \`npm run bench:soak -- --minutes ${MINUTES} --consoles ${CONSOLES}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${MINUTES < 5 ? ' (a smoke run: too short for the slopes to mean much)' : ''}.`);
  L.push(`Machine: ${cpuModel()}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}; PostgreSQL and Redis on the same machine; open files ${v.nofile};`);
  L.push(`load average at the start ${loadStart}, at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other engineers' work shares this machine).`);
  L.push(`Load: ${CONSOLES} consoles held for ${f(v.soakMinutes)} min through two \`porthole serve\` nodes (each minted on one node, redeemed on the other) to the bench target's`);
  L.push(`RFB echo server; every second ${CHURN} consoles closed and as many opened; each console sends a PointerEvent every ${POINTER_EVERY_MS / 1000} s (echoed back);`);
  L.push(`${MINT_RATE} extra mints/s and ${LIST_RATE} list calls/s spread over both nodes; a remote-assistance cycle (create, show, join, watch 3 s, cancel on the other node, helper closed 4020) every ${ASSIST_EVERY_S} s.`);
  if (nodeDied) L.push('', `**Aborted after ${f(v.soakMinutes)} of ${MINUTES} min**: ${nodeDied.replace(/\|/g, '/')}. The figures below are up to then; the end-of-run checks do not apply.`, '');
  L.push(`Sampled every ${SAMPLE_MS / 1000} s; RSS slope: least squares over the soak samples after the first third; event-loop delay p99: prom-client's histogram (10 ms resolution, so ≈ 10 ms when idle), reset at each scrape.`, '');
  L.push('| per node | node 0 | node 1 | goal | verdict |', '|---|---|---|---|---|');
  L.push(`| RSS at baseline / soak start / soak end / after close, MiB | ${[0, 1].map((i) => `${f(base.nodes[i]!.rssMiB)} / ${f(first.nodes[i]!.rssMiB)} / ${f(lastSoak.nodes[i]!.rssMiB)} / ${f(end.nodes[i]!.rssMiB)}`).join(' | ')} | — | — |`);
  L.push(`| RSS slope after warm-up, MiB/min | ${f(perNode[0]!.rss, 2)} | ${f(perNode[1]!.rss, 2)} | ≤ 1 | ${yes(rssOk)} |`);
  L.push(`| JS heap used slope after warm-up, MiB/min | ${f(perNode[0]!.heap, 2)} | ${f(perNode[1]!.heap, 2)} | — | — |`);
  L.push(`| open descriptors at baseline / soak start / soak end / after close | ${[0, 1].map((i) => `${base.nodes[i]!.fds} / ${first.nodes[i]!.fds} / ${lastSoak.nodes[i]!.fds} / ${end.nodes[i]!.fds}`).join(' | ')} | back to baseline (+4) | ${yes(fdsBack)} |`);
  L.push(`| event-loop delay p99 at soak start / end (median, max over the soak), ms | ${[0, 1].map((i) => `${f(first.nodes[i]!.loopP99ms)} / ${f(lastSoak.nodes[i]!.loopP99ms)} (${f(perNode[i]!.p99med)}, ${f(perNode[i]!.p99max)})`).join(' | ')} | — | — |`);
  L.push(`| active timers at baseline / soak end / after close | ${[0, 1].map((i) => `${base.nodes[i]!.timers} / ${lastSoak.nodes[i]!.timers} / ${end.nodes[i]!.timers}`).join(' | ')} | back to baseline (+4) | ${yes(timersBack)} |`);
  L.push(`| active handles at baseline / soak end / after close | ${[0, 1].map((i) => `${base.nodes[i]!.handles} / ${lastSoak.nodes[i]!.handles} / ${end.nodes[i]!.handles}`).join(' | ')} | — | — |`);
  L.push(`| database connections (pg_stat_activity) at baseline / soak end / after close | ${[0, 1].map((i) => `${base.nodes[i]!.dbConns} / ${lastSoak.nodes[i]!.dbConns} / ${end.nodes[i]!.dbConns}`).join(' | ')} | ≤ pool (10) | ${yes(samples.every((s) => s.nodes.every((n) => n.dbConns <= 10)))} |`);
  L.push(`| CPU used during the soak, s | ${[0, 1].map((i) => f(lastSoak.nodes[i]!.cpuS - first.nodes[i]!.cpuS, 0)).join(' | ')} | — | — |`);
  L.push('');
  const opsPerS = (n: number) => f(n / (v.soakMinutes * 60 + 1e-9), 1);
  L.push('| run | value |', '|---|---|');
  L.push(`| consoles opened / closed by the bench / dropped unexpectedly / failed to open | ${total.opened} / ${total.closedByBench} / ${total.droppedUnexpectedly} / ${total.openFailed} |`);
  L.push(`| extra mints ok / failed; list calls ok / failed | ${total.mints} / ${total.mintErrors} (${opsPerS(total.mints)}/s); ${total.lists} / ${total.listErrors} |`);
  L.push(`| assistance cycles ok / failed | ${total.assistOk} / ${total.assistFailed} |`);
  L.push(`| console session rows (cloud servers): total / still open / no close reason / 0 bytes to client / 0 bytes to backend | ${cloud ? `${cloud.n} / ${cloud.open} / ${cloud.no_reason} / ${cloud.zero_to_client} / ${cloud.zero_to_backend}` : '—'} |`);
  L.push(`| helper session rows (desktop): total / still open / no close reason | ${desk ? `${desk.n} / ${desk.open} / ${desk.no_reason}` : '—'} |`);
  L.push(`| sessions active on the nodes after close; backend sockets open at the target | ${end.nodes.map((n) => n.active).join(' + ')}; ${v.targetOpen} |`);
  L.push(`| Redis used_memory at baseline / soak end / after close, MiB | ${f(base.redisMiB, 2)} / ${f(lastSoak.redisMiB, 2)} / ${f(end.redisMiB, 2)} |`);
  L.push(`| console_tokens rows at soak end / after close | ${lastSoak.tokens} / ${end.tokens} |`);
  L.push(`| API latency over the soak (mint, list, assistance calls), p50 / p99 ms | ${f(percentile(soak.flatMap((s) => s.window.apiMs), 0.5))} / ${f(percentile(soak.flatMap((s) => s.window.apiMs), 0.99))} |`);
  L.push(`| no leaked session (store, nodes, target), every row closed with byte counts | ${yes(sessionsOk)} |`);
  L.push(`| healthy (no failed open, drop or API error) | ${yes(healthy)} |`);
  if (errors.size) {
    L.push('', 'Errors seen:', '', ...[...errors].map(([k, n]) => `- ${n}× ${k.replace(/\|/g, '/')}`));
  }
  L.push('', '<details><summary>Samples (node 0 | node 1: RSS MiB, heap MiB, descriptors, event-loop p99 ms, timers, db connections)</summary>', '');
  L.push('| t s | phase | live | node 0 | node 1 | Redis MiB | open rows | opened / dropped / failed in the window |', '|---|---|---|---|---|---|---|---|');
  for (const s of samples) {
    L.push(`| ${s.t.toFixed(0)} | ${s.phase} | ${s.live} | ${s.nodes.map((n) => `${f(n.rssMiB)}, ${f(n.heapMiB)}, ${n.fds}, ${f(n.loopP99ms)}, ${n.timers}, ${n.dbConns}`).join(' | ')} | ${f(s.redisMiB, 2)} | ${s.openRows} | ${s.window.opened} / ${s.window.droppedUnexpectedly} / ${s.window.openFailed} |`);
  }
  L.push('', '</details>', END);
  const section = L.join('\n');
  writeResultsSection(OUT, BEGIN, END, section);
  log(`RSS slope MiB/min: ${perNode.map((n) => f(n.rss, 2)).join(', ')}; heap slope: ${perNode.map((n) => f(n.heap, 2)).join(', ')}; sessions ok ${sessionsOk}, fds back ${fdsBack}, timers back ${timersBack}, healthy ${healthy}`);
  log(`wrote ${OUT}`);
}

main().then(() => process.exit(process.exitCode ?? 0), (err: unknown) => { console.error('soak failed:', err); process.exit(1); });
