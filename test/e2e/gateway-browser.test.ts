/**
 * Browser end to end on the real gateway: headless Debian Chromium opens console URLs obtained from
 * the API and sees the machine's screen on the canvas — the demo desktop and TigerVNC Xvnc with
 * VncAuth — types into it (observed on the machine), and shows in words why a console ended.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { CloseCode, CloseReason } from '../../src/close-codes.js';
import { DEFAULT_BACKGROUND } from '../../src/demo/scene.js';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { launchBrowser, poll, waitForCanvasColour, waitForState } from '../helpers/browser.js';
import { call, demoLogin, login, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { hexToRgb, requireTools, startXvnc, XVNC_FLEET, type XvncServer } from '../helpers/vnc-servers.js';

const skip = requireTools('/usr/bin/chromium');

describe('console in a real browser', { skip }, () => {
  let browser: Browser;
  let t: TestGateway;
  let token: string;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    browser = await launchBrowser();
    t = await startTestGateway();
    f = t.gw.demo!.facts;
    token = await demoLogin(t);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  async function desktopUrl(): Promise<string> {
    const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': token } });
    assert.equal(r.status, 200, r.text);
    return (r.body as { url: string }).url;
  }

  it('shows the demo desktop, takes keystrokes, and refuses the same URL twice', async () => {
    const url = await desktopUrl();
    const page = await browser.newPage();
    const res = await page.goto(url);
    assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(res?.headers()['cache-control'], 'no-store');
    await waitForState(page, 'connected');
    await waitForCanvasColour(page, DEFAULT_BACKGROUND, 10_000, { x: 4, y: 4 });
    const before = t.gw.demo!.desktop.keyLog.length;
    await page.click('#screen canvas', { position: { x: 500, y: 400 } });
    await page.keyboard.type('ok');
    await poll('keys on the machine', async () => {
      const typed = t.gw.demo!.desktop.keyLog.slice(before).filter((k) => k.down).map((k) => String.fromCharCode(k.keysym)).join('');
      return typed.includes('ok') ? true : undefined;
    }, 5000);
    const again = await browser.newPage();
    await again.goto(url);
    assert.equal(await waitForState(again, 'disconnected'), 'token_used');
    assert.match(await again.textContent('body') ?? '', /already been used/);
    await again.close();
    await page.close();
  });

  it('shows "ended by an administrator" when the session is killed', async () => {
    const page = await browser.newPage();
    await page.goto(await desktopUrl());
    await waitForState(page, 'connected');
    assert.equal(t.gw.upgrade.closeSessions(CloseCode.KILLED, CloseReason.KILLED, { resourceId: f.desktop_id }), 1);
    assert.equal(await waitForState(page, 'disconnected'), 'killed');
    assert.match(await page.textContent('body') ?? '', /administrator ended/);
    await page.close();
  });

  it('shows "expired" for a link used after its TTL', async () => {
    const url = await desktopUrl();
    t.clock.offsetMs = 601_000;
    try {
      const page = await browser.newPage();
      await page.goto(url);
      assert.equal(await waitForState(page, 'disconnected'), 'token_expired');
      await page.close();
    } finally {
      t.clock.offsetMs = 0;
    }
  });
});

describe('browser console to TigerVNC Xvnc', { skip: skip || requireTools('Xvnc', 'vncpasswd', 'xsetroot') }, () => {
  const COLOUR = '#c0392b';
  let browser: Browser;
  let xvnc: XvncServer;
  let t: TestGateway;
  const projectId = deriveProjectId('lab', 'tiger');
  const serverId = deriveResourceId(projectId, 'cloudserver', 'xvnc-1');

  before(async () => {
    browser = await launchBrowser();
    xvnc = await startXvnc({ password: 'browser1', colour: COLOUR });
    t = await startTestGateway({
      demo: false,
      fleet: XVNC_FLEET.yaml(xvnc),
    });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await xvnc?.close();
  });

  it('the canvas shows the backend colour', async () => {
    const token = await login(t.url, 'ops', 'ops-password-1', 'lab', projectId);
    const r = await call(`${t.url}/v1/${projectId}/cloudservers/${serverId}/remote_console`, {
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token },
    });
    assert.equal(r.status, 200, r.text);
    const page = await browser.newPage();
    await page.goto((r.body as { remote_console: { url: string } }).remote_console.url);
    await waitForState(page, 'connected');
    const c = hexToRgb(COLOUR);
    await waitForCanvasColour(page, [c.r, c.g, c.b]);
    await page.close();
  });
});
