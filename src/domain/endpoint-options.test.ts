import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkEndpoint, sealEndpoint, endpointsEqual } from './endpoint-spec.js';
import { decodeEndpointOptions, encodeEndpointOptions, endpointOptionsView } from './endpoint-options.js';
import { SecretBox } from './secrets.js';

const base = { url: 'vnc://10.0.0.5:5901' };

test('endpoint options: valid input becomes options; defaults are left out', () => {
  const { spec, problems } = checkEndpoint({
    ...base, security: 'vencrypt', password: 'pw', username: 'ops', servername: 'kvm1.example', vencrypt_subtypes: ['x509plain', 'x509vnc'],
    clipboard: 'to_machine', clipboard_max_bytes: 4096, session_mode: 'exclusive',
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(spec?.options, {
    username: 'ops', tlsServername: 'kvm1.example', tlsSubtypes: ['x509plain', 'x509vnc'], clipboard: 'to_machine', clipboardMaxBytes: 4096, sessionMode: 'exclusive',
  });
  assert.equal(checkEndpoint({ ...base, clipboard: 'both', session_mode: 'shared' }).spec?.options, undefined, 'defaults store nothing');
  const o = spec?.options;
  assert.deepEqual(decodeEndpointOptions(encodeEndpointOptions(o)), o);
  assert.deepEqual(endpointOptionsView(o), {
    servername: 'kvm1.example', vencrypt_subtypes: ['x509plain', 'x509vnc'], username: 'ops', clipboard: 'to_machine', clipboard_max_bytes: 4096, session_mode: 'exclusive',
  });
});

test('endpoint options: refused combinations name the field', () => {
  const fields = (raw: Record<string, unknown>) => checkEndpoint({ ...base, ...raw }).problems.map((p) => p.field);
  assert.deepEqual(fields({ security: 'vncauth', password: 'pw', servername: 'x.example' }), ['servername'], 'TLS options need vencrypt');
  assert.deepEqual(fields({ security: 'vencrypt', vencrypt_subtypes: ['tlsnone'] }), ['vencrypt_subtypes'], 'anonymous TLS needs allow_anonymous_tls');
  assert.deepEqual(fields({ security: 'vencrypt', vencrypt_subtypes: ['tlsnone'], allow_anonymous_tls: true }), []);
  assert.deepEqual(fields({ security: 'vencrypt', vencrypt_subtypes: ['x509vnc'] }), ['vencrypt_subtypes'], 'x509vnc without a password');
  assert.deepEqual(fields({ security: 'vencrypt', username: 'ops' }), ['username'], 'Plain needs a password');
  assert.deepEqual(fields({ security: 'vencrypt', vencrypt_subtypes: ['x509magic'] }), ['vencrypt_subtypes']);
  assert.deepEqual(fields({ clipboard: 'sideways' }), ['clipboard']);
  assert.deepEqual(fields({ clipboard_max_bytes: -1 }), ['clipboard_max_bytes']);
  assert.deepEqual(fields({ clipboard_max_bytes: 2 * 1024 * 1024 }), ['clipboard_max_bytes']);
  assert.deepEqual(fields({ session_mode: 'solo' }), ['session_mode']);
});

test('endpoint options are part of the endpoint: a change is an endpoint change (tokens revoked), none is not', () => {
  const box = new SecretBox(Buffer.alloc(32, 7));
  const spec = (raw: Record<string, unknown>) => checkEndpoint({ ...base, ...raw }).spec!;
  const a = sealEndpoint(box, 'r1', spec({ clipboard: 'off' }), null);
  assert.equal(endpointsEqual(a, sealEndpoint(box, 'r1', spec({ clipboard: 'off' }), a)), true);
  assert.equal(endpointsEqual(a, sealEndpoint(box, 'r1', spec({ clipboard: 'to_machine' }), a)), false);
  assert.equal(endpointsEqual(a, sealEndpoint(box, 'r1', spec({}), a)), false);
  assert.equal(sealEndpoint(box, 'r1', spec({}), null).options, undefined);
});
