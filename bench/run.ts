/**
 * `npm run bench`: Porthole's relay and API measured side by side with direct TCP, a plain Node
 * ws+net relay (the runtime reference) and Debian's websockify, in one run, on loopback, and written
 * to bench/RESULTS.md. See bench/README.md for what each number means.
 *
 * Every phase has a deadline and the whole run a watchdog; every process started here is killed on
 * exit (bench/lib/proc.ts). Flags: --quick (small sizes, a smoke run), --stream-mib N, --runs N,
 * --no-10k, --no-profile, --phases throughput,rtt,idle,mint,profile, --out FILE.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cpuModel, descendants, raiseNofile, startChild, treeCpuMs, treePssKiB, type Child } from './lib/proc.js';
import { httpLoad, idleSessions, rttProbe, rttSummary, tcpPipe, tcpStream, type IdleResult, type LoadResult, type RttResult, type StreamResult } from './lib/clients.js';
import { rawWsPipe, rawWsStream } from './lib/raw-ws.js';
import { signedRequest } from '../test/helpers/aksk.js';
import { parseStraceSummary, summarizeCpuProfile, type ProfileSummary, type SyscallRow } from './lib/profile.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] ?? dflt : dflt; };
const QUICK = flag('quick');
const STREAM_MIB = Number(opt('stream-mib', QUICK ? '32' : '256'));
const RUNS = Number(opt('runs', QUICK ? '1' : '5'));
const RTT_SAMPLES = QUICK ? 500 : 3000;
const IDLE_SIZES = QUICK ? [200] : flag('no-10k') ? [1000] : [1000, 10_000];
const MINT_SECONDS = QUICK ? 1.5 : 4;
const ALL_PHASES = ['throughput', 'rtt', 'idle', 'mint', 'profile'];
/** `--phases throughput,rtt` runs only those (for quick comparisons; RESULTS.md then has only them). */
const PHASES = new Set(opt('phases', ALL_PHASES.join(',')).split(',').filter((x) => ALL_PHASES.includes(x)));
if (flag('no-profile')) PHASES.delete('profile');
const OUT = opt('out', path.join(ROOT, 'bench', QUICK || PHASES.size < ALL_PHASES.length ? 'RESULTS.partial.md' : 'RESULTS.md'));
const WATCHDOG_MS = 6 * 60_000;
const TSX = ['--import', 'tsx'];

const watchdog = setTimeout(() => { console.error(`bench: watchdog: not finished after ${WATCHDOG_MS / 1000} s; stopping everything`); process.exit(2); }, WATCHDOG_MS);
watchdog.unref();
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

type Path = 'direct' | 'reference' | 'websockify' | 'porthole';
const PATHS: Path[] = ['direct', 'reference', 'websockify', 'porthole'];
const LABEL: Record<Path, string> = { direct: 'direct TCP', reference: 'reference ws+net', websockify: 'websockify', porthole: 'Porthole' };

// ------------------------------------------------------------------------------------------------
// Setup

const nofile = raiseNofile(65_536);
const loadAtStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
const versions = {
  node: process.version,
  ws: (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/ws/package.json'), 'utf8')) as { version: string }).version,
  fastify: (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/fastify/package.json'), 'utf8')) as { version: string }).version,
  porthole: (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
  commit: tryExec('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) + (tryExec('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) ? ' (+ uncommitted changes in src/)' : ''),
  websockify: tryExec('dpkg-query', ['-W', '-f=${Version}', 'websockify']) || (tryExec('websockify', ['--help']) ? 'installed (version unknown)' : ''),
  python: tryExec('/usr/bin/python3', ['--version']),
  kernel: os.release(),
  /** The relay under test, byte for byte (the tree changes under other engineers' hands). */
  relaySha: createHash('sha256').update(readFileSync(path.join(ROOT, 'src/proxy/console-session.ts'))).digest('hex').slice(0, 12),
};
const machine = { cpu: cpuModel(), cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), nofile: `${nofile.soft}${nofile.note ? ` (${nofile.note})` : ''}` };
const haveWebsockify = Boolean(versions.websockify);
const haveStrace = Boolean(tryExec('strace', ['-V']));

function tryExec(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).toString().trim(); } catch { return ''; }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} not listening after ${ms} ms`);
}

async function startWebsockify(targetPort: number): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = await startChild('websockify', 'websockify', [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`], { readyWhen: /proxying from/, readyMs: 10_000 });
  await waitPort(port, 5000);
  return { child, port };
}

/** Busy CPU time of the whole machine so far (all cores), ms. */
function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy * 10;
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function openFds(pid: number): number {
  try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return NaN; }
}

/** Waits (bounded) until a process has no child processes left (websockify's per-connection workers reaped). */
async function childrenGone(pid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (descendants(pid).length > 0 && Date.now() < until) await sleep(50);
}

interface PortholeInfo { url: string; projectId: string; servers: Record<'stream' | 'echo' | 'idle', string>; user: string; password: string; domain: string }

