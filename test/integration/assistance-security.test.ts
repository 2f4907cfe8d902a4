/**
 * Remote assistance: who may obtain a share space's password and join, and what a removal does to it
 * (security review #7 and #8). The cast: the desktop's own user (demo: domain admin, may open the
 * console), a helpdesk operator, a viewer, and `vera`, a second user with only the viewer role who is
 * assigned to the desktop in some tests (a shared desktop: two assigned users).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CloseCode, CloseReason } from '../../src/close-codes.js';
import type { RfbTestClient } from '../helpers/rfb-client.js';
import { poll } from '../helpers/browser.js';
import { call, startTestGateway, type HttpResult, type TestGateway } from '../helpers/gateway.js';
import {
  addDemoUser, auditActions, cancel, cast, connectPage, create, desktopConsoleUrl, join, pageAction, pageState, respond, show, space,
  type Cast, type ShareSpace,
} from '../helpers/assistance.js';

type UserPage = { role: string; assistance: null | { status: string; consented: boolean; waiting_for: string[]; helpers: { id: string; name: string }[] } };

describe('remote assistance security', () => {
  let t: TestGateway;
  let who: Cast;
  let vera: string;
  const clients: RfbTestClient[] = [];

  const desktopId = () => t.gw.demo!.facts.desktop_id;
  const admin = (method: string, p: string, json?: unknown) =>
    call(`${t.url}${p}`, { method, headers: { 'x-auth-token': who.user }, ...(json === undefined ? {} : { json }) });
  const code = (r: HttpResult) => (r.body as { error_code?: string } | undefined)?.error_code;

  /** Makes exactly `names` the desktop's assigned users. */
  async function assignOnly(names: string[]): Promise<void> {
    const d = await t.gw.store.inventory.getResource(t.gw.demo!.facts.project_id, 'desktop', desktopId());
    const now = new Set<string>([...(Array.isArray(d!.attributes.user_list) ? d!.attributes.user_list as string[] : []),
      ...(typeof d!.attributes.user_name === 'string' ? [d!.attributes.user_name] : [])]);
    for (const n of names) if (!now.has(n)) assert.equal((await admin('POST', `/admin/v1/desktops/${desktopId()}/users`, { user_name: n })).status, 200);
    for (const n of now) if (!names.includes(n)) assert.equal((await admin('DELETE', `/admin/v1/desktops/${desktopId()}/users/${n}`)).status, 200);
  }

  /** No active space on the desktop. */
  async function closeAny(): Promise<void> {
    const s = await show(t, who.helpdesk);
    if (s.status === 200 && (s.body as ShareSpace).status !== 'CLOSE') assert.equal((await cancel(t, who.helpdesk)).status, 204);
  }

  before(async () => {
    t = await startTestGateway();
    who = await cast(t);
    vera = await addDemoUser(t, 'vera', 'viewer');
  });
  beforeEach(async () => {
    await closeAny();
    await assignOnly([t.gw.demo!.facts.user]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
  });

  it('security #7: an assigned user with only the viewer role cannot create a share space (self-initiated or not)', async () => {
    await assignOnly(['vera']);
    const r = await create(t, vera);
    assert.equal(r.status, 403, r.text);
    assert.equal(code(r), 'APIGW.0302');
    assert.equal((await show(t, who.helpdesk)).status, 404, 'no share space was made');
    // Opening the console of that desktop needs the same right.
    const consoleUrl = await call(`${t.url}/v2/${t.gw.demo!.facts.project_id}/desktops/${desktopId()}/remote-consoles`, { headers: { 'x-auth-token': vera } });
    assert.equal(consoleUrl.status, 403);
  });

  it('security #7: an assigned viewer never reads the join password: not from GET, not from the answer to accept', async () => {
    await assignOnly(['vera']);
    assert.equal((await create(t, who.helpdesk)).status, 200);
    const seen = await show(t, vera);
    assert.equal(seen.status, 200, seen.text);
    assert.equal((seen.body as ShareSpace).share_space_passwd, '');
    assert.match((seen.body as ShareSpace).invitation_code, /^[A-Z0-9]{8}$/, 'the rest of the seed body is there');
    const accepted = await respond(t, vera, 'accept');
    assert.equal(accepted.status, 200, accepted.text);
    assert.equal((accepted.body as ShareSpace).status, 'WAIT_USER_ACCESS');
    assert.equal((accepted.body as ShareSpace).share_space_passwd, '');
    // The operator who asked gets it, and it is the one that joins.
    const s = await space(t, who.helpdesk);
    assert.match(s.share_space_passwd, /^[A-Za-z0-9]{12}$/);
    assert.equal((await join(t, s)).status, 200);
  });

  it('security #7: a join that carries the credentials of the desktop\'s own user (who consented) is refused, anonymous or another user\'s is not', async () => {
    // ENDUSER_INITIATE by the desktop's user: they asked and consented, so they are not its helper.
    const c = await create(t, who.user);
    assert.equal((c.body as { initiator_type: string }).initiator_type, 'ENDUSER_INITIATE');
    const s = await space(t, who.user);
    const self = await join(t, s, 'me', { 'x-auth-token': who.user });
    assert.equal(self.status, 403, self.text);
    assert.equal(code(self), 'PH.0403');
    assert.equal((await space(t, who.user)).status, 'WAIT_USER_ACCESS', 'the refused join opened nothing');
    // A wrong token is not treated as no token.
    assert.equal((await join(t, s, 'me', { 'x-auth-token': 'not-a-token' })).status, 401);
    const helpdesk = await join(t, s, 'Hank', { 'x-auth-token': who.helpdesk });
    assert.equal(helpdesk.status, 200, helpdesk.text);
    assert.equal((await cancel(t, who.user)).status, 204);

    // ADMIN_INITIATE accepted by an assigned viewer: the viewer, signed in, is refused too.
    await assignOnly(['vera']);
    assert.equal((await create(t, who.helpdesk)).status, 200);
    assert.equal((await respond(t, vera, 'accept')).status, 200);
    const s2 = await space(t, who.helpdesk);
    const byVera = await join(t, s2, 'vera', { 'x-auth-token': vera });
    assert.equal(byVera.status, 403, byVera.text);
    assert.equal(code(byVera), 'PH.0403');
    const actions = await auditActions(t);
    assert.ok(actions.includes('assistance:join:failure'));
  });

  it('security #7: on a desktop with several assigned users, one user\'s own request waits for the others\' consent', async () => {
    await assignOnly([t.gw.demo!.facts.user, 'vera']);
    const ownerPage = await connectPage(t, await desktopConsoleUrl(t, who.user));
    clients.push(ownerPage.client);
    const c = await create(t, who.user);
    assert.equal(c.status, 200, c.text);
    assert.equal((c.body as { initiator_type: string }).initiator_type, 'ENDUSER_INITIATE');
    assert.equal((c.body as { status: string }).status, 'WAIT_USER_CONFIRM');
    const s = await space(t, who.user);
    assert.equal((await join(t, s)).status, 409, 'nothing is joinable before vera agrees');
    // The page of the user who asked: they have consented, vera has not.
    const st = (await pageState(t, ownerPage.key)).body as UserPage;
    assert.equal(st.assistance?.status, 'WAIT_USER_CONFIRM');
    assert.equal(st.assistance?.consented, true);
    assert.deepEqual(st.assistance?.waiting_for, ['vera']);
    const again = await respond(t, who.user, 'accept');
    assert.equal(again.status, 400, 'the requester\'s own accept does not count twice');
    assert.equal((await pageAction(t, ownerPage.key, 'accept')).status, 409);
    const ok = await respond(t, vera, 'accept');
    assert.equal(ok.status, 200, ok.text);
    assert.equal((ok.body as ShareSpace).status, 'WAIT_USER_ACCESS');
    assert.equal((await join(t, s)).status, 200);
    assert.equal((await cancel(t, who.user)).status, 204);

    // An administrator's request needs every assigned user too; one decline ends it.
    assert.equal((await create(t, who.helpdesk)).status, 200);
    const first = await respond(t, vera, 'accept');
    assert.equal((first.body as ShareSpace).status, 'WAIT_USER_CONFIRM');
    const mine = (await pageState(t, ownerPage.key)).body as UserPage;
    assert.equal(mine.assistance?.consented, false);
    assert.deepEqual(mine.assistance?.waiting_for, [t.gw.demo!.facts.user]);
    assert.equal((await join(t, await space(t, who.helpdesk))).status, 409);
    assert.equal((await pageAction(t, ownerPage.key, 'accept')).status, 200);
    assert.equal((await space(t, who.helpdesk)).status, 'WAIT_USER_ACCESS');
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
    assert.equal((await create(t, who.helpdesk)).status, 200);
    assert.equal((await respond(t, vera, 'decline')).status, 200);
    assert.equal((await space(t, who.helpdesk)).status, 'CLOSE');
  });

  it('security #8: removing a helper changes the password, so it cannot rejoin; the other helpers stay connected', async () => {
    const ownerPage = await connectPage(t, await desktopConsoleUrl(t, who.user));
    clients.push(ownerPage.client);
    assert.equal((await create(t, who.user)).status, 200);
    const s = await space(t, who.user);
    const j1 = await join(t, s, 'Mallory');
    const j2 = await join(t, s, 'Hank');
    assert.equal(j1.status, 200, j1.text);
    assert.equal(j2.status, 200, j2.text);
    const mallory = await connectPage(t, (j1.body as { console_url: string }).console_url);
    const hank = await connectPage(t, (j2.body as { console_url: string }).console_url);
    clients.push(mallory.client, hank.client);
    const listed = await poll('both helpers to be listed', async () => {
      const b = (await pageState(t, ownerPage.key)).body as UserPage;
      return b.assistance?.helpers.length === 2 ? b.assistance.helpers : undefined;
    }, 5000);
    const malloryId = listed.find((h) => h.name === 'Mallory')!.id;
    assert.equal((await pageAction(t, ownerPage.key, 'remove_helper', malloryId)).status, 200);
    assert.deepEqual(await mallory.client.closed, { code: CloseCode.ASSISTANCE_REMOVED, reason: CloseReason.ASSISTANCE_REMOVED });

    const rejoin = await join(t, s, 'Mallory');
    assert.equal(rejoin.status, 401, `the old password no longer joins: ${rejoin.text}`);
    const now = await space(t, who.user);
    assert.equal(now.invitation_code, s.invitation_code, 'the code stays');
    assert.match(now.share_space_passwd, /^[A-Za-z0-9]{12}$/);
    assert.notEqual(now.share_space_passwd, s.share_space_passwd, 'GET shows the new password');
    // Hank is still connected and still sees the desktop.
    await hank.client.requestUpdate();
    const b = (await pageState(t, ownerPage.key)).body as UserPage;
    assert.deepEqual(b.assistance?.helpers.map((h) => h.name), ['Hank']);
    assert.equal((await join(t, now, 'Hank again')).status, 200, 'the new password joins');
  });

  it('a closed share space shows no password (GET and the answer to close)', async () => {
    assert.equal((await create(t, who.user)).status, 200);
    assert.match((await space(t, who.user)).share_space_passwd, /^[A-Za-z0-9]{12}$/);
    const closed = await respond(t, who.user, 'close');
    assert.equal(closed.status, 200);
    assert.equal((closed.body as ShareSpace).status, 'CLOSE');
    assert.equal((closed.body as ShareSpace).share_space_passwd, '');
    for (const token of [who.user, who.helpdesk]) {
      const s = await space(t, token);
      assert.equal(s.status, 'CLOSE');
      assert.equal(s.share_space_passwd, '', 'a string still, for the SDKs');
    }
  });
});
