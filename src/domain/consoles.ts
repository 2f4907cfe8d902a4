/**
 * Console tokens: minting one-time console URLs and redeeming them at the WebSocket upgrade.
 * A token is 256 random bits, shown once in the URL; only its SHA-256 is stored, bound to the project,
 * the resource and the generation of the resource's console endpoint (so a changed or deleted
 * endpoint revokes it: CVE-2013-0335). Redemption is one conditional UPDATE, so exactly one upgrade
 * wins even across nodes. The target (host, port, VNC credential) is re-read from the resource at
 * redemption, never taken from the client.
 *
 * A token is also bound to the user who minted it: redemption re-checks that this user still exists,
 * is enabled and may open the machine's console (operator or admin in the project, or administrator
 * of its domain; an operator — administrator of an `admin.operator_domains` domain — in any domain,
 * as the admin API lets them mint). Remote-assistance helpers are not users (their tokens carry no
 * user): a helper acts on the authority of the share space's creator, who must still exist, be
 * enabled and be allowed to ask for assistance on that desktop (operator in the project, or the
 * desktop's assigned user, as routes/assistance.ts requires), on top of the space being active
 * (assistance.ts `admit`). The same check runs again on live sessions when a user is deleted,
 * disabled or demoted (`mayKeep`, through SessionControl.endUser).
 *
 * A token consumed by an upgrade that then fails for want of the database, before its 101, is given
 * back (`release`): the client was told 503 "try again in a few seconds", and the retry must work.
 * Only that redemption is undone (the row must still carry its redeemed_at), so a token never opens
 * two sessions; while the database stays away the release is retried every second until the token
 * expires.
 */
import { ApiError } from '../errors.js';
import { isStoreUnavailable } from '../store/errors.js';
import type { ConsoleTokenRecord, ResourceKind, ResourceRecord, Store, TokenState, TokenPurpose } from '../store/types.js';
import type { Clock } from './clock.js';
import { randomToken, sha256Hex } from './passwords.js';
import { consoleRefusal, consoleRefusalText, type ConsoleRefusal } from './liveness.js';
import type { SecretBox } from './secrets.js';
import type { BackendCredential } from '../rfb/client-handshake.js';
import { VENCRYPT_SUBTYPE_NUMBERS, type ClipboardSetting, type SessionMode } from './endpoint-options.js';
import { openEndpointSecret } from './endpoint-spec.js';
import { mayOperate, type Principal } from './authz.js';
import { principalFrom } from './iam.js';
import { isAssignedUser } from './assistance.js';

export interface ConsoleOptions { publicUrl: string; tokenTtlSeconds: number; lang: string; defaultZone: string }

export type { BackendCredential };

/** What the relay enforces on a console, from the endpoint's options (domain/endpoint-options.ts). */
export interface ConsolePolicy {
  clipboard: { direction: ClipboardSetting; maxBytes?: number };
  sessionMode: SessionMode;
}

export interface ConsoleGrant {
  token: ConsoleTokenRecord;
  resource: ResourceRecord;
  target: { host: string; port: number; credential: BackendCredential };
  policy: ConsolePolicy;
  /**
   * The user on whose authority the session runs: the minting user, or for a remote-assistance helper
   * the share space's creator; null when none (a helper of a space with no recorded creator).
   */
  holderUserId: string | null;
}

export type RedeemResult = { ok: true; grant: ConsoleGrant } | { ok: false; state: Exclude<TokenState, 'valid'> };

const TOKEN_RE = /^[A-Za-z0-9_-]{16,128}$/;

/** What happens to tokens, for metrics (observability/metrics.ts implements it). Must not throw. */
export interface ConsoleTokenEvents {
  minted(kind: ResourceKind, purpose: TokenPurpose): void;
  redeemed(kind: ResourceKind, purpose: TokenPurpose): void;
  refused(state: Exclude<TokenState, 'valid'>): void;
}

const NO_EVENTS: ConsoleTokenEvents = { minted() {}, redeemed() {}, refused() {} };

/** Releases kept for retry at most; beyond it the oldest is dropped (that token stays used). */
const MAX_PENDING_RELEASES = 100_000;
const RELEASE_RETRY_MS = 1000;

