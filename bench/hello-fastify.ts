/**
 * The minting benchmark's yardsticks, in their own process like the gateway, no logging:
 *  - `POST /hello`: a hello-world Fastify route (the yardstick), answering a small JSON object;
 *  - `POST /hello-insert`: the same plus one INSERT into a better-sqlite3 table (WAL, synchronous=NORMAL,
 *    one prepared statement, as Porthole's SQLite store is configured): the floor of a request that
 *    durably records one row.
 * Both take the same small JSON body the ECS remote_console call sends. Prints {"port"} when listening.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import Fastify from 'fastify';

const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-bench-hello-'));
const db = new Database(path.join(dir, 'hello.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE tokens (hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL)');
const insert = db.prepare('INSERT INTO tokens (hash, created_at) VALUES (?, ?)');

const app = Fastify({ logger: false });
app.post('/hello', async () => ({ hello: 'world' }));
app.post('/hello-insert', async () => {
  insert.run(randomBytes(32).toString('hex'), Date.now());
  return { hello: 'world' };
});
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
process.stdout.write(JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 }) + '\n');

const stop = () => { db.close(); rmSync(dir, { recursive: true, force: true }); process.exit(0); };
process.stdin.resume();
process.stdin.on('end', () => void app.close().then(stop));
process.on('SIGTERM', stop);
