/**
 * The embedded SQLite adapter (better-sqlite3 under Kysely). WAL mode so readers never wait on the
 * writer; a busy timeout so concurrent writers queue instead of failing; foreign keys on; prepared
 * statements reused across queries (statement-cache.ts).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateToLatest } from '../sql/migrations.js';
import { KyselyStore } from '../sql/kysely-store.js';
import { CachedStatements } from './statement-cache.js';
import type { Database } from '../sql/schema.js';
import type { Store } from '../types.js';

/** Opens (creating if needed) `file` — or an in-memory database for ':memory:' — and migrates it. */
export async function openSqliteStore(file: string): Promise<Store> {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new CachedStatements(sqlite) }) });
  await migrateToLatest(db as Kysely<unknown>);
  return new KyselyStore('sqlite', db);
}
