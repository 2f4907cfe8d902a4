/**
 * Permanent access keys (AK/SK) and AK/SK request authentication.
 *
 * Keys follow Huawei IAM (`/v3.0/OS-CREDENTIAL/credentials`): a 20-character AK, a 40-character SK
 * shown once at creation, `active`/`inactive`, a description, creation and last-use times. The SK
 * must be read back to verify signatures, so it is stored sealed (SecretBox, bound to its AK) and
 * never logged, rendered after creation, or put in an error.
 *
 * Authentication of `Authorization: SDK-HMAC-SHA256 …` (reference A.3): parse → lockout check (a
 * locked AK is refused before any verification, so it is no oracle) → AK lookup → signature over the
 * wire request (domain/signing/sdk-hmac.ts) → count the failure or reset the count → key and user
 * enabled → `X-Project-Id` / `X-Domain-Id` agree with the request → principal. Every refusal is 401
 * APIGW.0301 with the documented suffix, except a header naming another project or domain, which is
 * the same 403 APIGW.0302 a token scoped to another project gets.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../errors.js';
import type { AccessKeyRecord, AccessKeyStatus, Store } from '../store/types.js';
import { actsDomainWide, mayActOnUser, type Principal, type UserAction } from './authz.js';
import type { Clock } from './clock.js';
import { principalFrom } from './iam.js';
import type { IdentityCache } from './identity-cache.js';
import type { SecretBox } from './secrets.js';
import { AkLockout, type LockoutPolicy, type LockoutState, type LockoutStatePort } from './signing/lockout.js';
import { errorSuffix, parseAuthorization, verifySignature, type SigningFailure, type WireRequest } from './signing/sdk-hmac.js';

/** Huawei IAM allows two permanent access keys per user ("akSkNumExceed"). */
export const MAX_KEYS_PER_USER = 2;
export const ACCESS_KEY_LENGTH = 20;
export const SECRET_KEY_LENGTH = 40;
/** last_use_time is written at most this often per key, so signed calls do not each cost a write. */
export const LAST_USED_RESOLUTION_MS = 60_000;
export const MAX_DESCRIPTION_LENGTH = 255;

const AK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Uniform random characters from `alphabet` (rejection sampling: no modulo bias). */
function randomString(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit && out.length < length) out += alphabet.charAt(b % alphabet.length);
    }
  }
  return out;
}

const sealAad = (accessKey: string) => `ak:${accessKey}`;

/** What an AK/SK attempt revealed, for the audit trail (never the SK or the signature). */
export interface AkSkAttempt {
  /** The claimed AK (an identifier, not a secret), truncated. */
  accessKey?: string;
  /** The owning domain, when the AK exists. */
  domainId?: string;
  /** Why it was refused. */
  failure?: SigningFailure | 'key_inactive' | 'user_disabled' | 'scope_mismatch';
}

/** Client-facing refusal: 401 APIGW.0301 + the documented suffix (reference D.1). */
function refused(reason: SigningFailure, headers: Record<string, string> = {}): ApiError {
  return new ApiError('unauthorized', 'Incorrect IAM authentication information' + errorSuffix(reason), { code: 'APIGW.0301', headers });
}

/** The lockout state kept in the store, so every gateway node sees the same count and lock. */
export class StoreLockoutPort implements LockoutStatePort {
  constructor(private readonly store: Store) {}
  get(accessKey: string): Promise<LockoutState | undefined> {
    return this.store.accessKeys.getLockout(accessKey);
  }
  addFailure(accessKey: string, now: number, policy: Readonly<LockoutPolicy>): Promise<LockoutState> {
    return this.store.accessKeys.addLockoutFailure(accessKey, now, policy.maxFailures, policy.lockMs);
  }
  clear(accessKey: string, now: number): Promise<void> {
    return this.store.accessKeys.clearLockout(accessKey, now);
  }
}

function singleHeader(headers: WireRequest['headers'], name: string): string | undefined {
  if (!Object.hasOwn(headers, name)) return undefined;
  const v = headers[name];
  const value = Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
  return value?.trim();
}

export class AccessKeyService {
  private readonly lockout: AkLockout;

  constructor(
    private readonly store: Store,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    /** Where lockout counts live (default: the store; with Redis: store/redis/lockout.ts). */
    lockoutState?: LockoutStatePort,
    private readonly cache?: IdentityCache,
  ) {
    this.lockout = new AkLockout(lockoutState ?? new StoreLockoutPort(store), () => clock.now());
  }

