import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, feedHandshake, splits, u32, type HandshakeRun } from '../../test/helpers/rfb-splitter.js';
import { ClientHandshake, vencryptSubtypesFor, type ClientHandshakeOptions, type ClientHandshakeResult } from './client-handshake.js';
import { Limits, VeNCryptSubtype as V } from './constants.js';
import { RfbError } from './errors.js';
import { DEFAULT_PIXEL_FORMAT, encodeReason, encodeServerInit } from './messages.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const NONE: ClientHandshakeOptions = { credential: { type: 'none' }, shared: true };
const PW = ascii('porthole');
const VNC: ClientHandshakeOptions = { credential: { type: 'vncauth', password: PW }, shared: true };
const SERVER_INIT = encodeServerInit({ width: 640, height: 480, pixelFormat: DEFAULT_PIXEL_FORMAT, name: 'desk' });

function run(opts: ClientHandshakeOptions, chunks: Uint8Array[]): HandshakeRun<ClientHandshakeResult> {
  const hs = new ClientHandshake(opts);
  return feedHandshake(
    chunks,
    (c) => {
      const r = hs.feed(c);
      return { out: r.send, done: r.done };
    },
    { afterStep: () => assert.ok(hs.buffered <= 4 + Limits.MAX_REASON_READ_BYTES, 'handshake buffers at most one message') },
  );
}

function check(opts: ClientHandshakeOptions, server: Uint8Array, expectSent: Uint8Array, version: string, trailing: Uint8Array = new Uint8Array(0)) {
  for (const s of splits(concat([server, trailing]))) {
    const r = run(opts, s.chunks);
    assert.equal(r.error, undefined, `${s.name}: ${String(r.error)}`);
    assert.deepEqual(Buffer.from(r.sent), Buffer.from(expectSent), s.name);
    assert.ok(r.done, s.name);
    assert.equal(r.done.version, version, s.name);
    assert.deepEqual(r.after, trailing, s.name);
  }
}

function expectError(opts: ClientHandshakeOptions, server: Uint8Array, code: string, reason?: string) {
  for (const s of splits(server)) {
    const r = run(opts, s.chunks);
    assert.ok(r.error instanceof RfbError, `${s.name}: expected RfbError, got ${String(r.error)}`);
    assert.equal(r.error.code, code, s.name);
    assert.equal(r.error.side, 'server', s.name);
    assert.equal(r.error.reason, reason, s.name);
  }
}

test('TigerVNC Xvnc 1.12 transcript: 3.8, VncAuth, ServerInit (captured bytes)', () => {
  // Server side of a real session (password "porthole"); our answers must be byte-identical.
  const server = concat([
    ascii('RFB 003.008\n'),
    hex('0102'),
    hex('62476c15eafc4de8b78fabcad0117f38'),
    u32(0),
    hex('014000f02018000100ff00ff00ff10080000000000000007726f6f7440766d'),
  ]);
  const sent = concat([ascii('RFB 003.008\n'), hex('02'), hex('41df55ff1357cb6ed17009d1558e3dff'), hex('01')]);
  check(VNC, server, sent, '3.8', hex('0200')); // plus a Bell and the start of another message after ServerInit
  const r = run(VNC, [server]);
  assert.deepEqual(r.done?.serverInit, {
    width: 320,
    height: 240,
    pixelFormat: { ...DEFAULT_PIXEL_FORMAT },
    name: 'root@vm',
  });
  assert.equal(r.done?.securityType, 2);
  assert.deepEqual(Buffer.from(r.done?.serverInitBytes ?? []).toString('hex'), '014000f02018000100ff00ff00ff10080000000000000007726f6f7440766d');
});

test('QEMU transcript: 3.8 None with SecurityResult, shared flag as configured', () => {
  const server = concat([ascii('RFB 003.008\n'), hex('0101'), u32(0), hex('02d001902018000100ff00ff00ff1008000000000000000451454d55')]);
  check(NONE, server, concat([ascii('RFB 003.008\n'), hex('01'), hex('01')]), '3.8');
  check({ ...NONE, shared: false }, server, concat([ascii('RFB 003.008\n'), hex('01'), hex('00')]), '3.8');
});

