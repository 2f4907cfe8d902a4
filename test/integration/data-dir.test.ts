/**
 * The data directory is the operator's alone: the SQLite database with its WAL files, the generated master
 * key and demo.json are 0600 in a 0700 directory whatever the umask, also when the directory or the files
 * already existed with wider modes (security review, "also": porthole.db was created 0644).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startGateway } from '../../src/gateway.js';
import { call, demoLogin, type TestGateway } from '../helpers/gateway.js';

const mode = (p: string) => statSync(p).mode & 0o777;

async function startIn(dataDir: string): Promise<TestGateway> {
  const { config } = loadConfig({ argv: ['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--probe-interval-seconds', '0', '--demo'], env: {} });
  const gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  return { gw, url: gw.url, dataDir, clock: { offsetMs: 0 }, close: () => gw.close() };
}

/** Every entry of the data directory with its mode (the directory itself as '.'). */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': mode(dir).toString(8) };
  for (const name of readdirSync(dir)) out[name] = mode(path.join(dir, name)).toString(8);
  return out;
}

describe('data directory permissions', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'porthole-datadir-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a new data directory is 0700 and everything in it 0600, under umask 000', async () => {
    const dataDir = path.join(root, 'fresh', 'data');
    const old = process.umask(0);
    let t: TestGateway | undefined;
    try {
      t = await startIn(dataDir);
      // A write through the API so the WAL has content.
      const token = await demoLogin(t);
      const f = t.gw.demo!.facts;
      const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
        headers: { 'x-auth-token': token }, json: { remote_console: { type: 'novnc', protocol: 'vnc' } },
      });
      assert.equal(r.status, 200, r.text);
    } finally {
      process.umask(old);
      await t?.close();
    }
    const seen = modes(dataDir);
    for (const name of ['porthole.db', 'master.key', 'demo.json']) assert.ok(name in seen, `${name} exists`);
    assert.deepEqual(Object.entries(seen).filter(([n, m]) => m !== (n === '.' ? '700' : '600')), [], JSON.stringify(seen));
  });

  it('an existing world-readable directory and database are narrowed at start', async () => {
    const dataDir = path.join(root, 'old');
    mkdirSync(dataDir, { recursive: true });
    chmodSync(dataDir, 0o755);
    const t1 = await startIn(dataDir);
    await t1.close();
    for (const name of readdirSync(dataDir)) chmodSync(path.join(dataDir, name), 0o644);
    writeFileSync(path.join(dataDir, 'porthole.db-wal'), '', { flag: 'a' });
    chmodSync(path.join(dataDir, 'porthole.db-wal'), 0o644);
    chmodSync(dataDir, 0o755);
    const t2 = await startIn(dataDir);
    try {
      const seen = modes(dataDir);
      assert.deepEqual(Object.entries(seen).filter(([n, m]) => m !== (n === '.' ? '700' : '600')), [], JSON.stringify(seen));
    } finally {
      await t2.close();
    }
  });
});
