/**
 * Every HTTP response the gateway sends is one its clients can parse (reliability issue, item 1),
 * checked with raw bytes over a socket so that nothing in between tidies the request or the answer:
 *  - requests Node's HTTP parser refuses before any route (malformed request line or header, unknown
 *    method, headers too large, conflicting Content-Length / Transfer-Encoding, a broken chunk, no
 *    Host) and requests Fastify refuses before any route (bad percent-encoding, a path parameter too
 *    long), CONNECT, and refused console upgrades all carry `X-Request-Id` and the gateway's error body
 *    `{"error_code","error_msg","request_id"}`; where the framing is ambiguous the connection is closed;
 *  - a node that is still starting (its store slow to open: PostgreSQL behind a TCP gate that holds
 *    the connection) answers every request and upgrade at once with 503, `Retry-After` and that body.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { describeWith } from '../helpers/redis.js';

interface RawResponse { status: number; headers: Map<string, string>; body: string; closed: boolean }

/**
 * Sends `bytes` on a fresh connection and reads one response (by Content-Length). `closed`: the
 * server ended the connection afterwards (waited for up to `closeWaitMs`).
 */
function rawRequest(port: number, bytes: string | Buffer, closeWaitMs = 3000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let parsed: Omit<RawResponse, 'closed'> | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(closeTimer);
      clearTimeout(overall);
      s.destroy();
      if (parsed) resolve({ ...parsed, closed });
      else reject(new Error(`no complete response (${closed ? 'connection closed' : 'timeout'}): ${JSON.stringify(buf.toString('latin1'))}`));
    };
    const overall = setTimeout(() => finish(false), 10_000);
    const tryParse = () => {
      if (parsed) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head[0] ?? '')?.[1] ?? 0);
      const headers = new Map<string, string>();
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
      }
      const len = Number(headers.get('content-length') ?? 0);
      if (buf.length < end + 4 + len) return;
      parsed = { status, headers, body: buf.subarray(end + 4, end + 4 + len).toString('utf8') };
      closeTimer = setTimeout(() => finish(false), closeWaitMs);
    };
    s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); tryParse(); });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    s.write(bytes);
  });
}

/** The gateway's error body and headers: X-Request-Id (32 hex), a JSON body whose request_id is it. */
function assertConformant(r: RawResponse, status: number, codePattern: RegExp, what: string): Record<string, unknown> {
  assert.equal(r.status, status, `${what}: status (${r.body})`);
  const id = r.headers.get('x-request-id');
  assert.match(id ?? '', /^[0-9a-f]{32}$/, `${what}: X-Request-Id`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: content type`);
  let body: Record<string, unknown>;
  try { body = JSON.parse(r.body) as Record<string, unknown>; } catch { assert.fail(`${what}: body is not JSON: ${r.body}`); }
  assert.match(String(body.error_code), codePattern, `${what}: error_code`);
  assert.equal(typeof body.error_msg, 'string', `${what}: error_msg`);
  assert.ok(String(body.error_msg).length > 0, `${what}: error_msg`);
  assert.equal(body.request_id, id, `${what}: request_id is the X-Request-Id`);
  return body;
}

describe('conformance: responses made before any route runs', () => {
  let t: TestGateway;
  let port: number;
  let projectId: string;
  before(async () => {
    t = await startTestGateway();
    port = Number(new URL(t.url).port);
    projectId = t.gw.demo!.facts.project_id;
  });
  after(async () => t?.close());

  // Requests Node's parser refuses: the framing of anything after them is unknown, so the connection closes.
  const parserRefusals: [string, string, number][] = [
    ['a malformed request line', 'GARBAGE\r\n\r\n', 400],
    ['an unknown method', 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a malformed header line', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', 400],
    ['an unsupported HTTP version', 'GET /healthz HTTP/3.7\r\nHost: x\r\n\r\n', 400],
    ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
    ['headers too large', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['a URL too long for the header limit', `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    ['Content-Length with Transfer-Encoding', 'POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['two different Content-Lengths', 'POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 400],
    ['a malformed chunk', 'POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n\r\n', 400],
  ];
  for (const [what, bytes, status] of parserRefusals) {
    it(`conformance: ${what} → ${status} APIGW.0201 with X-Request-Id, then the connection closes`, async () => {
      const r = await rawRequest(port, bytes);
      assertConformant(r, status, /^APIGW\.0201$/, what);
      assert.equal(r.headers.get('connection'), 'close', `${what}: Connection: close`);
      assert.ok(r.closed, `${what}: the server closes the connection`);
    });
  }

  it('conformance: an HTTP/1.1 request without Host → 400 APIGW.0201 with a body, and the connection closes', async () => {
    const r = await rawRequest(port, 'GET /healthz HTTP/1.1\r\n\r\n');
    assertConformant(r, 400, /^APIGW\.0201$/, 'no Host');
    assert.ok(r.closed);
  });

  it('conformance: bad percent-encoding in the path → 400 APIGW.0201 with X-Request-Id', async () => {
    for (const p of ['/v2/%zz/desktops', `/v2/${projectId}/desktops/%E0%A4%A`, `/v1/${projectId}/cloudservers/%/remote_console`]) {
      const r = await rawRequest(port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`, 200);
      const body = assertConformant(r, 400, /^APIGW\.0201$/, p);
      assert.ok(!String(body.error_msg).includes('%'), 'the message does not echo the raw path');
    }
  });

  it('conformance: a path parameter longer than the router allows → 414 APIGW.0201 with X-Request-Id', async () => {
    const r = await rawRequest(port, `GET /v2/${projectId}/desktops/${'a'.repeat(300)} HTTP/1.1\r\nHost: x\r\n\r\n`, 200);
    assertConformant(r, 414, /^APIGW\.0201$/, 'long parameter');
  });

  it('conformance: CONNECT → 405 APIGW.0101 with X-Request-Id, and the connection closes', async () => {
    const r = await rawRequest(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assertConformant(r, 405, /^APIGW\.0101$/, 'CONNECT');
    assert.ok(r.closed);
  });

  it('conformance: a method no route has, a body too large, malformed JSON: the documented body (already so; kept)', async () => {
    assertConformant(await rawRequest(port, 'DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 200), 404, /^APIGW\.0101$/, 'DELETE /healthz');
    assertConformant(await rawRequest(port, 'PROPFIND /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 200), 404, /^APIGW\.0101$/, 'PROPFIND /healthz');
    const big = await rawRequest(port, 'POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{');
    assertConformant(big, 413, /^APIGW\.0201$/, 'body too large');
    assert.ok(big.closed);
    assertConformant(await rawRequest(port, 'POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{{{', 200), 400, /^IAM\.0003$/, 'malformed JSON');
  });

  it('conformance: refused console upgrades carry X-Request-Id and the body with request_id (and their reason)', async () => {
    const upgrade = (p: string, extra = '') => rawRequest(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n`);
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
    const cases: [string, string, number, string][] = [
      ['/nope', key, 404, 'not_found'],
      ['/vnc/demo/websockify', '', 400, 'bad_request'],
      ['/vnc/demo/websockify', `${key}Origin: https://evil.example\r\n`, 403, 'origin_forbidden'],
      ['/vnc/demo/websockify', key, 400, 'token_invalid'],
      [`/vnc/demo/websockify?token=${randomBytes(32).toString('base64url')}`, key, 403, 'token_invalid'],
    ];
    for (const [p, extra, status, reason] of cases) {
      const r = await upgrade(p, extra);
      const body = assertConformant(r, status, /^PH\.WS\.\d{3}$/, `upgrade ${p} ${reason}`);
      assert.equal(body.reason, reason);
      assert.equal(r.headers.get('connection'), 'close');
      assert.ok(r.closed);
    }
  });
});

