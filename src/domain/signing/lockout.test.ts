/**
 * AK lockout with a fake clock: the 6th consecutive failure locks for 5 minutes, a success resets,
 * and a locked AK is refused even with a good signature until the lock expires.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AkLockout, DEFAULT_LOCKOUT_POLICY, MemoryLockoutStore, type LockoutState, type LockoutStatePort } from './lockout.js';
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
    const calls = { get: 0, set: 0 };
    const port: LockoutStatePort = {
      get: (ak) => { calls.get++; return inner.get(ak); },
      set: (ak, st) => { calls.set++; return inner.set(ak, st); },
    };
    const lockout = new AkLockout(port, fakeClock().now);
    const clean = await lockout.inspect(AK);
    assert.deepEqual(clean.decision, { locked: false });
    await lockout.recordSuccess(AK, { state: clean.seen });
    assert.deepEqual(calls, { get: 1, set: 0 });
    await lockout.recordFailure(AK);
    calls.get = 0;
    calls.set = 0;
    const counted = await lockout.inspect(AK);
    assert.deepEqual(counted.seen, { failures: 1, lockedUntil: null });
    await lockout.recordSuccess(AK, { state: counted.seen });
    assert.deepEqual(calls, { get: 1, set: 1 });
    assert.equal((await lockout.inspect(AK)).seen?.failures ?? 0, 0, 'the count was cleared');
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
      set: async (ak, state) => void rows.set(ak, state),
    };
    const lockout = new AkLockout(port, fakeClock().now);
    for (let i = 0; i < 6; i++) await lockout.recordFailure(AK);
    assert.equal((await lockout.check(AK)).locked, true);
    assert.equal(rows.get(AK)?.failures, 6);
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
