/**
 * Backup and restore (reliability issue, item 5). `porthole backup` copies the embedded SQLite database
 * while the gateway serves; `porthole restore` puts it back with the gateway stopped, after checking the
 * file (header, format version, length, SHA-256, integrity_check, schema version) and the master key,
 * and refuses anything else with a coded message without touching the data directory. On PostgreSQL
 * the documented way is pg_dump / pg_restore (docs/deployment.md), exercised here on a test schema.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import pino from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { backupSqlite } from '../../src/store/sqlite/backup.js';
import { MIGRATION_NAMES } from '../../src/store/sql/migrations.js';
import { signedCall } from '../helpers/aksk.js';
import { cli, json, type CliResult } from '../helpers/cli.js';
import { call, login, websocketUrl } from '../helpers/gateway.js';
import { createTestSchema, describePostgres, TEST_DATABASE_URL, type TestSchema } from '../helpers/postgres.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

const require = createRequire(import.meta.url);
const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

async function startIn(dataDir: string, extra: string[] = []): Promise<Gateway> {
  const { config } = loadConfig({ argv: ['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--probe-interval-seconds', '0', '--demo', ...extra], env: {} });
  return startGateway(config, { logger: silent });
}

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
/** Every file of a directory with its hash: what "touches nothing" compares. */
const snapshot = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((n) => [n, sha(path.join(dir, n))]));

