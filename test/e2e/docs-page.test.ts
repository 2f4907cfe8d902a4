/**
 * /docs in a real chromium: the page renders every operation of /openapi.json under its CSP (no
 * inline script, no CDN), and the browser reports no CSP violation or script error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, poll } from '../helpers/browser.js';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('/docs in a browser', () => {
  let t: TestGateway;
  let browser: Browser;
  before(async () => {
    t = await startTestGateway();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('renders every operation and schema, with no CSP violation', async () => {
    const doc = (await call(`${t.url}/openapi.json`)).body as { paths: Record<string, object>; components: { schemas: object } };
    const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${t.url}/docs`);
    const rendered = await poll('operations rendered', async () => {
      const n = await page.locator('#ops details').count();
      return n >= operations ? n : undefined;
    }, 10_000);
    assert.equal(rendered, operations);
    assert.equal(await page.locator('#schemas details').count(), Object.keys(doc.components.schemas).length);
    assert.match(await page.locator('#ops').innerText(), /remote_console/);
    assert.equal(await page.title(), 'Porthole API');
    assert.deepEqual(problems, []);
  });
});
