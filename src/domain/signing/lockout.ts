/**
 * AK lockout policy (reference A.3 step 5: APIG locks an AK for 5 minutes after more than 5
 * consecutive signature failures). Pure policy over an injected clock and an injected state port,
 * so the same rules run over memory, the database or Redis.
 *
 * Counting is atomic (security #12, the same mistake as the login throttle's): the port's `addFailure`
 * counts one failure and sets the lock when the count passes `maxFailures` in one step on the store
 * (a memory update; one `INSERT … ON CONFLICT DO UPDATE … RETURNING` in SQL; one Lua script in
 * Redis), and answers the state after it. So N failures at once, on any number of nodes, count N and
 * exactly the (maxFailures+1)-th sets the lock; a get-then-set would let parallel bad signatures
 * overwrite each other's counts and put the lock off indefinitely. The rule is `afterFailure` below;
 * the adapters implement it in their own language and the store-contract and adapter tests hold them
 * to it. The port may answer synchronously or with a promise, so every method here is async.
 *
 * Completed failures are counted; attempts are not reserved before the signature is verified
 * (unlike password logins, which count first). Why: a reservation would cost a write and a release
 * on every verified request, and signed calls are the hot path (a clean key costs one read and no
 * write here; the minting benchmark depends on it), while what a reservation buys — fewer
 * verifications of a burst that arrives before the lock — is worthless for HMAC-SHA256: guessing a
 * signature is infeasible however many are checked. What matters is that every failure is counted,
 * so the lock comes after maxFailures+1 of them whatever the concurrency; the requests already past
 * the check when it is set are verified (and counted) but cannot succeed without the SK.
 *
 * Callers check `check()` before verifying a signature and refuse a locked AK without verifying,
 * so a locked AK is not an oracle. Failures that arrive while the AK is locked are counted but do
 * not extend the lock. A verified signature clears the count, but never a running lock (a request
 * checked before the lock was set may still verify: it does not lift it). Failures should be
 * recorded only for AKs that exist, otherwise a scan of random AKs fills the store.
 */

export interface LockoutState {
  /** Failures since the last success or the last lock expiry (the ones during a lock included). */
  failures: number;
  /** Epoch ms until which the AK is refused; null when not locked. */
  lockedUntil: number | null;
}

type MaybePromise<T> = T | Promise<T>;

export interface LockoutPolicy {
  /** Failures tolerated; the next one locks (APIG: "more than 5"). */
  maxFailures: number;
  /** How long a lock lasts. */
  lockMs: number;
}

export interface LockoutStatePort {
  get(accessKey: string): MaybePromise<LockoutState | undefined>;
  /**
   * Counts one failure at `now` and answers the state after it, atomically (`afterFailure`):
   * concurrent calls, from any node, are each counted.
   */
  addFailure(accessKey: string, now: number, policy: Readonly<LockoutPolicy>): MaybePromise<LockoutState>;
  /** Forgets the count, unless a lock runs at `now` (then nothing changes). */
  clear(accessKey: string, now: number): MaybePromise<void>;
}

export const DEFAULT_LOCKOUT_POLICY: Readonly<LockoutPolicy> = Object.freeze({ maxFailures: 5, lockMs: 5 * 60 * 1000 });

export type LockoutDecision = { readonly locked: false } | { readonly locked: true; readonly retryAfterMs: number };

const UNLOCKED: LockoutDecision = Object.freeze({ locked: false });

/** Whether `s` holds a lock that runs at `now`. */
export function lockRuns(s: LockoutState | undefined, now: number): boolean {
  return s?.lockedUntil != null && now < s.lockedUntil;
}

/**
 * The state after one more failure at `now`, the rule every port applies in one atomic step: during
 * a lock the count goes on and the lock stays as it is (not extended); after an expired lock the
 * count starts again at 1; a count above `maxFailures` sets the lock for `lockMs`.
 */
