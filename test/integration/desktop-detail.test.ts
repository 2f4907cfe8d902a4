/**
 * The Workspace desktop detail exactly as documented (reliability issue, item 2; seeds 003/004 and
 * reference E.5), so that typed clients (Go/Java SDK models) parse every answer:
 *  - every nested DesktopDetailInfo field is checked on input (admin API and fleet files) against its
 *    documented type and enum;
 *  - every documented field is in the answer (an empty list, an empty object or null when unset);
 *  - `status` is one of Workspace's values; the demo's assignment names the user's IAM id and a user
 *    group of the desktop's OS;
 *  - a malformed id answers 400 with the service's code where the seed documents 400, and a malformed
 *    project id is a bad request, not "credentials scoped to another project".
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DESKTOP_DETAIL_FIELDS, desktopAttributeProblems } from '../../src/domain/desktop.js';
import { signedCall } from '../helpers/aksk.js';
import { call, passwordAuth, startTestGateway, type HttpResult, type TestGateway } from '../helpers/gateway.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const LISTS = ['ip_addresses', 'user_list', 'user_group_list', 'security_groups', 'attach_user_infos', 'data_volumes', 'tags', 'internet_mode_list'];
const MAPS = ['addresses', 'metadata'];

/** Every served field has its documented type (the input check, applied to the answer; null = unset). */
function assertTyped(desk: Json, where: string): void {
  const { desktop_id: _id, status: _status, ...rest } = desk;
  const set = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null));
  assert.deepEqual(desktopAttributeProblems(set), [], `${where}: served fields have their documented types`);
  assert.ok(['ACTIVE', 'SHUTOFF', 'ERROR', 'HIBERNATED'].includes(desk.status as string), `${where}: status ${desk.status}`);
}

