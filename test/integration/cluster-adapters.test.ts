/**
 * The scale-out parts one by one, against the real services (issue 7):
 *  - Redis throttling windows (store/redis/ratelimit.ts): the same window semantics as the in-memory
 *    store; concurrent hits from two connections (two nodes) never exceed the limit; a Redis that
 *    goes away falls back to per-node counting and comes back by itself;
 *  - Redis AK lockout state (store/redis/lockout.ts) with the AkLockout policy over two nodes, and
 *    its fallback to the database port;
 *  - the cluster buses: Redis pub/sub and PostgreSQL LISTEN/NOTIFY deliver to every node, the
 *    publisher included, keep deployments (prefixes, schemas) apart, drop malformed messages, and
 *    the PostgreSQL one reconnects after its connection is killed;
 *  - ClusterSessionControl (proxy/session-control.ts) between two nodes on one bus: ending and
 *    switching the mode of another node's session, answers and the timeout when nobody answers;
 *  - NodeMembership (domain/nodes.ts) on a store with a controlled clock: no reaping before a
 *    survivor has been healthy for a full timeout, a lost node's sessions closed, a node declared
 *    lost while alive comes back with its live sessions.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryRateLimitStore } from '../../src/api/ratelimit.js';
import { AkLockout, MemoryLockoutStore } from '../../src/domain/signing/lockout.js';
import { NodeMembership } from '../../src/domain/nodes.js';
import { ClusterSessionControl, LocalSessionControl } from '../../src/proxy/session-control.js';
import type { UpgradeHandler } from '../../src/proxy/upgrade.js';
import { LocalEventBus } from '../../src/store/memory/events.js';
import { PostgresEventBus } from '../../src/store/postgres/events.js';
import { openRedis, type RedisConnection } from '../../src/store/redis/connection.js';
import { RedisEventBus } from '../../src/store/redis/events.js';
import { RedisLockoutStore } from '../../src/store/redis/lockout.js';
import { RedisRateLimitStore } from '../../src/store/redis/ratelimit.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { ClusterMessage, ConsoleSessionRecord, EventBus, Store } from '../../src/store/types.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { createTestRedis, describeWith, TEST_REDIS_URL, type TestRedis } from '../helpers/redis.js';
import { sleep, until } from '../helpers/cluster.js';

const quiet = { info: () => {}, warn: () => {} };

/** Collects what a bus delivers. */
function collect(bus: EventBus): ClusterMessage[] {
  const got: ClusterMessage[] = [];
  bus.subscribe((m) => got.push(m));
  return got;
}