async function porthole(target: Child, nodeArgs: string[] = []): Promise<{ child: Child; info: PortholeInfo; iamToken: string; userId: string; port: number }> {
  const ports = target.info.ports as Record<string, number>;
  const child = await startChild('porthole', process.execPath, [...nodeArgs, '--expose-gc', ...TSX, path.join(ROOT, 'bench/porthole-node.ts'),
    '--rfb-stream', String(ports['rfb-stream']), '--rfb-echo', String(ports['rfb-echo']), '--rfb-idle', String(ports['rfb-idle'])], { readyMs: 60_000 });
  const info = child.info as unknown as PortholeInfo;
  const res = await fetch(`${info.url}/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: info.user, password: info.password, domain: { name: info.domain } } } }, scope: { project: { id: info.projectId } } } }),
  });
  if (res.status !== 201) throw new Error(`porthole login: ${res.status} ${await res.text()}`);
  const userId = ((await res.json()) as { token: { user: { id: string } } }).token.user.id;
  return { child, info, iamToken: res.headers.get('x-subject-token')!, userId, port: Number(new URL(info.url).port) };
}

/**
 * An access key for the bench user and one signed mint request (SDK-HMAC-SHA256, as the official
 * SDKs sign), replayed as is by the load: a signature stays valid for its ±15-minute window.
 */
async function signedMint(p: Awaited<ReturnType<typeof porthole>>): Promise<Record<string, string>> {
  const res = await fetch(`${p.info.url}/v3.0/OS-CREDENTIAL/credentials`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': p.iamToken }, body: JSON.stringify({ credential: { user_id: p.userId } }),
  });
  if (res.status !== 201) throw new Error(`porthole access key: ${res.status} ${await res.text()}`);
  const c = ((await res.json()) as { credential: { access: string; secret: string } }).credential;
  const r = signedRequest(p.info.url, { ak: c.access, sk: c.secret }, {
    method: 'POST', path: `/v1/${p.info.projectId}/cloudservers/${p.info.servers.idle}/remote_console`, body: MINT_BODY, projectId: p.info.projectId,
  });
  return r.headers;
}

const MINT_BODY = JSON.stringify({ remote_console: { protocol: 'vnc', type: 'novnc' } });

/** Mints `n` console URLs for one server over keep-alive HTTP and returns their WebSocket URLs. */
async function mintWsUrls(p: Awaited<ReturnType<typeof porthole>>, server: 'stream' | 'echo' | 'idle', n: number): Promise<string[]> {
  const urls: string[] = [];
  const r = await httpLoad({
    port: p.port, method: 'POST', path: `/v1/${p.info.projectId}/cloudservers/${p.info.servers[server]}/remote_console`,
    headers: { 'content-type': 'application/json', 'x-auth-token': p.iamToken }, body: MINT_BODY,
    connections: Math.min(8, n), durationMs: 120_000, maxRequests: n,
    onBody: (b) => {
      const u = new URL((JSON.parse(b.toString()) as { remote_console: { url: string } }).remote_console.url);
      urls.push(`ws://${u.host}${u.pathname.replace(/vnc_auto\.html$/, 'websockify')}?token=${u.searchParams.get('token')}`);
    },
  });
  if (urls.length !== n) throw new Error(`minted ${urls.length} of ${n}: ${JSON.stringify(r.statuses)}`);
  return urls;
}

// ------------------------------------------------------------------------------------------------
// Results

interface ThroughputRun extends StreamResult { cpuMs: number; /** CPU of the bench client and of the target over the run. */ clientMs: number; targetMs: number; /** CPU used on this machine by processes other than the bench's during the run, % of all cores. */ otherLoadPct: number }
const throughput: Record<Path, ThroughputRun[]> = { direct: [], reference: [], websockify: [], porthole: [] };
const rtt: Partial<Record<Path, RttResult>> = {};
interface IdleRow { path: Path; n: number; held: number; failed: number; dropped: number; /** Marginal: slope between n/2 and n sessions. */ perSessionKiB: number; /** Whole delta from no sessions, divided by sessions held. */ totalKiB: number; /** JS heap used + external, whole delta per session (Node relays). */ heapKiB: number; memNote: string; openS: number; note?: string; /** The relay process's open-file limit leaves room for fewer than n sessions. */ fdLimited?: boolean }
const idle: IdleRow[] = [];
/** One timed HTTP load with the CPU its server process used, µs per answered request. */
interface MintLoad extends LoadResult { serverUsPerReq: number }
/** Minting rounds: each round runs every route back to back, so a round's ratios share the machine's state. */
interface MintRound { hello: MintLoad; helloInsert: MintLoad; healthz: MintLoad; porthole: MintLoad; aksk: MintLoad }
let mint: MintRound[] | undefined;
const profiles: { what: string; summary: ProfileSummary; mib: number }[] = [];
const syscalls: { what: string; rows: SyscallRow[]; mib: number }[] = [];
const notes: string[] = [];

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN; };

// ------------------------------------------------------------------------------------------------
// Phases

