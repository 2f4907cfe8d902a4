/**
 * Live machine status, decided from facts the gateway has: the last probe of the console endpoint
 * (proxy/prober.ts runs the real backend handshake up to ServerInit, RFC 6143 §7.1–§7.3), the
 * operator's status of the machine, and its console sessions. Pure: the prober and the API feed it
 * records.
 *
 *   reachability   up (an RFB server answered) · down (none did) · unknown (never probed, or the
 *                  endpoint changed since: a result for an older endpoint generation says nothing)
 *   state          the console as the gateway can use it: up (the handshake completed) · down ·
 *                  auth_failed (the server rejected the stored credential, offers no security type
 *                  it can use, or failed TLS verification) · refused (the server refused the
 *                  connection, with its own reason, e.g. TigerVNC's "Too many security failures")
 *                  · unknown. `reason` holds the server's text for auth_failed/refused.
 *   login_status   CONNECTED  a console session is open
 *   (Workspace)    UNREGISTER the machine is stopped, or the last probe found it down
 *                  DISCONNECTED a session ended less than DISCONNECTED_WINDOW_MS ago
 *                  REGISTERED reachable and idle (unknown: the stored attribute, else REGISTERED)
 *   status (ECS)   the operator's status; ACTIVE with the console down becomes UNKNOWN
 *
 * A console is refused ("not ready") when the machine is stopped (its status is not ACTIVE/RUNNING),
 * when a probe has actually marked it down, or when the probe's authentication failed (a console
 * would use the same credential and fail the same way — and each failure counts against the gateway
 * on servers with a blacklist). A server refusal does not refuse consoles: it is usually temporary
 * (a blacklist timeout), and the console then shows the refusal. Never-probed endpoints are allowed:
 * the first probe runs right at start, and refusing on mere absence of a result would refuse every
 * new machine.
 *
 * Probe schedule: results in the states that count against a server (auth_failed, refused) are
 * retried with a growing wait — as long as those states have lasted (`changedAt` moves only between
 * up, down and these two together), at least one interval, at most MAX_PROBE_BACKOFF_MS — so a wrong
 * password is never retried in a loop.
 */
import { parseVersion } from '../rfb/version.js';
import type { ProbeRecord, ResourceRecord, SessionActivity } from '../store/types.js';

/** How long after its last session ended a desktop is DISCONNECTED rather than REGISTERED. */
export const DISCONNECTED_WINDOW_MS = 5 * 60_000;
/** Rounds start every interval × (1 − U·JITTER): spread out, never later than one interval. */
export const PROBE_JITTER = 0.2;
/** A node skips endpoints another node probed less than this fraction of an interval ago. */
export const PROBE_FRESH_FRACTION = 0.5;
/** The RFB ProtocolVersion message is exactly 12 bytes (RFC 6143 §7.1.1). */
export const BANNER_LENGTH = 12;

export type Reachability = 'up' | 'down' | 'unknown';
export type ProbeState = 'up' | 'down' | 'auth_failed' | 'refused' | 'unknown';
export type LoginStatus = 'UNREGISTER' | 'REGISTERED' | 'CONNECTED' | 'DISCONNECTED';
/** Why no RFB server answered (`refused` is the TCP connection refused; `protocol`: not RFB after the banner). */
export type ProbeFailure = 'refused' | 'timeout' | 'closed' | 'bad_banner' | 'protocol' | 'error';
/**
 * A server answered, but the handshake failed: `auth_failed` (SecurityResult failed, §7.1.3),
 * `no_security_type` (it offers nothing the endpoint's credential can use), `tls` (VeNCrypt TLS
 * failed, e.g. the certificate does not chain to the endpoint's CA), `server_refused` (it refused the
 * connection at version/security negotiation, §7.1.2, or refused VeNCrypt).
 */
export type AnswerFailure = 'auth_failed' | 'no_security_type' | 'tls' | 'server_refused';
export type ProbeOutcome =
  | { reachable: true; version: string; failure?: AnswerFailure; reason?: string }
  | { reachable: false; failure: ProbeFailure; reason?: string };

/** Longest wait between probes of an endpoint whose probes fail in a way servers count (auth_failed, refused). */
export const MAX_PROBE_BACKOFF_MS = 60 * 60_000;
const AUTH_FAILURES = new Set<string>(['auth_failed', 'no_security_type', 'tls']);

