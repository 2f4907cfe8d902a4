/**
 * RFB handshake from the server's side (RFC 6143 §7.1–§7.3.1): Porthole toward the browser, and the
 * demo desktop toward any viewer. A resumable state machine: `feed()` takes whatever bytes arrived,
 * returns the bytes to send, and reports `done` once ClientInit was read. It never touches a socket.
 *
 *   version ──► securityChoice (3.7/3.8) ──► [vncAuthResponse] ──► clientInit ──► done
 *          └──► (3.3: server picks the type) ┘
 *
 * After `done` the caller sends ServerInit (`encodeServerInit`) and hands `rest` (bytes the client
 * pipelined after ClientInit) to its message framer.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  CLIENT_INIT_LENGTH,
  Limits,
  SecurityResult,
  SecurityType,
  VERSION_3_8,
  VERSION_MESSAGE_LENGTH,
  VNC_AUTH_CHALLENGE_LENGTH,
  type RfbVersion,
} from './constants.js';
import { ByteQueue } from './byte-queue.js';
import { vncAuthResponse } from './des.js';
import { RfbError } from './errors.js';
import { encodeReason } from './messages.js';
import { checkVersionPrefix, negotiatedVersion, parseVersion } from './version.js';

export interface ServerHandshakeOptions {
  /** Offered in this order, e.g. [1] (None) or [2] (VncAuth). Only 1 and 2 are implemented. */
  securityTypes: readonly number[];
  /** Required if 2 is offered. */
  vncPassword?: Uint8Array;
  /** 16 bytes; default crypto.randomBytes. */
  randomChallenge?: () => Uint8Array;
}

export interface ServerHandshakeResult {
  version: RfbVersion;
  /** ClientInit shared-flag: false means the client asked for exclusive access. */
  shared: boolean;
  /** Bytes the client sent after ClientInit (the start of its message stream). */
  rest: Uint8Array;
}

/** What the client still owes us. */
export type ServerHandshakePhase = 'version' | 'securityChoice' | 'vncAuthResponse' | 'clientInit' | 'done';
type State = ServerHandshakePhase;

const SUPPORTED = new Set<number>([SecurityType.NONE, SecurityType.VNC_AUTH]);

/** Reason sent to a 3.8 client whose authentication failed (never includes anything secret). */
const AUTH_FAILED_REASON = 'Authentication failed';
const TYPE_NOT_OFFERED_REASON = 'Security type not offered';

export class ServerHandshake {
  private readonly queue = new ByteQueue();
  private state: State = 'version';
  private version: RfbVersion = '3.8';
  private challenge: Uint8Array | undefined;
  private failure: RfbError | undefined;
  private readonly securityTypes: readonly number[];
  private readonly password: Uint8Array | undefined;
  private readonly randomChallenge: () => Uint8Array;

  constructor(opts: ServerHandshakeOptions) {
    if (opts.securityTypes.length === 0 || opts.securityTypes.length > Limits.MAX_SECURITY_TYPES) {
      throw new RangeError('securityTypes must list 1..MAX_SECURITY_TYPES types');
    }
    for (const t of opts.securityTypes) {
      if (!SUPPORTED.has(t)) throw new RangeError(`security type ${t} is not implemented by ServerHandshake`);
    }
    if (opts.securityTypes.includes(SecurityType.VNC_AUTH) && !opts.vncPassword) {
      throw new RangeError('vncPassword is required when offering VNC Authentication');
    }
    this.securityTypes = [...opts.securityTypes];
    this.password = opts.vncPassword;
    this.randomChallenge = opts.randomChallenge ?? (() => new Uint8Array(randomBytes(VNC_AUTH_CHALLENGE_LENGTH)));
  }

  /** Bytes received but not yet consumed (bounded by the largest message the current state waits for). */
  get buffered(): number {
    return this.queue.length;
  }

  /** The name of the state (for logs and timeouts: what the client still owes us). */
  get phase(): State {
    return this.state;
  }

  /** §7.1.1: the server speaks first with its highest version. */
  greeting(): Uint8Array {
    return new TextEncoder().encode(VERSION_3_8);
  }

