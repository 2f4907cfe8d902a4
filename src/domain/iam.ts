/**
 * IAM: password authentication to a project- or domain-scoped token (Keystone v3 / Huawei IAM shape,
 * reference C), and token validation for every API call. Tokens are opaque random strings; only their
 * SHA-256 is stored.
 */
import { ApiError } from '../errors.js';
import type { IamTokenRecord, ProjectRecord, RoleBinding, Store, UserRecord, DomainRecord } from '../store/types.js';
import type { Principal } from './authz.js';
import type { Clock } from './clock.js';
import type { IdentityCache } from './identity-cache.js';
import { hashPassword, randomToken, sha256Hex, verifyPassword } from './passwords.js';

export interface IamOptions { tokenTtlSeconds: number; publicUrl: string }

/**
 * Throttles password guessing (api/ratelimit.ts implements it per user and per source address).
 * `userKey` is the user's id, or for a name that matches no user a key derived from the name, so
 * unknown and known users are throttled alike.
 */
export interface LoginGuard {
  /**
   * Counts the attempt before its password is checked (so parallel guesses are counted too), or
   * throws (429) when the user or the caller's address has too many recent failures.
   */
  check(userKey: string): Promise<void>;
  /** The attempt succeeded: it is not a failure. */
  succeeded(userKey: string): Promise<void>;
}

/** Keystone-style timestamps: microseconds and Z (reference C). */
export function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= 255 ? v : undefined);

interface PasswordAuthRequest {
  userName?: string;
  userId?: string;
  password: string;
  domainName?: string;
  domainId?: string;
  scope: { projectId?: string; projectName?: string; projectDomainName?: string; projectDomainId?: string; domainId?: string; domainName?: string } | null;
}

function parseAuthBody(body: unknown): PasswordAuthRequest {
  const bad = (what: string) => new ApiError('bad_request', `Invalid request body: ${what}.`, { code: 'IAM.0003' });
  if (!isObj(body) || !isObj(body.auth)) throw bad('auth is required');
  const { identity, scope } = body.auth;
  if (!isObj(identity)) throw bad('auth.identity is required');
  if (!Array.isArray(identity.methods) || !identity.methods.includes('password')) throw bad('auth.identity.methods must include "password"');
  if (!isObj(identity.password) || !isObj(identity.password.user)) throw bad('auth.identity.password.user is required');
  const user = identity.password.user;
  const password = typeof user.password === 'string' ? user.password : undefined;
  if (password === undefined || password.length > 1024) throw bad('auth.identity.password.user.password is required');
  const userName = str(user.name);
  const userId = str(user.id);
  if (!userName && !userId) throw bad('auth.identity.password.user.name or id is required');
  const domain = isObj(user.domain) ? user.domain : undefined;
  const domainName = str(domain?.name);
  const domainId = str(domain?.id);
  if (userName && !domainName && !domainId) throw bad('auth.identity.password.user.domain.name or id is required');
  let parsedScope: PasswordAuthRequest['scope'] = null;
  if (scope !== undefined) {
    if (!isObj(scope)) throw bad('auth.scope must be an object');
    if (isObj(scope.project)) {
      const pd = isObj(scope.project.domain) ? scope.project.domain : undefined;
      const projectId = str(scope.project.id);
      const projectName = str(scope.project.name);
      if (!projectId && !projectName) throw bad('auth.scope.project.id or name is required');
      parsedScope = { ...(projectId ? { projectId } : {}), ...(projectName ? { projectName } : {}), ...(str(pd?.name) ? { projectDomainName: str(pd?.name)! } : {}), ...(str(pd?.id) ? { projectDomainId: str(pd?.id)! } : {}) };
    } else if (isObj(scope.domain)) {
      const sid = str(scope.domain.id);
      const sname = str(scope.domain.name);
      if (!sid && !sname) throw bad('auth.scope.domain.id or name is required');
      parsedScope = { ...(sid ? { domainId: sid } : {}), ...(sname ? { domainName: sname } : {}) };
    } else {
      throw bad('auth.scope must name a project or a domain');
    }
  }
  return { ...(userName ? { userName } : {}), ...(userId ? { userId } : {}), password, ...(domainName ? { domainName } : {}), ...(domainId ? { domainId } : {}), scope: parsedScope };
}

