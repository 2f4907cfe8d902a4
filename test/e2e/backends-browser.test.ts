/**
 * Browser end to end through the real gateway for the backends and policies of issue 5: Chromium
 * (noVNC) on QEMU's SeaBIOS screen, on TigerVNC Xvnc behind VeNCrypt X509Vnc with a CA made here and
 * the clipboard off (so the gateway frames the server's stream and noVNC's encodings are cut to what
 * it can frame), and on the demo desktop through a view-only link minted by the admin API (badge on,
 * keys and clicks never reach the machine).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser } from 'playwright-core';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { DEFAULT_BACKGROUND } from '../../src/demo/scene.js';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { canvasPixel, launchBrowser, poll, waitForCanvasColour, waitForState } from '../helpers/browser.js';
import { call, login, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { hexToRgb, makeTestPki, requireTools, startQemu, startXvncWith, type QemuServer, type TestPki, type XvncServer } from '../helpers/vnc-servers.js';

const skip = requireTools('/usr/bin/chromium', 'Xvnc', 'vncpasswd', 'xsetroot', 'openssl', 'qemu-system-x86_64');
const projectId = deriveProjectId('bx', 'lab');
const idOf = (name: string) => deriveResourceId(projectId, 'cloudserver', name);
const TLS_COLOUR = '#2e86ab';

describe('browser consoles to real backends and policies', { skip, timeout: 120_000 }, () => {
  let browser: Browser;
  let pki: TestPki;
  let xvnc: XvncServer;
  let qemu: QemuServer;
  let demo: DemoDesktop;
  let t: TestGateway;
  let token: string;

  before(async () => {
    browser = await launchBrowser();
    pki = makeTestPki();
    [xvnc, qemu, demo] = await Promise.all([
      startXvncWith({ security: 'X509Vnc', password: 'tls-pw-1', x509: { certFile: pki.certFile, keyFile: pki.keyFile }, colour: TLS_COLOUR }),
      startQemu(),
      startDemoDesktop({ host: '127.0.0.1', port: 0, name: 'view-only demo' }),
    ]);
    const fleet = {
      domains: [{
        name: 'bx',
        users: [{ name: 'root', password: 'root-password-1', domain_admin: true }],
        projects: [{
          name: 'lab',
          cloudservers: [
            { name: 'qemu', console: { url: `vnc://127.0.0.1:${qemu.port}` } },
            { name: 'xvnc-tls', console: { url: `vnc://127.0.0.1:${xvnc.port}`, security: 'vencrypt', password: 'tls-pw-1', ca_cert: pki.ca, servername: 'vnc.test', clipboard: 'off' } },
            { name: 'demo', console: { url: `vnc://127.0.0.1:${demo.port}` } },
          ],
        }],
      }],
    };
    t = await startTestGateway({ demo: false, fleet: JSON.stringify(fleet) });
    token = await login(t.url, 'root', 'root-password-1', 'bx', projectId);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await Promise.all([xvnc?.close(), qemu?.close(), demo?.close()]);
    pki?.close();
  });

  async function mint(name: string, viewOnly = false): Promise<string> {
    const r = await call(`${t.url}/admin/v1/cloudservers/${idOf(name)}/console-url`, { json: { view_only: viewOnly }, headers: { 'x-auth-token': token } });
    assert.equal(r.status, 201, r.text);
    return (r.body as { console_url: { url: string } }).console_url.url;
  }

  it('QEMU: the SeaBIOS text screen appears on the canvas', async () => {
    const page = await browser.newPage();
    await page.goto(await mint('qemu'));
    await waitForState(page, 'connected');
    await poll('BIOS text on the canvas', async () => {
      for (let y = 2; y < 60; y += 2) {
        for (let x = 2; x < 400; x += 3) {
          const p = await canvasPixel(page, x, y);
          if (p && p[0] > 120 && p[1] > 120 && p[2] > 120) return true;
        }
      }
      return undefined;
    }, 15_000);
    await page.close();
  });

  it('Xvnc over VeNCrypt X509Vnc with the clipboard off: the screen arrives through the server-stream framer', async () => {
    const page = await browser.newPage();
    await page.goto(await mint('xvnc-tls'));
    await waitForState(page, 'connected');
    const c = hexToRgb(TLS_COLOUR);
    await waitForCanvasColour(page, [c.r, c.g, c.b]);
    // A change on the machine (a pattern: Tight palette/Hextile subrects) still renders, so framing holds.
    const { spawnSync } = await import('node:child_process');
    spawnSync('xsetroot', ['-solid', '#aa5500', '-display', `:${xvnc.display}`]);
    await waitForCanvasColour(page, [0xaa, 0x55, 0x00]);
    await sleep(200);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'connected');
    await page.close();
  });

  it('a view-only link from the admin API: the badge shows; a modified page that types and clicks reaches nothing', async () => {
    const url = await mint('demo', true);
    const page = await browser.newPage();
    await page.goto(url);
    await waitForState(page, 'connected');
    assert.equal(await page.isVisible('#view-only-badge'), true, 'the page learned view-only from the server');
    await page.close();

    // A hostile user strips the view-only attribute, so noVNC sends every key and click it sees.
    const tampered = async (link: string) => {
      const p = await browser.newPage();
      // Before any page script runs: drop the server's data-view-only from <body> as soon as it is parsed.
      await p.addInitScript(() => {
        new MutationObserver((_m, obs) => {
          if (document.body) {
            document.body.removeAttribute('data-view-only');
            obs.disconnect();
          }
        }).observe(document, { childList: true, subtree: true });
      });
      await p.goto(link);
      await waitForState(p, 'connected');
      await waitForCanvasColour(p, DEFAULT_BACKGROUND, 10_000, { x: 4, y: 4 });
      assert.equal(await p.isVisible('#view-only-badge'), false);
      await p.click('#screen canvas', { position: { x: 300, y: 300 } });
      await p.keyboard.type('hostile');
      await sleep(500);
      return p;
    };
    const keys = demo.keyLog.length;
    const clicks = demo.pointerLog.length;
    const hostile = await tampered(await mint('demo', true));
    assert.equal(demo.keyLog.length, keys, 'no key reached the machine');
    assert.equal(demo.pointerLog.length, clicks, 'no click reached the machine');
    assert.equal(await hostile.evaluate(() => document.body.dataset.state), 'connected', 'the session stays up');
    await hostile.close();
    // The same steps on a normal link do reach the machine (so the check above can fail).
    const normal = await tampered(await mint('demo'));
    await poll('keys on the machine', async () => (demo.keyLog.length > keys ? true : undefined), 5000);
    assert.ok(demo.pointerLog.length > clicks);
    await normal.close();
  });
});
