/**
 * The audit trail: one record per API call and per console session start/end. Recording must never
 * break the call it records, and a record never holds a secret: callers pass identifiers only.
 *
 * Records are written without holding up the call; the SQL store commits every insert of one
 * event-loop turn together (store/sql/write-queue.ts). Readers of the trail call `flush()` first, so
 * an API call's record is visible to the next request; the gateway flushes before it closes the store.
 *
 * A record the database refused for being away (store/errors.ts) is kept in memory (at most
 * MAX_PENDING_RECORDS) and written again every second until it answers: the call it records was
 * acknowledged, so its row must not be lost to a short outage. The record's id is fixed before the
 * first try, so a write that committed but whose answer was lost is not written twice.
 *
 * Refused unauthenticated calls (`recordRefusal`) are aggregated, so that a flood of them cannot grow
 * the trail without bound: the first one of a window is written at once, the next ones of the same
 * source address, action and result (and claimed identity, when it exists) in that window only raise
 * that row's `count`, written within a second and on `flush()`. Such rows are attributed to no project
 * and carry no user agent: nothing a client chose lands in a tenant's trail before it authenticated.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEvent, Store } from '../store/types.js';
import { isStoreUnavailable } from '../store/errors.js';
import { timeOrderedId } from '../store/sql/kysely-store.js';

/** The aggregation window of refused unauthenticated calls. */
export const REFUSAL_WINDOW_MS = 60_000;
/** Windows tracked at once (per node); beyond it the oldest is closed early (its row just stops counting). */
const MAX_REFUSAL_WINDOWS = 10_000;
/** How soon a raised count is written. */
const COUNT_WRITE_DELAY_MS = 1_000;
/** Records kept through a database outage at most; beyond it the oldest is dropped (and was reported). */
const MAX_PENDING_RECORDS = 100_000;
const RETRY_MS = 1_000;

/** `appended`: settles after the row's insert and its last count write (never rejects). */
interface RefusalWindow { id: string; end: number; count: number; written: number; appended: Promise<void> }

export class AuditService {
  readonly #inFlight = new Set<Promise<void>>();
  /** Open refusal windows by key, oldest first. */
  readonly #windows = new Map<string, RefusalWindow>();
  /** Windows whose count changed since it was written. */
  readonly #dirty = new Set<RefusalWindow>();
  #countTimer: NodeJS.Timeout | undefined;
  /** Records a database outage kept back, oldest first. */
  #pending: AuditEvent[] = [];
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly store: Store, private readonly onError: (err: unknown) => void) {}

  record(e: AuditEvent): void {
    const event = e.id === undefined ? { ...e, id: timeOrderedId(e.at) } : e;
    this.#track(this.store.audit.append(event).catch((err: unknown) => {
      if (isStoreUnavailable(err)) this.#keep(event);
      throw err;
    }));
  }

  /** Records waiting for the database (an outage kept them back). */
  pendingRecords(): number {
    return this.#pending.length;
  }

  #keep(e: AuditEvent): void {
    if (this.#pending.length >= MAX_PENDING_RECORDS) this.#pending.shift();
    this.#pending.push(e);
    if (this.#retryTimer === undefined) this.#retryTimer = setTimeout(() => { this.#retryTimer = undefined; void this.#retryPending(); }, RETRY_MS).unref();
  }

  /** Writes the kept records again (the write queue commits them together); those the outage still refuses are kept. */
  async #retryPending(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    await Promise.all(batch.map((e) => this.store.audit.append(e).catch((err: unknown) => {
      if (isStoreUnavailable(err)) this.#keep(e);
      else this.onError(err);
    })));
  }

  /**
   * A refused call by a client that did not authenticate. The caller has already dropped what the
   * client chose (project, user agent); `domainId` and the actor are only set for an identity that
   * exists (a known AK, a known user), so its domain administrator still sees the attempts.
   */
  recordRefusal(e: AuditEvent): void {
    const claimed = e.domainId ? (e.actorUserId ?? e.actorAk ?? '') : '';
    const key = [e.sourceIp ?? '', e.action, e.result, e.code ?? '', e.domainId ?? '', claimed].join('\n');
    const open = this.#windows.get(key);
    if (open && open.end > e.at) {
      open.count++;
      this.#dirty.add(open);
      this.#countTimer ??= setTimeout(() => { this.#countTimer = undefined; this.#writeCounts(); }, COUNT_WRITE_DELAY_MS).unref();
      return;
    }
    if (open) this.#windows.delete(key); // ended: a new window, a new row
    this.#sweep(e.at);
    const id = randomUUID();
    const appended = this.store.audit.append({ ...e, id, count: 1 });
    this.#track(appended);
    this.#windows.set(key, { id, end: e.at + REFUSAL_WINDOW_MS, count: 1, written: 1, appended: appended.catch(() => undefined) });
  }

  /** Resolves once everything recorded so far was written (or failed and was reported). */
  async flush(): Promise<void> {
    this.#writeCounts();
    await Promise.all([...this.#inFlight]);
    if (this.#pending.length > 0) await this.#retryPending();
  }

  #track(write: Promise<void>): void {
    const tracked: Promise<void> = write
      .catch(this.onError)
      .finally(() => { this.#inFlight.delete(tracked); });
    this.#inFlight.add(tracked);
  }

  /** Drops ended windows from the front, and the oldest beyond the bound. */
  #sweep(now: number): void {
    for (const [k, w] of this.#windows) {
      if (w.end > now && this.#windows.size < MAX_REFUSAL_WINDOWS) break;
      this.#windows.delete(k);
    }
  }

  #writeCounts(): void {
    if (this.#countTimer) { clearTimeout(this.#countTimer); this.#countTimer = undefined; }
    for (const w of this.#dirty) {
      this.#dirty.delete(w);
      const count = w.count;
      if (count === w.written) continue;
      w.written = count;
      // After the row's insert and any earlier count write: the last count written is the latest.
      const write = w.appended.then(() => this.store.audit.setCount(w.id, count));
      w.appended = write.catch(() => undefined);
      this.#track(write);
    }
  }
}
