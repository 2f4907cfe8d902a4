/**
 * `porthole <noun> <verb>` against the real gateway: a round trip for every noun through the CLI
 * (credentials from PORTHOLE_AK/PORTHOLE_SK, or PORTHOLE_TOKEN from `porthole login`), tables for
 * people and stable `--json` for scripts, data on stdout and diagnostics on stderr, and the documented
 * exit codes (0 ok, 1 failure, 2 usage, 3 not found, 4 auth, 5 conflict) — also through the real entry
 * point as a child process.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { cli, json, spawnCli, type CliEnv } from '../helpers/cli.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('porthole CLI', () => {
  let t: TestGateway;
  let env: CliEnv;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  const file = (name: string, text: string) => { const p = path.join(t.dataDir, name); writeFileSync(p, text); return p; };
  /** Runs a command that must succeed with --json and returns its parsed answer. */
  const j = async (argv: string[], stdin = '', e: CliEnv = env): Promise<Json> => {
    const r = await cli([...argv, '--json'], e, stdin);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    return json(r);
  };

  before(async () => {
    t = await startTestGateway();
    f = t.gw.demo!.facts;
    env = { PORTHOLE_URL: t.url, PORTHOLE_AK: f.ak!, PORTHOLE_SK: f.sk! };
  });
  after(async () => t?.close());

  it('help, usage errors and missing credentials have their exit codes; nothing but data goes to stdout', async () => {
    const help = await cli(['help'], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /porthole cloudserver create/);
    assert.match(help.stdout, /Exit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 not found, 4 not authenticated or not allowed, 5 conflict\./);
    assert.match((await cli(['desktop', '--help'], {})).stdout, /--attr VALUE …/);
    for (const argv of [['nonsense'], ['project', 'fly'], ['project', 'list', '--colour', 'red'], ['project', 'get'], ['project', 'create'], ['apply'], ['token', 'revoke']]) {
      const r = await cli(argv, env);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.stdout, '', argv.join(' '));
      assert.match(r.stderr, /^porthole: /);
    }
    const noCreds = await cli(['project', 'list'], { PORTHOLE_URL: t.url });
    assert.equal(noCreds.code, 4);
    assert.match(noCreds.stderr, /no credentials: set PORTHOLE_AK and PORTHOLE_SK, or PORTHOLE_TOKEN/);
    const badToken = await cli(['project', 'list'], { PORTHOLE_URL: t.url, PORTHOLE_TOKEN: 'garbage-token' });
    assert.equal(badToken.code, 4);
    assert.match(badToken.stderr, /APIGW\.0301/);
    const wrongSk = await cli(['project', 'list'], { ...env, PORTHOLE_SK: 'x'.repeat(40) });
    assert.equal(wrongSk.code, 4);
    const down = await cli(['project', 'list'], { ...env, PORTHOLE_URL: 'http://127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach the gateway at http:\/\/127\.0\.0\.1:1/);
  });

  it('login prints an IAM token that works as PORTHOLE_TOKEN', async () => {
    const r = await cli(['login', '--domain', f.domain, '--user', f.user, '--password-stdin'], { PORTHOLE_URL: t.url }, f.password + '\n');
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^PH[A-Za-z0-9_-]{60,}$/);
    assert.match(r.stderr, /token valid until/);
    const list = await j(['project', 'list'], '', { PORTHOLE_URL: t.url, PORTHOLE_TOKEN: token });
    assert.deepEqual(list.projects.map((p: Json) => p.id), [f.project_id]);
    const wrong = await cli(['login', '--domain', f.domain, '--user', f.user], { PORTHOLE_URL: t.url, PORTHOLE_PASSWORD: 'wrong-password' });
    assert.equal(wrong.code, 4);
  });

  let domainId: string;
  let projectId: string;
  let userId: string;

  it('domain: create (password from a file), list, get, rename; a taken name is a conflict (5)', async () => {
    const made = await j(['domain', 'create', '--name', 'cli-co', '--admin-user', 'boss', '--admin-password-file', file('pw', 'boss-password\n')]);
    domainId = made.domain.id;
    assert.equal(made.domain.admin.name, 'boss');
    const table = await cli(['domain', 'list'], env);
    assert.match(table.stdout, /^ID +NAME +CREATED\n/);
    assert.match(table.stdout, new RegExp(`^${domainId}  cli-co `, 'm'));
    assert.equal((await j(['domain', 'get', domainId])).domain.name, 'cli-co');
    assert.equal((await j(['domain', 'rename', domainId, '--name', 'cli-corp'])).domain.name, 'cli-corp');
    const dup = await cli(['domain', 'create', '--name', 'cli-corp', '--admin-user', 'x', '--admin-password-stdin'], env, 'xxxxxxxx');
    assert.equal(dup.code, 5);
    assert.match(dup.stderr, /already exists\. \(PH\.0409, request [0-9a-f]{32}\)/);
  });

  it('project: create in another domain, list by domain, get, rename, delete; not found is 3', async () => {
    const p = await j(['project', 'create', '--name', 'ops', '--domain', domainId]);
    projectId = p.project.id;
    assert.deepEqual((await j(['project', 'list', '--domain', domainId])).projects.map((x: Json) => x.name), ['ops']);
    assert.equal((await j(['project', 'get', projectId])).project.domain_id, domainId);
    assert.equal((await j(['project', 'rename', projectId, '--name', 'operations'])).project.name, 'operations');
    const missing = await cli(['project', 'get', '0'.repeat(32)], env);
    assert.equal(missing.code, 3);
    assert.equal(missing.stdout, '');
    const tmp = await j(['project', 'create', '--name', 'scratch']);
    const del = await cli(['project', 'delete', tmp.project.id], env);
    assert.equal(del.code, 0);
    assert.equal(del.stdout, '');
    assert.match(del.stderr, /deleted project/);
    assert.equal((await cli(['project', 'delete', '0'.repeat(32)], env)).code, 3);
  });

  it('user and role: create (password from stdin), list with roles, update, bind and unbind, delete', async () => {
    const u = await j(['user', 'create', '--name', 'frank', '--password-stdin', '--domain', domainId], 'frank-password\n');
    userId = u.user.id;
    assert.equal(u.user.domain_admin, false);
    const set = await j(['role', 'set', '--user', userId, '--project', projectId, '--role', 'viewer']);
    assert.deepEqual(set.user.roles, [{ project_id: projectId, role: 'viewer' }]);
    assert.deepEqual((await j(['role', 'list', '--user', userId])).roles, [{ project_id: projectId, role: 'viewer' }]);
    const table = await cli(['user', 'list', '--domain', domainId], env);
    assert.match(table.stdout, new RegExp(`frank +false +false +viewer@${projectId.slice(0, 8)}`));
    const upd = await j(['user', 'update', userId, '--domain-admin', 'true', '--password-file', file('pw2', 'frank-password-2')]);
    assert.equal(upd.user.domain_admin, true);
    const bad = await cli(['user', 'update', userId, '--disabled', 'maybe'], env);
    assert.equal(bad.code, 2);
    assert.deepEqual((await j(['role', 'remove', '--user', userId, '--project', projectId])).user.roles, []);
    const token = (await cli(['login', '--domain', 'cli-corp', '--user', 'frank', '--password-stdin'], { PORTHOLE_URL: t.url }, 'frank-password-2')).stdout.trim();
    assert.deepEqual((await j(['domain', 'list'], '', { PORTHOLE_URL: t.url, PORTHOLE_TOKEN: token })).domains.map((d: Json) => d.name), ['cli-corp']);
  });

  it('accesskey: create prints the SK once, list, get, update, delete', async () => {
    const made = await cli(['accesskey', 'create', '--user', (await j(['user', 'create', '--name', 'gina', '--password-stdin', '--domain-admin'], 'gina-password')).user.id, '--description', 'robot'], env);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /the secret key is shown only now/);
    const ak = /^access_key: +([A-Z0-9]{20})$/m.exec(made.stdout)![1]!;
    const sk = /^secret_key: +([A-Za-z0-9]{40})$/m.exec(made.stdout)![1]!;
    const asGina = { PORTHOLE_URL: t.url, PORTHOLE_AK: ak, PORTHOLE_SK: sk };
    assert.equal((await cli(['project', 'list'], asGina)).code, 0);
    const list = await cli(['ak', 'list'], env);
    assert.match(list.stdout, new RegExp(`${ak} .* active .*robot`));
    assert.ok(!list.stdout.includes(sk));
    assert.equal((await j(['accesskey', 'get', ak])).access_key.description, 'robot');
    assert.equal((await j(['accesskey', 'update', ak, '--status', 'inactive'])).access_key.status, 'inactive');
    assert.equal((await cli(['project', 'list'], asGina)).code, 4);
    assert.equal((await cli(['accesskey', 'delete', ak], env)).code, 0);
    assert.equal((await cli(['accesskey', 'get', ak], env)).code, 3);
  });

  for (const kind of ['cloudserver', 'physicalserver', 'desktop'] as const) {
    it(`${kind}: create with --console and --attr, list, get, update, delete`, async () => {
      const attr = kind === 'desktop' ? ['--attr', 'desktop_type=DEDICATED', '--attr', 'ip_addresses=["10.0.0.7"]'] : ['--attr', 'flavor=s6.small.1', '--attr', 'metadata={"os_type":"Linux"}'];
      const made = await j([kind, 'create', '--project', f.project_id, '--name', `cli-${kind}`, ...attr, '--console', 'vnc://127.0.0.1:5977', '--password-stdin', '--zone', 'z1'], 'vnc-pass');
      const m = made[kind];
      assert.equal(m.console.url, 'vnc://127.0.0.1:5977');
      assert.equal(m.console.security, 'vncauth');
      assert.equal(m.console.zone, 'z1');
      if (kind === 'desktop') assert.deepEqual(m.attributes.ip_addresses, ['10.0.0.7']);
      else assert.deepEqual(m.attributes.metadata, { os_type: 'Linux' });
      const table = await cli([kind, 'list', '--project', f.project_id], env);
      assert.match(table.stdout, /^ID +NAME +PROJECT +STATUS +LIVE +SESSIONS +CONSOLE\n/);
      assert.match(table.stdout, new RegExp(`^${m.id}  cli-${kind} .*ACTIVE .*unknown.* vnc://127\\.0\\.0\\.1:5977 vncauth$`, 'm'));
      const shown = await cli([kind, 'get', m.id], env);
      assert.match(shown.stdout, /^name: +cli-/m);
      assert.ok(!shown.stdout.includes('vnc-pass'));
      // security #2: another port is another target: the stored password does not follow it, give it again.
      const refused = await cli([kind, 'update', m.id, '--status', 'SHUTOFF', '--console', 'vnc://127.0.0.1:5978'], env);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /stored password was not kept/);
      const upd = await cli([kind, 'update', m.id, '--status', 'SHUTOFF', '--console', 'vnc://127.0.0.1:5978', '--password-stdin'], env, 'vnc-pass');
      assert.equal(upd.code, 0, upd.stderr);
      assert.match(upd.stderr, /changed: status, console/);
      const after = (await j([kind, 'get', m.id]))[kind];
      assert.deepEqual([after.status, after.console.url, after.console.has_password, after.console.zone], ['SHUTOFF', 'vnc://127.0.0.1:5978', true, 'z1']);
      assert.equal((await cli([kind, 'update', m.id], env)).code, 2, 'nothing to change is a usage error');
      const gone = await j([kind, 'delete', m.id]);
      assert.deepEqual(gone, { deleted: { type: kind, id: m.id } });
      assert.equal((await cli([kind, 'get', m.id], env)).code, 3);
    });
  }

  it('desktop assign/unassign, and attributes from a YAML file', async () => {
    const d = (await j(['desktop', 'create', '--project', f.project_id, '--name', 'cli-desk', '--attributes-file', file('attrs.yaml', 'desktop_type: SHARED\ntags:\n  - { key: team, value: blue }\n')])).desktop;
    assert.deepEqual(d.attributes, { desktop_type: 'SHARED', tags: [{ key: 'team', value: 'blue' }] });
    const bad = await cli(['desktop', 'update', d.id, '--attr', 'desktop_type=LAPTOP'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /desktop_type must be one of DEDICATED, SHARED, POOLED/);
    assert.deepEqual((await j(['desktop', 'assign', d.id, '--user', f.user])).desktop.attributes.user_list, [f.user]);
    assert.deepEqual((await j(['desktop', 'unassign', d.id, '--user', f.user])).desktop.attributes.user_list, []);
    assert.equal((await cli(['desktop', 'unassign', d.id, '--user', f.user], env)).code, 3);
    await j(['desktop', 'delete', d.id]);
  });

  it('endpoint: set (the password kept when left out), get, delete', async () => {
    const m = (await j(['cloudserver', 'create', '--project', f.project_id, '--name', 'cli-ep'])).cloudserver;
    assert.equal((await cli(['endpoint', 'get', m.id], env)).code, 3);
    assert.equal((await j(['endpoint', 'set', m.id, '--console', `vnc://127.0.0.1:${t.gw.demo!.desktop.port}`, '--password-stdin'], f.vnc_password)).endpoint.has_password, true);
    const moved = await j(['endpoint', 'set', m.id, '--console', `vnc://127.0.0.1:${t.gw.demo!.desktop.port}`, '--zone', 'cli']);
    assert.deepEqual([moved.endpoint.security, moved.endpoint.has_password, moved.endpoint.zone], ['vncauth', true, 'cli']);
    const vencrypt = await cli(['endpoint', 'set', m.id, '--console', 'vnc://h:1', '--security', 'vencrypt', '--ca-cert', file('ca.pem', 'garbage')], env);
    assert.equal(vencrypt.code, 2);
    assert.match(vencrypt.stderr, /ca_cert holds no PEM CERTIFICATE block/);
    assert.equal((await cli(['endpoint', 'get', m.id], env)).code, 0);
    assert.equal((await cli(['endpoint', 'delete', m.id], env)).code, 0);
    assert.equal((await cli(['endpoint', 'get', m.id], env)).code, 3);
    await j(['cloudserver', 'delete', m.id]);
  });

  it('token list/revoke and session list/kill', async () => {
    const token = (await cli(['login', '--domain', f.domain, '--user', f.user, '--project', f.project_id, '--password-stdin'], { PORTHOLE_URL: t.url }, f.password)).stdout.trim();
    const mint = async () => {
      const r = await fetch(`${t.url}/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address`, { headers: { 'x-auth-token': token } });
      return ((await r.json()) as Json).url as string;
    };
    await mint();
    await mint();
    const list = await cli(['token', 'list', '--resource', f.physicalserver_id], env);
    assert.match(list.stdout, /^ID +MACHINE +TYPE +USER +PURPOSE +EXPIRES\n/);
    const ids = [...list.stdout.matchAll(/^([0-9a-f]{12}) /gm)].map((m) => m[1]!);
    assert.equal(ids.length, 2);
    assert.deepEqual(await j(['token', 'revoke', ids[0]!]).then((b) => b.revoked), 1);
    assert.deepEqual((await j(['token', 'revoke', '--resource', f.physicalserver_id])).revoked, 1);
    assert.equal((await j(['token', 'list'])).count, 0);

    const ws = new URL(await mint());
    ws.protocol = 'ws:';
    ws.pathname = ws.pathname.replace('vnc_auto.html', 'websockify');
    const c = await RfbTestClient.connect(ws.toString());
    const sessions = await cli(['session', 'list'], env);
    assert.match(sessions.stdout, /^ID +MACHINE +USER +NODE +SINCE +BYTES IN\/OUT +STATE\n/);
    const sid = /^([0-9a-f-]{36}) /m.exec(sessions.stdout)![1]!;
    assert.match(sessions.stdout, new RegExp(`${sid} +${f.physicalserver_id} +${f.user} .* live$`, 'm'));
    const killed = await j(['session', 'kill', sid]);
    assert.equal(killed.outcome, 'ended');
    assert.deepEqual(await c.closed, { code: 4006, reason: 'killed' });
    assert.equal((await cli(['session', 'kill', sid], env)).code, 5);
  });

  it('key generate/status/rotate and audit list', async () => {
    const k = await cli(['key', 'generate'], {});
    assert.match(k.stdout, /^[0-9a-f]{64}\n$/);
    const status = await j(['key', 'status']);
    assert.match(status.current_key_id, /^k[0-9a-f]{16}$/);
    assert.equal(status.stale, 0);
    const rotated = await j(['key', 'rotate']);
    assert.deepEqual([rotated.resealed, rotated.stale, rotated.failed], [0, 0, []]);
    const audit = await cli(['audit', 'list', '--action', 'admin:keys:rotate'], env);
    assert.match(audit.stdout, /^TIME +USER +ACTION +RESOURCE +RESULT +CODE\n.*admin:keys:rotate +- +success +200$/m);
  });

  it('domain delete refuses a domain with projects (5), then deletes it with its users', async () => {
    const r = await cli(['domain', 'delete', domainId], env);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /still has projects/);
    assert.equal((await cli(['project', 'delete', projectId], env)).code, 0);
    assert.deepEqual(await j(['domain', 'delete', domainId]), { deleted: { type: 'domain', id: domainId } });
    assert.equal((await cli(['user', 'get', userId], env)).code, 3);
  });

  it('the real entry point: exit codes, data on stdout, diagnostics on stderr', async () => {
    const ok = await spawnCli(['project', 'list', '--json'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(Array.isArray((JSON.parse(ok.stdout) as Json).projects));
    assert.equal(ok.stderr, '');
    const missing = await spawnCli(['cloudserver', 'get', '00000000-0000-4000-a000-000000000000'], env);
    assert.deepEqual([missing.code, missing.stdout], [3, '']);
    assert.match(missing.stderr, /^porthole: Could not find cloudserver/);
    const usage = await spawnCli(['project', 'list', '--bogus'], env);
    assert.deepEqual([usage.code, usage.stdout], [2, '']);
  });
});
