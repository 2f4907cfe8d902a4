/**
 * Console endpoint options beyond address and secrets: how Porthole talks TLS to the machine and the
 * policies it enforces on a console. Input keys (fleet file `console:` and admin API `console` /
 * `endpoint`, snake_case), all optional:
 *
 *   servername           VeNCrypt: the name the server certificate must carry (also sent as SNI).
 *                        Absent: the certificate must chain to the CA, its name is not checked
 *                        (Nova's model: consoles are often addressed by IP).
 *   vencrypt_subtypes    VeNCrypt: allow-list of subtypes, e.g. [x509vnc, x509none]. Porthole uses the
 *                        strongest one the server offers (x509plain > x509vnc > x509none > tlsplain >
 *                        tlsvnc > tlsnone). Absent: the X.509 ones that use every configured secret.
 *   allow_anonymous_tls  VeNCrypt: permit tlsnone/tlsvnc/tlsplain (anonymous DH: encrypted, not
 *                        authenticated — open to a man in the middle). Default false.
 *   username             VeNCrypt x509plain/tlsplain: the user name (the password is `password`).
 *   clipboard            both (default) | to_machine | from_machine | off
 *   clipboard_max_bytes  cut-text size cap (both directions); absent: 1 MiB to the machine, none from it.
 *   session_mode         shared (default) | exclusive: one full-control console at a time (a second
 *                        is refused before the upgrade with 409 `console_busy`; view-only viewers
 *                        are not counted).
 *
 * Stored as one JSON column (store/sql: `endpoint_options`); none is secret.
 */
import type { ConsoleEndpoint, EndpointSecurity } from '../store/types.js';

export type VeNCryptSubtypeName = 'x509plain' | 'x509vnc' | 'x509none' | 'tlsplain' | 'tlsvnc' | 'tlsnone';
export type ClipboardSetting = 'both' | 'to_machine' | 'from_machine' | 'off';
export type SessionMode = 'shared' | 'exclusive';

/** rfbproto §7.2.19 numbers. */
export const VENCRYPT_SUBTYPE_NUMBERS: Readonly<Record<VeNCryptSubtypeName, number>> = {
  x509plain: 262, x509vnc: 261, x509none: 260, tlsplain: 259, tlsvnc: 258, tlsnone: 257,
};
const ANONYMOUS: ReadonlySet<string> = new Set(['tlsplain', 'tlsvnc', 'tlsnone']);
const CLIPBOARD: readonly ClipboardSetting[] = ['both', 'to_machine', 'from_machine', 'off'];
const SESSION_MODES: readonly SessionMode[] = ['shared', 'exclusive'];
/** Largest clipboard_max_bytes accepted (the ClientCutText limit of rfb/constants.ts). */
export const MAX_CLIPBOARD_BYTES = 1024 * 1024;
const SERVERNAME_RE = /^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,252})$/;

export interface EndpointOptions {
  tlsServername?: string;
  tlsSubtypes?: VeNCryptSubtypeName[];
  allowAnonymousTls?: boolean;
  username?: string;
  clipboard?: ClipboardSetting;
  clipboardMaxBytes?: number;
  sessionMode?: SessionMode;
}

export const ENDPOINT_OPTION_KEYS = ['servername', 'vencrypt_subtypes', 'allow_anonymous_tls', 'username', 'clipboard', 'clipboard_max_bytes', 'session_mode'] as const;
/** Options that only mean something with security vencrypt. */
const VENCRYPT_ONLY = ['servername', 'vencrypt_subtypes', 'allow_anonymous_tls', 'username'] as const;

