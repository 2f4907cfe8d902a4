/**
 * Throttling: requests per source address before authentication, API calls per credential (user or
 * AK) per API per second and per minute, and failed password logins per user and per source address. Both run on one small port, a counter of hits in
 * a fixed window anchored at the key's first hit, so the same policy can later run over Redis for a
 * fleet of nodes; `MemoryRateLimitStore` is the single-node implementation, with bounded memory.
 *
 * Over the limit → 429 with `Retry-After` (whole seconds until the window ends) and the service's
 * code: APIGW.0308 "The throttling threshold has been reached: policy user over ratelimit,limit:N,
 * time:1 second|1 minute" (reference D.1), iMetal.0005 on CloudDC (D.4).
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Clock } from '../domain/clock.js';
import type { LoginGuard } from '../domain/iam.js';
import type { Principal } from '../domain/authz.js';
import type { RateLimitConfig } from '../config/index.js';
import { serviceOf } from './http.js';

export interface WindowState {
  /** Whether this hit was counted (false: the window was full). */
  allowed: boolean;
  /** Hits in the current window, this one included when allowed. */
  count: number;
  /** Epoch ms at which the current window ends. */
  resetAt: number;
}

/** The port. Implementations make `hit` atomic per key (Redis: one script). */
export interface RateLimitStore {
  /** Counts a hit unless the window already holds `limit` hits. A window starts at the first hit and lasts `windowMs`. */
  hit(key: string, windowMs: number, limit: number, now: number): Promise<WindowState>;
  /** The current window without counting. */
  peek(key: string, windowMs: number, now: number): Promise<{ count: number; resetAt: number }>;
  reset(key: string): Promise<void>;
  /** Takes back one hit counted in the current window (an attempt reserved by `hit` that turned out not to count). */
  release(key: string, windowMs: number, now: number): Promise<void>;
}

interface Entry { count: number; resetAt: number }

/** Keys tracked per window length before the oldest are dropped. */
export const DEFAULT_MAX_KEYS = 100_000;
/** Expired entries looked at per insertion (amortized sweep, so no timer is needed). */
const SWEEP_BATCH = 64;

/**
 * In-process windows. One Map per window length: a window is re-inserted when it restarts, so each
 * Map is ordered by window start and expired entries sit at the front, where insertion sweeps them.
 * Beyond `maxKeys` the oldest window is dropped (its key simply starts afresh: at worst a client gets
 * a few extra calls, memory never grows without bound).
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<number, Map<string, Entry>>();

  constructor(private readonly maxKeys = DEFAULT_MAX_KEYS) {
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError('MemoryRateLimitStore: maxKeys must be a positive integer');
  }

  private mapFor(windowMs: number): Map<string, Entry> {
    let m = this.windows.get(windowMs);
    if (!m) { m = new Map(); this.windows.set(windowMs, m); }
    return m;
  }

  private current(m: Map<string, Entry>, key: string, now: number): Entry | undefined {
    const e = m.get(key);
    if (e && e.resetAt <= now) { m.delete(key); return undefined; }
    return e;
  }

  private insert(m: Map<string, Entry>, key: string, entry: Entry, now: number): void {
    let swept = 0;
    for (const [k, e] of m) {
      if (swept++ >= SWEEP_BATCH || e.resetAt > now) break;
      m.delete(k);
    }
    while (m.size >= this.maxKeys) {
      const oldest = m.keys().next();
      if (oldest.done) break;
      m.delete(oldest.value);
    }
    m.set(key, entry);
  }

  async hit(key: string, windowMs: number, limit: number, now: number): Promise<WindowState> {
    const m = this.mapFor(windowMs);
    const e = this.current(m, key, now);
    if (!e) {
      if (limit < 1) return { allowed: false, count: 0, resetAt: now + windowMs };
      this.insert(m, key, { count: 1, resetAt: now + windowMs }, now);
      return { allowed: true, count: 1, resetAt: now + windowMs };
    }
    if (e.count >= limit) return { allowed: false, count: e.count, resetAt: e.resetAt };
    e.count++;
    return { allowed: true, count: e.count, resetAt: e.resetAt };
  }

  async peek(key: string, windowMs: number, now: number): Promise<{ count: number; resetAt: number }> {
    const e = this.current(this.mapFor(windowMs), key, now);
    return e ? { count: e.count, resetAt: e.resetAt } : { count: 0, resetAt: now };
  }

  async reset(key: string): Promise<void> {
    for (const m of this.windows.values()) m.delete(key);
  }

  async release(key: string, windowMs: number, now: number): Promise<void> {
    const e = this.current(this.mapFor(windowMs), key, now);
    if (e && e.count > 0) e.count--;
  }

  /** Keys currently tracked (all window lengths); for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const m of this.windows.values()) n += m.size;
    return n;
  }
}

const SECOND = 1000;
const MINUTE = 60_000;

function retryAfterSeconds(resetAt: number, now: number): string {
  return String(Math.max(1, Math.ceil((resetAt - now) / 1000)));
}

/** Who is counted: the AK for AK/SK calls (each key has its own budget), else the user. */
export function credentialKey(p: Principal): string {
  return p.via === 'aksk' && p.accessKey ? `ak:${p.accessKey}` : `user:${p.userId}`;
}

