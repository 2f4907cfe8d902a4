/**
 * The cross-node EventBus over Redis pub/sub: one channel, `{prefix}events`, JSON messages. The
 * subscription has its own connection (a subscribed Redis connection can do nothing else), which
 * ioredis re-subscribes after a reconnect. Pub/sub is at most once: a node that is disconnected when
 * a message is published misses it; publishing while Redis is away rejects.
 */
import type { Redis } from 'ioredis';
import type { ClusterMessage, EventBus } from '../types.js';
import { encodeClusterMessage, parseClusterMessage } from '../cluster-message.js';
import type { RedisConnection } from './connection.js';

export class RedisEventBus implements EventBus {
  readonly kind = 'redis' as const;
  private readonly handlers = new Set<(msg: ClusterMessage) => void>();
  private readonly channel: string;

  private constructor(private readonly conn: RedisConnection, private readonly sub: Redis, private readonly onBadMessage: (why: string) => void) {
    this.channel = `${conn.prefix}events`;
    sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const msg = parseClusterMessage(text);
      if (!msg) { onBadMessage('not a JSON object with a type'); return; }
      for (const h of [...this.handlers]) h(msg);
    });
  }

  /** Opens the subscriber connection and subscribes before resolving, so nothing published afterwards is missed. */
  static async open(conn: RedisConnection, onBadMessage: (why: string) => void = () => {}): Promise<RedisEventBus> {
    const sub = await conn.duplicate();
    const bus = new RedisEventBus(conn, sub, onBadMessage);
    await sub.subscribe(bus.channel);
    return bus;
  }

  async publish(msg: ClusterMessage): Promise<void> {
    await this.conn.client.publish(this.channel, encodeClusterMessage(msg));
  }

  subscribe(handler: (msg: ClusterMessage) => void): () => void {
    this.handlers.add(handler);
    return () => { this.handlers.delete(handler); };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    try { await this.sub.quit(); } catch { this.sub.disconnect(false); }
  }
}
