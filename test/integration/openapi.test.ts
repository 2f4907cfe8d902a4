/**
 * The OpenAPI document covers every route the gateway registers (a new route without documentation
 * fails here), is OpenAPI 3.1 with an error schema per service, and /docs renders it under a CSP
 * that allows no inline script.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { openApiDocument, openApiPath, registeredRoutes, trackRoutes } from '../../src/api/openapi.js';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface Doc { openapi: string; paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>; components: { schemas: Record<string, unknown> } }

describe('OpenAPI document', () => {
  let t: TestGateway;
  let doc: Doc;

  before(async () => {
    t = await startTestGateway();
    const r = await call(`${t.url}/openapi.json`);
    assert.equal(r.status, 200);
    doc = r.body as Doc;
  });
  after(async () => t?.close());

  it('documents every registered Fastify route (method and path)', () => {
    const routes = registeredRoutes(t.gw.app);
    assert.ok(routes.length >= 15, `only ${routes.length} routes tracked`);
    const missing: string[] = [];
    for (const { method, url } of routes) {
      // Fastify adds HEAD for every GET; documenting the GET covers it.
      const m = method === 'HEAD' ? 'get' : method.toLowerCase();
      if (!doc.paths[openApiPath(url)]?.[m]) missing.push(`${method} ${url}`);
    }
    assert.deepEqual(missing, [], 'add these routes to src/api/openapi.ts');
  });

  it('documents nothing that is not served (besides the WebSocket upgrade, handled before Fastify)', () => {
    const served = new Set(registeredRoutes(t.gw.app).map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
    const extra: string[] = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of Object.keys(item)) if (!served.has(`${m} ${p}`) && p !== '/vnc/{zone}/websockify') extra.push(`${m} ${p}`);
    }
    assert.deepEqual(extra, []);
  });

  it('is OpenAPI 3.1 whose responses reference existing schemas, with each service\'s error shape', () => {
    assert.equal(doc.openapi, '3.1.0');
    for (const s of ['ApigwError', 'IamError', 'EcsError', 'ClouddcError', 'WorkspaceError', 'AdminError', 'UpgradeRefusal']) assert.ok(doc.components.schemas[s], `schema ${s}`);
    const refs = JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g);
    for (const [, name] of refs) assert.ok(doc.components.schemas[name!], `dangling $ref ${name}`);
    const ecs404 = JSON.stringify(doc.paths['/v1/{project_id}/cloudservers/{server_id}/remote_console']?.post?.responses?.['404']);
    assert.match(ecs404, /EcsError/);
    for (const [p, item] of Object.entries(doc.paths)) for (const [m, o] of Object.entries(item)) assert.ok(o.responses && Object.keys(o.responses).length > 0, `${m} ${p} has responses`);
  });

  it('/docs is a static page under a strict CSP that loads its script from self and renders /openapi.json', async () => {
    const page = await call(`${t.url}/docs`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(page.text, /\sstyle=|<style/, 'no inline style');
    const src = /<script[^>]*src="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(src, 'the page loads a script file');
    const js = await call(new URL(src, `${t.url}/docs`).toString());
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(js.text, /openapi\.json/);
    assert.doesNotMatch(js.text, /innerHTML|eval\(/);
    const css = /<link[^>]*href="([^"]+)"/.exec(page.text)?.[1];
    assert.equal((await call(new URL(css!, `${t.url}/docs`).toString())).status, 200);
    assert.equal((await call(`${t.url}/docs/other.js`)).status, 404);
  });
});

describe('OpenAPI fragments declared on routes', () => {
  it('a route documented with config.openapi appears in the document under its service tag; hand-written paths win', async () => {
    const app = Fastify();
    trackRoutes(app);
    app.get('/admin/v1/widgets/:id', { config: { service: 'admin', openapi: { summary: 'Get a widget', responses: { 200: { description: 'The widget.' } } } } }, async () => ({}));
    app.get('/healthz', { config: { openapi: { summary: 'shadowed', responses: { 200: { description: 'x' } } } } }, async () => ({}));
    app.get('/undocumented', async () => ({}));
    await app.ready();
    const doc = openApiDocument({ publicUrl: 'http://x', version: '0', routes: registeredRoutes(app) }) as unknown as Doc;
    assert.deepEqual(doc.paths['/admin/v1/widgets/{id}']?.get, { tags: ['admin'], summary: 'Get a widget', responses: { 200: { description: 'The widget.' } } });
    assert.equal((doc.paths['/healthz']?.get as { summary?: string }).summary, 'Liveness: the process is up');
    assert.equal(doc.paths['/undocumented'], undefined, 'a route without documentation is not invented');
    await app.close();
  });
});
