/**
 * SQLite's disk full under a running single node (found by bench/chaos.ts): the data directory is a
 * small tmpfs (helpers/disk.ts; needs root, skipped with the reason otherwise), filled to its last
 * byte while the node serves. Minting, which writes, answers 503 APIGW.0613 with Retry-After like any
 * other store outage (PostgreSQL's disk full, SQLSTATE 53100, already did), never a bare 500; reads
 * go on; once space is freed minting works again without a restart.
 *
 * Needs `npm run build`.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { call } from '../helpers/gateway.js';
import { mountTmpfs, tmpfsUnavailable, type SmallDisk } from '../helpers/disk.js';
import { clusterFleet, clusterLogin, clusterProjectId, mintConsole, newMasterKey, startNode, until, type NodeProcess } from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-5';
const skip = tmpfsUnavailable();

describe('SQLite disk full under a running node', { skip }, () => {
  let disk: SmallDisk;
  let desktop: DemoDesktop;
  let node: NodeProcess;
  let token: string;

  before(async () => {
    disk = mountTmpfs(8);
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'disk full desktop' });
    node = await startNode({
      name: 'disk-full', dataDir: path.join(disk.dir, 'data'), masterKey: newMasterKey(),
      fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD),
    });
    token = await clusterLogin(node.url, 'alice');
  });

  after(async () => {
    await node?.stop();
    await desktop?.close();
    disk?.unmount();
  });

  it('reliability: disk full answers 503 APIGW.0613 (not 500) for writes, reads go on, minting recovers when space is freed', async () => {
    assert.equal((await mintConsole(node.url, token, 'desk')).status, 200);
    disk.fill();
    try {
      // The first writes may still fit in pages SQLite already has: mint until one fails.
      const refused = await until('a mint refused for want of space', async () => {
        const r = await mintConsole(node.url, token, 'desk');
        return r.status === 200 ? undefined : r;
      }, 10_000, 20);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal((refused.body as { error_code: string }).error_code, 'APIGW.0613');
      for (let i = 0; i < 5; i++) assert.equal((await mintConsole(node.url, token, 'desk')).status, 503);
      const list = await call(`${node.url}/v1/${clusterProjectId}/cloudservers/detail`, { headers: { 'x-auth-token': token } });
      assert.equal(list.status, 200, list.text);
    } finally {
      disk.free();
    }
    const back = await until('minting again', async () => ((await mintConsole(node.url, token, 'desk')).status === 200 ? true : undefined), 10_000, 100);
    assert.ok(back);
  });
});
