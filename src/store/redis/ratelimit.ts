/**
 * The throttling port (api/ratelimit.ts `RateLimitStore`) over Redis, so every node counts into the
 * same windows: a credential allowed N calls per second gets N in total, not N per node.
 *
 * One Lua script per hit makes "read the window, refuse or count" atomic on the Redis server: the
 * first hit creates the key with the window as its PX expiry (the window is anchored at the first
 * hit, as in the in-memory store), later hits INCR it while it is below the limit. Redis's own clock
 * ends windows; `resetAt` is the caller's `now` plus the key's remaining PTTL.
 *
 * When Redis is unreachable the calls fall back to a per-node store (normally MemoryRateLimitStore):
 * throttling keeps working, counted per node, until Redis answers again. The outage is logged once
 * per minute at most.
 */
import type { Redis } from 'ioredis';
import type { RateLimitStore, WindowState } from '../../api/ratelimit.js';
import type { RedisConnection } from './connection.js';

/** KEYS[1] window key; ARGV[1] window ms; ARGV[2] limit → {allowed 0|1, count, pttl}. */
const HIT_SCRIPT = `
local windowMs = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local count = redis.call('GET', KEYS[1])
if not count then
  if limit < 1 then return {0, 0, windowMs} end
  redis.call('SET', KEYS[1], 1, 'PX', windowMs)
  return {1, 1, windowMs}
end
count = tonumber(count)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], windowMs)
  ttl = windowMs
end
if count >= limit then return {0, count, ttl} end
count = redis.call('INCR', KEYS[1])
return {1, count, ttl}
`;

/** KEYS[1] window key → {count, pttl} (0, 0 when there is no window). */
const PEEK_SCRIPT = `
local count = redis.call('GET', KEYS[1])
if not count then return {0, 0} end
return {tonumber(count), redis.call('PTTL', KEYS[1])}
`;

/** KEYS[1] window key: one hit taken back, if the window still holds any (its expiry is kept). */
const RELEASE_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
`;

type WithScripts = Redis & {
  portholeRelease(key: string): Promise<number>;
  portholeHit(key: string, windowMs: number, limit: number): Promise<[number, number, number]>;
  portholePeek(key: string): Promise<[number, number]>;
};

/** How often a Redis outage is logged while calls fall back. */
const OUTAGE_LOG_INTERVAL_MS = 60_000;

export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: WithScripts;
  private lastOutageLog = 0;
  /** Window lengths seen, for reset(). */
  private readonly windows = new Set<number>();

  constructor(
    private readonly conn: RedisConnection,
    private readonly fallback: RateLimitStore,
    private readonly onOutage: (err: Error) => void = () => {},
  ) {
    const client = conn.client;
    if (!('portholeHit' in client)) {
      client.defineCommand('portholeHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
      client.defineCommand('portholePeek', { numberOfKeys: 1, lua: PEEK_SCRIPT });
      client.defineCommand('portholeRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    }
    this.redis = client as WithScripts;
  }

  private key(key: string, windowMs: number): string {
    this.windows.add(windowMs);
    // The window length is part of the key: one credential has a 1 s and a 60 s window.
    return `${this.conn.prefix}rl:${windowMs}:${key}`;
  }

  private outage(err: unknown): void {
    const now = Date.now();
    if (now - this.lastOutageLog < OUTAGE_LOG_INTERVAL_MS) return;
    this.lastOutageLog = now;
    this.onOutage(err instanceof Error ? err : new Error(String(err)));
  }

  async hit(key: string, windowMs: number, limit: number, now: number): Promise<WindowState> {
    try {
      const [allowed, count, ttl] = await this.redis.portholeHit(this.key(key, windowMs), windowMs, limit);
      return { allowed: allowed === 1, count, resetAt: now + Math.max(0, ttl) };
    } catch (err) {
      this.outage(err);
      return this.fallback.hit(key, windowMs, limit, now);
    }
  }

  async peek(key: string, windowMs: number, now: number): Promise<{ count: number; resetAt: number }> {
    try {
      const [count, ttl] = await this.redis.portholePeek(this.key(key, windowMs));
      return { count, resetAt: now + Math.max(0, ttl) };
    } catch (err) {
      this.outage(err);
      return this.fallback.peek(key, windowMs, now);
    }
  }

  async release(key: string, windowMs: number, now: number): Promise<void> {
    try {
      await this.redis.portholeRelease(this.key(key, windowMs));
    } catch (err) {
      this.outage(err);
      await this.fallback.release(key, windowMs, now);
    }
  }

  async reset(key: string): Promise<void> {
    // The window lengths this node has used: every node runs the same configuration, so these are
    // the lengths any node may have counted the key under.
    const keys = [...this.windows].map((w) => this.key(key, w));
    try {
      if (keys.length > 0) await this.redis.del(...keys);
    } catch (err) {
      this.outage(err);
    }
    await this.fallback.reset(key);
  }
}