/** Validates the option keys of raw endpoint input; `options` is undefined when none is set. */
export function checkEndpointOptions(raw: Record<string, unknown>, security: EndpointSecurity | undefined, hasPassword: boolean): {
  options?: EndpointOptions;
  problems: { field: string; message: string }[];
} {
  const problems: { field: string; message: string }[] = [];
  const bad = (field: string, message: string) => problems.push({ field, message });
  const o: EndpointOptions = {};
  const v = (k: string): unknown => (raw[k] === null ? undefined : raw[k]);
  if (security !== 'vencrypt') for (const k of VENCRYPT_ONLY) if (v(k) !== undefined) bad(k, 'is only for security vencrypt');

  const servername = v('servername');
  if (servername !== undefined) {
    if (typeof servername !== 'string' || !SERVERNAME_RE.test(servername)) bad('servername', 'must be a DNS name');
    else o.tlsServername = servername;
  }
  const anon = v('allow_anonymous_tls');
  if (anon !== undefined) {
    if (typeof anon !== 'boolean') bad('allow_anonymous_tls', 'must be true or false');
    else if (anon) o.allowAnonymousTls = true;
  }
  const subtypes = v('vencrypt_subtypes');
  if (subtypes !== undefined) {
    if (!Array.isArray(subtypes) || subtypes.length === 0 || !subtypes.every((s) => typeof s === 'string' && s in VENCRYPT_SUBTYPE_NUMBERS)) {
      bad('vencrypt_subtypes', `must be a non-empty list of ${Object.keys(VENCRYPT_SUBTYPE_NUMBERS).join(', ')}`);
    } else {
      const list = [...new Set(subtypes as VeNCryptSubtypeName[])];
      if (list.some((s) => ANONYMOUS.has(s)) && o.allowAnonymousTls !== true) {
        bad('vencrypt_subtypes', 'lists an anonymous TLS subtype: set allow_anonymous_tls: true to permit it');
      }
      if (!hasPassword && list.every((s) => s.endsWith('vnc') || s.endsWith('plain'))) bad('vencrypt_subtypes', 'every subtype listed needs a password');
      o.tlsSubtypes = list;
    }
  }
  const username = v('username');
  if (username !== undefined) {
    if (typeof username !== 'string' || username.length === 0 || username.length > 255) bad('username', 'must be a string of 1–255 characters');
    else if (!hasPassword) bad('username', 'needs a password (x509plain sends both)');
    else o.username = username;
  }
  const clipboard = v('clipboard');
  if (clipboard !== undefined) {
    if (typeof clipboard !== 'string' || !CLIPBOARD.includes(clipboard as ClipboardSetting)) bad('clipboard', `must be ${CLIPBOARD.join(', ')}`);
    else if (clipboard !== 'both') o.clipboard = clipboard as ClipboardSetting;
  }
  const max = v('clipboard_max_bytes');
  if (max !== undefined) {
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 0 || max > MAX_CLIPBOARD_BYTES) bad('clipboard_max_bytes', `must be an integer 0–${MAX_CLIPBOARD_BYTES}`);
    else o.clipboardMaxBytes = max;
  }
  const mode = v('session_mode');
  if (mode !== undefined) {
    if (typeof mode !== 'string' || !SESSION_MODES.includes(mode as SessionMode)) bad('session_mode', 'must be shared or exclusive');
    else if (mode !== 'shared') o.sessionMode = mode as SessionMode;
  }
  return Object.keys(o).length > 0 ? { options: o, problems } : { problems };
}

/** Canonical JSON (stored, and compared to decide whether an endpoint changed). */
export function encodeEndpointOptions(o: EndpointOptions | undefined): string | null {
  if (!o) return null;
  const canonical: Record<string, unknown> = {};
  for (const k of ['tlsServername', 'tlsSubtypes', 'allowAnonymousTls', 'username', 'clipboard', 'clipboardMaxBytes', 'sessionMode'] as const) {
    if (o[k] !== undefined) canonical[k] = o[k];
  }
  return Object.keys(canonical).length > 0 ? JSON.stringify(canonical) : null;
}

export function decodeEndpointOptions(text: string | null | undefined): EndpointOptions | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as EndpointOptions) : undefined;
  } catch {
    return undefined;
  }
}

export function endpointOptionsEqual(a: ConsoleEndpoint, b: ConsoleEndpoint): boolean {
  return encodeEndpointOptions(a.options) === encodeEndpointOptions(b.options);
}

/** The raw (snake_case) form of stored options: what the admin API shows and a PATCH carries over. */
export function endpointOptionsView(o: EndpointOptions | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!o) return out;
  if (o.tlsServername !== undefined) out.servername = o.tlsServername;
  if (o.tlsSubtypes !== undefined) out.vencrypt_subtypes = o.tlsSubtypes;
  if (o.allowAnonymousTls) out.allow_anonymous_tls = true;
  if (o.username !== undefined) out.username = o.username;
  if (o.clipboard !== undefined) out.clipboard = o.clipboard;
  if (o.clipboardMaxBytes !== undefined) out.clipboard_max_bytes = o.clipboardMaxBytes;
  if (o.sessionMode !== undefined) out.session_mode = o.sessionMode;
  return out;
}
