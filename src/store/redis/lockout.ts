/**
 * AK lockout state (domain/signing/lockout.ts `LockoutStatePort`) in Redis: one hash per access key
 * that has failed signatures, `{failures, locked_until}`, shared by every node without a database
 * write per failed request. A clean state deletes the key; every key expires on its own a day after
 * its last change (or its lock's end), so AKs that failed once and were never used again do not
 * accumulate.
 *
 * A failure is counted by one Lua script (security #12): read the hash, apply the rule of
 * `afterFailure` (count on, lock above the limit, a running lock kept, an expired one restarted) and
 * write it back, atomically on the Redis server, so parallel failures on any number of nodes are each
 * counted. Clearing after a verified signature is a script too: it leaves a running lock alone.
 *
 * When Redis is unreachable the state goes to the fallback port (the database's `ak_lockouts`), so
 * lockouts keep working through an outage; counts made on one side are not seen on the other, which
 * at worst gives an attacker one more round of `maxFailures` tries.
 */
import type { Redis } from 'ioredis';
import type { LockoutPolicy, LockoutState, LockoutStatePort } from '../../domain/signing/lockout.js';
import type { RedisConnection } from './connection.js';

const KEEP_MS = 24 * 60 * 60 * 1000;
const OUTAGE_LOG_INTERVAL_MS = 60_000;

/**
 * KEYS[1] the AK's hash; ARGV[1] now (ms), ARGV[2] maxFailures, ARGV[3] lockMs, ARGV[4] keep (ms)
 * → {failures, locked_until ('' when not locked)}. `afterFailure`, in Lua.
 */
const FAIL_SCRIPT = `
local now = tonumber(ARGV[1])
local maxFailures = tonumber(ARGV[2])
local lockMs = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local raw = redis.call('HGET', KEYS[1], 'locked_until')
local lockedUntil = nil
if raw and raw ~= '' then lockedUntil = tonumber(raw) end
if lockedUntil and now < lockedUntil then
  failures = failures + 1
else
  if lockedUntil then failures = 0 end
  failures = failures + 1
  if failures > maxFailures then lockedUntil = now + lockMs else lockedUntil = nil end
end
local lockedRaw = ''
if lockedUntil then lockedRaw = string.format('%d', lockedUntil) end
redis.call('HSET', KEYS[1], 'failures', failures, 'locked_until', lockedRaw)
local ttl = keep
if lockedUntil then ttl = ttl + math.max(0, lockedUntil - now) end
redis.call('PEXPIRE', KEYS[1], ttl)
return {failures, lockedRaw}
`;

/** KEYS[1] the AK's hash; ARGV[1] now (ms): deletes it unless its lock runs. */
const CLEAR_SCRIPT = `
local raw = redis.call('HGET', KEYS[1], 'locked_until')
if raw and raw ~= '' and tonumber(ARGV[1]) < tonumber(raw) then return 0 end
return redis.call('DEL', KEYS[1])
`;

type WithScripts = Redis & {
  portholeAkFail(key: string, now: number, maxFailures: number, lockMs: number, keepMs: number): Promise<[number, string]>;
  portholeAkClear(key: string, now: number): Promise<number>;
};

export class RedisLockoutStore implements LockoutStatePort {
  private readonly redis: WithScripts;
  private lastOutageLog = 0;

  constructor(
    private readonly conn: RedisConnection,
    private readonly fallback: LockoutStatePort,
    private readonly onOutage: (err: Error) => void = () => {},
  ) {
    const client = conn.client;
    if (!('portholeAkFail' in client)) {
      client.defineCommand('portholeAkFail', { numberOfKeys: 1, lua: FAIL_SCRIPT });
      client.defineCommand('portholeAkClear', { numberOfKeys: 1, lua: CLEAR_SCRIPT });
    }
    this.redis = client as WithScripts;
  }

  private key(accessKey: string): string {
    return `${this.conn.prefix}aklock:${accessKey}`;
  }

  private outage(err: unknown): void {
    const now = Date.now();
    if (now - this.lastOutageLog < OUTAGE_LOG_INTERVAL_MS) return;
    this.lastOutageLog = now;
    this.onOutage(err instanceof Error ? err : new Error(String(err)));
  }

  async get(accessKey: string): Promise<LockoutState | undefined> {
    try {
      const h = await this.redis.hgetall(this.key(accessKey));
      if (h.failures === undefined) return undefined;
      const lockedUntil = h.locked_until === undefined || h.locked_until === '' ? null : Number(h.locked_until);
      return { failures: Number(h.failures), lockedUntil };
    } catch (err) {
      this.outage(err);
      return this.fallback.get(accessKey);
    }
  }

  async addFailure(accessKey: string, now: number, policy: Readonly<LockoutPolicy>): Promise<LockoutState> {
    try {
      const [failures, until] = await this.redis.portholeAkFail(this.key(accessKey), now, policy.maxFailures, policy.lockMs, KEEP_MS);
      return { failures: Number(failures), lockedUntil: until === '' ? null : Number(until) };
    } catch (err) {
      this.outage(err);
      return this.fallback.addFailure(accessKey, now, policy);
    }
  }

  async clear(accessKey: string, now: number): Promise<void> {
    try {
      await this.redis.portholeAkClear(this.key(accessKey), now);
    } catch (err) {
      this.outage(err);
      await this.fallback.clear(accessKey, now);
    }
  }
}
