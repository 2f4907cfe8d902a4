/**
 * Master-key rotation without downtime for readers, on two gateway nodes sharing one store: with the
 * new key current and the old one previous, both nodes open values sealed under either key (a VncAuth
 * console to the demo desktop and an AK/SK call work before, during and after `porthole key rotate`);
 * the rotation re-seals every stored secret under the new key; then a node with only the new key
 * works, which is when the old key can be dropped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { SecretBox, keyIdOf } from '../../src/domain/secrets.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { signedCall } from '../helpers/aksk.js';
import { call, login, passwordAuth } from '../helpers/gateway.js';
import { cli, json } from '../helpers/cli.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const VNC_PASSWORD = 'rot8pass';

describe('porthole key rotate', () => {
  let dataDir: string;
  let desktop: DemoDesktop;
  const nodes: Gateway[] = [];
  let key: { ak: string; sk: string };
  const projectId = deriveProjectId('rot-co', 'lab');
  const serverId = deriveResourceId(projectId, 'cloudserver', 'vm-1');
  const deskId = deriveResourceId(projectId, 'desktop', 'desk-1');

  async function node(name: string, master: Buffer, previous: Buffer[] = [], fleet?: string): Promise<Gateway> {
    const argv = ['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'silent', '--node-id', name, '--no-demo',
      '--probe-interval-seconds', '0', '--admin-operator-domains', 'rot-co', '--master-key', master.toString('hex')];
    if (previous.length) argv.push('--master-key-previous', previous.map((k) => k.toString('hex')).join(','));
    if (fleet) argv.push('--fleet', fleet);
    const gw = await startGateway(loadConfig({ argv, env: {} }).config, { logger: pino({ level: 'silent' }) });
    nodes.push(gw);
    return gw;
  }

  /** A console via `gw` to the demo desktop (VncAuth with the sealed password) shows its screen. */
  async function consoleWorks(gw: Gateway): Promise<void> {
    const token = await login(gw.url, 'root', 'root-password', 'rot-co', projectId);
    for (const u of [
      ((await call(`${gw.url}/v1/${projectId}/cloudservers/${serverId}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } })).body as Json).remote_console.url,
      ((await call(`${gw.url}/v2/${projectId}/desktops/${deskId}/remote-consoles`, { headers: { 'x-auth-token': token } })).body as Json).url,
    ] as string[]) {
      const ws = new URL(u);
      ws.protocol = 'ws:';
      ws.pathname = ws.pathname.replace('vnc_auto.html', 'websockify');
      const c = await RfbTestClient.connect(ws.toString());
      await c.requestUpdate();
      assert.ok(c.width > 0 && c.framebuffer.length === c.width * c.height * 3, `${gw.config.nodeId}: the desktop's screen`);
      c.close();
    }
  }

  async function akskWorks(gw: Gateway): Promise<void> {
    const r = await signedCall(gw.url, key, { path: '/admin/v1/projects' });
    assert.equal(r.status, 200, `${gw.config.nodeId}: ${r.text}`);
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'porthole-rotate-'));
    desktop = await startDemoDesktop({ host: '127.0.0.1', port: 0, password: VNC_PASSWORD, name: 'rotation' });
    const endpoint = `console: { url: "vnc://127.0.0.1:${desktop.port}", security: vncauth, password: "${VNC_PASSWORD}" }`;
    const fleet = path.join(dataDir, 'fleet.yaml');
    writeFileSync(fleet, `
domains:
  - name: rot-co
    users: [{ name: root, password: root-password, domain_admin: true }]
    projects:
      - name: lab
        cloudservers: [{ name: vm-1, ${endpoint} }]
        desktops: [{ name: desk-1, ${endpoint} }]
`);
    const a = await node('node-a', K1, [], fleet);
    // Access keys are managed domain-wide: a domain-scoped token (security #3).
    const token = (await call(`${a.url}/v3/auth/tokens`, { json: passwordAuth('root', 'root-password', 'rot-co', { domain: { name: 'rot-co' } }) })).headers.get('x-subject-token')!;
    const root = (await a.store.identity.findUserByName((await a.store.identity.findDomainByName('rot-co'))!.id, 'root'))!;
    const made = await call(`${a.url}/admin/v1/access-keys`, { json: { access_key: { user_id: root.id } }, headers: { 'x-auth-token': token } });
    assert.equal(made.status, 201, made.text);
    key = { ak: (made.body as Json).access_key.access_key, sk: (made.body as Json).access_key.secret_key };
  });
  after(async () => {
    for (const gw of nodes) await gw.close().catch(() => undefined);
    await desktop?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every console and key working through the rotation, then needs only the new key', async () => {
    const [a] = nodes as [Gateway];
    await consoleWorks(a);
    await akskWorks(a);

    // Step 1 of the procedure: every node gets the new key as current and the old one as previous.
    await a.close();
    const a2 = await node('node-a2', K2, [K1]);
    const b = await node('node-b', K2, [K1]);
    const env = { PORTHOLE_URL: b.url, PORTHOLE_AK: key.ak, PORTHOLE_SK: key.sk };
    const before = json<Json>(await cli(['key', 'status', '--json'], env));
    assert.equal(before.current_key_id, keyIdOf(K2));
    assert.deepEqual(before.sealed_values, { [keyIdOf(K1)]: 3 }, 'two VNC passwords and one SK, all under the old key');
    assert.equal(before.stale, 3);
    for (const gw of [a2, b]) { await consoleWorks(gw); await akskWorks(gw); }

    // Step 2: re-seal (on any node), while both nodes keep serving.
    const during = Promise.all([consoleWorks(a2), akskWorks(a2)]);
    const rotated = await cli(['key', 'rotate'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /^resealed: +3$/m);
    assert.match(rotated.stdout, /^stale: +0$/m);
    await during;
    for (const gw of [a2, b]) { await consoleWorks(gw); await akskWorks(gw); }
    const sealed = await b.store.sealed.list();
    assert.deepEqual(sealed.map((v) => SecretBox.keyIdOfSealed(v.sealed)), [keyIdOf(K2), keyIdOf(K2), keyIdOf(K2)]);
    assert.equal(json<Json>(await cli(['key', 'rotate', '--json'], env)).resealed, 0, 'a second rotation has nothing to do');

    // Step 3: the old key can go.
    const c = await node('node-c', K2);
    await consoleWorks(c);
    await akskWorks(c);
  });

  it('values sealed before key ids were fingerprints (id k1) open and are re-sealed too', async () => {
    const gw = nodes[nodes.length - 1]!;
    const legacy = new SecretBox(K2, 'k1');
    const r = (await gw.store.inventory.getResourceById(serverId))!;
    await gw.store.inventory.upsertResource({ ...r, endpoint: { ...r.endpoint!, passwordSealed: legacy.seal(VNC_PASSWORD, `endpoint:${serverId}`) } }, Date.now());
    await consoleWorks(gw);
    const env = { PORTHOLE_URL: gw.url, PORTHOLE_AK: key.ak, PORTHOLE_SK: key.sk };
    assert.deepEqual(json<Json>(await cli(['key', 'status', '--json'], env)).sealed_values, { k1: 1, [keyIdOf(K2)]: 2 });
    assert.equal(json<Json>(await cli(['key', 'rotate', '--json'], env)).resealed, 1);
    await consoleWorks(gw);
  });
});
