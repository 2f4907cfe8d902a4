/**
 * What unauthenticated traffic can make the gateway keep or do, against the real gateway:
 *  - requests per source address are throttled before authentication (429 APIGW.0308 in the gateway's
 *    own shape), the join route of remote assistance included; behind a trusted proxy the address is
 *    the left-most X-Forwarded-For entry, otherwise that header changes nothing;
 *  - refused unauthenticated calls are aggregated in the audit trail (one row per source address,
 *    action and result per window, with a count) and attributed to no tenant: no project, no user agent;
 *  - the retention job deletes expired IAM tokens, spent console tokens (after a grace) and audit
 *    events older than audit.retention_days, with the gateway's clock shifted instead of waiting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, demoDomainLogin, demoLogin, startTestGateway, type HttpResult, type TestGateway } from '../helpers/gateway.js';
import { signedCall } from '../helpers/aksk.js';
import { sha256Hex } from '../../src/domain/passwords.js';
import { REFUSAL_WINDOW_MS } from '../../src/domain/audit.js';
import { TOKEN_GRACE_MS } from '../../src/domain/retention.js';

const errorBody = (r: HttpResult) => r.body as { error_code?: string; error_msg?: string; request_id?: string } | undefined;

describe('security #6: per-address throttling before authentication (5 per second, 8 per minute)', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    t = await startTestGateway({ args: ['--ratelimit-per-address-per-second', '5', '--ratelimit-per-address-per-minute', '8'] });
    f = t.gw.demo!.facts;
  });
  after(async () => t.close());

  it('security #6: the 6th unauthenticated call in a second gets 429 APIGW.0308 (gateway shape, Retry-After); X-Forwarded-For is ignored without trust_proxy', async () => {
    const desktop = (headers: Record<string, string> = {}) => call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers });
    for (let i = 1; i <= 5; i++) assert.equal((await desktop({ 'x-forwarded-for': `203.0.113.${i}` })).status, 401, `call ${i}`);
    const over = await desktop({ 'x-forwarded-for': '203.0.113.99' });
    assert.equal(over.status, 429, over.text);
    assert.deepEqual(Object.keys(errorBody(over) ?? {}).sort(), ['error_code', 'error_msg', 'request_id']);
    assert.equal(errorBody(over)?.error_code, 'APIGW.0308');
    assert.equal(errorBody(over)?.error_msg, 'The throttling threshold has been reached: policy ip over ratelimit,limit:5,time:1 second');
    assert.equal(over.headers.get('retry-after'), '1');
    assert.equal((await call(`${t.url}/healthz`)).status, 200, 'health checks are not throttled');
  });

  it('security #6: /assist/v1/join is throttled per address, and so is the per-minute budget', async () => {
    t.clock.offsetMs += 1100;
    const join = () => call(`${t.url}/assist/v1/join`, { json: { code: 'ABCDEFGH', password: 'nope', name: 'helper' } });
    // 5 calls so far this minute: 3 more pass the throttle (whatever the join answers), the 9th is refused.
    for (let i = 1; i <= 3; i++) assert.notEqual((await join()).status, 429, `join ${i}`);
    const over = await join();
    assert.equal(over.status, 429, over.text);
    assert.equal(errorBody(over)?.error_code, 'APIGW.0308');
    assert.equal(errorBody(over)?.error_msg, 'The throttling threshold has been reached: policy ip over ratelimit,limit:8,time:1 minute');
    t.clock.offsetMs += 61_000;
    assert.notEqual((await join()).status, 429, 'a minute later the address may call again');
  });
});

describe('security #6: per-address throttling behind a trusted proxy', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    t = await startTestGateway({ args: ['--ratelimit-per-address-per-second', '2', '--trust-proxy'] });
    f = t.gw.demo!.facts;
  });
  after(async () => t.close());

  it('security #6: with trust_proxy each X-Forwarded-For client has its own budget', async () => {
    const desktop = (xff: string) => call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-forwarded-for': `${xff}, 10.0.0.1` } });
    assert.equal((await desktop('198.51.100.1')).status, 401);
    assert.equal((await desktop('198.51.100.1')).status, 401);
    assert.equal((await desktop('198.51.100.1')).status, 429);
    assert.equal((await desktop('198.51.100.2')).status, 401, 'another client behind the same proxy');
  });
});

describe('security #6: refused unauthenticated calls in the audit trail', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    t = await startTestGateway();
    f = t.gw.demo!.facts;
  });
  after(async () => t.close());

  const action = 'ecs:cloudServers:vnc';
  const refused = () => call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
    json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'user-agent': 'attacker-chosen/6.6.6' },
  });

  it('security #6: 60 refused calls make one row with a count, about no project and without the user agent', async () => {
    for (let i = 0; i < 60; i++) assert.equal((await refused()).status, 401);
    await t.gw.audit.flush();
    const rows = await t.gw.store.audit.list({ action, result: 'failure' });
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const row = rows[0]!;
    assert.equal(row.count, 60);
    assert.equal(row.code, 'APIGW.0301');
    assert.equal(row.projectId, null);
    assert.equal(row.resourceId, null);
    assert.equal(row.userAgent, null);
    assert.equal(row.domainId, null);
    assert.equal(row.actorUserId, null);
    // The tenant's domain administrator does not see it in the domain's trail.
    const token = await demoDomainLogin(t);
    const trail = await call(`${t.url}/admin/v1/audit-events?action=${action}`, { headers: { 'x-auth-token': token } });
    assert.equal(trail.status, 200, trail.text);
    assert.equal(JSON.stringify(trail.body).includes('attacker-chosen'), false);
  });

  it('security #6: a new window starts a new row; authenticated calls are recorded one by one with their user agent', async () => {
    t.clock.offsetMs += REFUSAL_WINDOW_MS + 1000;
    assert.equal((await refused()).status, 401);
    assert.equal((await refused()).status, 401);
    await t.gw.audit.flush();
    const counts = (await t.gw.store.audit.list({ action, result: 'failure' })).map((e) => e.count ?? 1);
    assert.deepEqual(counts, [2, 60]);
    const token = await demoLogin(t);
    for (let i = 0; i < 2; i++) {
      const ok = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
        json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token, 'user-agent': 'my-sdk/1.0' },
      });
      assert.equal(ok.status, 200, ok.text);
    }
    await t.gw.audit.flush();
    const mine = await t.gw.store.audit.list({ action, result: 'success' });
    assert.equal(mine.length, 2);
    assert.ok(mine.every((e) => e.userAgent === 'my-sdk/1.0' && e.projectId === f.project_id && e.count === undefined));
  });

  it('security #6: a refused AK/SK call with a real AK stays visible to its domain (aggregated, no project, no user agent)', async () => {
    const path = `/v2/${f.project_id}/desktops/${f.desktop_id}`;
    for (let i = 0; i < 3; i++) {
      const r = await signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { path, projectId: f.project_id, signWith: 'wrong-secret', headers: { 'user-agent': 'attacker-chosen/6.6.6' } }, t.clock.offsetMs);
      assert.equal(r.status, 401, r.text);
    }
    await t.gw.audit.flush();
    const rows = await t.gw.store.audit.list({ action: 'workspace:desktops:get', result: 'failure' });
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0]!.count, 3);
    assert.equal(rows[0]!.actorAk, f.ak);
    assert.ok(rows[0]!.domainId, 'attributed to the AK owner\'s domain');
    assert.equal(rows[0]!.projectId, null);
    assert.equal(rows[0]!.userAgent, null);
  });
});

describe('security #6: retention of tokens and audit events', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    t = await startTestGateway({ args: ['--audit-retention-days', '2'] });
    f = t.gw.demo!.facts;
  });
  after(async () => t.close());

  it('security #6: expired IAM tokens and spent console tokens are deleted after the grace; live ones stay', async () => {
    const iamToken = await demoLogin(t);
    const mint = async () => {
      const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
        json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': iamToken },
      });
      assert.equal(r.status, 200, r.text);
      return sha256Hex(new URL((r.body as { remote_console: { url: string } }).remote_console.url).searchParams.get('token')!);
    };
    const used = await mint();
    assert.ok(await t.gw.store.consoleTokens.redeem(used, Date.now() + t.clock.offsetMs));
    const unused = await mint();
    await t.gw.audit.flush();

    // Within the grace: nothing goes.
    t.clock.offsetMs += TOKEN_GRACE_MS - 60_000;
    let r = await t.gw.retention.runOnce();
    assert.equal(r.consoleTokens, 0);
    assert.ok(await t.gw.store.consoleTokens.get(used));
    assert.ok(await t.gw.store.identity.getIamToken(sha256Hex(iamToken)), 'an IAM token is valid for a day');

    // Past the grace after their expiry (console tokens: 10 minutes; IAM token: 1 day): both kinds go.
    t.clock.offsetMs += t.gw.config.iamTokenTtlSeconds * 1000 + 120_000;
    const fresh = await mint().catch(() => null); // the old IAM token has expired by now
    assert.equal(fresh, null);
    const freshToken = await demoLogin(t);
    r = await t.gw.retention.runOnce();
    assert.ok(r.consoleTokens >= 2, JSON.stringify(r));
    assert.ok(r.iamTokens >= 1, JSON.stringify(r));
    assert.equal(await t.gw.store.consoleTokens.get(used), undefined);
    assert.equal(await t.gw.store.consoleTokens.get(unused), undefined);
    assert.equal(await t.gw.store.identity.getIamToken(sha256Hex(iamToken)), undefined);
    assert.ok(await t.gw.store.identity.getIamToken(sha256Hex(freshToken)), 'a live IAM token stays');
  });

  it('security #6: audit events older than audit.retention_days are deleted; newer ones stay', async () => {
    await t.gw.audit.flush();
    const before = await t.gw.store.audit.count({});
    assert.ok(before > 0);
    const newest = (await t.gw.store.audit.list({ limit: 1 }))[0]!;
    // Two days after the newest event, plus a minute: every event so far is due.
    t.clock.offsetMs += 2 * 86_400_000 + 60_000;
    const token = await demoLogin(t); // one new event, to be kept
    await t.gw.audit.flush();
    const r = await t.gw.retention.runOnce();
    assert.equal(r.auditEvents, before, JSON.stringify(r));
    const left = await t.gw.store.audit.list({});
    assert.equal(left.length, 1);
    assert.ok(left[0]!.at > newest.at);
    assert.ok(token);
  });
});

describe('security #6: audit.retention_days 0 keeps the trail', () => {
  let t: TestGateway;
  before(async () => { t = await startTestGateway({ args: ['--audit-retention-days', '0'] }); });
  after(async () => t.close());

  it('security #6: with 0 no audit event is deleted, however old', async () => {
    await demoLogin(t);
    await t.gw.audit.flush();
    const n = await t.gw.store.audit.count({});
    assert.ok(n > 0);
    t.clock.offsetMs += 3650 * 86_400_000;
    assert.equal((await t.gw.retention.runOnce()).auditEvents, 0);
    assert.equal(await t.gw.store.audit.count({}), n);
  });
});
