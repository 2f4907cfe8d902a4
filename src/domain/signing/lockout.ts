/**
 * AK lockout policy (reference A.3 step 5: APIG locks an AK for 5 minutes after more than 5
 * consecutive signature failures). Pure policy over an injected clock and an injected state port,
 * so the same rules run over memory, the database or Redis.
 *
 * The port may answer synchronously or with a promise (pg and Redis clients are async), so every
 * method here is async. A get-then-set port is not atomic: with several gateway replicas sharing
 * one store, concurrent failures can be under-counted by the number of racing requests, which
 * delays the lock slightly but never locks wrongly.
 *
 * Callers check `check()` before verifying a signature and refuse a locked AK without verifying,
 * so a locked AK is not an oracle for guessing signatures. Failures should be recorded only for
 * AKs that exist, otherwise a scan of random AKs fills the store.
 */

export interface LockoutState {
  /** Consecutive failures since the last success or the last lock expiry. */
  failures: number;
  /** Epoch ms until which the AK is refused; null when not locked. */
  lockedUntil: number | null;
}

type MaybePromise<T> = T | Promise<T>;

export interface LockoutStatePort {
  get(accessKey: string): MaybePromise<LockoutState | undefined>;
  set(accessKey: string, state: LockoutState): MaybePromise<void>;
}

export interface LockoutPolicy {
  /** Failures tolerated; the next one locks (APIG: "more than 5"). */
  maxFailures: number;
  /** How long a lock lasts. */
  lockMs: number;
}

export const DEFAULT_LOCKOUT_POLICY: Readonly<LockoutPolicy> = Object.freeze({ maxFailures: 5, lockMs: 5 * 60 * 1000 });

export type LockoutDecision = { readonly locked: false } | { readonly locked: true; readonly retryAfterMs: number };

const UNLOCKED: LockoutDecision = Object.freeze({ locked: false });
const CLEAN: Readonly<LockoutState> = Object.freeze({ failures: 0, lockedUntil: null });

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

  /** Counts a failed verification; locks the AK when the count exceeds `maxFailures`. */
  async recordFailure(accessKey: string): Promise<LockoutDecision> {
    const now = this.now();
    const current = await this.state.get(accessKey);
    const decision = this.decide(current, now);
    if (decision.locked) return decision; // already locked: the lock is not extended
    // An expired lock starts a fresh count.
    const failures = (current && current.lockedUntil === null ? current.failures : 0) + 1;
    if (failures > this.policy.maxFailures) {
      const lockedUntil = now + this.policy.lockMs;
      await this.state.set(accessKey, { failures, lockedUntil });
      return { locked: true, retryAfterMs: this.policy.lockMs };
    }
    await this.state.set(accessKey, { failures, lockedUntil: null });
    return UNLOCKED;
  }

  /** A verified request resets the count. Writes only when there is something to reset. */
  /**
   * Clears the count after a verified signature. `seen`: the state `inspect` read for this request;
   * when it was clean nothing is read or written (a failure counted meanwhile by another request then
   * stays counted until the next success, which errs on the safe side).
   */
  async recordSuccess(accessKey: string, seen?: { state: LockoutState | undefined }): Promise<void> {
    const current = seen ? seen.state : await this.state.get(accessKey);
    if (current && (current.failures !== 0 || current.lockedUntil !== null)) await this.state.set(accessKey, { ...CLEAN });
  }

  private decide(current: LockoutState | undefined, now: number): LockoutDecision {
    if (current?.lockedUntil != null && now < current.lockedUntil) return { locked: true, retryAfterMs: current.lockedUntil - now };
    return UNLOCKED;
  }
}

/** Largest number of AKs the in-memory store tracks; the oldest entry is dropped beyond it. */
export const MAX_TRACKED_ACCESS_KEYS = 10_000;

/** In-memory `LockoutStatePort` for a single process and for tests. Clean states are not kept. */
export class MemoryLockoutStore implements LockoutStatePort {
  private readonly entries = new Map<string, LockoutState>();

  constructor(private readonly maxEntries = MAX_TRACKED_ACCESS_KEYS) {}

  get(accessKey: string): LockoutState | undefined {
    const s = this.entries.get(accessKey);
    return s && { ...s };
  }

  set(accessKey: string, state: LockoutState): void {
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
