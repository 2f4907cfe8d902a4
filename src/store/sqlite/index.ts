/**
 * The embedded SQLite adapter (better-sqlite3 under Kysely). WAL mode so readers never wait on the
 * writer; a busy timeout so concurrent writers queue instead of failing; foreign keys on; prepared
 * statements reused across queries (statement-cache.ts).
 */
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateToLatest } from '../sql/migrations.js';
import { KyselyStore } from '../sql/kysely-store.js';
import { CachedStatements } from './statement-cache.js';
import type { Database } from '../sql/schema.js';
import type { Store } from '../types.js';
import { makePrivateDir, makePrivateFile, restrictFiles } from '../../private-files.js';

/** Opens (creating if needed) `file` — or an in-memory database for ':memory:' — and migrates it. */
export async function openSqliteStore(file: string): Promise<Store> {
  if (file !== ':memory:') {
    // The database and its WAL files are the operator's alone (0600 in a 0700 directory): SQLite creates
    // -wal and -shm with the database file's mode, so the file is made 0600 before SQLite opens it.
    makePrivateDir(path.dirname(file));
    makePrivateFile(file);
  }
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  if (file !== ':memory:') restrictFiles(`${file}-wal`, `${file}-shm`);
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new CachedStatements(sqlite) }) });
  await migrateToLatest(db as Kysely<unknown>);
  return new KyselyStore('sqlite', db);
}
