/**
 * Console endpoint input, validated the same way wherever it comes from (a fleet file, the admin API):
 * `vnc://host:port`, the backend security (`none`, `vncauth` with a password, `vencrypt` with TLS and
 * optionally a CA bundle, a client certificate and its key, and a VNC password for the inner
 * VncAuth), and the URL zone. Certificates are parsed (X.509) and a client key must match its
 * certificate, so a broken PEM is refused when it is stored, not when a console is opened. VeNCrypt
 * needs a CA or a server name (or only anonymous subtypes): never "any public certificate, any name".
 *
 * Secrets (password, client key) stay plain here; callers seal them (domain/secrets.ts) with the aads
 * below. Problems name the field; they never quote a secret.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import type { ConsoleEndpoint, EndpointSecurity } from '../store/types.js';
import { SecretBoxError, type SecretBox } from './secrets.js';
import { checkEndpointOptions, encodeEndpointOptions, type EndpointOptions } from './endpoint-options.js';

export const ZONE_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const SECURITIES: readonly EndpointSecurity[] = ['none', 'vncauth', 'vencrypt'];
/** Largest PEM text accepted per field. */
export const MAX_PEM_LENGTH = 64 * 1024;
/** Largest VNC password accepted (RFC 6143 §7.2.2 VncAuth uses the first 8 bytes; VeNCrypt Plain more). */
export const MAX_VNC_PASSWORD_LENGTH = 255;

/**
 * Who a stored secret goes to: the address, the security, and what authenticates the server to
 * Porthole (CA bundle, server name, allowed VeNCrypt subtypes, anonymous TLS). A change of any of
 * these is a new target: a stored password or client key is not carried to it (it could be handed
 * to another machine — e.g. X509Plain in clear inside a TLS session with an attacker's CA), and a
 * sealed value is bound to its target (below), so it cannot be opened for another one.
 */
export interface EndpointTarget {
  host: string;
  port: number;
  security: string;
  ca: string | null;
  servername: string | null;
  /** Sorted, without duplicates; null when the endpoint does not restrict them. */
  subtypes: string[] | null;
  anonymousTls: boolean;
}

/** The target of a stored endpoint, or of validated endpoint fields. */
export function endpointTarget(e: { host: string; port: number; security: EndpointSecurity; options?: EndpointOptions | undefined } & ({ tlsCa?: string | null } | { caCert?: string | null })): EndpointTarget {
  const vencrypt = e.security === 'vencrypt';
  const ca = ('tlsCa' in e ? e.tlsCa : 'caCert' in e ? e.caCert : null) ?? null;
  const o = e.options ?? {};
  return {
    host: e.host, port: e.port, security: e.security, ca: vencrypt ? ca : null, servername: vencrypt ? o.tlsServername ?? null : null,
    subtypes: vencrypt && o.tlsSubtypes ? [...new Set(o.tlsSubtypes)].sort() : null, anonymousTls: vencrypt && o.allowAnonymousTls === true,
  };
}

/**
 * The target that raw endpoint input (`url`, `security`, `ca_cert`, `servername`, `vencrypt_subtypes`,
 * `allow_anonymous_tls`) names, normalised like `endpointTarget`; undefined when the URL does not parse.
 */
export function rawEndpointTarget(raw: Record<string, unknown>): EndpointTarget | undefined {
  const at = typeof raw.url === 'string' ? parseVncUrl(raw.url) : undefined;
  if (!at) return undefined;
  const vencrypt = raw.security === 'vencrypt';
  const subtypes = raw.vencrypt_subtypes;
  return {
    host: at.host, port: at.port, security: typeof raw.security === 'string' ? raw.security : JSON.stringify(raw.security ?? null),
    ca: vencrypt && typeof raw.ca_cert === 'string' ? raw.ca_cert : null,
    servername: vencrypt && typeof raw.servername === 'string' ? raw.servername : null,
    subtypes: vencrypt && Array.isArray(subtypes) ? [...new Set(subtypes.map((x) => String(x)))].sort() : null,
    anonymousTls: vencrypt && raw.allow_anonymous_tls === true,
  };
}