/** A TCP gate to `host:port`: connections are accepted and held (nothing relayed) until `open()`. */
async function startGate(host: string, port: number): Promise<{ port: number; open(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const held: net.Socket[] = [];
  let opened = false;
  const relay = (client: net.Socket) => {
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => { sockets.delete(s); (s === client ? upstream : client).destroy(); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    sockets.add(client);
    if (opened) relay(client);
    else { client.pause(); held.push(client); }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    open() {
      opened = true;
      for (const c of held.splice(0)) relay(c);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

await describeWith('conformance: a node that is still starting', { postgres: true }, () => {
  let schema: TestSchema;
  let gate: Awaited<ReturnType<typeof startGate>>;
  let dataDir: string;
  let gw: Gateway | undefined;
  before(async () => {
    schema = await createTestSchema();
    const db = new URL(schema.url);
    gate = await startGate(db.hostname, Number(db.port || 5432));
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-test-'));
  });
  after(async () => {
    gate?.open();
    await gw?.close();
    await gate?.close();
    await schema?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('conformance: while its store opens, /readyz, API calls and upgrades get 503 APIGW.0613 at once with Retry-After; then it serves', { timeout: 60_000 }, async () => {
    const db = new URL(schema.url);
    db.hostname = '127.0.0.1';
    db.port = String(gate.port);
    const { config } = loadConfig({
      argv: ['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'silent', '--probe-interval-seconds', '0'],
      env: { PORTHOLE_DATABASE_URL: db.toString(), PORTHOLE_MASTER_KEY: randomBytes(32).toString('hex') },
    });
    let listening!: (url: string) => void;
    const urlKnown = new Promise<string>((resolve) => { listening = resolve; });
    const starting = startGateway(config, { logger: pino({ level: 'silent' }), onListening: (url) => listening(url) });
    starting.catch(() => undefined);
    const url = await urlKnown;
    const port = Number(new URL(url).port);

    for (const p of ['/readyz', '/healthz', `/v2/${'0'.repeat(32)}/desktops/x`]) {
      const r = await rawRequest(port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const body = assertConformant(r, 503, /^APIGW\.0613$/, `GET ${p} while starting`);
      assert.match(String(body.error_msg), /starting/);
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/, 'Retry-After');
      assert.ok(r.closed, 'the connection closes');
    }
    const post = await rawRequest(port, 'POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    assertConformant(post, 503, /^APIGW\.0613$/, 'POST while starting');
    const up = await rawRequest(port, 'GET /vnc/demo/websockify?token=abc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const upBody = assertConformant(up, 503, /^PH\.WS\.503$/, 'upgrade while starting');
    assert.equal(upBody.reason, 'starting');
    assert.match(up.headers.get('retry-after') ?? '', /^\d+$/);
    const bad = await rawRequest(port, 'GARBAGE\r\n\r\n');
    assertConformant(bad, 400, /^APIGW\.0201$/, 'a malformed request while starting');

    gate.open();
    gw = await starting;
    const ready = await call(`${gw.url}/readyz`);
    assert.equal(ready.status, 200, ready.text);
  });
});
