/**
 * The cross-node EventBus over PostgreSQL LISTEN/NOTIFY, for deployments without Redis. One
 * dedicated connection per node LISTENs on a channel named after the schema the tables live in
 * (`porthole:<schema>`, so several Porthole schemas in one database do not hear each other) and also
 * sends the NOTIFYs (`pg_notify`, at most 8000 bytes a message).
 *
 * Delay: a NOTIFY reaches the listeners when the sending statement commits (`pg_notify` runs in its
 * own autocommit statement), normally within milliseconds. While the listening connection is down
 * the node hears nothing and publishing rejects; it reconnects with a backoff of 250 ms doubling to
 * at most 5 s, and a ping every 10 s (5 s timeout) notices a connection that died silently. So a
 * command can be missed for up to about 15 s around a database outage; callers that must know ask
 * for a reply (proxy/session-control.ts).
 */
import pg from 'pg';
import type { ClusterMessage, EventBus } from '../types.js';
import { encodeClusterMessage, parseClusterMessage } from '../cluster-message.js';

export const PG_EVENTS_DEFAULTS = {
  connectTimeoutMs: 5_000,
  queryTimeoutMs: 5_000,
  pingIntervalMs: 10_000,
  reconnectMinMs: 250,
  reconnectMaxMs: 5_000,
} as const;

export interface PgEventBusOptions {
  applicationName?: string;
  /** Connection problems (logged by the caller); the bus reconnects by itself. */
  onError?: (err: Error) => void;
  /** Called after a reconnect succeeded (messages may have been missed while down). */
  onReconnect?: () => void;
}

export class PostgresEventBus implements EventBus {
  readonly kind = 'postgres' as const;
  private readonly handlers = new Set<(msg: ClusterMessage) => void>();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private delay: number = PG_EVENTS_DEFAULTS.reconnectMinMs;
  private closed = false;

  private constructor(private readonly url: string, readonly channel: string, private readonly o: PgEventBusOptions) {}

  /** Connects, learns the schema, LISTENs; rejects when the database does not answer (like opening the store). */
  static async open(url: string, o: PgEventBusOptions = {}): Promise<PostgresEventBus> {
    const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: PG_EVENTS_DEFAULTS.connectTimeoutMs });
    probe.on('error', () => {});
    let schema: string | null | undefined;
    try {
      await probe.connect();
      schema = (await probe.query<{ schema: string | null }>('select current_schema() as schema')).rows[0]?.schema;
    } finally {
      await probe.end().catch(() => {});
    }
    if (!schema) throw new Error('postgres events: search_path names no existing schema');
    const bus = new PostgresEventBus(url, `porthole:${schema}`.slice(0, 63), o);
    await bus.connect();
    bus.pingTimer = setInterval(() => bus.ping(), PG_EVENTS_DEFAULTS.pingIntervalMs);
    bus.pingTimer.unref();
    return bus;
  }

  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const c = new pg.Client({
        connectionString: this.url, connectionTimeoutMillis: PG_EVENTS_DEFAULTS.connectTimeoutMs, query_timeout: PG_EVENTS_DEFAULTS.queryTimeoutMs,
        application_name: this.o.applicationName ?? 'porthole-events', keepAlive: true, keepAliveInitialDelayMillis: 10_000,
      });
      c.on('error', (err) => this.lost(c, err));
      c.on('end', () => this.lost(c, new Error('event connection ended')));
      c.on('notification', (n) => {
        if (n.channel !== this.channel || n.payload === undefined) return;
        const msg = parseClusterMessage(n.payload);
        if (msg) for (const h of [...this.handlers]) h(msg);
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
      } catch (err) {
        c.removeAllListeners('end');
        c.on('error', () => {});
        await c.end().catch(() => {});
        throw err;
      }
      if (this.closed) { await c.end().catch(() => {}); return; }
      this.client = c;
      this.delay = PG_EVENTS_DEFAULTS.reconnectMinMs;
    })().finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  private lost(c: pg.Client, err: Error): void {
    if (this.client !== c) return;
    this.client = undefined;
    c.end().catch(() => {});
    if (this.closed) return;
    this.o.onError?.(err);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, PG_EVENTS_DEFAULTS.reconnectMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().then(() => this.o.onReconnect?.(), (err: unknown) => {
        this.o.onError?.(err instanceof Error ? err : new Error(String(err)));
        this.scheduleReconnect();
      });
    }, wait);
    this.retryTimer.unref();
  }

  private ping(): void {
    const c = this.client;
    if (!c) return;
    c.query('select 1').catch((err: unknown) => this.lost(c, err instanceof Error ? err : new Error(String(err))));
  }

  async publish(msg: ClusterMessage): Promise<void> {
    const text = encodeClusterMessage(msg);
    const c = this.client;
    if (!c) throw new Error('postgres events: not connected (reconnecting)');
    await c.query('select pg_notify($1, $2)', [this.channel, text]);
  }

  subscribe(handler: (msg: ClusterMessage) => void): () => void {
    this.handlers.add(handler);
    return () => { this.handlers.delete(handler); };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    await this.connecting?.catch(() => {});
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => {});
    }
  }
}
