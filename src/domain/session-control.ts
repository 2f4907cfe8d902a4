/**
 * Ending live console sessions, wherever they are relayed. A session lives on the node that accepted
 * its WebSocket; only that node can close it. Today the implementation (proxy/session-control.ts)
 * reaches this node's sessions only and says so (`elsewhere`) for another node's; a cross-node
 * implementation (commands through the shared store or Redis pub/sub, delivered to the node named in
 * the session record) can replace it without changing any caller.
 */
import type { ConsoleSessionRecord } from '../store/types.js';

export type EndOutcome = 'ended' | 'elsewhere' | 'not_live';

export interface SessionControl {
  /** Ends the live sessions of a machine with `code`/`reason`; resolves with how many were ended. */
  endResource(resourceId: string, code: number, reason: string): Promise<number>;
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
  endSession: async () => 'not_live',
  setViewOnly: async () => 'not_live',
};
