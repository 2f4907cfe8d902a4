/**
 * SessionControl (domain/session-control.ts) implementations.
 *
 * `LocalSessionControl` ends the live sessions this node's upgrade handler relays; a session held by
 * another node is reported `elsewhere`.
 *
 * `ClusterSessionControl` reaches every node through the EventBus (Redis pub/sub, PostgreSQL
 * LISTEN/NOTIFY, or in-process on a single node). Messages:
 *  - `session.end {id, from, to, session_id, code, reason}` → the node `to` ends the session if it
 *    relays it and answers `session.end.ack {id, from, to, outcome: ended|not_live}`; the asker waits
 *    for that answer up to `ackTimeoutMs` and reports `elsewhere` when none came (the node is gone, or
 *    the channel is down).
 *  - `session.mode {id, from, to, session_id, view_only}` → the node `to` switches a remote-assistance
 *    helper's session between view-only and control, and answers `session.mode.ack {outcome:
 *    applied|not_live}` (no answer in time: `elsewhere`).
 *  - `resource.end {from, resource_id, code, reason}` → every other node ends that machine's sessions
 *    (a machine was changed or deleted); no answer: the count returned is this node's.
 *  - `user.end {from, user_id, code, reason}` → every other node checks again each live session held
 *    on that user's authority (a user was deleted, disabled or demoted) and ends those that may no
 *    longer go on; no answer.
 */
import { randomUUID } from 'node:crypto';
import type { ClusterMessage, ConsoleSessionRecord, EventBus } from '../store/types.js';
import type { ControlOutcome, EndOutcome, SessionControl } from '../domain/session-control.js';
import type { LiveSession, UpgradeHandler } from './upgrade.js';

/** Whether a live session may go on as far as its user is concerned (ConsoleService.mayKeep). */
export type HolderCheck = (session: Pick<LiveSession, 'token'>) => Promise<boolean>;

export class LocalSessionControl implements SessionControl {
  constructor(
    private readonly upgrade: Pick<UpgradeHandler, 'closeSessions' | 'live'>, private readonly nodeId: string,
    /** Without one (tests), every session of the user is ended. */
    private readonly mayKeep: HolderCheck = async () => false,
  ) {}

  async endResource(resourceId: string, code: number, reason: string): Promise<number> {
    return this.upgrade.closeSessions(code, reason, { resourceId });
  }

  async endUser(userId: string, code: number, reason: string): Promise<number> {
    let n = 0;
    for (const s of this.upgrade.live()) {
      if (s.holderUserId !== userId) continue;
      // Checked one by one: the user may keep some (a demotion in one project leaves the others).
      if (await this.mayKeep(s)) continue;
      n += this.upgrade.closeSessions(code, reason, { sessionId: s.id });
    }
    return n;
  }

  async endSession(session: ConsoleSessionRecord, code: number, reason: string): Promise<EndOutcome> {
    if (session.nodeId !== this.nodeId) return 'elsewhere';
    return this.upgrade.closeSessions(code, reason, { sessionId: session.id }) > 0 ? 'ended' : 'not_live';
  }

  async setViewOnly(session: ConsoleSessionRecord, viewOnly: boolean): Promise<ControlOutcome> {
    if (session.nodeId !== this.nodeId) return 'elsewhere';
    return setLocalViewOnly(this.upgrade, session.id, viewOnly) ? 'applied' : 'not_live';
  }
}

/** Applies a mode change to one of this node's live sessions; false when it does not relay it. */
function setLocalViewOnly(upgrade: Pick<UpgradeHandler, 'live'>, sessionId: string, viewOnly: boolean): boolean {
  const s = upgrade.live().find((l) => l.id === sessionId);
  s?.setViewOnly(viewOnly);
  return s !== undefined;
}

/** How long `endSession` waits for the holding node's answer. */
export const DEFAULT_ACK_TIMEOUT_MS = 2000;

const ID_RE = /^[A-Za-z0-9._:@-]{1,200}$/;
const isId = (v: unknown): v is string => typeof v === 'string' && ID_RE.test(v);
const isCode = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1000 && v <= 4999;
const isReason = (v: unknown): v is string => typeof v === 'string' && /^[a-z0-9_]{1,64}$/.test(v);

type Logger = (obj: object, msg: string) => void;

