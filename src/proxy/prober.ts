/**
 * The liveness prober: for every machine with a console endpoint, a TCP connect and a read of the
 * 12-byte RFB ProtocolVersion banner the server sends first (RFC 6143 §7.1.1); then the socket is
 * closed without answering, which every VNC server treats as a client that went away. Results go to
 * the store (`endpoint_probes`), where domain/liveness.ts turns them into statuses and console
 * refusals on every node.
 *
 * Rounds: the first right at start, then every `probe.interval_seconds` minus up to 20 % jitter (so a
 * down backend is seen within one interval), at most `probe.concurrency` probes in flight, each
 * bounded by `probe.timeout_ms`. Several nodes share the work through the store: an endpoint probed
 * by any node in the last half interval is skipped. A failing round is logged and the next one runs.
 */
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { BANNER_LENGTH, checkBanner, dueForProbe, nextProbeRecord, probeDelay, reachabilityOf, type ProbeOutcome, type Reachability } from '../domain/liveness.js';
import type { ProbeRecord, ResourceRecord, Store } from '../store/types.js';

export interface ProberOptions {
  intervalMs: number;
  timeoutMs: number;
  concurrency: number;
  nodeId: string;
  /** Opens the probe's connection (default net.connect): the gateway's refuses backends outside backends.allowed_networks. */
  dial?: (opts: { host: string; port: number }) => Socket;
}

/** One probe: connect, read 12 bytes, close. Never rejects. */
export function probeEndpoint(host: string, port: number, timeoutMs: number, dial: (opts: { host: string; port: number }) => Socket = connect): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    let length = 0;
    const socket: Socket = dial({ host, port });
    const finish = (outcome: ProbeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ reachable: false, failure: 'timeout' }), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= BANNER_LENGTH) finish(checkBanner(Buffer.concat(chunks, length)));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ reachable: false, failure: err.code === 'ECONNREFUSED' ? 'refused' : 'error' }));
    socket.on('close', () => finish({ reachable: false, failure: 'closed' }));
  });
}

export interface ProbeRound { probed: number; up: number; down: number }

/** What the prober reports for metrics (observability/metrics.ts). */
export interface ProberHooks {
  /** One probe done by this node. */
  probed?(reachable: boolean): void;
  /** An endpoint's reachability changed (seen by this node's probe). */
  changed?(r: ResourceRecord, p: ProbeRecord): void;
  /** After each round: every endpoint by its state as the store holds it (probes of all nodes). */
  endpoints?(counts: Record<Reachability, number>): void;
}

export class Prober {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ProbeRound> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: ProberOptions,
    private readonly hooks: ProberHooks = {},
  ) {}

  /** Starts the first round now and schedules the next ones. */
  start(): void {
    if (this.opts.intervalMs <= 0) return;
    this.stopped = false;
    this.tick();
  }

  private tick(): void {
    this.running = this.runOnce().catch((err: unknown) => {
      this.log.warn({ err }, 'console probe round failed');
      return { probed: 0, up: 0, down: 0 };
    });
    void this.running.finally(() => {
      if (!this.stopped) {
        this.timer = setTimeout(() => this.tick(), probeDelay(this.opts.intervalMs));
        this.timer.unref();
      }
    });
  }

  /** Stops scheduling and waits for a round in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One round over every due endpoint. */
  async runOnce(): Promise<ProbeRound> {
    const resources = (await this.store.inventory.listResources({})).filter((r) => r.endpoint !== null);
    const previous = new Map((await this.store.probes.list(resources.map((r) => r.id))).map((p) => [p.resourceId, p]));
    const now = this.clock.now();
    const due = resources.filter((r) => dueForProbe(r, previous.get(r.id), now, this.opts.intervalMs));
    const round: ProbeRound = { probed: 0, up: 0, down: 0 };
    let next = 0;
    const worker = async () => {
      while (next < due.length && !this.stopped) {
        const r = due[next++]!;
        const outcome = await probeEndpoint(r.endpoint!.host, r.endpoint!.port, this.opts.timeoutMs, this.opts.dial);
        const prev = previous.get(r.id);
        const rec = nextProbeRecord(prev, r, outcome, this.clock.now(), this.opts.nodeId);
        await this.store.probes.record(rec);
        previous.set(r.id, rec);
        round.probed++;
        if (rec.reachable) round.up++; else round.down++;
        this.hooks.probed?.(rec.reachable);
        if (rec.changedAt === rec.checkedAt) {
          this.log.info({ resourceId: r.id, reachable: rec.reachable, failure: rec.failure }, rec.reachable ? 'console endpoint is up' : 'console endpoint is down');
          this.hooks.changed?.(r, rec);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, due.length) }, worker));
    const counts: Record<Reachability, number> = { up: 0, down: 0, unknown: 0 };
    for (const r of resources) counts[reachabilityOf(r, previous.get(r.id))]++;
    this.hooks.endpoints?.(counts);
    return round;
  }
}
