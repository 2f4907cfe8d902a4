/**
 * Starts the real gateway (src/gateway.ts) on 127.0.0.1 port 0 with a fresh data directory, the embedded
 * demo and an optional fleet file, plus helpers to call its API and to open its console WebSocket.
 * Every test cleans up with `close()`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import type { Clock } from '../../src/domain/clock.js';

export interface TestGateway {
  gw: Gateway;
  url: string;
  dataDir: string;
  /** Shifts the gateway's clock (token expiry tests). */
  clock: { offsetMs: number };
  close(): Promise<void>;
}

/** `logTo` receives the gateway's log lines (JSON, level info unless TEST_LOG_LEVEL says otherwise). */
export async function startTestGateway(opts: { fleet?: string; args?: string[]; env?: Record<string, string>; demo?: boolean; logTo?: { write(chunk: string): void } } = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-test-'));
  // The liveness prober is off unless a test turns it on (`args: ['--probe-interval-seconds', '1']`): several
  // fleets point machines at closed ports on purpose, and a probe would mark them down and refuse their consoles.
  const args = ['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', process.env.TEST_LOG_LEVEL ?? 'silent', '--probe-interval-seconds', '0', ...(opts.args ?? [])];
  if (opts.fleet !== undefined) {
    const file = path.join(dataDir, 'fleet.yaml');
    writeFileSync(file, opts.fleet);
    args.push('--fleet', file);
  }
  if (opts.demo !== false) args.push('--demo');
  const { config } = loadConfig({ argv: args, env: opts.env ?? {} });
  const clock = { offsetMs: 0 };
  const fakeClock: Clock = { now: () => Date.now() + clock.offsetMs };
  const logger = opts.logTo ? pino({ level: process.env.TEST_LOG_LEVEL ?? 'info' }, opts.logTo) : pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const gw = await startGateway(config, { clock: fakeClock, logger });
  return {
    gw, url: gw.url, dataDir, clock,
    async close() {
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult { status: number; headers: Headers; body: unknown; text: string }

export async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; json?: unknown } = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  let body: string | Buffer | undefined = init.body;
  if (init.json !== undefined) { body = JSON.stringify(init.json); headers['content-type'] ??= 'application/json'; }
  const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : new Uint8Array(body) }) });
  const text = await res.text();
  let parsed: unknown = undefined;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The parsed body of a response that must have `status` (its text is the failure message). */
export function okBody(r: HttpResult, status = 200): Json {
  assert.equal(r.status, status, r.text);
  return r.body as Json;
}

export function passwordAuth(user: string, password: string, domain: string, scope: object | undefined) {
  return { auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: domain } } } }, ...(scope ? { scope } : {}) } };
}

/** Logs in and returns the X-Subject-Token. */
export async function login(url: string, user: string, password: string, domain: string, projectId: string): Promise<string> {
  const r = await call(`${url}/v3/auth/tokens`, { json: passwordAuth(user, password, domain, { project: { id: projectId } }) });
  if (r.status !== 201) throw new Error(`login failed: ${r.status} ${r.text}`);
  return r.headers.get('x-subject-token')!;
}

/** Logs in as the demo user with domain scope (domain-wide admin calls need it: security #3). */
export async function demoDomainLogin(t: TestGateway): Promise<string> {
  const f = t.gw.demo!.facts;
  const r = await call(`${t.url}/v3/auth/tokens`, { json: passwordAuth(f.user, f.password, f.domain, { domain: { name: f.domain } }) });
  if (r.status !== 201) throw new Error(`login failed: ${r.status} ${r.text}`);
  return r.headers.get('x-subject-token')!;
}

/** Logs in as the demo user into the demo project. */
export async function demoLogin(t: TestGateway): Promise<string> {
  const f = t.gw.demo!.facts;
  return login(t.url, f.user, f.password, f.domain, f.project_id);
}

/**
 * The WebSocket a console page URL opens: the same path with `websockify` for `vnc_auto.html`, and the
 * token. `base` (`ws://127.0.0.1:PORT`, or an https/wss origin) puts it on another host, as a page
 * served through a proxy would; by default it stays on the page's own host.
 */
export function websocketUrl(consoleUrl: string, base: string = consoleUrl): string {
  const u = new URL(consoleUrl);
  const b = new URL(base);
  const scheme = b.protocol === 'https:' || b.protocol === 'wss:' ? 'wss' : 'ws';
  return `${scheme}://${b.host}${u.pathname.replace(/vnc_auto\.html$/, 'websockify')}?token=${encodeURIComponent(u.searchParams.get('token') ?? '')}`;
}

/** Opens a raw WebSocket upgrade and reports the HTTP status (101 or the refusal) and the refusal body; a 101 is closed at once. */
export function tryUpgrade(wsUrl: string, opts: { headers?: Record<string, string>; ca?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers: opts.headers ?? {}, ...(opts.ca ? { ca: opts.ca } : {}) });
    ws.once('open', () => { ws.close(); resolve({ status: 101, body: '' }); });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Just the status of `tryUpgrade`: 101, or the refusal's 4xx. */
export async function upgradeStatus(wsUrl: string): Promise<number> {
  return (await tryUpgrade(wsUrl)).status;
}
