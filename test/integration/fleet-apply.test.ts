/**
 * `porthole apply -f fleet.yaml` against the real gateway: a file applied twice changes nothing the
 * second time (and revokes no console link); --dry-run prints the diff and changes nothing; a broken
 * file — bad YAML, bad fields (reported with line numbers), or a conflict with the store — changes
 * nothing; a write failing half way through rolls the whole file back; --prune removes what the file
 * no longer names, and never the caller.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deriveProjectId, deriveResourceId, parseFleet } from '../../src/domain/fleet.js';
import { executeFleetPlan, planFleet } from '../../src/domain/fleet-plan.js';
import type { Store } from '../../src/store/types.js';
import { call, login, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { cli, json, type CliEnv } from '../helpers/cli.js';

const FLEET = `
domains:
  - name: acme
    users:
      - name: alice
        password: alice-password
        roles: { lab: operator }
      - name: bob
        password: bob-password-1
        roles: { lab: viewer, prod: viewer }
    projects:
      - name: lab
        cloudservers:
          - name: web-1
            console: { url: "vnc://127.0.0.1:5901", security: vncauth, password: "vncpass1", zone: az1 }
          - name: web-2
            status: SHUTOFF
            console: { url: "vnc://127.0.0.1:5902" }
        desktops:
          - name: desk-1
            console: { url: "vnc://127.0.0.1:5903" }
            attributes: { desktop_type: DEDICATED, user_list: [alice], in_maintenance_mode: false }
      - name: prod
        physicalservers:
          - name: bm-1
            console: { url: "vnc://127.0.0.1:5904", security: vncauth, password: "bmc-pass" }
`;

interface Snapshot { domains: unknown; projects: unknown; resources: unknown; users: unknown; roles: unknown }

async function snapshot(store: Store): Promise<Snapshot> {
  const domains = await store.identity.listDomains();
  const users = (await Promise.all(domains.map((d) => store.identity.listUsers(d.id)))).flat();
  return {
    domains, projects: await store.identity.listProjects(), resources: await store.inventory.listResources({}), users,
    roles: await Promise.all(users.map((u) => store.identity.rolesOf(u.id))),
  };
}

describe('fleet files: porthole apply', () => {
  let t: TestGateway;
  let env: CliEnv;
  let file: string;
  const write = (name: string, text: string) => { const f = path.join(t.dataDir, name); writeFileSync(f, text); return f; };

  before(async () => {
    t = await startTestGateway();
    const f = t.gw.demo!.facts;
    env = { PORTHOLE_URL: t.url, PORTHOLE_AK: f.ak!, PORTHOLE_SK: f.sk! };
    file = write('fleet.yaml', FLEET);
  });
  after(async () => t?.close());

  it('--dry-run prints the diff and changes nothing', async () => {
    const before = await snapshot(t.gw.store);
    const r = await cli(['apply', '-f', file, '--dry-run'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\+ domain acme /m);
    assert.match(r.stdout, /^\+ cloudserver acme\/lab\/web-1 /m);
    assert.match(r.stdout, /^\+ role acme\/bob@prod /m);
    assert.match(r.stdout, /would create 12, would update 0, would delete 0; unchanged 0 \(dry run: nothing changed\)/);
    assert.deepEqual(await snapshot(t.gw.store), before);
  });

  it('applies the file; applying it again changes nothing and revokes no console link', async () => {
    const first = json<{ summary: Record<string, number>; changes: unknown[] }>(await cli(['apply', '-f', file, '--json'], env));
    assert.deepEqual(first.summary, { create: 12, update: 0, delete: 0, unchanged: 0 });
    const lab = deriveProjectId('acme', 'lab');
    const web1 = deriveResourceId(lab, 'cloudserver', 'web-1');
    const token = await login(t.url, 'alice', 'alice-password', 'acme', lab);
    const minted = await call(`${t.url}/v1/${lab}/cloudservers/${web1}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } });
    assert.equal(minted.status, 200, minted.text);
    const consoleToken = new URL((minted.body as { remote_console: { url: string } }).remote_console.url).searchParams.get('token')!;

    const before = await snapshot(t.gw.store);
    const again = await cli(['apply', '-f', file], env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'no changes; create 0, update 0, delete 0; unchanged 12\n');
    assert.deepEqual(await snapshot(t.gw.store), before, 'not a byte changed (no timestamps, no re-sealed secrets, no new password hashes)');
    assert.equal(await t.gw.consoles.state(consoleToken, 'az1'), 'valid', 'an unchanged machine keeps its outstanding console links');
  });

  it('refuses a broken file whole, with line numbers, and changes nothing', async () => {
    const before = await snapshot(t.gw.store);
    const cases: [string, RegExp][] = [
      [FLEET.replace('roles: { lab: operator }', 'roles: { lab: operator'), /broken\.yaml:\d+:/],
      [FLEET.replace('url: "vnc://127.0.0.1:5902"', 'url: "http://nope"').replace('desktop_type: DEDICATED', 'desktop_type: LAPTOP'),
        /broken\.yaml:18: domains\.0\.projects\.0\.cloudservers\.1\.console\.url: must be vnc:\/\/host:port[\s\S]*broken\.yaml:22: .*desktop_type: must be one of DEDICATED, SHARED, POOLED/],
      [FLEET + '\n      - name: extra\n        cloudservers:\n          - name: x\n            console: { url: "vnc://h:1", security: vencrypt, client_cert: "junk" }\n', /client_cert holds no PEM CERTIFICATE block/],
    ];
    for (const [text, problem] of cases) {
      const changed = text.replace('name: web-1', 'name: web-1-renamed');
      const r = await cli(['apply', '-f', write('broken.yaml', changed)], env);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '', 'nothing on stdout for a refused file');
      assert.match(r.stderr, /invalid fleet file/);
      assert.match(r.stderr, problem);
    }
    // Valid YAML that conflicts with the store: a project id that belongs to another domain.
    const conflict = FLEET.replace('      - name: prod\n', `      - name: prod\n        id: ${t.gw.demo!.facts.project_id}\n`).replace('name: web-1', 'name: web-9');
    const r = await cli(['apply', '-f', write('conflict.yaml', conflict)], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /project acme\/prod: id [0-9a-f]{32} belongs to another domain/);
    assert.deepEqual(await snapshot(t.gw.store), before);
  });

  it('a write that fails half way rolls the whole file back', async () => {
    const store = t.gw.store;
    // Every write succeeds except user rows, which come after domains, projects and machines.
    const failing: Store = Object.create(store) as Store;
    failing.transaction = (fn) => store.transaction((tx) => fn(new Proxy(tx, {
      get(target, key) {
        if (key !== 'identity') return Reflect.get(target, key) as unknown;
        return new Proxy(target.identity, {
          get(idt, k) {
            if (k === 'upsertUser') return async () => { throw new Error('disk full'); };
            const v = Reflect.get(idt, k) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(idt) : v;
          },
        });
      },
    })));
    const spec = parseFleet(FLEET.replaceAll('acme', 'rollback-co'), 'rollback.yaml');
    const planned = await planFleet(store, t.gw.secrets, spec, { prune: false });
    assert.ok(planned.plan.changes.some((c) => c.type === 'cloudserver'));
    const before = await snapshot(store);
    await assert.rejects(executeFleetPlan(failing, planned, Date.now()), /disk full/);
    assert.deepEqual(await snapshot(store), before, 'no domain, project or machine of the failed file remains');
    assert.equal(await store.identity.findDomainByName('rollback-co'), undefined);
  });

  it('--prune removes what the file no longer names (machines, projects, users, roles); without it nothing goes', async () => {
    const lab = deriveProjectId('acme', 'lab');
    const trimmed = FLEET
      .replace('          - name: web-2\n            status: SHUTOFF\n            console: { url: "vnc://127.0.0.1:5902" }\n', '')
      .replace('      - name: bob\n        password: bob-password-1\n        roles: { lab: viewer, prod: viewer }\n', '')
      .replace('      - name: prod\n        physicalservers:\n          - name: bm-1\n            console: { url: "vnc://127.0.0.1:5904", security: vncauth, password: "bmc-pass" }\n', '');
    assert.notEqual(trimmed, FLEET);
    const f2 = write('trimmed.yaml', trimmed);
    const keep = json<{ summary: Record<string, number> }>(await cli(['apply', '-f', f2, '--json'], env));
    assert.deepEqual(keep.summary, { create: 0, update: 0, delete: 0, unchanged: 6 });

    const dry = await cli(['apply', '-f', f2, '--prune', '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stderr);
    for (const line of [/^- cloudserver acme\/lab\/web-2 /m, /^- physicalserver acme\/prod\/bm-1 /m, /^- project acme\/prod /m, /^- user acme\/bob /m]) assert.match(dry.stdout, line);
    const pruned = json<{ summary: Record<string, number> }>(await cli(['apply', '-f', f2, '--prune', '--json'], env));
    assert.deepEqual(pruned.summary, { create: 0, update: 0, delete: 4, unchanged: 6 });
    assert.equal(await t.gw.store.inventory.getResourceById(deriveResourceId(lab, 'cloudserver', 'web-2')), undefined);
    assert.equal(await t.gw.store.identity.getProject(deriveProjectId('acme', 'prod')), undefined);
    assert.equal(await t.gw.store.identity.findUserByName((await t.gw.store.identity.findDomainByName('acme'))!.id, 'bob'), undefined);
    const again = await cli(['apply', '-f', f2, '--prune'], env);
    assert.match(again.stdout, /^no changes;/);
  });

  it('a prune never deletes the user applying the file, and a domain admin applies only their own domain', async () => {
    const f = t.gw.demo!.facts;
    const demoOnly = `domains:\n  - name: ${f.domain}\n    users:\n      - name: someone\n        password: someone-pass\n    projects:\n      - name: ${f.project_name}\n`;
    const r = await cli(['apply', '-f', write('self.yaml', demoOnly), '--prune'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /it is the user applying the file/);
    // alice is no domain administrator: 403 → exit 4.
    const acme = (await t.gw.store.identity.findDomainByName('acme'))!;
    const tokenOf = async (user: string, password: string) => (await call(`${t.url}/v3/auth/tokens`, {
      json: { auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: 'acme' } } } }, scope: { domain: { id: acme.id } } } },
    })).headers.get('x-subject-token')!;
    const denied = await cli(['apply', '-f', file], { PORTHOLE_URL: t.url, PORTHOLE_TOKEN: await tokenOf('alice', 'alice-password') });
    assert.equal(denied.code, 4);
    assert.match(denied.stderr, /a domain administrator is required\. \(PH\.0403/);
    // An administrator of acme (not an operator domain) may apply acme, but not a file naming another domain.
    const made = await cli(['user', 'create', '--name', 'acme-root', '--password-stdin', '--domain-admin', '--domain', acme.id], env, 'acme-root-password\n');
    assert.equal(made.code, 0, made.stderr);
    const rootEnv = { PORTHOLE_URL: t.url, PORTHOLE_TOKEN: await tokenOf('acme-root', 'acme-root-password') };
    const own = await cli(['apply', '-f', write('acme-only.yaml', FLEET.replace('      - name: bob\n        password: bob-password-1\n        roles: { lab: viewer, prod: viewer }\n', '')), '--dry-run'], rootEnv);
    assert.equal(own.code, 0, own.stderr);
    const foreign = await cli(['apply', '-f', write('foreign.yaml', demoOnly)], rootEnv);
    assert.equal(foreign.code, 4);
    assert.match(foreign.stderr, new RegExp(`names domain ${f.domain}, which you do not administer`));
  });
});
