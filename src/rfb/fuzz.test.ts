/**
 * Adversarial input for every parser: valid transcripts with random mutations (flips, inserts,
 * deletions, truncation, random tails) and pure noise, fed in random splits. Each parser must either
 * finish, ask for more bytes, or throw RfbError — never another exception, never loop, and never hold
 * more than its largest message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, randomBytes, randomInt, randomSplit, seededRandom, u32 } from '../../test/helpers/rfb-splitter.js';
import { ClientHandshake } from './client-handshake.js';
import { ClientMessageFramer } from './client-message-framer.js';
import { Limits } from './constants.js';
import { vncAuthResponse } from './des.js';
import { RfbError } from './errors.js';
import {
  DEFAULT_PIXEL_FORMAT,
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeReason,
  encodeServerInit,
  encodeSetEncodings,
  encodeSetPixelFormat,
} from './messages.js';
import { ServerHandshake } from './server-handshake.js';
import { ClientStreamFilter } from './client-filter.js';
import { ServerStreamFilter } from './server-filter.js';
import { everyByte } from '../../test/helpers/rfb-splitter.js';

const ITERATIONS = 2000;

function mutate(rng: () => number, input: Uint8Array): Uint8Array {
  if (rng() < 0.1) return randomBytes(rng, randomInt(rng, 0, 200));
  const b = Array.from(input);
  const edits = randomInt(rng, 1, 4);
  for (let i = 0; i < edits; i++) {
    const at = randomInt(rng, 0, Math.max(0, b.length - 1));
    const r = rng();
    if (r < 0.4) b[at] = randomInt(rng, 0, 255);
    else if (r < 0.55) b.splice(at, 0, ...randomBytes(rng, randomInt(rng, 1, 8)));
    else if (r < 0.7) b.splice(at, randomInt(rng, 1, 8));
    else if (r < 0.8) b.length = at;
    else if (r < 0.9) b.push(...randomBytes(rng, randomInt(rng, 1, 64)));
    else b[at] = [0, 0xff, 0x80, 0x7f][randomInt(rng, 0, 3)] as number;
  }
  return Uint8Array.from(b);
}

const challenge = new Uint8Array(16).fill(5);
const password = ascii('pw');
const SERVER_INIT = encodeServerInit({ width: 8, height: 8, pixelFormat: DEFAULT_PIXEL_FORMAT, name: 'x' });

const CLIENT_TRANSCRIPTS = [
  concat([ascii('RFB 003.008\n'), Uint8Array.of(2), vncAuthResponse(password, challenge), Uint8Array.of(1), encodeKeyEvent(true, 1)]),
  concat([ascii('RFB 003.007\n'), Uint8Array.of(1), Uint8Array.of(0)]),
  concat([ascii('RFB 003.003\n'), vncAuthResponse(password, challenge), Uint8Array.of(1)]),
];
const SERVER_TRANSCRIPTS = [
  concat([ascii('RFB 003.008\n'), Uint8Array.of(2, 1, 2), challenge, u32(0), SERVER_INIT, Uint8Array.of(2)]),
  concat([ascii('RFB 003.008\n'), Uint8Array.of(0), encodeReason('nope')]),
  concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 2), challenge, u32(1), encodeReason('Authentication failure')]),
  concat([ascii('RFB 003.007\n'), Uint8Array.of(1, 1), SERVER_INIT]),
  concat([ascii('RFB 003.003\n'), u32(2), challenge, u32(0), SERVER_INIT]),
];
const CLIENT_STREAM = concat([
  encodeSetPixelFormat(DEFAULT_PIXEL_FORMAT),
  encodeSetEncodings([0, -223, -316, 0xc0a1e5ce | 0]),
  encodeFramebufferUpdateRequest({ incremental: false, x: 0, y: 0, width: 8, height: 8 }),
  encodeKeyEvent(true, 0x61),
  encodePointerEvent(0x81, 1, 2),
  encodeClientCutText(ascii('clip')),
  concat([Uint8Array.of(6, 0, 0, 0), u32(-4), new Uint8Array(4)]),
  Uint8Array.of(150, 1, 0, 0, 0, 0, 0, 8, 0, 8),
  concat([Uint8Array.of(248, 0, 0, 0), u32(1), Uint8Array.of(2, 9, 9)]),
  Uint8Array.of(250, 0, 1, 4),
  concat([Uint8Array.of(251, 0, 0, 8, 0, 8, 1, 0), new Uint8Array(16)]),
  Uint8Array.of(253, 0x80, 0, 2, 1, 1),
  Uint8Array.of(255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e),
  Uint8Array.of(255, 1, 0, 2, 0, 2, 0, 0, 0x56, 0x22),
]);

/** Feeds chunks to a handshake; the outcome must not depend on how the bytes were split. */
function outcome(
  seed: number,
  make: () => { feed(c: Uint8Array): { done?: object }; buffered: number },
  chunks: Uint8Array[],
  maxBuffered: number,
): string {
  const hs = make();
  try {
    for (const [i, c] of chunks.entries()) {
      const r = hs.feed(c);
      if (r.done) {
        // What the caller's framer gets: rest plus every later chunk.
        const done = { ...r.done, rest: concat([(r.done as { rest: Uint8Array }).rest, ...chunks.slice(i + 1)]) };
        return `done ${JSON.stringify(done, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}`;
      }
      assert.ok(hs.buffered <= maxBuffered, `seed ${seed}: handshake holds ${hs.buffered} bytes`);
    }
    return 'more';
  } catch (err) {
    if (!(err instanceof RfbError)) assert.fail(`seed ${seed}: non-RfbError ${String(err)}\n${(err as Error).stack}`);
    return `error ${err.code}`;
  }
}