  // -------------------------------------------------------------------------------------------
  // Management (the caller is authenticated; each method checks that it may act on the owner)

  private notFound(accessKey: string): ApiError {
    return new ApiError('not_found', `Could not find credential: ${accessKey.slice(0, 64)}.`);
  }

  private forbidden(action: UserAction): ApiError {
    return new ApiError('forbidden', `You are not authorized to perform the requested action: ${action}.`);
  }

  /** A key the caller may see; another user's key is "not found", so AKs cannot be probed. */
  private async visibleKey(actor: Principal, accessKey: string): Promise<AccessKeyRecord> {
    const rec = await this.store.accessKeys.get(accessKey);
    if (!rec || !mayActOnUser(actor, { id: rec.userId, domainId: rec.domainId })) throw this.notFound(accessKey);
    return rec;
  }

  /** Creates a key for `userId` and returns it with the clear SK (the only time it is shown). */
  async create(actor: Principal, userId: string, description: string): Promise<{ record: AccessKeyRecord; secret: string }> {
    // A user may create keys for themself; only a domain administrator learns whether another user exists.
    if (actor.userId !== userId && !actsDomainWide(actor)) throw this.forbidden('iam:credentials:createCredential');
    const user = await this.store.identity.getUser(userId);
    if (!user || !mayActOnUser(actor, user)) throw new ApiError('not_found', `Could not find user: ${userId.slice(0, 64)}.`);
    if ((await this.store.accessKeys.listByUser(userId)).length >= MAX_KEYS_PER_USER) {
      throw new ApiError('bad_request', `akSkNumExceed: a user may have at most ${MAX_KEYS_PER_USER} access keys.`);
    }
    return this.insertKey(user.id, user.domainId, description);
  }

  private async insertKey(userId: string, domainId: string, description: string): Promise<{ record: AccessKeyRecord; secret: string }> {
    const accessKey = randomString(AK_ALPHABET, ACCESS_KEY_LENGTH);
    const secret = randomString(SK_ALPHABET, SECRET_KEY_LENGTH);
    const record: AccessKeyRecord = {
      accessKey, userId, domainId, secretSealed: this.secrets.seal(secret, sealAad(accessKey)), status: 'active',
      description, createdAt: this.clock.now(), lastUsedAt: null,
    };
    await this.store.accessKeys.insert(record);
    return { record, secret };
  }

  /** `userId` given: that user's keys. Otherwise a domain administrator sees the domain's keys, a user their own. */
  async list(actor: Principal, userId?: string): Promise<AccessKeyRecord[]> {
    if (userId !== undefined) {
      if (actor.userId !== userId && !actsDomainWide(actor)) throw this.forbidden('iam:credentials:listCredentials');
      const user = await this.store.identity.getUser(userId);
      if (!user || !mayActOnUser(actor, user)) throw new ApiError('not_found', `Could not find user: ${userId.slice(0, 64)}.`);
      return this.store.accessKeys.listByUser(userId);
    }
    return actsDomainWide(actor) ? this.store.accessKeys.listByDomain(actor.domainId) : this.store.accessKeys.listByUser(actor.userId);
  }

  async get(actor: Principal, accessKey: string): Promise<AccessKeyRecord> {
    return this.visibleKey(actor, accessKey);
  }

  async update(actor: Principal, accessKey: string, patch: { status?: AccessKeyStatus; description?: string }): Promise<AccessKeyRecord> {
    await this.visibleKey(actor, accessKey);
    const rec = await this.store.accessKeys.update(accessKey, patch);
    if (!rec) throw this.notFound(accessKey);
    return rec;
  }

  async delete(actor: Principal, accessKey: string): Promise<void> {
    await this.visibleKey(actor, accessKey);
    await this.store.accessKeys.delete(accessKey);
  }

  /**
   * The embedded demo's key: keeps `(ak, sk)` if the store still has that key for `userId` with that
   * SK, otherwise replaces it with a new one. Not subject to the per-user limit (it replaces its own).
   */
  async ensureKey(userId: string, ak: string | undefined, sk: string | undefined, description: string): Promise<{ ak: string; sk: string; created: boolean }> {
    const user = await this.store.identity.getUser(userId);
    if (!user) throw new Error(`ensureKey: no user ${userId}`);
    if (ak !== undefined) {
      const rec = await this.store.accessKeys.get(ak);
      if (rec && rec.userId === userId && sk !== undefined) {
        let same = false;
        try { same = this.secrets.open(rec.secretSealed, sealAad(ak)) === sk; } catch { same = false; }
        if (same) return { ak, sk, created: false };
      }
      if (rec && rec.userId === userId) await this.store.accessKeys.delete(ak);
    }
    const { record, secret } = await this.insertKey(userId, user.domainId, description);
    return { ak: record.accessKey, sk: secret, created: true };
  }

