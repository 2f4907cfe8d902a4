/**
 * `node --import tsx bench/minting-scale.ts`: console-URL minting throughput on PostgreSQL with one
 * and with two gateway nodes (issue 7), written to its own section of bench/RESULTS.md (between the
 * `minting-scale` markers; the rest of the file belongs to `npm run bench`).
 *
 * Each node is a real process (`node dist/src/main.js serve`; run `npm run build` first) on one fresh
 * schema of the local PostgreSQL (`PORTHOLE_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1/test);
 * the scenarios with Redis use `PORTHOLE_TEST_REDIS_URL` (default redis://127.0.0.1:6379) under a
 * fresh prefix. The load: `POST /v1/{project}/cloudservers/{id}/remote_console` with an IAM token,
 * HTTP/1.1 keep-alive, a fixed number of connections with one request in flight each, for a bounded
 * time after a warm-up; with two nodes the connections are split evenly and sent to the nodes
 * directly (a load balancer would add its own cost). Throttling is raised out of the way.
 *
 * Also recorded per scenario: the CPU time the gateway processes and the PostgreSQL server processes
 * used (from /proc), so the cost of one mint can be split between the node and the database, and a
 * count of the tokens in the database (every 200 must be a stored token).
 *
 * Flags: --seconds N (measured time per scenario, default 10), --connections N (default 16),
 * --no-redis, --out FILE. Every process started here is killed on exit; a watchdog ends the run.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { httpLoad, type LoadResult } from './lib/clients.js';
import { cpuModel, treeCpuMs } from './lib/proc.js';
import { startDemoDesktop } from '../src/demo/desktop.js';
import { createTestSchema } from '../test/helpers/postgres.js';
import { createTestRedis, TEST_REDIS_URL, redisUnavailable } from '../test/helpers/redis.js';
import { clusterFleet, clusterLogin, clusterProjectId, clusterServerId, newMasterKey, startNode, type NodeProcess } from '../test/helpers/cluster.js';
import { writeResultsSection } from './lib/results-section.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] ?? dflt : dflt; };
const SECONDS = Number(opt('seconds', '10'));
const CONNECTIONS = Number(opt('connections', '16'));
const WARMUP_MS = 2000;
const OUT = opt('out', path.join(ROOT, 'bench', 'RESULTS.md'));
const USE_REDIS = !argv.includes('--no-redis');
const BEGIN = '<!-- minting-scale:begin -->';
const END = '<!-- minting-scale:end -->';

const watchdog = setTimeout(() => { console.error('minting-scale: watchdog: still running after 5 min; stopping'); process.exit(2); }, 5 * 60_000);
watchdog.unref();
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** CPU ms of every process named `comm` (PostgreSQL: the postmaster, its backends, walwriter…). */
function commCpuMs(name: string): number {
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== name) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) * 10; // utime + stime in clock ticks (100 Hz)
    } catch { /* gone meanwhile */ }
  }
  return total;
}

interface Scenario { name: string; nodes: number; redis: boolean }
interface Outcome { scenario: Scenario; load: LoadResult; perNode: LoadResult[]; nodeCpuMs: number; pgCpuMs: number; redisCpuMs: number; seconds: number; stored: number }

async function runScenario(s: Scenario, dbUrl: string, admin: (q: string) => Promise<pg.QueryResult>, fleet: string, masterKey: string): Promise<Outcome> {
  const redis = s.redis ? await createTestRedis() : undefined;
  const nodes: NodeProcess[] = [];
  try {
    const common = {
      databaseUrl: dbUrl, masterKey, ...(redis ? { redisUrl: TEST_REDIS_URL, redisPrefix: redis.prefix } : {}),
      args: ['--ratelimit-per-second', '1000000', '--ratelimit-per-minute', '60000000', '--ratelimit-per-address-per-second', '1000000', '--ratelimit-per-address-per-minute', '60000000', '--console-token-ttl-seconds', '3600', '--log-level', 'warn'],
    };
    // The fleet is already in the schema (applied by the first run); applying it again changes nothing.
    for (let i = 0; i < s.nodes; i++) nodes.push(await startNode({ name: `bench${i}`, ...common, fleet }));
    const token = await clusterLogin(nodes[0]!.url, 'alice');
    const target = { method: 'POST', path: `/v1/${clusterProjectId}/cloudservers/${clusterServerId('desk')}/remote_console`, headers: { 'x-auth-token': token, 'content-type': 'application/json' }, body: JSON.stringify({ remote_console: { protocol: 'vnc', type: 'novnc' } }) };
    const per = Math.max(1, Math.floor(CONNECTIONS / s.nodes));
    // Warm-up: JIT, connection pools, prepared paths.
    await Promise.all(nodes.map((n) => httpLoad({ port: n.port, ...target, connections: per, durationMs: WARMUP_MS })));
    const before = (await admin('select count(*)::int as n from console_tokens')).rows[0].n as number;
    const cpu0 = nodes.map((n) => treeCpuMs(n.pid));
    const pg0 = commCpuMs('postgres');
    const redis0 = commCpuMs('redis-server');
    const t0 = performance.now();
    const perNode = await Promise.all(nodes.map((n) => httpLoad({ port: n.port, ...target, connections: per, durationMs: SECONDS * 1000 })));
    const seconds = (performance.now() - t0) / 1000;
    const nodeCpuMs = nodes.reduce((sum, n, i) => sum + (treeCpuMs(n.pid) - cpu0[i]!), 0);
    const pgCpuMs = commCpuMs('postgres') - pg0;
    const redisCpuMs = commCpuMs('redis-server') - redis0;
    const stored = ((await admin('select count(*)::int as n from console_tokens')).rows[0].n as number) - before;
    const ok = perNode.reduce((a, r) => a + r.ok, 0);
    const lat = perNode.map((r) => r.p50ms);
    const load: LoadResult = {
      requests: perNode.reduce((a, r) => a + r.requests, 0), ok, errors: perNode.reduce((a, r) => a + r.errors, 0), rps: ok / seconds,
      p50ms: lat.reduce((a, b) => a + b, 0) / lat.length, p99ms: Math.max(...perNode.map((r) => r.p99ms)),
      statuses: perNode.reduce<Record<string, number>>((acc, r) => { for (const [k, v] of Object.entries(r.statuses)) acc[k] = (acc[k] ?? 0) + v; return acc; }, {}),
    };
    return { scenario: s, load, perNode, nodeCpuMs, pgCpuMs, redisCpuMs, seconds, stored };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.cleanup();
  }
}