export class ConsoleService {
  /** Redemptions to undo once the database answers again: token hash → the record this node redeemed. */
  readonly #unreleased = new Map<string, ConsoleTokenRecord>();
  #releaseTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store, private readonly secrets: SecretBox, private readonly clock: Clock, private readonly opts: ConsoleOptions,
    private readonly events: ConsoleTokenEvents = NO_EVENTS,
    /** Whether a principal is a gateway operator (AdminAccess.isOperator): they may open consoles in every domain. */
    private readonly isOperator: (p: Principal) => boolean = () => false,
  ) {}

  zoneOf(resource: ResourceRecord): string {
    return resource.endpoint?.zone ?? this.opts.defaultZone;
  }

  /**
   * Mints a console URL for a resource the caller has already been authorized for. Throws not_found if
   * the resource does not exist in the project, not_ready if it has no console endpoint, is stopped,
   * or a probe has marked its console unreachable or its credentials rejected (domain/liveness.ts): a URL that cannot work is
   * never handed out.
   */
  async mint(projectId: string, kind: ResourceKind, resourceId: string, by: { userId: string | null; purpose?: TokenPurpose; viewOnly?: boolean }): Promise<{ url: string; token: string; resource: ResourceRecord; expiresAt: number }> {
    const resource = await this.store.inventory.getResource(projectId, kind, resourceId);
    if (!resource) throw new ApiError('not_found', notFoundMessage(kind, resourceId));
    const refusal = consoleRefusal(resource, await this.store.probes.get(resource.id));
    if (refusal) throw new ApiError('not_ready', notReadyMessage(kind, resourceId, refusal));
    const now = this.clock.now();
    const token = randomToken(32);
    const zone = this.zoneOf(resource);
    const expiresAt = now + this.opts.tokenTtlSeconds * 1000;
    await this.store.consoleTokens.insert({
      tokenHash: sha256Hex(token), projectId, resourceId, resourceKind: kind, endpointGeneration: resource.endpointGeneration,
      purpose: by.purpose ?? 'console', zone, userId: by.userId, viewOnly: by.viewOnly ?? false, createdAt: now, expiresAt,
      redeemedAt: null, revokedAt: null,
    });
    const url = `${this.opts.publicUrl}/vnc/${encodeURIComponent(zone)}/vnc_auto.html?token=${token}&lang=${encodeURIComponent(this.opts.lang)}`;
    this.events.minted(kind, by.purpose ?? 'console');
    return { url, token, resource, expiresAt };
  }

  /**
   * Non-consuming look-up of a token with its machine: the console page is served view-only when its
   * token is, and the upgrade checks an exclusive endpoint before consuming the token.
   */
  async peek(token: string, zone?: string): Promise<{ state: TokenState; token?: ConsoleTokenRecord; resource?: ResourceRecord }> {
    if (!TOKEN_RE.test(token)) return { state: 'invalid' };
    const rec = await this.store.consoleTokens.get(sha256Hex(token));
    if (!rec || (zone !== undefined && rec.zone !== zone)) return { state: 'invalid' };
    const resource = await this.store.inventory.getResourceById(rec.resourceId);
    return { state: await this.stateOf(rec, zone, resource ?? null), token: rec, ...(resource ? { resource } : {}) };
  }

  /** Non-consuming look-up, for the console page to explain a refused connection. */
  async state(token: string, zone?: string): Promise<TokenState> {
    if (!TOKEN_RE.test(token)) return 'invalid';
    const rec = await this.store.consoleTokens.get(sha256Hex(token));
    return this.stateOf(rec, zone);
  }

  /** `known`: the token's resource when the caller already read it (null: it does not exist). */
  private async stateOf(rec: ConsoleTokenRecord | undefined, zone?: string, known?: ResourceRecord | null): Promise<TokenState> {
    if (!rec || (zone !== undefined && rec.zone !== zone)) return 'invalid';
    if (rec.revokedAt !== null) return 'revoked';
    if (rec.redeemedAt !== null) return 'used';
    if (rec.expiresAt <= this.clock.now()) return 'expired';
    const resource = known !== undefined ? known : await this.store.inventory.getResourceById(rec.resourceId);
    if (!resource || resource.endpointGeneration !== rec.endpointGeneration || !resource.endpoint) return 'revoked';
    return 'valid';
  }

  /**
   * Redeems a token presented at the upgrade of `/vnc/{zone}/websockify`. A token for another zone is
   * refused without being consumed. On success the token can never be used again.
   */
  async redeem(token: string, zone: string): Promise<RedeemResult> {
    const result = await this.redeemOnce(token, zone);
    if (result.ok) this.events.redeemed(result.grant.resource.kind, result.grant.token.purpose);
    else this.events.refused(result.state);
    return result;
  }

  private async redeemOnce(token: string, zone: string): Promise<RedeemResult> {
    if (!TOKEN_RE.test(token)) return { ok: false, state: 'invalid' };
    const hash = sha256Hex(token);
    const before = await this.store.consoleTokens.get(hash);
    if (!before || before.zone !== zone) return { ok: false, state: 'invalid' };
    const rec = await this.store.consoleTokens.redeem(hash, this.clock.now());
    if (!rec) {
      const state = await this.stateOf(await this.store.consoleTokens.get(hash), zone);
      return { ok: false, state: state === 'valid' ? 'used' : state };
    }
    let resource: ResourceRecord | undefined;
    let holder: string | null | false;
    try {
      resource = await this.store.inventory.getResourceById(rec.resourceId);
      if (!resource || !resource.endpoint || resource.endpointGeneration !== rec.endpointGeneration || resource.projectId !== rec.projectId) {
        return { ok: false, state: 'revoked' };
      }
      // The user behind the link may have been deleted, disabled or demoted since it was minted.
      holder = await this.holderOf(rec, resource);
    } catch (err) {
      if (isStoreUnavailable(err)) await this.release(rec);
      throw err;
    }
    if (holder === false) return { ok: false, state: 'revoked' };
    const ep = resource.endpoint;
    const o = ep.options ?? {};
    const policy: ConsolePolicy = {
      clipboard: { direction: o.clipboard ?? 'both', ...(o.clipboardMaxBytes !== undefined ? { maxBytes: o.clipboardMaxBytes } : {}) },
      sessionMode: o.sessionMode ?? 'shared',
    };
    return { ok: true, grant: { token: rec, resource, target: { host: ep.host, port: ep.port, credential: this.credentialOf(resource) }, policy, holderUserId: holder } };
  }

  /**
   * Gives back a token this node redeemed (`token` as `redeem` returned it) for an upgrade that failed
   * before its 101 because the database went away. Never throws: when the database does not answer,
   * the release is kept and retried every second until it is written or the token has expired.
   */
  async release(token: ConsoleTokenRecord): Promise<void> {
    if (token.redeemedAt === null) return;
    try {
      await this.store.consoleTokens.unredeem(token.tokenHash, token.redeemedAt);
      this.#unreleased.delete(token.tokenHash);
    } catch {
      if (this.#unreleased.size >= MAX_PENDING_RELEASES) {
        const oldest = this.#unreleased.keys().next();
        if (!oldest.done) this.#unreleased.delete(oldest.value);
      }
      this.#unreleased.set(token.tokenHash, token);
      if (this.#releaseTimer === undefined) this.#releaseTimer = setTimeout(() => { this.#releaseTimer = undefined; void this.#retryReleases(); }, RELEASE_RETRY_MS).unref();
    }
  }

  /** Redemptions still to undo (the database was away when they failed). */
  pendingReleases(): number {
    return this.#unreleased.size;
  }

  async #retryReleases(): Promise<void> {
    const now = this.clock.now();
    for (const t of [...this.#unreleased.values()]) {
      if (t.expiresAt <= now) { this.#unreleased.delete(t.tokenHash); continue; }
      await this.release(t);
      if (this.#unreleased.has(t.tokenHash)) return; // still away: the failed release scheduled the next round
    }
  }

  /**
   * May a live session opened with `token` go on, as far as its user is concerned? (A user was
   * deleted, disabled or demoted: SessionControl.endUser asks this of each of their live sessions.)
   */
  async mayKeep(token: ConsoleTokenRecord): Promise<boolean> {
    const resource = await this.store.inventory.getResourceById(token.resourceId);
    if (!resource) return true; // a deleted machine ends its sessions itself (resourcesChanged)
    return (await this.holderOf(token, resource)) !== false;
  }

  /** The user on whose authority a token opens `resource` (null: none), or false when that user may no longer. */
  private async holderOf(rec: ConsoleTokenRecord, resource: ResourceRecord): Promise<string | null | false> {
    if (rec.purpose === 'console') {
      if (rec.userId === null) return null;
      const p = await this.principalOf(rec.userId);
      if (!p) return false;
      const project = await this.store.identity.getProject(resource.projectId);
      if (!project) return false;
      const sameDomain = project.domainId === p.domainId;
      return (sameDomain && mayOperate(p, project.id)) || (p.domainAdmin && this.isOperator(p)) ? rec.userId : false;
    }
    // A helper: the share space's creator (assistance.ts `admit` checks the space itself).
    const helper = await this.store.assistance.findHelperByToken(rec.tokenHash);
    const space = helper && (await this.store.assistance.getSpace(helper.spaceId));
    const creator = space?.createdByUserId ?? null;
    if (creator === null) return null;
    const p = await this.principalOf(creator);
    const project = p && (await this.store.identity.getProject(resource.projectId));
    if (!p || !project || project.domainId !== p.domainId) return false;
    return mayOperate(p, project.id) || isAssignedUser(resource.attributes, p.userName) ? creator : false;
  }

  /** The user as a principal (roles, domain administrator flag), or undefined when gone or disabled. */
  private async principalOf(userId: string): Promise<Principal | undefined> {
    const user = await this.store.identity.getUser(userId);
    const domain = user && !user.disabled ? await this.store.identity.getDomain(user.domainId) : undefined;
    if (!user || !domain) return undefined;
    return principalFrom(user, domain, await this.store.identity.rolesOf(user.id), null, 'token');
  }

  /** The VNC credential of a resource's endpoint, secrets opened (held only for the handshake). */
  credentialOf(resource: ResourceRecord): BackendCredential {
    const ep = resource.endpoint;
    if (!ep || ep.security === 'none') return { type: 'none' };
    const utf8 = (s: string) => new TextEncoder().encode(s);
    // Sealed bound to this endpoint's target: a value made for another target does not open (throws).
    const pw = openEndpointSecret(this.secrets, 'password', resource.id, ep)?.plain;
    if (ep.security === 'vncauth') return { type: 'vncauth', password: utf8(pw ?? '') };
    const o = ep.options ?? {};
    const key = openEndpointSecret(this.secrets, 'tlsKey', resource.id, ep)?.plain;
    return {
      type: 'vencrypt',
      ...(pw !== undefined ? { password: utf8(pw) } : {}),
      ...(o.username !== undefined ? { username: utf8(o.username) } : {}),
      tls: {
        ...(ep.tlsCa ? { ca: ep.tlsCa } : {}),
        ...(ep.tlsCert && key ? { cert: ep.tlsCert, key } : {}),
        ...(o.tlsServername ? { servername: o.tlsServername } : {}),
      },
      ...(o.tlsSubtypes ? { subtypes: o.tlsSubtypes.map((s) => VENCRYPT_SUBTYPE_NUMBERS[s]) } : {}),
      ...(o.allowAnonymousTls ? { allowAnonymous: true } : {}),
    };
  }

  /**
   * Revokes the unredeemed console links a user minted where they may no longer open consoles (the
   * user was deleted, disabled or demoted); returns how many. Helper links are refused at redemption
   * instead (their share space's creator is checked there).
   */
  async revokeUser(userId: string): Promise<number> {
    const now = this.clock.now();
    const p = await this.principalOf(userId);
    if (!p) return this.store.consoleTokens.revokeForUser(userId, now);
    if (this.isOperator(p)) return 0;
    const keep = p.domainAdmin
      ? (await this.store.identity.listProjects(p.domainId)).map((x) => x.id)
      : [...p.roles].filter(([projectId]) => mayOperate(p, projectId)).map(([projectId]) => projectId);
    return this.store.consoleTokens.revokeForUser(userId, now, keep);
  }

  /** Revokes every unredeemed token of a resource (on change or delete). */
  async revokeResource(resourceId: string): Promise<number> {
    return this.store.consoleTokens.revokeForResource(resourceId, this.clock.now());
  }
}

export function notFoundMessage(kind: ResourceKind, id: string): string {
  switch (kind) {
    case 'cloudserver': return `Instance[${id}] could not be found.`;
    case 'physicalserver': return `Physical servers ID not found: [${id}]`;
    case 'desktop': return `The desktop ${id} does not exist.`;
  }
}

function notReadyMessage(kind: ResourceKind, id: string, why: ConsoleRefusal): string {
  const what = consoleRefusalText(why);
  switch (kind) {
    case 'cloudserver': return `Instance[${id}] ${what}.`;
    case 'physicalserver': return `Physical servers state is not ready: [${id}]`;
    case 'desktop': return `The desktop ${id} ${what}.`;
  }
}