await describeWith('Redis adapters', { redis: true }, () => {
  let redis: TestRedis;
  let n1: RedisConnection;
  let n2: RedisConnection;
  before(async () => {
    redis = await createTestRedis();
    n1 = await openRedis(TEST_REDIS_URL, { prefix: redis.prefix });
    n2 = await openRedis(TEST_REDIS_URL, { prefix: redis.prefix });
  });
  after(async () => {
    await n1?.close();
    await n2?.close();
    await redis?.cleanup();
  });

  describe('throttling windows', () => {
    it('a window anchored at the first hit counts to the limit; refused hits do not count; peek does not count; reset clears', async () => {
      const s = new RedisRateLimitStore(n1, new MemoryRateLimitStore());
      const now = Date.now();
      const first = await s.hit('k1', 1000, 2, now);
      assert.equal(first.allowed, true);
      assert.equal(first.count, 1);
      assert.ok(first.resetAt > now && first.resetAt <= now + 1000);
      assert.deepEqual([(await s.hit('k1', 1000, 2, now)).count, (await s.hit('k1', 1000, 2, now)).allowed], [2, false]);
      assert.equal((await s.hit('k1', 1000, 2, now)).count, 2, 'a refused hit is not counted');
      await s.hit('k1', 60_000, 5, now);
      assert.equal((await s.peek('k1', 60_000, now)).count, 1, 'windows of different lengths are apart');
      assert.equal((await s.peek('k1', 60_000, now)).count, 1);
      assert.equal((await s.peek('nothing', 60_000, now)).count, 0);
      await sleep(1050);
      assert.deepEqual([(await s.hit('k1', 1000, 2, Date.now())).allowed, (await s.peek('k1', 1000, Date.now())).count], [true, 1], 'a new window after expiry');
      await s.reset('k1');
      assert.equal((await s.peek('k1', 60_000, Date.now())).count, 0);
      assert.equal((await s.peek('k1', 1000, Date.now())).count, 0);
      assert.equal((await s.hit('zero', 1000, 0, Date.now())).allowed, false, 'a zero limit refuses everything');
    });

    it('security #12: release takes back one hit of the current window, never below zero, on Redis and in memory', async () => {
      for (const s of [new RedisRateLimitStore(n1, new MemoryRateLimitStore()), new MemoryRateLimitStore()]) {
        const key = `rel-${randomUUID()}`;
        const now = Date.now();
        await s.hit(key, 60_000, 2, now);
        await s.hit(key, 60_000, 2, now);
        assert.equal((await s.hit(key, 60_000, 2, now)).allowed, false);
        await s.release(key, 60_000, now);
        assert.equal((await s.peek(key, 60_000, now)).count, 1);
        assert.equal((await s.hit(key, 60_000, 2, now)).allowed, true, 'the released hit is free again');
        await s.release(key, 60_000, now);
        await s.release(key, 60_000, now);
        await s.release(key, 60_000, now);
        assert.equal((await s.peek(key, 60_000, now)).count, 0, 'not below zero');
        await s.release(`none-${randomUUID()}`, 60_000, now);
      }
    });

    it('400 simultaneous hits from two nodes on a limit of 50: exactly 50 allowed', async () => {
      const s1 = new RedisRateLimitStore(n1, new MemoryRateLimitStore());
      const s2 = new RedisRateLimitStore(n2, new MemoryRateLimitStore());
      const key = `race-${randomUUID()}`;
      const res = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? s1 : s2).hit(key, 60_000, 50, Date.now())));
      assert.equal(res.filter((r) => r.allowed).length, 50);
      assert.equal(Math.max(...res.map((r) => r.count)), 50);
    });

    it('Redis unreachable: hits fall back to per-node counting, the outage is reported, Redis answers again by itself', async () => {
      const conn = await openRedis(TEST_REDIS_URL, { prefix: redis.prefix });
      const outages: Error[] = [];
      const fallback = new MemoryRateLimitStore();
      const s = new RedisRateLimitStore(conn, fallback, (err) => outages.push(err));
      try {
        const key = `fb-${randomUUID()}`;
        await s.hit(key, 60_000, 3, Date.now());
        conn.client.disconnect(true); // drops the socket; ioredis reconnects in the background
        const during = await s.hit(key, 60_000, 3, Date.now());
        assert.equal(during.allowed, true);
        assert.equal(fallback.size, 1, 'counted in the fallback');
        assert.equal(outages.length, 1);
        await until('Redis back', async () => (conn.client.status === 'ready' ? true : undefined), 5000);
        assert.equal((await s.hit(key, 60_000, 3, Date.now())).count, 2, 'the Redis window again');
      } finally {
        await conn.close();
      }
    });
  });

  describe('AK lockout state', () => {
    it('two nodes share one count: the lock comes after maxFailures in total and is seen by both', async () => {
      const a = new AkLockout(new RedisLockoutStore(n1, new MemoryLockoutStore()), Date.now, { maxFailures: 5, lockMs: 60_000 });
      const b = new AkLockout(new RedisLockoutStore(n2, new MemoryLockoutStore()), Date.now, { maxFailures: 5, lockMs: 60_000 });
      const ak = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
      for (let i = 0; i < 5; i++) assert.equal((await (i % 2 ? a : b).recordFailure(ak)).locked, false);
      assert.equal((await a.recordFailure(ak)).locked, true, 'the sixth failure over both nodes locks');
      assert.equal((await b.check(ak)).locked, true);
      const ttl = await redis.client.pttl(`${redis.prefix}aklock:${ak}`);
      assert.ok(ttl > 60_000, 'the key expires on its own, after the lock');
    });

    it('security #12 (AK/SK): 40 parallel failures over two nodes are each counted; the 6th locks; the lock is not extended', async () => {
      const a = new AkLockout(new RedisLockoutStore(n1, new MemoryLockoutStore()), Date.now, { maxFailures: 5, lockMs: 60_000 });
      const b = new AkLockout(new RedisLockoutStore(n2, new MemoryLockoutStore()), Date.now, { maxFailures: 5, lockMs: 60_000 });
      const ak = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
      const before = Date.now();
      const res = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).recordFailure(ak)));
      assert.equal(res.filter((r) => !r.locked).length, 5, 'exactly the first 5 failures leave the AK unlocked');
      const h = await redis.client.hgetall(`${redis.prefix}aklock:${ak}`);
      assert.equal(h.failures, '40', 'every failure was counted');
      const until = Number(h.locked_until);
      assert.ok(until >= before + 60_000 && until <= Date.now() + 60_000, 'locked once, for lockMs');
      for (const r of res) if (r.locked) assert.ok(r.retryAfterMs <= 60_000);
      assert.equal((await a.check(ak)).locked, true);
      assert.equal((await b.check(ak)).locked, true);
    });

    it('a clear deletes the key but not a running lock; Redis unreachable: the fallback port holds the state', async () => {
      const fallback = new MemoryLockoutStore();
      const conn = await openRedis(TEST_REDIS_URL, { prefix: redis.prefix });
      const port = new RedisLockoutStore(conn, fallback);
      const policy = { maxFailures: 2, lockMs: 60_000 };
      try {
        const ak = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
        const now = Date.now();
        assert.deepEqual(await port.addFailure(ak, now, policy), { failures: 1, lockedUntil: null });
        assert.deepEqual(await port.addFailure(ak, now, policy), { failures: 2, lockedUntil: null });
        assert.deepEqual(await port.get(ak), { failures: 2, lockedUntil: null });
        await port.clear(ak, now);
        assert.equal(await redis.client.exists(`${redis.prefix}aklock:${ak}`), 0);
        assert.equal(await port.get(ak), undefined);
        for (let i = 0; i < 3; i++) await port.addFailure(ak, now, policy);
        assert.deepEqual(await port.get(ak), { failures: 3, lockedUntil: now + 60_000 });
        await port.clear(ak, now + 59_999);
        assert.deepEqual(await port.get(ak), { failures: 3, lockedUntil: now + 60_000 }, 'a running lock is not cleared');
        assert.deepEqual(await port.addFailure(ak, now + 60_000, policy), { failures: 1, lockedUntil: null }, 'an expired lock restarts the count');
        await port.clear(ak, now + 60_000);
        assert.equal(await port.get(ak), undefined);
        conn.client.disconnect(true);
        for (let i = 0; i < 3; i++) await port.addFailure(ak, 123, policy);
        assert.deepEqual(fallback.get(ak), { failures: 3, lockedUntil: 60_123 });
        assert.deepEqual(await port.get(ak), { failures: 3, lockedUntil: 60_123 });
      } finally {
        await conn.close();
      }
    });
  });

  it('pub/sub bus: every node hears every message, its own too; another prefix hears nothing; malformed messages are dropped', async () => {
    const other = await openRedis(TEST_REDIS_URL, { prefix: `${redis.prefix}other:` });
    const bad: string[] = [];
    const b1 = await RedisEventBus.open(n1, (why) => bad.push(why));
    const b2 = await RedisEventBus.open(n2);
    const b3 = await RedisEventBus.open(other);
    try {
      const [g1, g2, g3] = [collect(b1), collect(b2), collect(b3)];
      await b2.publish({ type: 'hello', n: 1 });
      await redis.client.publish(`${redis.prefix}events`, 'not json');
      await redis.client.publish(`${redis.prefix}events`, '{"no":"type"}');
      await until('delivery', () => (g1.length >= 1 && g2.length >= 1 && bad.length >= 2 ? true : undefined), 3000);
      assert.deepEqual(g1, [{ type: 'hello', n: 1 }]);
      assert.deepEqual(g2, [{ type: 'hello', n: 1 }]);
      await sleep(100);
      assert.deepEqual(g3, []);
      await assert.rejects(b1.publish({ type: 'big', x: 'x'.repeat(10_000) }), RangeError);
    } finally {
      await Promise.all([b1.close(), b2.close(), b3.close()]);
      await other.close();
    }
  });

  it('pub/sub bus: after its connections are killed (Redis restarted, network cut) it re-subscribes by itself', async () => {
    const name = `ph-test-${randomBytes(4).toString('hex')}`;
    const conn = await openRedis(TEST_REDIS_URL, { prefix: redis.prefix, connectionName: name });
    const bus = await RedisEventBus.open(conn);
    try {
      const got = collect(bus);
      const list = String(await redis.client.call('CLIENT', 'LIST'));
      const ids = list.split('\n').filter((l) => l.includes(` name=${name} `)).map((l) => /id=(\d+)/.exec(l)?.[1]).filter((x): x is string => x !== undefined);
      assert.equal(ids.length, 2, 'the command and the subscriber connection');
      for (const id of ids) await redis.client.call('CLIENT', 'KILL', 'ID', id);
      await until('delivery after the reconnect', async () => {
        await n1.client.publish(`${redis.prefix}events`, JSON.stringify({ type: 'after-kill' }));
        return got.some((m) => m.type === 'after-kill') ? true : undefined;
      }, 10_000, 200);
      await until('publishing again', async () => { try { await bus.publish({ type: 'mine' }); return true; } catch { return undefined; } }, 10_000, 200);
    } finally {
      await bus.close();
      await conn.close();
    }
  });
});

