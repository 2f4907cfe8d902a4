/**
 * Remote assistance: a share space in which helpers join a user's desktop with an invitation code and
 * a password (Workspace Create/Show/CancelRemoteAssistance, reference E.6 and seeds/004).
 *
 * Lifecycle (compare-and-set transitions in the store, so any node may drive it):
 *
 *   WAIT_USER_CONFIRM ──accept──► WAIT_USER_ACCESS ──first helper joins──► OPEN
 *          │                             │                                   │
 *          └──decline / cancel / close / expiry (any active state) ──────────┴──► CLOSE
 *
 * - Consent: nothing can be joined before every assigned user of the desktop has agreed, on their
 *   console page (banner) or through the API (each consent is a row in the store: concurrent answers
 *   on several nodes all count, and the last one moves the space on). A request by an assigned user
 *   (ENDUSER_INITIATE) is that user's consent, and only theirs: on a desktop with one assigned user it
 *   starts at WAIT_USER_ACCESS; on one shared by several (desktop_type SHARED, or several users
 *   assigned) it waits in WAIT_USER_CONFIRM for the others, exactly like an administrator's request
 *   (ADMIN_INITIATE), which waits for all of them. Why all: the console is the one screen they share,
 *   so a helper sees whatever any of them has on it; one user cannot agree for another, and any one of
 *   them can decline (closing the request). The set is the desktop's assigned users when each answer
 *   is counted; a user assigned after the space was accepted is not asked.
 * - Who may join (security #7). The join page has no sign-in: the password is the helper's capability,
 *   so the rule rests on who can get it. Creating a space needs the right to open the desktop's console,
 *   and the password is shown (API GET) only to callers with that right and only while the space is
 *   active. So whoever obtains it from the gateway could already watch the desktop through their own
 *   console: joining anonymously gives them nothing more, and a viewer (even one assigned to the
 *   desktop) never gets it. Consent protects the desktop's users from third parties: the person who
 *   consents is never the watcher. A join that carries IAM credentials names its helper, and is refused
 *   (403) when that user is on the desktop's side: the user who asked for an ENDUSER_INITIATE space, or
 *   any assigned user of the desktop. An ADMIN_INITIATE space's initiator (the helpdesk) may join: the
 *   consent came from the desktop's users, which is the point of the request.
 * - One active space per desktop (the store enforces it across nodes). A space closes as `expired`
 *   `ttl_seconds` after its creation, whatever its state.
 * - Join: code + password on the join page. Attempts are counted in the store, per space and per
 *   source address, before the password is compared (so parallel guesses count too); at
 *   `join_max_failures` the key is locked for `join_lockout_seconds`. The password is sealed (the API
 *   shows it again) and compared in constant time. A join mints a single-use `assist-viewer` console
 *   token: every helper starts view-only; the desktop user grants or takes back control per helper,
 *   applied live to the helper's relay (SessionControl.setViewOnly), and can remove a helper: that
 *   disconnects it and gives the space a new password (security #8: the removed helper knows the old
 *   one), shown where the password is shown (API GET); helpers still connected stay.
 * - Closing disconnects every helper with `assistance_ended` (close-codes.ts); helpers' relays force
 *   the RFB shared flag, so a helper never disconnects the user.
 * - The database is the truth: actions apply at once where the session is reachable, and every node's
 *   `tick` brings its own helper sessions in line with it (mode, removal, closed or expired spaces).
 *
 * Every step is an audit event (`assistance:*`) in the desktop's trail, except a join refused before
 * the password matched (wrong code or password, locked): that is an unauthenticated refusal, aggregated
 * per source address and code (audit.ts `recordRefusal`, security #6) with nothing the client chose in
 * it. Pure logic over the store port; no I/O of its own.
 */
import { randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import { CloseCode, CloseReason } from '../close-codes.js';
import { ApiError } from '../errors.js';
import type {
  AssistHelperRecord, AssistHelperState, AssistInitiator, AssistPageRecord, AuditEvent, ConsoleSessionRecord, ResourceRecord,
  ShareSpaceCloseReason, ShareSpaceRecord, ShareSpaceStatus, Store,
} from '../store/types.js';
import type { AuditService } from './audit.js';
import type { Clock } from './clock.js';
import type { ConsoleGrant, ConsoleService } from './consoles.js';
import { consoleRefusal, consoleRefusalText } from './liveness.js';
import { sha256Hex } from './passwords.js';
import type { SecretBox } from './secrets.js';
import type { SessionControl } from './session-control.js';
import { PAGE_KEY_RE } from './assist-page-key.js';

export const ACTIVE_STATUSES: readonly ShareSpaceStatus[] = ['WAIT_USER_CONFIRM', 'WAIT_USER_ACCESS', 'OPEN'];
export const INVITATION_CODE_RE = /^[A-Z0-9]{8}$/;
const CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** No 0/O, 1/l/I: the password is read out over the phone. 12 of 56 characters ≈ 70 bits. */
const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
export const PASSWORD_LENGTH = 12;
export const MAX_HELPER_NAME = 64;
const MAX_PASSWORD_INPUT = 128;
/** How often the pages poll while a share space is active (the page is told; it never guesses). */
export const PAGE_POLL_MS = 1500;
/** How often the desktop user's page polls while nothing is asked of it (every desktop user's console page does). */
export const PAGE_IDLE_POLL_MS = 5000;
/** How often each node runs `tick` (expiry, bringing its helper sessions in line). */
export const ASSISTANCE_TICK_MS = 2000;
/** Closed spaces stay readable (GET shows CLOSE and why) this long, then are purged. */
export const CLOSED_RETENTION_MS = 7 * 86_400_000;
const PURGE_EVERY_TICKS = 150;

export type AssistAction = 'accept' | 'decline' | 'close';
export type PageAction = AssistAction | 'grant_control' | 'revoke_control' | 'remove_helper';
export const PAGE_ACTIONS: readonly PageAction[] = ['accept', 'decline', 'close', 'grant_control', 'revoke_control', 'remove_helper'];

export interface AssistanceOptions {
  ttlSeconds: number;
  /** Base URLs of the join page's two links (no trailing slash). */
  privateShareUrl: string;
  internetShareUrl: string;
  maxJoinFailures: number;
  lockoutSeconds: number;
  /** Longest console session: page bindings older than this (plus a margin) belong to no live session. */
  maxSessionSeconds: number;
}

/** The IAM user whose credentials a join request carried (routes/assistance.ts authenticated them). */
export interface Joiner { userId: string; userName: string; domainId: string }

/** Who acts, for the audit trail. */
export interface Actor {
  userId: string | null;
  userName: string | null;
  sourceIp: string | null;
  userAgent: string | null;
  requestId?: string | null;
}

/** This node's live helper sessions, for `tick` (the upgrade handler implements it). */
export interface LocalHelperSessions {
  list(): { sessionId: string; viewOnly: boolean }[];
  setViewOnly(sessionId: string, viewOnly: boolean): void;
  close(sessionId: string, code: number, reason: string): void;
}

/** The seed's GET body, field for field (reference E.6). */
export interface ShareSpaceView {
  share_space_id: string;
  invitation_code: string;
  share_space_name: string;
  share_space_passwd: string;
  private_share_link: string;
  internet_share_link: string;
  create_time: string;
  status: ShareSpaceStatus;
  failed_reason: string | null;
}

/** CreateRemoteAssistanceResponse (GO SDK model_create_remote_assistance_response.go). */
export interface CreatedView { share_space_id: string; status: ShareSpaceStatus; desktop_id: string; initiator_type: AssistInitiator }

export interface HelperView { id: string; name: string; since: string; control: boolean }

export type PageState =
  | { role: 'user'; poll_ms: number; assistance: null | {
    share_space_id: string; status: ShareSpaceStatus; initiator_type: AssistInitiator; requested_by: string | null;
    /** This page's user has agreed; `waiting_for`: the assigned users who have not (while WAIT_USER_CONFIRM). */
    consented: boolean; waiting_for: string[];
    create_time: string; expire_time: string; helpers: HelperView[];
  } }
  | { role: 'helper'; poll_ms: number | null; status: ShareSpaceStatus; helper: { id: string; name: string; control: boolean; state: AssistHelperState } }
  | { role: 'none'; poll_ms: null };

/** `yyyy-MM-dd'T'HH:mm:ss'Z'` (the API's create_time). */
export function apiTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function randomString(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export function newInvitationCode(): string {
  return randomString(CODE_ALPHABET, 8);
}

export function newSpacePassword(): string {
  return randomString(PASSWORD_ALPHABET, PASSWORD_LENGTH);
}

/** Constant-time comparison (of fixed-length digests, so the length does not leak either). */
export function passwordsMatch(given: string, expected: string): boolean {
  return timingSafeEqual(Buffer.from(sha256Hex(given), 'hex'), Buffer.from(sha256Hex(expected), 'hex'));
}

/** The desktop's assigned users' names (user_name, user_list, attach_user_infos of type USER), each once. */
export function assignedUsers(attrs: Record<string, unknown>): string[] {
  const out = new Set<string>();
  if (typeof attrs.user_name === 'string') out.add(attrs.user_name);
  if (Array.isArray(attrs.user_list)) for (const u of attrs.user_list) if (typeof u === 'string') out.add(u);
  if (Array.isArray(attrs.attach_user_infos)) {
    for (const u of attrs.attach_user_infos) {
      if (typeof u !== 'object' || u === null) continue;
      const r = u as Record<string, unknown>;
      if (typeof r.user_name === 'string' && (r.type ?? 'USER') === 'USER') out.add(r.user_name);
    }
  }
  return [...out];
}

/** Is `userName` an assigned user of the desktop (DesktopDetailInfo user_name, user_list, attach_user_infos of type USER)? */
export function isAssignedUser(attrs: Record<string, unknown>, userName: string): boolean {
  if (attrs.user_name === userName) return true;
  if (Array.isArray(attrs.user_list) && attrs.user_list.includes(userName)) return true;
  return Array.isArray(attrs.attach_user_infos) && attrs.attach_user_infos.some((u) =>
    typeof u === 'object' && u !== null && (u as Record<string, unknown>).user_name === userName && ((u as Record<string, unknown>).type ?? 'USER') === 'USER');
}

/** A helper's display name: control characters and extra spaces removed, at most MAX_HELPER_NAME characters. */
export function cleanHelperName(raw: unknown): string {
  if (typeof raw !== 'string') return 'Helper';
  // eslint-disable-next-line no-control-regex
  const name = raw.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/g, ' ').replace(/\s+/g, ' ').trim();
  return [...name].slice(0, MAX_HELPER_NAME).join('') || 'Helper';
}

const isActive = (s: ShareSpaceRecord) => s.status !== 'CLOSE';

function failedReasonFor(reason: ShareSpaceCloseReason, before: ShareSpaceStatus): string | null {
  if (reason === 'declined') return 'The desktop user declined the remote assistance request.';
  if (reason !== 'expired') return null;
  if (before === 'WAIT_USER_CONFIRM') return 'The remote assistance request expired before the desktop user accepted it.';
  if (before === 'WAIT_USER_ACCESS') return 'The remote assistance request expired before a helper joined.';
  return 'The remote assistance session reached its time limit.';
}

const ph = (kind: ConstructorParameters<typeof ApiError>[0], status: number, message: string, headers?: Record<string, string>) =>
  new ApiError(kind, message, { status, code: `PH.0${status}`, ...(headers ? { headers } : {}) });

export interface AssistanceDeps {
  store: Store;
  secrets: SecretBox;
  clock: Clock;
  audit: AuditService;
  consoles: ConsoleService;
  /** Live session control; resolved when used (it is built after the upgrade handler that needs this service). */
  control: () => SessionControl;
  log?: (obj: object, msg: string) => void;
}

export class AssistanceService {
  private ticks = 0;

  constructor(private readonly deps: AssistanceDeps, readonly opts: AssistanceOptions) {}

  private get store() { return this.deps.store; }
  private now(): number { return this.deps.clock.now(); }
  private aad(id: string): string { return `share-space:${id}`; }

  // -------------------------------------------------------------------------------------------
  // The Workspace API (routes/assistance.ts has authorized the caller and found the desktop)

  /** CreateRemoteAssistance. Throws not_ready (400) when the desktop's console cannot be used, conflict (400) when it already has an active space. */
  async create(desktop: ResourceRecord, initiator: AssistInitiator, actor: Actor): Promise<CreatedView> {
    const refusal = consoleRefusal(desktop, await this.store.probes.get(desktop.id));
    if (refusal) {
      throw new ApiError('not_ready', `The desktop ${desktop.id} ${consoleRefusalText(refusal)}; remote assistance needs its console.`);
    }
    await this.current(desktop.id); // closes an expired space first, so it does not block the new one
    const now = this.now();
    const id = randomUUID().replace(/-/g, '');
    let code = newInvitationCode();
    for (let i = 0; i < 5 && (await this.store.assistance.findActiveByCode(code)); i++) code = newInvitationCode();
    const computerName = typeof desktop.attributes.computer_name === 'string' ? desktop.attributes.computer_name : desktop.name;
    const consenter = initiator === 'ENDUSER_INITIATE' ? actor.userName : null;
    const assigned = assignedUsers(desktop.attributes);
    // The requester's consent is theirs only: straight to WAIT_USER_ACCESS only when nobody else uses the desktop.
    const consented = consenter !== null && assigned.every((u) => u === consenter);
    const space: ShareSpaceRecord = {
      id, projectId: desktop.projectId, desktopId: desktop.id, name: `Remote assistance for ${computerName}`.slice(0, 128), invitationCode: code,
      passwordSealed: this.deps.secrets.seal(newSpacePassword(), this.aad(id)),
      status: consented ? 'WAIT_USER_ACCESS' : 'WAIT_USER_CONFIRM', initiatorType: initiator,
      createdByUserId: actor.userId, createdByName: actor.userName, createdAt: now, expiresAt: now + this.opts.ttlSeconds * 1000,
      acceptedAt: consented ? now : null, openedAt: null, closedAt: null, closeReason: null, failedReason: null,
    };
    if (!(await this.store.assistance.insertSpace(space))) {
      throw new ApiError('conflict', `The desktop ${desktop.id} already has a remote assistance in progress; cancel it first.`, { status: 400 });
    }
    this.record('assistance:create', space, actor, 'success', `share_space=${id} initiator=${initiator}`);
    let created = space;
    if (consenter !== null) {
      await this.store.assistance.addConsent(id, consenter, now);
      if (!consented) created = await this.settleConsent(space, assigned); // the others may have answered already
      this.record('assistance:accept', created, actor, 'success', `share_space=${id} by=initiator${created.status === 'WAIT_USER_CONFIRM' ? ' waiting=others' : ''}`);
    }
    return { share_space_id: id, status: created.status, desktop_id: desktop.id, initiator_type: initiator };
  }

  /**
   * Moves a space from WAIT_USER_CONFIRM on once every one of `assigned` has agreed. Called after each
   * consent is stored, so that of concurrent answers the last one sees them all. The space as it now is.
   */
  private async settleConsent(s: ShareSpaceRecord, assigned: readonly string[]): Promise<ShareSpaceRecord> {
    const consents = await this.store.assistance.listConsents(s.id);
    if (assigned.every((u) => consents.includes(u))) {
      const accepted = await this.store.assistance.transition(s.id, ['WAIT_USER_CONFIRM'], { status: 'WAIT_USER_ACCESS', acceptedAt: this.now() });
      if (accepted) return accepted;
    }
    return (await this.store.assistance.getSpace(s.id)) ?? s;
  }

  /** The assigned users who have not agreed to `s` yet (none once it is past WAIT_USER_CONFIRM). */
  private async waitingFor(s: ShareSpaceRecord): Promise<{ assigned: string[]; consents: string[]; waiting: string[] }> {
    const desktop = await this.store.inventory.getResource(s.projectId, 'desktop', s.desktopId);
    const assigned = desktop ? assignedUsers(desktop.attributes) : [];
    const consents = await this.store.assistance.listConsents(s.id);
    return { assigned, consents, waiting: s.status === 'WAIT_USER_CONFIRM' ? assigned.filter((u) => !consents.includes(u)) : [] };
  }

  /**
   * The desktop's active space, else its newest closed one (an active one past its time is closed
   * first) — of this desktop only: ids are derived from names, so a desktop deleted and created again
   * has the same id, and a space made before the desktop was (created for the previous one, with its
   * password) is never shown; still active, it is closed.
   */
  async current(desktopId: string): Promise<ShareSpaceRecord | undefined> {
    const s = await this.store.assistance.currentForDesktop(desktopId);
    if (!s) return undefined;
    const desktop = await this.store.inventory.getResourceById(desktopId);
    if (!desktop || s.createdAt < desktop.createdAt) {
      if (isActive(s)) await this.close(s, 'cancelled', null);
      return undefined;
    }
    return this.fresh(s);
  }

  /** After a desktop was deleted: its active space closes, and its helpers are disconnected. */
  async desktopDeleted(desktopId: string): Promise<void> {
    const s = await this.store.assistance.currentForDesktop(desktopId);
    if (s && isActive(s)) await this.close(s, 'cancelled', null);
  }

  /**
   * ShowDesktopRemoteAssistanceInfo's body. The password only when `opts.password` (the caller may open
   * the desktop's console: routes/assistance.ts) and the space is active; else "" (the field stays a
   * string, as the SDKs' models expect): a closed space's password is nobody's business.
   */
  view(s: ShareSpaceRecord, opts: { password: boolean }): ShareSpaceView {
    const link = (base: string) => `${base}/assist/join?code=${s.invitationCode}`;
    return {
      share_space_id: s.id,
      invitation_code: s.invitationCode,
      share_space_name: s.name,
      share_space_passwd: opts.password && isActive(s) ? this.deps.secrets.open(s.passwordSealed, this.aad(s.id)) : '',
      private_share_link: link(this.opts.privateShareUrl),
      internet_share_link: link(this.opts.internetShareUrl),
      create_time: apiTime(s.createdAt),
      status: s.status,
      failed_reason: s.failedReason,
    };
  }

  /** CancelRemoteAssistance: closes the active space (404 when there is none). */
  async cancel(desktopId: string, actor: Actor): Promise<void> {
    const s = await this.current(desktopId);
    if (!s || !isActive(s)) throw new ApiError('not_found', `The desktop ${desktopId} has no remote assistance in progress.`);
    await this.close(s, 'cancelled', actor);
  }

  /** The desktop user's answer (API or page): accept / decline a request, or close the space. Returns the space after it. */
  async respond(desktopId: string, action: AssistAction, actor: Actor, codes: 'workspace' | 'page' = 'workspace'): Promise<ShareSpaceRecord> {
    const s = await this.current(desktopId);
    const conflict = (m: string) => (codes === 'page' ? ph('conflict', 409, m) : new ApiError('conflict', m, { status: 400 }));
    if (!s || !isActive(s)) {
      throw codes === 'page' ? ph('not_found', 404, 'There is no remote assistance in progress.') : new ApiError('not_found', `The desktop ${desktopId} has no remote assistance in progress.`);
    }
    if (action === 'close') return (await this.close(s, 'ended_by_user', actor)) ?? s;
    if (s.status !== 'WAIT_USER_CONFIRM') throw conflict(`The remote assistance is ${s.status}, not waiting for the desktop user's answer.`);
    if (action === 'decline') {
      const closed = await this.close(s, 'declined', actor);
      if (!closed) throw conflict('The remote assistance changed meanwhile; try again.');
      return closed;
    }
    // Accept: this user's consent; the space moves on once every assigned user has given theirs.
    const { assigned, waiting } = await this.waitingFor(s);
    if (actor.userName === null || !assigned.includes(actor.userName)) throw conflict('Only a user of this desktop can accept remote assistance on it.');
    if (!(await this.store.assistance.addConsent(s.id, actor.userName, this.now()))) {
      throw conflict(`You have already accepted; the remote assistance waits for the desktop's other users: ${waiting.join(', ')}.`);
    }
    const after = await this.settleConsent(s, assigned);
    if (after.status === 'CLOSE') throw conflict('The remote assistance changed meanwhile; try again.');
    const still = after.status === 'WAIT_USER_CONFIRM' ? ` waiting=${waiting.filter((u) => u !== actor.userName).length}` : '';
    this.record('assistance:accept', after, actor, 'success', `share_space=${s.id}${still}`);
    return after;
  }

  // -------------------------------------------------------------------------------------------
  // Join (the join page; no IAM credentials: code + password, locked out per space and per address)

  /**
   * `joiner`: the IAM user the join request carried credentials of, if any (helpers need none). Such a
   * join is refused when that user is on the desktop's side of the consent (see the module doc).
   */
  async join(input: { code: unknown; password: unknown; name: unknown }, actor: Actor, joiner: Joiner | null = null): Promise<{ consoleUrl: string; helperId: string; shareSpaceId: string }> {
    const code = typeof input.code === 'string' ? input.code.trim().toUpperCase() : '';
    const password = typeof input.password === 'string' ? input.password.trim() : '';
    if (code === '' || password === '' || password.length > MAX_PASSWORD_INPUT || code.length > 32) throw ph('bad_request', 400, 'Enter the invitation code and the password.');
    const name = cleanHelperName(input.name);
    const now = this.now();
    const windowMs = this.opts.lockoutSeconds * 1000;
    const addrKey = `addr:${actor.sourceIp ?? 'unknown'}`;
    await this.refuseIfLocked(addrKey, now, actor, joiner);
    let space = INVITATION_CODE_RE.test(code) ? await this.store.assistance.findActiveByCode(code) : undefined;
    if (space) space = await this.fresh(space);
    if (space && !isActive(space)) space = undefined;
    const spaceKey = space ? `space:${space.id}` : null;
    if (spaceKey) await this.refuseIfLocked(spaceKey, now, actor, joiner);

    // Count the attempt before comparing, so that a burst of parallel guesses is counted too.
    const max = this.opts.maxJoinFailures;
    const a = await this.store.assistance.hitAttempt(addrKey, now, windowMs);
    const b = spaceKey ? await this.store.assistance.hitAttempt(spaceKey, now, windowMs) : undefined;
    if (a.count > max || (b && b.count > max)) {
      if (a.count > max) await this.store.assistance.lockAttempts(addrKey, now + windowMs);
      if (spaceKey && b && b.count > max) await this.store.assistance.lockAttempts(spaceKey, now + windowMs);
      throw this.lockedError(now + windowMs, now, actor, joiner);
    }
    const ok = space !== undefined && passwordsMatch(password, this.deps.secrets.open(space.passwordSealed, this.aad(space.id)));
    if (!ok) {
      if (a.count >= max) await this.store.assistance.lockAttempts(addrKey, now + windowMs);
      if (spaceKey && b && b.count >= max) await this.store.assistance.lockAttempts(spaceKey, now + windowMs);
      const left = Math.max(0, max - Math.max(a.count, b?.count ?? 0));
      this.recordJoinRefusal(actor, joiner, 'wrong_credentials');
      throw new ApiError('unauthorized', left > 0
        ? `The invitation code or password is wrong (${left} ${left === 1 ? 'try' : 'tries'} left before a ${Math.round(windowMs / 60_000)}-minute lock).`
        : `The invitation code or password is wrong. Joining is locked for ${Math.round(windowMs / 60_000)} minutes.`, { code: 'PH.0401' });
    }
    const s = space as ShareSpaceRecord;
    await this.store.assistance.releaseAttempt(spaceKey as string);
    await this.store.assistance.clearAttempts(addrKey);
    if (joiner && (await this.onUsersSide(s, joiner))) {
      this.recordJoinFailure(s, actor, name, 'own_space');
      throw ph('forbidden', 403, 'You asked for or agreed to this remote assistance as the desktop\'s user: you cannot also join it as a helper.');
    }
    if (s.status === 'WAIT_USER_CONFIRM') {
      this.recordJoinFailure(s, actor, name, 'not_accepted');
      throw ph('conflict', 409, 'The desktop user has not accepted the remote assistance yet. Try again once they have.');
    }
    let minted: { url: string; token: string };
    try {
      minted = await this.deps.consoles.mint(s.projectId, 'desktop', s.desktopId, { userId: null, purpose: 'assist-viewer', viewOnly: true });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.recordJoinFailure(s, actor, name, 'desktop_unavailable');
      throw ph('not_ready', 409, 'The desktop cannot be reached right now. Try again later.');
    }
    const helper: AssistHelperRecord = {
      id: randomUUID(), spaceId: s.id, name, sourceIp: actor.sourceIp, tokenHash: sha256Hex(minted.token), sessionId: null, control: false,
      state: 'joining', joinedAt: now, connectedAt: null, leftAt: null,
    };
    await this.store.assistance.insertHelper(helper);
    if (s.status === 'WAIT_USER_ACCESS') await this.store.assistance.transition(s.id, ['WAIT_USER_ACCESS'], { status: 'OPEN', openedAt: now });
    this.record('assistance:join', s, { ...actor, userName: name }, 'success', `share_space=${s.id} helper=${helper.id}`);
    const u = new URL(minted.url);
    // Relative: the helper stays on the origin they joined through (private or internet link).
    return { consoleUrl: `${u.pathname}${u.search}&view_only=1`, helperId: helper.id, shareSpaceId: s.id };
  }

  /** Is `j` the desktop's side of the consent: the user who asked for an ENDUSER_INITIATE space, an assigned user of the desktop, or one who agreed to this space? */
  private async onUsersSide(s: ShareSpaceRecord, j: Joiner): Promise<boolean> {
    if (s.initiatorType === 'ENDUSER_INITIATE' && s.createdByUserId === j.userId) return true;
    const project = await this.store.identity.getProject(s.projectId);
    if (!project || project.domainId !== j.domainId) return false; // user names are per domain
    const { assigned, consents } = await this.waitingFor(s);
    return assigned.includes(j.userName) || consents.includes(j.userName);
  }

  private async refuseIfLocked(key: string, now: number, actor: Actor, joiner: Joiner | null): Promise<void> {
    const rec = await this.store.assistance.getAttempts(key);
    if (rec?.lockedUntil != null && rec.lockedUntil > now) throw this.lockedError(rec.lockedUntil, now, actor, joiner);
  }

  private lockedError(until: number, now: number, actor: Actor, joiner: Joiner | null): ApiError {
    this.recordJoinRefusal(actor, joiner, 'locked');
    const retry = String(Math.max(1, Math.ceil((until - now) / 1000)));
    return ph('rate_limited', 429, `Too many wrong attempts: joining is locked; retry after ${retry} seconds.`, { 'retry-after': retry });
  }

  /**
   * A join refused before the caller showed the password (wrong code or password, locked): an
   * unauthenticated refusal, aggregated like the API's (audit.ts `recordRefusal`: one row per source
   * address and code per window, with a count), so that guessing cannot grow the trail without bound.
   * Nothing the client chose goes in it (helper name, user agent), and it is not the share space's
   * tenant's: the code matched a space or not, the row says neither. Only a helper who signed in is
   * named, in their own domain, as for any refused call of a known identity.
   */
  private recordJoinRefusal(actor: Actor, joiner: Joiner | null, why: 'wrong_credentials' | 'locked'): void {
    this.deps.audit.recordRefusal({
      at: this.now(), requestId: actor.requestId ?? null, actorUserId: joiner?.userId ?? null, actorName: joiner?.userName ?? null, actorAk: null,
      action: 'assistance:join', resourceKind: null, resourceId: null, projectId: null, sourceIp: actor.sourceIp, userAgent: null,
      result: 'failure', code: why, detail: null, domainId: joiner?.domainId ?? null,
    });
  }

  /** A join refused after the password matched (the caller holds the space's capability): the tenant's event. */
  private recordJoinFailure(space: ShareSpaceRecord, actor: Actor, name: string, why: string): void {
    this.record('assistance:join', space, { ...actor, userName: name }, 'failure', `share_space=${space.id}`, why);
  }

  // -------------------------------------------------------------------------------------------
  // The console WebSocket (proxy/upgrade.ts hooks)

  /** Before a redeemed helper token becomes a session: its space must still be active and the helper not removed. */
  async admit(grant: ConsoleGrant): Promise<{ status: number; reason: string; message: string } | null> {
    if (grant.token.purpose !== 'assist-viewer' && grant.token.purpose !== 'assist-control') return null;
    const helper = await this.store.assistance.findHelperByToken(grant.token.tokenHash);
    const space = helper && (await this.store.assistance.getSpace(helper.spaceId));
    const live = space ? await this.fresh(space) : undefined;
    if (!helper || helper.state !== 'joining' || !live || !isActive(live)) {
      return { status: 403, reason: helper?.state === 'removed' ? CloseReason.ASSISTANCE_REMOVED : CloseReason.ASSISTANCE_ENDED, message: 'This remote assistance has ended.' };
    }
    return null;
  }

  /**
   * A session started: a helper is now connected; the page's key (if offered) is bound to the session.
   * Pages of other machines than desktops are bound too, with role `none`, so that the page's one
   * question gets "nothing to show" rather than a 404 in the browser's console.
   */
  async started(grant: ConsoleGrant, session: ConsoleSessionRecord, pageKey: string | null): Promise<void> {
    let role: AssistPageRecord['role'] = 'none';
    let helperId: string | null = null;
    const desktop = grant.resource.kind === 'desktop'; // remote assistance is a Workspace feature
    if (desktop && (grant.token.purpose === 'assist-viewer' || grant.token.purpose === 'assist-control')) {
      const helper = await this.store.assistance.findHelperByToken(grant.token.tokenHash);
      if (helper) {
        // The session id first, whatever the state: were the space closed meanwhile, `tick` finds the session by it and ends it.
        await this.store.assistance.updateHelper(helper.id, { sessionId: session.id });
        await this.store.assistance.updateHelper(helper.id, { state: 'connected', connectedAt: session.startedAt }, ['joining']);
        role = 'helper';
        helperId = helper.id;
      }
    } else if (desktop && grant.token.userId !== null) {
      const user = await this.store.identity.getUser(grant.token.userId);
      const project = await this.store.identity.getProject(grant.resource.projectId);
      if (user && project && user.domainId === project.domainId && isAssignedUser(grant.resource.attributes, user.name)) role = 'user';
    }
    if (pageKey === null || !PAGE_KEY_RE.test(pageKey)) return;
    await this.store.assistance.bindPage({
      keyHash: sha256Hex(pageKey), sessionId: session.id, projectId: session.projectId, resourceId: session.resourceId, role,
      userId: grant.token.userId, helperId, createdAt: session.startedAt,
    });
  }

  /** A session ended: a helper has left; the page binding goes. */
  async ended(grant: ConsoleGrant, session: ConsoleSessionRecord, end: { reason: string }): Promise<void> {
    await this.store.assistance.deletePagesOfSession(session.id);
    if (grant.token.purpose !== 'assist-viewer' && grant.token.purpose !== 'assist-control') return;
    const helper = await this.store.assistance.findHelperByToken(grant.token.tokenHash);
    if (!helper) return;
    const now = this.now();
    const left = await this.store.assistance.updateHelper(helper.id, { state: 'left', leftAt: now }, ['joining', 'connected']);
    const space = await this.store.assistance.getSpace(helper.spaceId);
    if (space && (left || helper.state === 'removed')) {
      this.record('assistance:leave', space, { userId: null, userName: helper.name, sourceIp: helper.sourceIp, userAgent: null }, 'success',
        `share_space=${space.id} helper=${helper.id} close=${end.reason}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // The console pages (authenticated by their page key)

  private async pageOf(pageKey: string | undefined): Promise<{ page: AssistPageRecord; session: ConsoleSessionRecord }> {
    if (typeof pageKey !== 'string' || !PAGE_KEY_RE.test(pageKey)) throw ph('unauthorized', 401, 'This page has no remote-assistance key.');
    const page = await this.store.assistance.getPage(sha256Hex(pageKey));
    if (!page) throw ph('not_found', 404, 'This console page is not known to the gateway.');
    const session = await this.store.sessions.get(page.sessionId);
    if (!session || session.endedAt !== null) throw ph('not_found', 410, 'This console session has ended.');
    return { page, session };
  }

  /** What the page shows: for the desktop user the request and the helpers, for a helper whether it has control. */
  async pageState(pageKey: string | undefined): Promise<PageState> {
    const { page } = await this.pageOf(pageKey);
    if (page.role === 'helper' && page.helperId) {
      const helper = await this.store.assistance.getHelper(page.helperId);
      const space = helper && (await this.store.assistance.getSpace(helper.spaceId));
      if (!helper || !space) return { role: 'none', poll_ms: null };
      const s = await this.fresh(space);
      return {
        role: 'helper', poll_ms: isActive(s) ? PAGE_POLL_MS : null, status: s.status,
        helper: { id: helper.id, name: helper.name, control: helper.control && isActive(s), state: helper.state },
      };
    }
    if (page.role !== 'user') return { role: 'none', poll_ms: null };
    const s = await this.current(page.resourceId);
    if (!s || !isActive(s)) return { role: 'user', poll_ms: PAGE_IDLE_POLL_MS, assistance: null };
    const helpers = await this.store.assistance.listHelpers(s.id, ['connected']);
    const { consents, waiting } = await this.waitingFor(s);
    const me = page.userId ? await this.store.identity.getUser(page.userId) : undefined;
    return {
      role: 'user', poll_ms: PAGE_POLL_MS,
      assistance: {
        share_space_id: s.id, status: s.status, initiator_type: s.initiatorType, requested_by: s.createdByName,
        consented: me !== undefined && consents.includes(me.name), waiting_for: waiting,
        create_time: apiTime(s.createdAt), expire_time: apiTime(s.expiresAt),
        helpers: helpers.map((h) => ({ id: h.id, name: h.name, since: apiTime(h.connectedAt ?? h.joinedAt), control: h.control })),
      },
    };
  }

  /** The desktop user's actions from their console page. */
  async pageAction(pageKey: string | undefined, body: { action?: unknown; helper_id?: unknown }, meta: { sourceIp: string | null; userAgent: string | null; requestId: string }): Promise<PageState> {
    const { page } = await this.pageOf(pageKey);
    if (page.role !== 'user') throw ph('forbidden', 403, 'Only the desktop\'s user can answer remote assistance.');
    const action = body.action;
    if (typeof action !== 'string' || !(PAGE_ACTIONS as readonly string[]).includes(action)) throw ph('bad_request', 400, `action must be one of ${PAGE_ACTIONS.join(', ')}.`);
    const user = page.userId ? await this.store.identity.getUser(page.userId) : undefined;
    const actor: Actor = { userId: page.userId, userName: user?.name ?? null, sourceIp: meta.sourceIp, userAgent: meta.userAgent, requestId: meta.requestId };
    if (action === 'accept' || action === 'decline' || action === 'close') {
      await this.respond(page.resourceId, action, actor, 'page');
      return this.pageState(pageKey);
    }
    const s = await this.current(page.resourceId);
    if (!s || !isActive(s)) throw ph('conflict', 409, 'There is no remote assistance in progress.');
    const helper = typeof body.helper_id === 'string' ? await this.store.assistance.getHelper(body.helper_id) : undefined;
    if (!helper || helper.spaceId !== s.id || (helper.state !== 'connected' && helper.state !== 'joining')) throw ph('not_found', 404, 'No such helper in this remote assistance.');
    if (action === 'remove_helper') await this.removeHelper(s, helper, actor);
    else await this.setControl(s, helper, action === 'grant_control', actor);
    return this.pageState(pageKey);
  }

  private async setControl(s: ShareSpaceRecord, helper: AssistHelperRecord, control: boolean, actor: Actor): Promise<void> {
    if (helper.state !== 'connected') throw ph('conflict', 409, 'The helper is not connected yet.');
    if (helper.control === control) return;
    const updated = await this.store.assistance.updateHelper(helper.id, { control }, ['connected']);
    if (!updated) throw ph('conflict', 409, 'The helper has left.');
    this.record(control ? 'assistance:control_grant' : 'assistance:control_revoke', s, actor, 'success', `share_space=${s.id} helper=${helper.id}`);
    const session = helper.sessionId ? await this.store.sessions.get(helper.sessionId) : undefined;
    if (session && session.endedAt === null) {
      const outcome = await this.deps.control().setViewOnly(session, !control);
      // Elsewhere: that node's tick applies it from the store within ASSISTANCE_TICK_MS.
      this.deps.log?.({ helperId: helper.id, sessionId: session.id, control, outcome }, 'helper control changed');
    }
  }

  private async removeHelper(s: ShareSpaceRecord, helper: AssistHelperRecord, actor: Actor): Promise<void> {
    const removed = await this.store.assistance.updateHelper(helper.id, { state: 'removed', leftAt: this.now(), control: false }, ['joining', 'connected']);
    if (!removed) return;
    // Security #8: the removed helper still knows the code and password; a new password (before the
    // disconnect, so it cannot rejoin in between) keeps them out. Connected helpers are not affected.
    const rotated = await this.rotatePassword(s.id);
    this.record('assistance:helper_remove', s, actor, 'success', `share_space=${s.id} helper=${helper.id} password=${rotated ? 'changed' : 'unchanged'}`);
    await this.disconnect(helper, CloseCode.ASSISTANCE_REMOVED, CloseReason.ASSISTANCE_REMOVED);
    if (!rotated) throw ph('conflict', 409, 'The helper was removed, but the password could not be changed; end the remote assistance to be sure they cannot rejoin.');
  }

  /**
   * Gives an active space a new password (the invitation code stays; GET shows the new one). A
   * compare-and-set on the sealed value, retried when it changed meanwhile (another removal, or a
   * master-key rotation re-sealing it). False only when it kept changing.
   */
  private async rotatePassword(spaceId: string): Promise<boolean> {
    for (let i = 0; i < 5; i++) {
      const cur = await this.store.assistance.getSpace(spaceId);
      if (!cur || !isActive(cur)) return true; // closed: nothing joins any more
      const next = this.deps.secrets.seal(newSpacePassword(), this.aad(spaceId));
      if (await this.store.sealed.replace('share_space_password', spaceId, cur.passwordSealed, next)) return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Closing, expiry, and each node's tick

  /** Closes an active space (compare-and-set: one caller wins) and disconnects its helpers. The closed record, or undefined when it was closed already. */
  async close(s: ShareSpaceRecord, reason: ShareSpaceCloseReason, actor: Actor | null): Promise<ShareSpaceRecord | undefined> {
    const closed = await this.store.assistance.transition(s.id, ACTIVE_STATUSES, {
      status: 'CLOSE', closedAt: this.now(), closeReason: reason, failedReason: failedReasonFor(reason, s.status),
    });
    if (!closed) return undefined;
    const who = actor ?? { userId: null, userName: null, sourceIp: null, userAgent: null };
    if (reason === 'declined') this.record('assistance:decline', closed, who, 'success', `share_space=${s.id}`);
    this.record('assistance:close', closed, who, 'success', `share_space=${s.id} reason=${reason} was=${s.status}`, reason);
    for (const h of await this.store.assistance.listHelpers(s.id, ['joining', 'connected'])) {
      await this.disconnect(h, CloseCode.ASSISTANCE_ENDED, CloseReason.ASSISTANCE_ENDED).catch((err: unknown) =>
        this.deps.log?.({ err, helperId: h.id }, 'could not disconnect a helper'));
    }
    return closed;
  }

  /** Ends a helper's console (or spends its token when it has not connected yet). */
  private async disconnect(h: AssistHelperRecord, code: number, reason: string): Promise<void> {
    await this.deps.store.consoleTokens.revoke(h.tokenHash, this.now());
    if (h.state === 'joining') await this.store.assistance.updateHelper(h.id, { state: 'left', leftAt: this.now() }, ['joining']);
    const session = h.sessionId ? await this.store.sessions.get(h.sessionId) : undefined;
    if (session && session.endedAt === null) await this.deps.control().endSession(session, code, reason);
  }

  /** An active space past its expiry is closed (by whichever caller gets there first); returns the space as it now is. */
  private async fresh(s: ShareSpaceRecord): Promise<ShareSpaceRecord> {
    if (!isActive(s) || s.expiresAt > this.now()) return s;
    return (await this.close(s, 'expired', null)) ?? (await this.store.assistance.getSpace(s.id)) ?? s;
  }

  /**
   * Runs on every node every ASSISTANCE_TICK_MS: closes expired spaces, and brings this node's helper
   * sessions in line with the store (mode, removed helpers, closed spaces) — which is how a change
   * made on another node reaches a session relayed here. Now and then purges old rows.
   */
  async tick(local: LocalHelperSessions): Promise<void> {
    const now = this.now();
    for (const s of await this.store.assistance.listExpired(now, 100)) await this.close(s, 'expired', null);
    const live = local.list();
    if (live.length > 0) {
      const helpers = new Map((await this.store.assistance.helpersBySessions(live.map((l) => l.sessionId))).map((h) => [h.sessionId, h]));
      const spaces = new Map<string, ShareSpaceRecord | undefined>();
      for (const l of live) {
        const h = helpers.get(l.sessionId);
        if (!h) continue;
        if (!spaces.has(h.spaceId)) spaces.set(h.spaceId, await this.store.assistance.getSpace(h.spaceId));
        const space = spaces.get(h.spaceId);
        if (!space || space.status === 'CLOSE') local.close(l.sessionId, CloseCode.ASSISTANCE_ENDED, CloseReason.ASSISTANCE_ENDED);
        else if (h.state === 'removed') local.close(l.sessionId, CloseCode.ASSISTANCE_REMOVED, CloseReason.ASSISTANCE_REMOVED);
        else if (l.viewOnly === h.control) local.setViewOnly(l.sessionId, !h.control);
      }
    }
    if (this.ticks++ % PURGE_EVERY_TICKS === 0) {
      await this.store.assistance.purgeClosed(now - CLOSED_RETENTION_MS);
      await this.store.assistance.purgePages(now - this.opts.maxSessionSeconds * 1000 - 3_600_000);
    }
  }

  private record(action: string, s: ShareSpaceRecord, actor: Actor, result: AuditEvent['result'], detail: string, code: string | null = null): void {
    this.deps.audit.record({
      at: this.now(), requestId: actor.requestId ?? null, actorUserId: actor.userId, actorName: actor.userName, actorAk: null, action,
      resourceKind: 'desktop', resourceId: s.desktopId, projectId: s.projectId, sourceIp: actor.sourceIp, userAgent: actor.userAgent,
      result, code, detail,
    });
  }
}