test('3.7 None: no SecurityResult', () => {
  check(NONE, concat([ascii('RFB 003.007\n'), Uint8Array.of(2, 2, 1), SERVER_INIT]), concat([ascii('RFB 003.007\n'), hex('01'), hex('01')]), '3.7');
});

test('3.3 None and VncAuth: server picks a U32 type', () => {
  check(NONE, concat([ascii('RFB 003.003\n'), u32(1), SERVER_INIT]), concat([ascii('RFB 003.003\n'), hex('01')]), '3.3');
  const challenge = hex('62476c15eafc4de8b78fabcad0117f38');
  check(
    VNC,
    concat([ascii('RFB 003.003\n'), u32(2), challenge, u32(0), SERVER_INIT]),
    concat([ascii('RFB 003.003\n'), hex('41df55ff1357cb6ed17009d1558e3dff'), hex('01')]),
    '3.3',
  );
});

test('server version mapping: 3.5/3.6 → 3.3, 3.889/4.0/4.1/5.0 → 3.8', () => {
  for (const [v, answer] of [
    ['RFB 003.005\n', 'RFB 003.003\n'],
    ['RFB 003.006\n', 'RFB 003.003\n'],
    ['RFB 003.889\n', 'RFB 003.008\n'],
    ['RFB 004.000\n', 'RFB 003.008\n'],
    ['RFB 004.001\n', 'RFB 003.008\n'],
    ['RFB 005.000\n', 'RFB 003.008\n'],
  ]) {
    const r = new ClientHandshake(NONE).feed(ascii(v as string));
    assert.equal(Buffer.from(concat(r.send)).toString('latin1'), answer, v);
  }
});

test('garbage or unsupported server versions are RFB_BAD_VERSION', () => {
  for (const v of ['RFB 000.000\n', 'RFB 002.002\n', 'SSH-2.0-OpenSSH_9.2p1\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00', 'RFB 03.008\n\n']) {
    expectError(NONE, ascii(v), 'RFB_BAD_VERSION');
  }
});

test('security count 0 with a reason: RFB_SERVER_REFUSED carrying the reason', () => {
  // What Xvnc sends to a blacklisted host.
  const server = concat([ascii('RFB 003.008\n'), Uint8Array.of(0), encodeReason('Too many security failures')]);
  expectError(NONE, server, 'RFB_SERVER_REFUSED', 'Too many security failures');
  expectError(NONE, concat([ascii('RFB 003.003\n'), u32(0), encodeReason('go away')]), 'RFB_SERVER_REFUSED', 'go away');
});

test('long reasons are reported capped to 256 bytes; control characters are blanked', () => {
  const long = 'x'.repeat(3000);
  expectError(NONE, concat([ascii('RFB 003.008\n'), Uint8Array.of(0), encodeReason(long)]), 'RFB_SERVER_REFUSED', 'x'.repeat(256));
  expectError(NONE, concat([ascii('RFB 003.008\n'), Uint8Array.of(0), encodeReason('a\x1b[31mb\n')]), 'RFB_SERVER_REFUSED', 'a [31mb');
});

test('a huge reason length fails at once without waiting for (or buffering) the reason', () => {
  const hs = new ClientHandshake(NONE);
  hs.feed(concat([ascii('RFB 003.008\n'), Uint8Array.of(0)]));
  assert.throws(
    () => hs.feed(u32(0xffffffff)),
    (e: unknown) => e instanceof RfbError && e.code === 'RFB_SERVER_REFUSED' && e.reason === undefined && /not read/.test(e.message),
  );
  expectError(NONE, concat([ascii('RFB 003.008\n'), Uint8Array.of(0), u32(Limits.MAX_REASON_READ_BYTES + 1)]), 'RFB_SERVER_REFUSED');
});

