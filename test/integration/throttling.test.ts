/**
 * Throttling and brute-force protection against the real gateway, with small configured limits and
 * the gateway's clock shifted instead of sleeping:
 *  - API calls per credential per API per second and per minute → exactly the extra calls get 429
 *    (APIGW.0308, iMetal.0005 on CloudDC) with Retry-After, then calls succeed again;
 *  - AK lockout: more than 5 consecutive bad signatures lock the AK for 5 minutes, even for good ones;
 *    a burst of parallel bad signatures counts every one (embedded SQLite, and PostgreSQL + Redis);
 *  - password logins: too many failures per user or per source address → 429 until the window ends.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { call, demoLogin, passwordAuth, startTestGateway, type HttpResult, type TestGateway } from '../helpers/gateway.js';
import { signedCall, type AkSk } from '../helpers/aksk.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { createTestRedis, describeWith, TEST_REDIS_URL, type TestRedis } from '../helpers/redis.js';

const errorCode = (r: HttpResult) => (r.body as { error_code?: string } | undefined)?.error_code;
const errorMsg = (r: HttpResult) => (r.body as { error_msg?: string } | undefined)?.error_msg;

describe('API throttling (3 per second, 5 per minute)', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let token: string;

  before(async () => {
    t = await startTestGateway({ args: ['--ratelimit-per-second', '3', '--ratelimit-per-minute', '5'] });
    f = t.gw.demo!.facts;
    token = await demoLogin(t);
  });
  after(async () => t.close());

  const detail = () => call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': token } });
  const physical = () => call(`${t.url}/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address`, { headers: { 'x-auth-token': token } });

  it('the 4th call in a second gets 429 APIGW.0308 with Retry-After; other APIs and other credentials are counted apart', async () => {
    for (let i = 1; i <= 3; i++) assert.equal((await detail()).status, 200, `call ${i}`);
    const over = await detail();
    assert.equal(over.status, 429, over.text);
    assert.equal(errorCode(over), 'APIGW.0308');
    assert.equal(errorMsg(over), 'The throttling threshold has been reached: policy user over ratelimit,limit:3,time:1 second');
    assert.equal(over.headers.get('retry-after'), '1');
    assert.match(over.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
    assert.equal((await physical()).status, 200, 'another API of the same user');
    const ak = await signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id }, t.clock.offsetMs);
    assert.equal(ak.status, 200, 'the same API with another credential (the AK)');
  });

  it('a second later 2 more pass, the 6th in the minute gets 429 "1 minute", and a minute later calls pass again', async () => {
    t.clock.offsetMs += 1100;
    assert.equal((await detail()).status, 200);
    assert.equal((await detail()).status, 200);
    const over = await detail();
    assert.equal(over.status, 429, over.text);
    assert.equal(errorMsg(over), 'The throttling threshold has been reached: policy user over ratelimit,limit:5,time:1 minute');
    const retry = Number(over.headers.get('retry-after'));
    assert.ok(retry >= 55 && retry <= 60, `Retry-After ${retry}`);
    t.clock.offsetMs += 60_000;
    assert.equal((await detail()).status, 200);
  });

  it('a burst of 6 concurrent calls: exactly 3 pass', async () => {
    t.clock.offsetMs += 61_000;
    const results = await Promise.all(Array.from({ length: 6 }, () => detail()));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 429, 429, 429]);
  });

  it('CloudDC answers 429 iMetal.0005 in its own shape', async () => {
    t.clock.offsetMs += 61_000;
    for (let i = 1; i <= 3; i++) assert.equal((await physical()).status, 200, `call ${i}`);
    const over = await physical();
    assert.equal(over.status, 429, over.text);
    assert.deepEqual(Object.keys(over.body as object).sort(), ['error_code', 'error_msg', 'request_id']);
    assert.equal(errorCode(over), 'iMetal.0005');
    assert.equal(errorMsg(over), 'Too many requests: policy user over ratelimit,limit:3,time:1 second');
    assert.equal(over.headers.get('retry-after'), '1');
  });

  it('throttled calls are in the audit trail with their code', async () => {
    await t.gw.audit.flush();
    const events = await t.gw.store.audit.list({ action: 'workspace:desktops:get', result: 'failure' });
    assert.ok(events.filter((e) => e.code === 'APIGW.0308').length >= 5);
  });
});

describe('AK lockout and login throttling', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let key: AkSk;
  const MIN = 60_000;

  before(async () => {
    t = await startTestGateway({
      args: ['--iam-login-failures-per-user', '3', '--iam-login-failures-per-address', '6', '--iam-login-failure-window-seconds', '300'],
    });
    f = t.gw.demo!.facts;
    key = { ak: f.ak!, sk: f.sk! };
  });
  after(async () => t.close());

  const akCall = (k: AkSk, signWith?: string) =>
    signedCall(t.url, k, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id, ...(signWith ? { signWith } : {}) }, t.clock.offsetMs);
  const badSignature = () => akCall(key, 'W'.repeat(40));

  it('5 bad signatures do not lock; a good one resets the count', async () => {
    for (let i = 1; i <= 5; i++) {
      const r = await badSignature();
      assert.equal(r.status, 401);
      assert.equal(errorMsg(r), 'Incorrect IAM authentication information: verify aksk signature fail', `failure ${i}`);
    }
    assert.equal((await akCall(key)).status, 200);
    assert.equal(await t.gw.store.accessKeys.getLockout(key.ak), undefined, 'the count is gone after a success');
  });

  it('6 bad signatures lock the AK for 5 minutes: a good signature is refused until the lock expires', async () => {
    for (let i = 1; i <= 6; i++) assert.equal((await badSignature()).status, 401, `failure ${i}`);
    const locked = await akCall(key);
    assert.equal(locked.status, 401, locked.text);
    assert.equal(errorCode(locked), 'APIGW.0301');
    assert.equal(errorMsg(locked), 'Incorrect IAM authentication information: AK access failed to reach the limit,forbidden.');
    assert.equal(locked.headers.get('retry-after'), '300');
    assert.ok(!locked.text.includes(key.ak));
    const state = await t.gw.store.accessKeys.getLockout(key.ak);
    assert.equal(state?.failures, 6);

    t.clock.offsetMs += 4 * MIN;
    const stillLocked = await akCall(key);
    assert.equal(errorMsg(stillLocked), 'Incorrect IAM authentication information: AK access failed to reach the limit,forbidden.');
    assert.equal(stillLocked.headers.get('retry-after'), '60');

    t.clock.offsetMs += MIN + 1000;
    assert.equal((await akCall(key)).status, 200, 'the lock has expired');
  });

  it('the lock is per AK: another key of the same user keeps working', async () => {
    const token = await demoLogin(t);
    const me = await call(`${t.url}/v3.0/OS-CREDENTIAL/credentials`, { headers: { 'x-auth-token': token } });
    const userId = (me.body as { credentials: { user_id: string }[] }).credentials[0]!.user_id;
    const created = await call(`${t.url}/v3.0/OS-CREDENTIAL/credentials`, { json: { credential: { user_id: userId } }, headers: { 'x-auth-token': token } });
    assert.equal(created.status, 201, created.text);
    const c = (created.body as { credential: { access: string; secret: string } }).credential;
    for (let i = 1; i <= 6; i++) await badSignature();
    assert.equal((await akCall(key)).status, 401);
    assert.equal((await akCall({ ak: c.access, sk: c.secret })).status, 200);
    t.clock.offsetMs += 5 * MIN + 1000;
  });

  const login = (user: string, password: string) => call(`${t.url}/v3/auth/tokens`, { json: passwordAuth(user, password, f.domain, { project: { id: f.project_id } }) });

  it('3 failed logins for a user → the 4th is refused with 429 even with the right password, until the window ends', async () => {
    t.clock.offsetMs += 10 * MIN;
    for (let i = 1; i <= 3; i++) {
      const r = await login(f.user, `wrong-${i}`);
      assert.equal(r.status, 401);
      assert.equal(errorCode(r), 'IAM.0101');
    }
    const r = await login(f.user, f.password);
    assert.equal(r.status, 429, r.text);
    assert.equal(errorCode(r), 'APIGW.0308');
    assert.match(errorMsg(r) ?? '', /too many failed logins for this user/);
    assert.equal(r.headers.get('x-subject-token'), null);
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry > 290 && retry <= 300, `Retry-After ${retry}`);
    t.clock.offsetMs += 301_000;
    assert.equal((await login(f.user, f.password)).status, 201);
  });

  it('a successful login clears the user count', async () => {
    t.clock.offsetMs += 10 * MIN;
    for (let i = 0; i < 2; i++) assert.equal((await login(f.user, 'wrong')).status, 401);
    assert.equal((await login(f.user, f.password)).status, 201);
    for (let i = 0; i < 2; i++) assert.equal((await login(f.user, 'wrong')).status, 401);
    assert.equal((await login(f.user, f.password)).status, 201);
  });

  it('security #12: 20 parallel wrong logins for one user with a limit of 10 → at most 10 are 401, the rest 429', async () => {
    t.clock.offsetMs += 10 * MIN;
    // Its own gateway: a per-user limit of 10 and an address limit that does not interfere.
    const g = await startTestGateway({ args: ['--iam-login-failures-per-user', '10', '--iam-login-failures-per-address', '100'] });
    try {
      const d = g.gw.demo!.facts;
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        call(`${g.url}/v3/auth/tokens`, { json: passwordAuth(d.user, `wrong-${i}`, d.domain, { project: { id: d.project_id } }) }).then((r) => r.status)));
      const count = (s: number) => statuses.filter((x) => x === s).length;
      assert.ok(count(401) <= 10, `401s: ${count(401)} (statuses ${statuses.join(',')})`);
      assert.equal(count(401) + count(429), 20, `statuses ${statuses.join(',')}`);
      const right = await call(`${g.url}/v3/auth/tokens`, { json: passwordAuth(d.user, d.password, d.domain, { project: { id: d.project_id } }) });
      assert.equal(right.status, 429, 'the user is locked for the window');
    } finally {
      await g.close();
    }
  });

  it('security #12: parallel wrong logins from one address with a limit of 6 → at most 6 are 401', async () => {
    t.clock.offsetMs += 10 * MIN;
    const statuses = await Promise.all(Array.from({ length: 15 }, (_, i) => login(`nobody-p${i}`, 'guess').then((r) => r.status)));
    assert.ok(statuses.filter((x) => x === 401).length <= 6, `statuses ${statuses.join(',')}`);
    assert.equal(statuses.filter((x) => x === 429).length + statuses.filter((x) => x === 401).length, 15);
  });

  it('security #12: successful logins do not use up the address\'s budget', async () => {
    t.clock.offsetMs += 10 * MIN;
    for (let i = 0; i < 8; i++) assert.equal((await login(f.user, f.password)).status, 201, `login ${i + 1}`);
    for (let i = 1; i <= 5; i++) assert.equal((await login(`nobody-s${i}`, 'guess')).status, 401, `failure ${i}`);
    assert.equal((await login(f.user, f.password)).status, 201, 'five failures are under the address limit of 6');
  });

  it('6 failed logins from one address, for any names, → every login from it gets 429 until the window ends', async () => {
    t.clock.offsetMs += 10 * MIN;
    for (let i = 1; i <= 6; i++) assert.equal((await login(`nobody-${i}`, 'guess')).status, 401);
    const r = await login(f.user, f.password);
    assert.equal(r.status, 429, r.text);
    assert.match(errorMsg(r) ?? '', /too many failed logins for this address/);
    t.clock.offsetMs += 301_000;
    assert.equal((await login(f.user, f.password)).status, 201);
  });
});

/**
 * 20 bad signatures sent at once for a real AK, after 10 good ones (so the gateway's caches and
 * connections are warm, as on a busy gateway): none finds the AK locked before the first is counted,
 * so many are verified, and each must be counted: the AK is locked afterwards, and a correctly
 * signed call is refused. `countOf` reads the stored count.
 */
