/**
 * Real gateway processes for the scale-out tests: `node dist/src/main.js serve` (run `npm run build`
 * first) on 127.0.0.1 port 0, each with its own data directory, pointed at one PostgreSQL schema and
 * optionally one Redis prefix. A node is ready when it logs "porthole listening" (its JSON log on
 * stdout gives the address). Every process started here is killed when the test process exits.
 *
 * Also: the fleet the cluster tests share (one domain, an operator, a domain administrator, one user
 * per test that counts throttling, machines on a backend the test starts), and small HTTP helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { call, login } from './gateway.js';
import type { TestSchema } from './postgres.js';

// Console WebSocket helpers live with the single-gateway ones; the cluster tests import them from here too.
export { tryUpgrade, websocketUrl } from './gateway.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN_JS = path.join(ROOT, 'dist/src/main.js');

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch { /* gone */ } });

export interface LogLine { level?: number; msg?: string; [k: string]: unknown }

export interface NodeProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** http://127.0.0.1:PORT (the node itself, whatever its public_url). */
  readonly url: string;
  readonly port: number;
  readonly nodeId: string;
  readonly dataDir: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): LogLine[];
  /** Resolves with the first log line (already seen or to come) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM (or `signal`), then SIGKILL after `ms`; resolves when it has exited; removes the data directory. */
  stop(ms?: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface StartNodeOptions {
  name: string;
  /** PostgreSQL URL; omitted: the node's embedded SQLite store in its data directory. */
  databaseUrl?: string;
  masterKey: string;
  redisUrl?: string;
  redisPrefix?: string;
  /** Fleet YAML applied at start. */
  fleet?: string;
  /** More flags (`--drain-grace-seconds 5` …). */
  args?: string[];
  readyMs?: number;
  /** The data directory (created if missing; removed by `stop()`); default a fresh one under the system's temporary directory. */
  dataDir?: string;
  /** Another release's built entry point (a rolling upgrade's old node); default this checkout's dist/src/main.js. */
  mainJs?: string;
}

export async function startNode(o: StartNodeOptions): Promise<NodeProcess> {
  const mainJs = o.mainJs ?? MAIN_JS;
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run npm run build first`);
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), `porthole-${o.name}-`));
  mkdirSync(dataDir, { recursive: true });
  const nodeId = `${o.name}-${randomBytes(3).toString('hex')}`;
  const args = [
    mainJs, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'info', '--node-id', nodeId,
    '--probe-interval-seconds', '0',
  ];
  if (o.fleet !== undefined) {
    const file = path.join(dataDir, 'fleet.yaml');
    writeFileSync(file, o.fleet);
    args.push('--fleet', file);
  }
  args.push(...(o.args ?? []));
  // Secrets through the environment, as in production; nothing else inherited from PORTHOLE_*.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTHOLE_')));
  if (o.databaseUrl !== undefined) env.PORTHOLE_DATABASE_URL = o.databaseUrl;
  env.PORTHOLE_MASTER_KEY = o.masterKey;
  if (o.redisUrl) env.PORTHOLE_REDIS_URL = o.redisUrl;
  if (o.redisPrefix !== undefined) env.PORTHOLE_REDIS_KEY_PREFIX = o.redisPrefix;
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(proc);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => { running.delete(proc); resolve({ code, signal }); });
  });
  const lines: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  let banner: string | undefined;
  let bannerSeen: (() => void) | undefined;
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    const m = /^Porthole is listening on (\S+)/.exec(text);
    if (m) { banner = m[1]; bannerSeen?.(); }
    if (!text.startsWith('{')) return;
    let l: LogLine;
    try { l = JSON.parse(text) as LogLine; } catch { return; }
    lines.push(l);
    if (lines.length > 20_000) lines.splice(0, 10_000);
    for (const w of [...waiters]) if (w.pred(l)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(l); }
  });
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-10_000); });
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        waiters.splice(waiters.findIndex((w) => w.resolve === done), 1);
        reject(new Error(`${o.name}: no matching log line after ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
      }, timeoutMs);
      const done = (l: LogLine) => { clearTimeout(t); resolve(l); };
      waiters.push({ pred, resolve: done });
    });
  };
  // Ready when main.ts prints its banner (after the gateway started). The address comes from the
  // "porthole listening" log line (info level), else from the banner's URL (no public_url given).
  await Promise.race([
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${o.name} not ready after ${o.readyMs ?? 30_000} ms; stderr: ${stderr.slice(-2000)}`)), o.readyMs ?? 30_000);
      bannerSeen = () => { clearTimeout(t); resolve(); };
      if (banner !== undefined) bannerSeen();
    }),
    exited.then(({ code, signal }) => { throw new Error(`${o.name} exited (${code ?? signal}) before it was ready: ${stderr.slice(-3000)}`); }),
  ]);
  // The JSON log is written asynchronously: at info level its "porthole listening" line may follow the banner.
  const level = args[args.lastIndexOf('--log-level') + 1];
  const listening = level === 'info' || level === 'debug' || level === 'trace' ? await waitForLog((l) => l.msg === 'porthole listening', 5000) : undefined;
  const address = listening ? String(listening.address) : new URL(banner!).host;
  if (!listening && (o.args ?? []).some((x) => x.startsWith('--public-url'))) throw new Error('with --public-url the node must log at info level (the address is in the "porthole listening" line)');
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return {
    name: o.name, proc, pid: proc.pid!, url: `http://127.0.0.1:${port}`, port, nodeId, dataDir, exited,
    logs: () => lines,
    waitForLog,
    kill: (signal = 'SIGTERM') => { if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal); },
    async stop(ms = 10_000, signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), ms);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A fresh 32-byte master key as hex. */
