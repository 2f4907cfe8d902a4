/**
 * RFB handshake from the client's side (RFC 6143 §7.1–§7.3): Porthole toward a machine's VNC server,
 * authenticating with the endpoint's credential so the browser never holds it. A resumable state
 * machine: `feed()` takes server bytes, returns bytes to send and, once ServerInit was read, `done`.
 *
 *   version ─► securityTypes (3.7+) │ securityType33 (3.3) ─► [vncChallenge] ─► [securityResult]
 *           ─► serverInit ─► done            (a refusal or failure reads its reason, then throws)
 *
 * The type is chosen from what the server offers and what the credential allows: `none` needs
 * None (1), `vncauth` needs VNC Authentication (2) — a configured password never silently downgrades
 * to None. A failed authentication throws RFB_AUTH_FAILED and the machine stops: nothing retries.
 *
 * VeNCrypt (type 19, rfbproto §7.2.19): the subtype is the strongest one that the server offers, the
 * credential can complete and the endpoint's policy allows (`vencryptSubtypesFor`): X509Plain (262,
 * username + password), X509Vnc (261, password), X509None (260); the anonymous-DH TLS* subtypes
 * (259/258/257) are open to MITM and only considered when the credential says `allowAnonymous`. A
 * configured password never settles for a subtype without one unless the policy lists it. After the
 * server accepts the subtype, a step returns `startTls`: the caller wraps its socket in TLS
 * (verifying the certificate against the credential's CA; anonymous subtypes: no certificate),
 * calls `tlsEstablished()`, and keeps feeding the decrypted bytes. VeNCrypt always ends with a
 * SecurityResult, in 3.7 as well. Plain sends U32 username-length, U32 password-length, username,
 * password (rfbproto §7.2.19) — only ever inside TLS.
 *
 *   … securityTypes ─► vencryptVersion ─► vencryptAck ─► vencryptSubtypes ─► vencryptAccept
 *     ─► tls (caller) ─► [vncChallenge | plain credentials sent] ─► securityResult ─► serverInit
 */
import {
  Limits,
  VeNCryptSubtype,
  SERVER_INIT_FIXED_LENGTH,
  SecurityResult,
  SecurityType,
  VERSION_MESSAGE_LENGTH,
  VERSION_STRINGS,
  VNC_AUTH_CHALLENGE_LENGTH,
  type RfbVersion,
} from './constants.js';
import { ByteQueue } from './byte-queue.js';
import { vncAuthResponse } from './des.js';
import { RfbError, type RfbErrorCode } from './errors.js';
import { decodeServerInit, sanitiseReason, type ServerInit } from './messages.js';
import { checkVersionPrefix, negotiatedVersion, parseVersion } from './version.js';

/**
 * TLS settings for VeNCrypt, used by the caller that wraps the socket (the codec only carries them).
 * PEM strings. The server certificate must chain to `ca`; its name is checked only when
 * `servername` is set (Nova's model: CA pinning, no hostname check, since consoles are often
 * addressed by IP).
 */
export interface VeNCryptTlsSettings {
  /** Absent: Node's bundled root CAs (then `servername` is required for the X.509 subtypes). */
  ca?: string;
  /** Client certificate and key, for servers that require one (libvirt `vnc_tls_x509_verify`). */
  cert?: string;
  key?: string;
  servername?: string;
}

/** What Porthole may use to authenticate to an endpoint's VNC server. */
export type BackendCredential =
  | { type: 'none' }
  | { type: 'vncauth'; password: Uint8Array }
  /** VeNCrypt: see `vencryptSubtypesFor` for the subtype chosen. */
  | VeNCryptCredential;

export interface VeNCryptCredential {
  type: 'vencrypt';
  /** For the *Vnc subtypes (first 8 bytes) and the *Plain subtypes. */
  password?: Uint8Array;
  /** For the *Plain subtypes (with `password`). */
  username?: Uint8Array;
  tls: VeNCryptTlsSettings;
  /** The endpoint's allow-list of subtypes (any order). Absent: the defaults of `vencryptSubtypesFor`. */
  subtypes?: readonly number[];
  /** Whether the anonymous-DH TLS* subtypes may be used at all (never by default). */
  allowAnonymous?: boolean;
}

