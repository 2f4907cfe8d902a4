/**
 * Which store failures mean "the database is not there right now" rather than "this request is
 * wrong" or "Porthole has a bug". The API error handler and the upgrade handler ask this one
 * function, so every route answers a database outage the same way: 503 `APIGW.0613` with a plain
 * message, never a 500, and the driver's detail only in the log.
 *
 * Recognised without importing any driver (the errors are matched by shape): Node socket errors
 * (refused, reset, unreachable, DNS), node-postgres connection errors (pool connect timeout,
 * connection terminated, read timeout, client not queryable), PostgreSQL SQLSTATEs of class 08
 * (connection exception), 53 (insufficient resources: too many connections, out of memory or disk),
 * 57P01–57P03 (administrator/crash shutdown, cannot connect now), 57014 (statement timeout: the
 * database is overloaded), 25P03 (idle-in-transaction timeout), and SQLite's SQLITE_BUSY and
 * SQLITE_FULL (its disk is full: the same outage as PostgreSQL's 53100, gone once space is freed).
 */

const SOCKET_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN',
  'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_FULL',
]);

const SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '25P03']);

const PG_MESSAGES = [
  /^timeout exceeded when trying to connect/i,
  /^Connection terminated/i,
  /^Query read timeout/i,
  /is not queryable/i,
  /^Cannot use a pool after calling end/i,
];

function unavailableOne(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code) || SQLSTATES.has(code)) return true;
    if (/^(08|53)[0-9A-Z]{3}$/.test(code)) return true;
  }
  return PG_MESSAGES.some((re) => re.test(e.message));
}

/** True when `err` (or one of its causes, or one of an AggregateError's errors) says the database is unreachable or overloaded. */
export function isStoreUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === undefined || e === null || seen.has(e)) continue;
    seen.add(e);
    if (unavailableOne(e)) return true;
    if (e instanceof Error) {
      queue.push(e.cause);
      if (e instanceof AggregateError) queue.push(...(e.errors as unknown[]));
    }
  }
  return false;
}
