// Unit tests for what the console page takes from its URL (params.ts) and how it names an ending
// (reasons.ts). The browser-level behaviour is in test/e2e/console-page.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_TOKEN_LENGTH, tokenFromLocation, tokenFromPath, tokenStateUrl, websocketUrl } from './params.js';
import { reasonForClose, reasonForTokenState, reasonText } from './reasons.js';
import { ReasonText } from '../../close-codes.js';

describe('console page URL parameters', () => {
  test('token from the Huawei top-level form and the noVNC path forms', () => {
    assert.equal(tokenFromLocation('?token=abc&lang=EN&tLength=70', ''), 'abc');
    assert.equal(tokenFromLocation('?path=websockify%3Ftoken%3Dabc', ''), 'abc');
    assert.equal(tokenFromLocation('?path=%3Ftoken%3Dabc', ''), 'abc');
    assert.equal(tokenFromLocation('', '#path=websockify%3Ftoken%3Dabc'), 'abc');
    assert.equal(tokenFromLocation('', '#token=abc'), 'abc');
    // The top-level token wins over one inside path; the query wins over the fragment.
    assert.equal(tokenFromLocation('?token=top&path=%3Ftoken%3Dinner', '#token=frag'), 'top');
    assert.equal(tokenFromLocation('?path=%3Ftoken%3Dq', '#token=frag'), 'q');
  });

  test('an absolute path lends its token only', () => {
    assert.equal(tokenFromPath('wss://evil.example:1/websockify?token=abc'), 'abc');
    assert.equal(tokenFromPath('//evil.example/websockify?token=abc#x'), 'abc');
    assert.equal(tokenFromPath('/websockify?other=1'), null);
    assert.equal(tokenFromPath('websockify'), null);
  });

  test('missing, empty and oversized tokens are rejected', () => {
    assert.equal(tokenFromLocation('?lang=EN&host=evil.example&port=1', ''), null);
    assert.equal(tokenFromLocation('?token=', ''), null);
    assert.equal(tokenFromLocation(`?token=${'a'.repeat(MAX_TOKEN_LENGTH + 1)}`, ''), null);
    assert.equal(tokenFromLocation(`?token=${'a'.repeat(MAX_TOKEN_LENGTH)}`, '')?.length, MAX_TOKEN_LENGTH);
  });

  test('the WebSocket URL is always the page origin and directory', () => {
    const page = { protocol: 'https:', host: 'console.example:8443', pathname: '/vnc/az-1/vnc_auto.html' };
    assert.equal(websocketUrl(page, 'a b&c'), 'wss://console.example:8443/vnc/az-1/websockify?token=a%20b%26c');
    assert.equal(
      websocketUrl({ protocol: 'http:', host: '127.0.0.1:6080', pathname: '/vnc/z1/' }, 't'),
      'ws://127.0.0.1:6080/vnc/z1/websockify?token=t',
    );
    assert.equal(tokenStateUrl('a/b'), 'token-state?token=a%2Fb');
  });
});

describe('console page reasons', () => {
  test('the gateway reason wins; the code alone is enough; page-only endings have words', () => {
    assert.equal(reasonForClose({ code: 4006, reason: 'killed' }, true), 'killed');
    assert.equal(reasonForClose({ code: 4004, reason: '' }, true), 'idle_timeout');
    assert.equal(reasonForClose({ code: 4010, reason: 'not-a-key' }, true), 'shutdown');
    assert.equal(reasonForClose({ code: 1006, reason: '' }, true), 'connection_lost');
    assert.equal(reasonForClose({ code: 1000, reason: '' }, true), 'closed');
    assert.equal(reasonForClose(null, true), 'console_error');
    // noVNC failed first: the browser's own close that follows names nothing, a gateway reason still does.
    assert.equal(reasonForClose({ code: 1005, reason: '' }, true, true), 'console_error');
    assert.equal(reasonForClose({ code: 4002, reason: 'backend_protocol_error' }, true, true), 'backend_protocol_error');
  });

  test('a socket that never opened means: ask token-state', () => {
    assert.equal(reasonForClose({ code: 1006, reason: '' }, false), null);
    assert.equal(reasonForTokenState({ state: 'used' }), 'token_used');
    assert.equal(reasonForTokenState({ state: 'expired' }), 'token_expired');
    assert.equal(reasonForTokenState({ state: 'valid' }), 'connect_failed');
    assert.equal(reasonForTokenState({ state: '__proto__' }), 'connect_failed');
    assert.equal(reasonForTokenState(null), 'connect_failed');
  });

  test('a server reason naming an Object.prototype member is not a key', () => {
    assert.equal(reasonForClose({ code: 1011, reason: 'constructor' }, true), 'connection_lost');
    assert.equal(typeof reasonText('constructor'), 'string');
    assert.equal(reasonText('token_used'), ReasonText.token_used);
  });
});
