/**
 * Redis for tests: the server is `PORTHOLE_TEST_REDIS_URL` or the local default; each test (file)
 * takes its own key prefix (`porthole-t-<hex>:`), so files run side by side on one Redis, and removes
 * its keys afterwards.
 *
 * describeWith(name, {postgres, redis}, fn): runs the suite when the services it needs answer;
 * otherwise skips it with the reason locally, and under CI registers one failing test in its place —
 * where the services are supposed to be, their absence is a failure, not a skip.
 */
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { postgresUnavailable } from './postgres.js';

export const TEST_REDIS_URL = process.env.PORTHOLE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** Resolves to false when Redis answers PING, else to the reason it does not. */
export async function redisUnavailable(url = TEST_REDIS_URL): Promise<string | false> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
    return false;
  } catch (err) {
    return `Redis at ${url} is unreachable (${(err as Error).message}); start it or set PORTHOLE_TEST_REDIS_URL`;
  } finally {
    r.disconnect(false);
  }
}

export async function describeWith(name: string, needs: { postgres?: boolean; redis?: boolean }, fn: () => void): Promise<void> {
  const reasons: string[] = [];
  if (needs.postgres) { const r = await postgresUnavailable(); if (r) reasons.push(r); }
  if (needs.redis) { const r = await redisUnavailable(); if (r) reasons.push(r); }
  if (reasons.length === 0) describe(name, fn);
  else if (IN_CI) it(name, () => { throw new Error(`CI=true requires these services: ${reasons.join('; ')}`); });
  else describe(name, { skip: reasons.join('; ') }, fn);
}

export interface TestRedis {
  /** `porthole-t-<hex>:` */
  readonly prefix: string;
  /** A plain client for assertions (not prefixed). */
  readonly client: Redis;
  /** Keys under this prefix. */
  keys(): Promise<string[]>;
  /** Deletes this prefix's keys and disconnects. */
  cleanup(): Promise<void>;
}

export async function createTestRedis(url = TEST_REDIS_URL): Promise<TestRedis> {
  const prefix = `porthole-t-${randomBytes(6).toString('hex')}:`;
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await client.connect();
  const keys = async () => {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out;
  };
  return {
    prefix, client, keys,
    async cleanup() {
      try {
        const k = await keys();
        if (k.length > 0) await client.del(...k);
      } finally {
        client.disconnect(false);
      }
    },
  };
}