  // -------------------------------------------------------------------------------------------
  // Authentication

  /**
   * Verifies an AK/SK-signed request and returns its principal. `pathProjectId` is the `{project_id}`
   * of the route, or null for routes without one. `attempt` is filled in for the audit trail.
   */
  async authenticate(wire: WireRequest, pathProjectId: string | null, attempt: AkSkAttempt): Promise<Principal> {
    const parsed = parseAuthorization(singleHeader(wire.headers, 'authorization'));
    if (!parsed.ok) {
      attempt.failure = parsed.reason;
      throw refused(parsed.reason);
    }
    const ak = parsed.accessKey;
    attempt.accessKey = ak.slice(0, 64);

    const { decision: lock, seen } = await this.lockout.inspect(ak);
    if (lock.locked) {
      attempt.failure = 'ak_locked';
      throw refused('ak_locked', { 'retry-after': String(Math.ceil(lock.retryAfterMs / 1000)) });
    }
    // The key and its owner may come from the identity cache (identity-cache.ts: seconds, cleared by
    // any change to keys, users, domains or roles); the signature is verified on every call.
    const now = this.clock.now();
    const generation = this.cache?.generation ?? 0;
    const cached = this.cache?.accessKey(ak, now);
    const rec = cached?.key ?? (await this.store.accessKeys.get(ak));
    if (!rec) {
      attempt.failure = 'ak_unknown';
      throw refused('ak_unknown');
    }
    attempt.domainId = rec.domainId;

    let secret: string;
    try {
      secret = cached?.secret ?? this.secrets.open(rec.secretSealed, sealAad(ak));
    } catch (err) {
      // A store/master-key problem, not the caller's: 500, with the reason (never the value) in the log.
      throw new ApiError('internal', undefined, { cause: err });
    }
    const verified = verifySignature(wire, parsed, secret, new Date(now));
    if (!verified.ok) {
      attempt.failure = verified.reason;
      await this.lockout.recordFailure(ak);
      throw refused(verified.reason);
    }
    await this.lockout.recordSuccess(ak, { state: seen });

    // Only a caller who holds the SK learns that the key or its user is disabled.
    if (rec.status !== 'active') {
      attempt.failure = 'key_inactive';
      throw new ApiError('unauthorized', 'Incorrect IAM authentication information: the access key is inactive', { code: 'APIGW.0301' });
    }
    const user = cached?.user ?? (await this.store.identity.getUser(rec.userId));
    const domain = cached?.domain ?? (user && (await this.store.identity.getDomain(user.domainId)));
    if (!user || !domain || user.disabled) {
      attempt.failure = 'user_disabled';
      throw new ApiError('unauthorized', 'Incorrect IAM authentication information: the user is disabled', { code: 'APIGW.0301' });
    }
    const roles = cached?.roles ?? (await this.store.identity.rolesOf(user.id));
    if (!cached) this.cache?.setAccessKey(ak, { key: rec, secret, user, domain, roles }, generation, now);

    // Reference A.3 step 6: both SDKs send X-Project-Id (BasicCredentials) or X-Domain-Id (GlobalCredentials).
    const headerProject = singleHeader(wire.headers, 'x-project-id');
    if (headerProject !== undefined && pathProjectId !== null && headerProject !== pathProjectId) {
      attempt.failure = 'scope_mismatch';
      throw new ApiError('project_mismatch');
    }
    const headerDomain = singleHeader(wire.headers, 'x-domain-id');
    if (headerDomain !== undefined && headerDomain !== domain.id) {
      attempt.failure = 'scope_mismatch';
      throw new ApiError('project_mismatch', 'The IAM user is not authorized to access the API: the credentials are scoped to another domain.');
    }

    if (rec.lastUsedAt === null || now - rec.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
      await this.store.accessKeys.touch(ak, now);
      this.cache?.accessKeyUsed(ak, now);
    }
    return principalFrom(user, domain, roles, headerProject ?? pathProjectId, 'aksk', ak);
  }
}
