/**
 * Group commit for the hot single-row inserts (console tokens, audit events). Every row added during
 * one turn of the event loop is written on the next turn: one multi-row INSERT per table, all in one
 * transaction. Each caller's promise settles when its row is committed (or failed), so a caller that
 * awaited `add` can rely on the row being there, on any node.
 *
 * Why: on SQLite every commit writes each B-tree page it touched to the WAL and takes and releases
 * its locks (a console token touches five B-trees, an audit event five), and on PostgreSQL every
 * commit waits for its WAL flush; rows committed together share those pages, locks and flushes
 * (bench/ANALYSIS.md, "Minting").
 *
 * If the batch fails, its rows are retried one by one, so one bad row (a duplicate key) fails only its
 * own caller and the others still commit; when the database is unreachable every caller fails at once.
 * Statements stay under the bound-parameter limits of both dialects (SQLite 32,766, PostgreSQL 65,535).
 */
import type { Insertable, Kysely } from 'kysely';
import { isStoreUnavailable } from '../errors.js';
import type { Database } from './schema.js';

const MAX_PARAMETERS = 30_000;

export type QueuedTable = 'console_tokens' | 'audit_events';

interface Pending { table: QueuedTable; row: Insertable<Database[QueuedTable]>; resolve: () => void; reject: (err: unknown) => void }

export class WriteQueue {
  #queue: Pending[] = [];

  constructor(private readonly db: Kysely<Database>) {}

  add<T extends QueuedTable>(table: T, row: Insertable<Database[T]>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#queue.push({ table, row: row as Insertable<Database[QueuedTable]>, resolve, reject }) === 1) setImmediate(() => { void this.#flush(); });
    });
  }

  async #flush(): Promise<void> {
    const all = this.#queue;
    this.#queue = [];
    const byTable = new Map<QueuedTable, Pending[]>();
    for (const p of all) {
      const list = byTable.get(p.table);
      if (list) list.push(p);
      else byTable.set(p.table, [p]);
    }
    const statements: { table: QueuedTable; rows: Pending[] }[] = [];
    for (const [table, list] of byTable) {
      const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / Object.keys(list[0]!.row).length));
      for (let i = 0; i < list.length; i += perStatement) statements.push({ table, rows: list.slice(i, i + perStatement) });
    }
    const insert = (db: Kysely<Database>, table: QueuedTable, rows: Pending[]) =>
      db.insertInto(table).values(rows.map((p) => p.row) as Insertable<Database['console_tokens']>[]).execute();
    try {
      if (statements.length === 1) await insert(this.db, statements[0]!.table, statements[0]!.rows);
      else await this.db.transaction().execute(async (trx) => { for (const s of statements) await insert(trx, s.table, s.rows); });
      for (const p of all) p.resolve();
    } catch (err) {
      // The database is away: every row fails with the same cause, at once (no row-by-row timeouts).
      if (all.length === 1 || isStoreUnavailable(err)) {
        for (const p of all) p.reject(err);
        return;
      }
      for (const p of all) {
        try {
          await insert(this.db, p.table, [p]);
          p.resolve();
        } catch (one) {
          p.reject(one);
        }
      }
    }
  }
}
