/**
 * Taking a user's access away takes it away now (security review #4 and #13), on one real gateway:
 *  - deleting, disabling or demoting a user (role removed or lowered to viewer, domain administrator
 *    flag dropped) revokes the console links they minted and ends their live consoles with 4007
 *    `revoked` — through the admin API and through a fleet apply; a link whose user lost access some
 *    other way is refused at redemption (403 token_revoked, before any 101);
 *  - remote-assistance helpers act on the authority of the share space's creator: deleting the
 *    creator ends the helpers' consoles and refuses their unused links;
 *  - a password change (admin API, fleet apply) or disabling a user makes their IAM tokens 401 at once.
 * The same across two nodes: test/integration/user-revocation-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signedCall } from '../helpers/aksk.js';
import { call, login, startTestGateway, tryUpgrade, websocketUrl, type HttpResult, type TestGateway, okBody as ok } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { deriveDomainId, deriveProjectId, deriveResourceId, deriveUserId } from '../../src/domain/fleet-model.js';
import { cast, create as createAssistance, join, respond, space, wsUrlOf } from '../helpers/assistance.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DOMAIN = 'acme';
const PROJECT = 'lab';
const OTHER = 'lab2';
const PASSWORD = 'acme-password-1';
const projectId = deriveProjectId(DOMAIN, PROJECT);
const otherProjectId = deriveProjectId(DOMAIN, OTHER);
const serverId = deriveResourceId(projectId, 'cloudserver', 'web');
const otherServerId = deriveResourceId(otherProjectId, 'cloudserver', 'web2');
const userId = (name: string) => deriveUserId(DOMAIN, name);
const USERS = ['del', 'dis', 'demote', 'unbind', 'admin1', 'fleet1', 'fleet2', 'fleet3', 'direct', 'twoproj', 'pw1', 'pw2', 'pw3'];

function fleet(port: number, vncPassword: string, over: Record<string, string> = {}): string {
  const users = USERS.map((u) => over[u] ?? `      - { name: ${u}, password: ${PASSWORD}, roles: { ${PROJECT}: operator${u === 'twoproj' ? `, ${OTHER}: operator` : ''} }${u === 'admin1' ? ', domain_admin: true' : ''} }`);
  const console = `console: { url: "vnc://127.0.0.1:${port}", security: vncauth, password: "${vncPassword}" }`;
  return `
domains:
  - name: ${DOMAIN}
    users:
${users.join('\n')}
    projects:
      - name: ${PROJECT}
        cloudservers:
          - { name: web, ${console} }
      - name: ${OTHER}
        cloudservers:
          - { name: web2, ${console} }
`;
}

describe('security #4/#13: a user deleted, disabled or demoted loses console links, live consoles and IAM tokens at once', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let port: number;
  /** As the demo administrator (AK/SK; the demo domain is an operator domain). */
  const admin = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  const applyFleet = async (text: string) => ok(await admin('POST', '/admin/v1/fleet', { fleet: text }));

  const tokenOf = (user: string, project = projectId) => login(t.url, user, PASSWORD, DOMAIN, project);
  /** A console link for the user's `web` (or `web2` in the other project). */
  async function mint(token: string, other = false): Promise<string> {
    const r = await call(`${t.url}/v1/${other ? otherProjectId : projectId}/cloudservers/${other ? otherServerId : serverId}/remote_console`, {
      headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
    });
    assert.equal(r.status, 200, r.text);
    return websocketUrl((r.body as Json).remote_console.url);
  }
  /** A live console and an unused link of `user`. */
  async function liveAndPending(user: string): Promise<{ live: RfbTestClient; pending: string; token: string }> {
    const token = await tokenOf(user);
    const live = await RfbTestClient.connect(await mint(token));
    await live.requestUpdate();
    return { live, pending: await mint(token), token };
  }
  /** How the console closed, or 'still open' after a few seconds (it runs on for hours otherwise). */
  const closedSoon = (c: RfbTestClient) => Promise.race([c.closed, new Promise<string>((r) => setTimeout(() => r('still open'), 5000).unref())]);
  async function assertCutOff(s: { live: RfbTestClient; pending: string }): Promise<void> {
    const closed = await closedSoon(s.live);
    if (closed === 'still open') s.live.close();
    assert.deepEqual(closed, { code: 4007, reason: 'revoked' });
    const r = await tryUpgrade(s.pending);
    assert.equal(r.status, 403, r.body);
    assert.equal(JSON.parse(r.body).reason, 'token_revoked');
  }

  before(async () => {
    t = await startTestGateway();
    f = t.gw.demo!.facts;
    port = t.gw.demo!.desktop.port;
    await applyFleet(fleet(port, f.vnc_password));
  });
  after(async () => t?.close());

  it('security #4: deleting a user (admin API) revokes their unused link and ends their live console with 4007 revoked', async () => {
    const s = await liveAndPending('del');
    assert.equal((await admin('DELETE', `/admin/v1/users/${userId('del')}`)).status, 204);
    await assertCutOff(s);
  });

  it('security #4: disabling a user (admin API) does the same', async () => {
    const s = await liveAndPending('dis');
    ok(await admin('PATCH', `/admin/v1/users/${userId('dis')}`, { user: { disabled: true } }));
    await assertCutOff(s);
  });

  it('security #4: lowering a user\'s role to viewer, or removing it, does the same', async () => {
    const a = await liveAndPending('demote');
    ok(await admin('PUT', `/admin/v1/users/${userId('demote')}/roles/${projectId}`, { role: 'viewer' }));
    await assertCutOff(a);
    const b = await liveAndPending('unbind');
    ok(await admin('DELETE', `/admin/v1/users/${userId('unbind')}/roles/${projectId}`));
    await assertCutOff(b);
  });

  it('security #4: dropping the domain administrator flag ends what the role bindings no longer allow', async () => {
    const token = await login(t.url, 'admin1', PASSWORD, DOMAIN, otherProjectId); // no role in lab2: a domain administrator
    const live = await RfbTestClient.connect(await mint(token, true));
    await live.requestUpdate();
    const pending = await mint(token, true);
    const kept = await RfbTestClient.connect(await mint(await tokenOf('admin1'))); // lab: operator
    ok(await admin('PATCH', `/admin/v1/users/${userId('admin1')}`, { user: { domain_admin: false } }));
    await assertCutOff({ live, pending });
    await kept.requestUpdate();
    assert.equal(t.gw.upgrade.live().filter((s) => s.holderUserId === userId('admin1')).length, 1, 'the console in the project where admin1 is operator goes on');
    kept.close();
  });

  it('security #4: a demotion in one project leaves the user\'s consoles in another', async () => {
    const inLab = await liveAndPending('twoproj');
    const token2 = await login(t.url, 'twoproj', PASSWORD, DOMAIN, otherProjectId);
    const inLab2 = await RfbTestClient.connect(await mint(token2, true));
    const pending2 = await mint(token2, true);
    ok(await admin('PUT', `/admin/v1/users/${userId('twoproj')}/roles/${projectId}`, { role: 'viewer' }));
    await assertCutOff(inLab);
    await inLab2.requestUpdate();
    assert.equal((await tryUpgrade(pending2)).status, 101, 'the link in lab2 still opens');
    inLab2.close();
  });

  it('security #4: a fleet apply that deletes, disables or demotes users does the same', async () => {
    const s1 = await liveAndPending('fleet1');
    const s2 = await liveAndPending('fleet2');
    const s3 = await liveAndPending('fleet3');
    const over = {
      fleet1: `      - { name: fleet1, password: ${PASSWORD}, disabled: true, roles: { ${PROJECT}: operator } }`,
      fleet2: `      - { name: fleet2, password: ${PASSWORD}, roles: { ${PROJECT}: viewer } }`,
      fleet3: '', // not named: deleted by the prune
    };
    const text = fleet(port, f.vnc_password, over).split('\n').filter((l) => l !== '').join('\n');
    const before = ok(await admin('POST', '/admin/v1/fleet', { fleet: text, prune: true }));
    assert.ok(before.changes.some((c: Json) => c.action === 'delete' && c.type === 'user' && c.name === `${DOMAIN}/fleet3`), JSON.stringify(before.changes));
    for (const s of [s1, s2, s3]) await assertCutOff(s);
  });

  it('security #4: a link whose user lost access without the admin API is refused at redemption (403 token_revoked, no 101)', async () => {
    const token = await tokenOf('direct');
    const link = await mint(token);
    const u = (await t.gw.store.identity.getUser(userId('direct')))!;
    await t.gw.store.identity.upsertUser({ ...u, disabled: true }); // as another node or a restore might
    const r = await tryUpgrade(link);
    assert.equal(r.status, 403, r.body);
    assert.equal(JSON.parse(r.body).reason, 'token_revoked');
  });

  it('security #4: helpers act on the share space creator\'s authority: deleting the creator ends their consoles and their links', async () => {
    const who = await cast(t);
    assert.equal((await createAssistance(t, who.helpdesk)).status, 200);
    assert.equal((await respond(t, who.user, 'accept')).status, 200);
    const s = await space(t, who.helpdesk);
    const first = await join(t, s, 'Helper one');
    assert.equal(first.status, 200, first.text);
    const live = await RfbTestClient.connect(wsUrlOf(t, (first.body as Json).console_url));
    await live.requestUpdate();
    const second = await join(t, s, 'Helper two');
    assert.equal(second.status, 200, second.text);
    const helpdesk = (await t.gw.store.identity.findUserByName(deriveDomainId(f.domain), 'helpdesk'))!;
    assert.equal((await admin('DELETE', `/admin/v1/users/${helpdesk.id}`)).status, 204);
    await assertCutOff({ live, pending: wsUrlOf(t, (second.body as Json).console_url) });
    assert.equal((await respond(t, who.user, 'close')).status, 200);
  });

  it('security #13: a password change through the admin API makes the user\'s IAM tokens 401 at once', async () => {
    const token = await tokenOf('pw1');
    await mint(token); // validated (and cached) once
    ok(await admin('PATCH', `/admin/v1/users/${userId('pw1')}`, { user: { password: 'a-brand-new-password' } }));
    const r = await call(`${t.url}/v1/${projectId}/cloudservers/${serverId}/remote_console`, { headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 401, r.text);
    await login(t.url, 'pw1', 'a-brand-new-password', DOMAIN, projectId);
  });

  it('security #13: a password change by a fleet apply, and disabling, do the same', async () => {
    const t2 = await tokenOf('pw2');
    const t3 = await tokenOf('pw3');
    await mint(t2);
    await mint(t3);
    const over = { pw2: `      - { name: pw2, password: another-password-2, roles: { ${PROJECT}: operator } }` };
    await applyFleet(fleet(port, f.vnc_password, { ...over, del: '', dis: '', fleet1: '', fleet2: '', fleet3: '' }).split('\n').filter((l) => l !== '').join('\n'));
    const r2 = await call(`${t.url}/v1/${projectId}/cloudservers/${serverId}/remote_console`, { headers: { 'x-auth-token': t2 }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r2.status, 401, r2.text);
    ok(await admin('PATCH', `/admin/v1/users/${userId('pw3')}`, { user: { disabled: true } }));
    ok(await admin('PATCH', `/admin/v1/users/${userId('pw3')}`, { user: { disabled: false } }));
    const r3 = await call(`${t.url}/v1/${projectId}/cloudservers/${serverId}/remote_console`, { headers: { 'x-auth-token': t3 }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r3.status, 401, 'a token of a disabled user stays dead when the user is enabled again');
  });
});