async function mint(gw: Gateway, token: string): Promise<{ status: number; url?: string }> {
  const f = gw.demo!.facts;
  const r = await call(`${gw.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
    headers: { 'x-auth-token': token }, json: { remote_console: { type: 'novnc', protocol: 'vnc' } },
  });
  return { status: r.status, url: (r.body as { remote_console?: { url?: string } }).remote_console?.url };
}

const demoToken = (gw: Gateway) => login(gw.url, gw.demo!.facts.user, gw.demo!.facts.password, gw.demo!.facts.domain, gw.demo!.facts.project_id);
const adminEnv = (gw: Gateway) => ({ PORTHOLE_URL: gw.url, PORTHOLE_AK: gw.demo!.facts.ak!, PORTHOLE_SK: gw.demo!.facts.sk! });
const codeOf = (r: CliResult) => /refused: ([A-Z_]+):/.exec(r.stderr)?.[1];

describe('backup and restore of the embedded SQLite database', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'porthole-backup-'));
  const dataDir = path.join(root, 'data');
  const good = path.join(root, 'good.bak');
  let facts: NonNullable<Gateway['demo']>['facts'];
  after(() => rmSync(root, { recursive: true, force: true }));

  before(async () => {
    const gw = await startIn(dataDir);
    try {
      facts = gw.demo!.facts;
      // Made while the gateway mints console URLs: the copy is consistent and the minting goes on.
      const token = await demoToken(gw);
      let stop = false;
      const statuses: number[] = [];
      const load = (async () => { while (!stop) statuses.push((await mint(gw, token)).status); })();
      const r = await cli(['backup', '--out', good, '--data-dir', dataDir, '--json'], {});
      stop = true;
      await load;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `mints during the backup: ${statuses.join(',')}`);
      const m = json<{ backup: Record<string, unknown> }>(r).backup;
      assert.equal(m.format, 1);
      assert.equal(m.schema_version, MIGRATION_NAMES[MIGRATION_NAMES.length - 1]);
      assert.match(String(m.master_key_id), /^k[0-9a-f]{16}$/);
      assert.ok(!JSON.stringify(m).includes(readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim()), 'the key itself is never in the manifest');
      // A change after the backup, which a restore must undo.
      const pw = path.join(root, 'later.pw');
      writeFileSync(pw, 'later-password-1');
      assert.equal((await cli(['user', 'create', '--name', 'made-after-backup', '--password-file', pw], adminEnv(gw))).code, 0);
    } finally {
      await gw.close();
    }
  });

  it('backup: the backup file is 0600 and restores to a gateway that accepts the same credentials and opens the same machines', async () => {
    assert.equal(mode(good), '600');
    const old = process.umask(0);
    let r: CliResult;
    try {
      r = await cli(['restore', good, '--data-dir', dataDir, '--json'], {});
    } finally {
      process.umask(old);
    }
    assert.equal(r.code, 0, r.stderr);
    const out = json<{ restore: { previous: string; pending_migrations: string[] } }>(r).restore;
    assert.equal(out.previous, path.join(dataDir, 'porthole.db.before-restore'));
    assert.deepEqual(out.pending_migrations, []);
    for (const f of ['porthole.db', 'porthole.db.before-restore']) assert.equal(mode(path.join(dataDir, f)), '600', f);

    const gw = await startIn(dataDir);
    try {
      // Same password, same AK/SK (its SK is sealed under the master key), same machines.
      const token = await demoToken(gw);
      const signed = await signedCall(gw.url, { ak: facts.ak!, sk: facts.sk! }, { path: `/v1/${facts.project_id}/cloudservers/detail`, projectId: facts.project_id });
      assert.equal(signed.status, 200, signed.text);
      assert.ok((signed.body as { servers: { id: string }[] }).servers.some((s) => s.id === facts.cloudserver_id));
      const m = await mint(gw, token);
      assert.equal(m.status, 200);
      const client = await RfbTestClient.open(websocketUrl(m.url!), { wsOptions: { headers: { origin: new URL(gw.url).origin } } });
      await client.ready;
      client.ws.close();
      // What was made after the backup is gone; the replaced database is kept beside it.
      const users = json<{ users: { name: string }[] }>(await cli(['user', 'list', '--json'], adminEnv(gw))).users.map((u) => u.name);
      assert.ok(users.includes(facts.user) && !users.includes('made-after-backup'), users.join(','));
      const kept = new SqliteDatabase(path.join(dataDir, 'porthole.db.before-restore'), { readonly: true });
      try { assert.ok(kept.prepare("select 1 from users where name = 'made-after-backup'").get()); } finally { kept.close(); }
    } finally {
      await gw.close();
    }
  });

  it('backup: restore refuses while a gateway runs on the database (DATABASE_IN_USE, exit 5) and changes nothing', async () => {
    const gw = await startIn(dataDir);
    try {
      const before = sha(path.join(dataDir, 'porthole.db'));
      const keptBefore = sha(path.join(dataDir, 'porthole.db.before-restore'));
      const r = await cli(['restore', good, '--data-dir', dataDir], {});
      assert.equal(r.code, 5, r.stderr);
      assert.equal(codeOf(r), 'DATABASE_IN_USE', r.stderr);
      assert.match(r.stderr, /stop the gateway/);
      assert.equal(sha(path.join(dataDir, 'porthole.db')), before);
      assert.equal(sha(path.join(dataDir, 'porthole.db.before-restore')), keptBefore);
      assert.equal(readdirSync(dataDir).filter((n) => n.includes('.restore-')).length, 0, 'no temporary file left');
      assert.equal((await mint(gw, await demoToken(gw))).status, 200, 'the gateway serves on');
    } finally {
      await gw.close();
    }
  });

  it('backup: after a crash (the gateway killed, its -wal and -shm left behind) restore works and keeps the crashed database whole beside it', async () => {
    const crashDir = path.join(root, 'crashed');
    assert.equal((await cli(['restore', good, '--data-dir', crashDir, '--master-key-file', path.join(dataDir, 'master.key')], {})).code, 0);
    // A process that writes in WAL mode and is killed: its last row lives only in porthole.db-wal.
    const child = spawn(process.execPath, ['-e', `
      const D = require(${JSON.stringify(require.resolve('better-sqlite3'))});
      const db = new D(${JSON.stringify(path.join(crashDir, 'porthole.db'))});
      db.pragma('journal_mode = WAL'); db.pragma('wal_autocheckpoint = 0');
      db.prepare("insert into audit_events (id, at, action, result) values ('crash-marker', 1, 'x', 'success')").run();
      console.log('written'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok(existsSync(path.join(crashDir, 'porthole.db-wal')) && existsSync(path.join(crashDir, 'porthole.db-shm')), 'the crash left its WAL files');
    const r = await cli(['restore', good, '--data-dir', crashDir, '--master-key-file', path.join(dataDir, 'master.key')], {});
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(crashDir).filter((n) => n.startsWith('porthole.db')).sort(), ['porthole.db', 'porthole.db.before-restore']);
    const kept = new SqliteDatabase(path.join(crashDir, 'porthole.db.before-restore'), { readonly: true });
    try { assert.ok(kept.prepare("select 1 from audit_events where id = 'crash-marker'").get(), 'the WAL was folded into the kept database'); } finally { kept.close(); }
    const restored = new SqliteDatabase(path.join(crashDir, 'porthole.db'), { readonly: true });
    try { assert.equal(restored.prepare("select 1 from audit_events where id = 'crash-marker'").get(), undefined, 'and not replayed into the restored one'); } finally { restored.close(); }
  });

  it('backup: a truncated file, another format version, a file that is not a backup, altered bytes and a newer schema are refused with coded errors; nothing is touched', async () => {
    const bytes = readFileSync(good);
    const nl = bytes.indexOf(0x0a, bytes.indexOf(0x0a) + 1);
    const manifest = JSON.parse(bytes.subarray(bytes.indexOf(0x0a) + 1, nl).toString()) as Record<string, unknown>;
    const withManifest = (m: Record<string, unknown>, payload = bytes.subarray(nl + 1)) =>
      Buffer.concat([Buffer.from(`PORTHOLE-SQLITE-BACKUP\n${JSON.stringify(m)}\n`), payload]);
    const altered = Buffer.from(bytes);
    altered[nl + 1 + 4096 + 100] = altered[nl + 1 + 4096 + 100]! ^ 0xff;
    // A sound backup of a database a newer release migrated (its manifest and hash are right).
    const newerDb = path.join(root, 'newer.db');
    rmSync(newerDb, { force: true });
    execFileSync('cp', [path.join(dataDir, 'porthole.db'), newerDb]);
    const ndb = new SqliteDatabase(newerDb);
    ndb.prepare('insert into porthole_migrations (name, timestamp) values (?, ?)').run('9999_from_the_future', new Date().toISOString());
    ndb.close();
    const newer = path.join(root, 'newer.bak');
    await backupSqlite({ dbFile: newerDb, out: newer, masterKey: null, version: '9.9.9' });
    const cases: [string, Buffer | string, string][] = [
      ['truncated', bytes.subarray(0, bytes.length - 5000), 'BACKUP_TRUNCATED'],
      ['cut in its header', bytes.subarray(0, 10), 'BACKUP_TRUNCATED'],
      ['format 2', withManifest({ ...manifest, format: 2 }), 'BACKUP_FORMAT_UNSUPPORTED'],
      ['a bare SQLite file', readFileSync(path.join(dataDir, 'porthole.db')), 'BACKUP_NOT_A_BACKUP'],
      ['a text file', 'hello\n', 'BACKUP_NOT_A_BACKUP'],
      ['an empty file', '', 'BACKUP_NOT_A_BACKUP'],
      ['altered bytes', altered, 'BACKUP_CORRUPT'],
      ['bytes appended', Buffer.concat([bytes, Buffer.from('x')]), 'BACKUP_CORRUPT'],
      ['a newer schema', readFileSync(newer), 'BACKUP_SCHEMA_NEWER'],
      ['a newer schema in the manifest only', withManifest({ ...manifest, schema_version: '9999_from_the_future' }), 'BACKUP_SCHEMA_NEWER'],
    ];
    const before = snapshot(dataDir);
    for (const [what, content, code] of cases) {
      const f = path.join(root, `bad-${what.replace(/\W+/g, '-')}.bak`);
      writeFileSync(f, content);
      const r = await cli(['restore', f, '--data-dir', dataDir], {});
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.equal(codeOf(r), code, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /nothing was changed/);
      assert.deepEqual(snapshot(dataDir), before, `${what}: the data directory is untouched`);
    }
    const missing = await cli(['restore', path.join(root, 'no-such.bak'), '--data-dir', dataDir], {});
    assert.equal(codeOf(missing), 'BACKUP_NOT_A_BACKUP', missing.stderr);
    assert.deepEqual(snapshot(dataDir), before);
  });

  it('backup: restoring on a new host needs the original master key: missing → BACKUP_KEY_MISSING, another → BACKUP_KEY_MISMATCH, the original → restored', async () => {
    const host2 = path.join(root, 'host2');
    const r1 = await cli(['restore', good, '--data-dir', host2], {});
    assert.equal(r1.code, 2, r1.stderr);
    assert.equal(codeOf(r1), 'BACKUP_KEY_MISSING', r1.stderr);
    assert.match(r1.stderr, /master key id k[0-9a-f]{16}/);
    assert.ok(!existsSync(path.join(host2, 'porthole.db')));

    const otherKey = path.join(root, 'other.key');
    writeFileSync(otherKey, randomBytes(32).toString('hex') + '\n');
    chmodSync(otherKey, 0o600);
    const r2 = await cli(['restore', good, '--data-dir', host2, '--master-key-file', otherKey], {});
    assert.equal(codeOf(r2), 'BACKUP_KEY_MISMATCH', r2.stderr);
    assert.ok(!existsSync(path.join(host2, 'porthole.db')));
    const check = await cli(['restore', good, '--data-dir', host2, '--master-key-file', otherKey, '--check'], {});
    assert.equal(codeOf(check), 'BACKUP_KEY_MISMATCH', '--check checks the key too');

    const r3 = await cli(['restore', good, '--data-dir', host2, '--master-key-file', path.join(dataDir, 'master.key')], {});
    assert.equal(r3.code, 0, r3.stderr);
    assert.equal(mode(path.join(host2, 'porthole.db')), '600');
    assert.equal(mode(host2), '700');
    // The new host's gateway runs with that key and opens the secrets (the demo AK/SK).
    const gw = await startIn(host2, ['--master-key-file', path.join(dataDir, 'master.key')]);
    try {
      const signed = await signedCall(gw.url, { ak: facts.ak!, sk: facts.sk! }, { path: `/v1/${facts.project_id}/cloudservers/detail`, projectId: facts.project_id });
      assert.equal(signed.status, 200, signed.text);
    } finally {
      await gw.close();
    }
  });

  it('backup: a gateway started on a restored database without its master key says MASTER_KEY_MISMATCH at start, naming the key id the secrets need', async () => {
    const host3 = path.join(root, 'host3');
    const original = path.join(dataDir, 'master.key');
    assert.equal((await cli(['restore', good, '--data-dir', host3, '--master-key-file', original], {})).code, 0);
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
    const { config } = loadConfig({ argv: ['--port', '0', '--host', '127.0.0.1', '--data-dir', host3, '--probe-interval-seconds', '0', '--demo'], env: {} });
    const gw = await startGateway(config, { logger }); // no key given: the gateway generates a new one
    await gw.close();
    const wanted = json<{ restore: { master_key_id: string } }>(await cli(['restore', good, '--data-dir', path.join(root, 'unused'), '--master-key-file', original, '--check', '--json'], {}));
    const line = lines.find((l) => l.code === 'MASTER_KEY_MISMATCH');
    assert.ok(line, `no MASTER_KEY_MISMATCH line in ${lines.map((l) => l.msg).join(' | ')}`);
    assert.ok(Object.keys(line.sealedUnder as object).length > 0);
    assert.ok(JSON.stringify(line).includes(wanted.restore.master_key_id), JSON.stringify(line));
    assert.ok(!JSON.stringify(lines).includes(readFileSync(original, 'utf8').trim()), 'never the key itself');
  });

  it('backup: backup refuses a data directory without a database (DATABASE_MISSING, exit 3), and PostgreSQL configurations are sent to pg_dump', async () => {
    const r = await cli(['backup', '--out', path.join(root, 'x.bak'), '--data-dir', path.join(root, 'empty')], {});
    assert.equal(r.code, 3, r.stderr);
    assert.equal(/: ([A-Z_]+):/.exec(r.stderr)?.[1], 'DATABASE_MISSING');
    assert.ok(!existsSync(path.join(root, 'x.bak')));
    const pg = await runCliEnv(['backup', '--out', path.join(root, 'x.bak')], { PORTHOLE_DATABASE_URL: 'postgres://h/db', PORTHOLE_MASTER_KEY: randomBytes(32).toString('hex') });
    assert.equal(pg.code, 2);
    assert.match(pg.stderr, /pg_dump/);
  });
});

