import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desEncryptEcb, vncAuthKey, vncAuthResponse } from './des.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('single DES via des-ede-ecb (K‖K) matches the published vectors', () => {
  // NBS/FIPS 81 "Now is t" example.
  assert.equal(toHex(desEncryptEcb(hex('0123456789abcdef'), hex('4e6f772069732074'))), '3fa40e8a984d4815');
  // Classic worked example (Grabbe, "The DES Algorithm Illustrated").
  assert.equal(toHex(desEncryptEcb(hex('133457799bbcdff1'), hex('0123456789abcdef'))), '85e813540f0ab405');
  // NIST SP 800-17 variable-plaintext known-answer test, round 1.
  assert.equal(toHex(desEncryptEcb(hex('0101010101010101'), hex('8000000000000000'))), '95f8a5e5dd31d900');
  // ECB: each 8-byte block independently.
  assert.equal(
    toHex(desEncryptEcb(hex('0123456789abcdef'), hex('4e6f7720697320744e6f772069732074'))),
    '3fa40e8a984d48153fa40e8a984d4815',
  );
});

test('VNC key: first 8 password bytes, zero-padded, each byte bit-reversed', () => {
  assert.equal(toHex(vncAuthKey(new TextEncoder().encode('a'))), '8600000000000000'); // 0x61 → 0x86
  assert.equal(toHex(vncAuthKey(hex('0180ff0f'))), '8001fff000000000');
  // Bytes after the 8th are ignored (RFC 6143 §7.2.2).
  assert.deepEqual(vncAuthKey(new TextEncoder().encode('portholeXYZ')), vncAuthKey(new TextEncoder().encode('porthole')));
});

test('VNC auth responses match challenge/response pairs accepted by TigerVNC Xvnc 1.12 and x11vnc', () => {
  // Captured from `Xvnc -SecurityTypes VncAuth -rfbauth F` (F from `echo -n porthole | vncpasswd -f`);
  // the server answered SecurityResult 0 to this response. The live check is in
  // test/integration/console-session.test.ts.
  const challenge = hex('62476c15eafc4de8b78fabcad0117f38');
  assert.equal(toHex(vncAuthResponse(new TextEncoder().encode('porthole'), challenge)), '41df55ff1357cb6ed17009d1558e3dff');
  // Same password, another challenge, accepted by x11vnc 0.9.16 on Xvfb.
  assert.equal(toHex(vncAuthResponse(new TextEncoder().encode('porthole'), hex('ba16c692f571d4b133eb49601cbe0dc3'))), 'b7294c89e93f2c6eb61603464eab9003');
  // A different password gives a different response.
  assert.notEqual(toHex(vncAuthResponse(new TextEncoder().encode('portholf'), challenge)), '41df55ff1357cb6ed17009d1558e3dff');
});

test('VNC auth rejects a challenge that is not 16 bytes', () => {
  assert.throws(() => vncAuthResponse(new Uint8Array(8), new Uint8Array(15)), RangeError);
});
