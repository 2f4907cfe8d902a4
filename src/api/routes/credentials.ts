/**
 * IAM permanent access keys, in Huawei IAM's shape (support.huaweicloud.com api-iam iam_03_0001…0006):
 *  - POST   /v3.0/OS-CREDENTIAL/credentials               {credential:{user_id, description?}} → 201 {credential:{access, secret, …}}
 *  - GET    /v3.0/OS-CREDENTIAL/credentials[?user_id=]    → {credentials:[…]}
 *  - GET    /v3.0/OS-CREDENTIAL/credentials/{access_key}  → {credential:{…, last_use_time}}
 *  - PUT    /v3.0/OS-CREDENTIAL/credentials/{access_key}  {credential:{status?, description?}} → {credential:{…}}
 *  - DELETE /v3.0/OS-CREDENTIAL/credentials/{access_key}  → 204
 * The SK appears only in the creation response. A user manages their own keys; a domain administrator
 * any key of the domain. Errors use IAM's `{error_code, error_msg}` with IAM.0002/0003/0004.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.js';
import type { AccessKeyService } from '../../domain/access-keys.js';
import { MAX_DESCRIPTION_LENGTH } from '../../domain/access-keys.js';
import { keystoneTime } from '../../domain/iam.js';
import type { AccessKeyRecord, AccessKeyStatus } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { jsonBody, setNoStore } from '../http.js';
import type { makeAuthenticate } from '../auth.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;
type Json = Record<string, unknown>;

const BASE = '/v3.0/OS-CREDENTIAL/credentials';
const ACCESS_KEY_RE = /^[A-Za-z0-9]{1,64}$/;
const USER_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (what: string) => new ApiError('bad_request', `Request body is invalid: ${what}.`);

/** The fields Huawei returns for a key; never the SK. `last_use_time` is the creation time until first use (IAM does the same). */
function view(k: AccessKeyRecord, withLastUse: boolean): Json {
  const out: Json = { user_id: k.userId, access: k.accessKey, status: k.status, create_time: keystoneTime(k.createdAt) };
  if (withLastUse) out.last_use_time = keystoneTime(k.lastUsedAt ?? k.createdAt);
  out.description = k.description;
  return out;
}

function parseDescription(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > MAX_DESCRIPTION_LENGTH) throw bad(`credential.description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`);
  return v;
}

export function registerCredentialRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  function service(): AccessKeyService {
    if (!ctx.accessKeys) throw new ApiError('unavailable', 'Access keys are not enabled on this gateway.');
    return ctx.accessKeys;
  }

  /** Authenticates and checks the path's AK syntax (a malformed AK is simply not found). */
  async function guard(req: FastifyRequest, accessKey: string | undefined) {
    if (accessKey !== undefined) req.auditResource = { kind: 'access_key', id: accessKey.slice(0, 64), projectId: null };
    const principal = await authenticate(req);
    if (accessKey !== undefined && !ACCESS_KEY_RE.test(accessKey)) throw new ApiError('not_found', 'Could not find credential.');
    return principal;
  }

  app.post(BASE, { config: { service: 'iam', action: 'iam:credentials:createCredential' } }, async (req, reply) => {
    const principal = await guard(req, undefined);
    const body = jsonBody(req);
    if (!isObj(body) || !isObj(body.credential)) throw bad('credential is required');
    const userId = body.credential.user_id;
    if (typeof userId !== 'string' || !USER_ID_RE.test(userId)) throw bad('credential.user_id is required');
    const description = parseDescription(body.credential.description) ?? '';
    const { record, secret } = await service().create(principal, userId, description);
    req.auditResource = { kind: 'access_key', id: record.accessKey, projectId: null };
    setNoStore(reply);
    return reply.code(201).send({
      credential: { access: record.accessKey, secret, status: record.status, user_id: record.userId, create_time: keystoneTime(record.createdAt), description: record.description },
    });
  });

  app.get(BASE, { config: { service: 'iam', action: 'iam:credentials:listCredentials' } }, async (req) => {
    const principal = await guard(req, undefined);
    const userId = (req.query as Record<string, unknown>).user_id;
    if (userId !== undefined && (typeof userId !== 'string' || !USER_ID_RE.test(userId))) throw new ApiError('bad_request', 'Request parameter user_id is invalid.');
    const keys = await service().list(principal, userId);
    return { credentials: keys.map((k) => view(k, true)) };
  });

  app.get<{ Params: { access_key: string } }>(`${BASE}/:access_key`, { config: { service: 'iam', action: 'iam:credentials:getCredential' } }, async (req) => {
    const principal = await guard(req, req.params.access_key);
    return { credential: view(await service().get(principal, req.params.access_key), true) };
  });

  app.put<{ Params: { access_key: string } }>(`${BASE}/:access_key`, { config: { service: 'iam', action: 'iam:credentials:updateCredential' } }, async (req) => {
    const principal = await guard(req, req.params.access_key);
    const body = jsonBody(req);
    if (!isObj(body) || !isObj(body.credential)) throw bad('credential is required');
    const { status } = body.credential;
    if (status !== undefined && status !== 'active' && status !== 'inactive') throw bad('credential.status must be active or inactive');
    const description = parseDescription(body.credential.description);
    if (status === undefined && description === undefined) throw bad('credential.status or credential.description is required');
    const patch: { status?: AccessKeyStatus; description?: string } = {};
    if (status !== undefined) patch.status = status;
    if (description !== undefined) patch.description = description;
    return { credential: view(await service().update(principal, req.params.access_key, patch), false) };
  });

  app.delete<{ Params: { access_key: string } }>(`${BASE}/:access_key`, { config: { service: 'iam', action: 'iam:credentials:deleteCredential' } }, async (req, reply) => {
    const principal = await guard(req, req.params.access_key);
    await service().delete(principal, req.params.access_key);
    return reply.code(204).send();
  });
}