export class ClusterSessionControl implements SessionControl {
  /** Requests waiting for their answer, by request id: resolve with the answer's outcome (undefined: none came). */
  private readonly waiting = new Map<string, (outcome: string | undefined) => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly local: LocalSessionControl,
    private readonly upgrade: Pick<UpgradeHandler, 'closeSessions' | 'live'>,
    private readonly bus: EventBus,
    private readonly nodeId: string,
    private readonly opts: { ackTimeoutMs?: number; log?: Logger } = {},
  ) {}

  /** Starts answering other nodes' commands. */
  start(): void {
    this.unsubscribe ??= this.bus.subscribe((msg) => this.onMessage(msg));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const done of [...this.waiting.values()]) done(undefined);
    this.waiting.clear();
  }

  async endResource(resourceId: string, code: number, reason: string): Promise<number> {
    const n = await this.local.endResource(resourceId, code, reason);
    try {
      await this.bus.publish({ type: 'resource.end', from: this.nodeId, resource_id: resourceId, code, reason });
    } catch (err) {
      this.opts.log?.({ err, resourceId }, 'could not tell the other nodes to end a machine\'s consoles');
    }
    return n;
  }

  async endUser(userId: string, code: number, reason: string): Promise<number> {
    const n = await this.local.endUser(userId, code, reason);
    try {
      await this.bus.publish({ type: 'user.end', from: this.nodeId, user_id: userId, code, reason });
    } catch (err) {
      this.opts.log?.({ err, userId }, 'could not tell the other nodes to end a user\'s consoles');
    }
    return n;
  }

  async endSession(session: ConsoleSessionRecord, code: number, reason: string): Promise<EndOutcome> {
    if (session.nodeId === this.nodeId) return this.local.endSession(session, code, reason);
    const outcome = await this.request(session.nodeId, { type: 'session.end', session_id: session.id, code, reason });
    return outcome === 'ended' || outcome === 'not_live' ? outcome : 'elsewhere';
  }

  async setViewOnly(session: ConsoleSessionRecord, viewOnly: boolean): Promise<ControlOutcome> {
    if (session.nodeId === this.nodeId) return this.local.setViewOnly(session, viewOnly);
    const outcome = await this.request(session.nodeId, { type: 'session.mode', session_id: session.id, view_only: viewOnly });
    return outcome === 'applied' || outcome === 'not_live' ? outcome : 'elsewhere';
  }

  /** Sends a command to node `to` and waits for its `<type>.ack` up to the timeout; undefined when none came. */
  private async request(to: string, body: ClusterMessage): Promise<string | undefined> {
    if (!isId(to)) return undefined;
    const id = randomUUID();
    const answer = new Promise<string | undefined>((resolve) => {
      const t = setTimeout(() => { this.waiting.delete(id); resolve(undefined); }, this.opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS);
      this.waiting.set(id, (outcome) => { clearTimeout(t); this.waiting.delete(id); resolve(outcome); });
    });
    try {
      await this.bus.publish({ ...body, id, from: this.nodeId, to });
    } catch (err) {
      this.opts.log?.({ err, type: body.type, node: to }, 'could not send a command to another node');
      this.waiting.get(id)?.(undefined);
    }
    return answer;
  }

  private answer(msg: { id: string; from: string; type: string }, outcome: string): void {
    this.bus.publish({ type: `${msg.type}.ack`, id: msg.id, from: this.nodeId, to: msg.from, outcome })
      .catch((err: unknown) => this.opts.log?.({ err, type: msg.type }, 'could not answer a command from another node'));
  }

  private onMessage(msg: ClusterMessage): void {
    if (msg.type.endsWith('.ack')) {
      if (msg.to !== this.nodeId || !isId(msg.id) || typeof msg.outcome !== 'string') return;
      this.waiting.get(msg.id)?.(msg.outcome);
      return;
    }
    switch (msg.type) {
      case 'session.end': {
        if (msg.to !== this.nodeId || !isId(msg.id) || !isId(msg.from) || !isId(msg.session_id) || !isCode(msg.code) || !isReason(msg.reason)) return;
        const n = this.upgrade.closeSessions(msg.code, msg.reason, { sessionId: msg.session_id });
        this.opts.log?.({ sessionId: msg.session_id, from: msg.from, ended: n > 0 }, 'end-session command from another node');
        this.answer({ id: msg.id, from: msg.from, type: msg.type }, n > 0 ? 'ended' : 'not_live');
        return;
      }
      case 'session.mode': {
        if (msg.to !== this.nodeId || !isId(msg.id) || !isId(msg.from) || !isId(msg.session_id) || typeof msg.view_only !== 'boolean') return;
        const applied = setLocalViewOnly(this.upgrade, msg.session_id, msg.view_only);
        this.opts.log?.({ sessionId: msg.session_id, from: msg.from, viewOnly: msg.view_only, applied }, 'mode-change command from another node');
        this.answer({ id: msg.id, from: msg.from, type: msg.type }, applied ? 'applied' : 'not_live');
        return;
      }
      case 'resource.end': {
        if (msg.from === this.nodeId || !isId(msg.resource_id) || !isCode(msg.code) || !isReason(msg.reason)) return;
        const n = this.upgrade.closeSessions(msg.code, msg.reason, { resourceId: msg.resource_id });
        if (n > 0) this.opts.log?.({ resourceId: msg.resource_id, from: msg.from, sessions: n }, 'machine changed on another node: its live consoles here were ended');
        return;
      }
      case 'user.end': {
        if (msg.from === this.nodeId || !isId(msg.user_id) || !isCode(msg.code) || !isReason(msg.reason)) return;
        const userId = msg.user_id;
        this.local.endUser(userId, msg.code, msg.reason).then(
          (n) => { if (n > 0) this.opts.log?.({ userId, from: msg.from, sessions: n }, 'user changed on another node: their live consoles here were ended'); },
          (err: unknown) => this.opts.log?.({ err, userId }, 'could not check a changed user\'s live consoles'),
        );
        return;
      }
      default:
        return;
    }
  }
}
