/**
 * The liveness decisions (domain/liveness.ts) over records, without sockets: the banner check, how a
 * probe result becomes reachability (and stops counting when the endpoint changes), console refusals,
 * login_status and ECS status, and the prober's schedule (never later than one interval).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProbeRecord, ResourceRecord } from '../store/types.js';
import {
  DISCONNECTED_WINDOW_MS, MAX_PROBE_BACKOFF_MS, checkBanner, consoleRefusal, dueForProbe, loginStatusOf, nextProbeRecord, probeDelay,
  probeStateOf, reachabilityOf, serverPowerStateOf, serverStatusOf,
} from './liveness.js';

const T = 1_700_000_000_000;
const machine = (over: Partial<ResourceRecord> = {}): ResourceRecord => ({
  id: 'r1', projectId: 'p', kind: 'desktop', name: 'd', status: 'ACTIVE', attributes: {},
  endpoint: { host: '127.0.0.1', port: 5900, security: 'none', passwordSealed: null, zone: null }, endpointGeneration: 3, createdAt: T, updatedAt: T, ...over,
});
const probe = (reachable: boolean, over: Partial<ProbeRecord> = {}): ProbeRecord => ({
  resourceId: 'r1', endpointGeneration: 3, reachable, failure: reachable ? null : 'refused', rfbVersion: reachable ? '003.008' : null, reason: null,
  checkedAt: T, changedAt: T, nodeId: 'n', ...over,
});
const bytes = (s: string) => new TextEncoder().encode(s);

describe('liveness', () => {
  it('accepts an RFB banner (RFC 6143 §7.1.1) and refuses anything else', () => {
    assert.deepEqual(checkBanner(bytes('RFB 003.008\n')), { reachable: true, version: '003.008' });
    assert.deepEqual(checkBanner(bytes('RFB 003.889\n')), { reachable: true, version: '003.889' });
    for (const junk of ['HTTP/1.1 400', 'SSH-2.0-Open', 'RFB 3.8\n    ']) assert.deepEqual(checkBanner(bytes(junk.padEnd(12, ' ').slice(0, 12))), { reachable: false, failure: 'bad_banner' });
  });

  it('a probe counts only for the endpoint generation it probed', () => {
    assert.equal(reachabilityOf(machine(), undefined), 'unknown');
    assert.equal(reachabilityOf(machine(), probe(true)), 'up');
    assert.equal(reachabilityOf(machine(), probe(false)), 'down');
    assert.equal(reachabilityOf(machine({ endpointGeneration: 4 }), probe(false)), 'unknown', 'a changed endpoint is not known to be down');
    assert.equal(reachabilityOf(machine({ endpoint: null }), probe(true)), 'unknown');
  });

  it('refuses consoles of stopped machines and of ones a probe marked down — never merely unprobed ones', () => {
    assert.equal(consoleRefusal(machine(), undefined), null);
    assert.equal(consoleRefusal(machine(), probe(true)), null);
    assert.equal(consoleRefusal(machine(), probe(false)), 'unreachable');
    assert.equal(consoleRefusal(machine({ status: 'SHUTOFF' }), probe(true)), 'stopped');
    assert.equal(consoleRefusal(machine({ status: 'RUNNING' }), undefined), null);
    assert.equal(consoleRefusal(machine({ endpoint: null }), undefined), 'no_console');
  });

  it('login_status: CONNECTED with a session, UNREGISTER when down or stopped, DISCONNECTED just after, else REGISTERED', () => {
    assert.equal(loginStatusOf(machine(), probe(false), { open: 1, lastEndedAt: null }, T), 'CONNECTED');
    assert.equal(loginStatusOf(machine(), probe(false), undefined, T), 'UNREGISTER');
    assert.equal(loginStatusOf(machine({ status: 'SHUTOFF' }), probe(true), undefined, T), 'UNREGISTER');
    assert.equal(loginStatusOf(machine(), probe(true), { open: 0, lastEndedAt: T - 1000 }, T), 'DISCONNECTED');
    assert.equal(loginStatusOf(machine(), probe(true), { open: 0, lastEndedAt: T - DISCONNECTED_WINDOW_MS }, T), 'REGISTERED');
    assert.equal(loginStatusOf(machine(), probe(true), undefined, T), 'REGISTERED');
    assert.equal(loginStatusOf(machine({ attributes: { login_status: 'UNREGISTER' } }), undefined, undefined, T), 'UNREGISTER', 'before any probe, the stored value');
  });

  it('ECS status: ACTIVE with its console down is UNKNOWN; power_state follows', () => {
    const s = machine({ kind: 'cloudserver' });
    assert.equal(serverStatusOf(s, probe(true)), 'ACTIVE');
    assert.equal(serverStatusOf(s, probe(false)), 'UNKNOWN');
    assert.equal(serverStatusOf({ ...s, status: 'SHUTOFF' }, probe(false)), 'SHUTOFF');
    assert.deepEqual([serverPowerStateOf(s, probe(true)), serverPowerStateOf(s, probe(false)), serverPowerStateOf({ ...s, status: 'SHUTOFF' }, undefined)], [1, 0, 4]);
  });

  it('keeps changedAt while reachability stays, moves it on a flip or a new endpoint', () => {
    const first = nextProbeRecord(undefined, machine(), { reachable: true, version: '003.008' }, T, 'n');
    assert.deepEqual([first.checkedAt, first.changedAt], [T, T]);
    const same = nextProbeRecord(first, machine(), { reachable: true, version: '003.008' }, T + 5, 'n');
    assert.deepEqual([same.checkedAt, same.changedAt], [T + 5, T]);
    const flip = nextProbeRecord(same, machine(), { reachable: false, failure: 'timeout' }, T + 9, 'n');
    assert.deepEqual([flip.changedAt, flip.failure, flip.rfbVersion], [T + 9, 'timeout', null]);
    const moved = nextProbeRecord(flip, machine({ endpointGeneration: 4 }), { reachable: false, failure: 'refused' }, T + 12, 'n');
    assert.deepEqual([moved.changedAt, moved.endpointGeneration], [T + 12, 4]);
  });

  it('schedules rounds within (0.8, 1] of the interval and skips endpoints probed in the last half interval', () => {
    assert.equal(probeDelay(10_000, () => 0), 10_000);
    assert.equal(probeDelay(10_000, () => 0.999999), 8_000);
    assert.equal(dueForProbe(machine(), undefined, T, 1000), true);
    assert.equal(dueForProbe(machine(), probe(true, { checkedAt: T - 400 }), T, 1000), false);
    assert.equal(dueForProbe(machine(), probe(true, { checkedAt: T - 500 }), T, 1000), true);
    assert.equal(dueForProbe(machine({ endpointGeneration: 9 }), probe(true), T, 1000), true);
    assert.equal(dueForProbe(machine({ endpoint: null }), undefined, T, 1000), false);
  });

  it('prober: a server that answers but rejects the credential is auth_failed, a refusal is refused — with the server\'s reason', () => {
    const denied = probe(true, { failure: 'auth_failed', reason: 'Authentication failure' });
    const refused = probe(true, { failure: 'server_refused', reason: 'Too many security failures' });
    assert.deepEqual([probeStateOf(machine(), denied), probeStateOf(machine(), refused), probeStateOf(machine(), probe(true)), probeStateOf(machine(), probe(false))],
      ['auth_failed', 'refused', 'up', 'down']);
    for (const f of ['no_security_type', 'tls']) assert.equal(probeStateOf(machine(), probe(true, { failure: f })), 'auth_failed', f);
    assert.equal(reachabilityOf(machine(), denied), 'up', 'a VNC server did answer');
    assert.equal(consoleRefusal(machine(), denied), 'auth_failed', 'a console would fail with the same credential');
    assert.equal(consoleRefusal(machine(), refused), null, 'a refusal is usually temporary (a blacklist timeout)');
    assert.equal(consoleRefusal(machine({ endpointGeneration: 4 }), denied), null, 'a new endpoint (new password) is tried again');
    assert.equal(probeStateOf(machine({ endpointGeneration: 4 }), denied), 'unknown');
    const rec = nextProbeRecord(undefined, machine(), { reachable: true, version: '003.008', failure: 'auth_failed', reason: 'Authentication failure' }, T, 'n');
    assert.deepEqual([rec.reachable, rec.failure, rec.reason, rec.rfbVersion], [true, 'auth_failed', 'Authentication failure', '003.008']);
    const blocked = nextProbeRecord(rec, machine(), { reachable: true, version: '003.003', failure: 'server_refused', reason: 'Too many security failures' }, T + 3, 'n');
    assert.deepEqual([probeStateOf(machine(), blocked), blocked.reason, blocked.changedAt], ['refused', 'Too many security failures', T],
      'auth_failed turning into a blacklist refusal keeps changedAt: the back-off keeps growing');
    const recovered = nextProbeRecord(blocked, machine(), { reachable: true, version: '003.008' }, T + 5, 'n');
    assert.deepEqual([recovered.failure, recovered.reason, recovered.changedAt], [null, null, T + 5], 'from auth_failed to up is a change although reachable stays');
  });

  it('prober: failures servers count (auth_failed, refused) are retried after as long as they have lasted, never in a loop', () => {
    const I = 1000;
    const denied = (checkedAt: number, changedAt: number) => probe(true, { failure: 'auth_failed', checkedAt, changedAt });
    // First failure at T: the next round (one interval on) retries, then 1, 2, 4 … intervals apart.
    assert.equal(dueForProbe(machine(), denied(T, T), T + 400, I), false);
    assert.equal(dueForProbe(machine(), denied(T, T), T + 500, I), true);
    assert.equal(dueForProbe(machine(), denied(T + 4 * I, T), T + 5 * I, I), false, 'failing for 4 intervals: wait 4');
    assert.equal(dueForProbe(machine(), denied(T + 4 * I, T), T + 7.5 * I, I), true);
    const forever = denied(T + 10 * MAX_PROBE_BACKOFF_MS, T);
    assert.equal(dueForProbe(machine(), forever, forever.checkedAt + MAX_PROBE_BACKOFF_MS - 600, I), false);
    assert.equal(dueForProbe(machine(), forever, forever.checkedAt + MAX_PROBE_BACKOFF_MS - 500, I), true, 'at most MAX_PROBE_BACKOFF_MS (less the half interval rounds are early by)');
    const refused = probe(true, { failure: 'server_refused', checkedAt: T + 8 * I, changedAt: T });
    assert.equal(dueForProbe(machine(), refused, T + 10 * I, I), false);
    assert.equal(dueForProbe(machine(), probe(false, { checkedAt: T + 8 * I, changedAt: T }), T + 8.5 * I, I), true, 'down is retried every interval');
  });
});
