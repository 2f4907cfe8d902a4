/**
 * Remote assistance across two gateway nodes on one PostgreSQL schema (no sticky sessions): the
 * desktop user's console is relayed by node A, the helper joins and is relayed by node B. The share
 * space, the join lockout and the helper's mode live in the store, so: wrong attempts made on both
 * nodes add up to one lock; control granted from the user's page on A reaches the helper's session
 * on B (the cluster bus, or B's own assistance tick); closing the space on A disconnects the helper
 * on B.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { CloseCode, CloseReason } from '../../src/close-codes.js';
import { encodeKeyEvent } from '../../src/rfb/messages.js';
import { poll } from '../helpers/browser.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { createTestSchema, describePostgres, type TestSchema } from '../helpers/postgres.js';
import type { RfbTestClient } from '../helpers/rfb-client.js';
import {
  cancel, cast, connectPage, create, desktopConsoleUrl, join, pageAction, pageState, respond, space, type Cast,
} from '../helpers/assistance.js';

await describePostgres('remote assistance on two nodes (PostgreSQL)', () => {
  let schema: TestSchema;
  let a: TestGateway;
  let b: TestGateway;
  /** Node B's URL with node A's demo facts (B runs no demo of its own). */
  let viaB: TestGateway;
  let who: Cast;
  const clients: RfbTestClient[] = [];

  before(async () => {
    schema = await createTestSchema();
    const env = { PORTHOLE_DATABASE_URL: schema.url, PORTHOLE_MASTER_KEY: randomBytes(32).toString('hex') };
    a = await startTestGateway({ env, args: ['--node-id', 'assist-a', '--trust-proxy'] });
    b = await startTestGateway({ env, demo: false, args: ['--node-id', 'assist-b', '--trust-proxy'] });
    viaB = { ...b, gw: { ...b.gw, demo: a.gw.demo } } as TestGateway;
    who = await cast(a);
  });
  after(async () => {
    for (const c of clients) c.close();
    await b?.close();
    await a?.close();
    await schema?.drop();
  });

  it('wrong join attempts on both nodes add up to one lock', async () => {
    assert.equal((await create(a, who.helpdesk)).status, 200);
    assert.equal((await respond(a, who.user, 'accept')).status, 200);
    const s = await space(a, who.helpdesk);
    for (let i = 0; i < 5; i++) {
      const node = i % 2 === 0 ? a : viaB;
      assert.equal((await join(node, { ...s, share_space_passwd: `nope-${i}` }, 'x', { 'x-forwarded-for': `198.51.100.${i + 1}` })).status, 401);
    }
    assert.equal((await join(viaB, s, 'x', { 'x-forwarded-for': '198.51.100.77' })).status, 429);
    assert.equal((await join(a, s, 'x', { 'x-forwarded-for': '198.51.100.78' })).status, 429);
    assert.equal((await cancel(a, who.helpdesk)).status, 204);
  });

  it('control granted on node A reaches the helper relayed by node B; closing on A disconnects it', async () => {
    const owner = await connectPage(a, await desktopConsoleUrl(a, who.user));
    clients.push(owner.client);
    assert.equal((await create(a, who.helpdesk)).status, 200);
    assert.equal((await pageAction(a, owner.key, 'accept')).status, 200);
    const s = await space(viaB, who.helpdesk);
    const j = await join(viaB, s, 'Remote Rita');
    assert.equal(j.status, 200, j.text);
    const helper = await connectPage(viaB, (j.body as { console_url: string }).console_url);
    clients.push(helper.client);
    assert.equal((await pageState(viaB, helper.key)).status, 200, 'the helper page asks its own node');
    const listed = await poll('the helper on the user\'s page (node A)', async () => {
      const st = (await pageState(a, owner.key)).body as { assistance: { helpers: { id: string; name: string }[] } };
      return st.assistance.helpers[0];
    }, 5000);
    assert.equal(listed.name, 'Remote Rita');

    const keys = a.gw.demo!.desktop.keyLog;
    const press = async (keysym: number) => {
      helper.client.send(encodeKeyEvent(true, keysym));
      helper.client.send(encodeKeyEvent(false, keysym));
      await helper.client.requestUpdate(false);
    };
    let mark = keys.length;
    await press(0x31);
    assert.equal(keys.slice(mark).length, 0, 'view-only on node B');

    assert.equal((await pageAction(a, owner.key, 'grant_control', listed.id)).status, 200);
    await poll('the helper\'s keys to reach the desktop', async () => {
      mark = keys.length;
      await press(0x32);
      return keys.slice(mark).some((k) => k.keysym === 0x32) ? true : undefined;
    }, 6000, 200);

    assert.equal((await pageAction(a, owner.key, 'close')).status, 200);
    assert.deepEqual(await helper.client.closed, { code: CloseCode.ASSISTANCE_ENDED, reason: CloseReason.ASSISTANCE_ENDED });
  });
});