/** VeNCrypt subtypes Porthole can complete, strongest first (authenticated server before anonymous TLS). */
export const VENCRYPT_STRENGTH_ORDER: readonly number[] = [
  VeNCryptSubtype.X509_PLAIN,
  VeNCryptSubtype.X509_VNC,
  VeNCryptSubtype.X509_NONE,
  VeNCryptSubtype.TLS_PLAIN,
  VeNCryptSubtype.TLS_VNC,
  VeNCryptSubtype.TLS_NONE,
];
const ANONYMOUS_SUBTYPES = new Set<number>([VeNCryptSubtype.TLS_NONE, VeNCryptSubtype.TLS_VNC, VeNCryptSubtype.TLS_PLAIN]);
const PLAIN_SUBTYPES = new Set<number>([VeNCryptSubtype.X509_PLAIN, VeNCryptSubtype.TLS_PLAIN]);
const VNC_SUBTYPES = new Set<number>([VeNCryptSubtype.X509_VNC, VeNCryptSubtype.TLS_VNC]);

export function isAnonymousVeNCryptSubtype(subtype: number): boolean {
  return ANONYMOUS_SUBTYPES.has(subtype);
}

/**
 * The subtypes this credential may use, strongest first. Without an explicit list: the ones that use
 * every secret configured — username + password → X509Plain, X509Vnc; password → X509Vnc; nothing →
 * X509None (plus the TLS* counterparts when `allowAnonymous`). An explicit list is intersected with
 * what the credential can complete; anonymous subtypes still need `allowAnonymous`, X.509 ones a CA
 * or a servername.
 */
export function vencryptSubtypesFor(c: VeNCryptCredential): number[] {
  const hasPassword = c.password !== undefined;
  const hasUser = c.username !== undefined && hasPassword;
  // An X.509 subtype authenticates the server only with a CA to chain to or a name to check: with
  // neither, any publicly trusted certificate for any name would pass, so it is not used at all.
  const canVerify = Boolean(c.tls.ca) || Boolean(c.tls.servername);
  const usable = (t: number): boolean =>
    (isAnonymousVeNCryptSubtype(t) ? c.allowAnonymous === true : canVerify) &&
    (!PLAIN_SUBTYPES.has(t) || hasUser) &&
    (!VNC_SUBTYPES.has(t) || hasPassword);
  let allowed: (t: number) => boolean;
  if (c.subtypes) {
    const list = new Set(c.subtypes);
    allowed = (t) => list.has(t);
  } else if (hasUser) {
    allowed = (t) => PLAIN_SUBTYPES.has(t) || VNC_SUBTYPES.has(t);
  } else if (hasPassword) {
    allowed = (t) => VNC_SUBTYPES.has(t);
  } else {
    allowed = (t) => t === VeNCryptSubtype.X509_NONE || t === VeNCryptSubtype.TLS_NONE;
  }
  return VENCRYPT_STRENGTH_ORDER.filter((t) => allowed(t) && usable(t));
}

export interface ClientHandshakeOptions {
  credential: BackendCredential;
  /** ClientInit shared-flag; false asks the server to disconnect its other clients. */
  shared: boolean;
}

export interface ClientHandshakeResult {
  version: RfbVersion;
  securityType: number;
  serverInit: ServerInit;
  /** ServerInit exactly as the server sent it (to forward unchanged). */
  serverInitBytes: Uint8Array;
  /** Server bytes received after ServerInit (the start of its message stream). */
  rest: Uint8Array;
}

/** The caller must now wrap the transport in TLS, then call `tlsEstablished()` and feed decrypted bytes. */
export interface StartTlsRequest {
  /** The VeNCrypt subtype the server accepted. */
  subtype: number;
  /** Anonymous-DH TLS subtype (257–259): no server certificate to verify; TLS 1.2 aNULL suites only. */
  anonymous: boolean;
  tls: VeNCryptTlsSettings;
}

export interface ClientHandshakeStep {
  send: Uint8Array[];
  startTls?: StartTlsRequest;
  done?: ClientHandshakeResult;
}

