/**
 * AK lockout state (domain/signing/lockout.ts `LockoutStatePort`) in Redis: one hash per access key
 * that has failed signatures, `{failures, locked_until}`, shared by every node without a database
 * write per failed request. A clean state deletes the key; every key expires on its own a day after
 * its last change (or its lock's end), so AKs that failed once and were never used again do not
 * accumulate.
 *
 * When Redis is unreachable the state goes to the fallback port (the database's `ak_lockouts`), so
 * lockouts keep working through an outage; counts made on one side are not seen on the other, which
 * at worst gives an attacker one more round of `maxFailures` tries.
 */
import type { LockoutState, LockoutStatePort } from '../../domain/signing/lockout.js';
import type { RedisConnection } from './connection.js';

const KEEP_MS = 24 * 60 * 60 * 1000;
const OUTAGE_LOG_INTERVAL_MS = 60_000;

export class RedisLockoutStore implements LockoutStatePort {
  private lastOutageLog = 0;

  constructor(
    private readonly conn: RedisConnection,
    private readonly fallback: LockoutStatePort,
    private readonly onOutage: (err: Error) => void = () => {},
  ) {}

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
      const h = await this.conn.client.hgetall(this.key(accessKey));
      if (h.failures === undefined) return undefined;
      const lockedUntil = h.locked_until === undefined || h.locked_until === '' ? null : Number(h.locked_until);
      return { failures: Number(h.failures), lockedUntil };
    } catch (err) {
      this.outage(err);
      return this.fallback.get(accessKey);
    }
  }

  async set(accessKey: string, state: LockoutState): Promise<void> {
    const key = this.key(accessKey);
    try {
      if (state.failures === 0 && state.lockedUntil === null) {
        await this.conn.client.del(key);
        return;
      }
      const ttl = KEEP_MS + Math.max(0, (state.lockedUntil ?? 0) - Date.now());
      await this.conn.client.multi()
        .hset(key, 'failures', String(state.failures), 'locked_until', state.lockedUntil === null ? '' : String(state.lockedUntil))
        .pexpire(key, ttl)
        .exec();
    } catch (err) {
      this.outage(err);
      await this.fallback.set(accessKey, state);
    }
  }
}
