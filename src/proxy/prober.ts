/**
 * The liveness prober: for every machine with a console endpoint, the real backend handshake a
 * console does (rfb/client-handshake.ts, with the endpoint's credential: None, VncAuth, VeNCrypt
 * with TLS through backend-tls.ts) up to ServerInit, ClientInit with shared-flag 1 (a server that
 * disconnects other clients on a non-shared ClientInit — TigerVNC's default `DisconnectClients`,
 * QEMU's default share policy — keeps the people already on that console), then a clean close.
 * Results go to the store (`endpoint_probes`), where domain/liveness.ts turns them into states
 * (up, down, auth_failed, refused) and console refusals on every node.
 *
 * Why authenticate, and what each stock server counts (measured on the Debian 12 packages; TigerVNC
 * source common/rfb/Blacklist.cxx, VNCServerST.cxx):
 * - TigerVNC Xvnc 1.12, `UseBlacklist` on by default: *every* connection from a host adds a mark
 *   (VNCServerST::addSocket → Blacklist::isBlackmarked), whatever its security type, None included;
 *   only a successful authentication clears the host's marks. At 5 marks the host is blocked for
 *   `BlacklistTimeout` (10 s), doubling after each block; a blocked host gets `RFB 003.003`, type 0,
 *   "Too many security failures". So a banner-and-close probe (what this prober used to do) blocks
 *   the gateway after 5 probes — and every console with it — while still seeing a banner ("up").
 *   An authenticated probe clears the marks each time; a wrong password is a mark like any other.
 *   There is no unauthenticated probe TigerVNC does not count.
 * - x11vnc 0.9 (libvncserver): no blacklist — 12 wrong passwords or 12 banner-and-close probes in a
 *   row, then the right password works. At its defaults (`-once`) x11vnc exits when the first
 *   *authenticated* client leaves: the first probe would end it, as the first console would; a
 *   gateway needs `-forever` (or `-many`) there anyway. A shared-flag 1 probe did not disturb a
 *   connected viewer (with or without `-shared`).
 * - QEMU 7.2 `-vnc …,password=on`: no lockout — 12 wrong passwords or banner probes, then the right
 *   password works. Its default share policy (allow-exclusive) disconnects the others on shared-flag
 *   0, so a probe must send 1.
 * So the prober always authenticates with what a console would use (every endpoint security type
 * carries it: none needs nothing, vncauth its password, vencrypt its TLS settings and optional
 * password). What remains are credentials that fail: a wrong password (auth_failed), no usable
 * security type, failed TLS verification, or a server refusal (refused, with the server's reason).
 * Those are not retried in a loop: each retry waits as long as the state has lasted (1, 1, 2, 4 …
 * intervals, at most MAX_PROBE_BACKOFF_MS; domain/liveness.ts probeDueAt), consoles of an
 * auth_failed machine are refused before any connection, and a good credential on the same server
 * clears TigerVNC's marks in between.
 *
 * Rate per server: machines are grouped by host:port (one VNC server, one blacklist) and, within it,
 * by credential. Each round connects at most once per host:port (the due group waiting longest) and
 * records that result for every machine of the group; a host:port any node probed in the last half
 * interval is skipped. Three machines on one Xvnc with one password cost one probe per interval.
 *
 * Rounds: the first right at start, then every `probe.interval_seconds` minus up to 20 % jitter (so a
 * down backend is seen within one interval), at most `probe.concurrency` probes in flight, each
 * bounded by `probe.timeout_ms`. Several nodes share the work through the store. A failing round is
 * logged and the next one runs.
 */
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import {
  BANNER_LENGTH, PROBE_FRESH_FRACTION, checkBanner, nextProbeRecord, probeDelay, probeDueAt, probeStateOf, reachabilityOf,
  type ProbeOutcome, type Reachability,
} from '../domain/liveness.js';
import { ClientHandshake, type BackendCredential } from '../rfb/client-handshake.js';
import { RfbError } from '../rfb/errors.js';
import type { ProbeRecord, ResourceRecord, Store } from '../store/types.js';
import { backendTlsRefusal, establishedTlsRefusal, startBackendTls } from './backend-tls.js';

export interface ProberOptions {
  intervalMs: number;
  timeoutMs: number;
  concurrency: number;
  nodeId: string;
  /** The credential a console of this machine would use (ConsoleService.credentialOf). */
  credentialOf(r: ResourceRecord): BackendCredential;
  /** Opens the probe's connection (default net.connect): the gateway's refuses backends outside backends.allowed_networks. */
  dial?: (opts: { host: string; port: number }) => Socket;
}

