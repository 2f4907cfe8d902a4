/**
 * Prometheus metrics for one gateway instance, on its own `prom-client` Registry (tests run several
 * gateways in one process, so nothing goes to the global registry). The rest of the code never
 * imports prom-client: it gets small hooks (`ConsoleTokenEvents` for the domain, `RelayMetricsHook`
 * for the upgrade handler, the `api*` methods for Fastify hooks), and the relay's hot path does no
 * metric work at all: bytes of live sessions are read from the sessions when Prometheus scrapes.
 *
 * Every label has a bounded set of values: close reasons and token states are enums, API routes are
 * Fastify route patterns (never a raw URL), statuses are HTTP codes.
 */
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ConsoleTokenEvents } from '../domain/consoles.js';
import type { ResourceKind, TokenPurpose, TokenState } from '../store/types.js';
import type { ProberHooks } from '../proxy/prober.js';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** What the upgrade handler reports (proxy/upgrade.ts). */
export interface RelayMetricsHook {
  /** An upgrade was answered with a 4xx/5xx instead of 101; `reason` is the refusal's reason key. */
  upgradeRefused(reason: string): void;
  sessionStarted(): void;
  /** A session fully closed: its close reason (close-codes.ts key or `client_closed`) and byte totals. */
  sessionEnded(end: { reason: string; bytesToClient: number; bytesToBackend: number }): void;
}

/** A live session's byte counters so far (read at scrape time). */
export interface LiveRelayBytes {
  bytes(): { toClient: number; toBackend: number };
}

export interface MetricsInfo {
  nodeId: string;
  version: string;
  store: string;
  /** Node.js process metrics (CPU, memory, event loop lag, GC); default true. */
  processMetrics?: boolean;
}

