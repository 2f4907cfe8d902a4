/**
 * The Huawei-shaped list APIs on the real gateway: ECS ListServersDetails (limit/offset as page
 * number, name/status/flavor/ip filters, count) and ShowServer, CloudDC ListServers (marker paging,
 * manage_state), Workspace ListDesktops and ListDesktopsDetail (offset/limit, the documented filters,
 * sorting) — with the same authentication, project isolation, roles and throttling as the console
 * APIs, and parsed by the official Node SDK.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deriveProjectId } from '../../src/domain/fleet.js';
import { call, login, startTestGateway, type TestGateway } from '../helpers/gateway.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const servers = Array.from({ length: 7 }, (_, i) => `          - { name: web-${i + 1}${i === 6 ? ', status: SHUTOFF' : ''}, attributes: { flavor: ${i % 2 ? 's6.large.2' : 's6.small.1'}, addresses: { net: [{ addr: "10.0.0.${i + 1}", version: 4 }] } } }`).join('\n');
const bms = Array.from({ length: 12 }, (_, i) => `          - { name: bm-${String(i + 1).padStart(2, '0')}${i < 2 ? ', attributes: { manage_state: ready, location: { dc: dc1, rack: r1, unit: "U' + (i + 1) + '" } }' : ''} }`).join('\n');
const FLEET = `
domains:
  - name: list-co
    users:
      - { name: viewer, password: viewer-password, roles: { lab: viewer } }
      - { name: other, password: other-password, roles: { other: operator } }
    projects:
      - name: other
      - name: lab
        cloudservers:
${servers}
        physicalservers:
${bms}
        desktops:
          - { name: alpha, attributes: { desktop_type: DEDICATED, user_list: [amy], user_name: amy, ip_addresses: ["192.168.1.1"], tags: [{ key: team, value: red }], created: "2026-01-02T00:00:00.000Z" } }
          - { name: beta, status: SHUTOFF, attributes: { desktop_type: POOLED, user_list: [], in_maintenance_mode: true, created: "2026-01-01T00:00:00.000Z" } }
          - { name: gamma, console: { url: "vnc://127.0.0.1:1" }, attributes: { desktop_type: DEDICATED, user_list: [bob], user_name: bob, tags: [{ key: team, value: blue }], created: "2026-01-03T00:00:00.000Z", availability_zone: az2 } }
`;

describe('Huawei list APIs', () => {
  let t: TestGateway;
  let token: string;
  let otherToken: string;
  const lab = deriveProjectId('list-co', 'lab');
  const get = (p: string, tok = token) => call(`${t.url}${p}`, { headers: { 'x-auth-token': tok } });
  const body = async (p: string) => { const r = await get(p); assert.equal(r.status, 200, r.text); return r.body as Json; };

  before(async () => {
    t = await startTestGateway({ fleet: FLEET, demo: false, args: ['--ratelimit-per-second', '1000'] });
    token = await login(t.url, 'viewer', 'viewer-password', 'list-co', lab);
    otherToken = await login(t.url, 'other', 'other-password', 'list-co', deriveProjectId('list-co', 'other'));
  });
  after(async () => t?.close());

  describe('ECS GET /v1/{project_id}/cloudservers/detail', () => {
    it('pages with limit and offset (a page number), counts all matches, fills ServerDetail truthfully', async () => {
      const all = await body(`/v1/${lab}/cloudservers/detail`);
      assert.equal(all.count, 7);
      assert.deepEqual(Object.keys(all), ['count', 'servers']);
      const s = all.servers[0];
      assert.deepEqual(Object.keys(s).sort(), ['OS-EXT-STS:power_state', 'OS-EXT-STS:vm_state', 'addresses', 'created', 'flavor', 'id', 'metadata', 'name', 'status', 'tenant_id', 'updated'].sort());
      assert.equal(s.tenant_id, lab);
      assert.deepEqual(s.flavor, { id: 's6.small.1', name: 's6.small.1' });
      assert.match(s.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const p1 = await body(`/v1/${lab}/cloudservers/detail?limit=3&offset=1`);
      const p0 = await body(`/v1/${lab}/cloudservers/detail?limit=3&offset=0`);
      const p3 = await body(`/v1/${lab}/cloudservers/detail?limit=3&offset=3`);
      assert.deepEqual(p1, p0, 'offset 0 is the first page, like 1');
      assert.deepEqual(p1.servers.map((x: Json) => x.name), ['web-1', 'web-2', 'web-3']);
      assert.deepEqual(p3.servers.map((x: Json) => x.name), ['web-7']);
      assert.equal(p3.count, 7);
      assert.deepEqual((await body(`/v1/${lab}/cloudservers/detail?limit=3&offset=4`)).servers, []);
    });

    it('filters by name (substring), status, flavor and ip', async () => {
      assert.deepEqual((await body(`/v1/${lab}/cloudservers/detail?name=WEB-7`)).servers.map((x: Json) => x.name), ['web-7']);
      const off = await body(`/v1/${lab}/cloudservers/detail?status=SHUTOFF`);
      assert.deepEqual([off.count, off.servers[0].name, off.servers[0]['OS-EXT-STS:vm_state'], off.servers[0]['OS-EXT-STS:power_state']], [1, 'web-7', 'stopped', 4]);
      assert.equal((await body(`/v1/${lab}/cloudservers/detail?status=ACTIVE`)).count, 6);
      assert.equal((await body(`/v1/${lab}/cloudservers/detail?flavor=s6.large.2`)).count, 3);
      assert.deepEqual((await body(`/v1/${lab}/cloudservers/detail?ip=10.0.0.5`)).servers.map((x: Json) => x.name), ['web-5']);
    });

    it('ShowServer returns {server}; bad parameters are 400 Ecs.0005; unknown servers 404 Ecs.0114', async () => {
      const one = (await body(`/v1/${lab}/cloudservers/detail?name=web-2`)).servers[0];
      assert.deepEqual((await body(`/v1/${lab}/cloudservers/${one.id}`)).server, one);
      for (const q of ['limit=0', 'limit=1001', 'limit=x', 'offset=-1']) {
        const r = await get(`/v1/${lab}/cloudservers/detail?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal((r.body as Json).error.code, 'Ecs.0005');
      }
      const r = await get(`/v1/${lab}/cloudservers/00000000-0000-4000-a000-000000000000`);
      assert.deepEqual([r.status, (r.body as Json).error.code], [404, 'Ecs.0114']);
    });

    it('is parsed by the official Node SDK (listServersDetails)', async () => {
      const home = mkdtempSync(path.join(os.tmpdir(), 'porthole-sdk-home-'));
      const prevHome = process.env.HOME;
      process.env.HOME = home;
      try {
        const require = createRequire(import.meta.url);
        const core = require('@huaweicloud/huaweicloud-sdk-core') as typeof import('@huaweicloud/huaweicloud-sdk-core');
        const ecs = require('@huaweicloud/huaweicloud-sdk-ecs') as typeof import('@huaweicloud/huaweicloud-sdk-ecs');
        (require('log4js') as { getLogger(): { level: string } }).getLogger().level = 'off';
        const viewer = (await t.gw.store.identity.findUserByName((await t.gw.store.identity.findDomainByName('list-co'))!.id, 'viewer'))!;
        const key = await t.gw.accessKeys.ensureKey(viewer.id, undefined, undefined, 'sdk');
        const client = ecs.EcsClient.newBuilder().withCredential(new core.BasicCredentials().withAk(key.ak).withSk(key.sk).withProjectId(lab)).withEndpoint(t.url).build();
        const res = await client.listServersDetails(new ecs.ListServersDetailsRequest().withLimit(2).withOffset(2).withStatus('ACTIVE'));
        assert.equal(res.count, 6);
        assert.deepEqual(res.servers?.map((s) => s.name), ['web-3', 'web-4']);
      } finally {
        if (prevHome === undefined) delete process.env.HOME; else process.env.HOME = prevHome;
        rmSync(home, { recursive: true, force: true });
      }
    });
  });

  describe('CloudDC GET /v1/{project_id}/physicalservers', () => {
    it('pages by marker with limit 10 by default, page_info and count; filters manage_state', async () => {
      const first = await body(`/v1/${lab}/physicalservers`);
      assert.equal(first.count, 12);
      assert.equal(first.servers.length, 10, 'unset limit = 10');
      assert.deepEqual(first.page_info, { current_count: 10, next_marker: first.servers[9].id });
      const s = first.servers[0];
      assert.deepEqual([s.name, s.project_id, s.manage_state, s.location], ['bm-01', lab, 'ready', { dc: 'dc1', rack: 'r1', unit: 'U1' }]);
      assert.equal(s.domain_id, (await t.gw.store.identity.findDomainByName('list-co'))!.id);
      const second = await body(`/v1/${lab}/physicalservers?marker=${first.page_info.next_marker}&limit=3`);
      assert.deepEqual(second.servers.map((x: Json) => x.name), ['bm-11', 'bm-12']);
      assert.equal(second.page_info.next_marker, undefined);
      assert.equal((await body(`/v1/${lab}/physicalservers?limit=2000`)).servers.length, 12);
      const ready = await body(`/v1/${lab}/physicalservers?manage_state=ready`);
      assert.deepEqual(ready.servers.map((x: Json) => x.name), ['bm-01', 'bm-02']);
      const bad = await get(`/v1/${lab}/physicalservers?manage_state=broken`);
      assert.deepEqual([bad.status, (bad.body as Json).error_code], [400, 'iMetal.0001']);
    });
  });

  describe('Workspace', () => {
    it('GET /v2/{project_id}/desktops: SimpleDesktopInfo, offset/limit, user/name/ip/type filters', async () => {
      const all = await body(`/v2/${lab}/desktops`);
      assert.deepEqual(Object.keys(all), ['total_count', 'desktops']);
      assert.equal(all.total_count, 3);
      assert.deepEqual(all.desktops[0], { desktop_id: all.desktops[0].desktop_id, computer_name: 'alpha', created: '2026-01-02T00:00:00.000Z', ip_address: '192.168.1.1', user_name: 'amy' });
      assert.deepEqual((await body(`/v2/${lab}/desktops?offset=1&limit=1`)).desktops.map((d: Json) => d.computer_name), ['beta']);
      assert.deepEqual((await body(`/v2/${lab}/desktops?user_name=bob`)).desktops.map((d: Json) => d.computer_name), ['gamma']);
      assert.deepEqual((await body(`/v2/${lab}/desktops?computer_name=ALP`)).desktops.map((d: Json) => d.computer_name), ['alpha']);
      assert.deepEqual((await body(`/v2/${lab}/desktops?desktop_ip=192.168.1.1`)).desktops.map((d: Json) => d.computer_name), ['alpha']);
      assert.equal((await body(`/v2/${lab}/desktops?desktop_type=POOLED`)).total_count, 1);
      assert.equal((await body(`/v2/${lab}/desktops?pool_id=p1`)).total_count, 0);
      assert.deepEqual((await body(`/v2/${lab}/desktops?limit=0`)).desktops, []);
    });

    it('GET /v2/{project_id}/desktops/detail: DesktopDetailInfo with status, maintenance, attachment, tag, sorting', async () => {
      const all = await body(`/v2/${lab}/desktops/detail`);
      assert.deepEqual(Object.keys(all), ['desktops', 'total_count']);
      assert.equal(all.desktops[1].status, 'SHUTOFF');
      assert.equal(all.desktops[1].login_status, 'UNREGISTER', 'a stopped desktop is not registered');
      assert.equal(all.desktops[0].login_status, 'UNREGISTER', 'no console endpoint: not registered');
      assert.equal(all.desktops[2].login_status, 'REGISTERED', 'a console, not probed yet (the prober is off here)');
      const names = async (q: string) => (await body(`/v2/${lab}/desktops/detail?${q}`)).desktops.map((d: Json) => d.computer_name);
      assert.deepEqual(await names('status=ACTIVE'), ['alpha', 'gamma']);
      assert.deepEqual(await names('in_maintenance_mode=true'), ['beta']);
      assert.deepEqual(await names('user_attached=false'), ['beta']);
      assert.deepEqual(await names('tag=team=blue'), ['gamma']);
      assert.deepEqual(await names('availability_zone=az2'), ['gamma']);
      assert.deepEqual(await names(`desktop_id=${all.desktops[0].desktop_id}&desktop_id=${all.desktops[2].desktop_id}`), ['alpha', 'gamma']);
      assert.deepEqual(await names('sort_field=created&sort_type=DESC'), ['gamma', 'alpha', 'beta']);
      assert.deepEqual(await names('sort_field=computer_name&sort_type=DESC&offset=1&limit=1'), ['beta']);
      for (const q of ['limit=501', 'sort_field=size', 'in_maintenance_mode=yes']) {
        const r = await get(`/v2/${lab}/desktops/detail?${q}`);
        assert.deepEqual([r.status, (r.body as Json).error_code], [400, 'WKS.0001'], q);
      }
    });
  });

  it('isolation: another project\'s token gets 403 APIGW.0302 and nothing of this project', async () => {
    for (const p of [`/v1/${lab}/cloudservers/detail`, `/v1/${lab}/physicalservers`, `/v2/${lab}/desktops`, `/v2/${lab}/desktops/detail`]) {
      const r = await get(p, otherToken);
      assert.equal(r.status, 403, p);
      assert.equal((r.body as Json).error_code, 'APIGW.0302');
      assert.ok(!r.text.includes('web-') && !r.text.includes('alpha') && !r.text.includes('bm-'));
      const anon = await call(`${t.url}${p}`);
      assert.equal(anon.status, 401);
    }
  });
});

describe('Huawei list APIs are throttled like the rest', () => {
  let t: TestGateway;
  before(async () => { t = await startTestGateway({ args: ['--ratelimit-per-second', '2'] }); });
  after(async () => t?.close());

  it('429 APIGW.0308 with Retry-After past the per-second limit (iMetal.0005 on CloudDC)', async () => {
    const f = t.gw.demo!.facts;
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    for (const [p, code] of [[`/v1/${f.project_id}/cloudservers/detail`, 'APIGW.0308'], [`/v1/${f.project_id}/physicalservers`, 'iMetal.0005']] as const) {
      const codes: number[] = [];
      let last: Json = {};
      for (let i = 0; i < 4; i++) {
        const r = await call(`${t.url}${p}`, { headers: { 'x-auth-token': token } });
        codes.push(r.status);
        if (r.status === 429) { last = r.body as Json; assert.ok(Number(r.headers.get('retry-after')) >= 1); }
      }
      assert.deepEqual(codes.slice(0, 2), [200, 200]);
      assert.ok(codes.includes(429), `${p}: ${codes.join(',')}`);
      assert.equal(last.error_code, code);
    }
  });
});