export class IamService {
  constructor(
    private readonly store: Store, private readonly clock: Clock, private readonly opts: IamOptions,
    private readonly cache?: IdentityCache,
  ) {}

  /** POST /v3/auth/tokens. Returns the clear token (for X-Subject-Token) and the response body. */
  async issueToken(body: unknown, nocatalog: boolean, guard?: LoginGuard): Promise<{ token: string; body: object; user: UserRecord }> {
    const req = parseAuthBody(body);
    const unauthorized = () => new ApiError('unauthorized', 'The username or password is wrong.', { code: 'IAM.0101', status: 401 });
    let domain: DomainRecord | undefined;
    let user: UserRecord | undefined;
    if (req.userId) {
      user = await this.store.identity.getUser(req.userId);
      domain = user && (await this.store.identity.getDomain(user.domainId));
    } else {
      domain = req.domainId ? await this.store.identity.getDomain(req.domainId) : await this.store.identity.findDomainByName(req.domainName!);
      user = domain && (await this.store.identity.findUserByName(domain.id, req.userName!));
    }
    const userKey = user ? `user:${user.id}` : `unknown:${req.userId ?? `${req.domainId ?? req.domainName ?? ''}/${req.userName ?? ''}`}`;
    // Counted and throttled before the password is checked, so a locked-out guesser learns nothing
    // more and a burst of parallel guesses cannot all pass while the hash runs.
    await guard?.check(userKey);
    // Verify a password even for unknown users so timing does not reveal which names exist.
    const ok = await verifyPassword(req.password, user?.passwordHash ?? (await dummyHash()));
    // A failed attempt stays counted: `check` counted it.
    if (!user || !domain || !ok || user.disabled) throw unauthorized();
    await guard?.succeeded(userKey);

    let project: ProjectRecord | undefined;
    const scope = req.scope;
    if (scope?.projectId || scope?.projectName) {
      if (scope.projectId) project = await this.store.identity.getProject(scope.projectId);
      else {
        let pDomainId = domain.id;
        if (scope.projectDomainId) pDomainId = scope.projectDomainId;
        else if (scope.projectDomainName) pDomainId = (await this.store.identity.findDomainByName(scope.projectDomainName))?.id ?? '';
        project = await this.store.identity.findProjectByName(pDomainId, scope.projectName!);
      }
      const roles = await this.store.identity.rolesOf(user.id);
      const allowed = project && project.domainId === domain.id && (user.domainAdmin || roles.some((r) => r.projectId === project!.id));
      if (!allowed) throw new ApiError('forbidden', 'The user has no access to the requested project.', { code: 'IAM.0002', status: 401 });
    } else if (scope?.domainId || scope?.domainName) {
      if ((scope.domainId && scope.domainId !== domain.id) || (scope.domainName && scope.domainName !== domain.name)) {
        throw new ApiError('forbidden', 'The user has no access to the requested domain.', { code: 'IAM.0002', status: 401 });
      }
    }

    const now = this.clock.now();
    const token = 'PH' + randomToken(48);
    const rec: IamTokenRecord = {
      tokenHash: sha256Hex(token), userId: user.id, projectId: project?.id ?? null, domainId: domain.id, methods: ['password'],
      issuedAt: now, expiresAt: now + this.opts.tokenTtlSeconds * 1000,
    };
    await this.store.identity.insertIamToken(rec);
    const roles = await this.store.identity.rolesOf(user.id);
    const roleNames = project ? roles.filter((r) => r.projectId === project!.id).map((r) => r.role) : user.domainAdmin ? ['admin'] : [];
    if (user.domainAdmin && !roleNames.includes('admin')) roleNames.push('te_admin');
    const domainRef = { id: domain.id, name: domain.name };
    const tokenBody: Record<string, unknown> = {
      expires_at: keystoneTime(rec.expiresAt),
      issued_at: keystoneTime(rec.issuedAt),
      methods: ['password'],
      user: { id: user.id, name: user.name, password_expires_at: user.passwordExpiresAt === null ? '' : keystoneTime(user.passwordExpiresAt), domain: domainRef },
      roles: roleNames.map((r) => ({ id: sha256Hex('role:' + r).slice(0, 32), name: r })),
    };
    if (project) tokenBody.project = { id: project.id, name: project.name, domain: domainRef };
    else tokenBody.domain = domainRef;
    if (!nocatalog) {
      tokenBody.catalog = ['ecs', 'clouddc', 'workspace'].map((type) => ({
        id: sha256Hex('svc:' + type).slice(0, 32), type, name: type,
        endpoints: [{ id: sha256Hex('ep:' + type).slice(0, 32), interface: 'public', region: 'porthole', region_id: 'porthole', url: this.opts.publicUrl }],
      }));
    }
    return { token, body: { token: tokenBody }, user };
  }