export interface ProbeTarget {
  host: string;
  port: number;
  credential: BackendCredential;
}

/** After ServerInit the probe half-closes; the socket is destroyed if the server has not closed by then. */
const LINGER_MS = 2000;

/**
 * One probe: connect, the backend handshake up to ServerInit (ClientInit shared-flag 1), then a
 * clean close (FIN). Never rejects. Reachable means an RFB server answered with a banner; a failure
 * after that is auth_failed / no_security_type / tls / server_refused with the reason, if any.
 */
export function probeEndpoint(target: ProbeTarget, timeoutMs: number, dial: (opts: { host: string; port: number }) => Socket = connect): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let done = false;
    let socket: Socket | TLSSocket = dial({ host: target.host, port: target.port });
    const raw = socket;
    const hs = new ClientHandshake({ credential: target.credential, shared: true });
    let banner = Buffer.alloc(0);
    let version: string | undefined;
    let tlsPending = false;
    const finish = (outcome: ProbeOutcome, clean = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (clean) {
        socket.end();
        socket.resume(); // discard whatever the server sends before it closes too
        setTimeout(() => socket.destroy(), LINGER_MS).unref();
      } else {
        socket.destroy();
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ reachable: false, failure: 'timeout' }), timeoutMs);
    const answered = (failure: 'auth_failed' | 'no_security_type' | 'tls' | 'server_refused', reason: string): ProbeOutcome =>
      version === undefined ? { reachable: false, failure: 'protocol', reason } : { reachable: true, version, failure, reason };
    const feed = (chunk: Buffer) => {
      if (version === undefined) {
        banner = Buffer.concat([banner, chunk]).subarray(0, BANNER_LENGTH);
        if (banner.length >= BANNER_LENGTH) {
          const b = checkBanner(banner);
          if (!b.reachable) return finish(b);
          version = b.version;
        }
      }
      let step: ReturnType<ClientHandshake['feed']>;
      try {
        step = hs.feed(chunk);
      } catch (err) {
        if (!(err instanceof RfbError)) return finish({ reachable: false, failure: 'error' });
        return finish(outcomeOf(err));
      }
      for (const b of step.send) socket.write(b);
      if (step.startTls) {
        const req = step.startTls;
        const refusal = backendTlsRefusal(req);
        if (refusal) return finish(answered('tls', refusal));
        raw.removeAllListeners('data');
        raw.removeAllListeners('error');
        raw.removeAllListeners('close');
        raw.on('error', () => undefined); // reported through the TLS socket
        const secure = startBackendTls(raw, req);
        socket = secure;
        tlsPending = true;
        secure.once('secureConnect', () => {
          tlsPending = false;
          const bad = establishedTlsRefusal(secure, req);
          if (bad) return finish(answered('tls', bad));
          for (const b of hs.tlsEstablished().send) secure.write(b);
        });
        attach(secure);
        return;
      }
      if (step.done) finish({ reachable: true, version: version ?? '' }, true);
    };
    const outcomeOf = (err: RfbError): ProbeOutcome => {
      const reason = err.reason ?? err.message;
      switch (err.code) {
        case 'RFB_AUTH_FAILED': return answered('auth_failed', reason);
        case 'RFB_SERVER_REFUSED': return answered('server_refused', reason);
        case 'RFB_NO_SECURITY_TYPE': return answered('no_security_type', err.message);
        case 'RFB_BAD_VERSION': return { reachable: false, failure: 'bad_banner' };
        default: return { reachable: false, failure: 'protocol', reason: err.message };
      }
    };
    const attach = (s: Socket | TLSSocket) => {
      s.on('data', feed);
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (tlsPending) return finish(answered('tls', `${err.code ?? ''} ${err.message}`.trim()));
        if (err.code === 'ECONNREFUSED') return finish({ reachable: false, failure: 'refused' });
        // Reset by the server mid-handshake (it went away, or is shutting down): as if it had closed.
        if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return finish({ reachable: false, failure: 'closed' });
        finish({ reachable: false, failure: 'error', reason: err.code ?? err.message });
      });
      s.on('close', () => finish({ reachable: false, failure: 'closed' }));
    };
    attach(raw);
  });
}

export interface ProbeRound { probed: number; up: number; down: number }

/** What the prober reports for metrics (observability/metrics.ts). */
export interface ProberHooks {
  /** One probe (connection) made by this node; `reachable`: its handshake completed. */
  probed?(reachable: boolean): void;
  /** An endpoint's state changed (seen by this node's probe). */
  changed?(r: ResourceRecord, p: ProbeRecord): void;
  /** After each round: every endpoint by its state as the store holds it (probes of all nodes). */
  endpoints?(counts: Record<Reachability, number>): void;
}

