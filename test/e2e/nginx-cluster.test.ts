/**
 * The deployment guide exercised: nginx with the configuration of docs/deployment.md (read from the
 * guide; only the node addresses, listen ports and certificate paths are replaced) terminating TLS in
 * front of two real Porthole processes on PostgreSQL + Redis (issue 7):
 *  - API calls and console WebSockets (wss://) through nginx reach both nodes; the relay works; a
 *    client's own X-Forwarded-For is not believed;
 *  - a real browser (Chromium) opens the console page through nginx and sees the desktop;
 *  - one node drains (SIGTERM) while consoles run: calls and new consoles through nginx keep
 *    working (nginx retries the draining node's 503 on the other node), and the browser on the
 *    draining node is told "shutdown" when the grace ends.
 *
 * Needs `npm run build`, nginx, PostgreSQL and Redis (CI=true: a missing one fails the file).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { createTestRedis, describeWith, TEST_REDIS_URL, type TestRedis } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { launchBrowser, waitForState } from '../helpers/browser.js';
import {
  CLUSTER_DOMAIN, CLUSTER_PASSWORD, clusterFleet, clusterProjectId, clusterServerId, newMasterKey, sleep, startNode, until, websocketUrl, type NodeProcess,
} from '../helpers/cluster.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUIDE = path.join(ROOT, 'docs/deployment.md');
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const VNC_PASSWORD = 'vnc-pw-4';
const GRACE_S = 4;

/** The nginx block the guide marks for this test. */
export function guideNginxConfig(text = readFileSync(GUIDE, 'utf8')): string {
  const marker = text.indexOf('<!-- test: nginx-config');
  assert.ok(marker >= 0, 'docs/deployment.md marks its nginx configuration for the test');
  const start = text.indexOf('```nginx\n', marker);
  const end = text.indexOf('\n```', start + 9);
  assert.ok(start > marker && end > start, 'a ```nginx block follows the marker');
  return text.slice(start + 9, end + 1);
}