export function afterFailure(current: LockoutState | undefined, now: number, policy: Readonly<LockoutPolicy>): LockoutState {
  if (current && lockRuns(current, now)) return { failures: current.failures + 1, lockedUntil: current.lockedUntil };
  const failures = (current && current.lockedUntil === null ? current.failures : 0) + 1;
  return { failures, lockedUntil: failures > policy.maxFailures ? now + policy.lockMs : null };
}

export class AkLockout {
  private readonly policy: Readonly<LockoutPolicy>;

  constructor(
    private readonly state: LockoutStatePort,
    private readonly now: () => number = Date.now,
    policy: Partial<LockoutPolicy> = {},
  ) {
    this.policy = Object.freeze({ ...DEFAULT_LOCKOUT_POLICY, ...policy });
    if (!Number.isInteger(this.policy.maxFailures) || this.policy.maxFailures < 0) throw new RangeError('lockout: maxFailures must be a non-negative integer');
    if (!Number.isFinite(this.policy.lockMs) || this.policy.lockMs <= 0) throw new RangeError('lockout: lockMs must be positive');
  }

  /** Whether the AK is locked now. Does not write. */
  async check(accessKey: string): Promise<LockoutDecision> {
    return (await this.inspect(accessKey)).decision;
  }

  /** `check`, with the state it read: hand it to `recordSuccess` to spare it a second read. */
  async inspect(accessKey: string): Promise<{ decision: LockoutDecision; seen: LockoutState | undefined }> {
    const seen = await this.state.get(accessKey);
    return { decision: this.decide(seen, this.now()), seen };
  }

  /** Counts a failed verification (atomically, in the port); locked when the count exceeds `maxFailures`. */
  async recordFailure(accessKey: string): Promise<LockoutDecision> {
    const now = this.now();
    return this.decide(await this.state.addFailure(accessKey, now, this.policy), now);
  }

  /**
   * Clears the count after a verified signature. `seen`: the state `inspect` read for this request;
   * when it was clean nothing is read or written (a failure counted meanwhile by another request then
   * stays counted until the next success, which errs on the safe side). A running lock is never
   * cleared (the port checks it when it writes).
   */
  async recordSuccess(accessKey: string, seen?: { state: LockoutState | undefined }): Promise<void> {
    const current = seen ? seen.state : await this.state.get(accessKey);
    if (current && (current.failures !== 0 || current.lockedUntil !== null)) await this.state.clear(accessKey, this.now());
  }

  private decide(current: LockoutState | undefined, now: number): LockoutDecision {
    if (current?.lockedUntil != null && now < current.lockedUntil) return { locked: true, retryAfterMs: current.lockedUntil - now };
    return UNLOCKED;
  }
}

/** Largest number of AKs the in-memory store tracks; the oldest entry is dropped beyond it. */
export const MAX_TRACKED_ACCESS_KEYS = 10_000;

/**
 * In-memory `LockoutStatePort` for a single process and for tests: each call reads and writes in one
 * synchronous step, so it is atomic. Clean states are not kept.
 */
export class MemoryLockoutStore implements LockoutStatePort {
  private readonly entries = new Map<string, LockoutState>();

  constructor(private readonly maxEntries = MAX_TRACKED_ACCESS_KEYS) {}

  get(accessKey: string): LockoutState | undefined {
    const s = this.entries.get(accessKey);
    return s && { ...s };
  }

  addFailure(accessKey: string, now: number, policy: Readonly<LockoutPolicy>): LockoutState {
    const next = afterFailure(this.entries.get(accessKey), now, policy);
    this.write(accessKey, next);
    return { ...next };
  }

  clear(accessKey: string, now: number): void {
    if (!lockRuns(this.entries.get(accessKey), now)) this.entries.delete(accessKey);
  }

  /** Replaces the state (the Redis adapter's fallback tests, and what `addFailure` writes). */
  set(accessKey: string, state: LockoutState): void {
    this.write(accessKey, state);
  }

  private write(accessKey: string, state: LockoutState): void {
    this.entries.delete(accessKey); // re-insert so Map order is least-recently-written first
    if (state.failures === 0 && state.lockedUntil === null) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(accessKey, { ...state });
  }

  get size(): number {
    return this.entries.size;
  }
}
