/**
 * Acknowledged work kept through a database outage (found by bench/chaos.ts).
 *
 * A console upgrade refused for want of the database after its token was consumed (found by
 * bench/chaos.ts, PostgreSQL outage under load): the client is told 503 `store_unavailable`, "try again
 * in a few seconds", so the token must still be good when it does. The failure is made deterministic
 * with a trigger on console_sessions that raises SQLSTATE 57P03 (cannot connect now): the token's
 * conditional UPDATE commits, then the session row's INSERT fails as it would when the connection
 * drops between the two.
 *
 * A mint answered 200 whose audit row (written just after the answer) meets the outage: the row is
 * kept and written when the database answers again (the same trigger, on audit_events).
 *
 * Needs `npm run build` and PostgreSQL (CI=true: missing → failure).
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { describeWith } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { call } from '../helpers/gateway.js';
import {
  clusterFleet, clusterLogin, clusterProjectId, clusterServerId, mintConsole, newMasterKey, sleep, startNode, tryUpgrade, until, websocketUrl, type NodeProcess,
} from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-4';

await describeWith('a database outage between an acknowledgement and its rows', { postgres: true }, () => {
  let schema: TestSchema;
  let desktop: DemoDesktop;
  let node: NodeProcess;
  let token: string;

  before(async () => {
    schema = await createTestSchema();
    await schema.admin(`set search_path to ${schema.name}`);
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'outage token desktop' });
    node = await startNode({
      name: 'outage-token', databaseUrl: schema.url, masterKey: newMasterKey(),
      fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD),
    });
    token = await clusterLogin(node.url, 'alice');
  });

  after(async () => {
    await node?.stop();
    await desktop?.close();
    await schema?.drop();
  });

  it('reliability: a 503 store_unavailable after the token was consumed gives the token back; the retry opens the console', async () => {
    const consoleUrl = (await mintConsole(node.url, token, 'desk')).consoleUrl!;
    await schema.admin(`create function ${schema.name}.chaos_fail() returns trigger language plpgsql as $$
      begin raise exception 'simulated outage' using errcode = '57P03'; end $$`);
    await schema.admin(`create trigger chaos_fail before insert on ${schema.name}.console_sessions for each row execute function ${schema.name}.chaos_fail()`);
    try {
      const refused = await tryUpgrade(websocketUrl(consoleUrl, node.url));
      assert.equal(refused.status, 503, refused.body);
      assert.equal((JSON.parse(refused.body) as { reason: string }).reason, 'store_unavailable');
    } finally {
      await schema.admin(`drop trigger chaos_fail on ${schema.name}.console_sessions`);
    }
    // The token is not spent: the page's retry (the same URL) opens the console, once.
    const state = await until('the token released', async () => {
      const r = (await schema.admin('select redeemed_at from console_tokens order by created_at desc limit 1')).rows[0] as { redeemed_at: string | null };
      return r.redeemed_at === null ? 'released' : undefined;
    }, 5000, 100);
    assert.equal(state, 'released');
    const c = await RfbTestClient.connect(websocketUrl(consoleUrl, node.url));
    await c.requestUpdate();
    const again = await tryUpgrade(websocketUrl(consoleUrl, node.url));
    assert.equal(again.status, 410, 'still one use only');
    assert.equal((JSON.parse(again.body) as { reason: string }).reason, 'token_used');
    c.ws.close();
    await c.closed;
    const sessions = (await schema.admin('select count(*)::int as n from console_sessions')).rows[0] as { n: number };
    assert.equal(sessions.n, 1, 'one session row: the refused upgrade left none');
  });

  it('reliability: the audit row of a mint answered 200 is written once the database answers again, not dropped', async () => {
    // The database refuses audit rows (as when it goes away just after the mint's token committed).
    await schema.admin(`create function ${schema.name}.chaos_fail_audit() returns trigger language plpgsql as $$
      begin raise exception 'simulated outage' using errcode = '57P03'; end $$`);
    await schema.admin(`create trigger chaos_fail_audit before insert on ${schema.name}.audit_events for each row execute function ${schema.name}.chaos_fail_audit()`);
    let requestId: string;
    try {
      const r = await call(`${node.url}/v1/${clusterProjectId}/cloudservers/${clusterServerId('desk')}/remote_console`, {
        headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
      });
      assert.equal(r.status, 200, r.text);
      requestId = r.headers.get('x-request-id')!;
      assert.ok(requestId);
      await sleep(1500); // the first write (and a retry) fail meanwhile
    } finally {
      await schema.admin(`drop trigger chaos_fail_audit on ${schema.name}.audit_events`);
    }
    const row = await until('the mint\'s audit row', async () =>
      (await schema.admin(`select result, code from audit_events where request_id = $1 and action = 'ecs:cloudServers:vnc'`, [requestId])).rows[0] as { result: string } | undefined,
    5000, 100);
    assert.equal(row.result, 'success');
    const n = (await schema.admin('select count(*)::int as n from audit_events where request_id = $1', [requestId])).rows[0] as { n: number };
    assert.equal(n.n, 1, 'written once');
  });
});
