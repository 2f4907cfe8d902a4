/**
 * Console session records: who opened which console on which node, when it ended, bytes each way
 * and why it closed. Every start and end is also an audit event.
 *
 * An end that cannot be written (the database is away) is kept in memory and written again by
 * `retryPending()` — the node calls it after each successful heartbeat — with the time the session
 * really ended; its audit event is recorded once the row is written. The relay never waits for it.
 * A start whose INSERT failed for want of the database is kept the same way, as ended
 * (store_unavailable): the server may have committed it while the answer was lost.
 */
import { randomUUID } from 'node:crypto';
import type { ConsoleSessionRecord, Store } from '../store/types.js';
import { isStoreUnavailable } from '../store/errors.js';
import type { AuditService } from './audit.js';
import type { Clock } from './clock.js';
import type { ConsoleGrant } from './consoles.js';

type SessionEndFacts = { bytesToClient: number; bytesToBackend: number; closeCode: number; closeReason: string };

/** Session ends kept for retry at most; beyond it the oldest is dropped (the node reaper closes its row later). */
export const MAX_PENDING_ENDS = 100_000;

export class SessionService {
  private readonly pending = new Map<string, { rec: ConsoleSessionRecord; e: SessionEndFacts; endedAt: number; audited: boolean }>();

  constructor(private readonly store: Store, private readonly audit: AuditService, private readonly clock: Clock, readonly nodeId: string) {}

  async start(grant: ConsoleGrant, sourceIp: string | null, userAgent: string | null): Promise<ConsoleSessionRecord> {
    const rec: ConsoleSessionRecord = {
      id: randomUUID(), tokenHash: grant.token.tokenHash, projectId: grant.token.projectId, resourceId: grant.resource.id,
      resourceKind: grant.resource.kind, userId: grant.token.userId, nodeId: this.nodeId, sourceIp, startedAt: this.clock.now(), endedAt: null,
      bytesToClient: 0, bytesToBackend: 0, closeCode: null, closeReason: null,
    };
    try {
      await this.store.sessions.start(rec);
    } catch (err) {
      // The database may have committed the row while the answer was lost: its end is written once
      // it answers (an end of a row that was never written changes nothing), so no row stays open.
      if (isStoreUnavailable(err)) this.keep(rec, { bytesToClient: 0, bytesToBackend: 0, closeCode: 1011, closeReason: 'store_unavailable' }, rec.startedAt, false);
      throw err;
    }
    this.audit.record({
      at: rec.startedAt, requestId: rec.id, actorUserId: rec.userId, actorName: null, actorAk: null, action: 'console:session:start',
      resourceKind: rec.resourceKind, resourceId: rec.resourceId, projectId: rec.projectId, sourceIp, userAgent, result: 'success', code: null, detail: null,
    });
    return rec;
  }

  /** Records the end; when the store fails the end is kept for `retryPending()` and the error rethrown. */
  async end(rec: ConsoleSessionRecord, e: SessionEndFacts): Promise<void> {
    const endedAt = this.clock.now();
    try {
      await this.store.sessions.end(rec.id, { endedAt, ...e });
    } catch (err) {
      this.keep(rec, e, endedAt, true);
      throw err;
    }
    this.recordEnd(rec, e, endedAt);
  }

  /** `audited`: the start was recorded in the audit trail, so the end is too once written. */
  private keep(rec: ConsoleSessionRecord, e: SessionEndFacts, endedAt: number, audited: boolean): void {
    if (this.pending.size >= MAX_PENDING_ENDS) {
      const oldest = this.pending.keys().next();
      if (!oldest.done) this.pending.delete(oldest.value);
    }
    this.pending.set(rec.id, { rec, e, endedAt, audited });
  }

  /** Open sessions of a machine, on any node (an exclusive endpoint allows one). */
  async openOn(resourceId: string): Promise<ConsoleSessionRecord[]> {
    return this.store.sessions.list({ resourceId, open: true, limit: 100 });
  }

  /** Session ends waiting to be written. */
  pendingEnds(): number {
    return this.pending.size;
  }

  /** Writes the session ends that failed earlier, oldest first; stops at the first failure. Resolves with how many are still pending. */
  async retryPending(): Promise<number> {
    for (const [id, p] of [...this.pending]) {
      await this.store.sessions.end(id, { endedAt: p.endedAt, ...p.e });
      this.pending.delete(id);
      if (p.audited) this.recordEnd(p.rec, p.e, p.endedAt);
    }
    return this.pending.size;
  }

  private recordEnd(rec: ConsoleSessionRecord, e: SessionEndFacts, endedAt: number): void {
    this.audit.record({
      at: endedAt, requestId: rec.id, actorUserId: rec.userId, actorName: null, actorAk: null, action: 'console:session:end',
      resourceKind: rec.resourceKind, resourceId: rec.resourceId, projectId: rec.projectId, sourceIp: rec.sourceIp, userAgent: null,
      result: 'success', code: String(e.closeCode), detail: e.closeReason,
    });
  }

  /** At start: sessions this node left open when it last stopped (crash) are closed. */
  async recover(): Promise<number> {
    return this.store.sessions.closeAllOfNode(this.nodeId, this.clock.now(), 'node_restarted');
  }
}
