/**
 * The audit trail: one record per API call and per console session start/end. Recording must never
 * break the call it records, and a record never holds a secret: callers pass identifiers only.
 *
 * Records are written without holding up the call; the SQL store commits every insert of one
 * event-loop turn together (store/sql/write-queue.ts). Readers of the trail call `flush()` first, so
 * an API call's record is visible to the next request; the gateway flushes before it closes the store.
 */
import type { AuditEvent, Store } from '../store/types.js';

export class AuditService {
  readonly #inFlight = new Set<Promise<void>>();

  constructor(private readonly store: Store, private readonly onError: (err: unknown) => void) {}

  record(e: AuditEvent): void {
    const write: Promise<void> = this.store.audit.append(e)
      .catch(this.onError)
      .finally(() => { this.#inFlight.delete(write); });
    this.#inFlight.add(write);
  }

  /** Resolves once everything recorded so far was written (or failed and was reported). */
  async flush(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }
}
