/**
 * Sockets of console WebSocket upgrades that never become consoles: a refused upgrade's socket is
 * closed by the gateway once the refusal is flushed (the HTTP server allows half-open sockets, so
 * `end()` alone would keep it as long as the client likes), and the whole phase before the 101 —
 * token redemption and any wait on the store included — has a deadline (`console.upgrade_timeout_ms`).
 * Plain HTTP connections that never send a request are bounded by the server's header timeout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, demoLogin, startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface RawClient { socket: net.Socket; data: string; ended: Promise<void> }

/** A raw TCP client that sends a WebSocket upgrade request and never closes its side. */
function rawUpgrade(port: number, path: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const c: RawClient = {
      socket, data: '',
      ended: new Promise((res) => { socket.once('end', res); socket.once('close', res); socket.once('error', () => res()); }),
    };
    socket.on('data', (d: Buffer) => { c.data += d.toString('latin1'); });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      resolve(c);
    });
  });
}

function connections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Resolves when `p` does, fails after `ms`. */
async function within<T>(what: string, p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for: ${what}`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for: ${what}`);
}

describe('security #5: sockets of refused or stalled console upgrades are closed by the gateway', () => {
  let t: TestGateway;
  let port: number;
  let server: Server;

  before(async () => {
    t = await startTestGateway({ args: ['--console-upgrade-timeout-ms', '400'] });
    port = Number(new URL(t.url).port);
    server = t.gw.app.server;
  });
  after(async () => t.close());

  it('security #5: refused upgrades from a client that never closes do not keep their sockets', async () => {
    const zone = t.gw.config.console.defaultZone;
    const clients: RawClient[] = [];
    for (let i = 0; i < 40; i++) {
      // Alternately: an unknown token (403 after a store lookup) and a path with no console (404).
      clients.push(await rawUpgrade(port, i % 2 === 0 ? `/vnc/${zone}/websockify?token=${'x'.repeat(43)}${i}` : '/nowhere'));
    }
    await waitFor('every refusal to arrive', () => clients.every((c) => /^HTTP\/1\.1 40[34] /.test(c.data)));
    // The gateway closes its side: each client sees the end of the stream, and the server holds no socket.
    await within('the clients to see the end of the stream', Promise.all(clients.map((c) => c.ended)));
    await waitFor('the server to hold no connection', async () => (await connections(server)) === 0);
    for (const c of clients) c.socket.destroy();
  });

  it('security #5: an upgrade stalled before the 101 (a store that does not answer) is closed at the upgrade deadline', async () => {
    const consoles = t.gw.consoles;
    const original = consoles.peek.bind(consoles);
    const stalled: Array<() => void> = [];
    // The store never answers the token look-up (as during a database stall); released after the test.
    consoles.peek = () => new Promise((resolve) => { stalled.push(() => resolve({ state: 'invalid' } as Awaited<ReturnType<typeof original>>)); });
    try {
      const c = await rawUpgrade(port, `/vnc/${t.gw.config.console.defaultZone}/websockify?token=${'y'.repeat(43)}`);
      await waitFor('the token look-up to start', () => stalled.length > 0);
      await within('the gateway to close the stalled upgrade', c.ended);
      assert.equal(c.data, '', 'no 101 and no late refusal');
      await waitFor('the server to hold no connection', async () => (await connections(server)) === 0);
      c.socket.destroy();
    } finally {
      consoles.peek = original;
      for (const release of stalled) release();
    }
  });

  it('security #5: the upgrade deadline stops at the 101: a live console outlasts it', async () => {
    const token = await demoLogin(t);
    const f = t.gw.demo!.facts;
    const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token },
    });
    assert.equal(r.status, 200, r.text);
    const u = new URL((r.body as { remote_console: { url: string } }).remote_console.url);
    const c = await rawUpgrade(port, `${u.pathname.replace(/vnc_auto\.html$/, 'websockify')}?token=${u.searchParams.get('token')}`);
    await waitFor('the 101', () => c.data.startsWith('HTTP/1.1 101 '));
    // Past the deadline the relay's own timeouts apply; the upgrade deadline must not cut a live console.
    await sleep(700);
    assert.equal(c.socket.destroyed, false);
    assert.equal(c.socket.readableEnded, false);
    c.socket.destroy();
  });

  it('security #5: the HTTP server bounds connections that never send a request (header and request timeouts)', () => {
    assert.ok(server.headersTimeout > 0 && server.headersTimeout <= 30_000, `headersTimeout ${server.headersTimeout}`);
    assert.ok(server.requestTimeout > 0 && server.requestTimeout <= 60_000, `requestTimeout ${server.requestTimeout}`);
    assert.ok(server.keepAliveTimeout > 0);
  });
});

describe('security #6: console upgrades count against the per-address budget before any token look-up', () => {
  let t: TestGateway;
  before(async () => { t = await startTestGateway({ args: ['--ratelimit-per-address-per-second', '3', '--ratelimit-per-address-per-minute', '1000'] }); });
  after(async () => t.close());

  it('security #6: the 4th upgrade in a second from one address is refused with 429 and its socket closed', async () => {
    const port = Number(new URL(t.url).port);
    const consoles = t.gw.consoles;
    const original = consoles.peek.bind(consoles);
    let lookups = 0;
    consoles.peek = (...a: Parameters<typeof original>) => { lookups++; return original(...a); };
    try {
      const statuses: string[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await rawUpgrade(port, `/vnc/${t.gw.config.console.defaultZone}/websockify?token=${'z'.repeat(43)}${i}`);
        await within('the gateway to close the refused upgrade', c.ended);
        statuses.push(c.data.split('\r\n')[0] ?? '');
        c.socket.destroy();
      }
      assert.deepEqual(statuses, ['HTTP/1.1 403 Forbidden', 'HTTP/1.1 403 Forbidden', 'HTTP/1.1 403 Forbidden', 'HTTP/1.1 429 Too Many Requests']);
      assert.equal(lookups, 3, 'the refused one looked nothing up');
    } finally {
      consoles.peek = original;
    }
  });
});