/** A short fingerprint of a target (what the sealing contexts carry). */
export function targetKey(t: EndpointTarget): string {
  const canonical = JSON.stringify([t.host, t.port, t.security, t.ca, t.servername, t.subtypes, t.anonymousTls]);
  return createHash('sha256').update('porthole endpoint target\0').update(canonical).digest('hex').slice(0, 32);
}

export const sameTarget = (a: EndpointTarget, b: EndpointTarget): boolean => targetKey(a) === targetKey(b);

/**
 * Sealing contexts: a sealed value only opens for the machine AND the target it was made for, so a
 * path that forgets to drop a secret on a target change still cannot hand it to the new target.
 */
export const endpointPasswordAad = (resourceId: string, target: EndpointTarget) => `endpoint:${resourceId}:target:${targetKey(target)}`;
export const endpointTlsKeyAad = (resourceId: string, target: EndpointTarget) => `endpoint-tls-key:${resourceId}:target:${targetKey(target)}`;
/**
 * The contexts of values sealed before the binding (machine only). They still open, for their
 * endpoint as it is stored — a change of target drops them like any stored secret — and
 * `porthole key rotate` re-seals them bound (domain/key-rotation.ts).
 */
export const legacyEndpointPasswordAad = (resourceId: string) => `endpoint:${resourceId}`;
export const legacyEndpointTlsKeyAad = (resourceId: string) => `endpoint-tls-key:${resourceId}`;

export type EndpointSecretKind = 'password' | 'tlsKey';

/** The contexts a stored value of `kind` may open under, the bound one first. */
export function endpointSecretAads(kind: EndpointSecretKind, resourceId: string, ep: ConsoleEndpoint): { bound: string; legacy: string } {
  const target = endpointTarget(ep);
  return kind === 'password'
    ? { bound: endpointPasswordAad(resourceId, target), legacy: legacyEndpointPasswordAad(resourceId) }
    : { bound: endpointTlsKeyAad(resourceId, target), legacy: legacyEndpointTlsKeyAad(resourceId) };
}

/**
 * Opens a stored endpoint's password or client key (undefined when none is stored); `bound` says
 * whether it was sealed bound to its target (false: a value from before the binding). Throws
 * SecretBoxError when it opens under neither context — e.g. it was made for another target.
 */
export function openEndpointSecret(secrets: SecretBox, kind: EndpointSecretKind, resourceId: string, ep: ConsoleEndpoint): { plain: string; bound: boolean } | undefined {
  const sealed = kind === 'password' ? ep.passwordSealed : ep.tlsKeySealed;
  if (!sealed) return undefined;
  const aads = endpointSecretAads(kind, resourceId, ep);
  try {
    return { plain: secrets.open(sealed, aads.bound), bound: true };
  } catch (err) {
    if (!(err instanceof SecretBoxError) || err.reason !== 'authentication') throw err;
  }
  return { plain: secrets.open(sealed, aads.legacy), bound: false };
}

/** A validated endpoint with its secrets in clear (only between validation and sealing). */
export interface EndpointSpec {
  host: string;
  port: number;
  security: EndpointSecurity;
  password: string | null;
  zone: string | null;
  caCert: string | null;
  clientCert: string | null;
  clientKey: string | null;
  /** domain/endpoint-options.ts (servername, subtypes, username, clipboard, session mode). */
  options?: EndpointOptions;
}

export interface EndpointProblem { field: string; message: string }

/** Parses `vnc://host:port` (port 5900 when omitted). */
export function parseVncUrl(url: string): { host: string; port: number } | undefined {
  const m = /^vnc:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!m) return undefined;
  const port = m[2] === undefined ? 5900 : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** `vnc://host:port` of a stored endpoint (IPv6 hosts in brackets). */
