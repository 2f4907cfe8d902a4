/**
 * Backup and restore of the embedded SQLite database (`porthole backup`, `porthole restore`).
 *
 * Backup is a local command on the data directory, made while the gateway serves: SQLite's online
 * backup API (better-sqlite3 `db.backup()`) copies a consistent snapshot from a second connection, in
 * one step, because a multi-step backup restarts whenever another connection writes (and a serving
 * gateway writes all the time); in WAL mode that reader never blocks the gateway's writer. Doing it in a
 * separate process keeps the copy off the gateway's event loop, and needs nothing the backup does not
 * already reveal: whoever can read the data directory holds the database anyway, whereas an API
 * endpoint streaming the whole database would turn one stolen operator credential into every token hash
 * and sealed secret (docs/deployment.md, "Backup and restore").
 *
 * A backup file is a header line, a one-line JSON manifest and the SQLite file itself:
 *
 *     PORTHOLE-SQLITE-BACKUP\n
 *     {"format":1,"created_at":…,"schema_version":"0007_…","master_key_id":"k…","sqlite_bytes":N,"sha256":…}\n
 *     <N bytes: the database, journal mode DELETE>
 *
 * The manifest names the schema version (the latest migration the database has), the id of the master
 * key (its fingerprint, SecretBox's key id; never the key) and the ids that its sealed values use, the
 * payload's length and SHA-256. Restore is offline (the gateway stopped: it refuses while another
 * connection holds the database) and checks everything before it touches anything: the header, the
 * format version, length and hash (a truncated or altered file), `PRAGMA integrity_check`, that every
 * migration is one this release knows, and that the master key here opens what the backup sealed. It
 * writes the payload to a temporary file beside the database and renames it over `porthole.db`, after
 * keeping the previous database as `porthole.db.before-restore` (a hard link, so `porthole.db` is
 * always either the old or the new database). Every file it writes is 0600.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, fsyncSync, linkSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { keyIdOf, LEGACY_KEY_ID, SecretBox } from '../../domain/secrets.js';
import { makePrivateDir, makePrivateFile } from '../../private-files.js';
import { KyselyStore } from '../sql/kysely-store.js';
import { MIGRATION_NAMES, MIGRATION_TABLE } from '../sql/migrations.js';
import type { Database } from '../sql/schema.js';

export const BACKUP_MAGIC = 'PORTHOLE-SQLITE-BACKUP';
/** The backup file format this release writes and reads. */
export const BACKUP_FORMAT = 1;
/** Manifest lines longer than this are not ours. */
const MAX_HEADER_BYTES = 64 * 1024;

export type BackupErrorCode =
  | 'BACKUP_NOT_A_BACKUP' // no Porthole backup header
  | 'BACKUP_FORMAT_UNSUPPORTED' // a backup format this release does not read
  | 'BACKUP_TRUNCATED' // shorter than its manifest says
  | 'BACKUP_CORRUPT' // wrong hash, extra bytes, bad manifest, or the database fails integrity_check
  | 'BACKUP_SCHEMA_NEWER' // made by a newer release: migrations never run backwards
  | 'BACKUP_KEY_MISSING' // no master key here; the backup's secrets need one
  | 'BACKUP_KEY_MISMATCH' // the master key here is not the one the backup's secrets are sealed under
  | 'DATABASE_IN_USE' // a gateway (or anything else) has the database open
  | 'DATABASE_MISSING'; // nothing to back up

/** A refused backup or restore: a stable code, and a message that names what to do. Never a key or a secret. */
export class BackupError extends Error {
  constructor(readonly code: BackupErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'BackupError';
  }
}

export interface BackupManifest {
  format: number;
  created_at: string;
  /** The Porthole release that wrote the backup (package version). */
  porthole_version: string;
  /** The latest migration the database has: its schema version. */
  schema_version: string;
  /** The master key's id (SecretBox fingerprint) the backup was made with; null when none was given. */
  master_key_id: string | null;
  /** Sealed values in the database per key id (what restoring needs to open them). */
  sealed_key_ids: Record<string, number>;
  sqlite_bytes: number;
  sha256: string;
}

/** The SQLite file of a data directory. */
export const sqliteFileOf = (dataDir: string) => path.join(dataDir, 'porthole.db');

/** Where restore keeps the database it replaced. */
export const beforeRestoreFileOf = (dbFile: string) => `${dbFile}.before-restore`;

/**
 * The master keys a gateway on `dataDir` uses: the configured key (or `{data_dir}/master.key`, which an
 * embedded gateway generates on first start) first, then the previous keys of a rotation. Empty when
 * there is none (a fresh host before its key is put back).
 */
