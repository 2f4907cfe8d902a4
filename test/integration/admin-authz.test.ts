/**
 * Who may do what in the admin API, from the outside security review: a domain administrator cannot
 * rename their domain (nor create, nor touch another) through a fleet file, and operator status
 * belongs to the domain ids recorded as operator domains, never to a name a tenant could take (#1);
 * credentials scoped to one project act on that project only (#3).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { signedCall } from '../helpers/aksk.js';
import { call, login, startTestGateway, type HttpResult, type TestGateway, okBody as ok } from '../helpers/gateway.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('admin API authorization', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  /** As the demo administrator (an operator: the demo domain is an operator domain). */
  const api = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  const asToken = (token: string, method: string, p: string, json?: unknown) =>
    call(`${t.url}${p}`, { method, headers: { 'x-auth-token': token }, ...(json === undefined ? {} : { json }) });
  const domainToken = async (user: string, password: string, domain: string): Promise<string> => {
    const r = await call(`${t.url}/v3/auth/tokens`, {
      json: { auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: domain } } } }, scope: { domain: { name: domain } } } },
    });
    assert.equal(r.status, 201, r.text);
    return r.headers.get('x-subject-token')!;
  };

  let acme: Json;
  let acmeRoot: string;

  before(async () => {
    // `ops2` is an operator domain by configuration, but no domain holds that name yet.
    t = await startTestGateway({ args: ['--admin-operator-domains', 'ops2,ops3'] });
    f = t.gw.demo!.facts;
    acme = ok(await api('POST', '/admin/v1/domains', { domain: { name: 'acme', admin: { name: 'root', password: 'acme-root-password' } } }), 201).domain;
    acmeRoot = await domainToken('root', 'acme-root-password', 'acme');
  });
  after(async () => t?.close());

  it('security #1: a domain administrator cannot rename their domain through a fleet file (and so cannot become an operator)', async () => {
    const fleet = `domains:\n  - name: ops2\n    id: ${acme.id}\n`;
    const r = await asToken(acmeRoot, 'POST', '/admin/v1/fleet', { fleet });
    assert.equal(r.status, 403, r.text);
    assert.equal((r.body as Json).error_code, 'PH.0403');
    assert.equal((await t.gw.store.identity.getDomain(acme.id))?.name, 'acme', 'the domain keeps its name');
    // Still no operator: no other domain, no master keys, no domain creation.
    assert.deepEqual(ok(await asToken(acmeRoot, 'GET', '/admin/v1/domains')).domains.map((d: Json) => d.name), ['acme']);
    assert.equal((await asToken(acmeRoot, 'GET', '/admin/v1/keys')).status, 403);
  });

  it('security #1: a fleet file of a domain administrator may not create domains nor reach into another domain', async () => {
    const before = await t.gw.store.identity.listDomains();
    // A new domain, next to their own.
    const create = await asToken(acmeRoot, 'POST', '/admin/v1/fleet', { fleet: 'domains:\n  - name: acme\n  - name: acme-two\n' });
    assert.equal(create.status, 403, create.text);
    // Another domain's project, machine and domain id, named inside their own domain.
    const foreignProject = `domains:\n  - name: acme\n    projects:\n      - name: stolen\n        id: ${f.project_id}\n`;
    const foreignMachine = `domains:\n  - name: acme\n    projects:\n      - name: mine\n        cloudservers:\n          - name: stolen\n            id: ${f.cloudserver_id}\n            console: { url: "vnc://127.0.0.1:5999" }\n`;
    const demoId = before.find((d) => d.name === f.domain)!.id;
    const foreignDomain = `domains:\n  - name: acme\n    id: ${demoId}\n`;
    for (const fleet of [foreignProject, foreignMachine, foreignDomain]) {
      const r = await asToken(acmeRoot, 'POST', '/admin/v1/fleet', { fleet, dry_run: true });
      assert.ok(r.status === 403 || r.status === 400, `${r.status} ${r.text}`);
      assert.ok(!r.text.includes(demoId), 'no id of another domain is revealed');
    }
    assert.deepEqual(await t.gw.store.identity.listDomains(), before);
    assert.equal((await t.gw.store.inventory.getResourceById(f.cloudserver_id))?.projectId, f.project_id);
  });

  it('security #1: operator status follows the recorded domain id, not its name; a rename never grants it', async () => {
    // An operator renames acme to the configured operator name: acme's administrator gains nothing.
    ok(await api('PATCH', `/admin/v1/domains/${acme.id}`, { domain: { name: 'ops2' } }));
    const token = await domainToken('root', 'acme-root-password', 'ops2');
    assert.equal((await asToken(token, 'GET', '/admin/v1/keys')).status, 403);
    assert.deepEqual(ok(await asToken(token, 'GET', '/admin/v1/domains')).domains.map((d: Json) => d.name), ['ops2']);
    ok(await api('PATCH', `/admin/v1/domains/${acme.id}`, { domain: { name: 'acme' } }));
    // A domain an operator creates under the configured name is an operator domain.
    ok(await api('POST', '/admin/v1/domains', { domain: { name: 'ops2', admin: { name: 'boss', password: 'ops2-boss-password' } } }), 201);
    const boss = await domainToken('boss', 'ops2-boss-password', 'ops2');
    assert.equal((await asToken(boss, 'GET', '/admin/v1/keys')).status, 200);
    assert.ok(ok(await asToken(boss, 'GET', '/admin/v1/domains')).domains.length >= 3);
    // So is one an operator creates through a fleet file; a tenant's file may not create it at all.
    const fleet = 'domains:\n  - name: ops3\n    users: [{ name: boss, password: ops3-boss-password, domain_admin: true }]\n';
    assert.equal((await asToken(acmeRoot, 'POST', '/admin/v1/fleet', { fleet })).status, 403);
    ok(await api('POST', '/admin/v1/fleet', { fleet }));
    assert.equal((await t.gw.store.identity.findDomainByName('ops3'))?.operator, true);
    assert.equal((await t.gw.store.identity.getDomain(acme.id))?.operator, false);
  });
});