/** runCli with arbitrary environment variables (the gateway's own PORTHOLE_* settings). */
async function runCliEnv(argv: string[], env: Record<string, string>): Promise<CliResult> {
  return cli(argv, env as Parameters<typeof cli>[1]);
}

await describePostgres('backup and restore on PostgreSQL (pg_dump / pg_restore)', () => {
  let schema: TestSchema;
  const key = randomBytes(32).toString('hex');
  const root = mkdtempSync(path.join(os.tmpdir(), 'porthole-pgdump-'));
  before(async () => { schema = await createTestSchema(); });
  after(async () => { await schema?.drop(); rmSync(root, { recursive: true, force: true }); });

  // One node directory for both runs: it keeps demo.json (the demo's password and AK/SK) like a real host would.
  const start = async () => {
    const { config } = loadConfig({
      argv: ['--port', '0', '--host', '127.0.0.1', '--data-dir', path.join(root, 'node'), '--probe-interval-seconds', '0', '--demo'],
      env: { PORTHOLE_DATABASE_URL: schema.url, PORTHOLE_MASTER_KEY: key },
    });
    return startGateway(config, { logger: silent });
  };

  it('backup: pg_dump of a serving gateway\'s schema, restored with pg_restore, gives a gateway that accepts the same credentials and secrets', async () => {
    const dump = path.join(root, 'porthole.dump');
    let gw = await start();
    const f = gw.demo!.facts;
    try {
      assert.equal((await mint(gw, await demoToken(gw))).status, 200);
      // As docs/deployment.md says: a custom-format dump of the gateway's schema, taken while it serves.
      execFileSync('pg_dump', ['--format=custom', '--no-owner', `--schema=${schema.name}`, `--file=${dump}`, TEST_DATABASE_URL]);
      const pw = path.join(root, 'later.pw');
      writeFileSync(pw, 'later-password-1');
      assert.equal((await cli(['user', 'create', '--name', 'made-after-dump', '--password-file', pw], adminEnv(gw))).code, 0);
    } finally {
      await gw.close();
    }
    // Disaster: the schema is gone. pg_restore brings it back (every node stopped meanwhile).
    await schema.admin(`drop schema ${schema.name} cascade`);
    execFileSync('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${TEST_DATABASE_URL}`, dump]);
    gw = await start();
    try {
      assert.equal((await mint(gw, await demoToken(gw))).status, 200);
      const signed = await signedCall(gw.url, { ak: f.ak!, sk: f.sk! }, { path: `/v1/${f.project_id}/cloudservers/detail`, projectId: f.project_id });
      assert.equal(signed.status, 200, signed.text);
      const users = json<{ users: { name: string }[] }>(await cli(['user', 'list', '--json'], adminEnv(gw))).users.map((u) => u.name);
      assert.ok(users.includes(f.user) && !users.includes('made-after-dump'), users.join(','));
      const migrations = (await schema.admin(`select name from ${schema.name}.porthole_migrations order by name`)).rows.map((r) => r.name as string);
      assert.deepEqual(migrations, [...MIGRATION_NAMES]);
    } finally {
      await gw.close();
    }
  });
});
