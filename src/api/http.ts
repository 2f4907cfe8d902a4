/**
 * Shared request plumbing for the REST routes: which service a route belongs to (it decides the error
 * body shape and codes), JSON body parsing with service-specific errors, and authentication.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type Service } from '../errors.js';
import type { Action, Principal } from '../domain/authz.js';
import type { AkSkAttempt } from '../domain/access-keys.js';

declare module 'fastify' {
  interface FastifyContextConfig { service?: Service; action?: Action | string }
  interface FastifyRequest {
    principal?: Principal;
    /** What the call was about, for the audit trail (set from the path before authentication, so refused calls show their target too). */
    auditResource?: { kind: string; id: string; projectId: string | null };
    /** What an AK/SK attempt revealed (claimed AK, owning domain, failure reason), for the audit trail. */
    auditAttempt?: AkSkAttempt;
    /** The actor of a call that authenticates by other means than a principal (a password login). */
    auditActor?: { userId: string; userName: string; domainId: string };
  }
}

export function serviceOf(req: FastifyRequest): Service {
  return req.routeOptions.config?.service ?? serviceFromPath(req.url);
}

/** Best guess for requests that matched no route (their errors are APIGW-shaped anyway). */
export function serviceFromPath(url: string): Service {
  if (url.startsWith('/v3/')) return 'iam';
  if (/^\/v1\/[^/]+\/cloudservers/.test(url)) return 'ecs';
  if (/^\/v1\/[^/]+\/physicalservers/.test(url)) return 'clouddc';
  if (/^\/v2\/[^/]+\/desktops/.test(url)) return 'workspace';
  if (url.startsWith('/admin/')) return 'admin';
  return 'apigw';
}

/** Parses a JSON request body received as raw bytes. Requires a JSON content type. */
export function jsonBody(req: FastifyRequest): unknown {
  const raw = req.body;
  const ct = String(req.headers['content-type'] ?? '').toLowerCase();
  if (!/^application\/json\s*(;|$)/.test(ct)) throw new ApiError('unsupported_media_type', 'Invalid request body: Content-Type must be application/json.');
  if (!Buffer.isBuffer(raw) || raw.length === 0) throw new ApiError('bad_request', 'Invalid request body: the body is empty.');
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new ApiError('bad_request', 'Invalid request body: malformed JSON.');
  }
}

export function setNoStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
}

export const PROJECT_ID_RE = /^[0-9a-f]{32}$/;
export const RESOURCE_ID_RE = /^[0-9A-Za-z-]{1,64}$/;