/** Per credential, per API (method + route pattern), per second and per minute. */
export class ApiThrottle {
  constructor(private readonly store: RateLimitStore, private readonly clock: Clock, private readonly limits: Pick<RateLimitConfig, 'perSecond' | 'perMinute'>) {}

  /** Counts the call; throws 429 when the credential is over either limit for this API. */
  async check(req: FastifyRequest, credential: string): Promise<void> {
    const api = `${req.method} ${req.routeOptions.url ?? req.url}`;
    const now = this.clock.now();
    const base = `api:${credential}:${api}`;
    const s = await this.store.hit(`${base}:s`, SECOND, this.limits.perSecond, now);
    if (!s.allowed) throw this.refusal(req, this.limits.perSecond, '1 second', s.resetAt, now);
    const m = await this.store.hit(`${base}:m`, MINUTE, this.limits.perMinute, now);
    if (!m.allowed) throw this.refusal(req, this.limits.perMinute, '1 minute', m.resetAt, now);
  }

  private refusal(req: FastifyRequest, limit: number, time: string, resetAt: number, now: number): ApiError {
    const policy = `policy user over ratelimit,limit:${limit},time:${time}`;
    const message = serviceOf(req) === 'clouddc' ? `Too many requests: ${policy}` : `The throttling threshold has been reached: ${policy}`;
    return new ApiError('rate_limited', message, { headers: { 'retry-after': retryAfterSeconds(resetAt, now) } });
  }
}

/**
 * Requests per source address, per second and per minute, counted before authentication: what an
 * unauthenticated client can make the gateway do (signature checks, token look-ups, join attempts,
 * audit rows) is bounded per address. The address is Fastify's `req.ip` (the peer, or behind a trusted
 * proxy the left-most X-Forwarded-For entry). Over the limit → 429 APIGW.0308 in the gateway's own
 * error shape, with Retry-After.
 */
export class AddressThrottle {
  constructor(private readonly store: RateLimitStore, private readonly clock: Clock, private readonly limits: Pick<RateLimitConfig, 'perAddressPerSecond' | 'perAddressPerMinute'>) {}

  /** Counts the request; throws 429 when the address is over either limit. */
  async check(address: string): Promise<void> {
    const now = this.clock.now();
    const s = await this.store.hit(`addr:${address}:s`, SECOND, this.limits.perAddressPerSecond, now);
    if (!s.allowed) throw this.refusal(this.limits.perAddressPerSecond, '1 second', s.resetAt, now);
    const m = await this.store.hit(`addr:${address}:m`, MINUTE, this.limits.perAddressPerMinute, now);
    if (!m.allowed) throw this.refusal(this.limits.perAddressPerMinute, '1 minute', m.resetAt, now);
  }

  private refusal(limit: number, time: string, resetAt: number, now: number): ApiError {
    return new ApiError('rate_limited', `The throttling threshold has been reached: policy ip over ratelimit,limit:${limit},time:${time}`, {
      code: 'APIGW.0308', headers: { 'retry-after': retryAfterSeconds(resetAt, now) },
    });
  }
}

/**
 * Failed password logins, per user and per source address, in a window of `loginFailureWindowSeconds`
 * starting at the first failure. While either count is at its limit every login for that user (or
 * from that address) is refused with 429 APIGW.0308, even with the right password; a success clears
 * the user's count (not the address's).
 *
 * Each attempt is counted before its password is checked (`check` reserves it atomically in both
 * windows), so a burst of parallel guesses cannot all pass the check while the slow hash runs
 * (security review #12): with a limit of 10, at most 10 parallel wrong passwords are tried. A
 * success gives the address its reserved attempt back and clears the user's count.
 */
export class LoginThrottle {
  constructor(private readonly store: RateLimitStore, private readonly clock: Clock, private readonly limits: Pick<RateLimitConfig, 'loginFailuresPerUser' | 'loginFailuresPerAddress' | 'loginFailureWindowSeconds'>) {}

  /** The LoginGuard for one request from `address`. */
  guard(address: string): LoginGuard {
    const windowMs = this.limits.loginFailureWindowSeconds * 1000;
    const addrKey = `login:addr:${address}`;
    const userKeyOf = (userKey: string) => `login:${userKey}`;
    return {
      check: async (userKey) => {
        const now = this.clock.now();
        const a = await this.store.hit(addrKey, windowMs, this.limits.loginFailuresPerAddress, now);
        if (!a.allowed) throw this.refusal('address', a.resetAt, now);
        const u = await this.store.hit(userKeyOf(userKey), windowMs, this.limits.loginFailuresPerUser, now);
        if (!u.allowed) {
          // Refused before any password was tried: the address's reservation does not count.
          await this.store.release(addrKey, windowMs, now);
          throw this.refusal('user', u.resetAt, now);
        }
      },
      succeeded: async (userKey) => {
        await this.store.reset(userKeyOf(userKey));
        await this.store.release(addrKey, windowMs, this.clock.now());
      },
    };
  }

  private refusal(what: 'user' | 'address', resetAt: number, now: number): ApiError {
    const retry = retryAfterSeconds(resetAt, now);
    return new ApiError('rate_limited', `The throttling threshold has been reached: too many failed logins for this ${what}; retry after ${retry} seconds.`, {
      code: 'APIGW.0308', headers: { 'retry-after': retry },
    });
  }
}
