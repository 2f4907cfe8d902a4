/**
 * Access keys (Huawei IAM `/v3.0/OS-CREDENTIAL/credentials`) and the audit trail, over real HTTP:
 * create (the SK shown once, stored sealed), list, show with last_use_time, disable, delete; who may
 * manage whose keys; the admin audit API with its filters and paging; and a scan of every response
 * body, every audit row and the database files for passwords, SKs and tokens.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { call, login, passwordAuth, type HttpResult, type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { signedCall, type AkSk } from '../helpers/aksk.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { deriveProjectId } from '../../src/domain/fleet.js';
import { loadConfig } from '../../src/config/index.js';
import { startGateway } from '../../src/gateway.js';

const FLEET = `
domains:
  - name: acme
    users:
      - { name: alice, password: alice-password, roles: { lab: operator } }
      - { name: root, password: root-password, domain_admin: true }
    projects:
      - name: lab
`;

const CREDS = '/v3.0/OS-CREDENTIAL/credentials';
const KEYSTONE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const ECS_BODY = { remote_console: { protocol: 'vnc', type: 'novnc' } };

const errorCode = (r: HttpResult) => (r.body as { error_code?: string } | undefined)?.error_code;

interface Credential { access: string; secret?: string; status: string; user_id: string; create_time: string; last_use_time?: string; description: string }

describe('access keys and audit trail', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let demoToken: string;
  let demoUserId: string;
  let aliceToken: string;
  let aliceId: string;
  let rootToken: string;
  let newKey: AkSk;
  const labId = deriveProjectId('acme', 'lab');
  /** Every response body of this file, except the creation responses that carry an SK by design. */
  const bodies: string[] = [];
  const secrets: string[] = ['alice-password', 'root-password'];
  /** One-time console tokens: delivered in response bodies by design, but never in the audit trail or the database. */
  const consoleTokens: string[] = [];
  const startedAt = Date.now();

  async function api(url: string, init: Parameters<typeof call>[1] = {}, opts: { carriesSecret?: boolean } = {}): Promise<HttpResult> {
    const r = await call(`${t.url}${url}`, init);
    if (!opts.carriesSecret) bodies.push(r.text);
    const subject = r.headers.get('x-subject-token');
    if (subject) secrets.push(subject);
    for (const m of r.text.matchAll(/token=([A-Za-z0-9_-]{20,})/g)) consoleTokens.push(m[1]!);
    return r;
  }
  const as = (token: string) => ({ 'x-auth-token': token });
  const domainLogin = async (user: string, password: string, domain: string): Promise<string> => {
    const r = await call(`${t.url}/v3/auth/tokens`, { json: passwordAuth(user, password, domain, { domain: { name: domain } }) });
    assert.equal(r.status, 201, r.text);
    return r.headers.get('x-subject-token')!;
  };

  before(async () => {
    t = await startTestGateway({ fleet: FLEET, args: ['--ratelimit-per-second', '10000', '--ratelimit-per-minute', '1000000'] });
    f = t.gw.demo!.facts;
    secrets.push(f.password, f.sk!, f.vnc_password);
    // The domain administrators manage keys and read the audit trail domain-wide: domain-scoped tokens
    // (a project-scoped one acts on its project only, security #3).
    demoToken = await domainLogin(f.user, f.password, f.domain);
    aliceToken = await login(t.url, 'alice', 'alice-password', 'acme', labId);
    rootToken = await domainLogin('root', 'root-password', 'acme');
    secrets.push(demoToken, aliceToken, rootToken);
    const list = await api(CREDS, { headers: as(demoToken) });
    demoUserId = (list.body as { credentials: Credential[] }).credentials[0]!.user_id;
    const aliceList = await api(`/v3/auth/tokens`, { json: { auth: { identity: { methods: ['password'], password: { user: { name: 'alice', password: 'alice-password', domain: { name: 'acme' } } } } } } });
    aliceId = (aliceList.body as { token: { user: { id: string } } }).token.user.id;
    secrets.push(aliceList.headers.get('x-subject-token')!);
  });
  after(async () => t.close());

  describe('access keys', () => {
    it('the demo key is listed without its secret', async () => {
      const r = await api(`${CREDS}?user_id=${demoUserId}`, { headers: as(demoToken) });
      assert.equal(r.status, 200, r.text);
      const creds = (r.body as { credentials: Credential[] }).credentials;
      assert.equal(creds.length, 1);
      assert.deepEqual(Object.keys(creds[0]!).sort(), ['access', 'create_time', 'description', 'last_use_time', 'status', 'user_id']);
      assert.equal(creds[0]!.access, f.ak);
      assert.equal(creds[0]!.status, 'active');
    });

    it('POST creates a key: 201, the SK once, stored only sealed', async () => {
      const r = await api(CREDS, { json: { credential: { user_id: demoUserId, description: 'ci key' } }, headers: as(demoToken) }, { carriesSecret: true });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const c = (r.body as { credential: Credential }).credential;
      assert.deepEqual(Object.keys(c).sort(), ['access', 'create_time', 'description', 'secret', 'status', 'user_id']);
      assert.match(c.access, /^[A-Z0-9]{20}$/);
      assert.match(c.secret!, /^[A-Za-z0-9]{40}$/);
      assert.equal(c.status, 'active');
      assert.equal(c.user_id, demoUserId);
      assert.equal(c.description, 'ci key');
      assert.match(c.create_time, KEYSTONE_TIME);
      newKey = { ak: c.access, sk: c.secret! };
      secrets.push(c.secret!);
      const stored = await t.gw.store.accessKeys.get(c.access);
      assert.ok(stored && stored.secretSealed.startsWith('v1:') && !stored.secretSealed.includes(c.secret!));
      const shown = await api(`${CREDS}/${c.access}`, { headers: as(demoToken) });
      assert.ok(!shown.text.includes(c.secret!), 'never shown again');
    });

    it('a third key is refused (two per user, as Huawei IAM)', async () => {
      const r = await api(CREDS, { json: { credential: { user_id: demoUserId } }, headers: as(demoToken) });
      assert.equal(r.status, 400, r.text);
      assert.equal(errorCode(r), 'IAM.0003');
      assert.match(r.text, /akSkNumExceed/);
    });

    it('GET shows last_use_time: the creation time until first use, then the time of use', async () => {
      const before = (await api(`${CREDS}/${newKey.ak}`, { headers: as(demoToken) })).body as { credential: Credential };
      assert.equal(before.credential.last_use_time, before.credential.create_time);
      t.clock.offsetMs = 5000;
      try {
        const used = await signedCall(t.url, newKey, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id }, t.clock.offsetMs);
        bodies.push(used.text);
        assert.equal(used.status, 200, used.text);
      } finally {
        t.clock.offsetMs = 0;
      }
      const afterUse = (await api(`${CREDS}/${newKey.ak}`, { headers: as(demoToken) })).body as { credential: Credential };
      assert.match(afterUse.credential.last_use_time!, KEYSTONE_TIME);
      assert.ok(Date.parse(afterUse.credential.last_use_time!) >= Date.parse(afterUse.credential.create_time) + 4000);
    });

    it('PUT inactive disables the key (401 for its signatures, on the very next call), PUT active enables it again', async () => {
      const warm = await signedCall(t.url, newKey, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id });
      assert.equal(warm.status, 200, 'the key was just used (and its record cached)');
      const off = await api(`${CREDS}/${newKey.ak}`, { method: 'PUT', json: { credential: { status: 'inactive', description: 'paused' } }, headers: as(demoToken) });
      assert.equal(off.status, 200, off.text);
      const c = (off.body as { credential: Credential }).credential;
      assert.deepEqual({ status: c.status, description: c.description, access: c.access }, { status: 'inactive', description: 'paused', access: newKey.ak });
      const refused = await signedCall(t.url, newKey, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id });
      bodies.push(refused.text);
      assert.equal(refused.status, 401);
      assert.equal((refused.body as { error_msg: string }).error_msg, 'Incorrect IAM authentication information: the access key is inactive');
      const on = await api(`${CREDS}/${newKey.ak}`, { method: 'PUT', json: { credential: { status: 'active' } }, headers: as(demoToken) });
      assert.equal(on.status, 200);
      const ok = await signedCall(t.url, newKey, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id });
      bodies.push(ok.text);
      assert.equal(ok.status, 200);
      const bad = await api(`${CREDS}/${newKey.ak}`, { method: 'PUT', json: { credential: { status: 'paused' } }, headers: as(demoToken) });
      assert.equal(bad.status, 400);
      assert.equal(errorCode(bad), 'IAM.0003');
    });

    it('keys can be managed with AK/SK too', async () => {
      const r = await signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { path: `${CREDS}?user_id=${demoUserId}` });
      bodies.push(r.text);
      assert.equal(r.status, 200, r.text);
      assert.equal((r.body as { credentials: Credential[] }).credentials.length, 2);
    });

    it('a user manages only their own keys; a domain administrator those of the domain', async () => {
      const forOther = await api(CREDS, { json: { credential: { user_id: demoUserId } }, headers: as(aliceToken) });
      assert.equal(forOther.status, 403, forOther.text);
      assert.equal(errorCode(forOther), 'IAM.0002');
      const listOther = await api(`${CREDS}?user_id=${demoUserId}`, { headers: as(aliceToken) });
      assert.equal(listOther.status, 403);
      for (const method of ['GET', 'DELETE'] as const) {
        const r = await api(`${CREDS}/${f.ak}`, { method, headers: as(aliceToken) });
        assert.equal(r.status, 404, `${method}: ${r.text}`);
        assert.equal(errorCode(r), 'IAM.0004');
      }
      const put = await api(`${CREDS}/${f.ak}`, { method: 'PUT', json: { credential: { status: 'inactive' } }, headers: as(aliceToken) });
      assert.equal(put.status, 404);
      // root administers acme, not porthole-demo: other domains' users do not exist for it.
      const rootForDemo = await api(CREDS, { json: { credential: { user_id: demoUserId } }, headers: as(rootToken) });
      assert.equal(rootForDemo.status, 404, rootForDemo.text);
      const rootForAlice = await api(CREDS, { json: { credential: { user_id: aliceId, description: 'made by root' } }, headers: as(rootToken) }, { carriesSecret: true });
      assert.equal(rootForAlice.status, 201, rootForAlice.text);
      const aliceKey = (rootForAlice.body as { credential: Credential }).credential;
      secrets.push(aliceKey.secret!);
      const mine = await api(CREDS, { headers: as(aliceToken) });
      assert.deepEqual((mine.body as { credentials: Credential[] }).credentials.map((c) => c.access), [aliceKey.access]);
      const domainKeys = await api(CREDS, { headers: as(rootToken) });
      const listed = (domainKeys.body as { credentials: Credential[] }).credentials.map((c) => c.access);
      assert.ok(listed.includes(aliceKey.access) && !listed.includes(f.ak!) && !listed.includes(newKey.ak));
      const del = await api(`${CREDS}/${aliceKey.access}`, { method: 'DELETE', headers: as(aliceToken) });
      assert.equal(del.status, 204);
      const none = await api(CREDS, { headers: as(aliceToken) });
      assert.deepEqual((none.body as { credentials: Credential[] }).credentials, []);
      const anon = await api(CREDS);
      assert.equal(anon.status, 401);
      assert.equal(errorCode(anon), 'APIGW.0301');
      const missing = await api(CREDS, { json: { credential: {} }, headers: as(aliceToken) });
      assert.equal(missing.status, 400);
      assert.equal(errorCode(missing), 'IAM.0003');
    });

    it('DELETE removes the key: 204, then its signatures get "ak not exist" and GET 404', async () => {
      const r = await api(`${CREDS}/${newKey.ak}`, { method: 'DELETE', headers: as(demoToken) });
      assert.equal(r.status, 204);
      const used = await signedCall(t.url, newKey, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id });
      bodies.push(used.text);
      assert.equal(used.status, 401);
      assert.equal((used.body as { error_msg: string }).error_msg, 'Incorrect IAM authentication information: Get secretKey failed,ak:***,err:ak not exist');
      const gone = await api(`${CREDS}/${newKey.ak}`, { headers: as(demoToken) });
      assert.equal(gone.status, 404);
      assert.equal(errorCode(gone), 'IAM.0004');
    });
  });

  describe('audit API', () => {
    let okRequestId: string;
    let failedRequestId: string;

    type Event = Record<string, unknown>;
    const events = async (query: string, token = demoToken) => {
      const r = await api(`/admin/v1/audit-events${query}`, { headers: as(token) });
      assert.equal(r.status, 200, r.text);
      return r.body as { events: Event[]; count: number };
    };
    /** Audit records are written after the response; wait until `pred` holds. */
    async function eventually<T>(fn: () => Promise<T>, pred: (v: T) => boolean): Promise<T> {
      for (let i = 0; ; i++) {
        const v = await fn();
        if (pred(v) || i >= 50) return v;
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    before(async () => {
      const key = { ak: f.ak!, sk: f.sk! };
      const ok = await signedCall(t.url, key, { path: `/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, json: ECS_BODY, projectId: f.project_id });
      bodies.push(ok.text);
      assert.equal(ok.status, 200);
      okRequestId = ok.headers.get('x-request-id')!;
      const url = (ok.body as { remote_console: { url: string } }).remote_console.url;
      consoleTokens.push(new URL(url).searchParams.get('token')!);
      const bad = await signedCall(t.url, key, { path: `/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, json: ECS_BODY, projectId: f.project_id, signWith: 'Z'.repeat(40) });
      bodies.push(bad.text);
      failedRequestId = bad.headers.get('x-request-id')!;
      // A console session: its start and end are audit events too.
      const ws = new URL(url.replace('vnc_auto.html', 'websockify'));
      ws.protocol = 'ws:';
      const viewer = await RfbTestClient.connect(ws.toString());
      viewer.ws.close();
      await viewer.closed;
      await eventually(() => t.gw.store.audit.list({ action: 'console:session:end' }), (l) => l.length > 0);
    });

    it('a signed call is recorded with user, AK, action, resource, project, address, agent, result, code and request id', async () => {
      const { events: list } = await eventually(() => events(`?action=ecs:cloudServers:vnc&actor=${f.ak}`), (v) => v.events.some((e) => e.request_id === okRequestId));
      const e = list.find((x) => x.request_id === okRequestId)!;
      assert.deepEqual(
        { user_id: e.user_id, user_name: e.user_name, access_key: e.access_key, action: e.action, resource_type: e.resource_type, resource_id: e.resource_id, project_id: e.project_id, result: e.result, code: e.code },
        { user_id: demoUserId, user_name: f.user, access_key: f.ak, action: 'ecs:cloudServers:vnc', resource_type: 'cloudserver', resource_id: f.cloudserver_id, project_id: f.project_id, result: 'success', code: '200' },
      );
      assert.match(String(e.source_ip), /127\.0\.0\.1/);
      assert.ok(typeof e.user_agent === 'string' && e.user_agent.length > 0);
      assert.match(String(e.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    it('a refused signature is recorded with the claimed AK, the error code and the reason', async () => {
      const { events: list } = await eventually(() => events('?result=failure&action=ecs:cloudServers:vnc'), (v) => v.events.some((e) => e.request_id === failedRequestId));
      const e = list.find((x) => x.request_id === failedRequestId)!;
      assert.deepEqual({ user_id: e.user_id, access_key: e.access_key, code: e.code, detail: e.detail, result: e.result }, {
        user_id: null, access_key: f.ak, code: 'APIGW.0301', detail: 'aksk:signature_mismatch', result: 'failure',
      });
      assert.ok(list.every((x) => x.result === 'failure' && x.action === 'ecs:cloudServers:vnc'));
    });

    it('console session start and end are in the trail', async () => {
      const { events: list } = await events(`?resource_id=${f.cloudserver_id}`);
      const actions = list.map((e) => e.action);
      assert.ok(actions.includes('console:session:start') && actions.includes('console:session:end'), actions.join(','));
      assert.ok(list.every((e) => e.resource_id === f.cloudserver_id));
    });

    it('filters by actor (user id, name or AK) and by time (ISO-8601 or epoch ms)', async () => {
      const byName = await events(`?actor=${f.user}&limit=1000`);
      assert.ok(byName.count > 0 && byName.events.every((e) => e.user_name === f.user));
      const byId = await events(`?actor=${demoUserId}&limit=1000`);
      assert.ok(byId.events.some((e) => e.request_id === okRequestId) && byId.events.every((e) => e.user_id === demoUserId));
      const byAk = await events(`?actor=${f.ak}&limit=1000`);
      assert.ok(byAk.events.some((e) => e.request_id === failedRequestId) && byAk.events.every((e) => e.access_key === f.ak));
      const future = await events(`?since=${Date.now() + 3_600_000}`);
      assert.deepEqual(future, { events: [], count: 0 });
      const past = await events(`?until=${new Date(startedAt - 1000).toISOString()}`);
      assert.equal(past.count, 0);
      const window = await events(`?since=${new Date(startedAt - 1000).toISOString()}&until=${Date.now() + 1000}`);
      assert.ok(window.events.some((e) => e.request_id === okRequestId));
    });

    it('pages with limit and offset; count is the number of matching events', async () => {
      // The AK's events are a fixed set once these calls are recorded (the listing calls themselves use a token).
      for (let i = 0; i < 5; i++) {
        const r = await signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id });
        bodies.push(r.text);
      }
      const all = await eventually(() => events(`?actor=${f.ak}&limit=1000`), (v) => v.count >= 8);
      assert.ok(all.count >= 6, `count ${all.count}`);
      assert.equal(all.events.length, all.count);
      const p1 = await events(`?actor=${f.ak}&limit=3&offset=0`);
      const p2 = await events(`?actor=${f.ak}&limit=3&offset=3`);
      assert.equal(p1.count, all.count);
      assert.equal(p2.count, all.count);
      const ids = (l: Event[]) => l.map((e) => `${e.request_id}/${e.action}`);
      assert.deepEqual([...ids(p1.events), ...ids(p2.events)], ids(all.events.slice(0, 6)));
      const beyond = await events(`?actor=${f.ak}&limit=3&offset=${all.count}`);
      assert.deepEqual(beyond.events, []);
      const everything = await events('?limit=1000');
      const times = everything.events.map((e) => Date.parse(String(e.time)));
      assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    });

    it('only domain administrators; each sees their own domain', async () => {
      const alice = await api('/admin/v1/audit-events', { headers: as(aliceToken) });
      assert.equal(alice.status, 403);
      assert.equal(errorCode(alice), 'PH.0403');
      const anon = await api('/admin/v1/audit-events');
      assert.equal(anon.status, 401);
      const bad = await api('/admin/v1/audit-events?limit=0', { headers: as(demoToken) });
      assert.equal(bad.status, 400);
      assert.equal(errorCode(bad), 'PH.0400');
      assert.equal((await api('/admin/v1/audit-events?since=yesterday', { headers: as(demoToken) })).status, 400);
      assert.equal((await api('/admin/v1/audit-events?result=maybe', { headers: as(demoToken) })).status, 400);
      const root = await events('?limit=1000', rootToken);
      assert.ok(root.count > 0);
      assert.ok(root.events.every((e) => e.user_name !== f.user && e.access_key !== f.ak && e.project_id !== f.project_id), 'no porthole-demo events for acme');
      const demo = await events('?limit=1000');
      assert.ok(demo.events.every((e) => e.user_name !== 'alice' && e.user_name !== 'root'), 'no acme events for porthole-demo');
    });
  });

  it('no response body, audit row or database file holds a password, SK or token in clear', async () => {
    await t.gw.audit.flush();
    const rows = JSON.stringify(await t.gw.store.audit.list({ limit: 100_000 }));
    const unique = [...new Set(secrets)].filter((s) => s.length >= 8);
    assert.ok(unique.length >= 10, `secrets collected: ${unique.length}`);
    for (const s of unique) {
      assert.ok(!rows.includes(s), 'an audit row carries a secret');
      for (const b of bodies) assert.ok(!b.includes(s), `a response body carries a secret: ${b.slice(0, 200)}`);
    }
    assert.ok(consoleTokens.length >= 1);
    for (const s of consoleTokens) assert.ok(!rows.includes(s), 'an audit row carries a console token');
    const dbFiles = readdirSync(t.dataDir).filter((n) => n.startsWith('porthole.db')).map((n) => readFileSync(path.join(t.dataDir, n)).toString('latin1'));
    assert.ok(dbFiles.length > 0);
    for (const s of [...unique, ...consoleTokens]) for (const db of dbFiles) assert.ok(!db.includes(s), 'the database holds a secret in clear');
  });
});

describe('the demo access key', () => {
  it('is created once and kept across restarts (demo.json and the store agree)', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-demo-key-'));
    const start = () => startGateway(loadConfig({ argv: ['--port', '0', '--data-dir', dataDir, '--demo'], env: {} }).config, { logger: pino({ level: 'silent' }) });
    try {
      const first = await start();
      const { ak, sk } = first.demo!.facts;
      const userId = (await first.store.accessKeys.get(ak!))!.userId;
      await first.close();
      const second = await start();
      try {
        assert.equal(second.demo!.facts.ak, ak);
        assert.equal(second.demo!.facts.sk, sk);
        const onDisk = JSON.parse(readFileSync(path.join(dataDir, 'demo.json'), 'utf8')) as { ak: string; sk: string };
        assert.deepEqual({ ak: onDisk.ak, sk: onDisk.sk }, { ak, sk });
        assert.deepEqual((await second.store.accessKeys.listByUser(userId)).map((k) => k.accessKey), [ak]);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