await describeWith('PostgreSQL LISTEN/NOTIFY bus', { postgres: true }, () => {
  let schema: TestSchema;
  let schema2: TestSchema;
  before(async () => { schema = await createTestSchema(); schema2 = await createTestSchema(); });
  after(async () => { await schema?.drop(); await schema2?.drop(); });

  it('every node of the schema hears every message; another schema does not; after its connection is killed it reconnects', async () => {
    const app = `ph_bus_${randomBytes(4).toString('hex')}`;
    const withApp = (url: string) => { const u = new URL(url); u.searchParams.set('application_name', app); return u.toString(); };
    let reconnected = 0;
    const b1 = await PostgresEventBus.open(withApp(schema.url), { onReconnect: () => { reconnected++; } });
    const b2 = await PostgresEventBus.open(schema.url);
    const b3 = await PostgresEventBus.open(schema2.url);
    try {
      assert.equal(b1.channel, `porthole:${schema.name}`);
      const [g1, g2, g3] = [collect(b1), collect(b2), collect(b3)];
      await b2.publish({ type: 'hello', n: 1 });
      await until('delivery', () => (g1.length === 1 && g2.length === 1 ? true : undefined), 3000);
      await sleep(100);
      assert.deepEqual(g3, []);
      const killed = await schema.admin('select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = $1', [app]);
      assert.equal((killed.rows[0] as { n: number }).n, 1);
      await until('b1 reconnected', () => (reconnected > 0 ? true : undefined), 10_000);
      await b2.publish({ type: 'again' });
      await until('delivery after the reconnect', () => (g1.some((m) => m.type === 'again') ? true : undefined), 3000);
    } finally {
      await Promise.all([b1.close(), b2.close(), b3.close()]);
    }
  });
});

