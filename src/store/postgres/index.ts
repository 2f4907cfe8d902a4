/**
 * The PostgreSQL adapter: the shared Kysely store (sql/kysely-store.ts) over a `pg.Pool`, for running
 * several gateway nodes on one database. Atomicity across nodes comes from the database itself — the
 * console-token redeem is one conditional `UPDATE … RETURNING` — so this file is only about the
 * connection: timeouts, int8 parsing, schema selection, safe concurrent migration and surviving a
 * database that goes away and comes back.
 *
 * Timeouts (defaults in POSTGRES_DEFAULTS, overridable per store):
 * - connect 5 s (`connectionTimeoutMillis`): bounds both dialling the server and waiting for a free
 *   pool slot, so a call made while the database is unreachable rejects instead of queueing forever.
 * - statement 15 s (server-side `statement_timeout`): a runaway query is cancelled by the server.
 * - query 20 s (client-side `query_timeout`): backstop for a server or network that stops answering
 *   (no RST, no FIN); slightly above the statement timeout so the server's cancel normally wins. A
 *   connection that hit it is destroyed, not returned to the pool, so the next call dials afresh.
 * - idle in transaction 60 s: a node that freezes mid-transaction cannot hold row locks for long.
 * - TCP keep-alive after 10 s idle, so dead peers are noticed on otherwise idle connections.
 * Migrations run on their own short-lived pool without statement/query timeouts: a node starting
 * while another migrates waits on Kysely's advisory lock, and that wait must not be cancelled.
 */
import pg from 'pg';
import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient } from 'kysely';
import { migrateToLatest } from '../sql/migrations.js';
import { KyselyStore } from '../sql/kysely-store.js';
import type { Database } from '../sql/schema.js';
import type { Store } from '../types.js';

export interface PostgresStoreOptions {
  /** Connections per node (default 10). */
  poolMax?: number;
  /**
   * Schema to keep the tables in (created if missing), put first on `search_path` in the connection
   * options. Default: whatever the URL's own `search_path` resolves to (normally `public`).
   */
  schema?: string;
  /** `application_name` shown in pg_stat_activity (default `porthole`; a URL parameter wins). */
  applicationName?: string;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  queryTimeoutMs?: number;
  /**
   * Called for connection errors that belong to no query (an idle connection killed by a server
   * restart or pg_terminate_backend). The pool has already dropped the connection; the default
   * ignores the error. Without a handler pg would throw it as an uncaught 'error' event.
   */
  onError?: (err: Error) => void;
}