/** Machines that share one VNC server (host:port) and one credential: one probe stands for all. */
interface ProbeGroup {
  target: ProbeTarget;
  resources: ResourceRecord[];
  dueAt: number;
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

  /** One round: at most one probe per VNC server (host:port), of its group that is due the longest. */
  async runOnce(): Promise<ProbeRound> {
    const resources = (await this.store.inventory.listResources({})).filter((r) => r.endpoint !== null);
    const previous = new Map((await this.store.probes.list(resources.map((r) => r.id))).map((p) => [p.resourceId, p]));
    const now = this.clock.now();
    const due = this.dueGroups(resources, previous, now);
    const round: ProbeRound = { probed: 0, up: 0, down: 0 };
    let next = 0;
    const worker = async () => {
      while (next < due.length && !this.stopped) {
        const g = due[next++]!;
        const outcome = await probeEndpoint(g.target, this.opts.timeoutMs, this.opts.dial);
        const usable = outcome.reachable && outcome.failure === undefined;
        round.probed++;
        if (usable) round.up++; else round.down++;
        this.hooks.probed?.(usable);
        const at = this.clock.now();
        for (const r of g.resources) await this.record(r, previous, outcome, at);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, due.length) }, worker));
    const counts: Record<Reachability, number> = { up: 0, down: 0, unknown: 0 };
    for (const r of resources) counts[reachabilityOf(r, previous.get(r.id))]++;
    this.hooks.endpoints?.(counts);
    return round;
  }

  private dueGroups(resources: ResourceRecord[], previous: Map<string, ProbeRecord>, now: number): ProbeGroup[] {
    const servers = new Map<string, { lastProbeAt: number; groups: Map<string, ProbeGroup> }>();
    for (const r of resources) {
      const ep = r.endpoint!;
      let credential: BackendCredential;
      try {
        credential = this.opts.credentialOf(r);
      } catch (err) {
        this.log.warn({ resourceId: r.id, err: err instanceof Error ? err.message : String(err) }, 'console probe skipped: the endpoint credential cannot be opened');
        continue;
      }
      const serverKey = `${ep.host}:${ep.port}`;
      let server = servers.get(serverKey);
      if (!server) servers.set(serverKey, server = { lastProbeAt: -Infinity, groups: new Map() });
      const prev = previous.get(r.id);
      if (prev && prev.endpointGeneration === r.endpointGeneration) server.lastProbeAt = Math.max(server.lastProbeAt, prev.checkedAt);
      const key = credentialKey(credential);
      let g = server.groups.get(key);
      if (!g) server.groups.set(key, g = { target: { host: ep.host, port: ep.port, credential }, resources: [], dueAt: Infinity });
      g.resources.push(r);
      g.dueAt = Math.min(g.dueAt, probeDueAt(r, prev, this.opts.intervalMs));
    }
    const due: ProbeGroup[] = [];
    for (const server of servers.values()) {
      if (now - server.lastProbeAt < this.opts.intervalMs * PROBE_FRESH_FRACTION) continue;
      let pick: ProbeGroup | undefined;
      for (const g of server.groups.values()) if (g.dueAt <= now && (!pick || g.dueAt < pick.dueAt)) pick = g;
      if (pick) due.push(pick);
    }
    return due;
  }

  private async record(r: ResourceRecord, previous: Map<string, ProbeRecord>, outcome: ProbeOutcome, at: number): Promise<void> {
    const prev = previous.get(r.id);
    const rec = nextProbeRecord(prev, r, outcome, at, this.opts.nodeId);
    await this.store.probes.record(rec);
    previous.set(r.id, rec);
    const state = probeStateOf(r, rec);
    if (rec.changedAt !== rec.checkedAt && state === probeStateOf(r, prev) && rec.reason === prev?.reason) return;
    const msg = state === 'up' ? 'console endpoint is up'
      : state === 'auth_failed' ? 'console endpoint does not accept the gateway\'s credentials'
        : state === 'refused' ? 'console endpoint refuses the gateway' : 'console endpoint is down';
    (state === 'up' ? this.log.info : this.log.warn).call(this.log, { resourceId: r.id, state, failure: rec.failure, serverReason: rec.reason }, msg);
    this.hooks.changed?.(r, rec);
  }
}

/** Identifies a credential within one process (grouping only; a hash, never logged or stored). */
function credentialKey(c: BackendCredential): string {
  return createHash('sha256').update(JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))).digest('base64');
}
