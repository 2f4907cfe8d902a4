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
import { fullGc, memoryAfterGc, reply, serveCommands } from './lib/child-commands.js';
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
    '--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn', '--ratelimit-per-second', '1000000', '--ratelimit-per-minute', '60000000', '--ratelimit-per-address-per-second', '1000000', '--ratelimit-per-address-per-minute', '60000000',
    '--iam-login-failures-per-address', '1000000', '--console-token-ttl-seconds', '3600',
  ],
});
// Gateway logs go to stderr: stdout carries only this script's JSON answers.
const gw = await startGateway(config, { logDestination: process.stderr });
const projectId = deriveProjectId('bench', 'relay');
const servers = Object.fromEntries(Object.keys(ports).map((name) => [name, deriveResourceId(projectId, 'cloudserver', name)]));
reply({ url: gw.url, projectId, servers, user: 'bencher', password, domain: 'bench' });

let closing = false;
/** Stops the gateway; `answer`: the parent asked (`close`) and waits for one line before it stops us. */
async function close(answer = false): Promise<void> {
  if (closing) return;
  closing = true;
  await gw.close().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
  if (answer) reply({ closed: true });
  process.exit(0);
}

serveCommands((cmd) => {
  if (profileCommand(cmd, reply)) return;
  if (cmd === 'gc') reply(memoryAfterGc({ live: gw.upgrade.live().length }));
  else if (cmd.startsWith('heap ')) {
    fullGc();
    reply({ heap: writeHeapSnapshot(cmd.slice(5)) });
  } else if (cmd === 'close') void close(true);
}, () => void close());
