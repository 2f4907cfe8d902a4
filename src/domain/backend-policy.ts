/**
 * Where console endpoints may point, as the domain services see it: the operator's
 * `backends.allowed_networks` (implemented over node:net in proxy/backend-networks.ts, which also
 * checks every dial). Consulted whenever an endpoint is set — admin API and fleet files — so a tenant
 * administrator cannot aim the gateway at arbitrary hosts and ports (security review #10).
 */
export interface BackendPolicy {
  /** Why `host:port` may not be a console backend (safe to show the caller), or null. */
  hostProblem(host: string, port: number): string | null;
}

/** No restriction (`backends.allowed_networks` empty). */
export const ANY_BACKEND: BackendPolicy = { hostProblem: () => null };
