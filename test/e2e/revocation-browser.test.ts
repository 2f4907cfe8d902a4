/**
 * Revocation as a person at a browser sees it: Chromium shows a machine's console; an operator
 * deletes the machine with `porthole desktop delete` (or moves its console endpoint); the page ends
 * the session and says why ("revoked"), and an operator's kill says "ended by an administrator".
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, waitForState } from '../helpers/browser.js';
import { call, demoLogin, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { cli, type CliEnv } from '../helpers/cli.js';
import { requireTools } from '../helpers/vnc-servers.js';

const skip = requireTools('/usr/bin/chromium');

describe('revocation in a real browser', { skip }, () => {
  let browser: Browser;
  let t: TestGateway;
  let env: CliEnv;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    browser = await launchBrowser();
    t = await startTestGateway();
    f = t.gw.demo!.facts;
    env = { PORTHOLE_URL: t.url, PORTHOLE_AK: f.ak!, PORTHOLE_SK: f.sk! };
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  async function openConsole(path: string, method: 'GET' | 'POST') {
    const token = await demoLogin(t);
    const r = await call(`${t.url}${path}`, { method, headers: { 'x-auth-token': token }, ...(method === 'POST' ? { json: { remote_console: { protocol: 'vnc', type: 'novnc' } } } : {}) });
    assert.equal(r.status, 200, r.text);
    const b = r.body as { url?: string; remote_console?: { url: string } };
    const page = await browser.newPage();
    await page.goto(b.url ?? b.remote_console!.url);
    await waitForState(page, 'connected');
    return page;
  }

  it('killing the session from the CLI shows "ended by an administrator"', async () => {
    const page = await openConsole(`/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address`, 'GET');
    const list = await cli(['session', 'list', '--resource', f.physicalserver_id, '--json'], env);
    const sid = (JSON.parse(list.stdout) as { sessions: { id: string }[] }).sessions[0]!.id;
    assert.equal((await cli(['session', 'kill', sid], env)).code, 0);
    assert.equal(await waitForState(page, 'disconnected'), 'killed');
    assert.match(await page.textContent('body') ?? '', /administrator ended/);
    await page.close();
  });

  it('changing the console endpoint ends the session with the reason shown', async () => {
    const page = await openConsole(`/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, 'POST');
    const r = await cli(['endpoint', 'set', f.cloudserver_id, '--console', `vnc://127.0.0.1:${t.gw.demo!.desktop.port}`, '--zone', 'moved'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await waitForState(page, 'disconnected'), 'revoked');
    assert.match(await page.textContent('body') ?? '', /Access to this machine was revoked/);
    await page.close();
  });

  it('deleting the machine ends its live session in the browser with the reason shown', async () => {
    const page = await openConsole(`/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, 'GET');
    const del = await cli(['desktop', 'delete', f.desktop_id], env);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await waitForState(page, 'disconnected'), 'revoked');
    assert.match(await page.textContent('body') ?? '', /Access to this machine was revoked \(it was changed or deleted\)/);
    // The machine is gone for the API too.
    const token = await demoLogin(t);
    const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': token } });
    assert.equal(r.status, 404);
    await page.close();
  });
});