async function parallelBadSignaturesLock(t: TestGateway, countOf: () => Promise<number | undefined>): Promise<void> {
  const f = t.gw.demo!.facts;
  const key = { ak: f.ak!, sk: f.sk! };
  const akCall = (signWith?: string) =>
    signedCall(t.url, key, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id, ...(signWith ? { signWith } : {}) }, t.clock.offsetMs);
  assert.deepEqual((await Promise.all(Array.from({ length: 10 }, () => akCall()))).map((r) => r.status), Array.from({ length: 10 }, () => 200));
  const burst = await Promise.all(Array.from({ length: 20 }, () => akCall('W'.repeat(40))));
  assert.deepEqual(burst.map((r) => r.status), Array.from({ length: 20 }, () => 401));
  for (const r of burst) assert.equal(errorCode(r), 'APIGW.0301');
  const verified = burst.filter((r) => errorMsg(r) === 'Incorrect IAM authentication information: verify aksk signature fail').length;
  const good = await akCall();
  assert.equal(good.status, 401, `a good signature after ${verified} verified bad ones was accepted`);
  assert.equal(errorMsg(good), 'Incorrect IAM authentication information: AK access failed to reach the limit,forbidden.');
  assert.equal(good.headers.get('retry-after'), '300');
  assert.equal(await countOf(), verified, 'every verified failure was counted');
}