/** Statuses in which a machine's console may be opened. */
const RUNNING = new Set(['ACTIVE', 'RUNNING']);

export function isRunning(status: string): boolean {
  return RUNNING.has(status);
}

/** Checks the 12 banner bytes: `RFB xxx.yyy\n`. */
export function checkBanner(bytes: Uint8Array): ProbeOutcome {
  try {
    const v = parseVersion(bytes.subarray(0, BANNER_LENGTH), 'server');
    return { reachable: true, version: `${String(v.major).padStart(3, '0')}.${String(v.minor).padStart(3, '0')}` };
  } catch {
    return { reachable: false, failure: 'bad_banner' };
  }
}

/** The state a probe record stands for (its endpoint generation aside). */
function recordState(p: Pick<ProbeRecord, 'reachable' | 'failure'>): Exclude<ProbeState, 'unknown'> {
  if (!p.reachable) return 'down';
  if (p.failure === null) return 'up';
  return AUTH_FAILURES.has(p.failure) ? 'auth_failed' : 'refused';
}

/** up, down, or rejected (auth_failed and refused: a server answered and counted a failure against the gateway). */
function stateClass(p: Pick<ProbeRecord, 'reachable' | 'failure'>): 'up' | 'down' | 'rejected' {
  const state = recordState(p);
  return state === 'auth_failed' || state === 'refused' ? 'rejected' : state;
}

/**
 * The probe record to store for `outcome`. `changedAt` stays while the state stays up, down, or
 * rejected (auth_failed and refused alike: a wrong password on TigerVNC turns into its blacklist
 * refusal and back, and the back-off must keep growing through both).
 */
export function nextProbeRecord(prev: ProbeRecord | undefined, r: Pick<ResourceRecord, 'id' | 'endpointGeneration'>, outcome: ProbeOutcome, now: number, nodeId: string): ProbeRecord {
  const failure = outcome.failure ?? null;
  const reason = outcome.reason ?? null;
  const sameEndpoint = prev !== undefined && prev.endpointGeneration === r.endpointGeneration;
  const changed = !sameEndpoint || stateClass(prev) !== stateClass({ reachable: outcome.reachable, failure });
  return {
    resourceId: r.id, endpointGeneration: r.endpointGeneration, reachable: outcome.reachable,
    failure, rfbVersion: outcome.reachable ? outcome.version : null, reason,
    checkedAt: now, changedAt: changed ? now : prev.changedAt, nodeId,
  };
}

/** Delay before the next probe round. */
export function probeDelay(intervalMs: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(intervalMs * (1 - random() * PROBE_JITTER)));
}

/**
 * When `r` is next due, as a time (0: now; Infinity: never). Not probed for its current endpoint: now.
 * Otherwise half an interval after the last probe by any node (rounds run every (0.8, 1] interval,
 * so each node probes it about once per interval and nodes skip each other's fresh results); after a
 * failure that servers count against the gateway (auth_failed, refused) the wait grows with how long
 * that state has lasted (at least an interval, at most MAX_PROBE_BACKOFF_MS): 1, 1, 2, 4, 8 … intervals.
 */
export function probeDueAt(r: ResourceRecord, probe: ProbeRecord | undefined, intervalMs: number): number {
  if (r.endpoint === null) return Infinity;
  if (!probe || probe.endpointGeneration !== r.endpointGeneration) return 0;
  const fresh = intervalMs * PROBE_FRESH_FRACTION;
  const state = recordState(probe);
  if (state !== 'auth_failed' && state !== 'refused') return probe.checkedAt + fresh;
  const wait = Math.min(MAX_PROBE_BACKOFF_MS, Math.max(intervalMs, probe.checkedAt - probe.changedAt));
  return probe.checkedAt + wait - fresh;
}

/** Whether this node should probe `r` now (not probed recently by any node, or its endpoint changed). */
export function dueForProbe(r: ResourceRecord, probe: ProbeRecord | undefined, now: number, intervalMs: number): boolean {
  return now >= probeDueAt(r, probe, intervalMs);
}

export function reachabilityOf(r: ResourceRecord, probe: ProbeRecord | undefined): Reachability {
  if (r.endpoint === null || !probe || probe.endpointGeneration !== r.endpointGeneration) return 'unknown';
  return probe.reachable ? 'up' : 'down';
}

