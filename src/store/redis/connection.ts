/**
 * The Redis connection of a node (`redis_url`), shared by the throttling counters, the AK lockout
 * state and the cross-node event bus. Redis is an accelerator here, never the system of record: a
 * call made while Redis is away must fail fast, so the callers can fall back (throttling counts per
 * node, lockouts go to the database, a cross-node command reports that it could not be delivered).
 *
 * Hence: no offline queue (a command issued while disconnected rejects at once instead of waiting
 * for the reconnect), one attempt per command, a command timeout for a Redis that stops answering
 * without closing the socket, and reconnection in the background with a capped backoff. Opening
 * waits for the first connection (a misconfigured URL stops the start, like a bad database URL).
 */
import { Redis, type RedisOptions } from 'ioredis';

export const REDIS_DEFAULTS = {
  connectTimeoutMs: 5_000,
  commandTimeoutMs: 2_000,
  /** Longest wait between reconnection attempts. */
  maxReconnectDelayMs: 2_000,
} as const;

export interface RedisConnection {
  /** The command connection (never put in subscriber mode). */
  readonly client: Redis;
  /** Prepended to every key and channel (`redis_key_prefix`). */
  readonly prefix: string;
  /** A new connection with the same options, e.g. for SUBSCRIBE; closed with this one. */
  duplicate(): Promise<Redis>;
  close(): Promise<void>;
}

export interface OpenRedisOptions {
  prefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Connection errors (Redis gone, refused…); the connection keeps retrying by itself. */
  onError?: (err: Error) => void;
  /** `CLIENT SETNAME`, shown by `CLIENT LIST` (default `porthole`). */
  connectionName?: string;
}

function options(o: OpenRedisOptions): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: o.connectTimeoutMs ?? REDIS_DEFAULTS.connectTimeoutMs,
    commandTimeout: o.commandTimeoutMs ?? REDIS_DEFAULTS.commandTimeoutMs,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), REDIS_DEFAULTS.maxReconnectDelayMs),
    connectionName: o.connectionName ?? 'porthole',
    keepAlive: 10_000,
  };
}

async function connect(client: Redis): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    client.disconnect(false);
    throw err;
  }
}

/** Connects to `url` (redis:// or rediss://); rejects when Redis does not answer within the connect timeout. */
export async function openRedis(url: string, o: OpenRedisOptions = {}): Promise<RedisConnection> {
  const opts = options(o);
  const onError = o.onError ?? (() => {});
  const extra = new Set<Redis>();
  const make = () => {
    const c = new Redis(url, opts);
    // Without a listener ioredis prints every reconnection error; they go to the node's log instead.
    c.on('error', (err: Error) => onError(err));
    return c;
  };
  const client = make();
  try {
    await connect(client);
  } catch (err) {
    throw new Error(`redis: cannot connect to ${redactRedisUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  return {
    client,
    prefix: o.prefix ?? '',
    async duplicate() {
      const c = make();
      await connect(c);
      extra.add(c);
      c.once('end', () => extra.delete(c));
      return c;
    },
    async close() {
      for (const c of [...extra, client]) {
        try { await c.quit(); } catch { c.disconnect(false); }
      }
    },
  };
}

/** The URL without its password, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://…';
  }
}
