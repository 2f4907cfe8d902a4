/**
 * The parts of remote assistance a user never sees directly but depends on: invitation codes and
 * passwords, the page key carried as a WebSocket subprotocol, helper names made safe to show,
 * who counts as the desktop's user, the configuration keys (share-link base URLs, whose origins may
 * open consoles), and the join page as served (strict CSP, fixed files, JSON errors).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { pageKeyFromProtocols, pageProtocol } from '../../src/domain/assist-page-key.js';
import {
  apiTime, assignedUsers, cleanHelperName, isAssignedUser, MAX_HELPER_NAME, newInvitationCode, newSpacePassword, passwordsMatch, PASSWORD_LENGTH,
} from '../../src/domain/assistance.js';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { cast, create, desktopConsoleUrl, respond, space, wsUrlOf } from '../helpers/assistance.js';

describe('remote assistance: codes, passwords, names, page keys', () => {
  it('invitation codes are 8 of A-Z 0-9 and passwords 12 characters without look-alikes, both random', () => {
    const codes = new Set(Array.from({ length: 2000 }, newInvitationCode));
    assert.equal(codes.size, 2000);
    for (const c of codes) assert.match(c, /^[A-Z0-9]{8}$/);
    const all = [...codes].join('');
    assert.match(all, /[0-9]/);
    assert.match(all, /[A-Z]/);
    const pw = Array.from({ length: 500 }, newSpacePassword);
    for (const p of pw) assert.match(p, new RegExp(`^[A-HJ-NP-Za-km-np-z2-9]{${PASSWORD_LENGTH}}$`));
    assert.equal(new Set(pw).size, 500);
  });

  it('passwords compare exactly (constant time over digests, any length)', () => {
    assert.equal(passwordsMatch('Abc123xyzPQR', 'Abc123xyzPQR'), true);
    assert.equal(passwordsMatch('Abc123xyzPQr', 'Abc123xyzPQR'), false);
    assert.equal(passwordsMatch('', 'Abc123xyzPQR'), false);
    assert.equal(passwordsMatch('Abc123xyzPQR-and-more', 'Abc123xyzPQR'), false);
  });

  it('create_time is yyyy-MM-ddTHH:mm:ssZ in UTC', () => {
    assert.equal(apiTime(Date.UTC(2022, 2, 28, 0, 0, 0, 999)), '2022-03-28T00:00:00Z');
  });

  it('the page key is read from the offered subprotocols; anything malformed is ignored', () => {
    const key = 'k'.repeat(43);
    assert.equal(pageKeyFromProtocols(pageProtocol(key)), key);
    assert.equal(pageKeyFromProtocols(`binary, ${pageProtocol(key)}`), key);
    assert.equal(pageKeyFromProtocols([`binary`, pageProtocol(key)]), key);
    assert.equal(pageKeyFromProtocols(undefined), null);
    assert.equal(pageKeyFromProtocols('binary'), null);
    assert.equal(pageKeyFromProtocols(pageProtocol('short')), null);
    assert.equal(pageKeyFromProtocols(pageProtocol(`${'a'.repeat(40)}+/=`)), null);
  });

  it('helper names lose control and bidi characters and are capped; empty becomes "Helper"', () => {
    assert.equal(cleanHelperName('  Hank\u0007\n from \u202Ehelp\u2066desk  '), 'Hank from help desk');
    assert.equal(cleanHelperName('<img src=x>'), '<img src=x>', 'kept as text; pages render it with textContent');
    assert.equal([...cleanHelperName('名'.repeat(200))].length, MAX_HELPER_NAME);
    assert.equal(cleanHelperName(''), 'Helper');
    assert.equal(cleanHelperName(42), 'Helper');
  });

  it('the desktop\'s user: user_name, user_list or attach_user_infos (USER entries only)', () => {
    assert.equal(isAssignedUser({ user_name: 'ann' }, 'ann'), true);
    assert.equal(isAssignedUser({ user_list: ['bob', 'ann'] }, 'ann'), true);
    assert.equal(isAssignedUser({ attach_user_infos: [{ user_name: 'ann', type: 'USER' }] }, 'ann'), true);
    assert.equal(isAssignedUser({ attach_user_infos: [{ user_name: 'ann', type: 'GROUP' }] }, 'ann'), false);
    assert.equal(isAssignedUser({ user_name: 'bob', user_list: ['bob'] }, 'ann'), false);
    assert.equal(isAssignedUser({}, 'ann'), false);
    // Everyone whose consent a share space needs (security #7), each once.
    assert.deepEqual(assignedUsers({ user_name: 'ann', user_list: ['ann', 'bob'], attach_user_infos: [{ user_name: 'cy' }, { user_name: 'g', type: 'GROUP' }, 7] }), ['ann', 'bob', 'cy']);
    assert.deepEqual(assignedUsers({}), []);
  });
});

describe('remote assistance configuration', () => {
  it('defaults, and share URLs validated like public_url', () => {
    const { config } = loadConfig({ argv: [], env: {} });
    assert.deepEqual(config.assistance, { ttlSeconds: 3600, privateShareUrl: null, internetShareUrl: null, joinMaxFailures: 5, joinLockoutSeconds: 300 });
    const set = loadConfig({ argv: ['--assistance-internet-share-url', 'https://help.example.com/'], env: { PORTHOLE_ASSISTANCE_TTL_SECONDS: '600' } }).config;
    assert.equal(set.assistance.internetShareUrl, 'https://help.example.com');
    assert.equal(set.assistance.ttlSeconds, 600);
    assert.throws(() => loadConfig({ argv: ['--assistance-private-share-url', 'ftp://x'], env: {} }), ConfigError);
    assert.throws(() => loadConfig({ argv: ['--assistance-private-share-url', 'https://x/?a=1'], env: {} }), ConfigError);
    assert.throws(() => loadConfig({ argv: ['--assistance-ttl-seconds', '10'], env: {} }), ConfigError);
  });
});

describe('remote assistance: share links and the join page as served', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ args: ['--assistance-internet-share-url', 'https://help.example.com', '--assistance-private-share-url', 'http://10.1.2.3:8080'] });
  });
  after(async () => t?.close());

  it('the two links use their base URLs, and the share origins may open consoles (a foreign one may not)', async () => {
    const who = await cast(t);
    assert.equal((await create(t, who.helpdesk)).status, 200);
    assert.equal((await respond(t, who.user, 'accept')).status, 200);
    const s = await space(t, who.helpdesk);
    assert.equal(s.internet_share_link, `https://help.example.com/assist/join?code=${s.invitation_code}`);
    assert.equal(s.private_share_link, `http://10.1.2.3:8080/assist/join?code=${s.invitation_code}`);
    const upgrade = (url: string, origin: string) => new Promise<number>((resolve) => {
      const ws = new WebSocket(url, { origin });
      ws.once('open', () => { ws.close(); resolve(101); });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
    });
    assert.equal(await upgrade(wsUrlOf(t, await desktopConsoleUrl(t, who.user)), 'https://evil.example'), 403);
    assert.equal(await upgrade(wsUrlOf(t, await desktopConsoleUrl(t, who.user)), 'https://help.example.com'), 101);
    assert.equal(await upgrade(wsUrlOf(t, await desktopConsoleUrl(t, who.user)), 'http://10.1.2.3:8080'), 101);
  });

  it('GET /assist/join: the page under a strict CSP, its files by name only, JSON errors with PH codes', async () => {
    const page = await call(`${t.url}/assist/join?code=ABCD1234`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'none'/);
    assert.doesNotMatch(csp, /unsafe|https?:/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(page.text, /\sstyle=|<style/, 'no inline style');
    for (const f of ['join.js', 'join.css', 'favicon.svg']) assert.equal((await call(`${t.url}/assist/${f}`)).status, 200, f);
    for (const f of ['join.html', 'console.js', '..%2Fvnc_auto.html', 'x.txt']) {
      const r = await call(`${t.url}/assist/${f}`);
      assert.equal(r.status, 404, f);
      assert.equal((r.body as { error_code: string }).error_code, 'PH.0404');
    }
    const js = await call(`${t.url}/assist/join.js`);
    assert.doesNotMatch(js.text, /innerHTML|eval\(/);
  });

  it('POST /assist/v1/join refuses what is not a JSON object with code and password (400 PH.0400), and says nothing about codes', async () => {
    const notJson = await call(`${t.url}/assist/v1/join`, { method: 'POST', body: 'code=X', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(notJson.status, 400);
    assert.equal((notJson.body as { error_code: string }).error_code, 'PH.0400');
    const noPassword = await call(`${t.url}/assist/v1/join`, { json: { code: 'ABCD1234' } });
    assert.equal(noPassword.status, 400);
    const unknown = await call(`${t.url}/assist/v1/join`, { json: { code: 'ABCD1234', password: 'x' } });
    assert.equal(unknown.status, 401);
    assert.match((unknown.body as { error_msg: string }).error_msg, /invitation code or password is wrong/);
  });
});
