/**
 * AK lockout with a fake clock: the 6th consecutive failure locks for 5 minutes, a success resets,
 * and a locked AK is refused even with a good signature until the lock expires.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { afterFailure, AkLockout, DEFAULT_LOCKOUT_POLICY, MemoryLockoutStore, type LockoutState, type LockoutStatePort } from './lockout.js';
import { parseAuthorization, signRequest, verifySignature, type WireRequest } from './sdk-hmac.js';

function fakeClock(start = Date.UTC(2026, 2, 1, 12)): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const AK = 'LOCKAK';
const SK = 'lock-secret';
const MIN = 60_000;

describe('AkLockout', () => {
  it('defaults to APIG: more than 5 failures lock for 5 minutes', () => {
    assert.deepEqual({ ...DEFAULT_LOCKOUT_POLICY }, { maxFailures: 5, lockMs: 5 * MIN });
  });

  it('5 failures do not lock, the 6th does', async () => {
    const clock = fakeClock();
    const lockout = new AkLockout(new MemoryLockoutStore(), clock.now);
    for (let i = 1; i <= 5; i++) {
      assert.deepEqual(await lockout.recordFailure(AK), { locked: false }, `failure ${i}`);
      assert.deepEqual(await lockout.check(AK), { locked: false });
    }
    assert.deepEqual(await lockout.recordFailure(AK), { locked: true, retryAfterMs: 5 * MIN });
    clock.advance(MIN);
    assert.deepEqual(await lockout.check(AK), { locked: true, retryAfterMs: 4 * MIN });
    assert.deepEqual(await lockout.check('OTHERAK'), { locked: false }, 'other AKs are unaffected');
  });

  it('a success resets the count', async () => {
    const lockout = new AkLockout(new MemoryLockoutStore(), fakeClock().now);
    for (let i = 0; i < 5; i++) await lockout.recordFailure(AK);
    await lockout.recordSuccess(AK);
    for (let i = 0; i < 5; i++) assert.deepEqual(await lockout.recordFailure(AK), { locked: false });
    assert.equal((await lockout.recordFailure(AK)).locked, true);
  });

  it('inspect() hands its reading to recordSuccess: a clean key costs one read and no write; a counted one one write', async () => {
    const inner = new MemoryLockoutStore();
    const calls = { get: 0, write: 0 };
    const port: LockoutStatePort = {
      get: (ak) => { calls.get++; return inner.get(ak); },
      addFailure: (ak, now, policy) => { calls.write++; return inner.addFailure(ak, now, policy); },
      clear: (ak, now) => { calls.write++; inner.clear(ak, now); },
    };
    const lockout = new AkLockout(port, fakeClock().now);
    const clean = await lockout.inspect(AK);
    assert.deepEqual(clean.decision, { locked: false });
    await lockout.recordSuccess(AK, { state: clean.seen });
    assert.deepEqual(calls, { get: 1, write: 0 });
    await lockout.recordFailure(AK);
    calls.get = 0;
    calls.write = 0;
    const counted = await lockout.inspect(AK);
    assert.deepEqual(counted.seen, { failures: 1, lockedUntil: null });
    await lockout.recordSuccess(AK, { state: counted.seen });
    assert.deepEqual(calls, { get: 1, write: 1 });
    assert.equal((await lockout.inspect(AK)).seen?.failures ?? 0, 0, 'the count was cleared');
  });

  it('security #12 (AK/SK): a success checked before a parallel lock was set does not lift it', async () => {
    const clock = fakeClock();
    const lockout = new AkLockout(new MemoryLockoutStore(), clock.now);
    await lockout.recordFailure(AK);
    const seen = await lockout.inspect(AK); // this request's check: 1 failure, not locked
    for (let i = 0; i < 5; i++) await lockout.recordFailure(AK); // others lock it meanwhile
    await lockout.recordSuccess(AK, { state: seen.seen });
    assert.deepEqual(await lockout.check(AK), { locked: true, retryAfterMs: 5 * MIN });
    clock.advance(5 * MIN);
    await lockout.recordSuccess(AK);
    assert.equal((await lockout.inspect(AK)).seen, undefined, 'an expired lock is cleared by a success');
  });

  it('a locked AK is refused even with a good signature until expiry, then accepted', async () => {
    const clock = fakeClock();
    const lockout = new AkLockout(new MemoryLockoutStore(), clock.now);
    const base: WireRequest = { method: 'GET', rawPath: '/v1/p/cloudservers', rawQuery: '', headers: { host: 'gw:8443' }, body: new Uint8Array(0) };

    /** What the API layer does: lockout first, then the signature, then record the outcome. */
    async function authenticate(sk: string): Promise<'ok' | 'locked' | 'bad'> {
      const now = new Date(clock.now());
      const signed = signRequest(base, { accessKey: AK, secretKey: sk, now });
      const req = { ...base, headers: { ...base.headers, 'x-sdk-date': signed['X-Sdk-Date'] } };
      const parsed = parseAuthorization(signed.Authorization);
      assert.ok(parsed.ok);
      if ((await lockout.check(parsed.accessKey)).locked) return 'locked';
      const result = verifySignature(req, parsed, SK, now);
      if (result.ok) {
        await lockout.recordSuccess(parsed.accessKey);
        return 'ok';
      }
      await lockout.recordFailure(parsed.accessKey);
      return 'bad';
    }

    assert.equal(await authenticate(SK), 'ok');
    for (let i = 0; i < 6; i++) assert.equal(await authenticate('wrong'), 'bad');
    assert.equal(await authenticate(SK), 'locked');
    clock.advance(5 * MIN - 1);
    assert.equal(await authenticate(SK), 'locked', 'one ms before expiry');
    clock.advance(1);
    assert.equal(await authenticate(SK), 'ok', 'at expiry');
  });

  it('failures while locked do not extend the lock; an expired lock starts a fresh count', async () => {
    const clock = fakeClock();
    const lockout = new AkLockout(new MemoryLockoutStore(), clock.now);
    for (let i = 0; i < 6; i++) await lockout.recordFailure(AK);
    clock.advance(4 * MIN);
    assert.deepEqual(await lockout.recordFailure(AK), { locked: true, retryAfterMs: MIN });
    clock.advance(MIN);
    assert.deepEqual(await lockout.recordFailure(AK), { locked: false }, 'first failure after expiry is failure 1, not 7');
    for (let i = 0; i < 4; i++) await lockout.recordFailure(AK);
    assert.equal((await lockout.recordFailure(AK)).locked, true);
  });

  it('honours a configured policy', async () => {
    const clock = fakeClock();
    const lockout = new AkLockout(new MemoryLockoutStore(), clock.now, { maxFailures: 2, lockMs: 1000 });
    await lockout.recordFailure(AK);
    await lockout.recordFailure(AK);
    assert.deepEqual(await lockout.recordFailure(AK), { locked: true, retryAfterMs: 1000 });
    assert.throws(() => new AkLockout(new MemoryLockoutStore(), clock.now, { lockMs: 0 }), RangeError);
  });

  it('works over an async port (database / Redis style)', async () => {
    const rows = new Map<string, LockoutState>();
    const port: LockoutStatePort = {
      get: async (ak) => rows.get(ak),
      addFailure: async (ak, now, policy) => { const next = afterFailure(rows.get(ak), now, policy); rows.set(ak, next); return next; },
      clear: async (ak) => void rows.delete(ak),
    };
    const lockout = new AkLockout(port, fakeClock().now);
    for (let i = 0; i < 6; i++) await lockout.recordFailure(AK);
    assert.equal((await lockout.check(AK)).locked, true);
    assert.equal(rows.get(AK)?.failures, 6);
  });

  it('security #12 (AK/SK): parallel failures are each counted; exactly the 6th locks; later ones count on without extending it', async () => {
    const clock = fakeClock();
    const store = new MemoryLockoutStore();
    const lockout = new AkLockout(store, clock.now);
    const res = await Promise.all(Array.from({ length: 20 }, () => lockout.recordFailure(AK)));
    assert.deepEqual(res.map((r) => r.locked), [...Array.from({ length: 5 }, () => false), ...Array.from({ length: 15 }, () => true)]);
    assert.deepEqual(store.get(AK), { failures: 20, lockedUntil: clock.now() + 5 * MIN });
  });
});

