/**
 * `node --import tsx bench/backup.ts`: `porthole backup` of a large embedded SQLite database while the
 * gateway mints console URLs (reliability issue, item 5), written to its own section of
 * bench/RESULTS.md (between the `backup` markers).
 *
 * The database: a real gateway process (`node dist/src/main.js serve`; run `npm run build` first)
 * creates the schema and the cluster tests' fleet, then 10,000 more machines and 1,000,000 audit
 * events are inserted in the shapes the gateway writes (straight into SQLite: making a million audit
 * rows through the API would take the machine for an hour). The gateway then serves that database, and
 * the load is `POST …/remote_console` over keep-alive connections (every mint writes a token and an audit
 * row). Measured: the minting rate in 1 s windows before, during and after `porthole backup` (a separate
 * process, as an operator runs it), the backup's wall time and size, and `porthole restore` of that file
 * into another data directory (offline: header, SHA-256, integrity_check, rename).
 *
 * Flags: --machines N (default 10000), --audit N (default 1000000), --connections N (default 4),
 * --baseline-seconds N (default 10), --out FILE. Every process started here is killed on exit.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SqliteDatabase from 'better-sqlite3';
import { httpLoad } from './lib/clients.js';
import { cpuModel } from './lib/proc.js';
import { startDemoDesktop } from '../src/demo/desktop.js';
import { clusterFleet, clusterLogin, clusterProjectId, clusterServerId, newMasterKey, startNode } from '../test/helpers/cluster.js';
import { writeResultsSection } from './lib/results-section.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN_JS = path.join(ROOT, 'dist/src/main.js');
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] ?? dflt : dflt; };
const MACHINES = Number(opt('machines', '10000'));
const AUDIT = Number(opt('audit', '1000000'));
const CONNECTIONS = Number(opt('connections', '4'));
const BASELINE_S = Number(opt('baseline-seconds', '10'));
const OUT = opt('out', path.join(ROOT, 'bench', 'RESULTS.md'));
const BEGIN = '<!-- backup:begin -->';
const END = '<!-- backup:end -->';

const watchdog = setTimeout(() => { console.error('backup bench: watchdog: still running after 10 min; stopping'); process.exit(2); }, 10 * 60_000);
watchdog.unref();
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** Adds `machines` copies of the fleet's machine and `audit` audit events shaped like the gateway's. */
function populate(file: string): void {
  const db = new SqliteDatabase(file);
  db.pragma('journal_mode = WAL');
  const proto = db.prepare("select * from resources where kind = 'cloudserver' limit 1").get() as Record<string, unknown>;
  const cols = Object.keys(proto);
  const ins = db.prepare(`insert into resources (${cols.join(',')}) values (${cols.map((c) => `@${c}`).join(',')})`);
  db.transaction(() => {
    for (let i = 0; i < MACHINES; i++) ins.run({ ...proto, id: randomUUID(), name: `bench-${i}`, endpoint_port: 10_000 + (i % 50_000) });
  })();
  const ev = db.prepare(`insert into audit_events (id, at, request_id, actor_user_id, actor_name, actor_ak, action, resource_kind, resource_id, project_id, source_ip, user_agent, result, code, detail)
    values (?, ?, ?, ?, 'alice', null, 'ecs:cloudServers:vnc', 'cloudserver', ?, ?, '127.0.0.1', 'bench', 'success', null, null)`);
  const user = randomUUID();
  const t0 = Date.now() - AUDIT * 1000;
  const BATCH = 50_000;
  for (let done = 0; done < AUDIT; done += BATCH) {
    db.transaction(() => {
      for (let i = done; i < Math.min(AUDIT, done + BATCH); i++) ev.run(randomUUID(), t0 + i * 1000, randomBytes(8).toString('hex'), user, proto.id, clusterProjectId);
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/** Runs `porthole <args>` as its own process; resolves with its exit code and wall time. */
function porthole(args: string[]): Promise<{ code: number; ms: number; stderr: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN_JS, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code: code ?? -1, ms: performance.now() - t0, stderr }));
  });
}

