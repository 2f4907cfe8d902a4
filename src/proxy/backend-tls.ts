/**
 * VeNCrypt's TLS toward a VNC server (rfbproto §7.2.19), one place for the console relay
 * (proxy/console-session.ts) and the liveness prober (proxy/prober.ts), so a probe checks the
 * server exactly as a console would. The certificate must chain to the endpoint's CA (TLS ≥ 1.2;
 * without a CA, Node's root store); the name is checked only when a servername is configured (it is
 * also sent as SNI). Anonymous subtypes (only when the endpoint allows them): TLS 1.2 anonymous
 * (EC)DH suites, which need OpenSSL security level 0; there is no certificate to check.
 *
 * Security review #9: with neither a CA nor a servername there is nothing to authenticate the server
 * by, so no X.509 session is started (the codec never picks an X.509 subtype then; this is the last
 * line), and an anonymous subtype's server that shows a certificate anyway (which nothing would
 * check) is refused.
 */
import type { Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { StartTlsRequest } from '../rfb/client-handshake.js';

/** Why a TLS session must not be started for `req`, or undefined when it may. */
export function backendTlsRefusal(req: StartTlsRequest): string | undefined {
  if (!req.anonymous && !req.tls.ca && !req.tls.servername) return 'the endpoint has neither a CA nor a servername to check the certificate against';
  return undefined;
}

/** After 'secureConnect': why the established session must not be used, or undefined when it may. */
export function establishedTlsRefusal(secure: TLSSocket, req: StartTlsRequest): string | undefined {
  if (req.anonymous && Object.keys(secure.getPeerCertificate()).length > 0) return `anonymous subtype ${req.subtype} but the server showed a certificate`;
  return undefined;
}

/** Wraps the TCP socket of a backend handshake in TLS, as the handshake's `startTls` asks (check backendTlsRefusal first). */
export function startBackendTls(raw: Socket, req: StartTlsRequest): TLSSocket {
  return req.anonymous
    ? tlsConnect({
      socket: raw,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      ciphers: 'aNULL:!eNULL:@SECLEVEL=0',
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    })
    : tlsConnect({
      socket: raw,
      ...(req.tls.ca ? { ca: req.tls.ca } : {}),
      cert: req.tls.cert,
      key: req.tls.key,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      ...(req.tls.servername ? { servername: req.tls.servername } : { checkServerIdentity: () => undefined }),
    });
}