test('failed VNC auth: 3.8 reason reported (captured from Xvnc), 3.7 and 3.3 without reason', () => {
  const challenge = new Uint8Array(16);
  expectError(VNC, concat([ascii('RFB 003.008\n'), hex('0102'), challenge, hex('000000010000001641757468656e7469636174696f6e206661696c757265')]), 'RFB_AUTH_FAILED', 'Authentication failure');
  expectError(VNC, concat([ascii('RFB 003.007\n'), hex('0102'), challenge, u32(1)]), 'RFB_AUTH_FAILED');
  expectError(VNC, concat([ascii('RFB 003.003\n'), u32(2), challenge, u32(2)]), 'RFB_AUTH_FAILED');
  // 3.8 None can fail too.
  expectError(NONE, concat([ascii('RFB 003.008\n'), hex('0101'), u32(1), encodeReason('no')]), 'RFB_AUTH_FAILED', 'no');
});

test('a wrong password is never retried: after the failure the machine only rethrows', () => {
  const hs = new ClientHandshake(VNC);
  const first = hs.feed(concat([ascii('RFB 003.008\n'), hex('0102'), new Uint8Array(16)]));
  assert.equal(first.send.length, 3);
  let failure: unknown;
  try {
    hs.feed(concat([u32(1), encodeReason('Authentication failure')]));
  } catch (e) {
    failure = e;
  }
  assert.ok(failure instanceof RfbError);
  // A server that offers a fresh challenge afterwards gets nothing from us.
  assert.throws(() => hs.feed(new Uint8Array(16)), (e: unknown) => e === failure);
});

test('the credential decides the type: no usable type is RFB_NO_SECURITY_TYPE, never a downgrade', () => {
  expectError(NONE, concat([ascii('RFB 003.008\n'), hex('0102')]), 'RFB_NO_SECURITY_TYPE');
  expectError(VNC, concat([ascii('RFB 003.008\n'), hex('0101')]), 'RFB_NO_SECURITY_TYPE');
  expectError(VNC, concat([ascii('RFB 003.003\n'), u32(1)]), 'RFB_NO_SECURITY_TYPE');
  expectError(NONE, concat([ascii('RFB 003.003\n'), u32(19)]), 'RFB_NO_SECURITY_TYPE');
  // The first usable type in the server's order is picked among unknown ones.
  const r = new ClientHandshake(VNC).feed(concat([ascii('RFB 003.008\n'), Uint8Array.of(3, 16, 19, 2)]));
  assert.deepEqual(Array.from(r.send[1] ?? []), [2]);
});

test('limits: too many security types, an over-long desktop name', () => {
  expectError(NONE, concat([ascii('RFB 003.008\n'), Uint8Array.of(Limits.MAX_SECURITY_TYPES + 1)]), 'RFB_LIMIT_EXCEEDED');
  const init = encodeServerInit({ width: 1, height: 1, pixelFormat: DEFAULT_PIXEL_FORMAT, name: '' });
  new DataView(init.buffer).setUint32(20, 0x7fffffff);
  expectError(NONE, concat([ascii('RFB 003.008\n'), hex('0101'), u32(0), init]), 'RFB_LIMIT_EXCEEDED');
});

// ---------------------------------------------------------------------------------------------
// VeNCrypt (rfbproto §7.2.19)

const TLS = { ca: '-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n' };

