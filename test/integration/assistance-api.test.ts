/**
 * The Workspace remote-assistance API against the reference (seeds/004, huawei-api.md D.5/E.6, the GO
 * SDK's CreateRemoteAssistanceResponse): shapes, status codes, Workspace error bodies, who may do
 * what (operator or the desktop's assigned user; viewers get nothing: GET holds the join password),
 * project isolation, throttling, and the audit trail.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  addDemoUser, assistUrl, auditActions, cancel, cast, create, respond, SEED_FIELDS, show, space, type Cast,
} from '../helpers/assistance.js';

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe('remote assistance API', () => {
  let t: TestGateway;
  let who: Cast;
  const started = Date.now();

  before(async () => {
    t = await startTestGateway();
    who = await cast(t);
  });
  after(async () => t?.close());

  it('GET before any share space: 404 WKS.0202 in the Workspace shape', async () => {
    const r = await show(t, who.helpdesk);
    assert.equal(r.status, 404);
    assert.deepEqual(Object.keys(r.body as object).sort(), ['error_code', 'error_msg']);
    assert.equal((r.body as { error_code: string }).error_code, 'WKS.0202');
    assert.ok(r.headers.get('x-request-id'));
  });

  it('POST by an operator: 200 with CreateRemoteAssistanceResponse, ADMIN_INITIATE, waiting for the user', async () => {
    const r = await create(t, who.helpdesk);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const body = r.body as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['desktop_id', 'initiator_type', 'share_space_id', 'status']);
    assert.equal(body.desktop_id, t.gw.demo!.facts.desktop_id);
    assert.equal(body.initiator_type, 'ADMIN_INITIATE');
    assert.equal(body.status, 'WAIT_USER_CONFIRM');
    assert.match(String(body.share_space_id), /^[0-9a-f]{32}$/);
  });

  it('GET: exactly the seed\'s nine fields, with their formats', async () => {
    const r = await show(t, who.helpdesk);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const s = r.body as Record<string, unknown>;
    assert.deepEqual(Object.keys(s).sort(), SEED_FIELDS);
    assert.match(String(s.invitation_code), /^[A-Z0-9]{8}$/);
    assert.match(String(s.create_time), TIME_RE);
    assert.ok(Math.abs(Date.parse(String(s.create_time)) - Date.now()) < 60_000);
    assert.equal(s.status, 'WAIT_USER_CONFIRM');
    assert.equal(s.failed_reason, null);
    assert.match(String(s.share_space_passwd), /^[A-Za-z0-9]{12}$/);
    assert.equal(s.private_share_link, `${t.url}/assist/join?code=${String(s.invitation_code)}`);
    assert.equal(s.internet_share_link, `${t.url}/assist/join?code=${String(s.invitation_code)}`);
    assert.match(String(s.share_space_name), /demo-desktop/);
    // The password is stored sealed, never in clear.
    const row = await t.gw.store.assistance.getSpace(String(s.share_space_id));
    assert.ok(row && !row.passwordSealed.includes(String(s.share_space_passwd)));
  });

  it('the desktop\'s assigned user may read it too; a viewer may not (it holds the join password)', async () => {
    assert.equal((await show(t, who.user)).status, 200);
    for (const r of [await show(t, who.viewer), await create(t, who.viewer), await cancel(t, who.viewer)]) {
      assert.equal(r.status, 403, r.text);
      assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0302');
    }
  });

  it('one active space per desktop: a second POST is 400 WKS.0001', async () => {
    const r = await create(t, who.helpdesk);
    assert.equal(r.status, 400);
    assert.equal((r.body as { error_code: string }).error_code, 'WKS.0001');
    assert.match((r.body as { error_msg: string }).error_msg, /already has a remote assistance/);
  });

  it('only the assigned user answers; accept moves to WAIT_USER_ACCESS, a second accept is refused', async () => {
    const byOperator = await respond(t, who.helpdesk, 'accept');
    assert.equal(byOperator.status, 403);
    const bad = await respond(t, who.user, 'approve');
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { error_code: string }).error_code, 'WKS.0001');
    const ok = await respond(t, who.user, 'accept');
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(Object.keys(ok.body as object).sort(), SEED_FIELDS);
    assert.equal((ok.body as { status: string }).status, 'WAIT_USER_ACCESS');
    const again = await respond(t, who.user, 'accept');
    assert.equal(again.status, 400);
    assert.equal((again.body as { error_code: string }).error_code, 'WKS.0001');
  });

  it('DELETE: 204 with no body, then GET shows CLOSE without a failed_reason, and a second DELETE is 404', async () => {
    const r = await cancel(t, who.helpdesk);
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    const s = await space(t, who.helpdesk);
    assert.equal(s.status, 'CLOSE');
    assert.equal(s.failed_reason, null);
    const again = await cancel(t, who.helpdesk);
    assert.equal(again.status, 404);
    assert.equal((again.body as { error_code: string }).error_code, 'WKS.0202');
  });

  it('POST by the desktop\'s own user: ENDUSER_INITIATE, which is their consent (WAIT_USER_ACCESS)', async () => {
    const r = await create(t, who.user);
    assert.equal(r.status, 200, r.text);
    assert.equal((r.body as { initiator_type: string }).initiator_type, 'ENDUSER_INITIATE');
    assert.equal((r.body as { status: string }).status, 'WAIT_USER_ACCESS');
    assert.equal((await cancel(t, who.user)).status, 204);
  });

  it('concurrent POSTs: exactly one share space is created', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => create(t, who.helpdesk)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 400, 400, 400, 400, 400]);
    assert.equal((await cancel(t, who.helpdesk)).status, 204);
  });

  it('isolation and errors: no credentials 401, another project 403, unknown desktop 404 WKS.0202, malformed desktop id 400 WKS.0001', async () => {
    const none = await call(assistUrl(t));
    assert.equal(none.status, 401);
    assert.equal((none.body as { error_code: string }).error_code, 'APIGW.0301');
    const otherProject = await call(assistUrl(t, t.gw.demo!.facts.desktop_id, randomBytes(16).toString('hex')), { headers: { 'x-auth-token': who.helpdesk } });
    assert.equal(otherProject.status, 403);
    for (const id of [randomUUID(), t.gw.demo!.facts.cloudserver_id]) {
      const r = await call(assistUrl(t, encodeURIComponent(id)), { headers: { 'x-auth-token': who.helpdesk } });
      assert.equal(r.status, 404, `${id}: ${r.text}`);
      assert.equal((r.body as { error_code: string }).error_code, 'WKS.0202');
    }
    // The seed documents 400 for a malformed request (seed: conformance, reliability issue item 2).
    const malformed = await call(assistUrl(t, encodeURIComponent('not*a*desktop')), { headers: { 'x-auth-token': who.helpdesk } });
    assert.equal(malformed.status, 400, malformed.text);
    assert.equal((malformed.body as { error_code: string }).error_code, 'WKS.0001');
  });

  it('every step is in the audit trail, with the API calls themselves', async () => {
    const actions = await auditActions(t, started);
    for (const a of ['assistance:create:success', 'assistance:accept:success', 'assistance:close:success']) assert.ok(actions.includes(a), `${a} in ${actions.join(', ')}`);
    await t.gw.audit.flush();
    const api = await t.gw.store.audit.list({ action: 'workspace:desktops:getRemoteAssistance', since: started, limit: 100 });
    assert.ok(api.some((e) => e.result === 'failure' && e.actorName === 'auditor'), 'the refused viewer is recorded');
  });
});

describe('remote assistance API throttling', () => {
  let t: TestGateway;
  before(async () => { t = await startTestGateway({ args: ['--ratelimit-per-second', '3'] }); });
  after(async () => t?.close());

  it('answers 429 APIGW.0308 with Retry-After past the per-second limit, like the other APIs', async () => {
    const helpdesk = await addDemoUser(t, 'helpdesk', 'operator');
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 5; i++) { last = await show(t, helpdesk); statuses.push(last.status); }
    assert.ok(statuses.includes(429), statuses.join(','));
    const r = last!;
    assert.equal(r.status, 429);
    assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0308');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  });
});
