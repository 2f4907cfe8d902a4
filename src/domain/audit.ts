/**
 * The audit trail: one record per API call and per console session start/end. Recording must never
 * break the call it records, and a record never holds a secret: callers pass identifiers only.
 */
import type { AuditEvent, Store } from '../store/types.js';

export class AuditService {
  constructor(private readonly store: Store, private readonly onError: (err: unknown) => void) {}

  record(e: AuditEvent): void {
    this.store.audit.append(e).catch(this.onError);
  }
}
