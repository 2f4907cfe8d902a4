/**
 * Project isolation and roles over every seed route, against the real gateway: each way of calling
 * without the right credentials (none, garbage, expired, another project's token or AK/SK, a viewer
 * on a console route, a bad signature, a date 16 minutes off, a replay outside the window, an
 * unknown AK) gets its documented status and code, and no body names anything of the other
 * project. Then the role matrix: which role may call which route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, demoLogin, login, type HttpResult, type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { send, signedCall, signedRequest, type AkSk } from '../helpers/aksk.js';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';

const FLEET = `
domains:
  - name: acme
    users:
      - { name: alice, password: alice-password, roles: { lab: operator } }
      - { name: victor, password: victor-password, roles: { lab: viewer } }
      - { name: adele, password: adele-password, roles: { lab: admin } }
      - { name: root, password: root-password, domain_admin: true }
      - { name: nora, password: nora-password, roles: { shop: admin } }
    projects:
      - name: lab
        cloudservers: [{ name: web-1, console: { url: "vnc://127.0.0.1:1", security: none } }]
        physicalservers: [{ name: bm-1, console: { url: "vnc://127.0.0.1:1" } }]
        desktops: [{ name: desk-1, console: { url: "vnc://127.0.0.1:1" }, attributes: { desktop_type: DEDICATED } }]
      - name: shop
`;

const ECS_BODY = { remote_console: { protocol: 'vnc', type: 'novnc' } };
const MIN = 60_000;

interface Route { name: string; method: 'GET' | 'POST'; path: (p: string, ids: Ids) => string; json?: unknown; console: boolean }
interface Ids { cloudserver: string; physicalserver: string; desktop: string }

/** The four seed routes that take credentials (POST /v3/auth/tokens is how credentials are made). */
const ROUTES: Route[] = [
  { name: 'ECS remote_console', method: 'POST', path: (p, i) => `/v1/${p}/cloudservers/${i.cloudserver}/remote_console`, json: ECS_BODY, console: true },
  { name: 'CloudDC remote-console-address', method: 'GET', path: (p, i) => `/v1/${p}/physicalservers/${i.physicalserver}/remote-console-address`, console: true },
  { name: 'Workspace remote-consoles', method: 'GET', path: (p, i) => `/v2/${p}/desktops/${i.desktop}/remote-consoles`, console: true },
  { name: 'Workspace desktop detail', method: 'GET', path: (p, i) => `/v2/${p}/desktops/${i.desktop}`, console: false },
];

const errorCode = (r: HttpResult) => (r.body as { error_code?: string } | undefined)?.error_code;
const errorMsg = (r: HttpResult) => (r.body as { error_msg?: string } | undefined)?.error_msg;

