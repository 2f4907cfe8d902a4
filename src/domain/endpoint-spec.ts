/**
 * Console endpoint input, validated the same way wherever it comes from (a fleet file, the admin API):
 * `vnc://host:port`, the backend security (`none`, `vncauth` with a password, `vencrypt` with TLS and
 * optionally a CA bundle, a client certificate and its key, and a VNC password for the inner
 * VncAuth), and the URL zone. Certificates are parsed (X.509) and a client key must match its
 * certificate, so a broken PEM is refused when it is stored, not when a console is opened.
 *
 * Secrets (password, client key) stay plain here; callers seal them (domain/secrets.ts) with the aads
 * below. Problems name the field; they never quote a secret.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { ConsoleEndpoint, EndpointSecurity } from '../store/types.js';
import type { SecretBox } from './secrets.js';
import { checkEndpointOptions, encodeEndpointOptions, type EndpointOptions } from './endpoint-options.js';

export const ZONE_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const SECURITIES: readonly EndpointSecurity[] = ['none', 'vncauth', 'vencrypt'];
/** Largest PEM text accepted per field. */
export const MAX_PEM_LENGTH = 64 * 1024;
/** Largest VNC password accepted (RFC 6143 §7.2.2 VncAuth uses the first 8 bytes; VeNCrypt Plain more). */
export const MAX_VNC_PASSWORD_LENGTH = 255;

/** Sealing contexts: a sealed value only opens for the record it was made for. */
export const endpointPasswordAad = (resourceId: string) => `endpoint:${resourceId}`;
export const endpointTlsKeyAad = (resourceId: string) => `endpoint-tls-key:${resourceId}`;

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
 * The stored form of `e` for resource `resourceId`: secrets sealed, reusing `prev`'s sealed values
 * when they still hold the same secret, so an unchanged endpoint compares equal and revokes nothing.
 */
export function sealEndpoint(secrets: SecretBox, resourceId: string, e: EndpointFields, prev: ConsoleEndpoint | null | undefined): ConsoleEndpoint {
  const reseal = (plain: string | null | undefined, prevSealed: string | null | undefined, aad: string): string | null => {
    if (plain === null || plain === undefined) return null;
    if (prevSealed) {
      try { if (secrets.open(prevSealed, aad) === plain) return prevSealed; } catch { /* sealed under a key we lack: seal again */ }
    }
    return secrets.seal(plain, aad);
  };
  const ep: ConsoleEndpoint = {
    host: e.host, port: e.port, security: e.security, passwordSealed: reseal(e.password, prev?.passwordSealed, endpointPasswordAad(resourceId)), zone: e.zone,
  };
  if (e.caCert) ep.tlsCa = e.caCert;
  if (e.clientCert) ep.tlsCert = e.clientCert;
  const key = reseal(e.clientKey, prev?.tlsKeySealed, endpointTlsKeyAad(resourceId));
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
