/**
 * Ending live console sessions, wherever they are relayed. A session lives on the node that accepted
 * its WebSocket; only that node can close it. Implementations (proxy/session-control.ts): one node's
 * own sessions (`LocalSessionControl`, embedded SQLite), and every node's through the cluster bus
 * (`ClusterSessionControl`: Redis pub/sub or PostgreSQL LISTEN/NOTIFY, delivered to the node named in
 * the session record, which answers); `elsewhere` then means that node did not answer in time.
 */
import type { ConsoleSessionRecord } from '../store/types.js';

export type EndOutcome = 'ended' | 'elsewhere' | 'not_live';

export interface SessionControl {
  /** Ends the live sessions of a machine with `code`/`reason`; resolves with how many were ended. */
  endResource(resourceId: string, code: number, reason: string): Promise<number>;
  /**
   * A user was deleted, disabled or demoted: on every node, each live session held on that user's
   * authority (ConsoleGrant.holderUserId) is checked again as at redemption (ConsoleService.mayKeep),
   * and those that may no longer go on are ended with `code`/`reason`. Resolves with how many this
   * node ended (the others' are not counted).
   */
  endUser(userId: string, code: number, reason: string): Promise<number>;
  /** Ends one session: `ended`, `elsewhere` (held by a node this one cannot reach), or `not_live`. */
  endSession(session: ConsoleSessionRecord, code: number, reason: string): Promise<EndOutcome>;
  /**
   * Switches one live session between view-only and control (a remote-assistance helper's mode):
   * `applied` here, `elsewhere` (sent to, or held by, another node), or `not_live`.
   */
  setViewOnly(session: ConsoleSessionRecord, viewOnly: boolean): Promise<ControlOutcome>;
}

export type ControlOutcome = 'applied' | 'elsewhere' | 'not_live';

/** For gateways without a relay (unit tests): nothing is live. */
export const NO_SESSIONS: SessionControl = {
  endResource: async () => 0,
  endUser: async () => 0,
  endSession: async () => 'not_live',
  setViewOnly: async () => 'not_live',
};