describe('security #12 (AK/SK): parallel bad signatures are each counted', () => {
  it('embedded SQLite: 20 parallel bad signatures of a real AK lock it; a good signature is then refused', async () => {
    const t = await startTestGateway();
    try {
      await parallelBadSignaturesLock(t, async () => (await t.gw.store.accessKeys.getLockout(t.gw.demo!.facts.ak!))?.failures);
    } finally {
      await t.close();
    }
  });
});

await describeWith('security #12 (AK/SK): parallel bad signatures on PostgreSQL, with and without Redis', { postgres: true, redis: true }, () => {
  let schema: TestSchema;
  let redis: TestRedis;
  before(async () => {
    schema = await createTestSchema();
    redis = await createTestRedis();
  });
  after(async () => {
    await redis?.cleanup();
    await schema?.drop();
  });

  it('PostgreSQL: 20 parallel bad signatures of a real AK lock it (count in ak_lockouts); a good signature is then refused', async () => {
    const t = await startTestGateway({ env: { PORTHOLE_DATABASE_URL: schema.url, PORTHOLE_MASTER_KEY: randomBytes(32).toString('hex') } });
    try {
      await parallelBadSignaturesLock(t, async () => (await t.gw.store.accessKeys.getLockout(t.gw.demo!.facts.ak!))?.failures);
    } finally {
      await t.close();
    }
  });

  it('PostgreSQL + Redis: 20 parallel bad signatures of a real AK lock it (count in Redis); a good signature is then refused', async () => {
    const other = await createTestSchema();
    const t = await startTestGateway({
      env: { PORTHOLE_DATABASE_URL: other.url, PORTHOLE_MASTER_KEY: randomBytes(32).toString('hex'), PORTHOLE_REDIS_URL: TEST_REDIS_URL, PORTHOLE_REDIS_KEY_PREFIX: redis.prefix },
    });
    try {
      await parallelBadSignaturesLock(t, async () => {
        const n = await redis.client.hget(`${redis.prefix}aklock:${t.gw.demo!.facts.ak!}`, 'failures');
        return n === null ? undefined : Number(n);
      });
    } finally {
      await t.close();
      await other.drop();
    }
  });
});
