/**
 * The in-process EventBus of a single node (embedded SQLite): every message goes to this process's
 * own handlers, on a later tick, as it would come back from Redis or PostgreSQL.
 */
import type { ClusterMessage, EventBus } from '../types.js';

export class LocalEventBus implements EventBus {
  readonly kind = 'local' as const;
  private readonly handlers = new Set<(msg: ClusterMessage) => void>();
  private closed = false;

  async publish(msg: ClusterMessage): Promise<void> {
    if (this.closed) throw new Error('event bus closed');
    // A copy through JSON, so a handler never shares objects with the publisher (as over a network).
    const copy = JSON.parse(JSON.stringify(msg)) as ClusterMessage;
    setImmediate(() => { for (const h of [...this.handlers]) h(copy); });
  }

  subscribe(handler: (msg: ClusterMessage) => void): () => void {
    this.handlers.add(handler);
    return () => { this.handlers.delete(handler); };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }
}