describe('isolation matrix', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  const labId = deriveProjectId('acme', 'lab');
  const lab: Ids = {
    cloudserver: deriveResourceId(labId, 'cloudserver', 'web-1'),
    physicalserver: deriveResourceId(labId, 'physicalserver', 'bm-1'),
    desktop: deriveResourceId(labId, 'desktop', 'desk-1'),
  };
  let demo: Ids;
  let demoToken: string;
  let demoKey: AkSk;
  const tokens: Record<string, string> = {};
  let aliceKey: AkSk;
  /** Every field of the demo project's resources that must never reach another project's caller. */
  let demoSecrets: string[];
  const bodies: string[] = [];

  const record = (r: HttpResult) => { bodies.push(r.text); return r; };

  before(async () => {
    t = await startTestGateway({ fleet: FLEET, args: ['--ratelimit-per-second', '10000', '--ratelimit-per-minute', '1000000', '--ratelimit-per-address-per-second', '100000', '--ratelimit-per-address-per-minute', '10000000'] });
    f = t.gw.demo!.facts;
    demo = { cloudserver: f.cloudserver_id, physicalserver: f.physicalserver_id, desktop: f.desktop_id };
    demoToken = await demoLogin(t);
    demoKey = { ak: f.ak!, sk: f.sk! };
    for (const u of ['alice', 'victor', 'adele', 'root']) tokens[u] = await login(t.url, u, `${u}-password`, 'acme', labId);
    tokens.nora = await login(t.url, 'nora', 'nora-password', 'acme', deriveProjectId('acme', 'shop'));
    const me = await call(`${t.url}/v3/auth/tokens`, { json: { auth: { identity: { methods: ['password'], password: { user: { name: 'alice', password: 'alice-password', domain: { name: 'acme' } } } } } } });
    const aliceId = (me.body as { token: { user: { id: string } } }).token.user.id;
    const created = await call(`${t.url}/v3.0/OS-CREDENTIAL/credentials`, { json: { credential: { user_id: aliceId } }, headers: { 'x-auth-token': tokens.alice! } });
    assert.equal(created.status, 201, created.text);
    const c = (created.body as { credential: { access: string; secret: string } }).credential;
    aliceKey = { ak: c.access, sk: c.secret };
    const detail = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': demoToken } });
    assert.equal(detail.status, 200);
    demoSecrets = [f.cloudserver_id, f.physicalserver_id, f.desktop_id, 'demo-ecs', 'demo-bms', 'demo-desktop', '192.168.0.10', 'fa:16:3e:00:00:10', 'Porthole demo', 'vnc://', '/vnc/demo/'];
  });
  after(async () => t.close());

  function assertNoDemoFields(r: HttpResult, what: string) {
    for (const s of demoSecrets) assert.ok(!r.text.includes(s), `${what}: the body names ${s}: ${r.text}`);
  }

  function tokenCall(route: Route, projectId: string, ids: Ids, headers: Record<string, string>) {
    return call(`${t.url}${route.path(projectId, ids)}`, { method: route.method, headers, ...(route.json ? { json: route.json } : {}) }).then(record);
  }

  function akCall(route: Route, projectId: string, ids: Ids, key: AkSk, extra: { xProjectId?: string | null; now?: Date; signWith?: string } = {}) {
    const xp = extra.xProjectId === undefined ? projectId : extra.xProjectId;
    return signedCall(t.url, key, {
      method: route.method, path: route.path(projectId, ids), ...(route.json ? { json: route.json } : {}),
      ...(xp === null ? {} : { projectId: xp }), ...(extra.now ? { now: extra.now } : {}), ...(extra.signWith ? { signWith: extra.signWith } : {}),
    }, t.clock.offsetMs).then(record);
  }

  function expect(r: HttpResult, status: number, code: string, what: string, message?: string | RegExp) {
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.equal(errorCode(r), code, `${what}: ${r.text}`);
    assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/, what);
    if (typeof message === 'string') assert.equal(errorMsg(r), message, what);
    else if (message) assert.match(errorMsg(r) ?? '', message, what);
  }

  for (const route of ROUTES) {
    describe(route.name, () => {
      it('the owner gets 200 with a token and with AK/SK (Node and Go signing)', async () => {
        assert.equal((await tokenCall(route, f.project_id, demo, { 'x-auth-token': demoToken })).status, 200);
        assert.equal((await akCall(route, f.project_id, demo, demoKey)).status, 200);
        const go = await signedCall(t.url, demoKey, { method: route.method, path: route.path(f.project_id, demo), ...(route.json ? { json: route.json } : {}), projectId: f.project_id, style: 'go' }, t.clock.offsetMs);
        assert.equal(go.status, 200, go.text);
      });

      it('no credentials → 401 APIGW.0301', async () => {
        const r = await tokenCall(route, f.project_id, demo, {});
        expect(r, 401, 'APIGW.0301', 'no auth', 'Incorrect IAM authentication information: x-auth-token not found');
        assertNoDemoFields(r, 'no auth');
      });

      it('garbage token → 401 APIGW.0301, the token not echoed', async () => {
        const r = await tokenCall(route, f.project_id, demo, { 'x-auth-token': 'garbage-token-0123456789' });
        expect(r, 401, 'APIGW.0301', 'garbage token', 'Incorrect IAM authentication information: decrypt token fail');
        assert.ok(!r.text.includes('garbage-token'));
        assertNoDemoFields(r, 'garbage token');
      });

      it('expired token → 401 APIGW.0307', async () => {
        t.clock.offsetMs = 24 * 3600 * 1000 + 1000;
        try {
          const r = await tokenCall(route, f.project_id, demo, { 'x-auth-token': demoToken });
          expect(r, 401, 'APIGW.0307', 'expired token', 'The token must be updated.');
          assertNoDemoFields(r, 'expired token');
        } finally {
          t.clock.offsetMs = 0;
        }
      });

      it("another project's token → 403 APIGW.0302", async () => {
        for (const user of ['alice', 'adele', 'root', 'nora']) {
          const r = await tokenCall(route, f.project_id, demo, { 'x-auth-token': tokens[user]! });
          expect(r, 403, 'APIGW.0302', `${user}'s token`);
          assertNoDemoFields(r, `${user}'s token`);
        }
      });

      it("another project's AK/SK → 403 APIGW.0302, with or without X-Project-Id", async () => {
        for (const xProjectId of [labId, f.project_id, null]) {
          const r = await akCall(route, f.project_id, demo, aliceKey, { xProjectId });
          expect(r, 403, 'APIGW.0302', `alice's AK, X-Project-Id ${xProjectId}`);
          assertNoDemoFields(r, "alice's AK");
        }
        // Alice's own project with her key works, so the refusals above are about the project.
        assert.equal((await akCall(route, labId, lab, aliceKey)).status, 200);
      });

      it("the owner's AK with X-Project-Id of another project → 403 APIGW.0302", async () => {
        const r = await akCall(route, f.project_id, demo, demoKey, { xProjectId: labId });
        expect(r, 403, 'APIGW.0302', 'X-Project-Id mismatch');
      });

      it(route.console ? 'viewer → 403 APIGW.0302 (a viewer never opens a console)' : 'viewer → 200 (a viewer may read details)', async () => {
        const own = await tokenCall(route, labId, lab, { 'x-auth-token': tokens.victor! });
        if (route.console) expect(own, 403, 'APIGW.0302', 'viewer', /not authorized to perform/);
        else assert.equal(own.status, 200, own.text);
        const other = await tokenCall(route, f.project_id, demo, { 'x-auth-token': tokens.victor! });
        expect(other, 403, 'APIGW.0302', "viewer on another project");
        assertNoDemoFields(other, 'viewer');
      });

      it('bad signature, date 16 min off, replay outside the window, unknown AK → 401 APIGW.0301 with the documented suffix', async () => {
        const bad = await akCall(route, f.project_id, demo, demoKey, { signWith: 'X'.repeat(40) });
        expect(bad, 401, 'APIGW.0301', 'bad signature', 'Incorrect IAM authentication information: verify aksk signature fail');
        assertNoDemoFields(bad, 'bad signature');
        for (const offset of [-16 * MIN, 16 * MIN]) {
          const r = await akCall(route, f.project_id, demo, demoKey, { now: new Date(Date.now() + offset) });
          expect(r, 401, 'APIGW.0301', `date ${offset / MIN} min off`, 'Incorrect IAM authentication information: calc ak sk signature fail:signature expired');
          assertNoDemoFields(r, 'date off');
        }
        // The exact same signed request: accepted now, refused once the gateway's clock has moved 16 minutes on.
        const req = signedRequest(t.url, demoKey, { method: route.method, path: route.path(f.project_id, demo), ...(route.json ? { json: route.json } : {}), projectId: f.project_id });
        assert.equal((await send(req)).status, 200);
        t.clock.offsetMs = 16 * MIN;
        try {
          const replay = record(await send(req));
          expect(replay, 401, 'APIGW.0301', 'replay', 'Incorrect IAM authentication information: calc ak sk signature fail:signature expired');
          assertNoDemoFields(replay, 'replay');
        } finally {
          t.clock.offsetMs = 0;
        }
        const unknown = await akCall(route, f.project_id, demo, { ak: 'NOSUCHKEY0123456789A', sk: 'x'.repeat(40) });
        expect(unknown, 401, 'APIGW.0301', 'unknown AK', 'Incorrect IAM authentication information: Get secretKey failed,ak:***,err:ak not exist');
        assert.ok(!unknown.text.includes('NOSUCHKEY'), 'the AK is never echoed');
        // Three failures in a row, then a success: the key is not locked and its count starts again.
        assert.equal((await akCall(route, f.project_id, demo, demoKey)).status, 200);
      });
    });
  }

  describe('role matrix', () => {
    // Expected status per user for [console routes, desktop detail] in project lab.
    const MATRIX: Record<string, [number, number]> = { victor: [403, 200], alice: [200, 200], adele: [200, 200], root: [200, 200], nora: [403, 403] };
    for (const [user, [consoleStatus, readStatus]] of Object.entries(MATRIX)) {
      it(`${user}: console ${consoleStatus}, detail ${readStatus}`, async () => {
        for (const route of ROUTES) {
          const want = route.console ? consoleStatus : readStatus;
          const r = await tokenCall(route, labId, lab, { 'x-auth-token': tokens[user]! });
          assert.equal(r.status, want, `${user} ${route.name}: ${r.text}`);
          if (want === 403) assert.equal(errorCode(r), 'APIGW.0302');
        }
      });
    }
  });

  it('no response body in this file carried a password, SK or token', () => {
    const secrets = [f.password, f.sk!, f.vnc_password, demoToken, aliceKey.sk, ...Object.values(tokens), 'alice-password', 'victor-password'];
    for (const text of bodies) for (const s of secrets) assert.ok(!text.includes(s), `a body carried a secret: ${text}`);
    assert.ok(bodies.length > 50);
  });
});
