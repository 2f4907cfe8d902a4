/**
 * The official Huawei Cloud Node SDK (`@huaweicloud/huaweicloud-sdk-ecs` on sdk-core 3.1.211) against
 * the real gateway, unchanged: BasicCredentials (AK/SK + project id) and `withEndpoint(gateway url)`.
 * showServerRemoteConsole returns a one-time URL that then opens a console over WebSocket (ServerInit
 * of the demo desktop); a missing server and a wrong SK surface as the SDK's own exceptions with the
 * documented codes and our request id. Requests signed the Go SDK's way verify too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { send, signedCall, signedRequest } from '../helpers/aksk.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

type Core = typeof import('@huaweicloud/huaweicloud-sdk-core');
type Ecs = typeof import('@huaweicloud/huaweicloud-sdk-ecs');

interface SdkError { httpStatusCode?: number; errorCode?: string; errorMsg?: string; requestId?: string }

const URL_RE = /^http:\/\/127\.0\.0\.1:\d+\/vnc\/demo\/vnc_auto\.html\?token=[A-Za-z0-9_-]{43}&lang=EN$/;

/** The page URL's WebSocket: /vnc/{zone}/vnc_auto.html?token=T → ws://…/vnc/{zone}/websockify?token=T. */
function websocketUrl(pageUrl: string): string {
  const u = new URL(pageUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = u.pathname.replace(/vnc_auto\.html$/, 'websockify');
  u.searchParams.delete('lang');
  return u.toString();
}

describe('official Huawei Cloud Node SDK', () => {
  let t: TestGateway;
  let home: string;
  let prevHome: string | undefined;
  let core: Core;
  let ecs: Ecs;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    // The SDK writes ~/.huaweicloud/application_id (reference B): keep it out of the real home.
    home = mkdtempSync(path.join(os.tmpdir(), 'porthole-sdk-home-'));
    prevHome = process.env.HOME;
    process.env.HOME = home;
    const require = createRequire(import.meta.url);
    core = require('@huaweicloud/huaweicloud-sdk-core') as Core;
    ecs = require('@huaweicloud/huaweicloud-sdk-ecs') as Ecs;
    // The SDK logs every failed call (with its request headers) to stdout through log4js; keep test output clean.
    (require('log4js') as { getLogger(): { level: string } }).getLogger().level = 'off';
    t = await startTestGateway();
    f = t.gw.demo!.facts;
  });
  after(async () => {
    await t.close();
    if (prevHome === undefined) delete process.env.HOME; else process.env.HOME = prevHome;
    rmSync(home, { recursive: true, force: true });
  });

  function client(sk = f.sk!) {
    return ecs.EcsClient.newBuilder()
      .withCredential(new core.BasicCredentials().withAk(f.ak!).withSk(sk).withProjectId(f.project_id))
      .withEndpoint(t.url)
      .build();
  }

  function remoteConsoleRequest(serverId: string) {
    return new ecs.ShowServerRemoteConsoleRequest().withServerId(serverId).withBody(
      new ecs.ShowServerRemoteConsoleRequestBody().withRemoteConsole(
        new ecs.GetServerRemoteConsoleOption()
          .withProtocol(ecs.GetServerRemoteConsoleOptionProtocolEnum.VNC)
          .withType(ecs.GetServerRemoteConsoleOptionTypeEnum.NOVNC)));
  }

  async function sdkError(p: Promise<unknown>): Promise<SdkError & { name: string }> {
    try {
      await p;
    } catch (err) {
      return Object.assign(err as SdkError, { name: (err as object).constructor.name });
    }
    assert.fail('the SDK call should have failed');
  }

  it('the demo has an AK/SK in demo.json', () => {
    assert.match(f.ak ?? '', /^[A-Z0-9]{20}$/);
    assert.match(f.sk ?? '', /^[A-Za-z0-9]{40}$/);
  });

  it('showServerRemoteConsole returns a console URL that opens the demo desktop over WebSocket', async () => {
    const res = await client().showServerRemoteConsole(remoteConsoleRequest(f.cloudserver_id));
    const rc = (res as unknown as { remote_console: { type: string; protocol: string; url: string } }).remote_console;
    assert.equal(rc.type, 'novnc');
    assert.equal(rc.protocol, 'vnc');
    assert.match(rc.url, URL_RE);
    const viewer = await RfbTestClient.connect(websocketUrl(rc.url));
    try {
      assert.ok(viewer.width > 0 && viewer.height > 0, 'ServerInit carries the desktop size');
      assert.match(viewer.serverInit?.name ?? '', /Porthole demo desktop/);
    } finally {
      viewer.ws.close();
      await viewer.closed;
    }
  });

  it('a missing server is a ClientRequestException 404 Ecs.0114 with the request id', async () => {
    const e = await sdkError(client().showServerRemoteConsole(remoteConsoleRequest('47bc79ae-df61-4ade-9197-283a74e5d70e')));
    assert.equal(e.name, 'ClientRequestException');
    assert.equal(e.httpStatusCode, 404);
    assert.equal(e.errorCode, 'Ecs.0114');
    assert.equal(e.errorMsg, 'Instance[47bc79ae-df61-4ade-9197-283a74e5d70e] could not be found.');
    assert.match(e.requestId ?? '', /^[0-9a-f]{32}$/);
    await t.gw.audit.flush();
    const events = await t.gw.store.audit.list({ actor: f.ak!, result: 'failure' });
    assert.ok(events.some((ev) => ev.requestId === e.requestId && ev.code === 'Ecs.0114'), 'the request id leads to the audit record');
  });

  it('a wrong SK is a ClientRequestException 401 APIGW.0301', async () => {
    const e = await sdkError(client('X'.repeat(40)).showServerRemoteConsole(remoteConsoleRequest(f.cloudserver_id)));
    assert.equal(e.name, 'ClientRequestException');
    assert.equal(e.httpStatusCode, 401);
    assert.equal(e.errorCode, 'APIGW.0301');
    assert.equal(e.errorMsg, 'Incorrect IAM authentication information: verify aksk signature fail');
    assert.match(e.requestId ?? '', /^[0-9a-f]{32}$/);
    // One failure does not lock the key: the right SK still works.
    await client().showServerRemoteConsole(remoteConsoleRequest(f.cloudserver_id));
  });

  it('verifies requests signed the Go SDK way (user-agent;x-project-id;x-sdk-date, body ending in a newline)', async () => {
    const key = { ak: f.ak!, sk: f.sk! };
    const r = await signedCall(t.url, key, {
      path: `/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`,
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, projectId: f.project_id, style: 'go',
    });
    assert.equal(r.status, 200, r.text);
    assert.match((r.body as { remote_console: { url: string } }).remote_console.url, URL_RE);
    const d = await signedCall(t.url, key, { path: `/v2/${f.project_id}/desktops/${f.desktop_id}`, projectId: f.project_id, style: 'go' });
    assert.equal(d.status, 200, d.text);
    // The same request with one byte of the body changed after signing fails.
    const req = signedRequest(t.url, key, {
      path: `/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`,
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, projectId: f.project_id, style: 'go',
    });
    const bad = await send({ ...req, body: req.body!.replace('novnc', 'noVnc') });
    assert.equal(bad.status, 401, bad.text);
    assert.equal((bad.body as { error_code: string }).error_code, 'APIGW.0301');
  });
});