describe('ClusterSessionControl between two nodes on one bus', () => {
  /** A node's upgrade handler with fake live sessions. */
  function fakeNode(ids: string[]) {
    const closed: { id: string; code: number; reason: string }[] = [];
    const modes: { id: string; viewOnly: boolean }[] = [];
    const live = ids.map((id) => ({
      id, resourceId: `r-${id}`, close: (code: number, reason: string) => closed.push({ id, code, reason }),
      bytes: () => ({ toClient: 0, toBackend: 0 }), setViewOnly: (v: boolean) => modes.push({ id, viewOnly: v }),
    }));
    // Only what session control reads of a live session; the rest of LiveSession is not needed here.
    const upgrade: Pick<UpgradeHandler, 'live' | 'closeSessions'> = {
      live: () => live as unknown as ReturnType<UpgradeHandler['live']>,
      closeSessions: (code: number, reason: string, f: { resourceId?: string; sessionId?: string } = {}) => {
        let n = 0;
        for (const s of live) if ((!f.resourceId || s.resourceId === f.resourceId) && (!f.sessionId || s.id === f.sessionId)) { s.close(code, reason); n++; }
        return n;
      },
    };
    return { upgrade, closed, modes };
  }
  const rec = (id: string, nodeId: string) => ({ id, nodeId } as ConsoleSessionRecord);

  it('ends and switches another node\'s session and reports what happened; nobody answering is `elsewhere`', async () => {
    const bus = new LocalEventBus();
    const x = fakeNode(['s1']);
    const y = fakeNode(['s2']);
    const cx = new ClusterSessionControl(new LocalSessionControl(x.upgrade, 'nx'), x.upgrade, bus, 'nx', { ackTimeoutMs: 300 });
    const cy = new ClusterSessionControl(new LocalSessionControl(y.upgrade, 'ny'), y.upgrade, bus, 'ny', { ackTimeoutMs: 300 });
    cx.start();
    cy.start();
    try {
      assert.equal(await cx.endSession(rec('s2', 'ny'), 4006, 'killed'), 'ended');
      assert.deepEqual(y.closed, [{ id: 's2', code: 4006, reason: 'killed' }]);
      assert.equal(await cx.endSession(rec('nope', 'ny'), 4006, 'killed'), 'not_live');
      assert.equal(await cx.setViewOnly(rec('s2', 'ny'), true), 'applied');
      assert.deepEqual(y.modes, [{ id: 's2', viewOnly: true }]);
      assert.equal(await cx.endSession(rec('s1', 'nx'), 4006, 'killed'), 'ended', 'its own session, locally');
      const t0 = Date.now();
      assert.equal(await cx.endSession(rec('s9', 'gone-node'), 4006, 'killed'), 'elsewhere');
      assert.ok(Date.now() - t0 >= 250);
      assert.equal(await cy.endResource('r-s1', 4007, 'revoked'), 0, 'the count is this node\'s');
      await until('x ended the machine\'s session', () => (x.closed.some((c) => c.reason === 'revoked') ? true : undefined), 2000);
    } finally {
      cx.stop();
      cy.stop();
      await bus.close();
    }
  });
});

