/**
 * Remote assistance in real Chromium, two browser contexts on the demo desktop through the real
 * gateway: the desktop's user (demo) on their console page, and a helper who opens the share link's
 * join page. The user accepts on the banner; the helper joins with the code and password and sees
 * the same screen, view-only; the helper's keystrokes are dropped until the user gives control from
 * the helper list, then reach the desktop (its key log), and are dropped again once control is taken
 * back; ending the assistance disconnects the helper with a reason in words. No CSP violations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DEFAULT_BACKGROUND } from '../../src/demo/scene.js';
import { canvasPixel, launchBrowser, poll, waitForCanvasColour, waitForState } from '../helpers/browser.js';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { addDemoUser, cast, create, desktopConsoleUrl, respond, space, type Cast } from '../helpers/assistance.js';
import { requireTools } from '../helpers/vnc-servers.js';

const skip = requireTools('/usr/bin/chromium');

/** Records CSP violations in the page (init scripts are the browser's, not subject to the page's CSP). */
async function watchCsp(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const w = window as unknown as { cspViolations: string[] };
    w.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
}
const cspViolations = (page: Page) => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);
const text = async (page: Page, selector: string) => (await page.textContent(selector))?.trim() ?? '';
const dataset = (page: Page, key: string) => page.evaluate((k) => document.body.dataset[k] ?? '', key);

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  return poll(what, async () => { const v = await probe(); return v === false ? undefined : v; }, timeoutMs, 100) as Promise<T>;
}

