/**
 * Remote-assistance test helpers: extra IAM users in the demo domain (a helpdesk operator, a viewer),
 * the remote-assistance API calls, joining, and the console-page channel a page would use.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deriveDomainId } from '../../src/domain/fleet.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { PAGE_KEY_HEADER, pageProtocol } from '../../src/domain/assist-page-key.js';
import type { Role } from '../../src/store/types.js';
import { RfbTestClient } from './rfb-client.js';
import { call, demoLogin, login, type HttpResult, type TestGateway } from './gateway.js';

export const SEED_FIELDS = [
  'create_time', 'failed_reason', 'internet_share_link', 'invitation_code', 'private_share_link', 'share_space_id', 'share_space_name',
  'share_space_passwd', 'status',
];

export interface ShareSpace {
  share_space_id: string; invitation_code: string; share_space_name: string; share_space_passwd: string; private_share_link: string;
  internet_share_link: string; create_time: string; status: string; failed_reason: string | null;
}

/** Adds a user to the demo domain with `role` in the demo project (none: no role) and logs in. */
export async function addDemoUser(t: TestGateway, name: string, role: Role | null): Promise<string> {
  const f = t.gw.demo!.facts;
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const id = randomBytes(16).toString('hex');
  await t.gw.store.identity.upsertUser({
    id, domainId: deriveDomainId(f.domain), name, passwordHash: await hashPassword(password), domainAdmin: false, disabled: false,
    passwordExpiresAt: null, createdAt: Date.now(),
  });
  if (role) await t.gw.store.identity.setRole({ userId: id, projectId: f.project_id, role });
  return login(t.url, name, password, f.domain, f.project_id);
}

/** The cast of every remote-assistance test: the desktop's own user (demo), a helpdesk operator, a viewer. */
export interface Cast { user: string; helpdesk: string; viewer: string }

export async function cast(t: TestGateway): Promise<Cast> {
  return { user: await demoLogin(t), helpdesk: await addDemoUser(t, 'helpdesk', 'operator'), viewer: await addDemoUser(t, 'auditor', 'viewer') };
}

export function assistUrl(t: TestGateway, desktopId = t.gw.demo!.facts.desktop_id, projectId = t.gw.demo!.facts.project_id): string {
  return `${t.url}/v2/${projectId}/desktops/${desktopId}/remote-assistance`;
}

export const create = (t: TestGateway, token: string) => call(assistUrl(t), { method: 'POST', headers: { 'x-auth-token': token } });
export const show = (t: TestGateway, token: string) => call(assistUrl(t), { headers: { 'x-auth-token': token } });
export const cancel = (t: TestGateway, token: string) => call(assistUrl(t), { method: 'DELETE', headers: { 'x-auth-token': token } });
export const respond = (t: TestGateway, token: string, action: string) =>
  call(`${assistUrl(t)}/actions`, { json: { action }, headers: { 'x-auth-token': token } });

/** GET, asserting 200, as the seed's body. */
export async function space(t: TestGateway, token: string): Promise<ShareSpace> {
  const r = await show(t, token);
  assert.equal(r.status, 200, r.text);
  return r.body as ShareSpace;
}

export function join(t: TestGateway, s: { invitation_code: string; share_space_passwd: string }, name = 'Hank from helpdesk', headers: Record<string, string> = {}): Promise<HttpResult> {
  return call(`${t.url}/assist/v1/join`, { json: { code: s.invitation_code, password: s.share_space_passwd, name }, headers });
}

/** The console WebSocket URL of a page URL (absolute or relative to the gateway). */
export function wsUrlOf(t: TestGateway, pageUrl: string): string {
  const u = new URL(pageUrl, t.url);
  return `ws://${u.host}${u.pathname.replace(/[^/]*$/, '')}websockify${u.search}`;
}

export function newKey(): string {
  return randomBytes(32).toString('base64url');
}

/** Connects like the console page: the page key offered as the WebSocket subprotocol. */
export async function connectPage(t: TestGateway, pageUrl: string, key = newKey(), opts: { shared?: boolean } = {}): Promise<{ client: RfbTestClient; key: string }> {
  const client = await RfbTestClient.connect(wsUrlOf(t, pageUrl), { protocols: [pageProtocol(key)], ...opts });
  assert.equal(client.ws.protocol, pageProtocol(key), 'the gateway echoes the page key subprotocol');
  return { client, key };
}

export const pageState = (t: TestGateway, key: string) => call(`${t.url}/assist/v1/page`, { headers: { [PAGE_KEY_HEADER]: key } });
export const pageAction = (t: TestGateway, key: string, action: string, helperId?: string) =>
  call(`${t.url}/assist/v1/page/actions`, { json: { action, ...(helperId ? { helper_id: helperId } : {}) }, headers: { [PAGE_KEY_HEADER]: key } });

/** A one-time console URL of the demo desktop for `token`'s user. */
export async function desktopConsoleUrl(t: TestGateway, token: string): Promise<string> {
  const f = t.gw.demo!.facts;
  const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': token } });
  assert.equal(r.status, 200, r.text);
  return (r.body as { url: string }).url;
}

export async function auditActions(t: TestGateway, since = 0): Promise<string[]> {
  await t.gw.audit.flush();
  const events = await t.gw.store.audit.list({ resourceId: t.gw.demo!.facts.desktop_id, since, limit: 1000 });
  return events.filter((e) => e.action.startsWith('assistance:')).map((e) => `${e.action}:${e.result}`).reverse();
}
