/**
 * Node liveness. Every gateway node has a row in the store's `nodes` table: it registers at start,
 * writes a heartbeat every `heartbeatMs` (with its draining flag), and removes the row when it stops
 * cleanly. On each heartbeat a node also looks for nodes that stopped heartbeating: any node whose
 * heartbeat is older than `nodeTimeoutMs` is declared lost, and its open session rows are closed with
 * reason `node_lost` — its WebSockets died with it, and no token is redeemable twice anyway (a
 * redeemed token stays redeemed). The declaration is one conditional UPDATE in a transaction, so when
 * several survivors reap at once each lost node is declared once.
 *
 * Bounded time: a node killed at T is declared lost by T + nodeTimeout + heartbeat at the latest.
 *
 * A survivor reaps only after its own heartbeats have succeeded without a gap for a full
 * `nodeTimeoutMs`: right after a database outage every node's heartbeat is stale, and the first node
 * back must not declare the others lost before they had a chance to heartbeat again.
 *
 * A node that was declared lost while alive (it could not reach the database, the others could)
 * learns it from its next heartbeat: it registers again and re-opens the session rows it still
 * relays, so the records match the consoles that are really running.
 *
 * The same runs on SQLite with one node: there it closes the sessions a previous run of the gateway
 * left open.
 */
import type { NodeRecord, Store } from '../store/types.js';
import type { Clock } from './clock.js';

export const NODE_LOST_REASON = 'node_lost';
/** How long the row of a lost node stays visible (admin API) before it is forgotten. */
export const LOST_NODE_RETENTION_MS = 24 * 60 * 60 * 1000;

export interface NodeMembershipOptions {
  nodeId: string;
  /** `host:port`, shown by the admin API. */
  address: string;
  version: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
}

export interface NodeMembershipHooks {
  /** Ids of the sessions this node relays now. */
  liveSessionIds(): readonly string[];
  draining(): boolean;
  /** After every successful heartbeat (e.g. to retry session records that failed during an outage). */
  afterHeartbeat?(): Promise<void>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface NodeView extends NodeRecord {
  /** `up`: heartbeat within the timeout; `stale`: late but not declared yet; `lost`: declared lost. */
  state: 'up' | 'stale' | 'lost';
}

/** What a node list looks like at `now` (the admin API's view). */
export function nodeStates(nodes: readonly NodeRecord[], now: number, nodeTimeoutMs: number): NodeView[] {
  return nodes.map((n) => ({ ...n, state: n.lostAt !== null ? 'lost' : now - n.heartbeatAt > nodeTimeoutMs ? 'stale' : 'up' }));
}

export class NodeMembership {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Since when heartbeats have succeeded without a failure in between (null: the last one failed). */
  private healthySince: number | null = null;
  private stopped = false;

  constructor(private readonly store: Store, private readonly clock: Clock, private readonly o: NodeMembershipOptions, private readonly hooks: NodeMembershipHooks) {
    if (o.nodeTimeoutMs < 2 * o.heartbeatMs) throw new RangeError('nodeTimeoutMs must be at least twice heartbeatMs');
  }

  /** Writes this node's row (at start, before any session). */
  async register(): Promise<void> {
    const now = this.clock.now();
    await this.store.nodes.register({ id: this.o.nodeId, address: this.o.address, version: this.o.version, startedAt: now, heartbeatAt: now });
    this.healthySince = now;
  }

  /** Heartbeats every `heartbeatMs` until stop(). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => { void this.tick(); }, this.o.heartbeatMs);
    this.timer.unref();
  }

  /** One heartbeat (and reap, when due). Never rejects: failures are logged and retried next time. */
  tick(): Promise<void> {
    this.running ??= this.beat().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async beat(): Promise<void> {
    const now = this.clock.now();
    try {
      const outcome = await this.store.nodes.heartbeat(this.o.nodeId, now, this.hooks.draining());
      if (outcome !== 'ok') {
        // Declared lost (or removed) while alive: come back, and re-open the sessions still relayed here.
        const startedAt = now;
        await this.store.nodes.register({ id: this.o.nodeId, address: this.o.address, version: this.o.version, startedAt, heartbeatAt: now });
        const reopened = await this.store.nodes.reopenSessions(this.o.nodeId, this.hooks.liveSessionIds(), NODE_LOST_REASON);
        this.hooks.log.warn({ outcome, reopened }, 'this node had been declared lost by another node; registered again');
        this.healthySince = now;
      }
      this.healthySince ??= now;
    } catch (err) {
      if (this.healthySince !== null) this.hooks.log.warn({ err }, 'node heartbeat failed (database unreachable?)');
      this.healthySince = null;
      return;
    }
    try {
      await this.hooks.afterHeartbeat?.();
    } catch (err) {
      this.hooks.log.warn({ err }, 'after-heartbeat work failed');
    }
    if (now - this.healthySince < this.o.nodeTimeoutMs) return;
    try {
      const res = await this.store.nodes.reapLost({ cutoff: now - this.o.nodeTimeoutMs, now, reason: NODE_LOST_REASON, forgetLostBefore: now - LOST_NODE_RETENTION_MS });
      if (res.nodes.length > 0 || res.sessions > 0) this.hooks.log.warn({ lostNodes: res.nodes, closedSessions: res.sessions }, 'declared lost nodes and closed their sessions');
    } catch (err) {
      this.hooks.log.warn({ err }, 'could not reap lost nodes');
    }
  }

  /** Stops heartbeating (the row stays until `deregister`). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Removes this node's row: a clean stop, after its sessions ended. */
  async deregister(): Promise<void> {
    await this.store.nodes.remove(this.o.nodeId);
  }
}
