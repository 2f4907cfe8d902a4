/**
 * Live machine status, decided from facts the gateway has: the last probe of the console endpoint
 * (proxy/prober.ts connects and reads the 12-byte RFB banner, RFC 6143 §7.1.1), the operator's
 * status of the machine, and its console sessions. Pure: the prober and the API feed it records.
 *
 *   reachability   up (a banner came back) · down (no banner) · unknown (never probed, or the
 *                  endpoint changed since: a result for an older endpoint generation says nothing)
 *   login_status   CONNECTED  a console session is open
 *   (Workspace)    UNREGISTER the machine is stopped, or the last probe found it down
 *                  DISCONNECTED a session ended less than DISCONNECTED_WINDOW_MS ago
 *                  REGISTERED reachable and idle (unknown: the stored attribute, else REGISTERED)
 *   status (ECS)   the operator's status; ACTIVE with the console down becomes UNKNOWN
 *
 * A console is refused ("not ready") when the machine is stopped (its status is not ACTIVE/RUNNING)
 * or when a probe has actually marked it down. Never-probed endpoints are allowed: the first probe
 * runs right at start, and refusing on mere absence of a result would refuse every new machine.
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
export type LoginStatus = 'UNREGISTER' | 'REGISTERED' | 'CONNECTED' | 'DISCONNECTED';
export type ProbeFailure = 'refused' | 'timeout' | 'closed' | 'bad_banner' | 'error';
export type ProbeOutcome = { reachable: true; version: string } | { reachable: false; failure: ProbeFailure };

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

/** The probe record to store for `outcome`, keeping `changedAt` while reachability stays the same. */
export function nextProbeRecord(prev: ProbeRecord | undefined, r: Pick<ResourceRecord, 'id' | 'endpointGeneration'>, outcome: ProbeOutcome, now: number, nodeId: string): ProbeRecord {
  const sameEndpoint = prev !== undefined && prev.endpointGeneration === r.endpointGeneration;
  const changed = !sameEndpoint || prev.reachable !== outcome.reachable;
  return {
    resourceId: r.id, endpointGeneration: r.endpointGeneration, reachable: outcome.reachable,
    failure: outcome.reachable ? null : outcome.failure, rfbVersion: outcome.reachable ? outcome.version : null,
    checkedAt: now, changedAt: changed ? now : prev.changedAt, nodeId,
  };
}

/** Delay before the next probe round. */
export function probeDelay(intervalMs: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(intervalMs * (1 - random() * PROBE_JITTER)));
}

/** Whether this node should probe `r` now (not probed recently by any node, or its endpoint changed). */
export function dueForProbe(r: ResourceRecord, probe: ProbeRecord | undefined, now: number, intervalMs: number): boolean {
  if (r.endpoint === null) return false;
  if (!probe || probe.endpointGeneration !== r.endpointGeneration) return true;
  return now - probe.checkedAt >= intervalMs * PROBE_FRESH_FRACTION;
}

export function reachabilityOf(r: ResourceRecord, probe: ProbeRecord | undefined): Reachability {
  if (r.endpoint === null || !probe || probe.endpointGeneration !== r.endpointGeneration) return 'unknown';
  return probe.reachable ? 'up' : 'down';
}

/** Why a console of `r` cannot be opened now, or null. */
export function consoleRefusal(r: ResourceRecord, probe: ProbeRecord | undefined): null | 'no_console' | 'stopped' | 'unreachable' {
  if (r.endpoint === null) return 'no_console';
  if (!isRunning(r.status)) return 'stopped';
  if (reachabilityOf(r, probe) === 'down') return 'unreachable';
  return null;
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