/** What the server still owes us. */
export type ClientHandshakePhase =
  | 'version'
  | 'securityType33'
  | 'securityTypes'
  | 'vencryptVersion'
  | 'vencryptAck'
  | 'vencryptSubtypes'
  | 'vencryptAccept'
  | 'tls'
  | 'vncChallenge'
  | 'securityResult'
  | 'reason'
  | 'serverInit'
  | 'done';
type State = ClientHandshakePhase;

export class ClientHandshake {
  private readonly queue = new ByteQueue();
  private state: State = 'version';
  private version: RfbVersion = '3.8';
  private securityType: number = SecurityType.INVALID;
  private vencryptSubtype = 0;
  /** Set when a reason string is being read: the error it will be attached to. */
  private pendingFailure: { code: RfbErrorCode; message: string } | undefined;
  private failure: RfbError | undefined;
  private readonly credential: BackendCredential;
  private readonly shared: boolean;

  constructor(opts: ClientHandshakeOptions) {
    this.credential = opts.credential;
    this.shared = opts.shared;
  }

  /** Bytes received but not yet consumed (bounded by the largest message the current state waits for). */
  get buffered(): number {
    return this.queue.length;
  }

  /** The name of the state (for logs and timeouts: what the server still owes us). */
  get phase(): State {
    return this.state;
  }

  feed(chunk: Uint8Array): ClientHandshakeStep {
    if (this.failure) throw this.failure;
    if (this.state === 'done') throw new Error('ClientHandshake: feed() after done');
    if (this.state === 'tls') throw new Error('ClientHandshake: call tlsEstablished() before feeding decrypted bytes');
    this.queue.push(chunk);
    const send: Uint8Array[] = [];
    try {
      for (;;) {
        const r = this.step(send);
        if (r === 'more') return { send };
        if (r === 'tls') {
          const startTls = { subtype: this.vencryptSubtype, anonymous: isAnonymousVeNCryptSubtype(this.vencryptSubtype), tls: this.tlsSettings() };
          return { send, startTls };
        }
        if (r !== 'next') return { send, done: r };
      }
    } catch (err) {
      if (err instanceof RfbError) this.failure = err;
      throw err;
    }
  }

  /** After `startTls`: the TLS session is up; what follows is read from (and written to) TLS. */
  tlsEstablished(): ClientHandshakeStep {
    if (this.state !== 'tls') throw new Error('ClientHandshake: tlsEstablished() outside the TLS step');
    if (VNC_SUBTYPES.has(this.vencryptSubtype)) {
      this.state = 'vncChallenge';
      return { send: [] };
    }
    this.state = 'securityResult';
    if (!PLAIN_SUBTYPES.has(this.vencryptSubtype)) return { send: [] };
    // Plain: U32 username-length, U32 password-length, username, password — inside TLS only.
    const c = this.credential as VeNCryptCredential;
    const user = c.username ?? new Uint8Array(0);
    const pass = c.password ?? new Uint8Array(0);
    const head = new Uint8Array(8);
    new DataView(head.buffer).setUint32(0, user.length);
    new DataView(head.buffer).setUint32(4, pass.length);
    const msg = new Uint8Array(8 + user.length + pass.length);
    msg.set(head, 0);
    msg.set(user, 8);
    msg.set(pass, 8 + user.length);
    return { send: [msg] };
  }