async function main(): Promise<void> {
  const started = Date.now();
  log(`bench: ${machine.cpu}, ${machine.cores} cores; stream ${STREAM_MIB} MiB × ${RUNS} runs; idle ${IDLE_SIZES.join(', ')}; out ${OUT}`);
  if (nofile.note) notes.push(`File descriptors: ${nofile.note}.`);
  const target = await startChild('target', process.execPath, [...TSX, path.join(ROOT, 'bench/target.ts'), '--stream-mib', String(STREAM_MIB)]);
  const tports = target.info.ports as Record<string, number>;
  const N = target.info.streamBytes as number;
  const ref = await startChild('reference relay', process.execPath, ['--expose-gc', ...TSX, path.join(ROOT, 'bench/ref-relay.ts')]);
  const refPort = ref.info.port as number;
  const ph = await porthole(target);
  if (!haveWebsockify) notes.push('websockify is not installed (`apt-get install -y websockify`): its columns are empty.');

  if (PHASES.has('throughput')) {
    // A: downstream throughput, interleaved runs. Relay CPU is the relay's process tree (/proc) over the run.
    log('throughput');
    let wsfyStream: { child: Child; port: number } | undefined = haveWebsockify ? await startWebsockify(tports.stream!) : undefined;
    // One unrecorded warm-up run per path (JIT, TCP autotuning), then RUNS interleaved runs.
    for (let run = -1; run < RUNS; run++) {
      for (const p of PATHS) {
        if (p === 'websockify' && !wsfyStream) continue;
        const timeoutMs = 60_000;
        let url = '';
        let pid = 0;
        if (p === 'reference') { url = `ws://127.0.0.1:${refPort}/?port=${tports.stream}`; pid = ref.pid; }
        if (p === 'websockify') { url = `ws://127.0.0.1:${wsfyStream!.port}/`; pid = wsfyStream!.child.pid; }
        if (p === 'porthole') { url = (await mintWsUrls(ph, 'stream', 1))[0]!; pid = ph.child.pid; }
        const cpu0 = pid ? treeCpuMs(pid) : 0;
        const client0 = selfCpuMs();
        const target0 = treeCpuMs(target.pid);
        const ours0 = client0 + target0 + cpu0;
        const busy0 = machineBusyMs();
        const w0 = performance.now();
        const r = p === 'direct' ? await tcpStream(tports.stream!, N, timeoutMs) : await rawWsStream(url, N, { rfb: p === 'porthole', timeoutMs });
        if (p === 'websockify') await childrenGone(pid, 3000);
        else if (pid) await sleep(50);
        const cpuMs = pid ? treeCpuMs(pid) - cpu0 : NaN;
        const clientMs = selfCpuMs() - client0;
        const targetMs = treeCpuMs(target.pid) - target0;
        const other = machineBusyMs() - busy0 - (selfCpuMs() + treeCpuMs(target.pid) + (pid ? treeCpuMs(pid) : 0) - ours0);
        const otherLoadPct = Math.max(0, (100 * other) / ((performance.now() - w0) * machine.cores));
        if (run < 0) continue;
        throughput[p].push({ ...r, cpuMs, clientMs, targetMs, otherLoadPct });
        log(`  ${LABEL[p]} run ${run + 1}: ${r.mibps.toFixed(0)} MiB/s, ${r.ok ? 'checksum ok' : `LOST BYTES: ${r.error ?? 'bad checksum'}`}${pid ? `, relay CPU ${(cpuMs / STREAM_MIB).toFixed(2)} ms/MiB` : ''}, client ${(clientMs / STREAM_MIB).toFixed(2)}, target ${(targetMs / STREAM_MIB).toFixed(2)} ms/MiB, close ${r.closeCode ?? '-'}, other load ${otherLoadPct.toFixed(0)}%`);
      }
    }
    await wsfyStream?.child.stop();
    wsfyStream = undefined;
  }

  if (PHASES.has('rtt')) {
    // B: round trips of a 6-byte message.
    log('round trips');
    const wsfyEcho = haveWebsockify ? await startWebsockify(tports.echo!) : undefined;
    // All paths open at once; rounds interleave them so that load from elsewhere hits each path alike.
    const probes = new Map<Path, ReturnType<typeof rttProbe>>();
    for (const p of PATHS) {
      if (p === 'websockify' && !wsfyEcho) continue;
      const pipe = p === 'direct' ? await tcpPipe(tports.echo!)
        : p === 'reference' ? await rawWsPipe(`ws://127.0.0.1:${refPort}/?port=${tports.echo}`, false)
          : p === 'websockify' ? await rawWsPipe(`ws://127.0.0.1:${wsfyEcho!.port}/`, false)
            : await rawWsPipe((await mintWsUrls(ph, 'echo', 1))[0]!, true);
      probes.set(p, rttProbe(pipe));
    }
    const samples = new Map<Path, number[]>();
    for (const [, probe] of probes) await probe.run(Math.round(RTT_SAMPLES / 10), 10_000); // warm-up
    const ROUNDS = 5;
    for (let round = 0; round < ROUNDS; round++) {
      for (const [p, probe] of probes) samples.set(p, [...(samples.get(p) ?? []), ...(await probe.run(RTT_SAMPLES / ROUNDS, 10_000))]);
    }
    for (const [p, probe] of probes) {
      probe.close();
      rtt[p] = rttSummary(samples.get(p) ?? []);
      log(`  ${LABEL[p]}: p50 ${rtt[p]!.p50us.toFixed(0)} µs, p99 ${rtt[p]!.p99us.toFixed(0)} µs (${rtt[p]!.samples} samples)`);
    }
    await wsfyEcho?.child.stop();
  }

  if (PHASES.has('idle')) {
    // C: concurrent idle sessions and memory per session.
    log('idle sessions');
    for (const n of IDLE_SIZES) {
      for (const p of ['reference', 'websockify', 'porthole'] as const) {
        if (p === 'websockify') {
          if (!haveWebsockify) continue;
          if (n > 1000) {
            const k = idle.find((r) => r.path === 'websockify' && r.n === 1000);
            idle.push({
              path: p, n, held: NaN, failed: NaN, dropped: NaN, perSessionKiB: NaN, totalKiB: NaN, heapKiB: NaN, memNote: '', openS: NaN,
              note: `not run: websockify forks one process per connection; at the ${k ? `${k.totalKiB.toFixed(0)} KiB` : 'measured'} per session of the 1k run, ${n} sessions need ${k ? `${((k.totalKiB * n) / 2 ** 20).toFixed(1)} GiB` : 'far more memory'} and ${n} processes on a ${machine.memGiB} GiB, ${machine.cores}-core machine`,
            });
            continue;
          }
        }
        const row = await idleRun(p, n, { target, tports, ref, refPort, ph });
        idle.push(row);
        log(`  ${LABEL[p]} ${n}: held ${row.held}/${n}, KiB/session: ${row.totalKiB.toFixed(1)} whole, ${row.perSessionKiB.toFixed(1)} marginal (${row.memNote}), ${row.heapKiB.toFixed(1)} heap+external; opened in ${row.openS.toFixed(1)} s${row.note ? `; ${row.note}` : ''}`);
      }
    }
  }

  if (PHASES.has('mint')) {
    // D: console-URL minting over HTTP vs a hello-world Fastify route, same client, same concurrency.
    // The machine is shared and its speed drifts by tens of percent within a minute, so the routes run
    // interleaved in short rounds and each round's ratio is taken against that round's hello-world.
    log('minting');
    const hello = await startChild('hello fastify', process.execPath, [...TSX, path.join(ROOT, 'bench/hello-fastify.ts')]);
    const timed = async (pid: number, o: Parameters<typeof httpLoad>[0]): Promise<MintLoad> => {
      const cpu0 = treeCpuMs(pid);
      const r = await httpLoad(o);
      return { ...r, serverUsPerReq: ((treeCpuMs(pid) - cpu0) * 1000) / Math.max(1, r.ok) };
    };
    const helloLoad = (ms: number, route = '/hello') => timed(hello.pid, {
      port: hello.info.port as number, method: 'POST', path: route, headers: { 'content-type': 'application/json' }, body: MINT_BODY, connections: 4, durationMs: ms,
    });
    const mintLoad = (ms: number) => timed(ph.child.pid, {
      port: ph.port, method: 'POST', path: `/v1/${ph.info.projectId}/cloudservers/${ph.info.servers.idle}/remote_console`,
      headers: { 'content-type': 'application/json', 'x-auth-token': ph.iamToken }, body: MINT_BODY, connections: 4, durationMs: ms,
    });
    const healthzLoad = (ms: number) => timed(ph.child.pid, { port: ph.port, method: 'GET', path: '/healthz', headers: {}, body: '', connections: 4, durationMs: ms });
    const signed = await signedMint(ph);
    const akskLoad = (ms: number) => timed(ph.child.pid, {
      port: ph.port, method: 'POST', path: `/v1/${ph.info.projectId}/cloudservers/${ph.info.servers.idle}/remote_console`, headers: signed, body: MINT_BODY, connections: 4, durationMs: ms,
    });
    await helloLoad(500);
    await helloLoad(500, '/hello-insert');
    await healthzLoad(500);
    await mintLoad(1000);
    await akskLoad(500);
    mint = [];
    const ms = (MINT_SECONDS * 1000) / 2;
    for (let round = 0; round < 3; round++) {
      const r: MintRound = {
        hello: await helloLoad(ms), helloInsert: await helloLoad(ms, '/hello-insert'), healthz: await healthzLoad(ms), porthole: await mintLoad(ms), aksk: await akskLoad(ms),
      };
      mint.push(r);
      log(`  round ${round + 1}: hello ${r.hello.rps.toFixed(0)} req/s (${r.hello.serverUsPerReq.toFixed(0)} µs CPU/req); hello + 1 SQLite insert ${r.helloInsert.rps.toFixed(0)}; ` +
        `Porthole /healthz ${r.healthz.rps.toFixed(0)}; mint ${r.porthole.rps.toFixed(0)} req/s (${r.porthole.serverUsPerReq.toFixed(0)} µs CPU/req, ${(r.porthole.rps / r.hello.rps).toFixed(3)}× hello) ${JSON.stringify(r.porthole.statuses)}; ` +
        `with AK/SK ${r.aksk.rps.toFixed(0)} req/s (${r.aksk.serverUsPerReq.toFixed(0)} µs CPU/req) ${JSON.stringify(r.aksk.statuses)}`);
    }
    await hello.stop();
  }

  if (PHASES.has('profile')) {
    // E: where the time goes (CPU profiles and syscall counts of a stream through each Node relay).
    log('profiles');
    await profileRelays({ target, tports, ref, refPort, ph }, N);
  }

  await ph.child.ask('close').catch(() => undefined);
  await ph.child.stop();
  await ref.stop();
  await target.stop();
  writeResults(Date.now() - started);
  log(`wrote ${OUT}`);
}