describe('seed: Workspace desktop detail as documented', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let token: string;
  let userId: string;
  const api = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  const asUser = (p: string) => call(`${t.url}${p}`, { headers: { 'x-auth-token': token } });
  const created: string[] = [];
  const makeDesktop = async (name: string, extra: Json = {}): Promise<Json> => {
    const r = await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name, ...extra } });
    assert.equal(r.status, 201, r.text);
    const d = (r.body as Json).desktop as Json;
    created.push(d.id as string);
    return d;
  };

  before(async () => {
    t = await startTestGateway({ args: ['--ratelimit-per-second', '10000', '--ratelimit-per-minute', '100000'] });
    f = t.gw.demo!.facts;
    const r = await call(`${t.url}/v3/auth/tokens`, { json: passwordAuth(f.user, f.password, f.domain, { project: { id: f.project_id } }) });
    assert.equal(r.status, 201, r.text);
    token = r.headers.get('x-subject-token')!;
    userId = (r.body as Json).token.user.id as string;
  });
  after(async () => {
    for (const id of created) await api('DELETE', `/admin/v1/desktops/${id}`);
    await t?.close();
  });

  const badAttributes: [string, Json, RegExp][] = [
    ['root_volume.size:"big"', { root_volume: { type: 'SSD', size: 'big' } }, /root_volume\.size/],
    ['root_volume without its type', { root_volume: { size: 80 } }, /root_volume\.type/],
    ['metadata.os_bit:64 (a number)', { metadata: { os_bit: 64 } }, /metadata\.os_bit/],
    ['metadata.os_bit:"16"', { metadata: { os_bit: '16' } }, /metadata\.os_bit/],
    ['metadata.os_type:"BeOS"', { metadata: { os_type: 'BeOS' } }, /metadata\.os_type/],
    ['metadata.image_name:1', { metadata: { image_name: 1 } }, /metadata\.image_name/],
    ['addresses.*[].version:4 (a number)', { addresses: { net: [{ addr: '10.0.0.1', version: 4 }] } }, /addresses\.net\.0\.version/],
    ['addresses.* not a list', { addresses: { net: { addr: '10.0.0.1' } } }, /addresses\.net/],
    ['OS-EXT-IPS:type:"dynamic"', { addresses: { net: [{ addr: '10.0.0.1', version: '4', 'OS-EXT-IPS:type': 'dynamic' }] } }, /OS-EXT-IPS:type/],
    ['flavor.links:"nope"', { flavor: { id: 'f1', links: 'nope' } }, /flavor\.links/],
    ['flavor.links[].rel:1', { flavor: { id: 'f1', links: [{ rel: 1 }] } }, /flavor\.links\.0\.rel/],
    ['task_status:"bogus"', { task_status: 'bogus' }, /task_status/],
    ['created:"yesterday"', { created: 'yesterday' }, /created/],
    ['created:"2026-13-45T00:00:00Z"', { created: '2026-13-45T00:00:00Z' }, /created/],
    ['data_volumes[].size:1.5', { data_volumes: [{ type: 'SAS', size: 1.5 }] }, /data_volumes\.0\.size/],
    ['data_volumes[] with an unknown field', { data_volumes: [{ type: 'SAS', size: 10, colour: 'red' }] }, /data_volumes\.0\.colour/],
    ['attach_user_infos[] without user_group', { attach_user_infos: [{ user_name: 'u1' }] }, /attach_user_infos\.0\.user_group/],
    ['attach_user_infos[].type:"ROBOT"', { attach_user_infos: [{ user_name: 'u1', user_group: 'users', type: 'ROBOT' }] }, /attach_user_infos\.0\.type/],
    ['tags[] without key', { tags: [{ value: 'x' }] }, /tags\.0\.key/],
    ['security_groups[].id:1', { security_groups: [{ id: 1 }] }, /security_groups\.0\.id/],
    ['product.is_gpu:"no"', { product: { is_gpu: 'no' } }, /product\.is_gpu/],
    ['hour_package_info.package_duration:1.5', { hour_package_info: { package_duration: 1.5 } }, /hour_package_info\.package_duration/],
    ['a Windows group on a Linux desktop', { metadata: { os_type: 'Linux' }, user_group: 'administrators' }, /user_group/],
    ['a Linux group in attach_user_infos of a Windows desktop', { metadata: { os_type: 'Windows' }, attach_user_infos: [{ user_name: 'u1', user_group: 'sudo' }] }, /attach_user_infos\.0\.user_group/],
  ];

  it('seed: nested DesktopDetailInfo fields are checked against their documented type and enum (admin API create and update)', async () => {
    const d = await makeDesktop('dd-valid', { attributes: { root_volume: { type: 'SSD', size: 80 }, metadata: { os_type: 'Linux', os_bit: '64' }, task_status: 'powering-on', created: '2026-02-03T04:05:06Z' } });
    for (const [what, attributes, field] of badAttributes) {
      const r = await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name: 'dd-bad', attributes } });
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal((r.body as Json).error_code, 'PH.0400', what);
      assert.match((r.body as Json).error_msg as string, field, what);
      const p = await api('PATCH', `/admin/v1/desktops/${d.id}`, { desktop: { attributes } });
      assert.equal(p.status, 400, `PATCH ${what}: ${p.text}`);
    }
    const detail = (await asUser(`/v2/${f.project_id}/desktops/${d.id}`)).body as Json;
    assert.deepEqual(detail.desktop.root_volume, { type: 'SSD', size: 80 }, 'nothing bad was stored');
  });

  it('seed: a fleet file with a malformed nested field is refused with the field and its line', async () => {
    const fleet = [
      'domains:', `  - name: ${f.domain}`, '    projects:', '      - name: demo', '        desktops:', '          - name: dd-fleet', '            attributes:',
      '              root_volume: { type: SSD, size: big }', '              metadata: { os_bit: 64 }', '              task_status: bogus', '',
    ].join('\n');
    const r = await api('POST', '/admin/v1/fleet', { fleet, dry_run: true });
    assert.equal(r.status, 400, r.text);
    const msg = (r.body as Json).error_msg as string;
    assert.match(msg, /:8: .*attributes\.root_volume\.size/);
    assert.match(msg, /:9: .*attributes\.metadata\.os_bit/);
    assert.match(msg, /:10: .*attributes\.task_status/);
  });

  it('seed: a desktop without attributes answers every documented field, typed (empty list, empty object or null)', async () => {
    const d = await makeDesktop('dd-bare');
    const check = (desk: Json, where: string) => {
      assert.deepEqual(Object.keys(desk).sort(), [...DESKTOP_DETAIL_FIELDS].sort(), `${where}: every documented field`);
      for (const k of LISTS.filter((x) => x in desk)) assert.deepEqual(desk[k], [], `${where}: ${k}`);
      for (const k of MAPS) assert.deepEqual(desk[k], {}, `${where}: ${k}`);
      for (const k of ['flavor', 'root_volume', 'product', 'hour_package_info', 'task_status', 'in_maintenance_mode', 'user_name', 'user_group', 'process', 'is_freeze', 'ipv4']) {
        assert.equal(desk[k], null, `${where}: ${k}`);
      }
      assert.equal(desk.desktop_id, d.id);
      assert.equal(desk.computer_name, 'dd-bare');
      assert.equal(desk.status, 'ACTIVE');
      assert.match(desk.created as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      assert.ok(['UNREGISTER', 'REGISTERED', 'CONNECTED', 'DISCONNECTED'].includes(desk.login_status as string));
      assertTyped(desk, where);
    };
    const one = await asUser(`/v2/${f.project_id}/desktops/${d.id}`);
    assert.equal(one.status, 200, one.text);
    check((one.body as Json).desktop as Json, 'GET desktop');
    const list = await asUser(`/v2/${f.project_id}/desktops/detail?desktop_id=${d.id}`);
    assert.equal(list.status, 200, list.text);
    check(((list.body as Json).desktops as Json[])[0]!, 'desktops/detail');
  });

  it('seed: status is one of Workspace\'s values (RUNNING is served as ACTIVE, STOPPED as SHUTOFF)', async () => {
    const running = await makeDesktop('dd-running', { status: 'RUNNING' });
    const stopped = await makeDesktop('dd-stopped', { status: 'STOPPED' });
    assert.equal(((await asUser(`/v2/${f.project_id}/desktops/${running.id}`)).body as Json).desktop.status, 'ACTIVE');
    assert.equal(((await asUser(`/v2/${f.project_id}/desktops/${stopped.id}`)).body as Json).desktop.status, 'SHUTOFF');
    const active = (await asUser(`/v2/${f.project_id}/desktops/detail?status=ACTIVE`)).body as Json;
    assert.ok((active.desktops as Json[]).some((x) => x.desktop_id === running.id), 'the status filter sees the served status');
    const all = (await asUser(`/v2/${f.project_id}/desktops/detail`)).body as Json;
    for (const x of all.desktops as Json[]) assert.ok(['ACTIVE', 'SHUTOFF', 'ERROR', 'HIBERNATED'].includes(x.status as string), `${x.computer_name}: ${x.status}`);
  });

  it('seed: the demo desktop names the demo user by IAM id, with a user group of its OS; assignment follows the OS', async () => {
    const demo = ((await asUser(`/v2/${f.project_id}/desktops/${f.desktop_id}`)).body as Json).desktop as Json;
    assertTyped(demo, 'the demo desktop');
    assert.deepEqual(Object.keys(demo).sort(), [...DESKTOP_DETAIL_FIELDS].sort());
    assert.equal(demo.metadata.os_type, 'Linux');
    assert.equal(demo.attach_user_infos[0].user_id, userId, 'the IAM user id');
    assert.ok(['sudo', 'default'].includes(demo.user_group as string), `user_group ${demo.user_group}`);
    assert.ok(['sudo', 'default'].includes(demo.attach_user_infos[0].user_group as string));
    const byId = (await asUser(`/v2/${f.project_id}/desktops/detail?user_id=${userId}`)).body as Json;
    assert.ok((byId.desktops as Json[]).some((x) => x.desktop_id === f.desktop_id), 'found by the user id');

    const linux = await makeDesktop('dd-linux', { attributes: { metadata: { os_type: 'Linux' } } });
    const refused = await api('POST', `/admin/v1/desktops/${linux.id}/users`, { user_name: f.user, user_group: 'administrators' });
    assert.equal(refused.status, 400, refused.text);
    const assigned = await api('POST', `/admin/v1/desktops/${linux.id}/users`, { user_name: f.user });
    assert.equal(assigned.status, 200, assigned.text);
    assert.equal((assigned.body as Json).desktop.attributes.user_group, 'default', 'the default group of a Linux desktop');
  });

  it('seed: a malformed desktop or physical server id answers 400 with the service\'s code (the seeds document 400)', async () => {
    for (const id of ['not*a*desktop', 'x'.repeat(65)]) {
      for (const p of [`/v2/${f.project_id}/desktops/${encodeURIComponent(id)}`, `/v2/${f.project_id}/desktops/${encodeURIComponent(id)}/remote-consoles`, `/v2/${f.project_id}/desktops/${encodeURIComponent(id)}/remote-assistance`]) {
        const r = await asUser(p);
        assert.equal(r.status, 400, `${p}: ${r.text}`);
        assert.equal((r.body as Json).error_code, 'WKS.0001', p);
      }
      const c = await asUser(`/v1/${f.project_id}/physicalservers/${encodeURIComponent(id)}/remote-console-address`);
      assert.equal(c.status, 400, c.text);
      assert.equal((c.body as Json).error_code, 'iMetal.0001');
    }
  });

  it('seed: a malformed project id is a bad request in the service\'s shape, not "scoped to another project"', async () => {
    const cases: [string, string, number, string][] = [
      ['GET', '/v2/nope/desktops/x', 400, 'WKS.0001'],
      ['GET', `/v2/${f.project_id.toUpperCase()}/desktops/${f.desktop_id}/remote-consoles`, 400, 'WKS.0001'],
      ['GET', '/v1/nope/physicalservers/x/remote-console-address', 400, 'iMetal.0001'],
      ['POST', '/v1/nope/cloudservers/x/remote_console', 400, 'Ecs.0005'],
      ['GET', '/v1/nope/cloudservers/detail', 400, 'Ecs.0005'],
    ];
    for (const [method, p, status, code] of cases) {
      const r = await call(`${t.url}${p}`, { method, headers: { 'x-auth-token': token }, ...(method === 'POST' ? { json: { remote_console: { protocol: 'vnc', type: 'novnc' } } } : {}) });
      assert.equal(r.status, status, `${p}: ${r.text}`);
      const b = r.body as Json;
      assert.equal(b.error_code ?? b.error?.code, code, p);
      assert.doesNotMatch(r.text, /another project/, p);
      assert.match(r.text, /project/i, `${p}: says what is wrong`);
    }
  });
});