test(`fuzz: ServerHandshake, ${ITERATIONS} mutated client transcripts`, () => {
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const rng = seededRandom(seed);
    const input = mutate(rng, CLIENT_TRANSCRIPTS[seed % CLIENT_TRANSCRIPTS.length] as Uint8Array);
    const make = () => new ServerHandshake({ securityTypes: seed % 2 ? [2, 1] : [1], vncPassword: password, randomChallenge: () => challenge });
    const whole = outcome(seed, make, [input], 16);
    assert.equal(outcome(seed, make, randomSplit(input, rng, 9), 16), whole, `seed ${seed}`);
  }
});

test(`fuzz: ClientHandshake, ${ITERATIONS} mutated server transcripts`, () => {
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const rng = seededRandom(seed);
    const input = mutate(rng, SERVER_TRANSCRIPTS[seed % SERVER_TRANSCRIPTS.length] as Uint8Array);
    const make = () => new ClientHandshake({ credential: seed % 2 ? { type: 'vncauth', password } : { type: 'none' }, shared: true });
    const max = 4 + Limits.MAX_REASON_READ_BYTES;
    const whole = outcome(seed, make, [input], max);
    assert.equal(outcome(seed, make, randomSplit(input, rng, 9), max), whole, `seed ${seed}`);
  }
});

test(`fuzz: ClientMessageFramer, ${ITERATIONS} mutated message streams`, () => {
  const maxMessage = Math.max(8 + 1024, 4 + 4 * Limits.MAX_ENCODINGS, 4 + Limits.MAX_GII_BODY_BYTES);
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const rng = seededRandom(seed);
    const input = mutate(rng, CLIENT_STREAM);
    const opts = {
      maxClientCutText: seed % 5 === 0 ? 2 : 1024,
      oversizedCutText: seed % 2 ? ('skip' as const) : ('error' as const),
      extendedMouseButtons: seed % 3 === 0,
    };
    const frame = (chunks: Uint8Array[]): { frames: string[]; error: RfbError | undefined } => {
      const f = new ClientMessageFramer(opts);
      const frames: string[] = [];
      try {
        for (const c of chunks) {
          for (const fr of f.push(c)) frames.push(`${fr.type}:${fr.discarded ? 'skip' : Buffer.from(fr.bytes).toString('hex')}`);
          assert.ok(f.buffered < maxMessage, `seed ${seed}: framer holds ${f.buffered} bytes`);
        }
      } catch (err) {
        if (!(err instanceof RfbError)) assert.fail(`seed ${seed}: non-RfbError ${String(err)}\n${(err as Error).stack}`);
        return { frames, error: err };
      }
      return { frames, error: undefined };
    };
    const whole = frame([input]);
    const split = frame(randomSplit(input, rng, 17));
    // Split-invariance: how bytes arrive never changes what comes out.
    assert.equal(split.error?.code, whole.error?.code, `seed ${seed}`);
    if (!whole.error) assert.deepEqual(split.frames, whole.frames, `seed ${seed}`);
  }
});

const VENCRYPT_TRANSCRIPTS = [
  concat([ascii('RFB 003.008\n'), Uint8Array.of(2, 2, 19), Uint8Array.of(0, 2, 0), Uint8Array.of(3), u32(257), u32(260), u32(261), Uint8Array.of(1)]),
  concat([ascii('RFB 003.007\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2, 0), Uint8Array.of(2), u32(262), u32(258), Uint8Array.of(1)]),
  concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 3, 0), Uint8Array.of(1), u32(260), Uint8Array.of(0)]),
];