  private step(send: Uint8Array[]): 'more' | 'next' | 'tls' | ClientHandshakeResult {
    const q = this.queue;
    switch (this.state) {
      case 'version': {
        checkVersionPrefix(q, 'server');
        if (q.length < VERSION_MESSAGE_LENGTH) return 'more';
        this.version = negotiatedVersion(parseVersion(q.take(VERSION_MESSAGE_LENGTH), 'server'), 'server');
        send.push(new TextEncoder().encode(VERSION_STRINGS[this.version]));
        this.state = this.version === '3.3' ? 'securityType33' : 'securityTypes';
        return 'next';
      }
      case 'securityType33': {
        // §7.1.2 (3.3): U32 chosen by the server; 0 = failed, followed by a reason.
        if (q.length < 4) return 'more';
        const type = q.takeU32();
        if (type === SecurityType.INVALID) return this.readReason('RFB_SERVER_REFUSED', 'server refused the connection');
        // 3.3 defines only None and VNC Authentication.
        if ((type !== SecurityType.NONE && type !== SecurityType.VNC_AUTH) || !this.allows(type)) throw this.noUsableType([type]);
        this.securityType = type;
        return this.startType(send);
      }
      case 'securityTypes': {
        // §7.1.2 (3.7+): U8 count, U8[count]; count 0 = failed, followed by a reason.
        if (q.length < 1) return 'more';
        const count = q.peekU8(0);
        if (count === 0) {
          q.skip(1);
          return this.readReason('RFB_SERVER_REFUSED', 'server refused the connection');
        }
        if (count > Limits.MAX_SECURITY_TYPES) {
          throw new RfbError('RFB_LIMIT_EXCEEDED', 'server', `server offered ${count} security types (limit ${Limits.MAX_SECURITY_TYPES})`);
        }
        if (q.length < 1 + count) return 'more';
        q.skip(1);
        const offered = Array.from(q.take(count));
        const pick = offered.find((t) => this.allows(t));
        if (pick === undefined) throw this.noUsableType(offered);
        this.securityType = pick;
        send.push(Uint8Array.of(pick));
        return this.startType(send);
      }
      case 'vencryptVersion': {
        // rfbproto §7.2.19: U8 major, U8 minor; we speak 0.2 only.
        if (q.length < 2) return 'more';
        const major = q.takeU8();
        const minor = q.takeU8();
        if (major !== 0 || minor < 2) {
          throw new RfbError('RFB_UNEXPECTED', 'server', `VeNCrypt version ${major}.${minor} is not supported (need 0.2)`);
        }
        send.push(Uint8Array.of(0, 2));
        this.state = 'vencryptAck';
        return 'next';
      }
      case 'vencryptAck': {
        if (q.length < 1) return 'more';
        if (q.takeU8() !== 0) throw new RfbError('RFB_SERVER_REFUSED', 'server', 'server refused VeNCrypt version 0.2');
        this.state = 'vencryptSubtypes';
        return 'next';
      }
      case 'vencryptSubtypes': {
        // U8 count, U32[count].
        if (q.length < 1) return 'more';
        const count = q.peekU8(0);
        if (count > Limits.MAX_SECURITY_TYPES) {
          throw new RfbError('RFB_LIMIT_EXCEEDED', 'server', `server offered ${count} VeNCrypt subtypes (limit ${Limits.MAX_SECURITY_TYPES})`);
        }
        if (q.length < 1 + 4 * count) return 'more';
        q.skip(1);
        const offered: number[] = [];
        for (let i = 0; i < count; i++) offered.push(q.takeU32());
        const wanted = vencryptSubtypesFor(this.credential as VeNCryptCredential);
        const pick = wanted.find((t) => offered.includes(t));
        if (pick === undefined) {
          throw new RfbError('RFB_NO_SECURITY_TYPE', 'server', `server offers VeNCrypt subtypes [${offered.join(', ')}], the endpoint allows [${wanted.join(', ')}]`);
        }
        this.vencryptSubtype = pick;
        send.push(u32(pick));
        this.state = 'vencryptAccept';
        return 'next';
      }
      case 'vencryptAccept': {
        // U8: 1 = accepted, then the TLS handshake; nothing may precede the client's ClientHello.
        if (q.length < 1) return 'more';
        if (q.takeU8() !== 1) throw new RfbError('RFB_SERVER_REFUSED', 'server', `server rejected VeNCrypt subtype ${this.vencryptSubtype}`);
        if (q.length > 0) throw new RfbError('RFB_UNEXPECTED', 'server', 'server sent plaintext after accepting VeNCrypt, before TLS');
        this.state = 'tls';
        return 'tls';
      }
      case 'tls':
        throw new Error('unreachable');
      case 'vncChallenge': {
        if (q.length < VNC_AUTH_CHALLENGE_LENGTH) return 'more';
        const challenge = q.take(VNC_AUTH_CHALLENGE_LENGTH);
        const password = this.credential.type === 'none' ? undefined : this.credential.password;
        if (!password) throw new Error('unreachable: VNC auth without a password');
        send.push(vncAuthResponse(password, challenge));
        this.state = 'securityResult';
        return 'next';
      }
      case 'securityResult': {
        // §7.1.3: U32; 3.8 follows a failure with a reason, 3.3/3.7 do not.
        if (q.length < 4) return 'more';
        const result = q.takeU32();
        if (result === SecurityResult.OK) return this.sendClientInit(send);
        const message =
          result === SecurityResult.FAILED_TOO_MANY ? 'authentication failed (too many attempts)' : 'authentication failed';
        if (this.version === '3.8') return this.readReason('RFB_AUTH_FAILED', message);
        throw new RfbError('RFB_AUTH_FAILED', 'server', message);
      }
      case 'reason': {
        const pending = this.pendingFailure as { code: RfbErrorCode; message: string };
        if (q.length < 4) return 'more';
        const length = q.peekU32(0);
        if (length > Limits.MAX_REASON_READ_BYTES) {
          throw new RfbError(pending.code, 'server', `${pending.message} (reason of ${length} bytes not read)`);
        }
        if (q.length < 4 + length) return 'more';
        q.skip(4);
        const reason = sanitiseReason(q.take(length));
        throw new RfbError(pending.code, 'server', `${pending.message}: ${reason}`, { reason });
      }
      case 'serverInit': {
        if (q.length < SERVER_INIT_FIXED_LENGTH) return 'more';
        const nameLength = q.peekU32(20);
        if (nameLength > Limits.MAX_DESKTOP_NAME_BYTES) {
          throw new RfbError('RFB_LIMIT_EXCEEDED', 'server', `desktop name of ${nameLength} bytes exceeds ${Limits.MAX_DESKTOP_NAME_BYTES}`);
        }
        if (q.length < SERVER_INIT_FIXED_LENGTH + nameLength) return 'more';
        const serverInitBytes = q.take(SERVER_INIT_FIXED_LENGTH + nameLength).slice();
        const serverInit = decodeServerInit(serverInitBytes);
        this.state = 'done';
        return {
          version: this.version,
          securityType: this.securityType,
          serverInit,
          serverInitBytes,
          rest: q.takeAll().slice(),
        };
      }
      case 'done':
        throw new Error('unreachable');
    }
  }