describe('security #3: project-scoped credentials in the admin API', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  const api = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  let projectB: Json;
  let machineB: Json;
  /** The two ways to hold a credential scoped to the demo project (A): an IAM project token, and AK/SK with X-Project-Id. */
  let scoped: { name: string; call: (method: string, p: string, json?: unknown) => Promise<HttpResult> }[];

  before(async () => {
    t = await startTestGateway();
    f = t.gw.demo!.facts;
    projectB = ok(await api('POST', '/admin/v1/projects', { project: { name: 'project-b' } }), 201).project;
    machineB = ok(await api('POST', '/admin/v1/cloudservers', { cloudserver: { project_id: projectB.id, name: 'b-1', console: { url: 'vnc://127.0.0.1:5999' } } }), 201).cloudserver;
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    scoped = [
      { name: 'IAM project token', call: (method, p, json) => call(`${t.url}${p}`, { method, headers: { 'x-auth-token': token }, ...(json === undefined ? {} : { json }) }) },
      { name: 'AK/SK with X-Project-Id', call: (method, p, json) => signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, projectId: f.project_id, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs) },
    ];
  });
  after(async () => t?.close());

  it('security #3: domain-wide admin actions need a domain-scoped credential', async () => {
    const userId = ok(await api('GET', '/admin/v1/users')).users[0].id as string;
    const other = ok(await api('POST', '/admin/v1/users', { user: { name: 'other', password: 'other-password' } }), 201).user as Json;
    const otherKey = ok(await api('POST', '/admin/v1/access-keys', { access_key: { user_id: other.id } }), 201).access_key.access_key as string;
    const domainWide: [string, string, unknown?][] = [
      ['GET', '/admin/v1/users'], ['GET', `/admin/v1/users/${userId}`], ['POST', '/admin/v1/users', { user: { name: 'sneaky', password: 'sneaky-password' } }],
      ['PUT', `/admin/v1/users/${userId}/roles/${projectB.id}`, { role: 'admin' }],
      ['GET', '/admin/v1/audit-events'], ['GET', '/admin/v1/domains'], ['GET', '/admin/v1/access-keys'],
      ['POST', '/admin/v1/access-keys', { access_key: { user_id: userId } }], ['GET', '/admin/v1/nodes'], ['GET', '/admin/v1/keys'],
      ['POST', '/admin/v1/fleet', { fleet: `domains:\n  - name: ${f.domain}\n`, dry_run: true }],
      ['POST', '/admin/v1/projects', { project: { name: 'p-new' } }], ['DELETE', `/admin/v1/projects/${projectB.id}`],
      // Another user's access keys through the IAM credentials API.
      ['GET', `/v3.0/OS-CREDENTIAL/credentials?user_id=${other.id}`], ['POST', '/v3.0/OS-CREDENTIAL/credentials', { credential: { user_id: other.id } }],
      ['GET', `/v3.0/OS-CREDENTIAL/credentials/${otherKey}`], ['DELETE', `/v3.0/OS-CREDENTIAL/credentials/${otherKey}`],
    ];
    for (const s of scoped) {
      for (const [method, p, json] of domainWide) {
        const r = await s.call(method, p, json);
        assert.ok(r.status === 403 || r.status === 404, `${s.name} ${method} ${p}: ${r.status} ${r.text}`);
      }
    }
    assert.equal(ok(await api('GET', '/admin/v1/users')).users.some((u: Json) => u.name === 'sneaky'), false);
    assert.equal(ok(await api('GET', `/admin/v1/access-keys/${otherKey}`)).access_key.status, 'active');
    for (const s of scoped) {
      // Listing credentials shows the caller's own keys only.
      const mine = ok(await s.call('GET', '/v3.0/OS-CREDENTIAL/credentials')).credentials as Json[];
      assert.ok(mine.length > 0 && mine.every((k) => k.user_id !== other.id), s.name);
    }
  });

  it('security #3: a project-scoped credential sees and acts on its own project only', async () => {
    for (const s of scoped) {
      const list = ok(await s.call('GET', '/admin/v1/cloudservers'));
      assert.ok(list.cloudservers.length > 0, s.name);
      assert.ok(list.cloudservers.every((m: Json) => m.project_id === f.project_id), `${s.name}: ${JSON.stringify(list.cloudservers.map((m: Json) => m.project_id))}`);
      assert.deepEqual(ok(await s.call('GET', '/admin/v1/projects')).projects.map((x: Json) => x.id), [f.project_id], s.name);
      for (const [method, p, json] of [
        ['GET', `/admin/v1/cloudservers/${machineB.id}`], ['POST', `/admin/v1/cloudservers/${machineB.id}/console-url`, {}],
        ['GET', `/admin/v1/endpoints/${machineB.id}`], ['GET', `/admin/v1/projects/${projectB.id}`],
        ['GET', `/admin/v1/cloudservers?project_id=${projectB.id}`], ['GET', `/admin/v1/console-tokens?resource_id=${machineB.id}`],
        ['POST', '/admin/v1/cloudservers', { cloudserver: { project_id: projectB.id, name: 'b-2' } }],
      ] as [string, string, unknown?][]) {
        const r = await s.call(method, p, json);
        assert.ok(r.status === 403 || r.status === 404, `${s.name} ${method} ${p}: ${r.status} ${r.text}`);
      }
      // Its own project works.
      assert.equal((await s.call('GET', `/admin/v1/cloudservers/${f.cloudserver_id}`)).status, 200, s.name);
      assert.equal((await s.call('POST', `/admin/v1/cloudservers/${f.cloudserver_id}/console-url`, {})).status, 201, s.name);
    }
    // The operator's domain-scoped AK/SK still manages project B.
    assert.equal((await api('GET', `/admin/v1/cloudservers/${machineB.id}`)).status, 200);
  });
});

