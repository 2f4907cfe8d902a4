/**
 * The in-memory rate-limit windows: a window starts at a key's first hit and counts up to the limit,
 * full windows do not grow, windows of different lengths are separate, and memory stays bounded
 * (expired windows are swept on insertion, the oldest dropped beyond the cap).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryRateLimitStore } from './ratelimit.js';

describe('MemoryRateLimitStore', () => {
  it('counts hits up to the limit in a window anchored at the first hit', async () => {
    const s = new MemoryRateLimitStore();
    const t0 = 1_000_500;
    assert.deepEqual(await s.hit('k', 1000, 2, t0), { allowed: true, count: 1, resetAt: t0 + 1000 });
    assert.deepEqual(await s.hit('k', 1000, 2, t0 + 999), { allowed: true, count: 2, resetAt: t0 + 1000 });
    assert.deepEqual(await s.hit('k', 1000, 2, t0 + 999), { allowed: false, count: 2, resetAt: t0 + 1000 }, 'a refused hit is not counted');
    assert.deepEqual(await s.hit('k', 1000, 2, t0 + 1000), { allowed: true, count: 1, resetAt: t0 + 2000 }, 'a new window at the reset time');
  });

  it('keeps windows of different lengths and different keys apart; peek does not count; reset clears', async () => {
    const s = new MemoryRateLimitStore();
    await s.hit('k', 1000, 5, 0);
    await s.hit('k', 60_000, 5, 0);
    await s.hit('k', 60_000, 5, 10);
    assert.deepEqual(await s.peek('k', 1000, 10), { count: 1, resetAt: 1000 });
    assert.deepEqual(await s.peek('k', 60_000, 10), { count: 2, resetAt: 60_000 });
    assert.deepEqual(await s.peek('other', 60_000, 10), { count: 0, resetAt: 10 });
    assert.deepEqual(await s.peek('k', 60_000, 10), { count: 2, resetAt: 60_000 });
    await s.reset('k');
    assert.equal((await s.peek('k', 60_000, 10)).count, 0);
    assert.equal(s.size, 0);
  });

  it('a zero limit refuses everything', async () => {
    const s = new MemoryRateLimitStore();
    assert.equal((await s.hit('k', 1000, 0, 0)).allowed, false);
    assert.equal(s.size, 0);
  });

  it('never holds more than maxKeys windows per length, dropping the oldest', async () => {
    const s = new MemoryRateLimitStore(100);
    for (let i = 0; i < 1000; i++) await s.hit(`k${i}`, 60_000, 10, i);
    assert.equal(s.size, 100);
    assert.equal((await s.peek('k999', 60_000, 1000)).count, 1, 'the newest are kept');
    assert.equal((await s.peek('k0', 60_000, 1000)).count, 0, 'the oldest were dropped');
  });

  it('sweeps expired windows as new keys arrive, so idle keys do not accumulate', async () => {
    const s = new MemoryRateLimitStore(1_000_000);
    for (let i = 0; i < 500; i++) await s.hit(`old${i}`, 1000, 10, 0);
    assert.equal(s.size, 500);
    for (let i = 0; i < 20; i++) await s.hit(`new${i}`, 1000, 10, 5000 + i);
    assert.equal(s.size, 20, 'every expired window is gone after a few insertions');
  });
});
