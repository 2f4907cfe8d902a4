/**
 * Console session records: who opened which console on which node, when it ended, bytes each way
 * and why it closed. Every start and end is also an audit event.
 */
import { randomUUID } from 'node:crypto';
import type { ConsoleSessionRecord, Store } from '../store/types.js';
import type { AuditService } from './audit.js';
import type { Clock } from './clock.js';
import type { ConsoleGrant } from './consoles.js';

export class SessionService {
  constructor(private readonly store: Store, private readonly audit: AuditService, private readonly clock: Clock, readonly nodeId: string) {}

  async start(grant: ConsoleGrant, sourceIp: string | null, userAgent: string | null): Promise<ConsoleSessionRecord> {
    const rec: ConsoleSessionRecord = {
      id: randomUUID(), tokenHash: grant.token.tokenHash, projectId: grant.token.projectId, resourceId: grant.resource.id,
      resourceKind: grant.resource.kind, userId: grant.token.userId, nodeId: this.nodeId, sourceIp, startedAt: this.clock.now(), endedAt: null,
      bytesToClient: 0, bytesToBackend: 0, closeCode: null, closeReason: null,
    };
    await this.store.sessions.start(rec);
    this.audit.record({
      at: rec.startedAt, requestId: rec.id, actorUserId: rec.userId, actorName: null, actorAk: null, action: 'console:session:start',
      resourceKind: rec.resourceKind, resourceId: rec.resourceId, projectId: rec.projectId, sourceIp, userAgent, result: 'success', code: null, detail: null,
    });
    return rec;
  }

  async end(rec: ConsoleSessionRecord, e: { bytesToClient: number; bytesToBackend: number; closeCode: number; closeReason: string }): Promise<void> {
    const endedAt = this.clock.now();
    await this.store.sessions.end(rec.id, { endedAt, ...e });
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