export function vncUrl(host: string, port: number): string {
  return `vnc://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const CERT_BLOCK_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pemProblem(field: string, v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return `${field} must be PEM text`;
  if (v.length > MAX_PEM_LENGTH) return `${field} is longer than ${MAX_PEM_LENGTH} characters`;
  return undefined;
}

/** Every certificate of a PEM bundle, or a problem. */
function parseCertificates(field: string, pem: string): { certs: X509Certificate[] } | { problem: string } {
  const blocks = pem.match(CERT_BLOCK_RE) ?? [];
  if (blocks.length === 0) return { problem: `${field} holds no PEM CERTIFICATE block` };
  const certs: X509Certificate[] = [];
  for (const b of blocks) {
    try { certs.push(new X509Certificate(b)); } catch { return { problem: `${field} holds a certificate that does not parse` }; }
  }
  return { certs };
}

/**
 * Validates raw endpoint fields (`url`, `security`, `password`, `zone`, `ca_cert`, `client_cert`,
 * `client_key`, and the option keys of domain/endpoint-options.ts). `security` defaults to vncauth
 * when a password is given, else none.
 */
export function checkEndpoint(raw: Record<string, unknown>): { spec?: EndpointSpec; problems: EndpointProblem[] } {
  const problems: EndpointProblem[] = [];
  const bad = (field: string, message: string) => problems.push({ field, message });
  const parsed = typeof raw.url === 'string' ? parseVncUrl(raw.url) : undefined;
  if (!parsed) bad('url', 'must be vnc://host:port');
  const password = raw.password ?? null;
  if (password !== null && (typeof password !== 'string' || password.length === 0 || password.length > MAX_VNC_PASSWORD_LENGTH)) {
    bad('password', `must be a string of 1–${MAX_VNC_PASSWORD_LENGTH} characters`);
  }
  const security = raw.security ?? (password !== null ? 'vncauth' : 'none');
  if (typeof security !== 'string' || !SECURITIES.includes(security as EndpointSecurity)) bad('security', 'must be none, vncauth or vencrypt');
  const zone = raw.zone ?? null;
  if (zone !== null && (typeof zone !== 'string' || !ZONE_RE.test(zone))) bad('zone', 'must be 1–64 of A-Z a-z 0-9 . _ -');
  const caCert = raw.ca_cert ?? null;
  const clientCert = raw.client_cert ?? null;
  const clientKey = raw.client_key ?? null;

  if (security === 'none' && password !== null) bad('password', 'security none takes no password (use vncauth)');
  if (security === 'vncauth' && password === null) bad('password', 'vncauth needs a password');
  if (security !== 'vencrypt') {
    for (const [field, v] of [['ca_cert', caCert], ['client_cert', clientCert], ['client_key', clientKey]] as const) {
      if (v !== null) bad(field, 'is only for security vencrypt');
    }
  } else {
    let cert: X509Certificate | undefined;
    if (caCert !== null) {
      const p = pemProblem('ca_cert', caCert);
      if (p) bad('ca_cert', p);
      else {
        const r = parseCertificates('ca_cert', caCert as string);
        if ('problem' in r) bad('ca_cert', r.problem);
      }
    }
    if ((clientCert === null) !== (clientKey === null)) bad(clientCert === null ? 'client_cert' : 'client_key', 'client_cert and client_key go together');
    if (clientCert !== null) {
      const p = pemProblem('client_cert', clientCert);
      if (p) bad('client_cert', p);
      else {
        const r = parseCertificates('client_cert', clientCert as string);
        if ('problem' in r) bad('client_cert', r.problem);
        else cert = r.certs[0];
      }
    }
    if (clientKey !== null) {
      const p = pemProblem('client_key', clientKey);
      if (p) bad('client_key', p);
      else {
        try {
          const key = createPrivateKey(clientKey as string);
          if (cert && !cert.checkPrivateKey(key)) bad('client_key', 'does not match client_cert');
        } catch {
          bad('client_key', 'is not a PEM private key (an encrypted key is not supported)');
        }
      }
    }
  }
  const opt = checkEndpointOptions(raw, typeof security === 'string' ? (security as EndpointSecurity) : undefined, password !== null);
  problems.push(...opt.problems);
  // Without a CA and a name, the certificate check would be "any publicly trusted certificate, for any
  // name". Only an endpoint limited to anonymous TLS (explicitly allowed) checks no certificate at all.
  const anonymousOnly = opt.options?.tlsSubtypes?.every((t) => t.startsWith('tls')) === true;
  if (security === 'vencrypt' && caCert === null && opt.options?.tlsServername === undefined && !anonymousOnly && opt.problems.length === 0) {
    bad('ca_cert', 'is required with security vencrypt unless servername is set (the CA the server certificate must chain to, or the name it must carry)');
  }
  if (problems.length > 0 || !parsed) return { problems };
  return {
    problems,
    spec: {
      host: parsed.host, port: parsed.port, security: security as EndpointSecurity, password: password as string | null, zone: zone as string | null,
      caCert: caCert as string | null, clientCert: clientCert as string | null, clientKey: clientKey as string | null,
      ...(opt.options ? { options: opt.options } : {}),
    },
  };
}

/** Endpoint fields as a fleet file or the admin API gives them (certificate fields only for vencrypt). */
export interface EndpointFields {
  host: string;
  port: number;
  security: EndpointSecurity;
  password: string | null;
  zone: string | null;
  /** VeNCrypt only (PEM). */
  caCert?: string | null;
  clientCert?: string | null;
  clientKey?: string | null;
  /** servername, VeNCrypt subtypes, username, clipboard, session mode (domain/endpoint-options.ts). */
  options?: EndpointOptions;
}

/**
 * The stored form of `e` for resource `resourceId`: secrets sealed bound to the endpoint's target,
 * reusing `prev`'s sealed values when they still hold the same secret for the same target, so an
 * unchanged endpoint compares equal and revokes nothing (a value sealed before the binding is kept
 * as long as its target does not change).
 */
export function sealEndpoint(secrets: SecretBox, resourceId: string, e: EndpointFields, prev: ConsoleEndpoint | null | undefined): ConsoleEndpoint {
  const target = endpointTarget(e);
  const prevSameTarget = prev ? sameTarget(endpointTarget(prev), target) : false;
  const reseal = (kind: EndpointSecretKind, plain: string | null | undefined, aad: string): string | null => {
    if (plain === null || plain === undefined) return null;
    if (prev && prevSameTarget) {
      try { if (openEndpointSecret(secrets, kind, resourceId, prev)?.plain === plain) return kind === 'password' ? prev.passwordSealed : prev.tlsKeySealed ?? null; } catch { /* sealed under a key we lack: seal again */ }
    }
    return secrets.seal(plain, aad);
  };
  const ep: ConsoleEndpoint = {
    host: e.host, port: e.port, security: e.security, passwordSealed: reseal('password', e.password, endpointPasswordAad(resourceId, target)), zone: e.zone,
  };
  if (e.caCert) ep.tlsCa = e.caCert;
  if (e.clientCert) ep.tlsCert = e.clientCert;
  const key = reseal('tlsKey', e.clientKey, endpointTlsKeyAad(resourceId, target));
  if (key !== null) ep.tlsKeySealed = key;
  if (e.options && encodeEndpointOptions(e.options) !== null) ep.options = e.options;
  return ep;
}

/** Same target, security, zone and secrets (what decides whether outstanding console tokens stay valid). */
export function endpointsEqual(a: ConsoleEndpoint | null, b: ConsoleEndpoint | null): boolean {
  if (a === null || b === null) return a === b;
  return a.host === b.host && a.port === b.port && a.security === b.security && a.passwordSealed === b.passwordSealed && a.zone === b.zone &&
    (a.tlsCa ?? null) === (b.tlsCa ?? null) && (a.tlsCert ?? null) === (b.tlsCert ?? null) && (a.tlsKeySealed ?? null) === (b.tlsKeySealed ?? null) &&
    encodeEndpointOptions(a.options) === encodeEndpointOptions(b.options);
}