/** API latency buckets, seconds: from a cached hit to a slow database. */
const API_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class GatewayMetrics implements RelayMetricsHook {
  readonly registry = new Registry();
  /** API calls refused by throttling (429). Incremented by the API error handler for every `rate_limited` error; code that throttles elsewhere may increment it too, with its own `service`/`route`. */
  readonly throttled: Counter<'service' | 'route'>;
  private readonly sessionsStartedTotal: Counter;
  private readonly sessionsEnded: Counter<'reason'>;
  private readonly upgradesRefused: Counter<'reason'>;
  private readonly tokensMinted: Counter<'kind' | 'purpose'>;
  private readonly tokensRedeemed: Counter<'kind' | 'purpose'>;
  private readonly tokensRefused: Counter<'reason'>;
  private readonly apiDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly endpoints: Gauge<'state'>;
  private readonly probes: Counter<'result'>;
  private readonly endpointChanges: Counter<'to'>;
  private readonly endedBytes = { toClient: 0, toBackend: 0 };
  private live: () => Iterable<LiveRelayBytes> = () => [];

  constructor(info: MetricsInfo) {
    const registers = [this.registry];
    // collect() callbacks run with `this` bound to the metric: reach the gateway's state through closures.
    const liveNow = () => this.live();
    const ended = this.endedBytes;
    new Gauge({
      name: 'porthole_node_info', help: 'This gateway node: version, node id and store dialect (value is always 1).',
      labelNames: ['version', 'node_id', 'store', 'nodejs'], registers,
    }).set({ version: info.version, node_id: info.nodeId, store: info.store, nodejs: process.version }, 1);
    new Gauge({
      name: 'porthole_console_sessions_active', help: 'Console sessions relaying (or handshaking) on this node.', registers,
      collect() { let n = 0; for (const _ of liveNow()) n++; this.set(n); },
    });
    this.sessionsStartedTotal = new Counter({ name: 'porthole_console_sessions_started_total', help: 'Console sessions started (WebSocket upgraded).', registers });
    this.sessionsEnded = new Counter({
      name: 'porthole_console_sessions_ended_total', help: 'Console sessions ended, by close reason (close-codes.ts reason key, or client_closed).',
      labelNames: ['reason'], registers,
    });
    new Counter({
      name: 'porthole_console_relay_bytes_total', help: 'RFB bytes relayed by console sessions, live and ended, by direction (to_client = toward the browser).',
      labelNames: ['direction'], registers,
      collect() {
        let toClient = ended.toClient;
        let toBackend = ended.toBackend;
        for (const s of liveNow()) { const b = s.bytes(); toClient += b.toClient; toBackend += b.toBackend; }
        this.reset();
        this.inc({ direction: 'to_client' }, toClient);
        this.inc({ direction: 'to_backend' }, toBackend);
      },
    });
    this.upgradesRefused = new Counter({
      name: 'porthole_console_upgrades_refused_total', help: 'Console WebSocket upgrades refused before 101, by reason.', labelNames: ['reason'], registers,
    });
    this.tokensMinted = new Counter({ name: 'porthole_console_tokens_minted_total', help: 'Console tokens (one-time URLs) minted.', labelNames: ['kind', 'purpose'], registers });
    this.tokensRedeemed = new Counter({ name: 'porthole_console_tokens_redeemed_total', help: 'Console tokens redeemed at a WebSocket upgrade.', labelNames: ['kind', 'purpose'], registers });
    this.tokensRefused = new Counter({
      name: 'porthole_console_tokens_refused_total', help: 'Console tokens presented at an upgrade and refused, by token state (invalid, expired, used, revoked).',
      labelNames: ['reason'], registers,
    });
    this.apiDuration = new Histogram({
      name: 'porthole_api_request_duration_seconds', help: 'REST API latency by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'], buckets: API_BUCKETS, registers,
    });
    this.endpoints = new Gauge({
      name: 'porthole_console_endpoints', help: 'Console endpoints by backend probe state (up, down, unknown: not probed since its endpoint changed), as of this node\'s last probe round.',
      labelNames: ['state'], registers,
    });
    this.probes = new Counter({ name: 'porthole_console_probes_total', help: 'Backend probes (the console handshake up to ServerInit, at most one per VNC server host:port and round) made by this node, by result (up: the handshake completed).', labelNames: ['result'], registers });
    this.endpointChanges = new Counter({
      name: 'porthole_console_endpoint_state_changes_total', help: 'Backend reachability changes seen by this node\'s probes, by new state.', labelNames: ['to'], registers,
    });
    this.throttled = new Counter({ name: 'porthole_api_throttled_total', help: 'API calls refused by throttling (HTTP 429).', labelNames: ['service', 'route'], registers });
    if (info.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Where live sessions come from (the upgrade handler's `live()`), read on each scrape. */
  trackLive(live: () => Iterable<LiveRelayBytes>): void {
    this.live = live;
  }

  // RelayMetricsHook
  upgradeRefused(reason: string): void {
    this.upgradesRefused.inc({ reason });
  }

  sessionStarted(): void {
    this.sessionsStartedTotal.inc();
  }

  sessionEnded(end: { reason: string; bytesToClient: number; bytesToBackend: number }): void {
    this.sessionsEnded.inc({ reason: end.reason });
    this.endedBytes.toClient += end.bytesToClient;
    this.endedBytes.toBackend += end.bytesToBackend;
  }

  /** Hooks for the liveness prober (proxy/prober.ts). */
  readonly proberHooks: ProberHooks = {
    probed: (reachable) => this.probes.inc({ result: reachable ? 'up' : 'down' }),
    changed: (_r, p) => this.endpointChanges.inc({ to: p.reachable ? 'up' : 'down' }),
    endpoints: (counts) => { for (const [state, n] of Object.entries(counts)) this.endpoints.set({ state }, n); },
  };

  /** Hooks for ConsoleService (domain/consoles.ts). */
  readonly tokenEvents: ConsoleTokenEvents = {
    minted: (kind: ResourceKind, purpose: TokenPurpose) => this.tokensMinted.inc({ kind, purpose }),
    redeemed: (kind: ResourceKind, purpose: TokenPurpose) => this.tokensRedeemed.inc({ kind, purpose }),
    refused: (state: Exclude<TokenState, 'valid'>) => this.tokensRefused.inc({ reason: state }),
  };

  /** One finished API call. `route` is the Fastify route pattern, or undefined when no route matched. */
  apiRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    this.apiDuration.observe({ method, route: route ?? 'unmatched', status: String(status) }, seconds);
  }

  apiThrottled(service: string, route: string | undefined): void {
    this.throttled.inc({ service, route: route ?? 'unmatched' });
  }

  /** The exposition text. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Porthole's version from package.json (found from both `src/` under tsx and `dist/src/` when built). */
export function gatewayVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'porthole' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return 'unknown';
}