/** Feeds `plain` until startTls, then (after tlsEstablished) `secure`, each under every split. */
function runVeNCrypt(opts: ClientHandshakeOptions, plain: Uint8Array, secure: Uint8Array) {
  const results: { sentPlain: Uint8Array; sentSecure: Uint8Array; subtype: number; anonymous: boolean; done: ClientHandshakeResult }[] = [];
  for (const s of splits(plain, 3, 8)) {
    const hs = new ClientHandshake(opts);
    const sentPlain: Uint8Array[] = [];
    let subtype = -1;
    let anonymous = false;
    for (const [i, c] of s.chunks.entries()) {
      const r = hs.feed(c);
      sentPlain.push(...r.send);
      if (r.startTls) {
        assert.equal(i, s.chunks.length - 1, `${s.name}: startTls on the last plaintext byte`);
        assert.equal(r.startTls.tls, TLS);
        subtype = r.startTls.subtype;
        anonymous = r.startTls.anonymous;
      }
    }
    assert.throws(() => hs.feed(Uint8Array.of(0)), /tlsEstablished/);
    const sentSecure: Uint8Array[] = [...hs.tlsEstablished().send];
    let done: ClientHandshakeResult | undefined;
    for (const c of splits(secure, 4, 1)[2]?.chunks ?? []) {
      const r = hs.feed(c);
      sentSecure.push(...r.send);
      done ??= r.done;
    }
    assert.ok(done, s.name);
    results.push({ sentPlain: concat(sentPlain), sentSecure: concat(sentSecure), subtype, anonymous, done });
  }
  return results;
}

test('VeNCrypt X509None: version 0.2, subtype 260, startTls, then SecurityResult and ServerInit over TLS', () => {
  const plain = concat([ascii('RFB 003.008\n'), Uint8Array.of(2, 2, 19), Uint8Array.of(0, 2), Uint8Array.of(0), Uint8Array.of(3), u32(257), u32(260), u32(261), Uint8Array.of(1)]);
  const secure = concat([u32(0), SERVER_INIT]);
  for (const r of runVeNCrypt({ credential: { type: 'vencrypt', tls: TLS }, shared: true }, plain, secure)) {
    assert.deepEqual(Buffer.from(r.sentPlain), Buffer.from(concat([ascii('RFB 003.008\n'), Uint8Array.of(19), Uint8Array.of(0, 2), u32(260)])));
    assert.equal(r.subtype, 260);
    assert.deepEqual(Array.from(r.sentSecure), [1]);
    assert.equal(r.done.securityType, 19);
  }
});

test('VeNCrypt X509Vnc: VNC challenge over TLS; 3.7 still gets a SecurityResult', () => {
  const challenge = hex('62476c15eafc4de8b78fabcad0117f38');
  const plain = concat([ascii('RFB 003.007\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2), Uint8Array.of(0), Uint8Array.of(2), u32(260), u32(261), Uint8Array.of(1)]);
  const secure = concat([challenge, u32(0), SERVER_INIT]);
  for (const r of runVeNCrypt({ credential: { type: 'vencrypt', password: PW, tls: TLS }, shared: false }, plain, secure)) {
    assert.equal(r.subtype, 261);
    assert.deepEqual(Buffer.from(r.sentSecure).toString('hex'), '41df55ff1357cb6ed17009d1558e3dff' + '00');
  }
});

test('VeNCrypt refusals: old version, nack, only anonymous-TLS subtypes, subtype rejected, plaintext before TLS', () => {
  const cred: ClientHandshakeOptions = { credential: { type: 'vencrypt', tls: TLS }, shared: true };
  const head = concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19)]);
  expectError(cred, concat([head, Uint8Array.of(0, 1)]), 'RFB_UNEXPECTED');
  expectError(cred, concat([head, Uint8Array.of(0, 2, 1)]), 'RFB_SERVER_REFUSED');
  expectError(cred, concat([head, Uint8Array.of(0, 2, 0, 2), u32(257), u32(258)]), 'RFB_NO_SECURITY_TYPE');
  expectError(cred, concat([head, Uint8Array.of(0, 2, 0, 1), u32(260), Uint8Array.of(0)]), 'RFB_SERVER_REFUSED');
  const hs = new ClientHandshake(cred);
  assert.throws(
    () => hs.feed(concat([head, Uint8Array.of(0, 2, 0, 1), u32(260), Uint8Array.of(1), ascii('hello')])),
    (e: unknown) => e instanceof RfbError && e.code === 'RFB_UNEXPECTED',
  );
  // A VeNCrypt credential never settles for None or plain VNC auth, and 3.3 has no VeNCrypt.
  expectError(cred, concat([ascii('RFB 003.008\n'), Uint8Array.of(2, 1, 2)]), 'RFB_NO_SECURITY_TYPE');
  expectError(cred, concat([ascii('RFB 003.003\n'), u32(19)]), 'RFB_NO_SECURITY_TYPE');
});