/** The console's state as the last probe of the current endpoint found it (see the module doc). */
export function probeStateOf(r: ResourceRecord, probe: ProbeRecord | undefined): ProbeState {
  if (r.endpoint === null || !probe || probe.endpointGeneration !== r.endpointGeneration) return 'unknown';
  return recordState(probe);
}

export type ConsoleRefusal = 'no_console' | 'stopped' | 'unreachable' | 'auth_failed';

/** Why a console of `r` cannot be opened now, or null. */
export function consoleRefusal(r: ResourceRecord, probe: ProbeRecord | undefined): null | ConsoleRefusal {
  if (r.endpoint === null) return 'no_console';
  if (!isRunning(r.status)) return 'stopped';
  const state = probeStateOf(r, probe);
  if (state === 'down') return 'unreachable';
  if (state === 'auth_failed') return 'auth_failed';
  return null;
}

/** The words for a refusal, after the machine's name ("Instance[id] …", "The desktop id …"). */
export function consoleRefusalText(why: ConsoleRefusal): string {
  switch (why) {
    case 'no_console': return 'has no remote console';
    case 'stopped': return 'is not running';
    case 'unreachable': return 'does not answer on its console';
    case 'auth_failed': return 'cannot be reached with its console credentials: an administrator must check its console endpoint';
  }
}

/** Workspace `login_status` of a desktop. */
export function loginStatusOf(r: ResourceRecord, probe: ProbeRecord | undefined, activity: SessionActivity | undefined, now: number): LoginStatus {
  if (activity && activity.open > 0) return 'CONNECTED';
  const reach = reachabilityOf(r, probe);
  if (!isRunning(r.status) || reach === 'down' || r.endpoint === null) return 'UNREGISTER';
  if (activity?.lastEndedAt != null && now - activity.lastEndedAt < DISCONNECTED_WINDOW_MS) return 'DISCONNECTED';
  if (reach === 'up') return 'REGISTERED';
  const stored = r.attributes.login_status;
  return stored === 'UNREGISTER' || stored === 'REGISTERED' || stored === 'CONNECTED' || stored === 'DISCONNECTED' ? stored : 'REGISTERED';
}

/** ECS `status`: the operator's, except that a running server whose console is down is UNKNOWN. */
export function serverStatusOf(r: ResourceRecord, probe: ProbeRecord | undefined): string {
  if (isRunning(r.status) && reachabilityOf(r, probe) === 'down') return 'UNKNOWN';
  return r.status === 'RUNNING' ? 'ACTIVE' : r.status;
}

/** ECS `OS-EXT-STS:power_state` (Nova: 0 NOSTATE, 1 RUNNING, 4 SHUTDOWN). */
export function serverPowerStateOf(r: ResourceRecord, probe: ProbeRecord | undefined): number {
  if (r.status === 'SHUTOFF' || r.status === 'STOPPED') return 4;
  return isRunning(r.status) && reachabilityOf(r, probe) !== 'down' ? 1 : 0;
}

/** ECS `OS-EXT-STS:vm_state` from the status. */
export function serverVmStateOf(status: string): string {
  switch (status) {
    case 'ACTIVE': return 'active';
    case 'SHUTOFF': return 'stopped';
    case 'ERROR': return 'error';
    case 'BUILD': return 'building';
    case 'SUSPENDED': return 'suspended';
    case 'PAUSED': return 'paused';
    default: return status.toLowerCase();
  }
}

/** CloudDC `power_state` (on, off) when the gateway knows it, else undefined. */
export function physicalPowerStateOf(r: ResourceRecord, probe: ProbeRecord | undefined): 'on' | 'off' | undefined {
  if (r.status === 'SHUTOFF' || r.status === 'STOPPED') return 'off';
  return isRunning(r.status) && reachabilityOf(r, probe) === 'up' ? 'on' : undefined;
}

/** CloudDC `health_state` as the console shows it: OK when its console answers, Unknown when it does not or is unprobed. */
export function physicalHealthOf(r: ResourceRecord, probe: ProbeRecord | undefined): 'OK' | 'Unknown' {
  return reachabilityOf(r, probe) === 'up' ? 'OK' : 'Unknown';
}