  /**
   * Validates an X-Auth-Token. Throws 401 APIGW.0301 (unknown) or APIGW.0307 (expired). A token seen
   * within the last few seconds is answered from the identity cache (identity-cache.ts) when one is
   * configured; its expiry is checked on every call either way.
   */
  async authenticate(token: string): Promise<Principal> {
    if (token.length < 8 || token.length > 8192) throw new ApiError('unauthorized', 'Incorrect IAM authentication information: decrypt token fail', { code: 'APIGW.0301' });
    const hash = sha256Hex(token);
    const now = this.clock.now();
    const cached = this.cache?.principal(hash, now);
    if (cached) {
      if (cached.tokenExpiresAt <= now) throw tokenExpired();
      return cached.principal;
    }
    const generation = this.cache?.generation ?? 0;
    const rec = await this.store.identity.getIamToken(hash);
    if (!rec) throw new ApiError('unauthorized', 'Incorrect IAM authentication information: decrypt token fail', { code: 'APIGW.0301' });
    if (rec.expiresAt <= now) throw tokenExpired();
    const user = await this.store.identity.getUser(rec.userId);
    const domain = user && (await this.store.identity.getDomain(user.domainId));
    if (!user || !domain || user.disabled) throw tokenExpired();
    const principal = Object.freeze(await this.principalFor(user, domain, rec.projectId, 'token'));
    this.cache?.setPrincipal(hash, { principal, tokenExpiresAt: rec.expiresAt }, generation, now);
    return principal;
  }

  /** A project for an authorization check, from the identity cache when it holds it. */
  async project(id: string): Promise<ProjectRecord | undefined> {
    const now = this.clock.now();
    const cached = this.cache?.project(id, now);
    if (cached !== undefined) return cached ?? undefined;
    const generation = this.cache?.generation ?? 0;
    const p = await this.store.identity.getProject(id);
    this.cache?.setProject(id, p ?? null, generation, now);
    return p;
  }

  async principalFor(user: UserRecord, domain: DomainRecord, scopeProjectId: string | null, via: 'token' | 'aksk', accessKey?: string): Promise<Principal> {
    return principalFrom(user, domain, await this.store.identity.rolesOf(user.id), scopeProjectId, via, accessKey);
  }

}

/** 401 APIGW.0307: the token expired, or its user is gone or disabled. */
function tokenExpired(): ApiError {
  return new ApiError('token_expired', 'The token must be updated.', { code: 'APIGW.0307' });
}

/** A principal from identity records already read. */
export function principalFrom(
  user: UserRecord, domain: DomainRecord, roles: readonly RoleBinding[], scopeProjectId: string | null, via: 'token' | 'aksk', accessKey?: string,
): Principal {
  return {
    userId: user.id, userName: user.name, domainId: domain.id, domainName: domain.name, scopeProjectId, domainAdmin: user.domainAdmin,
    operatorDomain: domain.operator,
    roles: new Map(roles.map((r) => [r.projectId, r.role])), via, ...(accessKey ? { accessKey } : {}),
  };
}

// A real hash of a random password, so unknown users cost the same time as known ones.
let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomToken(16));
  return dummy;
}