export const POSTGRES_DEFAULTS = {
  poolMax: 10,
  applicationName: 'porthole',
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 15_000,
  queryTimeoutMs: 20_000,
  idleInTransactionTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
  keepAliveInitialDelayMs: 10_000,
} as const;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** int8 columns hold epoch milliseconds and byte counts; beyond 2^53 a number would silently round. */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${text} is outside the safe integer range`);
  return n;
}

/** Type parsers of this store's connections only; `pg.types` (process-global) is left untouched. */
function storeTypes(): pg.TypeOverrides {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, parseInt8);
  return types;
}

/** Appends `-c search_path=<schema>` to the URL's `options` startup parameter. */
function withSearchPath(url: string, schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`postgres schema ${JSON.stringify(schema)} must match ${SCHEMA_NAME.source}`);
  const u = new URL(url);
  const options = u.searchParams.get('options');
  u.searchParams.set('options', `${options ? options + ' ' : ''}-c search_path=${schema}`);
  return u.toString();
}

/**
 * Adapts a pg.Pool to what Kysely's PostgresDialect expects, adding two things pg does not do:
 * a connection whose query failed below the SQL level (client-side read timeout, socket error,
 * protocol error) is destroyed on release instead of going back to the pool — after a read timeout
 * pg would otherwise hand out a connection still waiting on the lost answer — and errors emitted by
 * a checked-out connection between queries go to `onError` instead of crashing the process.
 */
function kyselyPool(pool: pg.Pool, onError: (err: Error) => void): PostgresPool {
  const checkedOut = new WeakSet<pg.PoolClient>();
  pool.on('error', (err) => onError(err));
  pool.on('connect', (client) => {
    client.on('error', (err) => { if (checkedOut.has(client)) onError(err); });
  });
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      checkedOut.add(client);
      let broken = false;
      const query = async (text: string, params: ReadonlyArray<unknown>) => {
        try {
          return await client.query(text, params as unknown[]);
        } catch (err) {
          if (!(err instanceof pg.DatabaseError)) broken = true;
          throw err;
        }
      };
      return {
        query: query as unknown as PostgresPoolClient['query'],
        release(destroy?: boolean) {
          checkedOut.delete(client);
          client.release(destroy === true || broken);
        },
      };
    },
    end: () => pool.end(),
  };
}

function hasCode(err: unknown, code: string): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if ((e as { code?: unknown }).code === code) return true;
  return false;
}

function poolConfig(url: string, o: Required<Omit<PostgresStoreOptions, 'schema' | 'onError'>>, forMigrations: boolean): pg.PoolConfig {
  return {
    connectionString: url,
    max: forMigrations ? 2 : o.poolMax,
    idleTimeoutMillis: POSTGRES_DEFAULTS.idleTimeoutMs,
    connectionTimeoutMillis: o.connectTimeoutMs,
    application_name: o.applicationName,
    keepAlive: true,
    keepAliveInitialDelayMillis: POSTGRES_DEFAULTS.keepAliveInitialDelayMs,
    types: storeTypes(),
    ...(forMigrations ? {} : {
      statement_timeout: o.statementTimeoutMs,
      query_timeout: o.queryTimeoutMs,
      idle_in_transaction_session_timeout: POSTGRES_DEFAULTS.idleInTransactionTimeoutMs,
    }),
  };
}

/**
 * Connects to `url` (postgres://…), migrates the schema to the latest version — safe when several
 * nodes start at once: Kysely's Migrator serialises them on a PostgreSQL advisory lock — and returns
 * the store. Rejects if the database is unreachable within the connect timeout.
 */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<Store> {
  const o = {
    poolMax: opts.poolMax ?? POSTGRES_DEFAULTS.poolMax,
    applicationName: opts.applicationName ?? POSTGRES_DEFAULTS.applicationName,
    connectTimeoutMs: opts.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs,
    statementTimeoutMs: opts.statementTimeoutMs ?? POSTGRES_DEFAULTS.statementTimeoutMs,
    queryTimeoutMs: opts.queryTimeoutMs ?? POSTGRES_DEFAULTS.queryTimeoutMs,
  };
  if (!Number.isInteger(o.poolMax) || o.poolMax < 1 || o.poolMax > 1000) throw new RangeError('poolMax must be an integer from 1 to 1000');
  const onError = opts.onError ?? (() => {});
  const connUrl = opts.schema === undefined ? url : withSearchPath(url, opts.schema);

  const migrationDb = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: kyselyPool(new pg.Pool(poolConfig(connUrl, o, true)), onError) }) });
  try {
    const schema = opts.schema ?? (await sql<{ schema: string | null }>`select current_schema() as schema`.execute(migrationDb)).rows[0]?.schema;
    if (!schema) throw new Error('postgres: search_path names no existing schema; create it or pass a schema');
    for (let attempt = 1; ; attempt++) {
      try {
        await migrateToLatest(migrationDb, { migrationTableSchema: schema });
        break;
      } catch (err) {
        // Kysely's migrator introspects every schema of the database (has_schema_privilege by name);
        // a schema dropped by someone else at that moment fails the query with 3F000. Harmless: retry.
        if (attempt >= 3 || !hasCode(err, '3F000')) throw err;
      }
    }
  } finally {
    await migrationDb.destroy();
  }

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: kyselyPool(new pg.Pool(poolConfig(connUrl, o, false)), onError) }) });
  return new KyselyStore('postgres', db);
}
