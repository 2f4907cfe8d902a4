import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, feedHandshake, splits, u32, type HandshakeRun } from '../../test/helpers/rfb-splitter.js';
import { vncAuthResponse } from './des.js';
import { RfbError } from './errors.js';
import { encodeReason } from './messages.js';
import { ServerHandshake, type ServerHandshakeOptions, type ServerHandshakeResult } from './server-handshake.js';

const CHALLENGE = Uint8Array.from({ length: 16 }, (_, i) => i * 7 + 1);
const PASSWORD = ascii('s3cret!');
const NONE: ServerHandshakeOptions = { securityTypes: [1] };
const VNC: ServerHandshakeOptions = { securityTypes: [2], vncPassword: PASSWORD, randomChallenge: () => CHALLENGE };

/** Feeds chunks until done or an error; `sent` starts with the greeting the server speaks first. */
function run(opts: ServerHandshakeOptions, chunks: Uint8Array[]): HandshakeRun<ServerHandshakeResult> {
  const hs = new ServerHandshake(opts);
  return feedHandshake(
    chunks,
    (c) => {
      const r = hs.feed(c);
      return { out: r.reply, done: r.done };
    },
    { first: [hs.greeting()] },
  );
}

/** Same client bytes under every split give the same server bytes and result. */
function check(opts: ServerHandshakeOptions, client: Uint8Array, expectSent: Uint8Array, expect: Omit<ServerHandshakeResult, 'rest'>, trailing: Uint8Array = new Uint8Array(0)) {
  for (const s of splits(concat([client, trailing]))) {
    const r = run(opts, s.chunks);
    assert.equal(r.error, undefined, s.name);
    assert.deepEqual(Buffer.from(r.sent), Buffer.from(expectSent), s.name);
    assert.ok(r.done, s.name);
    assert.equal(r.done.version, expect.version, s.name);
    assert.equal(r.done.shared, expect.shared, s.name);
    assert.deepEqual(Buffer.from(r.after), Buffer.from(trailing), s.name);
  }
}

function expectError(opts: ServerHandshakeOptions, client: Uint8Array, code: string, farewell?: Uint8Array) {
  for (const s of splits(client)) {
    const r = run(opts, s.chunks);
    assert.ok(r.error instanceof RfbError, `${s.name}: expected RfbError, got ${String(r.error)}`);
    assert.equal(r.error.code, code, s.name);
    assert.equal(r.error.side, 'client', s.name);
    if (farewell) assert.deepEqual(Buffer.from(concat(r.error.farewell)), Buffer.from(farewell), s.name);
    assert.equal(r.done, undefined, s.name);
  }
}

test('greeting is RFB 003.008', () => {
  assert.equal(Buffer.from(new ServerHandshake(NONE).greeting()).toString('latin1'), 'RFB 003.008\n');
});

test('3.8 None: type list, SecurityResult OK, ClientInit; pipelined client messages are kept as rest', () => {
  check(
    NONE,
    concat([ascii('RFB 003.008\n'), Uint8Array.of(1), Uint8Array.of(1)]),
    concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1), u32(0)]),
    { version: '3.8', shared: true },
    Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 10, 0, 10),
  );
});

test('3.7 None: no SecurityResult after None (RFC 6143 §7.2.1)', () => {
  check(NONE, concat([ascii('RFB 003.007\n'), Uint8Array.of(1), Uint8Array.of(0)]), concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1)]), {
    version: '3.7',
    shared: false,
  });
});

test('3.3 None: the server picks the type as a U32, then ClientInit', () => {
  check(NONE, concat([ascii('RFB 003.003\n'), Uint8Array.of(1)]), concat([ascii('RFB 003.008\n'), u32(1)]), { version: '3.3', shared: true });
});

test('3.8 VNC Authentication with the right password', () => {
  const response = vncAuthResponse(PASSWORD, CHALLENGE);
  check(
    VNC,
    concat([ascii('RFB 003.008\n'), Uint8Array.of(2), response, Uint8Array.of(1)]),
    concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 2), CHALLENGE, u32(0)]),
    { version: '3.8', shared: true },
  );
});

test('3.3 VNC Authentication: U32 type 2, challenge, SecurityResult', () => {
  const response = vncAuthResponse(PASSWORD, CHALLENGE);
  check(
    VNC,
    concat([ascii('RFB 003.003\n'), response, Uint8Array.of(0)]),
    concat([ascii('RFB 003.008\n'), u32(2), CHALLENGE, u32(0)]),
    { version: '3.3', shared: false },
  );
});