describe('security #1: operator domains recorded before the upgrade', () => {
  it('domains from before operator flags were recorded are adopted once, by the name they hold at the first start', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-authz-'));
    try {
      const fleet = path.join(dataDir, 'boot.yaml');
      writeFileSync(fleet, 'domains:\n  - name: ops\n    users: [{ name: root, password: ops-root-password, domain_admin: true }]\n  - name: tenant\n    users: [{ name: root, password: tenant-root-pass, domain_admin: true }]\n');
      const args = ['--data-dir', dataDir, '--fleet', fleet, '--admin-operator-domains', 'ops,later'];
      let t = await startTestGateway({ demo: false, args });
      await t.gw.close();
      rmSync(t.dataDir, { recursive: true, force: true }); // the helper's own (unused) directory
      // As a database written by an earlier version: no operator flag recorded on any domain.
      const db = new Database(path.join(dataDir, 'porthole.db'));
      db.prepare('UPDATE domains SET operator = NULL').run();
      db.close();
      t = await startTestGateway({ demo: false, args });
      try {
        const ops = (await t.gw.store.identity.findDomainByName('ops'))!;
        const tenant = (await t.gw.store.identity.findDomainByName('tenant'))!;
        assert.equal(ops.operator, true, 'the configured name held at the first start is adopted');
        assert.equal(tenant.operator, false);
        // Later, an operator renames the tenant to a configured name: it stays a tenant.
        await t.gw.store.identity.upsertDomain({ ...tenant, name: 'later' });
        const token = async (domain: string, password: string) => (await call(`${t.url}/v3/auth/tokens`, {
          json: { auth: { identity: { methods: ['password'], password: { user: { name: 'root', password, domain: { name: domain } } } }, scope: { domain: { name: domain } } } },
        })).headers.get('x-subject-token')!;
        const keys = async (tk: string) => (await call(`${t.url}/admin/v1/keys`, { headers: { 'x-auth-token': tk } })).status;
        assert.equal(await keys(await token('ops', 'ops-root-password')), 200);
        assert.equal(await keys(await token('later', 'tenant-root-pass')), 403);
      } finally {
        await t.gw.close();
        rmSync(t.dataDir, { recursive: true, force: true });
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
