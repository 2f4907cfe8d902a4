/**
 * Retention: what is spent or old is deleted, so the store does not grow with traffic. Expired IAM
 * tokens, and console tokens that expired, were redeemed or were revoked, go a grace period later
 * (long enough for a late "used"/"expired" answer and for audits of the day); audit events go after
 * `audit.retention_days` (0 = kept forever). Remote-assistance join counters (one per source address
 * or share space) go once their window and lock are a grace period over: by then they count nothing.
 *
 * Deletes run in bounded batches (each one short statement, oldest first) and at most a bounded
 * number of batches per run, so a large backlog is worked off over several runs without holding the
 * database. Every node runs the job: the deletes are idempotent, so running on several nodes at once
 * only shares the work.
 */
import type { Clock } from './clock.js';
import type { Store } from '../store/types.js';

/** How long spent tokens are kept after they expired, were redeemed or were revoked. */
export const TOKEN_GRACE_MS = 24 * 3600_000;
/** Rows per delete statement. */
export const RETENTION_BATCH = 500;
/** Delete statements per kind per run. */
export const RETENTION_MAX_BATCHES = 20;
/** How often each node runs the job (plus up to 10 % jitter, so nodes started together spread out). */
export const RETENTION_INTERVAL_MS = 3600_000;

export interface RetentionResult { iamTokens: number; consoleTokens: number; auditEvents: number; joinAttempts: number }

export class RetentionService {
  constructor(private readonly store: Store, private readonly clock: Clock, private readonly opts: { auditRetentionDays: number; batch?: number; maxBatches?: number }) {}

  /** One run: each kind's due rows, batch by batch until none is left or the run's bound is reached. */
  async runOnce(): Promise<RetentionResult> {
    const now = this.clock.now();
    const tokensBefore = now - TOKEN_GRACE_MS;
    const iamTokens = await this.#batches((n) => this.store.identity.purgeIamTokens(tokensBefore, n));
    const consoleTokens = await this.#batches((n) => this.store.consoleTokens.purgeSpent(tokensBefore, n));
    const days = this.opts.auditRetentionDays;
    const auditEvents = days > 0 ? await this.#batches((n) => this.store.audit.purgeBefore(now - days * 86_400_000, n)) : 0;
    // Windows and locks are at most a day long (assistance.join_lockout_seconds), so these count nothing any more.
    const joinAttempts = await this.#batches((n) => this.store.assistance.purgeAttempts(tokensBefore, n));
    return { iamTokens, consoleTokens, auditEvents, joinAttempts };
  }

  async #batches(purge: (limit: number) => Promise<number>): Promise<number> {
    const batch = this.opts.batch ?? RETENTION_BATCH;
    const max = this.opts.maxBatches ?? RETENTION_MAX_BATCHES;
    let total = 0;
    for (let i = 0; i < max; i++) {
      const n = await purge(batch);
      total += n;
      if (n < batch) break;
    }
    return total;
  }
}