  private allows(type: number): boolean {
    return (
      (type === SecurityType.NONE && this.credential.type === 'none') ||
      (type === SecurityType.VNC_AUTH && this.credential.type === 'vncauth') ||
      (type === SecurityType.VENCRYPT && this.credential.type === 'vencrypt')
    );
  }

  private tlsSettings(): VeNCryptTlsSettings {
    if (this.credential.type !== 'vencrypt') throw new Error('unreachable: TLS without VeNCrypt');
    return this.credential.tls;
  }

  private noUsableType(offered: number[]): RfbError {
    return new RfbError(
      'RFB_NO_SECURITY_TYPE',
      'server',
      `server offers security types [${offered.join(', ')}], none usable with credential '${this.credential.type}'`,
    );
  }

  private startType(send: Uint8Array[]): 'next' {
    if (this.securityType === SecurityType.VNC_AUTH) {
      this.state = 'vncChallenge';
      return 'next';
    }
    if (this.securityType === SecurityType.VENCRYPT) {
      this.state = 'vencryptVersion';
      return 'next';
    }
    // None (§7.2.1): only 3.8 sends a SecurityResult.
    if (this.version === '3.8') {
      this.state = 'securityResult';
      return 'next';
    }
    return this.sendClientInit(send);
  }

  private sendClientInit(send: Uint8Array[]): 'next' {
    send.push(Uint8Array.of(this.shared ? 1 : 0));
    this.state = 'serverInit';
    return 'next';
  }

  private readReason(code: RfbErrorCode, message: string): 'next' {
    this.pendingFailure = { code, message };
    this.state = 'reason';
    return 'next';
  }

  /** The VeNCrypt subtype chosen (0 before the choice or without VeNCrypt). */
  get subtype(): number {
    return this.vencryptSubtype;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
