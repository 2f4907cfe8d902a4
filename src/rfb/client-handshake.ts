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
 * VeNCrypt (type 19, rfbproto §7.2.19) with the X.509 subtypes only — X509None (260), or X509Vnc
 * (261) when the credential has a password; the anonymous-DH TLS* subtypes are open to MITM and never
 * chosen. After the server accepts the subtype, a step returns `startTls`: the caller wraps its socket
 * in TLS (verifying the certificate against the credential's CA), calls `tlsEstablished()`, and keeps
 * feeding the decrypted bytes. VeNCrypt always ends with a SecurityResult, in 3.7 as well.
 *
 *   … securityTypes ─► vencryptVersion ─► vencryptAck ─► vencryptSubtypes ─► vencryptAccept
 *     ─► tls (caller) ─► [vncChallenge] ─► securityResult ─► serverInit
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
  ca: string;
  /** Client certificate and key, for servers that require one (libvirt `vnc_tls_x509_verify`). */
  cert?: string;
  key?: string;
  servername?: string;
}

/** What Porthole may use to authenticate to an endpoint's VNC server. */
export type BackendCredential =
  | { type: 'none' }
  | { type: 'vncauth'; password: Uint8Array }
  /** VeNCrypt X509None, or X509Vnc when `password` is set. */
  | { type: 'vencrypt'; password?: Uint8Array; tls: VeNCryptTlsSettings };

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
  /** The VeNCrypt subtype the server accepted (260 X509None or 261 X509Vnc). */
  subtype: number;
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
        if (r === 'tls') return { send, startTls: { subtype: this.vencryptSubtype, tls: this.tlsSettings() } };
        if (r !== 'next') return { send, done: r };
      }
    } catch (err) {
      if (err instanceof RfbError) this.failure = err;
      throw err;
    }
  }

  /** After `startTls`: the TLS session is up; what follows is read from (and written to) TLS. */
  tlsEstablished(): void {
    if (this.state !== 'tls') throw new Error('ClientHandshake: tlsEstablished() outside the TLS step');
    this.state = this.vencryptSubtype === VeNCryptSubtype.X509_VNC ? 'vncChallenge' : 'securityResult';
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
        const wanted = this.credential.type === 'vencrypt' && this.credential.password ? VeNCryptSubtype.X509_VNC : VeNCryptSubtype.X509_NONE;
        if (!offered.includes(wanted)) {
          throw new RfbError('RFB_NO_SECURITY_TYPE', 'server', `server offers VeNCrypt subtypes [${offered.join(', ')}], not ${wanted}`);
        }
        this.vencryptSubtype = wanted;
        send.push(u32(wanted));
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
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