/** Medians over the rounds; ratios are taken within each round first. */
function mintSummary(rounds: MintRound[]): { hello: number; helloInsert: number; healthz: number; porthole: number; aksk: number; ratio: number; ratioInsert: number; cpuRatio: number } {
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN; };
  return {
    hello: median(rounds.map((r) => r.hello.rps)), helloInsert: median(rounds.map((r) => r.helloInsert.rps)),
    healthz: median(rounds.map((r) => r.healthz.rps)), porthole: median(rounds.map((r) => r.porthole.rps)), aksk: median(rounds.map((r) => r.aksk.rps)),
    ratio: median(rounds.map((r) => r.porthole.rps / r.hello.rps)), ratioInsert: median(rounds.map((r) => r.porthole.rps / r.helloInsert.rps)),
    cpuRatio: median(rounds.map((r) => r.hello.serverUsPerReq / r.porthole.serverUsPerReq)),
  };
}

interface Env { target: Child; tports: Record<string, number>; ref: Child; refPort: number; ph: Awaited<ReturnType<typeof porthole>> }

async function idleRun(p: 'reference' | 'websockify' | 'porthole', n: number, env: Env): Promise<IdleRow> {
  let urls: string[];
  let wsfy: { child: Child; port: number } | undefined;
  if (p === 'reference') urls = Array.from({ length: n }, () => `ws://127.0.0.1:${env.refPort}/?port=${env.tports.idle}`);
  else if (p === 'websockify') { wsfy = await startWebsockify(env.tports.idle!); urls = Array.from({ length: n }, () => `ws://127.0.0.1:${wsfy!.port}/`); }
  else urls = await mintWsUrls(env.ph, 'idle', n);

  const nodeChild = p === 'reference' ? env.ref : p === 'porthole' ? env.ph.child : undefined;
  const relayPid = nodeChild?.pid ?? wsfy!.child.pid;
  const baseFds = openFds(relayPid);
  // RSS (KiB) after a full GC for the Node relays, PSS of the tree for websockify; plus JS heap + external for Node.
  const heapNow = { kib: NaN };
  const mem = async () => {
    if (!nodeChild) return treePssKiB(wsfy!.child.pid);
    const m = await nodeChild.ask('gc');
    heapNow.kib = (Number(m.heapUsed) + Number(m.external)) / 1024;
    return Number(m.rss) / 1024;
  };
  const memBefore = await mem();
  const heapBefore = heapNow.kib;
  const halves: IdleResult[] = [];
  let note: string | undefined;
  try {
    // Two halves: the slope between them is the marginal memory of a session, free of one-off growth
    // (heap spaces, pools) that a single before/after delta would spread over the sessions.
    const open = (part: string[]) => idleSessions(part, { rfb: p === 'porthole', concurrency: p === 'websockify' ? 20 : 100, deadlineMs: p === 'websockify' ? 40_000 : 60_000 });
    halves.push(await open(urls.slice(0, n / 2)));
    await sleep(500);
    const memHalf = await mem();
    const heldHalf = halves[0]!.opened - halves[0]!.dropped;
    halves.push(await open(urls.slice(n / 2)));
    await sleep(1000);
    const memAfter = await mem();
    const opened = halves.reduce((a, h) => a + h.opened, 0);
    const failed = halves.reduce((a, h) => a + h.failed, 0);
    const dropped = halves.reduce((a, h) => a + h.dropped, 0);
    const held = opened - dropped;
    const firstError = halves.find((h) => h.firstError)?.firstError;
    if (failed > 0 || dropped > 0) {
      // A relay holds two descriptors per session (browser socket + backend socket) in one process.
      const fit = Math.floor((nofile.soft - baseFds) / 2);
      note = `${failed} failed (first: ${firstError ?? '—'}), ${dropped} dropped while held; the relay process had ${baseFds} descriptors open before and ${openFds(relayPid)} at the end (limit ${nofile.soft})` +
        (p !== 'websockify' && n > fit ? `: at 2 per session, room for ${fit} sessions` : '');
    }
    if (p === 'websockify') {
      const procs = descendants(wsfy!.child.pid).length;
      note = `${procs} worker processes alive${note ? `; ${note}` : ''}`;
    }
    const marginal = (memAfter - memHalf) / Math.max(1, held - heldHalf);
    const fdLimited = p !== 'websockify' && n > Math.floor((nofile.soft - baseFds) / 2);
    return {
      path: p, n, held, failed, dropped, perSessionKiB: marginal, totalKiB: (memAfter - memBefore) / Math.max(1, held), heapKiB: (heapNow.kib - heapBefore) / Math.max(1, held),
      memNote: nodeChild ? 'RSS after a full GC' : 'PSS of the process tree', openS: halves.reduce((a, h) => a + h.openMs, 0) / 1000, ...(note ? { note } : {}), fdLimited,
    };
  } finally {
    for (const h of halves) await h.close();
    if (wsfy) await wsfy.child.stop();
    // Let the relay notice the closes before the next run (bounded).
    for (let i = 0; i < 100; i++) {
      const r = nodeChild ? await nodeChild.ask('gc') : {};
      const live = Number(r.open ?? r.live ?? 0);
      if (live === 0) break;
      await sleep(100);
    }
    await env.target.ask('drop');
  }
}

