/**
 * A prepared-statement cache between Kysely's SQLite driver and better-sqlite3. Kysely prepares every
 * query anew (`db.prepare(sql)` per execution); preparing costs more than running a primary-key
 * lookup (bench/ANALYSIS.md: about a fifth of a console-URL mint). Kysely compiles each query shape
 * to the same SQL text with `?` parameters, so a cache keyed by that text holds a small, bounded set.
 *
 * A statement that is still being iterated (`busy`, a streamed query) is never handed out twice: a
 * fresh one is prepared instead. The least recently used statement is dropped past `limit`
 * (queries with `IN (?, ?, …)` lists produce one text per list length).
 */
import type { Database as BetterSqlite, Statement } from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

export const STATEMENT_CACHE_LIMIT = 512;

export class CachedStatements implements SqliteDatabase {
  readonly #db: BetterSqlite;
  readonly #limit: number;
  readonly #cache = new Map<string, Statement>();
  /** Counters for tests and diagnostics. */
  hits = 0;
  misses = 0;

  constructor(db: BetterSqlite, limit = STATEMENT_CACHE_LIMIT) {
    this.#db = db;
    this.#limit = limit;
  }

  get size(): number { return this.#cache.size; }

  prepare(sql: string): SqliteStatement {
    const cached = this.#cache.get(sql);
    if (cached && !cached.busy) {
      // Map order is insertion order: re-inserting marks the statement most recently used.
      this.#cache.delete(sql);
      this.#cache.set(sql, cached);
      this.hits++;
      return cached as unknown as SqliteStatement;
    }
    this.misses++;
    const stmt = this.#db.prepare(sql);
    if (!cached) {
      this.#cache.set(sql, stmt);
      if (this.#cache.size > this.#limit) this.#cache.delete(this.#cache.keys().next().value as string);
    }
    return stmt as unknown as SqliteStatement;
  }

  close(): void {
    this.#cache.clear();
    this.#db.close();
  }
}
