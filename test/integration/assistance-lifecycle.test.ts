/**
 * Remote assistance end to end over HTTP and real console WebSockets on the demo desktop: the state
 * machine (accept, decline, cancel, close by the user, expiry — the gateway's clock shifted), nothing
 * joinable before consent, the join lockout (per space and per source address, held in the store),
 * the console pages' channel (page key as WebSocket subprotocol), and live control hand-over: a
 * helper's keystrokes are dropped by the gateway until the desktop user grants control, reach the
 * desktop then, and are dropped again once it is taken back. Helpers never disconnect the user.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode, CloseReason } from '../../src/close-codes.js';
import { encodeKeyEvent } from '../../src/rfb/messages.js';
import { DEFAULT_BACKGROUND } from '../../src/demo/scene.js';
import type { RfbTestClient } from '../helpers/rfb-client.js';
import { poll } from '../helpers/browser.js';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  auditActions, cancel, cast, connectPage, create, desktopConsoleUrl, join, newKey, pageAction, pageState, respond, space, wsUrlOf, type Cast,
} from '../helpers/assistance.js';
import { RfbTestClient as Client } from '../helpers/rfb-client.js';

const TTL = 3600;

/** Types `keysym` (down and up) on `c`, then waits for a full update: the relay keeps order, so the key was handled by then. */
async function typeKey(c: RfbTestClient, keysym: number): Promise<void> {
  c.send(encodeKeyEvent(true, keysym));
  c.send(encodeKeyEvent(false, keysym));
  await c.requestUpdate(false);
}

function keysSince(t: TestGateway, from: number): number[] {
  return t.gw.demo!.desktop.keyLog.slice(from).filter((k) => k.down).map((k) => k.keysym);
}

