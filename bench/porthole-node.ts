/**
 * Porthole's real path for the bench: the gateway started by `startGateway` (src/gateway.ts) on
 * 127.0.0.1:0 with embedded SQLite in a temporary directory and a fleet whose three cloud servers
 * point at the bench target's RFB ports (`--rfb-stream P --rfb-echo P --rfb-idle P`) with security
 * None. Throttling is raised out of the way (the bench measures the gateway, not its rate limits).
 * Prints {"url", "projectId", "servers", "user", "password", "domain"} when ready; stdin commands:
 * "gc" → memory after a full GC, "heap FILE" → a heap snapshot, "profile-start" / "profile-stop FILE"
 * → a CPU profile of the window (lib/inspector-profile.ts), "close" → stops the gateway and exits.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { loadConfig } from '../src/config/index.js';
import { deriveProjectId, deriveResourceId } from '../src/domain/fleet.js';
import { startGateway } from '../src/gateway.js';
import { profileCommand } from './lib/inspector-profile.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) throw new Error(`--${name} is required`);
  return v;
};
const ports = { stream: arg('rfb-stream'), echo: arg('rfb-echo'), idle: arg('rfb-idle') };

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-bench-'));
const password = 'bench-password-1';
const fleet = `
domains:
  - name: bench
    users: [{ name: bencher, password: ${password}, roles: { relay: operator } }]
    projects:
      - name: relay
        cloudservers:
${Object.entries(ports).map(([name, port]) => `          - name: ${name}\n            console: { url: "vnc://127.0.0.1:${port}", security: none }`).join('\n')}
`;
writeFileSync(path.join(dataDir, 'fleet.yaml'), fleet);
const { config } = loadConfig({
  argv: [
    '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--fleet', path.join(dataDir, 'fleet.yaml'), '--no-demo',
    '--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn', '--ratelimit-per-second', '1000000', '--ratelimit-per-minute', '60000000',
    '--iam-login-failures-per-address', '1000000', '--console-token-ttl-seconds', '3600',
  ],
});
// Gateway logs go to stderr: stdout carries only this script's JSON answers.
const gw = await startGateway(config, { logDestination: process.stderr });
const projectId = deriveProjectId('bench', 'relay');
const servers = Object.fromEntries(Object.keys(ports).map((name) => [name, deriveResourceId(projectId, 'cloudserver', name)]));
process.stdout.write(JSON.stringify({ url: gw.url, projectId, servers, user: 'bencher', password, domain: 'bench' }) + '\n');

let closing = false;
async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  await gw.close().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}

process.stdin.setEncoding('utf8');
let pending = '';
process.stdin.on('data', (d: string) => {
  pending += d;
  let nl: number;
  while ((nl = pending.indexOf('\n')) >= 0) {
    const cmd = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (profileCommand(cmd, (obj) => process.stdout.write(JSON.stringify(obj) + '\n'))) continue;
    if (cmd === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      process.stdout.write(JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, live: gw.upgrade.live().length }) + '\n');
    } else if (cmd.startsWith('heap ')) {
      (globalThis as { gc?: () => void }).gc?.();
      process.stdout.write(JSON.stringify({ heap: writeHeapSnapshot(cmd.slice(5)) }) + '\n');
    } else if (cmd === 'close') void close();
  }
});
process.stdin.on('end', () => void close());
process.on('SIGTERM', () => void close());