describe('remote assistance in a real browser', { skip }, () => {
  let browser: Browser;
  let t: TestGateway;
  let who: Cast;
  let userCtx: BrowserContext;
  let helperCtx: BrowserContext;

  before(async () => {
    browser = await launchBrowser();
    t = await startTestGateway();
    who = await cast(t);
    userCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    helperCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await watchCsp(userCtx);
    await watchCsp(helperCtx);
  });
  after(async () => {
    await userCtx?.close();
    await helperCtx?.close();
    await browser?.close();
    await t?.close();
  });

  it('consent, join, same screen, control granted and taken back live, end', async () => {
    const keys = t.gw.demo!.desktop.keyLog;
    const typedSince = (mark: number) => keys.slice(mark).filter((k) => k.down).map((k) => String.fromCharCode(k.keysym)).join('');

    // The desktop's user at their console.
    const user = await userCtx.newPage();
    await user.goto(await desktopConsoleUrl(t, who.user));
    await waitForState(user, 'connected');
    await waitForCanvasColour(user, DEFAULT_BACKGROUND, 10_000, { x: 4, y: 4 });
    assert.equal(await dataset(user, 'assist'), 'none');

    // Helpdesk asks; the banner appears; nothing is joinable yet.
    assert.equal((await create(t, who.helpdesk)).status, 200);
    await waitFor('the consent banner', async () => (await dataset(user, 'assist')) === 'request');
    assert.match(await text(user, '#assist-text'), /^helpdesk asks to assist you on this desktop\. Nothing is shared until you accept/);
    assert.equal(await user.isVisible('#assist-accept'), true);
    assert.equal(await user.isVisible('#assist-decline'), true);
    await user.screenshot({ path: '/tmp/assistance-request.png' });
    await user.click('#assist-accept');
    await waitFor('the assistance to be on', async () => (await dataset(user, 'assist')) === 'active');
    assert.match(await text(user, '#assist-text'), /waiting for a helper/);
    const s = await space(t, who.helpdesk);
    assert.equal(s.status, 'WAIT_USER_ACCESS');

    // The helper opens the share link: the join page, under its strict CSP, with the code filled in.
    const helper = await helperCtx.newPage();
    const joinPage = await helper.goto(s.internet_share_link);
    const csp = joinPage?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'; script-src 'self'; style-src 'self'/);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal(await helper.inputValue('#code'), s.invitation_code);
    await helper.screenshot({ path: '/tmp/assistance-join.png' });
    await helper.fill('#password', 'not-the-password');
    await helper.click('#join');
    await waitFor('the wrong-password message', async () => (await dataset(helper, 'state')) === 'error');
    assert.match(await text(helper, '#message'), /wrong \(4 tries left/);
    await helper.fill('#password', s.share_space_passwd);
    await helper.fill('#name', 'Hank from helpdesk');
    await helper.click('#join');
    await helper.waitForURL(/\/vnc\/demo\/vnc_auto\.html\?token=.*view_only=1$/);
    await waitForState(helper, 'connected');
    assert.equal(await text(helper, '#view-only-badge'), 'View only');

    // The same screen on both sides.
    for (const [x, y] of [[4, 4], [640, 20], [320, 400], [900, 700]] as const) {
      await waitFor(`the same pixel at ${x},${y}`, async () => {
        const a = await canvasPixel(user, x, y);
        const b = await canvasPixel(helper, x, y);
        return a !== undefined && b !== undefined && a.every((v, i) => Math.abs(v - (b[i] ?? -1)) <= 2);
      });
    }

    // The user sees who is watching, since when.
    await waitFor('the helper in the list', async () => (await text(user, '#assist-helpers .assist-name')) === 'Hank from helpdesk');
    assert.match(await text(user, '#assist-helpers .assist-since'), /^since \d{1,2}:\d{2}/);
    assert.equal(await text(user, '#assist-helpers .assist-mode'), 'View only');
    assert.equal((await space(t, who.helpdesk)).status, 'OPEN');

    // View-only: the helper's keys never reach the desktop.
    await helper.click('#screen canvas', { position: { x: 600, y: 400 } });
    let mark = keys.length;
    await helper.keyboard.type('q');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(typedSince(mark), '');

    // Control given from the helper list: the helper's page learns it, its keys arrive.
    await user.click('#assist-helpers .assist-grant');
    await waitFor('the helper\'s page to get control', async () => (await text(helper, '#view-only-badge')) === 'You have control');
    assert.equal(await text(user, '#assist-helpers .assist-mode'), 'Has control');
    await user.screenshot({ path: '/tmp/assistance-helpers.png' });
    await helper.screenshot({ path: '/tmp/assistance-helper.png' });
    await helper.click('#screen canvas', { position: { x: 600, y: 400 } });
    mark = keys.length;
    await helper.keyboard.type('ok');
    await waitFor('the helper\'s keys on the desktop', async () => typedSince(mark).includes('ok'), 5000);

    // Taken back: typed at once (before the helper's page even knows), the keys are dropped by the gateway.
    await user.click('#assist-helpers .assist-revoke');
    await waitFor('the list to show view-only again', async () => (await text(user, '#assist-helpers .assist-mode')) === 'View only');
    mark = keys.length;
    await helper.keyboard.type('x');
    await waitFor('the helper\'s page to lose control', async () => (await text(helper, '#view-only-badge')) === 'View only');
    await helper.keyboard.type('y');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(typedSince(mark), '');

    // The user ends it: the helper is disconnected with words, the user's console goes on.
    await user.click('#assist-end');
    assert.equal(await waitForState(helper, 'disconnected'), 'assistance_ended');
    assert.match(await text(helper, '#notice-text'), /Remote assistance has ended/);
    await waitFor('the banner to go', async () => (await dataset(user, 'assist')) === 'none');
    assert.equal(await dataset(user, 'state'), 'connected');
    assert.equal((await space(t, who.helpdesk)).status, 'CLOSE');

    assert.deepEqual(await cspViolations(user), []);
    assert.deepEqual(await cspViolations(helper), []);
  });

  it('decline from the banner: nothing is shared and the request is closed with a reason', async () => {
    const user = await userCtx.newPage();
    await user.goto(await desktopConsoleUrl(t, who.user));
    await waitForState(user, 'connected');
    assert.equal((await create(t, who.helpdesk)).status, 200);
    await waitFor('the consent banner', async () => (await dataset(user, 'assist')) === 'request');
    await user.click('#assist-decline');
    await waitFor('the banner to go', async () => (await dataset(user, 'assist')) === 'none');
    const s = await space(t, who.helpdesk);
    assert.equal(s.status, 'CLOSE');
    assert.match(s.failed_reason ?? '', /declined/);
    assert.deepEqual(await cspViolations(user), []);
    await user.close();
  });

  it('security #7: on a desktop two users share, one user\'s own request waits on their banner for the other', async () => {
    const vera = await addDemoUser(t, 'vera', 'viewer');
    const assign = await call(`${t.url}/admin/v1/desktops/${t.gw.demo!.facts.desktop_id}/users`, { json: { user_name: 'vera' }, headers: { 'x-auth-token': who.user } });
    assert.equal(assign.status, 200, assign.text);
    const user = await userCtx.newPage();
    await user.goto(await desktopConsoleUrl(t, who.user));
    await waitForState(user, 'connected');
    const c = await create(t, who.user);
    assert.equal((c.body as { status: string }).status, 'WAIT_USER_CONFIRM');
    await waitFor('the waiting banner', async () => (await dataset(user, 'assist')) === 'waiting');
    assert.match(await text(user, '#assist-text'), /^You accepted remote assistance on this desktop\. Nothing is shared until its other users accept too \(waiting for vera\)/);
    assert.equal(await user.isVisible('#assist-accept'), false);
    assert.equal(await user.isVisible('#assist-decline'), true);
    assert.equal((await respond(t, vera, 'accept')).status, 200);
    await waitFor('the assistance to be on', async () => (await dataset(user, 'assist')) === 'active');
    await user.click('#assist-end');
    await waitFor('the banner to go', async () => (await dataset(user, 'assist')) === 'none');
    assert.deepEqual(await cspViolations(user), []);
    await user.close();
  });
});
