/**
 * PostgreSQL for tests. Each test file gets its own freshly created schema (`porthole_t_<random>`) on
 * the `test` database and a URL whose connections use it — `search_path` travels in the `options`
 * startup parameter, so any process given the URL lands in that schema — and drops it afterwards;
 * files therefore run in parallel without seeing each other's rows.
 *
 * Reachability (describePostgres): with `CI=true` an unreachable server fails the suite; locally it is
 * skipped with the reason. The server is `PORTHOLE_TEST_DATABASE_URL` or the local trust-auth default.
 *
 * Also a TCP proxy in front of the server, to take the database away and bring it back (outage tests)
 * without touching the shared server.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import pg from 'pg';

export const TEST_DATABASE_URL = process.env.PORTHOLE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** Resolves to false when PostgreSQL answers, else to the reason it does not. */
export async function postgresUnavailable(url = TEST_DATABASE_URL): Promise<string | false> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return false;
  } catch (err) {
    return `PostgreSQL at ${redact(url)} is unreachable (${(err as Error).message}); start it or set PORTHOLE_TEST_DATABASE_URL`;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * describe() for a suite that needs PostgreSQL: runs it when the server answers; otherwise skips it
 * with the reason locally, and under CI registers one failing test in its place — where PostgreSQL
 * is supposed to be, its absence is a failure, not a skip.
 */
export async function describePostgres(name: string, fn: () => void): Promise<void> {
  const reason = await postgresUnavailable();
  if (reason === false) describe(name, fn);
  else if (IN_CI) it(name, () => { throw new Error(`CI=true requires PostgreSQL: ${reason}`); });
  else describe(name, { skip: reason }, fn);
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

export interface TestSchema {
  /** The schema name, `porthole_t_<hex>`. */
  readonly name: string;
  /** TEST_DATABASE_URL with `options=-c search_path=<name>`. */
  readonly url: string;
  /** Runs SQL on an administrative connection (not bound to the schema). */
  admin(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Drops the schema and everything in it, and closes the admin connection. */
  drop(): Promise<void>;
}

/** Creates a fresh, uniquely named schema. Call `drop()` in an `after` hook. */
export async function createTestSchema(baseUrl = TEST_DATABASE_URL): Promise<TestSchema> {
  const name = `porthole_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 10_000, application_name: 'porthole-test-admin' });
  admin.on('error', () => {});
  await admin.connect();
  await admin.query(`create schema ${name}`);
  const u = new URL(baseUrl);
  u.searchParams.set('options', `-c search_path=${name}`);
  return {
    name,
    url: u.toString(),
    admin: (text, values) => admin.query(text, values),
    async drop() {
      try { await admin.query(`drop schema if exists ${name} cascade`); } finally { await admin.end(); }
    },
  };
}

export interface TcpProxy {
  readonly port: number;
  /** The target URL rewritten to go through the proxy. */
  urlFor(url: string): string;
  /** Stops relaying bytes both ways while keeping every socket open (a black-holed network). */
  freeze(): void;
  /**
   * Resets every open connection and every new one at once (the server went away). The port stays
   * bound, so no other test process can take it over meanwhile, as could happen after a close.
   */
  refuse(): void;
  /** Back to relaying (thaws and stops refusing). */
  restore(): void;
  close(): Promise<void>;
}

/** A byte relay on 127.0.0.1 (port 0) to `host:port`. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let mode: 'relay' | 'frozen' | 'refuse' = 'relay';
  const server = net.createServer((client) => {
    client.on('error', () => {});
    if (mode === 'refuse') { client.resetAndDestroy(); return; }
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => { sockets.delete(s); (s === client ? upstream : client).destroy(); });
    }
    const relay = (from: net.Socket, to: net.Socket) => from.on('data', (chunk: Buffer) => { if (mode === 'relay') to.write(chunk); });
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const boundPort = (server.address() as net.AddressInfo).port;
  return {
    port: boundPort,
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(boundPort);
      return u.toString();
    },
    freeze() { mode = 'frozen'; },
    refuse() {
      mode = 'refuse';
      for (const s of sockets) s.resetAndDestroy();
    },
    restore() { mode = 'relay'; },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
