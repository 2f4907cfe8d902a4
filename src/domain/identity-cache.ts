/**
 * A short-lived cache of identity reads on the API's hot path: the principal behind an IAM token
 * (keyed by the token's SHA-256), an access key with its owner (keyed by the AK; the signature is
 * still verified on every call, and lockout state is never cached), and the project records that
 * authorization checks look up. Validating a credential takes four or five store reads on every API
 * call, and an SDK or a portal minting console URLs calls with the same credential again and again. Like keystonemiddleware's
 * token cache (300 s by default) — but kept to a few seconds and cleared on every identity change:
 *
 *  - an entry lives at most `ttlMs` (config `iam.identity_cache_seconds`; 0 turns the cache off); a
 *    principal never outlives its token, whose expiry is checked on every hit;
 *  - any change to users, domains, projects, role bindings or access keys (other than their last-use
 *    time) through this node clears the whole cache
 *    (gateway.ts wraps the store: store/identity-watch.ts); on PostgreSQL the change is announced to the
 *    other nodes on the cluster bus, which clear theirs. A lost announcement is bounded by `ttlMs`;
 *  - a read that was in flight when the cache was cleared is not kept (`generation`).
 *
 * Each map is bounded (`maxEntries`, oldest dropped first). Cached values are shared between requests:
 * nothing may modify them (principals are frozen).
 */
import type { AccessKeyRecord, DomainRecord, ProjectRecord, RoleBinding, UserRecord } from '../store/types.js';
import type { Principal } from './authz.js';

export interface CachedPrincipal { principal: Principal; tokenExpiresAt: number }

/**
 * What an AK/SK call needs besides the signature: the key (status, last use), its SK opened (only in
 * this process's memory, like the master key that opens it; never logged), and its owner.
 */
export interface CachedAccessKey { key: AccessKeyRecord; secret: string; user: UserRecord; domain: DomainRecord; roles: readonly RoleBinding[] }

interface Entry<V> { value: V; until: number; generation: number }

class Bounded<V> {
  readonly #entries = new Map<string, Entry<V>>();
  constructor(private readonly maxEntries: number) {}
  get(key: string, now: number, generation: number): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.until <= now || e.generation !== generation) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: V, until: number, generation: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, until, generation });
    if (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }
  /** The entry's value whatever its age or generation (to update it in place). */
  peek(key: string): V | undefined { return this.#entries.get(key)?.value; }
  clear(): void { this.#entries.clear(); }
  get size(): number { return this.#entries.size; }
}

export class IdentityCache {
  readonly #principals: Bounded<CachedPrincipal>;
  readonly #projects: Bounded<ProjectRecord | null>;
  readonly #accessKeys: Bounded<CachedAccessKey>;
  #generation = 0;

  constructor(private readonly ttlMs: number, maxEntries = 10_000) {
    this.#principals = new Bounded(maxEntries);
    this.#projects = new Bounded(maxEntries);
    this.#accessKeys = new Bounded(maxEntries);
  }

  get enabled(): boolean { return this.ttlMs > 0; }

  /** Read it before the store reads whose result will be cached. */
  get generation(): number { return this.#generation; }

  principal(tokenHash: string, now: number): CachedPrincipal | undefined {
    return this.#principals.get(tokenHash, now, this.#generation);
  }

  /** Keeps what was read at `generation`, unless the identities changed since. */
  setPrincipal(tokenHash: string, value: CachedPrincipal, generation: number, now: number): void {
    if (this.enabled && generation === this.#generation) this.#principals.set(tokenHash, value, Math.min(now + this.ttlMs, value.tokenExpiresAt), generation);
  }

  /** A cached project: the record, null when it was found missing, undefined when not cached. */
  project(id: string, now: number): ProjectRecord | null | undefined {
    return this.#projects.get(id, now, this.#generation);
  }

  setProject(id: string, value: ProjectRecord | null, generation: number, now: number): void {
    if (this.enabled && generation === this.#generation) this.#projects.set(id, value, now + this.ttlMs, generation);
  }

  accessKey(ak: string, now: number): CachedAccessKey | undefined {
    return this.#accessKeys.get(ak, now, this.#generation);
  }

  setAccessKey(ak: string, value: CachedAccessKey, generation: number, now: number): void {
    if (this.enabled && generation === this.#generation) this.#accessKeys.set(ak, value, now + this.ttlMs, generation);
  }

  /** The key's last use was recorded: cached copies show it, so the next call does not record it again. */
  accessKeyUsed(ak: string, at: number): void {
    const e = this.#accessKeys.peek(ak);
    if (e) e.key = { ...e.key, lastUsedAt: at };
  }

  /** Forgets everything (an identity change here or on another node). */
  clear(): void {
    this.#generation++;
    this.#principals.clear();
    this.#projects.clear();
    this.#accessKeys.clear();
  }

  get size(): number { return this.#principals.size + this.#projects.size + this.#accessKeys.size; }
}