async function main(): Promise<void> {
  const mainJs = path.join(ROOT, 'dist/src/main.js');
  if (!existsSync(mainJs)) throw new Error('dist/src/main.js is missing: run npm run build first');
  const schema = await createTestSchema();
  const desktop = await startDemoDesktop({ password: 'bench-vnc' });
  const redisOk = USE_REDIS && (await redisUnavailable()) === false;
  const scenarios: Scenario[] = [
    { name: '1 node, PostgreSQL', nodes: 1, redis: false },
    { name: '2 nodes, PostgreSQL', nodes: 2, redis: false },
    ...(redisOk ? [{ name: '1 node, PostgreSQL + Redis', nodes: 1, redis: true }, { name: '2 nodes, PostgreSQL + Redis', nodes: 2, redis: true }] : []),
  ];
  const outcomes: Outcome[] = [];
  const pgVersion = (await schema.admin('show server_version')).rows[0].server_version as string;
  try {
    const fleet = clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, 'bench-vnc');
    const masterKey = newMasterKey();
    await schema.admin(`set search_path to ${schema.name}`);
    for (const s of scenarios) {
      log(`${s.name}: ${CONNECTIONS} connections, ${SECONDS} s`);
      const o = await runScenario(s, schema.url, (q) => schema.admin(q), fleet, masterKey);
      log(`${s.name}: ${o.load.rps.toFixed(0)} mints/s, p50 ${o.load.p50ms.toFixed(2)} ms, p99 ${o.load.p99ms.toFixed(1)} ms, ${JSON.stringify(o.load.statuses)}`);
      outcomes.push(o);
    }
  } finally {
    await desktop.close();
    await schema.drop();
  }
  writeSection(outcomes, pgVersion, redisOk);
}

function writeSection(outcomes: Outcome[], pgVersion: string, redisOk: boolean): void {
  const base = outcomes[0]?.load.rps ?? NaN;
  const rows = outcomes.map((o) => {
    const mints = o.load.ok;
    return `| ${o.scenario.name} | ${o.load.rps.toFixed(0)} | ${(o.load.rps / base).toFixed(2)}× | ${o.load.p50ms.toFixed(2)} | ${o.load.p99ms.toFixed(1)} | ` +
      `${(o.nodeCpuMs / mints).toFixed(2)} | ${(o.pgCpuMs / mints).toFixed(2)} | ${o.scenario.redis ? (o.redisCpuMs / mints).toFixed(3) : '—'} | ` +
      `${((o.nodeCpuMs + o.pgCpuMs + o.redisCpuMs) / (o.seconds * 1000) / os.cpus().length * 100).toFixed(0)}% | ` +
      `${o.stored === mints ? `${mints} = ${o.stored}` : `**${mints} ≠ ${o.stored}**`} | ${JSON.stringify(o.load.statuses)} |`;
  });
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const section = `${BEGIN}
## Console-URL minting on PostgreSQL: one node and two nodes (issue #7)

Recorded by \`node --import tsx bench/minting-scale.ts\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.
Machine: ${cpuModel()}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM; PostgreSQL ${pgVersion} and ${redisOk ? 'Redis' : 'no Redis'} on the same machine;
load average at the end ${load} (other engineers' work shares this machine).
Load: \`POST /v1/{project}/cloudservers/{id}/remote_console\` with an IAM token, ${CONNECTIONS} keep-alive connections in all
(one request in flight each; split evenly over the nodes, sent to each node directly), ${SECONDS} s measured after a ${WARMUP_MS / 1000} s warm-up;
each node a real \`porthole serve\` process with a pool of 10 database connections; throttling raised out of the way.
Every mint is a resource read, a probe-state read and a token insert plus its audit event (both group-committed with the
mints around them); the IAM token's principal comes from the node's identity cache; with Redis, two throttling scripts.

| scenario | mints/s | vs 1 node | p50 ms | p99 ms | node CPU ms/mint | PostgreSQL CPU ms/mint | Redis CPU ms/mint | CPU used (nodes + PostgreSQL + Redis) | 200s = tokens stored | statuses |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Reading: "CPU used" is the share of the machine's cores the nodes, PostgreSQL and Redis took (the load generator is
the rest). The node's CPU per mint and PostgreSQL's are measured separately, so a fleet's capacity can be estimated
as (cores available to the nodes ÷ node ms/mint) and (cores of the database ÷ PostgreSQL ms/mint), whichever is smaller.
On this ${os.cpus().length}-core machine the nodes, PostgreSQL, Redis and the load generator share the same cores, so a second
node cannot add cores here: the "vs 1 node" column shows contention, not the scaling of separate machines.
${END}`;
  writeResultsSection(OUT, BEGIN, END, section);
  log(`wrote ${OUT}`);
}

main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1); });