export function masterKeysFor(o: { dataDir: string; masterKey: Buffer | null; masterKeyPrevious: readonly Buffer[] }): Buffer[] {
  const keys: Buffer[] = [];
  if (o.masterKey) keys.push(Buffer.from(o.masterKey));
  else {
    const file = path.join(o.dataDir, 'master.key');
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/.test(text)) throw new BackupError('BACKUP_KEY_MISMATCH', `${file} is not a 64-hex-character master key`);
      keys.push(Buffer.from(text, 'hex'));
    }
  }
  return [...keys, ...o.masterKeyPrevious.map((k) => Buffer.from(k))];
}

const tmpName = (near: string, what: string) => `${near}.${what}-${randomBytes(4).toString('hex')}`;

function migrationsOf(db: SqliteDatabase.Database): string[] {
  const exists = db.prepare("select 1 from sqlite_master where type = 'table' and name = ?").get(MIGRATION_TABLE);
  if (!exists) return [];
  return (db.prepare(`select name from ${MIGRATION_TABLE} order by name`).all() as { name: string }[]).map((r) => r.name);
}

/** Sealed values per key id, read through the store's own list (the same walk `porthole key rotate` does). */
async function sealedKeyIds(db: SqliteDatabase.Database): Promise<Record<string, number>> {
  const k = new Kysely<Database>({ dialect: new SqliteDialect({ database: db }) });
  const out: Record<string, number> = {};
  for (const v of await new KyselyStore('sqlite', k).sealed.list()) {
    const id = SecretBox.keyIdOfSealed(v.sealed);
    if (id !== undefined) out[id] = (out[id] ?? 0) + 1; // a malformed value opens under no key anyway
  }
  return out;
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * Writes a backup of `dbFile` to `out` (replaced atomically if it exists) while a gateway may be
 * serving from it. `masterKey` is the key the gateway seals with (for the manifest's fingerprint).
 */
export async function backupSqlite(o: { dbFile: string; out: string; masterKey: Buffer | null; version: string; now?: Date }): Promise<BackupManifest> {
  if (!existsSync(o.dbFile)) throw new BackupError('DATABASE_MISSING', `there is no database at ${o.dbFile} (wrong --data-dir?)`);
  const out = path.resolve(o.out);
  if ([o.dbFile, `${o.dbFile}-wal`, `${o.dbFile}-shm`].map((f) => path.resolve(f)).includes(out)) {
    throw new BackupError('BACKUP_CORRUPT', 'the backup cannot be written over the database itself; choose another --out');
  }
  const copy = tmpName(out, 'db');
  const partial = tmpName(out, 'partial');
  try {
    makePrivateFile(copy); // the backup API writes into it: 0600 from the start
    const src = new SqliteDatabase(o.dbFile, { fileMustExist: true });
    try {
      src.pragma('busy_timeout = 10000');
      // One step: a backup in several steps restarts whenever the serving gateway writes in between.
      await src.backup(copy, { progress: () => 0x7fffffff });
    } finally {
      src.close();
    }
    let schema: string[];
    let sealed: Record<string, number>;
    const db = new SqliteDatabase(copy, { fileMustExist: true });
    try {
      // A self-contained file: no WAL to carry along, and what is hashed is what restore gets.
      db.pragma('journal_mode = DELETE');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new BackupError('BACKUP_CORRUPT', `the copied database fails quick_check (${String(check)}); the source database may be damaged`);
      schema = migrationsOf(db);
      sealed = await sealedKeyIds(db);
    } finally {
      db.close();
    }
    if (schema.length === 0) throw new BackupError('BACKUP_CORRUPT', `${o.dbFile} is not a Porthole database (no ${MIGRATION_TABLE})`);
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      created_at: (o.now ?? new Date()).toISOString(),
      porthole_version: o.version,
      schema_version: schema[schema.length - 1]!,
      master_key_id: o.masterKey ? keyIdOf(o.masterKey) : null,
      sealed_key_ids: sealed,
      sqlite_bytes: statSync(copy).size,
      sha256: await sha256Of(copy),
    };
    makePrivateFile(partial);
    const ws = createWriteStream(partial, { flags: 'w', mode: 0o600 });
    ws.write(`${BACKUP_MAGIC}\n${JSON.stringify(manifest)}\n`);
    await pipeline(createReadStream(copy), ws);
    const fd = openSync(partial, 'r+');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(partial, out);
    return manifest;
  } finally {
    rmSync(copy, { force: true });
    rmSync(`${copy}-journal`, { force: true });
    rmSync(partial, { force: true });
  }
}

/** Reads and checks a backup file's header and manifest (nothing else is read). */
export function readBackupHeader(file: string): { manifest: BackupManifest; payloadOffset: number; payloadBytes: number } {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch (err) {
    throw new BackupError('BACKUP_NOT_A_BACKUP', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let head: Buffer;
  let size: number;
  try {
    size = statSync(file).size;
    head = Buffer.alloc(Math.min(MAX_HEADER_BYTES, size));
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const magic = Buffer.from(`${BACKUP_MAGIC}\n`);
  if (head.length < magic.length || !head.subarray(0, magic.length).equals(magic)) {
    if (head.length < magic.length && magic.subarray(0, head.length).equals(head) && head.length > 0) throw new BackupError('BACKUP_TRUNCATED', `${file} ends inside its header`);
    throw new BackupError('BACKUP_NOT_A_BACKUP', `${file} is not a Porthole backup (no ${BACKUP_MAGIC} header); make one with porthole backup`);
  }
  const end = head.indexOf(0x0a, magic.length);
  if (end < 0) {
    if (size < MAX_HEADER_BYTES) throw new BackupError('BACKUP_TRUNCATED', `${file} ends inside its manifest`);
    throw new BackupError('BACKUP_CORRUPT', `${file}: the manifest line is too long`);
  }
  let m: Partial<BackupManifest>;
  try { m = JSON.parse(head.subarray(magic.length, end).toString('utf8')) as Partial<BackupManifest>; } catch {
    throw new BackupError('BACKUP_CORRUPT', `${file}: the manifest is not JSON`);
  }
  if (typeof m !== 'object' || m === null || typeof m.format !== 'number') throw new BackupError('BACKUP_CORRUPT', `${file}: the manifest has no format version`);
  if (m.format !== BACKUP_FORMAT) {
    throw new BackupError('BACKUP_FORMAT_UNSUPPORTED', `${file} is a backup of format ${m.format}; this release reads format ${BACKUP_FORMAT}${m.format > BACKUP_FORMAT ? ' (it was made by a newer release: restore it with that release)' : ''}`);
  }
  const ok = typeof m.schema_version === 'string' && typeof m.sqlite_bytes === 'number' && Number.isSafeInteger(m.sqlite_bytes) && m.sqlite_bytes > 0 &&
    typeof m.sha256 === 'string' && /^[0-9a-f]{64}$/.test(m.sha256) && (m.master_key_id === null || typeof m.master_key_id === 'string') &&
    typeof m.sealed_key_ids === 'object' && m.sealed_key_ids !== null && typeof m.created_at === 'string';
  if (!ok) throw new BackupError('BACKUP_CORRUPT', `${file}: the manifest is incomplete`);
  const payloadOffset = end + 1;
  const payloadBytes = size - payloadOffset;
  if (payloadBytes < m.sqlite_bytes!) throw new BackupError('BACKUP_TRUNCATED', `${file} holds ${payloadBytes} of its ${m.sqlite_bytes} database bytes (an interrupted copy?)`);
  if (payloadBytes > m.sqlite_bytes!) throw new BackupError('BACKUP_CORRUPT', `${file} has ${payloadBytes - m.sqlite_bytes!} bytes more than its manifest says`);
  return { manifest: m as BackupManifest, payloadOffset, payloadBytes };
}

/** Refuses when this release cannot open what the backup sealed with the master keys given. */
export function checkBackupKeys(manifest: BackupManifest, keys: readonly Buffer[], keyHint: string): void {
  const needed = new Set([...(manifest.master_key_id ? [manifest.master_key_id] : []), ...Object.keys(manifest.sealed_key_ids)]);
  needed.delete(LEGACY_KEY_ID); // sealed before ids were fingerprints: tried against every key by the gateway
  if (needed.size === 0) return;
  const have = new Set(keys.map(keyIdOf));
  const list = [...needed].sort().join(', ');
  if (keys.length === 0) {
    throw new BackupError('BACKUP_KEY_MISSING', `the backup's secrets (VNC passwords, secret keys) are sealed under master key id ${list}, and there is no master key here; ` +
      `put that key at ${keyHint} or give it with --master-key-file (the gateway must then use the same key)`);
  }
  const missing = [...needed].filter((id) => !have.has(id));
  if (missing.length > 0) {
    throw new BackupError('BACKUP_KEY_MISMATCH', `the backup's secrets are sealed under master key id ${missing.sort().join(', ')}, but the key here has id ${[...have].join(', ')}; ` +
      `give the original key (${keyHint} or --master-key-file; a rotation's old key with --master-key-previous-file)`);
  }
}

/**
 * Refuses when anything holds the database open. In WAL mode every connection keeps a lock, so an
 * exclusive transaction succeeds only when no gateway (nor a sqlite3 shell) has the file open. The
 * connection returned keeps that lock: restore holds it until the swap.
 */
function lockExclusively(dbFile: string): SqliteDatabase.Database {
  const db = new SqliteDatabase(dbFile, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return db;
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') {
      throw new BackupError('DATABASE_IN_USE', `${dbFile} is in use (a gateway is running on it?): stop the gateway, then restore`);
    }
    throw err;
  }
}

export interface RestoreResult {
  manifest: BackupManifest;
  /** The database that was replaced, kept beside it; null when there was none. */
  previous: string | null;
  /** Migrations the gateway will run at its next start (the backup is of an older release). */
  pending_migrations: string[];
}

/**
 * Restores `file` over `dbFile` (the gateway stopped). With `check`, verifies everything and changes
 * nothing. Refusals are BackupErrors and leave every file as it was.
 */
export async function restoreSqlite(o: { file: string; dbFile: string; keys: readonly Buffer[]; keyHint: string; check?: boolean }): Promise<RestoreResult> {
  const { manifest, payloadOffset } = readBackupHeader(o.file);
  if (!MIGRATION_NAMES.includes(manifest.schema_version)) {
    throw new BackupError('BACKUP_SCHEMA_NEWER', `the backup's schema version ${manifest.schema_version} is unknown to this release (it knows up to ${MIGRATION_NAMES[MIGRATION_NAMES.length - 1]}); ` +
      'it was made by a newer release: restore it with that release');
  }
  checkBackupKeys(manifest, o.keys, o.keyHint);
  const dir = path.dirname(o.dbFile);
  makePrivateDir(dir);
  const lock = !o.check && existsSync(o.dbFile) ? lockExclusively(o.dbFile) : undefined;
  const temp = tmpName(o.dbFile, 'restore');
  let swapped = false;
  try {
    // Unpack and hash in one pass; nothing is trusted until the hash matches.
    makePrivateFile(temp);
    const h = createHash('sha256');
    await pipeline(
      createReadStream(o.file, { start: payloadOffset }),
      new Transform({ transform(chunk: Buffer, _enc, cb) { h.update(chunk); cb(null, chunk); } }),
      createWriteStream(temp, { flags: 'w', mode: 0o600 }),
    );
    if (h.digest('hex') !== manifest.sha256) throw new BackupError('BACKUP_CORRUPT', `${o.file}: the database bytes do not match the manifest's SHA-256 (altered or damaged)`);
    let schema: string[];
    const db = new SqliteDatabase(temp, { fileMustExist: true });
    try {
      const rows = db.pragma('integrity_check') as { integrity_check: string }[];
      if (rows.length !== 1 || rows[0]?.integrity_check !== 'ok') {
        throw new BackupError('BACKUP_CORRUPT', `the backed-up database fails integrity_check: ${rows.slice(0, 3).map((r) => r.integrity_check).join('; ')}`);
      }
      schema = migrationsOf(db);
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw new BackupError('BACKUP_CORRUPT', `the backed-up database cannot be read: ${(err as Error).message}`);
    } finally {
      db.close();
    }
    const unknown = schema.filter((n) => !MIGRATION_NAMES.includes(n));
    if (unknown.length > 0) throw new BackupError('BACKUP_SCHEMA_NEWER', `the backed-up database has migration(s) this release does not know: ${unknown.join(', ')}; restore it with the release that made it`);
    if (schema[schema.length - 1] !== manifest.schema_version) throw new BackupError('BACKUP_CORRUPT', `the manifest says schema ${manifest.schema_version}, the database has ${schema[schema.length - 1] ?? 'none'}`);
    const result: RestoreResult = {
      manifest,
      previous: existsSync(o.dbFile) ? beforeRestoreFileOf(o.dbFile) : null,
      pending_migrations: MIGRATION_NAMES.filter((n) => !schema.includes(n)),
    };
    if (o.check) return result;

    const fd = openSync(temp, 'r+');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    if (lock) {
      // Fold the old database's WAL into it (so the kept copy is whole) and drop the WAL: a stale
      // porthole.db-wal next to the restored file would be replayed into it.
      lock.pragma('wal_checkpoint(TRUNCATE)');
      lock.pragma('journal_mode = DELETE');
      lock.close();
    }
    for (const f of [`${o.dbFile}-wal`, `${o.dbFile}-journal`]) {
      if (existsSync(f)) throw new BackupError('DATABASE_IN_USE', `${f} appeared after the database was closed: is another process opening it?`);
    }
    // A -shm left by a gateway that crashed is a stale WAL index: in exclusive mode SQLite never used it,
    // and with the WAL folded in and gone nothing can need it.
    rmSync(`${o.dbFile}-shm`, { force: true });
    if (result.previous) {
      rmSync(result.previous, { force: true });
      linkSync(o.dbFile, result.previous);
    }
    renameSync(temp, o.dbFile);
    swapped = true;
    const dfd = openSync(dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
    return result;
  } finally {
    if (lock?.open) lock.close();
    if (!swapped) rmSync(temp, { force: true });
    rmSync(`${temp}-journal`, { force: true });
  }
}