async function main(): Promise<void> {
  if (!existsSync(MAIN_JS)) throw new Error('dist/src/main.js is missing: run npm run build first');
  const root = mkdtempSync(path.join(os.tmpdir(), 'porthole-bench-backup-'));
  const dataDir = path.join(root, 'data');
  const keyFile = path.join(root, 'master.key');
  const masterKey = newMasterKey();
  writeFileSync(keyFile, masterKey + '\n', { mode: 0o600 });
  const desktop = await startDemoDesktop({ password: 'bench-vnc' });
  const fleet = clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, 'bench-vnc');
  // On SQLite: no database URL; the data directory given last wins over the helper's own.
  const common = { databaseUrl: '', masterKey, args: ['--data-dir', dataDir, '--ratelimit-per-second', '1000000', '--ratelimit-per-minute', '60000000', '--ratelimit-per-address-per-second', '1000000', '--ratelimit-per-address-per-minute', '60000000', '--log-level', 'warn'] };
  try {
    const seed = await startNode({ name: 'seed', ...common, fleet });
    await seed.stop();
    log(`populating: ${MACHINES} machines, ${AUDIT} audit events`);
    const tPop = performance.now();
    populate(path.join(dataDir, 'porthole.db'));
    const dbBytes = statSync(path.join(dataDir, 'porthole.db')).size;
    log(`populated in ${((performance.now() - tPop) / 1000).toFixed(1)} s: ${(dbBytes / 2 ** 20).toFixed(0)} MiB`);

    const node = await startNode({ name: 'gw', ...common });
    const token = await clusterLogin(node.url, 'alice');
    const target = {
      port: node.port, method: 'POST', path: `/v1/${clusterProjectId}/cloudservers/${clusterServerId('desk')}/remote_console`,
      headers: { 'x-auth-token': token, 'content-type': 'application/json' }, body: JSON.stringify({ remote_console: { protocol: 'vnc', type: 'novnc' } }), connections: CONNECTIONS,
    };
    const windows = async (seconds: number | (() => boolean)) => {
      let ok = 0; let errors = 0; let ms = 0;
      for (let i = 0; typeof seconds === 'number' ? i < seconds : !seconds(); i++) {
        const t0 = performance.now();
        const r = await httpLoad({ ...target, durationMs: 1000 });
        ms += performance.now() - t0; ok += r.ok; errors += r.errors;
      }
      return { rps: ok / (ms / 1000), ok, errors, seconds: ms / 1000 };
    };
    await httpLoad({ ...target, durationMs: 5000 }); // warm-up: JIT, statement cache
    log('minting without a backup');
    const before = await windows(BASELINE_S);
    log(`before: ${before.rps.toFixed(0)} mints/s`);
    const out = path.join(root, 'porthole.bak');
    let done = false;
    const backup = porthole(['backup', '--out', out, '--data-dir', dataDir, '--master-key-file', keyFile]).finally(() => { done = true; });
    const during = await windows(() => done);
    const b = await backup;
    if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
    log(`backup: ${(b.ms / 1000).toFixed(1)} s; during: ${during.rps.toFixed(0)} mints/s`);
    const after = await windows(BASELINE_S);
    log(`after: ${after.rps.toFixed(0)} mints/s`);
    await node.stop();
    const restoreDir = path.join(root, 'restored');
    const r = await porthole(['restore', out, '--data-dir', restoreDir, '--master-key-file', keyFile]);
    if (r.code !== 0) throw new Error(`restore failed: ${r.stderr}`);
    log(`restore: ${(r.ms / 1000).toFixed(1)} s`);
    writeSection({ dbBytes, backupBytes: statSync(out).size, backupMs: b.ms, restoreMs: r.ms, before, during, after });
  } finally {
    await desktop.close();
    rmSync(root, { recursive: true, force: true });
  }
}

interface Rate { rps: number; ok: number; errors: number; seconds: number }

function writeSection(o: { dbBytes: number; backupBytes: number; backupMs: number; restoreMs: number; before: Rate; during: Rate; after: Rate }): void {
  const base = (o.before.rps + o.after.rps) / 2;
  const row = (name: string, x: Rate) => `| ${name} | ${x.seconds.toFixed(1)} | ${x.rps.toFixed(0)} | ${(x.rps / base).toFixed(2)}× | ${x.errors} |`;
  const section = `${BEGIN}
## Backup of a large SQLite database while the gateway mints (reliability issue, item 5)

Recorded by \`node --import tsx bench/backup.ts\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.
Machine: ${cpuModel()}, ${os.cpus().length} cores; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (shared with other engineers' work).
Database: ${MACHINES.toLocaleString('en')} machines and ${AUDIT.toLocaleString('en')} audit events, ${(o.dbBytes / 2 ** 20).toFixed(0)} MiB. Load: \`POST …/remote_console\`,
${CONNECTIONS} keep-alive connections, 1 s windows; \`porthole backup\` runs as its own process (SQLite online backup in one step, then
quick_check, SHA-256 and the copy into the backup file).

| backup | time | size |
|---|---|---|
| \`porthole backup\` while minting | ${(o.backupMs / 1000).toFixed(1)} s | ${(o.backupBytes / 2 ** 20).toFixed(0)} MiB |
| \`porthole restore\` (gateway stopped; SHA-256, integrity_check, rename) | ${(o.restoreMs / 1000).toFixed(1)} s | |

| minting | seconds | mints/s | vs without backup (mean of before and after) | errors |
|---|---|---|---|---|
${row('before the backup', o.before)}
${row('during the backup', o.during)}
${row('after the backup', o.after)}

Target: minting during a backup at least 0.7× the rate without one.
${END}`;
  writeResultsSection(OUT, BEGIN, END, section);
  log(`wrote ${OUT}`);
}

main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1); });