export const newMasterKey = () => randomBytes(32).toString('hex');

export const CLUSTER_DOMAIN = 'cluster';
export const CLUSTER_PROJECT = 'lab';
export const CLUSTER_PASSWORD = 'cluster-password-1';
export const clusterProjectId = deriveProjectId(CLUSTER_DOMAIN, CLUSTER_PROJECT);
export const clusterServerId = (name: string) => deriveResourceId(clusterProjectId, 'cloudserver', name);

/**
 * The tests' fleet: users `alice` (operator), `root` (domain administrator) and `u1`…`u9` (operators,
 * one per test that must count throttling alone); cloud servers named in `servers`, each on the VNC
 * endpoint given (VNC authentication with `vncPassword`; null: security None, as bench/target.ts speaks).
 */
export function clusterFleet(servers: Record<string, { host: string; port: number }>, vncPassword: string | null): string {
  const users = ['alice', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9']
    .map((u) => `      - { name: ${u}, password: ${CLUSTER_PASSWORD}, roles: { ${CLUSTER_PROJECT}: operator } }`).join('\n');
  const machines = Object.entries(servers)
    .map(([name, ep]) => `          - name: ${name}\n            console: { url: "vnc://${ep.host}:${ep.port}", ${vncPassword === null ? 'security: none' : `security: vncauth, password: "${vncPassword}"`} }`).join('\n');
  return `
domains:
  - name: ${CLUSTER_DOMAIN}
    users:
${users}
      - { name: root, password: ${CLUSTER_PASSWORD}, domain_admin: true }
    projects:
      - name: ${CLUSTER_PROJECT}
        cloudservers:
${machines}
`;
}

/** Logs in as a fleet user (scoped to the project, or to the domain for `root`). */
export async function clusterLogin(url: string, user: string): Promise<string> {
  if (user !== 'root') return login(url, user, CLUSTER_PASSWORD, CLUSTER_DOMAIN, clusterProjectId);
  const r = await call(`${url}/v3/auth/tokens`, {
    json: { auth: { identity: { methods: ['password'], password: { user: { name: user, password: CLUSTER_PASSWORD, domain: { name: CLUSTER_DOMAIN } } } }, scope: { domain: { name: CLUSTER_DOMAIN } } } },
  });
  if (r.status !== 201) throw new Error(`login failed: ${r.status} ${r.text}`);
  return r.headers.get('x-subject-token')!;
}

/**
 * One IAM token per fleet user, logged in on first use (logins count against the throttling window,
 * so a test file logs each user in once). `url` is read at first use: nodes start in `before`.
 */
export function clusterTokens(url: () => string): (user: string) => Promise<string> {
  const tokens = new Map<string, string>();
  return async (user) => {
    let t = tokens.get(user);
    if (!t) { t = await clusterLogin(url(), user); tokens.set(user, t); }
    return t;
  };
}

/** The newest open console session a node holds, from the database (undefined when none). */
export async function openSessionOf(schema: Pick<TestSchema, 'admin'>, nodeId: string): Promise<string | undefined> {
  const r = await schema.admin('select id from console_sessions where node_id = $1 and ended_at is null order by started_at desc limit 1', [nodeId]);
  return r.rows[0]?.id as string | undefined;
}

/** POST remote_console on `url` for the server; returns the status and the console URL. */
export async function mintConsole(url: string, token: string, server: string): Promise<{ status: number; consoleUrl: string | undefined; body: unknown }> {
  const r = await call(`${url}/v1/${clusterProjectId}/cloudservers/${clusterServerId(server)}/remote_console`, {
    headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
  });
  const consoleUrl = (r.body as { remote_console?: { url?: string } } | undefined)?.remote_console?.url;
  return { status: r.status, consoleUrl, body: r.body };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