test(`fuzz: ClientHandshake VeNCrypt negotiation, ${ITERATIONS} mutated transcripts, whole, split and one byte at a time`, () => {
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const rng = seededRandom(seed);
    const input = mutate(rng, VENCRYPT_TRANSCRIPTS[seed % VENCRYPT_TRANSCRIPTS.length] as Uint8Array);
    const credential = {
      type: 'vencrypt' as const, tls: { ca: 'x' }, allowAnonymous: seed % 4 === 0,
      ...(seed % 2 ? { password } : {}), ...(seed % 3 === 0 ? { username: ascii('u'), password } : {}),
    };
    // Until startTls: a "more" or startTls outcome, or an RfbError, whatever the split.
    const negotiate = (chunks: Uint8Array[]): string => {
      const hs = new ClientHandshake({ credential, shared: true });
      try {
        for (const c of chunks) {
          const r = hs.feed(c);
          if (r.startTls) return `tls ${r.startTls.subtype} ${r.startTls.anonymous}`;
          assert.ok(hs.buffered <= 4 + Limits.MAX_REASON_READ_BYTES, `seed ${seed}`);
        }
        return 'more';
      } catch (err) {
        if (!(err instanceof RfbError)) assert.fail(`seed ${seed}: non-RfbError ${String(err)}`);
        // Plaintext after the accept byte is only visible when it arrives with it; later it would
        // reach the TLS layer (and fail the TLS handshake) instead.
        return /plaintext/.test(err.message) ? 'plaintext' : `error ${err.code}`;
      }
    };
    const same = (got: string, want: string, what: string) => {
      if (want === 'plaintext' && got.startsWith('tls ')) return;
      assert.equal(got, want, what);
    };
    const whole = negotiate([input]);
    same(negotiate(randomSplit(input, rng, 9)), whole, `seed ${seed}`);
    same(negotiate(everyByte(input)), whole, `seed ${seed} one byte at a time`);
    if (whole.startsWith('tls 25')) assert.ok(credential.allowAnonymous, `seed ${seed}: anonymous TLS without allowAnonymous`);
  }
});

const SERVER_STREAM = concat([
  Uint8Array.of(0, 0, 0, 3),
  Uint8Array.of(0, 0, 0, 0, 0, 2, 0, 1), u32(0), new Uint8Array(8), // Raw 2x1
  Uint8Array.of(0, 0, 0, 0, 0, 16, 0, 16), u32(5), Uint8Array.of(1), new Uint8Array(16 * 16 * 4), // Hextile raw tile
  Uint8Array.of(0, 0, 0, 0, 0, 4, 0, 4), u32(7), Uint8Array.of(0x80, 1, 2, 3), // Tight fill
  Uint8Array.of(3, 0, 0, 0), u32(4), ascii('clip'),
  Uint8Array.of(2),
  Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 8), u32(16), u32(3), Uint8Array.of(1, 2, 3), // ZRLE
  Uint8Array.of(248, 0, 0, 0), u32(1), Uint8Array.of(2, 7, 7),
  Uint8Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0),
]);

test(`fuzz: ServerStreamFilter, ${ITERATIONS} mutated server streams: split-invariant, bounded`, () => {
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const rng = seededRandom(seed);
    const input = mutate(rng, SERVER_STREAM);
    const filter = (chunks: Uint8Array[]): string => {
      const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: (n) => n < 3 });
      const out: Uint8Array[] = [];
      try {
        for (const c of chunks) {
          out.push(...f.push(c));
          assert.ok(f.buffered <= 1 + 256 * 4, `seed ${seed}: holds ${f.buffered}`);
        }
        return `ok ${Buffer.from(concat(out)).toString('hex')}`;
      } catch (err) {
        if (!(err instanceof RfbError)) assert.fail(`seed ${seed}: non-RfbError ${String(err)}\n${(err as Error).stack}`);
        return `error ${err.code}`;
      }
    };
    const whole = filter([input]);
    assert.equal(filter(randomSplit(input, rng, 17)), whole, `seed ${seed}`);
    if (seed % 10 === 0) assert.equal(filter(everyByte(input)), whole, `seed ${seed} one byte at a time`);
  }
});

test(`fuzz: ClientStreamFilter with live view-only switches, ${ITERATIONS} mutated streams: nothing but whole, allowed messages out`, () => {
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const rng = seededRandom(seed);
    const input = mutate(rng, CLIENT_STREAM);
    const f = new ClientStreamFilter({ viewOnly: seed % 2 === 0, clipboard: { direction: seed % 3 === 0 ? 'off' : 'both', maxBytes: 16 } });
    // What reaches the server must itself frame cleanly, with no input while view-only.
    const check = new ClientMessageFramer({ maxClientCutText: 16 });
    try {
      for (const c of randomSplit(input, rng, 13)) {
        if (rng() < 0.2) {
          const on = rng() < 0.5;
          for (const b of f.setViewOnly(on)) check.push(b);
        }
        const viewOnly = f.isViewOnly;
        for (const b of f.push(c)) {
          for (const fr of check.push(b)) {
            if (viewOnly) assert.ok(![4, 5, 6, 250, 251, 253].includes(fr.type) && !(fr.type === 255 && fr.bytes[1] === 0), `seed ${seed}: type ${fr.type} passed while view-only`);
            if (seed % 3 === 0) assert.notEqual(fr.type, 6, `seed ${seed}: cut text with clipboard off`);
          }
        }
        assert.ok(f.buffered < 4 + 4 * Limits.MAX_ENCODINGS + 16, `seed ${seed}`);
      }
    } catch (err) {
      if (!(err instanceof RfbError) || err.side !== 'client') assert.fail(`seed ${seed}: ${String(err)}\n${(err as Error).stack}`);
    }
    assert.equal(check.buffered, 0, `seed ${seed}: the server got a partial message`);
  }
});
