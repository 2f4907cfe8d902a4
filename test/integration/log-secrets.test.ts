/**
 * No secret in any log line. The real gateway runs at log level `trace` with its production logger
 * (serializers, redaction) writing into memory, through the scenarios of the suite: password logins
 * (right and wrong), the seed APIs (success and each kind of error), console URL minting, the console
 * page and token-state look-ups, a console session through the relay (open, type, close), a refused
 * reuse, AK/SK-signed calls (right and wrong signature) and access-key creation. Then every line must
 * be JSON, and none may contain an IAM token, a console token, a password, the VNC password, an SK,
 * a signature or the master key. Lines about requests carry the request id, lines about a console
 * session its session id.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { call, passwordAuth, upgradeStatus, websocketUrl } from '../helpers/gateway.js';
import { signedCall } from '../helpers/aksk.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

describe('log lines carry no secret', () => {
  const lines: string[] = [];
  const secrets = new Map<string, string>();
  let gw: Gateway;
  let dataDir: string;

  const keep = (what: string, value: string | null | undefined) => {
    assert.ok(value && value.length >= 8, `${what} is too short to search for`);
    secrets.set(value, what);
  };

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-logs-'));
    const { config } = loadConfig({ argv: ['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'trace', '--demo'] });
    let pending = '';
    const destination = {
      write(chunk: string) {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) { lines.push(pending.slice(0, nl)); pending = pending.slice(nl + 1); }
      },
    };
    gw = await startGateway(config, { logDestination: destination });
  });
  after(async () => {
    await gw?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the scenarios at trace level, then finds no secret in any line', async () => {
    const url = gw.url;
    const f = gw.demo!.facts;
    keep('user password', f.password);
    keep('VNC password', f.vnc_password);
    keep('demo SK', f.sk);
    keep('master key', readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim());

    // IAM: a good login, a wrong password, a malformed body.
    const login = await call(`${url}/v3/auth/tokens`, { json: passwordAuth(f.user, f.password, f.domain, { project: { id: f.project_id } }) });
    assert.equal(login.status, 201);
    const iamToken = login.headers.get('x-subject-token')!;
    keep('IAM token', iamToken);
    const wrongPassword = 'not-the-password-8f2a';
    keep('wrong password', wrongPassword);
    assert.equal((await call(`${url}/v3/auth/tokens`, { json: passwordAuth(f.user, wrongPassword, f.domain, { project: { id: f.project_id } }) })).status, 401);
    assert.equal((await call(`${url}/v3/auth/tokens`, { body: `{"auth":{"identity":{"password":"${wrongPassword}"`, headers: { 'content-type': 'application/json' } })).status, 400);

    const auth = { 'x-auth-token': iamToken };
    const ecs = (id: string, body: unknown = { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: Record<string, string> = auth) =>
      call(`${url}/v1/${f.project_id}/cloudservers/${id}/remote_console`, { json: body, headers });

    // Seed APIs: every success mints a console token.
    const consoleUrls: string[] = [];
    const e1 = await ecs(f.cloudserver_id);
    assert.equal(e1.status, 200);
    consoleUrls.push((e1.body as { remote_console: { url: string } }).remote_console.url);
    const p1 = await call(`${url}/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address`, { headers: auth });
    assert.equal(p1.status, 200);
    consoleUrls.push((p1.body as { url: string }).url);
    const w1 = await call(`${url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: auth });
    assert.equal(w1.status, 200);
    consoleUrls.push((w1.body as { url: string }).url);
    assert.equal((await call(`${url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: auth })).status, 200);

    // Seed API errors: bad body, unknown server, no token, a forged token, another project.
    const forged = 'PH' + 'x'.repeat(60);
    keep('forged IAM token', forged);
    assert.equal((await ecs(f.cloudserver_id, { remote_console: { protocol: 'rdp', type: 'novnc' } })).status, 400);
    assert.equal((await ecs('00000000-0000-4000-a000-000000000000')).status, 404);
    assert.equal((await ecs(f.cloudserver_id, undefined, {})).status, 401);
    assert.equal((await ecs(f.cloudserver_id, undefined, { 'x-auth-token': forged })).status, 401);
    assert.equal((await call(`${url}/v1/${'0'.repeat(32)}/cloudservers/${f.cloudserver_id}/remote_console`, { json: {}, headers: auth })).status, 403);
    assert.equal((await call(`${url}/v2/${f.project_id}/desktops/nope`, { headers: auth })).status, 404);

    // AK/SK: a signed call, a call signed with a wrong SK, and a new key (its SK is in the response only).
    const key = { ak: f.ak!, sk: f.sk! };
    const signed = await signedCall(url, key, { method: 'GET', path: `/v2/${f.project_id}/desktops/${f.desktop_id}` });
    assert.equal(signed.status, 200, signed.text);
    const wrongSk = 'WRONG' + f.sk!.slice(5);
    keep('wrong SK', wrongSk);
    assert.equal((await signedCall(url, key, { method: 'GET', path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, signWith: wrongSk })).status, 401);
    const ecsSigned = await signedCall(url, key, { path: `/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, json: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(ecsSigned.status, 200, ecsSigned.text);
    consoleUrls.push((ecsSigned.body as { remote_console: { url: string } }).remote_console.url);
    const user = (login.body as { token: { user: { id: string } } }).token.user.id;
    const created = await call(`${url}/v3.0/OS-CREDENTIAL/credentials`, { json: { credential: { user_id: user, description: 'log test' } }, headers: auth });
    assert.equal(created.status, 201, created.text);
    keep('created SK', (created.body as { credential: { secret: string } }).credential.secret);

    for (const u of consoleUrls) keep('console token', new URL(u).searchParams.get('token'));

    // The console page and the token-state look-up carry the token in their query.
    assert.equal((await call(consoleUrls[0]!)).status, 200);
    const u0 = new URL(consoleUrls[0]!);
    assert.equal((await call(`${u0.origin}${u0.pathname.replace('vnc_auto.html', 'token-state')}?token=${u0.searchParams.get('token')}`)).status, 200);

    // A console session through the relay: open, type, close; then the used link is refused.
    const c = await RfbTestClient.connect(websocketUrl(consoleUrls[0]!));
    await c.requestUpdate();
    for (const keysym of [0x70, 0x77]) {
      c.send(Uint8Array.from([4, 1, 0, 0, 0, 0, 0, keysym]));
      c.send(Uint8Array.from([4, 0, 0, 0, 0, 0, 0, keysym]));
    }
    c.send(Uint8Array.from([5, 1, 0, 10, 0, 10]));
    await sleep(100);
    c.close();
    await c.closed;
    assert.equal(await upgradeStatus(websocketUrl(consoleUrls[0]!)), 410);
    // A token for another zone, and an unknown token.
    assert.equal(await upgradeStatus(websocketUrl(consoleUrls[1]!).replace(/\/vnc\/[^/]+\//, '/vnc/elsewhere/')), 403);
    for (let i = 0; i < 100 && !lines.some((l) => l.includes('console session ended')); i++) await sleep(20);

    // The checks.
    if (process.env.DUMP_LOGS) console.log(lines.join('\n'));
    assert.ok(lines.length > 25, `only ${lines.length} log lines`);
    assert.ok(lines.some((l) => (JSON.parse(l) as { level: number }).level < 30), 'debug/trace lines were captured');
    const leaks: string[] = [];
    for (const [i, line] of lines.entries()) {
      for (const [value, what] of secrets) if (line.includes(value)) leaks.push(`line ${i}: ${what}: ${line.slice(0, 300)}`);
    }
    assert.deepEqual(leaks, []);

    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = parsed.filter((p) => p.msg === 'request');
    assert.ok(requests.length >= 15, `only ${requests.length} request lines`);
    for (const r of requests) assert.match(String(r.reqId), /^[0-9a-f]{32}$/, 'every request line has the request id');
    const sessionLines = parsed.filter((p) => typeof p.msg === 'string' && /^console session (started|ended)$|^backend handshake done$/.test(p.msg));
    assert.ok(sessionLines.length >= 3, 'the session was logged');
    for (const s of sessionLines) assert.match(String(s.sessionId), /^[0-9a-f-]{36}$/, 'console lines carry the session id');
  });
});