describe('remote assistance lifecycle', () => {
  let t: TestGateway;
  let who: Cast;
  const clients: RfbTestClient[] = [];

  before(async () => {
    t = await startTestGateway();
    who = await cast(t);
  });
  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
  });

  async function fresh(): Promise<void> {
    const s = await call(`${t.url}/v2/${t.gw.demo!.facts.project_id}/desktops/${t.gw.demo!.facts.desktop_id}/remote-assistance`, { headers: { 'x-auth-token': who.helpdesk } });
    if (s.status === 200 && (s.body as { status: string }).status !== 'CLOSE') assert.equal((await cancel(t, who.helpdesk)).status, 204);
    assert.equal((await create(t, who.helpdesk)).status, 200);
  }

  it('declined: CLOSE with a failed_reason, and the code no longer joins', async () => {
    await fresh();
    const s = await space(t, who.helpdesk);
    assert.equal((await respond(t, who.user, 'decline')).status, 200);
    const after = await space(t, who.helpdesk);
    assert.equal(after.status, 'CLOSE');
    assert.match(after.failed_reason ?? '', /declined/);
    const j = await join(t, s);
    assert.equal(j.status, 401);
    assert.equal((j.body as { error_code: string }).error_code, 'PH.0401');
  });

  it('nothing is shared before consent: the right code and password get 409 until the user accepts', async () => {
    await fresh();
    const s = await space(t, who.helpdesk);
    const early = await join(t, s);
    assert.equal(early.status, 409, early.text);
    assert.equal((early.body as { error_code: string }).error_code, 'PH.0409');
    assert.match((early.body as { error_msg: string }).error_msg, /not accepted/);
    assert.equal((await respond(t, who.user, 'accept')).status, 200);
    const ok = await join(t, s);
    assert.equal(ok.status, 200, ok.text);
    const body = ok.body as { console_url: string; share_space_id: string };
    assert.match(body.console_url, /^\/vnc\/demo\/vnc_auto\.html\?token=[A-Za-z0-9_-]+&lang=EN&view_only=1$/);
    assert.equal(body.share_space_id, s.share_space_id);
    assert.equal((await space(t, who.helpdesk)).status, 'OPEN');
    // The helper sees the desktop.
    const { client } = await connectPage(t, body.console_url);
    clients.push(client);
    await client.requestUpdate();
    const [r, g, b] = DEFAULT_BACKGROUND;
    assert.deepEqual(client.pixel(4, 4), { r, g, b }, 'the helper sees the desktop');
    // Cancel (DELETE): the helper is disconnected with a reason the page puts into words.
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
    assert.deepEqual(await client.closed, { code: CloseCode.ASSISTANCE_ENDED, reason: CloseReason.ASSISTANCE_ENDED });
  });

  it('a join whose console was never opened is spent when the space closes; the user can end it from the API', async () => {
    await fresh();
    assert.equal((await respond(t, who.user, 'accept')).status, 200);
    const s = await space(t, who.helpdesk);
    const j = await join(t, s);
    assert.equal(j.status, 200);
    const closed = await respond(t, who.user, 'close');
    assert.equal(closed.status, 200);
    assert.equal((closed.body as { status: string }).status, 'CLOSE');
    assert.equal((closed.body as { failed_reason: string | null }).failed_reason, null);
    await assert.rejects(Client.open(wsUrlOf(t, (j.body as { console_url: string }).console_url)), /HTTP 403|HTTP 410/);
  });

  it('expiry: a request nobody answered closes after assistance.ttl_seconds, with a failed_reason', async () => {
    await fresh();
    t.clock.offsetMs = (TTL + 1) * 1000;
    try {
      const s = await space(t, who.helpdesk);
      assert.equal(s.status, 'CLOSE');
      assert.match(s.failed_reason ?? '', /expired before the desktop user accepted/);
      // An expired space does not block a new one.
      assert.equal((await create(t, who.helpdesk)).status, 200);
    } finally {
      t.clock.offsetMs = 0;
    }
  });

  it('expiry while OPEN: each node\'s tick disconnects the helpers', async () => {
    await fresh();
    assert.equal((await respond(t, who.user, 'accept')).status, 200);
    const j = await join(t, await space(t, who.helpdesk));
    const { client } = await connectPage(t, (j.body as { console_url: string }).console_url);
    clients.push(client);
    t.clock.offsetMs = (TTL + 1) * 1000;
    try {
      assert.deepEqual(await client.closed, { code: CloseCode.ASSISTANCE_ENDED, reason: CloseReason.ASSISTANCE_ENDED });
      const s = await space(t, who.helpdesk);
      assert.equal(s.status, 'CLOSE');
      assert.match(s.failed_reason ?? '', /time limit/);
    } finally {
      t.clock.offsetMs = 0;
    }
  });

  it('the desktop user\'s page: consent banner, helper list, control hand-over enforced on the wire, removal', async () => {
    const since = Date.now();
    const ownerPage = await connectPage(t, await desktopConsoleUrl(t, who.user));
    clients.push(ownerPage.client);
    // An operator's console on the same desktop is not the user's: no banner, no actions.
    const opPage = await connectPage(t, await desktopConsoleUrl(t, who.helpdesk));
    clients.push(opPage.client);
    assert.deepEqual((await pageState(t, opPage.key)).body, { role: 'none', poll_ms: null });
    assert.equal((await pageAction(t, opPage.key, 'accept')).status, 403);
    // Regression: the page of a cloud server's console asked and got 404 (an error in every browser console).
    const ecs = await call(`${t.url}/v1/${t.gw.demo!.facts.project_id}/cloudservers/${t.gw.demo!.facts.cloudserver_id}/remote_console`, {
      headers: { 'x-auth-token': who.user }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
    });
    assert.equal(ecs.status, 200, ecs.text);
    const ecsPage = await connectPage(t, (ecs.body as { remote_console: { url: string } }).remote_console.url);
    clients.push(ecsPage.client);
    assert.deepEqual((await pageState(t, ecsPage.key)).body, { role: 'none', poll_ms: null });
    // Unknown or missing keys.
    assert.equal((await pageState(t, newKey())).status, 404);
    assert.equal((await call(`${t.url}/assist/v1/page`)).status, 401);

    await fresh();
    let st = (await pageState(t, ownerPage.key)).body as { role: string; assistance: { status: string; requested_by: string; helpers: unknown[] } };
    assert.equal(st.role, 'user');
    assert.equal(st.assistance.status, 'WAIT_USER_CONFIRM');
    assert.equal(st.assistance.requested_by, 'helpdesk');
    const accepted = await pageAction(t, ownerPage.key, 'accept');
    assert.equal(accepted.status, 200, accepted.text);
    assert.equal((accepted.body as { assistance: { status: string } }).assistance.status, 'WAIT_USER_ACCESS');

    // The helper asks for an exclusive session (shared=0): the gateway forces shared, the user stays.
    const s = await space(t, who.helpdesk);
    const j = await join(t, s, 'Hank <b>from</b>\u0007 helpdesk');
    assert.equal(j.status, 200, j.text);
    const helper = await connectPage(t, (j.body as { console_url: string }).console_url, newKey(), { shared: false });
    clients.push(helper.client);
    await ownerPage.client.requestUpdate();

    const hs = (await pageState(t, helper.key)).body as { role: string; helper: { id: string; control: boolean; name: string } };
    assert.equal(hs.role, 'helper');
    assert.equal(hs.helper.control, false);
    assert.equal((await pageAction(t, helper.key, 'grant_control', hs.helper.id)).status, 403, 'a helper cannot act for the user');
    st = (await pageState(t, ownerPage.key)).body as typeof st;
    const listed = st.assistance.helpers as { id: string; name: string; since: string; control: boolean }[];
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.name, 'Hank <b>from</b> helpdesk');
    assert.match(listed[0]!.since, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const helperId = listed[0]!.id;

    // View-only: the helper's keys never reach the desktop.
    let mark = t.gw.demo!.desktop.keyLog.length;
    await typeKey(helper.client, 0x61);
    assert.deepEqual(keysSince(t, mark), []);
    // Control granted, live: the same session's keys now arrive.
    const granted = await pageAction(t, ownerPage.key, 'grant_control', helperId);
    assert.equal(granted.status, 200, granted.text);
    assert.equal(((granted.body as typeof st).assistance.helpers[0] as { control: boolean }).control, true);
    assert.equal(((await pageState(t, helper.key)).body as typeof hs).helper.control, true);
    mark = t.gw.demo!.desktop.keyLog.length;
    await typeKey(helper.client, 0x62);
    assert.deepEqual(keysSince(t, mark), [0x62]);
    // Taken back: dropped again.
    assert.equal((await pageAction(t, ownerPage.key, 'revoke_control', helperId)).status, 200);
    mark = t.gw.demo!.desktop.keyLog.length;
    await typeKey(helper.client, 0x63);
    assert.deepEqual(keysSince(t, mark), []);
    // The user's own keys always arrive.
    mark = t.gw.demo!.desktop.keyLog.length;
    await typeKey(ownerPage.client, 0x64);
    assert.deepEqual(keysSince(t, mark), [0x64]);

    // Removed: disconnected with its own reason; the user's console goes on.
    assert.equal((await pageAction(t, ownerPage.key, 'remove_helper', helperId)).status, 200);
    assert.deepEqual(await helper.client.closed, { code: CloseCode.ASSISTANCE_REMOVED, reason: CloseReason.ASSISTANCE_REMOVED });
    await ownerPage.client.requestUpdate();
    await poll('the helper list to empty', async () => {
      const b = (await pageState(t, ownerPage.key)).body as typeof st;
      return b.assistance.helpers.length === 0 ? true : undefined;
    }, 5000);

    // The user ends it from the page.
    const ended = await pageAction(t, ownerPage.key, 'close');
    assert.equal(ended.status, 200);
    assert.equal((ended.body as { assistance: unknown }).assistance, null);
    assert.equal((await space(t, who.helpdesk)).status, 'CLOSE');

    const actions = await auditActions(t, since);
    for (const a of ['create', 'accept', 'join', 'control_grant', 'control_revoke', 'helper_remove', 'leave', 'close']) {
      assert.ok(actions.includes(`assistance:${a}:success`), `assistance:${a} in ${actions.join(', ')}`);
    }
    // Once the user's console ends, its page key is worthless.
    ownerPage.client.close();
    await ownerPage.client.closed;
    await poll('the page key to be dropped', async () => ((await pageState(t, ownerPage.key)).status !== 200 ? true : undefined), 5000);
  });
});