describe('afterFailure (the rule every port applies atomically)', () => {
  const policy = { maxFailures: 2, lockMs: 1000 };
  it('counts, locks above the limit, keeps a running lock, restarts after an expired one', () => {
    assert.deepEqual(afterFailure(undefined, 10, policy), { failures: 1, lockedUntil: null });
    assert.deepEqual(afterFailure({ failures: 2, lockedUntil: null }, 10, policy), { failures: 3, lockedUntil: 1010 });
    assert.deepEqual(afterFailure({ failures: 3, lockedUntil: 1010 }, 500, policy), { failures: 4, lockedUntil: 1010 }, 'not extended');
    assert.deepEqual(afterFailure({ failures: 4, lockedUntil: 1010 }, 1010, policy), { failures: 1, lockedUntil: null }, 'expired at lockedUntil');
    assert.deepEqual(afterFailure(undefined, 10, { maxFailures: 0, lockMs: 5 }), { failures: 1, lockedUntil: 15 });
  });
});

describe('MemoryLockoutStore', () => {
  it('drops clean states and stays bounded', () => {
    const store = new MemoryLockoutStore(3);
    store.set('a', { failures: 1, lockedUntil: null });
    store.set('a', { failures: 0, lockedUntil: null });
    assert.equal(store.size, 0);
    for (const ak of ['a', 'b', 'c', 'd']) store.set(ak, { failures: 1, lockedUntil: null });
    assert.equal(store.size, 3);
    assert.equal(store.get('a'), undefined, 'the oldest entry was dropped');
    assert.deepEqual(store.get('d'), { failures: 1, lockedUntil: null });
  });
});
