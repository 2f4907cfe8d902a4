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