describe('remote assistance join lockout', () => {
  let t: TestGateway;
  let who: Cast;
  before(async () => {
    t = await startTestGateway({ args: ['--trust-proxy'] });
    who = await cast(t);
  });
  after(async () => t?.close());

  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  async function openSpace() {
    const c = await create(t, who.helpdesk);
    assert.equal(c.status, 200, c.text);
    assert.equal((await respond(t, who.user, 'accept')).status, 200);
    return space(t, who.helpdesk);
  }

  it('per share space: 5 wrong passwords from 5 addresses lock the space, even for the right password, for 5 minutes', async () => {
    const s = await openSpace();
    for (let i = 0; i < 5; i++) {
      const r = await join(t, { ...s, share_space_passwd: `wrong-${i}` }, 'x', from(`198.51.100.${i + 1}`));
      assert.equal(r.status, 401, r.text);
      assert.equal((r.body as { error_code: string }).error_code, 'PH.0401');
    }
    const locked = await join(t, s, 'x', from('198.51.100.99'));
    assert.equal(locked.status, 429, locked.text);
    assert.equal((locked.body as { error_code: string }).error_code, 'PH.0429');
    assert.ok(Number(locked.headers.get('retry-after')) > 200);
    t.clock.offsetMs = 301_000;
    try {
      assert.equal((await join(t, s, 'x', from('198.51.100.99'))).status, 200);
    } finally {
      t.clock.offsetMs = 0;
    }
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
  });

  it('per source address: 5 wrong codes lock that address for every space; other addresses still join', async () => {
    const s = await openSpace();
    for (let i = 0; i < 5; i++) {
      const r = await join(t, { invitation_code: `ZZZZZZZ${i}`, share_space_passwd: 'guess' }, 'x', from('203.0.113.7'));
      assert.equal(r.status, 401);
    }
    const lockedOut = await join(t, s, 'x', from('203.0.113.7'));
    assert.equal(lockedOut.status, 429);
    assert.equal((await join(t, s, 'x', from('203.0.113.8'))).status, 200);
    await t.gw.audit.flush();
    const failures = await t.gw.store.audit.list({ action: 'assistance:join', result: 'failure', limit: 100 });
    assert.ok(failures.some((e) => e.code === 'locked' && e.sourceIp === '203.0.113.7'));
    assert.ok(failures.some((e) => e.code === 'wrong_credentials'));
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
  });

  it('parallel guesses are all counted: a burst cannot get past the limit', async () => {
    const s = await openSpace();
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => join(t, { ...s, share_space_passwd: `burst-${i}` }, 'x', from(`192.0.2.${i + 1}`))));
    const statuses = burst.map((r) => r.status);
    assert.ok(statuses.filter((x) => x === 401).length <= 5, statuses.join(','));
    assert.equal((await join(t, s, 'x', from('192.0.2.200'))).status, 429);
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
  });

  it('the lock is kept in the store, which every gateway node shares', async () => {
    const s = await openSpace();
    for (let i = 0; i < 5; i++) await join(t, { ...s, share_space_passwd: `w${i}` }, 'x', from(`198.18.0.${i + 1}`));
    const attempts = await t.gw.store.assistance.getAttempts(`space:${s.share_space_id}`);
    assert.ok(attempts?.lockedUntil && attempts.lockedUntil > Date.now());
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
  });

  it('security #6: failed joins are aggregated refusals (per address and code, with a count, nothing the client chose); a successful join stays an individual event of the tenant', async () => {
    const s = await openSpace();
    const since = Date.now() - 1000;
    const evil = { 'x-forwarded-for': '100.64.7.7', 'user-agent': 'ua-chosen-by-the-attacker' };
    for (let i = 0; i < 4; i++) {
      const r = await join(t, { ...s, share_space_passwd: `wrong-${i}` }, `helper-name-chosen-${i}`, evil);
      assert.equal(r.status, 401, r.text);
    }
    // The fifth wrong one locks the space; then the space and the address are locked.
    assert.equal((await join(t, { ...s, share_space_passwd: 'wrong-4' }, 'x', evil)).status, 401);
    for (let i = 0; i < 3; i++) assert.equal((await join(t, s, `locked-name-${i}`, evil)).status, 429);
    await t.gw.audit.flush();
    const failures = (await t.gw.store.audit.list({ action: 'assistance:join', result: 'failure', since, limit: 100 })).filter((e) => e.sourceIp === '100.64.7.7');
    assert.deepEqual(failures.map((e) => [e.code, e.count ?? 1]).sort(), [['locked', 3], ['wrong_credentials', 5]], 'one row per code, with a count');
    for (const e of failures) {
      assert.deepEqual([e.projectId, e.resourceKind, e.resourceId, e.userAgent, e.actorName, e.actorUserId, e.detail, e.domainId ?? null],
        [null, null, null, null, null, null, null, null], `nothing chosen by the client, no tenant: ${JSON.stringify(e)}`);
    }
    const desktopTrail = await t.gw.store.audit.list({ resourceId: t.gw.demo!.facts.desktop_id, since, limit: 100 });
    assert.deepEqual(desktopTrail.filter((e) => e.result === 'failure'), [], 'the tenant\'s trail holds no failed join');

    // The space's lock ends; Hank's successful join is recorded on its own, with what he sent.
    t.clock.offsetMs = 301_000;
    try {
      const ok = await join(t, s, 'Hank', { 'x-forwarded-for': '100.64.8.8', 'user-agent': 'helper-browser' });
      assert.equal(ok.status, 200, ok.text);
    } finally {
      t.clock.offsetMs = 0;
    }
    await t.gw.audit.flush();
    const joined = (await t.gw.store.audit.list({ resourceId: t.gw.demo!.facts.desktop_id, action: 'assistance:join', result: 'success', since, limit: 100 }))
      .filter((e) => e.sourceIp === '100.64.8.8');
    assert.equal(joined.length, 1);
    assert.deepEqual([joined[0]!.projectId, joined[0]!.actorName, joined[0]!.userAgent, joined[0]!.sourceIp, joined[0]!.count],
      [t.gw.demo!.facts.project_id, 'Hank', 'helper-browser', '100.64.8.8', undefined]);
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
  });
});