/** The guide's configuration for this machine: the nodes, loopback listen ports, the test certificate. */
function renderConfig(guide: string, o: { nodes: string[]; httpsPort: number; httpPort: number; cert: string; key: string }): string {
  const serverLines = /^(\s*)server 10\.0\.0\.\d+:8080( [^;]*)?;\n/gm;
  const found = [...guide.matchAll(serverLines)];
  assert.ok(found.length >= 2, 'the guide lists example nodes as "server 10.0.0.N:8080 …;"');
  const indent = found[0]![1]!;
  const opts = found[0]![2] ?? '';
  let first = true;
  let out = guide.replace(serverLines, () => {
    if (!first) return '';
    first = false;
    return o.nodes.map((n) => `${indent}server ${n}${opts};\n`).join('');
  });
  const subst: [RegExp, string][] = [
    [/^(\s*)listen 443 ssl;$/m, `$1listen 127.0.0.1:${o.httpsPort} ssl;`],
    [/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${o.httpPort};`],
    [/^(\s*)ssl_certificate\s+\S+;$/m, `$1ssl_certificate ${o.cert};`],
    [/^(\s*)ssl_certificate_key\s+\S+;$/m, `$1ssl_certificate_key ${o.key};`],
  ];
  for (const [re, to] of subst) {
    assert.match(out, re, `the guide's config has ${re.source}`);
    out = out.replace(re, to);
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

interface Res { status: number; headers: Record<string, string | string[] | undefined>; body: unknown; text: string }

/** HTTPS through nginx, trusting the test certificate; a fresh connection per call. */
function httpsCall(url: string, ca: string, init: { method?: string; headers?: Record<string, string>; json?: unknown } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const req = https.request(url, {
      method: init.method ?? (body === undefined ? 'GET' : 'POST'), ca, agent: false,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }), ...(init.headers ?? {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        let parsed: unknown;
        try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function describeNginx(fn: () => void): Promise<void> {
  if (!NGINX) {
    if (IN_CI) it('nginx in front of two nodes', () => { throw new Error('CI=true requires nginx (apt-get install nginx-light)'); });
    else it('nginx in front of two nodes', { skip: 'nginx is not installed (apt-get install nginx-light)' }, () => {});
    return;
  }
  await describeWith('the deployment guide: nginx (TLS) in front of two nodes on PostgreSQL + Redis', { postgres: true, redis: true }, fn);
}

await describeNginx(() => {
  let dir: string;
  let schema: TestSchema;
  let redis: TestRedis;
  let desktop: DemoDesktop;
  let nginx: ChildProcess;
  const nodes: NodeProcess[] = [];
  let base: string;
  let ca: string;
  let token: string;
  let browser: Browser | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-nginx-'));
    chmodSync(dir, 0o755); // nginx workers (nobody) use temp directories under it
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const [httpsPort, httpPort] = [await freePort(), await freePort()];
    base = `https://127.0.0.1:${httpsPort}`;

    schema = await createTestSchema();
    await schema.admin(`set search_path to ${schema.name}`);
    redis = await createTestRedis();
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'nginx desktop' });
    const common = {
      databaseUrl: schema.url, masterKey: newMasterKey(), redisUrl: TEST_REDIS_URL, redisPrefix: redis.prefix,
      args: ['--public-url', base, '--trust-proxy', '--drain-grace-seconds', String(GRACE_S), '--cluster-heartbeat-seconds', '1', '--cluster-node-timeout-seconds', '5'],
    };
    nodes.push(await startNode({ name: 'n1', ...common, fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD) }));
    nodes.push(await startNode({ name: 'n2', ...common }));

    const site = renderConfig(guideNginxConfig(), { nodes: nodes.map((n) => `127.0.0.1:${n.port}`), httpsPort, httpPort, cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') });
    writeFileSync(path.join(dir, 'porthole.conf'), site);
    writeFileSync(path.join(dir, 'nginx.conf'), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 2048; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    include ${dir}/porthole.conf;
}
`);
    execFileSync(NGINX!, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'pipe' });
    nginx = spawn(NGINX!, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    await until('nginx answers', async () => {
      try { return (await httpsCall(`${base}/healthz`, ca)).status === 200 ? true : undefined; } catch { return undefined; }
    }, 10_000, 100);
    const login = await httpsCall(`${base}/v3/auth/tokens`, ca, {
      json: { auth: { identity: { methods: ['password'], password: { user: { name: 'alice', password: CLUSTER_PASSWORD, domain: { name: CLUSTER_DOMAIN } } } }, scope: { project: { id: clusterProjectId } } } },
    });
    assert.equal(login.status, 201, login.text);
    token = String(login.headers['x-subject-token']);
  });

  after(async () => {
    await browser?.close();
    nginx?.kill('SIGQUIT');
    await Promise.all(nodes.map((n) => n.stop()));
    await desktop?.close();
    await schema?.drop();
    await redis?.cleanup();
    if (dir && nginx) await sleep(200);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const mint = async (): Promise<string> => {
    const r = await httpsCall(`${base}/v1/${clusterProjectId}/cloudservers/${clusterServerId('desk')}/remote_console`, ca, {
      headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
    });
    assert.equal(r.status, 200, r.text);
    const url = (r.body as { remote_console: { url: string } }).remote_console.url;
    assert.ok(url.startsWith(`${base}/vnc/`), url);
    return url;
  };
  const connect = (consoleUrl: string, headers: Record<string, string> = {}) =>
    RfbTestClient.connect(websocketUrl(consoleUrl, base), { wsOptions: { ca, headers: { origin: base, ...headers } } });

  it('API calls and wss:// consoles through nginx reach both nodes; the relay works; a forged X-Forwarded-For is not believed', async () => {
    assert.equal((await httpsCall(`${base}/readyz`, ca)).status, 200);
    const clients: RfbTestClient[] = [];
    // Mint first, then connect: nginx takes turns per request, so the upgrades alternate between the nodes.
    const urls: string[] = [];
    for (let i = 0; i < 6; i++) urls.push(await mint());
    for (const url of urls) {
      const c = await connect(url, { 'x-forwarded-for': '203.0.113.9' });
      assert.equal(c.serverInit?.name, 'nginx desktop');
      await c.requestUpdate();
      clients.push(c);
    }
    const rows = (await schema.admin('select node_id, source_ip from console_sessions where ended_at is null')).rows as { node_id: string; source_ip: string }[];
    assert.equal(rows.length, 6);
    assert.deepEqual([...new Set(rows.map((r) => r.node_id))].sort(), nodes.map((n) => n.nodeId).sort(), 'both nodes relay consoles');
    assert.ok(rows.every((r) => r.source_ip === '127.0.0.1'), `the address nginx saw, not the forged one: ${JSON.stringify(rows.map((r) => r.source_ip))}`);
    for (const c of clients) { c.ws.close(); await c.closed; }
  });

  it('a browser opens the console page through nginx and sees the desktop', async (t) => {
    try {
      browser = await launchBrowser();
    } catch (err) {
      if (IN_CI) throw err;
      t.skip(`no browser: ${(err as Error).message}`);
      return;
    }
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const res = await page.goto(await mint());
    assert.equal(res?.status(), 200);
    await waitForState(page, 'connected', 15_000);
    await ctx.close();
  });

  it('one node drains (SIGTERM): calls and new consoles through nginx keep working; its browser console is told "shutdown" after the grace', async () => {
    // A browser console and an RFB client on the node that will drain.
    const victim = nodes[0]!;
    let page: import('playwright-core').Page | undefined;
    const ctx = browser ? await browser.newContext({ ignoreHTTPSErrors: true }) : undefined;
    let onVictim: RfbTestClient | undefined;
    for (let i = 0; i < 10 && (!onVictim || (ctx && !page)); i++) {
      const before = new Set(((await schema.admin('select id from console_sessions where node_id = $1', [victim.nodeId])).rows as { id: string }[]).map((r) => r.id));
      const url = await mint();
      let client: RfbTestClient | undefined;
      let p: import('playwright-core').Page | undefined;
      if (ctx && !page) {
        p = await ctx.newPage();
        await p.goto(url);
        await waitForState(p, 'connected', 15_000);
      } else {
        client = await connect(url);
      }
      const now = ((await schema.admin('select id from console_sessions where node_id = $1', [victim.nodeId])).rows as { id: string }[]).map((r) => r.id);
      const onIt = now.some((id) => !before.has(id));
      if (onIt && p) page = p;
      else if (onIt && client) onVictim = client;
      else {
        await p?.close();
        client?.ws.close();
        await httpsCall(`${base}/healthz`, ca); // shift nginx's round robin by one request
      }
    }
    assert.ok(onVictim, 'an RFB console on the node to drain');
    const t0 = Date.now();
    victim.kill('SIGTERM');
    await victim.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('draining'), 5000);
    await onVictim.requestUpdate(); // the draining node still relays its live console
    for (let i = 0; i < 10; i++) {
      const c = await connect(await mint());
      await c.requestUpdate();
      c.ws.close();
    }
    const closed = await onVictim.closed;
    assert.deepEqual(closed, { code: 4010, reason: 'shutdown' });
    assert.ok(Date.now() - t0 >= GRACE_S * 1000 - 300);
    if (page) {
      assert.equal(await waitForState(page, 'disconnected', 10_000), 'shutdown');
      assert.match(await page.locator('body').innerText(), /restarting/i);
    }
    assert.equal((await victim.exited).code, 0);
    assert.equal((await httpsCall(`${base}/readyz`, ca)).status, 200, 'the other node serves on');
    await mint();
    await ctx?.close();
  });
});