test('VeNCrypt X509Plain: username and password sent only after TLS, then SecurityResult', () => {
  const plain = concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2), Uint8Array.of(0), Uint8Array.of(3), u32(260), u32(261), u32(262), Uint8Array.of(1)]);
  const secure = concat([u32(0), SERVER_INIT]);
  const cred: ClientHandshakeOptions = { credential: { type: 'vencrypt', username: ascii('ops'), password: PW, tls: TLS }, shared: true };
  for (const r of runVeNCrypt(cred, plain, secure)) {
    assert.equal(r.subtype, 262, 'the strongest both allow');
    assert.equal(r.anonymous, false);
    assert.ok(!Buffer.from(r.sentPlain).includes(Buffer.from('porthole')), 'no password in clear');
    assert.deepEqual(Buffer.from(r.sentSecure), Buffer.from(concat([u32(3), u32(8), ascii('ops'), PW, Uint8Array.of(1)])));
  }
});

test('VeNCrypt subtype choice: strongest allowed by policy and server; anonymous only when allowed', () => {
  const tls = TLS;
  const pw = PW;
  const user = ascii('u');
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls }), [V.X509_NONE]);
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls, password: pw }), [V.X509_VNC], 'a password never settles for X509None by default');
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls, password: pw, username: user }), [V.X509_PLAIN, V.X509_VNC]);
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls, allowAnonymous: true }), [V.X509_NONE, V.TLS_NONE]);
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls, password: pw, subtypes: [V.X509_NONE, V.X509_VNC, V.TLS_VNC] }), [V.X509_VNC, V.X509_NONE], 'anonymous listed but not allowed');
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls, subtypes: [V.X509_VNC, V.X509_PLAIN] }), [], 'no password: nothing usable');
  assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls, password: pw, subtypes: [V.TLS_VNC], allowAnonymous: true }), [V.TLS_VNC]);

  const head = concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2), Uint8Array.of(0)]);
  // Server offers only anonymous TLS: refused unless allowed; when allowed, startTls says anonymous.
  const anonOnly = concat([head, Uint8Array.of(2), u32(257), u32(258), Uint8Array.of(1)]);
  expectError({ credential: { type: 'vencrypt', password: pw, tls }, shared: true }, anonOnly, 'RFB_NO_SECURITY_TYPE');
  for (const r of runVeNCrypt({ credential: { type: 'vencrypt', password: pw, tls, allowAnonymous: true }, shared: true }, anonOnly, concat([new Uint8Array(16), u32(0), SERVER_INIT]))) {
    assert.equal(r.subtype, V.TLS_VNC);
    assert.equal(r.anonymous, true);
  }
  // Policy [X509None, X509Vnc] with a password: the server's X509Vnc is preferred over X509None.
  const both = concat([head, Uint8Array.of(2), u32(260), u32(261), Uint8Array.of(1)]);
  for (const r of runVeNCrypt({ credential: { type: 'vencrypt', password: pw, tls, subtypes: [V.X509_NONE, V.X509_VNC] }, shared: true }, both, concat([new Uint8Array(16), u32(0), SERVER_INIT]))) {
    assert.equal(r.subtype, V.X509_VNC);
  }
  const onlyNone = concat([head, Uint8Array.of(1), u32(260), Uint8Array.of(1)]);
  for (const r of runVeNCrypt({ credential: { type: 'vencrypt', password: pw, tls, subtypes: [V.X509_NONE, V.X509_VNC] }, shared: true }, onlyNone, concat([u32(0), SERVER_INIT]))) {
    assert.equal(r.subtype, V.X509_NONE);
  }
});