async function profileRelays(env: Env, n: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-bench-prof-'));
  try {
    for (const which of ['porthole', 'reference'] as const) {
      const child = which === 'porthole' ? env.ph.child : env.ref;
      const url = async () => (which === 'porthole' ? (await mintWsUrls(env.ph, 'stream', 1))[0]! : `ws://127.0.0.1:${env.refPort}/?port=${env.tports.stream}`);
      // CPU profile of one stream (in-process, around the stream only).
      const u = await url();
      const file = path.join(dir, `${which}.cpuprofile`);
      await child.ask('profile-start');
      const r = await rawWsStream(u, n, { rfb: which === 'porthole', timeoutMs: 60_000 });
      await child.ask(`profile-stop ${file}`);
      if (!r.ok) notes.push(`Profiled ${which} stream lost bytes: ${r.error ?? 'bad checksum'}.`);
      profiles.push({ what: `${LABEL[which]} relaying`, summary: summarizeCpuProfile(file), mib: n / 1048576 });
      // System calls of another stream, without the profiler running.
      if (haveStrace) {
        const out = path.join(dir, `${which}.strace`);
        const u2 = await url();
        const st = spawn('strace', ['-c', '-f', '-o', out, '-p', String(child.pid)], { stdio: 'ignore' });
        await sleep(500);
        const r2 = await rawWsStream(u2, n, { rfb: which === 'porthole', timeoutMs: 120_000 });
        st.kill('SIGINT');
        await new Promise((resolve) => { st.once('exit', resolve); setTimeout(resolve, 5000); });
        if (existsSync(out)) syscalls.push({ what: LABEL[which], rows: parseStraceSummary(readFileSync(out, 'utf8')), mib: r2.bytes / 1048576 });
      }
    }
    // Where a console-URL mint spends its time.
    const file = path.join(dir, 'mint.cpuprofile');
    await env.ph.child.ask('profile-start');
    const load = await httpLoad({
      port: env.ph.port, method: 'POST', path: `/v1/${env.ph.info.projectId}/cloudservers/${env.ph.info.servers.idle}/remote_console`,
      headers: { 'content-type': 'application/json', 'x-auth-token': env.ph.iamToken }, body: MINT_BODY, connections: 4, durationMs: 2000,
    });
    await env.ph.child.ask(`profile-stop ${file}`);
    profiles.push({ what: `Porthole minting ${load.ok} console URLs`, summary: summarizeCpuProfile(file), mib: NaN });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------
// RESULTS.md

function writeResults(elapsedMs: number): void {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const ratio = (a: number, b: number) => {
    if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
    const r = a / b;
    return `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
  };
  const tp = (p: Path) => median(throughput[p].map((r) => r.mibps));
  const cpu = (p: Path) => median(throughput[p].map((r) => r.cpuMs / STREAM_MIB));
  const okRuns = (p: Path) => `${throughput[p].filter((r) => r.ok).length}/${throughput[p].length}`;
  const idleOf = (p: Path, n: number) => idle.find((r) => r.path === p && r.n === n);
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'met' : '**missed**');

  const L: string[] = [];
  L.push('# Relay and API benchmark — results', '');
  L.push(`Recorded by \`npm run bench\`${QUICK ? ' --quick (a smoke run: small sizes, not the reference figures)' : ''} on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${(elapsedMs / 1000).toFixed(0)} s.`, '');
  L.push(`- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB RAM, Linux ${versions.kernel}; open files ${machine.nofile}; everything on loopback.`);
  L.push(`- Versions: Node ${versions.node}, ws ${versions.ws}, Fastify ${versions.fastify}, websockify ${versions.websockify || 'not installed'} (${versions.python}), Porthole ${versions.porthole} at ${versions.commit}, src/proxy/console-session.ts sha256 ${versions.relaySha}….`);
  L.push(`- Load average at the start: ${loadAtStart}; at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}. Other engineers' builds and tests share this machine: the runs table shows how much CPU other processes took during each run.`);
  L.push(`- Stream: ${STREAM_MIB} MiB + CRC-32 trailer per run, target closes first; ${RUNS} runs per path, median shown. Round trips: ${RTT_SAMPLES} sequential 6-byte messages per path after ${RTT_SAMPLES / 10} warm-up, in 5 rounds interleaved across paths.`);
  L.push('- Porthole is measured on its real path: a URL minted by `POST …/remote_console`, the WebSocket upgrade with token redemption, the RFB security proxy (None to the bench client, None to the target), then the relay. Throughput and round trips are timed from ServerInit on (the relay phase); the others from WebSocket open.', '');

  const P = rtt.porthole, R = rtt.reference, D = rtt.direct, W = rtt.websockify;
  const idle10k = idleOf('porthole', 10_000);
  L.push('## Summary against the targets (issue #8)', '');
  L.push('Memory per session: RSS growth from no sessions to n, divided by the sessions held (after a full GC; websockify: PSS of its process tree); in brackets the slope from n/2 to n and, for the Node relays, the JS heap + external growth per session, which is the steadiest of the three at 1,000.', '');
  L.push('| measure | direct TCP | reference ws+net | websockify | Porthole | Porthole ÷ direct | Porthole ÷ reference | Porthole ÷ websockify | target | verdict |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  L.push(`| downstream throughput, MiB/s | ${f(tp('direct'))} | ${f(tp('reference'))} | ${f(tp('websockify'))} | ${f(tp('porthole'))} | ${ratio(tp('porthole'), tp('direct'))} | ${ratio(tp('porthole'), tp('reference'))} | ${ratio(tp('porthole'), tp('websockify'))} | ≥ 1.2× reference and ≥ 1.2× websockify | ${verdict(tp('porthole') >= 1.2 * tp('reference') && (!haveWebsockify || tp('porthole') >= 1.2 * tp('websockify')))} |`);
  L.push(`| relay CPU, ms per MiB | — | ${f(cpu('reference'), 2)} | ${f(cpu('websockify'), 2)} | ${f(cpu('porthole'), 2)} | — | ${ratio(cpu('porthole'), cpu('reference'))} | ${ratio(cpu('porthole'), cpu('websockify'))} | ≤ 0.8× reference | ${verdict(cpu('porthole') <= 0.8 * cpu('reference'))} |`);
  L.push(`| round trip p50, µs | ${f(D?.p50us ?? NaN)} | ${f(R?.p50us ?? NaN)} | ${f(W?.p50us ?? NaN)} | ${f(P?.p50us ?? NaN)} | ${ratio(P?.p50us ?? NaN, D?.p50us ?? NaN)} | ${ratio(P?.p50us ?? NaN, R?.p50us ?? NaN)} | ${ratio(P?.p50us ?? NaN, W?.p50us ?? NaN)} | ≤ 1.5× direct | ${verdict(P && D ? P.p50us <= 1.5 * D.p50us : undefined)} |`);
  L.push(`| round trip p99, µs | ${f(D?.p99us ?? NaN)} | ${f(R?.p99us ?? NaN)} | ${f(W?.p99us ?? NaN)} | ${f(P?.p99us ?? NaN)} | ${ratio(P?.p99us ?? NaN, D?.p99us ?? NaN)} | ${ratio(P?.p99us ?? NaN, R?.p99us ?? NaN)} | ${ratio(P?.p99us ?? NaN, W?.p99us ?? NaN)} | — | — |`);
  for (const n of IDLE_SIZES) {
    const r = idleOf('reference', n), w = idleOf('websockify', n), p = idleOf('porthole', n);
    const held = (x?: IdleRow) => (x ? (Number.isFinite(x.held) ? `${x.held}/${x.n}` : 'not run') : '—');
    const kib = (x?: IdleRow) => (x && Number.isFinite(x.totalKiB) ? `${f(x.totalKiB, 1)} (marginal ${f(x.perSessionKiB, 1)}${Number.isFinite(x.heapKiB) ? `; JS heap ${f(x.heapKiB, 1)}` : ''})` : '—');
    const heldVerdict = !p ? '—' : p.held === n ? 'met' : p.fdLimited ? `**not reachable here**: ${nofile.soft} open files per process, 2 per session` : '**missed**';
    L.push(`| idle sessions held of ${n} | — | ${held(r)} | ${held(w)} | ${held(p)} | — | — | — | ${n === 10_000 ? 'all 10,000' : 'all'} | ${heldVerdict} |`);
    L.push(`| memory per idle session at ${n}, KiB | — | ${kib(r)} | ${kib(w)} | ${kib(p)} | — | ${ratio(p?.totalKiB ?? NaN, r?.totalKiB ?? NaN)} | ${ratio(p?.totalKiB ?? NaN, w?.totalKiB ?? NaN)} | ${n === 10_000 ? '≤ 24 KiB' : '—'} | ${n === 10_000 ? verdict(idle10k ? idle10k.totalKiB <= 24 : undefined) : '—'} |`);
  }
  L.push(`| streams with every byte and a good checksum | ${okRuns('direct')} | ${okRuns('reference')} | ${okRuns('websockify')} | ${okRuns('porthole')} | — | — | — | every run | ${verdict(throughput.porthole.every((r) => r.ok) && throughput.porthole.length > 0)} |`);
  if (mint) {
    const m = mintSummary(mint);
    L.push(`| console URLs minted per s (hello-world Fastify: ${f(m.hello)} req/s; with one SQLite INSERT: ${f(m.helloInsert)}; Porthole's own /healthz: ${f(m.healthz)}) | — | — | — | ${f(m.porthole)} | — | — | — | ≥ 0.5× hello-world (${m.ratio.toFixed(3)}×, median of ${mint.length} interleaved rounds; ${m.ratioInsert.toFixed(2)}× of hello + INSERT; server CPU per request ${m.cpuRatio.toFixed(3)}× hello's; signed with AK/SK ${f(m.aksk)}/s) | ${verdict(m.ratio >= 0.5)} |`);
  }
  L.push('');

  L.push('## Runs', '');
  L.push('| path | run | MiB/s | relay CPU ms/MiB | bench client CPU ms/MiB | target CPU ms/MiB | bytes received | checksum | close code | other load on the machine |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const p of PATHS) throughput[p].forEach((r, i) => L.push(`| ${LABEL[p]} | ${i + 1} | ${f(r.mibps)} | ${p === 'direct' ? '—' : f(r.cpuMs / STREAM_MIB, 2)} | ${f(r.clientMs / STREAM_MIB, 2)} | ${f(r.targetMs / STREAM_MIB, 2)} | ${r.bytes} | ${r.ok ? 'ok' : `**lost** (${r.error ?? 'bad checksum'})`} | ${r.closeCode ?? '—'} | ${f(r.otherLoadPct)}% |`));
  L.push('');
  L.push('| path | sessions | held | failed | dropped while held | KiB per session: whole delta | marginal (n/2 → n) | JS heap + external | measured as | opened in | note |', '|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of idle) L.push(`| ${LABEL[r.path]} | ${r.n} | ${f(r.held)} | ${f(r.failed)} | ${f(r.dropped)} | ${f(r.totalKiB, 1)} | ${f(r.perSessionKiB, 1)} | ${f(r.heapKiB, 1)} | ${r.memNote || '—'} | ${Number.isFinite(r.openS) ? `${r.openS.toFixed(1)} s` : '—'} | ${r.note ?? ''} |`);
  L.push('');
  if (mint) {
    L.push('| HTTP load (4 keep-alive connections), round | req/s | server CPU µs/req | p50 ms | p99 ms | statuses |', '|---|---|---|---|---|---|');
    const row = (what: string, i: number, x: MintLoad) => L.push(`| ${what}, ${i + 1} | ${f(x.rps)} | ${f(x.serverUsPerReq)} | ${f(x.p50ms, 2)} | ${f(x.p99ms, 2)} | ${JSON.stringify(x.statuses)} |`);
    mint.forEach((r, i) => {
      row('hello-world Fastify POST /hello', i, r.hello);
      row('the same + one SQLite INSERT (prepared, WAL)', i, r.helloInsert);
      row('Porthole GET /healthz (its HTTP stack: hooks, request id, logging, metrics)', i, r.healthz);
      row('**Porthole POST …/remote_console** (IAM token, SQLite)', i, r.porthole);
      row('Porthole POST …/remote_console signed with AK/SK (as the SDKs call it)', i, r.aksk);
    });
    L.push('');
  }


  if (profiles.length || syscalls.length) {
    L.push('## Where the time goes (measured in this run)', '');
    for (const pr of profiles) {
      L.push(Number.isFinite(pr.mib)
        ? `### ${pr.what} ${pr.mib.toFixed(0)} MiB: CPU profile (self time, main thread: ${f(pr.summary.totalMs)} ms = ${f(pr.summary.totalMs / pr.mib, 2)} ms/MiB)`
        : `### ${pr.what}: CPU profile (self time, main thread: ${f(pr.summary.totalMs)} ms)`, '');
      L.push('| area | ms | % |', '|---|---|---|');
      for (const a of pr.summary.areas.slice(0, 8)) L.push(`| ${a.area} | ${f(a.ms)} | ${a.pct} |`);
      L.push('', '| function | where | ms | % |', '|---|---|---|---|');
      for (const t of pr.summary.top.slice(0, 12)) L.push(`| \`${t.name}\` | ${t.where || '—'} | ${f(t.ms)} | ${t.pct} |`);
      L.push('');
    }
    for (const s of syscalls) {
      L.push(`### ${s.what}: system calls for ${s.mib.toFixed(0)} MiB (\`strace -c -f\`, counts only; strace slows the process)`, '');
      L.push('| syscall | calls | per MiB | errors |', '|---|---|---|---|');
      for (const r of s.rows.slice(0, 10)) L.push(`| ${r.syscall} | ${r.calls} | ${f(r.calls / s.mib, 1)} | ${r.errors || ''} |`);
      L.push('');
    }
  }
  if (notes.length) L.push('## Notes from this run', '', ...notes.map((n) => `- ${n}`), '');
  const analysisFile = path.join(ROOT, 'bench', 'ANALYSIS.md');
  if (!QUICK && PHASES.size === ALL_PHASES.length && existsSync(analysisFile)) L.push(readFileSync(analysisFile, 'utf8').trim(), '');
  // Sections other scripts keep in the same file (`<!-- name:begin -->…<!-- name:end -->`, e.g.
  // bench/minting-scale.ts) are carried over unchanged.
  const previous = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  const kept = [...previous.matchAll(/<!-- ([\w-]+):begin -->[\s\S]*?<!-- \1:end -->/g)].map((m) => m[0]);
  writeFileSync(OUT, [L.join('\n').replace(/\s*$/, ''), ...kept].join('\n\n') + '\n');
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error('bench failed:', err);
  process.exit(1);
});