  /** Feed client bytes; returns bytes to send, and `done` once ClientInit was read. Throws RfbError. */
  feed(chunk: Uint8Array): { reply: Uint8Array[]; done?: ServerHandshakeResult } {
    if (this.failure) throw this.failure;
    if (this.state === 'done') throw new Error('ServerHandshake: feed() after done');
    this.queue.push(chunk);
    const reply: Uint8Array[] = [];
    try {
      for (;;) {
        const done = this.step(reply);
        if (done === 'more') return { reply };
        if (done !== 'next') return { reply, done };
      }
    } catch (err) {
      if (err instanceof RfbError) this.failure = err;
      throw err;
    }
  }

  /** One state transition; 'more' = wait for bytes, 'next' = loop again. */
  private step(reply: Uint8Array[]): 'more' | 'next' | ServerHandshakeResult {
    switch (this.state) {
      case 'version': {
        checkVersionPrefix(this.queue, 'client');
        if (this.queue.length < VERSION_MESSAGE_LENGTH) return 'more';
        this.version = negotiatedVersion(parseVersion(this.queue.take(VERSION_MESSAGE_LENGTH), 'client'), 'client');
        if (this.version === '3.3') {
          // §7.1.2 (3.3): the server decides; U32 type. Offer the first type in our order.
          const type = this.securityTypes[0] as number;
          reply.push(u32(type));
          this.startType(type, reply);
        } else {
          reply.push(Uint8Array.of(this.securityTypes.length, ...this.securityTypes));
          this.state = 'securityChoice';
        }
        return 'next';
      }
      case 'securityChoice': {
        if (this.queue.length < 1) return 'more';
        const chosen = this.queue.takeU8();
        if (!this.securityTypes.includes(chosen)) {
          throw new RfbError('RFB_NO_SECURITY_TYPE', 'client', `client chose security type ${chosen}, which was not offered`, {
            farewell: this.failureResult(TYPE_NOT_OFFERED_REASON),
          });
        }
        this.startType(chosen, reply);
        return 'next';
      }
      case 'vncAuthResponse': {
        if (this.queue.length < VNC_AUTH_CHALLENGE_LENGTH) return 'more';
        const response = this.queue.take(VNC_AUTH_CHALLENGE_LENGTH);
        const expected = vncAuthResponse(this.password as Uint8Array, this.challenge as Uint8Array);
        this.challenge = undefined;
        if (!timingSafeEqual(response, expected)) {
          throw new RfbError('RFB_AUTH_FAILED', 'client', 'VNC authentication response did not match', {
            farewell: this.failureResult(AUTH_FAILED_REASON, true),
          });
        }
        reply.push(u32(SecurityResult.OK));
        this.state = 'clientInit';
        return 'next';
      }
      case 'clientInit': {
        if (this.queue.length < CLIENT_INIT_LENGTH) return 'more';
        const shared = this.queue.takeU8() !== 0;
        this.state = 'done';
        return { version: this.version, shared, rest: this.queue.takeAll() };
      }
      case 'done':
        throw new Error('unreachable');
    }
  }

  private startType(type: number, reply: Uint8Array[]): void {
    if (type === SecurityType.VNC_AUTH) {
      const challenge = this.randomChallenge();
      if (challenge.length !== VNC_AUTH_CHALLENGE_LENGTH) throw new RangeError('randomChallenge must return 16 bytes');
      this.challenge = Uint8Array.from(challenge);
      reply.push(this.challenge.slice());
      this.state = 'vncAuthResponse';
      return;
    }
    // None: §7.2.1 — 3.8 sends SecurityResult OK; 3.3 and 3.7 go straight to ClientInit.
    if (this.version === '3.8') reply.push(u32(SecurityResult.OK));
    this.state = 'clientInit';
  }

  /**
   * SecurityResult FAILED for the client before we close: 3.8 adds a reason; 3.3/3.7 send the bare
   * U32 after VNC auth, and nothing when the client picked an unknown type (it has no result there).
   */
  private failureResult(reason: string, afterAuth = false): Uint8Array[] {
    if (this.version === '3.8') return [u32(SecurityResult.FAILED), encodeReason(reason)];
    return afterAuth ? [u32(SecurityResult.FAILED)] : [];
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