test('offers several types in the configured order', () => {
  const opts: ServerHandshakeOptions = { securityTypes: [2, 1], vncPassword: PASSWORD, randomChallenge: () => CHALLENGE };
  check(opts, concat([ascii('RFB 003.008\n'), Uint8Array.of(1), Uint8Array.of(1)]), concat([ascii('RFB 003.008\n'), Uint8Array.of(2, 2, 1), u32(0)]), {
    version: '3.8',
    shared: true,
  });
});

test('wrong VNC password: RFB_AUTH_FAILED blamed on the client, farewell is SecurityResult 1 (+ reason in 3.8)', () => {
  const wrong = vncAuthResponse(ascii('guess'), CHALLENGE);
  expectError(VNC, concat([ascii('RFB 003.008\n'), Uint8Array.of(2), wrong]), 'RFB_AUTH_FAILED', concat([u32(1), encodeReason('Authentication failed')]));
  expectError(VNC, concat([ascii('RFB 003.007\n'), Uint8Array.of(2), wrong]), 'RFB_AUTH_FAILED', u32(1));
  expectError(VNC, concat([ascii('RFB 003.003\n'), wrong]), 'RFB_AUTH_FAILED', u32(1));
});

test('client version mapping: 3.5/3.6 → 3.3, above 3.8 → 3.8', () => {
  for (const [v, want] of [
    ['RFB 003.005\n', '3.3'],
    ['RFB 003.006\n', '3.3'],
    ['RFB 003.009\n', '3.8'],
    ['RFB 003.889\n', '3.8'],
    ['RFB 004.001\n', '3.8'],
  ] as const) {
    const hs = new ServerHandshake(NONE);
    const { reply } = hs.feed(ascii(v));
    const version = want === '3.3' ? 'U32' : 'list';
    assert.equal(reply[0]?.length, version === 'U32' ? 4 : 2, v);
  }
});

test('bad client versions are RFB_BAD_VERSION, and junk fails on its first byte', () => {
  for (const v of ['RFB 002.999\n', 'RFB 000.000\n', 'RFB 003.00x\n', 'RFB 003.008\r', 'rfb 003.008\n']) {
    expectError(NONE, ascii(v), 'RFB_BAD_VERSION');
  }
  // HTTP sent to the RFB port: refused at once, without waiting for 12 bytes.
  const hs = new ServerHandshake(NONE);
  assert.throws(() => hs.feed(ascii('G')), (e: unknown) => e instanceof RfbError && e.code === 'RFB_BAD_VERSION');
});

test('a security type that was not offered is refused (3.8 farewell carries a reason)', () => {
  expectError(NONE, concat([ascii('RFB 003.008\n'), Uint8Array.of(2)]), 'RFB_NO_SECURITY_TYPE', concat([u32(1), encodeReason('Security type not offered')]));
  expectError(NONE, concat([ascii('RFB 003.008\n'), Uint8Array.of(0)]), 'RFB_NO_SECURITY_TYPE');
  expectError(NONE, concat([ascii('RFB 003.007\n'), Uint8Array.of(19)]), 'RFB_NO_SECURITY_TYPE', new Uint8Array(0));
});

test('after an error the handshake stays failed; after done it refuses more input', () => {
  const hs = new ServerHandshake(NONE);
  let first: unknown;
  try {
    hs.feed(ascii('XXXX'));
  } catch (e) {
    first = e;
  }
  assert.throws(() => hs.feed(ascii('RFB 003.008\n')), (e: unknown) => e === first);
  const ok = new ServerHandshake(NONE);
  assert.ok(ok.feed(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1)])).done);
  assert.throws(() => ok.feed(Uint8Array.of(0)), /after done/);
});

test('constructor refuses options it cannot honour', () => {
  assert.throws(() => new ServerHandshake({ securityTypes: [] }), RangeError);
  assert.throws(() => new ServerHandshake({ securityTypes: [19] }), RangeError);
  assert.throws(() => new ServerHandshake({ securityTypes: [2] }), RangeError);
  assert.throws(() => new ServerHandshake({ securityTypes: [2], vncPassword: PASSWORD, randomChallenge: () => new Uint8Array(8) }).feed(ascii('RFB 003.008\n\x02')), RangeError);
});

test('each connection gets a fresh random challenge by default', () => {
  const a = new ServerHandshake({ securityTypes: [2], vncPassword: PASSWORD }).feed(concat([ascii('RFB 003.008\n'), Uint8Array.of(2)])).reply;
  const b = new ServerHandshake({ securityTypes: [2], vncPassword: PASSWORD }).feed(concat([ascii('RFB 003.008\n'), Uint8Array.of(2)])).reply;
  assert.equal(a[1]?.length, 16);
  assert.notDeepEqual(a[1], b[1]);
});