describe('NodeMembership on a store, with a controlled clock', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-nodes-'));
    store = await openSqliteStore(path.join(dir, 'store.db'));
  });
  after(async () => { await store?.close(); rmSync(dir, { recursive: true, force: true }); });

  it('reaps only after a full healthy timeout; closes the lost node\'s sessions; a node declared lost while alive comes back with its live sessions', async () => {
    let now = 1_800_000_000_000;
    const clock = { now: () => now };
    const opts = (id: string) => ({ nodeId: id, address: `${id}:1`, version: 't', heartbeatMs: 1000, nodeTimeoutMs: 3000 });
    const bLive = ['sess-b'];
    const a = new NodeMembership(store, clock, opts('a'), { liveSessionIds: () => [], draining: () => false, log: quiet });
    const b = new NodeMembership(store, clock, opts('b'), { liveSessionIds: () => bLive, draining: () => false, log: quiet });
    await a.register();
    await b.register();
    await store.sessions.start({
      id: 'sess-b', tokenHash: 'h', projectId: 'p', resourceId: 'r', resourceKind: 'desktop', userId: null, nodeId: 'b', sourceIp: null,
      startedAt: now, endedAt: null, bytesToClient: 0, bytesToBackend: 0, closeCode: null, closeReason: null,
    });
    // b stops heartbeating; a heartbeats every second.
    for (let i = 0; i < 3; i++) { now += 1000; await a.tick(); }
    assert.equal((await store.sessions.get('sess-b'))?.endedAt, null, 'b is late but within the timeout');
    now += 1500;
    await a.tick();
    assert.equal((await store.sessions.get('sess-b'))?.closeReason, 'node_lost');
    assert.equal((await store.nodes.list()).find((n) => n.id === 'b')?.lostAt, now);
    // b was only cut off: its next heartbeat registers it again and re-opens the session it still relays.
    await b.tick();
    assert.equal((await store.nodes.list()).find((n) => n.id === 'b')?.lostAt, null);
    assert.equal((await store.sessions.get('sess-b'))?.endedAt, null);
  });

  it('after an outage every heartbeat is stale: the first node back waits a full timeout before reaping', async () => {
    let now = 1_900_000_000_000;
    let down = false;
    const flaky: Store = new Proxy(store, {
      get(target, prop, recv) {
        if (prop === 'nodes' && down) return { ...target.nodes, heartbeat: async () => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }); } };
        return Reflect.get(target, prop, recv) as unknown;
      },
    });
    const clock = { now: () => now };
    const opts = (id: string) => ({ nodeId: id, address: `${id}:1`, version: 't', heartbeatMs: 1000, nodeTimeoutMs: 3000 });
    const c = new NodeMembership(flaky, clock, opts('c'), { liveSessionIds: () => [], draining: () => false, log: quiet });
    const d = new NodeMembership(store, clock, opts('d'), { liveSessionIds: () => [], draining: () => false, log: quiet });
    await c.register();
    await d.register();
    for (let i = 0; i < 5; i++) { now += 1000; await c.tick(); await d.tick(); }
    down = true; // both cut off for 10 s: modelled as d not running, c failing
    for (let i = 0; i < 10; i++) { now += 1000; await c.tick(); }
    down = false;
    now += 1000;
    await c.tick(); // c is back first: every heartbeat is stale, d's too
    assert.equal((await store.nodes.list()).find((n) => n.id === 'd')?.lostAt, null, 'not reaped at once');
    now += 500;
    await d.tick();
    for (let i = 0; i < 4; i++) { now += 1000; await c.tick(); await d.tick(); }
    assert.equal((await store.nodes.list()).find((n) => n.id === 'd')?.lostAt, null, 'd came back in time');
  });
});
