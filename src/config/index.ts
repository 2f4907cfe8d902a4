/**
 * The one configuration loader. Precedence: built-in defaults < YAML file (`--config FILE` or
 * `PORTHOLE_CONFIG`) < `PORTHOLE_*` environment variables < command-line flags. Every key has one
 * spelling per layer, derived from its dotted name: `console.token_ttl_seconds` is
 * `console: {token_ttl_seconds: …}` in YAML, `PORTHOLE_CONSOLE_TOKEN_TTL_SECONDS` in the environment and
 * `--console-token-ttl-seconds` on the command line. Secrets may be given by value or by file
 * (`PORTHOLE_MASTER_KEY_FILE`, `master_key_file:`). The result is validated and frozen; nothing else in
 * the code reads `process.env`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { BackendNetworks } from '../proxy/backend-networks.js';

type Kind = 'string' | 'int' | 'bool' | 'list' | 'secret';
interface KeySpec { kind: Kind; default?: unknown; min?: number; max?: number; help: string }

/** Every configuration key, with its default. The docs table in README is generated from the same facts. */
export const KEYS = {
  host: { kind: 'string', default: '127.0.0.1', help: 'Address to listen on.' },
  port: { kind: 'int', default: 8080, min: 0, max: 65535, help: 'Port to listen on (0 = any free port).' },
  public_url: { kind: 'string', help: 'Base URL browsers and API clients use to reach this gateway (default http://{host}:{port}).' },
  data_dir: { kind: 'string', default: './data', help: 'Directory of the embedded SQLite database, the generated master key and demo.json.' },
  database_url: { kind: 'secret', help: 'postgres://… for scale-out; unset = embedded SQLite in data_dir.' },
  master_key: { kind: 'secret', help: '32-byte key (64 hex chars or base64) that encrypts stored secrets. Generated into data_dir when unset on SQLite.' },
  master_key_previous: { kind: 'secret', help: 'Earlier master keys (comma-separated), still accepted for reading while `porthole key rotate` re-seals under master_key.' },
  log_level: { kind: 'string', default: 'info', help: 'fatal|error|warn|info|debug|trace|silent' },
  node_id: { kind: 'string', help: 'Name of this gateway node (default: hostname-pid).' },
  fleet: { kind: 'string', help: 'Fleet file (YAML) applied at start: domains, projects, users, machines.' },
  demo: { kind: 'bool', help: 'Seed the demo domain/project/user and start the built-in demo desktop (default: on when no fleet and no database_url).' },
  allowed_origins: { kind: 'list', default: [], help: 'Extra browser Origins allowed to open console WebSockets (the public URL origin always is).' },
  trust_proxy: { kind: 'bool', default: false, help: 'Trust X-Forwarded-For/-Proto/-Host from a reverse proxy.' },
  body_limit_bytes: { kind: 'int', default: 65536, min: 1024, max: 16 * 1024 * 1024, help: 'Largest accepted API request body.' },
  'iam.token_ttl_seconds': { kind: 'int', default: 86400, min: 60, max: 7 * 86400, help: 'Validity of IAM tokens.' },
  'iam.identity_cache_seconds': { kind: 'int', default: 5, min: 0, max: 300, help: 'How long a validated IAM token\'s user, domain and roles, an access key with its owner (signatures are still verified on every call), and the projects checked for access may be reused without reading the store (0: never). Cleared at once by any change to users, domains, projects, roles or access keys on any node (announced on the cluster bus).' },
  'console.token_ttl_seconds': { kind: 'int', default: 600, min: 5, max: 86400, help: 'Validity of one-time console URLs.' },
  'console.connect_timeout_ms': { kind: 'int', default: 5000, min: 100, max: 120000, help: 'TCP connect timeout to a VNC server.' },
  'console.handshake_timeout_ms': { kind: 'int', default: 15000, min: 100, max: 120000, help: 'Time allowed for the browser and VNC handshakes.' },
  'console.upgrade_timeout_ms': { kind: 'int', default: 10000, min: 100, max: 120000, help: 'Time allowed from a console WebSocket upgrade request to its 101 or refusal (token redemption and database waits included); then the socket is closed.' },
  'console.idle_timeout_seconds': { kind: 'int', default: 1800, min: 5, max: 7 * 86400, help: 'Close a console with no traffic either way for this long.' },
  'console.max_session_seconds': { kind: 'int', default: 28800, min: 5, max: 30 * 86400, help: 'Maximum length of one console session.' },
  'console.max_buffered_bytes': { kind: 'int', default: 8 * 1024 * 1024, min: 65536, max: 1024 * 1024 * 1024, help: 'Per-session ceiling on bytes queued toward a slow browser.' },
  'console.lang': { kind: 'string', default: 'EN', help: 'lang= parameter put in console URLs.' },
  'console.default_zone': { kind: 'string', default: 'porthole', help: 'URL zone for endpoints without one.' },
  'ratelimit.per_second': { kind: 'int', default: 20, min: 1, max: 1_000_000, help: 'API calls allowed per credential (user or AK) per API per second; more → 429.' },
  'ratelimit.per_minute': { kind: 'int', default: 600, min: 1, max: 60_000_000, help: 'API calls allowed per credential (user or AK) per API per minute; more → 429.' },
  'ratelimit.per_address_per_second': { kind: 'int', default: 100, min: 1, max: 1_000_000, help: 'Requests allowed per source address per second, counted before authentication (behind a reverse proxy set trust_proxy); more → 429 APIGW.0308.' },
  'ratelimit.per_address_per_minute': { kind: 'int', default: 3000, min: 1, max: 60_000_000, help: 'Requests allowed per source address per minute, counted before authentication; more → 429 APIGW.0308.' },
  'audit.retention_days': { kind: 'int', default: 90, min: 0, max: 36500, help: 'Audit events older than this many days are deleted (in bounded batches, on every node); 0 = keep forever.' },
  'iam.login_failures_per_user': { kind: 'int', default: 10, min: 1, max: 1_000_000, help: 'Failed password logins allowed per user per login window; more → 429 until the window ends.' },
  'iam.login_failures_per_address': { kind: 'int', default: 30, min: 1, max: 1_000_000, help: 'Failed password logins allowed per source address per login window; more → 429 until the window ends.' },
  'iam.login_failure_window_seconds': { kind: 'int', default: 300, min: 1, max: 86400, help: 'Length of the failed-login window.' },
  'console.end_sessions_on_change': { kind: 'bool', default: true, help: 'Changing or deleting a machine or its console endpoint also ends its live consoles (close code 4007 revoked).' },
  'probe.interval_seconds': { kind: 'int', default: 30, min: 0, max: 86400, help: 'How often each VNC server (host:port) is probed with the console\'s own handshake (authenticated, up to ServerInit), ±20 % jitter; failing credentials back off; 0 = no prober.' },
  'probe.timeout_ms': { kind: 'int', default: 3000, min: 100, max: 60000, help: 'Time allowed for one probe (connect and the RFB handshake up to ServerInit).' },
  'probe.concurrency': { kind: 'int', default: 16, min: 1, max: 1024, help: 'Probes in flight at once.' },
  'admin.operator_domains': { kind: 'list', default: [], help: 'Domains whose administrators operate the gateway: they may create, rename and delete domains and manage any domain. A domain becomes one when the gateway or an operator creates it under a listed name (recorded by id: renaming a domain never grants it); removing a name revokes.' },
  'backends.allowed_networks': { kind: 'list', default: [], help: 'Where console endpoints may point: CIDRs (10.0.0.0/8, fd00::/8), addresses, host names and *.suffix names. Checked when an endpoint is set (400) and when it is dialled (a name resolving outside the list is not connected to). Empty = anywhere.' },
  redis_url: { kind: 'secret', help: 'redis://… (or rediss://) shared by every node: API throttling counters, AK lockouts and cross-node session commands. Unset: throttling counts per node; commands go through PostgreSQL LISTEN/NOTIFY (or stay local on SQLite).' },
  redis_key_prefix: { kind: 'string', default: 'porthole:', help: 'Prefix of every Redis key and pub/sub channel Porthole uses (several deployments may share one Redis).' },
  'drain.grace_seconds': { kind: 'int', default: 30, min: 0, max: 86400, help: 'On SIGTERM: how long live consoles may go on (new consoles and API calls get 503) before they are closed with 4010 shutdown.' },
  'cluster.heartbeat_seconds': { kind: 'int', default: 5, min: 1, max: 300, help: 'How often a node writes its heartbeat to the nodes table (PostgreSQL and SQLite).' },
  'cluster.node_timeout_seconds': { kind: 'int', default: 30, min: 2, max: 86400, help: 'A node whose heartbeat is older than this is declared lost by a survivor, which closes its sessions (close reason node_lost).' },
  'assistance.ttl_seconds': { kind: 'int', default: 3600, min: 60, max: 7 * 86400, help: 'Remote assistance: a share space closes as expired this long after it was created, whatever its state.' },
  'assistance.private_share_url': { kind: 'string', help: 'Base URL of the private (Direct Connect) share link: {url}/assist/join?code=… (default public_url).' },
  'assistance.internet_share_url': { kind: 'string', help: 'Base URL of the Internet share link: {url}/assist/join?code=… (default public_url). Its origin may open consoles.' },
  'assistance.join_max_failures': { kind: 'int', default: 5, min: 1, max: 1000, help: 'Wrong code/password attempts allowed per share space and per source address before joining is locked.' },
  'assistance.join_lockout_seconds': { kind: 'int', default: 300, min: 1, max: 86400, help: 'How long joining stays locked, and the window in which wrong attempts are counted.' },
} as const satisfies Record<string, KeySpec>;

export type KeyName = keyof typeof KEYS;

export interface ConsoleConfig {
  tokenTtlSeconds: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** From the upgrade request to the 101 or the refusal (proxy/upgrade.ts). */
  upgradeTimeoutMs: number;
  idleTimeoutSeconds: number;
  maxSessionSeconds: number;
  maxBufferedBytes: number;
  lang: string;
  defaultZone: string;
  /** Changing or deleting a machine or its endpoint also ends its live sessions (REVOKED). */
  endSessionsOnChange: boolean;
}

/** API throttling and password-login throttling (api/ratelimit.ts). */
/** The background liveness prober (proxy/prober.ts). */
export interface ProbeConfig {
  /** 0 = off. */
  intervalSeconds: number;
  timeoutMs: number;
  concurrency: number;
}

export interface RateLimitConfig {
  perSecond: number;
  perMinute: number;
  /** Per source address, before authentication (api/ratelimit.ts AddressThrottle). */
  perAddressPerSecond: number;
  perAddressPerMinute: number;
  loginFailuresPerUser: number;
  loginFailuresPerAddress: number;
  loginFailureWindowSeconds: number;
}

export interface Config {
  host: string;
  port: number;
  /** Without trailing slash. */
  publicUrl: string;
  /** True when public_url was derived from host/port (it is then fixed up once the port is known). */
  publicUrlDerived: boolean;
  dataDir: string;
  databaseUrl: string | null;
  /** Raw master key as configured (null → generate into data_dir on SQLite). */
  masterKey: Buffer | null;
  /** Earlier master keys, accepted for opening sealed values during a key rotation. */
  masterKeyPrevious: Buffer[];
  /** Names of the domains whose administrators operate the whole gateway. */
  operatorDomains: string[];
  /** backends.allowed_networks: CIDRs, addresses and host names console endpoints may point at (proxy/backend-networks.ts); empty = anywhere. */
  backendAllowedNetworks: string[];
  probe: ProbeConfig;
  logLevel: string;
  nodeId: string | null;
  fleet: string | null;
  demo: boolean;
  allowedOrigins: string[];
  trustProxy: boolean;
  bodyLimitBytes: number;
  iamTokenTtlSeconds: number;
  /** iam.identity_cache_seconds: reuse of validated tokens' principals, access keys and projects (domain/identity-cache.ts); 0 = off. */
  iamIdentityCacheSeconds: number;
  console: ConsoleConfig;
  rateLimit: RateLimitConfig;
  /** audit.retention_days: audit events older than this are deleted (domain/retention.ts); 0 = never. */
  auditRetentionDays: number;
  /** redis://… shared by the nodes (throttling, AK lockouts, cross-node commands); null = none. */
  redisUrl: string | null;
  /** Prefix of every Redis key and channel. */
  redisKeyPrefix: string;
  drain: DrainConfig;
  cluster: ClusterConfig;
  assistance: AssistanceConfig;
}

/** Remote assistance (domain/assistance.ts). */
export interface AssistanceConfig {
  ttlSeconds: number;
  /** Base URLs of the two share links (no trailing slash); null = the public URL. */
  privateShareUrl: string | null;
  internetShareUrl: string | null;
  joinMaxFailures: number;
  joinLockoutSeconds: number;
}

/** Stopping a node (SIGTERM): see gateway.ts `close`. */
export interface DrainConfig {
  /** How long live consoles may go on after SIGTERM before they are closed with 4010 shutdown. */
  graceSeconds: number;
}

/** Node liveness (domain/nodes.ts). */
export interface ClusterConfig {
  heartbeatSeconds: number;
  /** Heartbeat age after which a survivor declares the node lost and closes its sessions. */
  nodeTimeoutSeconds: number;
}

export interface LoadConfigInput {
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Base directory for relative paths (default process.cwd()). */
  cwd?: string;
}

const envName = (k: string) => 'PORTHOLE_' + k.replace(/\./g, '_').toUpperCase();
const flagName = (k: string) => '--' + k.replace(/[._]/g, '-');

function getPath(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function coerce(key: string, spec: KeySpec, raw: unknown, from: string): unknown {
  const bad = (what: string) => new ConfigError(key, `${what} (from ${from})`);
  switch (spec.kind) {
    case 'string':
    case 'secret': {
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      if (typeof raw !== 'string') throw bad('must be a string');
      return raw;
    }
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
      if (!Number.isSafeInteger(n)) throw bad(`must be an integer, got ${JSON.stringify(typeof raw === 'string' ? raw : typeof raw)}`);
      if (spec.min !== undefined && n < spec.min) throw bad(`must be ≥ ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw bad(`must be ≤ ${spec.max}, got ${n}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const v = raw.trim().toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(v)) return true;
        if (['0', 'false', 'no', 'off'].includes(v)) return false;
      }
      throw bad('must be true or false');
    }
    case 'list': {
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw;
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
      throw bad('must be a list of strings');
    }
  }
}

function readSecretFile(key: string, file: string, cwd: string): string {
  try {
    return readFileSync(path.resolve(cwd, file), 'utf8').trim();
  } catch (err) {
    throw new ConfigError(key, `cannot read ${key}_file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Parses `--key value`, `--key=value` and bare boolean `--flag` / `--no-flag`. Unknown flags are errors. */
function parseFlags(argv: readonly string[]): { values: Map<string, string | boolean>; configFile?: string; positional: string[] } {
  const byFlag = new Map<string, string>();
  for (const k of Object.keys(KEYS)) byFlag.set(flagName(k), k);
  for (const k of ['database_url', 'master_key', 'master_key_previous', 'redis_url']) byFlag.set(flagName(k) + '-file', k + '_file');
  const values = new Map<string, string | boolean>();
  const positional: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) { positional.push(arg); continue; }
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string | boolean | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === '--config') {
      configFile = value === undefined ? argv[++i] : (value as string);
      if (!configFile) throw new ConfigError('config', '--config needs a file name');
      continue;
    }
    let negated = false;
    if (!byFlag.has(name) && name.startsWith('--no-') && byFlag.has('--' + name.slice(5))) { name = '--' + name.slice(5); negated = true; }
    const key = byFlag.get(name);
    if (!key) throw new ConfigError(name, 'unknown flag');
    const spec = (KEYS as Record<string, KeySpec>)[key];
    if (spec?.kind === 'bool' && value === undefined) value = !negated;
    else if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(key, `${name} needs a value`);
    }
    values.set(key, value);
  }
  return { values, ...(configFile === undefined ? {} : { configFile }), positional };
}

function parseMasterKey(raw: string, key = 'master_key'): Buffer {
  const s = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  const b = Buffer.from(s, 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/_-]+=*$/.test(s)) return b;
  throw new ConfigError(key, 'must be 32 bytes as 64 hex characters or base64 (the value itself is not shown)');
}

export interface LoadedConfig { config: Readonly<Config>; positional: string[] }

/** Loads, validates and freezes the configuration. Throws ConfigError naming the bad key. */
export function loadConfig(input: LoadConfigInput = {}): LoadedConfig {
  const env = input.env ?? {};
  const cwd = input.cwd ?? process.cwd();
  const { values: flags, configFile: flagConfig, positional } = parseFlags(input.argv ?? []);

  let file: Record<string, unknown> = {};
  const configFile = flagConfig ?? env.PORTHOLE_CONFIG;
  if (configFile) {
    let text: string;
    try { text = readFileSync(path.resolve(cwd, configFile), 'utf8'); } catch (err) {
      throw new ConfigError('config', `cannot read ${configFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    let parsed: unknown;
    try { parsed = parseYaml(text); } catch (err) {
      throw new ConfigError('config', `${configFile} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) throw new ConfigError('config', `${configFile} must be a YAML mapping`);
    file = (parsed ?? {}) as Record<string, unknown>;
    // Unknown keys are refused: a typo must not silently fall back to a default.
    const known = new Set(Object.keys(KEYS).map((k) => k.split('.')[0]));
    for (const k of ['database_url_file', 'master_key_file', 'master_key_previous_file', 'redis_url_file']) known.add(k);
    for (const k of Object.keys(file)) if (!known.has(k)) throw new ConfigError(k, `unknown key in ${configFile}`);
  }

  const resolved: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(KEYS) as [string, KeySpec][]) {
    let value: unknown = spec.default;
    const fromFile = getPath(file, key);
    if (fromFile !== undefined && fromFile !== null) value = coerce(key, spec, fromFile, configFile ?? 'file');
    if (spec.kind === 'secret' && typeof file[key + '_file'] === 'string') value = readSecretFile(key, file[key + '_file'] as string, cwd);
    const e = env[envName(key)];
    if (e !== undefined && e !== '') value = coerce(key, spec, e, envName(key));
    if (spec.kind === 'secret') {
      const ef = env[envName(key) + '_FILE'];
      if (ef) value = readSecretFile(key, ef, cwd);
    }
    if (flags.has(key)) value = coerce(key, spec, flags.get(key), flagName(key));
    if (spec.kind === 'secret' && flags.has(key + '_file')) value = readSecretFile(key, String(flags.get(key + '_file')), cwd);
    resolved[key] = value;
  }

  const host = resolved.host as string;
  const port = resolved.port as number;
  let publicUrl = resolved.public_url as string | undefined;
  const publicUrlDerived = !publicUrl;
  if (!publicUrl) publicUrl = `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    if (u.search || u.hash) throw new Error('query');
  } catch {
    throw new ConfigError('public_url', 'must be an absolute http(s) URL without query or fragment');
  }
  publicUrl = publicUrl.replace(/\/+$/, '');

  for (const o of resolved.allowed_origins as string[]) {
    try { const u = new URL(o); if (u.origin !== o.replace(/\/$/, '')) throw new Error(); } catch {
      throw new ConfigError('allowed_origins', `${JSON.stringify(o)} is not an origin like https://portal.example.com`);
    }
  }
  const databaseUrl = (resolved.database_url as string | undefined) ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) throw new ConfigError('database_url', 'must start with postgres:// (unset it for embedded SQLite)');
  const masterKeyRaw = resolved.master_key as string | undefined;
  const masterKey = masterKeyRaw ? parseMasterKey(masterKeyRaw) : null;
  const previousRaw = (resolved.master_key_previous as string | undefined) ?? '';
  const masterKeyPrevious = previousRaw.split(/[\s,]+/).filter(Boolean).map((k) => parseMasterKey(k, 'master_key_previous'));
  if (masterKeyPrevious.length > 0 && !masterKey) throw new ConfigError('master_key_previous', 'needs master_key (the new key) to be set as well');
  const operatorDomains = resolved['admin.operator_domains'] as string[];
  const backendAllowedNetworks = resolved['backends.allowed_networks'] as string[];
  try { new BackendNetworks(backendAllowedNetworks); } catch (err) { throw new ConfigError('backends.allowed_networks', (err as Error).message); }
  if (!masterKey && databaseUrl) throw new ConfigError('master_key', 'is required with database_url (every node must share it); set PORTHOLE_MASTER_KEY or PORTHOLE_MASTER_KEY_FILE');
  const logLevel = resolved.log_level as string;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new ConfigError('log_level', `unknown level ${JSON.stringify(logLevel)}`);
  const zone = resolved['console.default_zone'] as string;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(zone)) throw new ConfigError('console.default_zone', 'must be 1–64 of A-Z a-z 0-9 . _ -');
  const fleet = (resolved.fleet as string | undefined) ?? null;
  const nodeIdRaw = (resolved.node_id as string | undefined) ?? null;
  // Node ids travel in cross-node commands and the nodes table: keep them to a safe alphabet.
  if (nodeIdRaw !== null && !/^[A-Za-z0-9._:@-]{1,128}$/.test(nodeIdRaw)) throw new ConfigError('node_id', 'must be 1–128 of A-Z a-z 0-9 . _ : @ -');
  const redisUrl = (resolved.redis_url as string | undefined) ?? null;
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) throw new ConfigError('redis_url', 'must start with redis:// or rediss:// (unset it to run without Redis)');
  const redisKeyPrefix = resolved.redis_key_prefix as string;
  if (!/^[A-Za-z0-9:._-]{0,64}$/.test(redisKeyPrefix)) throw new ConfigError('redis_key_prefix', 'must be 0–64 of A-Z a-z 0-9 : . _ -');
  const shareUrl = (key: 'assistance.private_share_url' | 'assistance.internet_share_url'): string | null => {
    const v = resolved[key] as string | undefined;
    if (v === undefined || v === '') return null;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      if (u.search || u.hash) throw new Error('query');
    } catch {
      throw new ConfigError(key, 'must be an absolute http(s) URL without query or fragment');
    }
    return v.replace(/\/+$/, '');
  };
  const heartbeatSeconds = resolved['cluster.heartbeat_seconds'] as number;
  const nodeTimeoutSeconds = resolved['cluster.node_timeout_seconds'] as number;
  if (nodeTimeoutSeconds < 2 * heartbeatSeconds) throw new ConfigError('cluster.node_timeout_seconds', `must be at least twice cluster.heartbeat_seconds (${heartbeatSeconds}), so one late heartbeat does not declare a node lost`);

  const config: Config = {
    host,
    port,
    publicUrl,
    publicUrlDerived,
    dataDir: path.resolve(cwd, resolved.data_dir as string),
    databaseUrl,
    masterKey,
    masterKeyPrevious,
    operatorDomains,
    backendAllowedNetworks,
    probe: {
      intervalSeconds: resolved['probe.interval_seconds'] as number,
      timeoutMs: resolved['probe.timeout_ms'] as number,
      concurrency: resolved['probe.concurrency'] as number,
    },
    logLevel,
    nodeId: nodeIdRaw,
    fleet: fleet === null ? null : path.resolve(cwd, fleet),
    demo: (resolved.demo as boolean | undefined) ?? (fleet === null && databaseUrl === null),
    allowedOrigins: (resolved.allowed_origins as string[]).map((o) => o.replace(/\/$/, '')),
    trustProxy: resolved.trust_proxy as boolean,
    bodyLimitBytes: resolved.body_limit_bytes as number,
    iamTokenTtlSeconds: resolved['iam.token_ttl_seconds'] as number,
    iamIdentityCacheSeconds: resolved['iam.identity_cache_seconds'] as number,
    console: {
      tokenTtlSeconds: resolved['console.token_ttl_seconds'] as number,
      connectTimeoutMs: resolved['console.connect_timeout_ms'] as number,
      handshakeTimeoutMs: resolved['console.handshake_timeout_ms'] as number,
      upgradeTimeoutMs: resolved['console.upgrade_timeout_ms'] as number,
      idleTimeoutSeconds: resolved['console.idle_timeout_seconds'] as number,
      maxSessionSeconds: resolved['console.max_session_seconds'] as number,
      maxBufferedBytes: resolved['console.max_buffered_bytes'] as number,
      lang: resolved['console.lang'] as string,
      defaultZone: zone,
      endSessionsOnChange: resolved['console.end_sessions_on_change'] as boolean,
    },
    rateLimit: {
      perSecond: resolved['ratelimit.per_second'] as number,
      perMinute: resolved['ratelimit.per_minute'] as number,
      perAddressPerSecond: resolved['ratelimit.per_address_per_second'] as number,
      perAddressPerMinute: resolved['ratelimit.per_address_per_minute'] as number,
      loginFailuresPerUser: resolved['iam.login_failures_per_user'] as number,
      loginFailuresPerAddress: resolved['iam.login_failures_per_address'] as number,
      loginFailureWindowSeconds: resolved['iam.login_failure_window_seconds'] as number,
    },
    auditRetentionDays: resolved['audit.retention_days'] as number,
    redisUrl,
    redisKeyPrefix,
    drain: { graceSeconds: resolved['drain.grace_seconds'] as number },
    cluster: { heartbeatSeconds, nodeTimeoutSeconds },
    assistance: {
      ttlSeconds: resolved['assistance.ttl_seconds'] as number,
      privateShareUrl: shareUrl('assistance.private_share_url'),
      internetShareUrl: shareUrl('assistance.internet_share_url'),
      joinMaxFailures: resolved['assistance.join_max_failures'] as number,
      joinLockoutSeconds: resolved['assistance.join_lockout_seconds'] as number,
    },
  };
  Object.freeze(config.console);
  Object.freeze(config.rateLimit);
  Object.freeze(config.allowedOrigins);
  Object.freeze(config.probe);
  Object.freeze(config.operatorDomains);
  Object.freeze(config.backendAllowedNetworks);
  Object.freeze(config.drain);
  Object.freeze(config.cluster);
  Object.freeze(config.assistance);
  return { config: Object.freeze(config), positional };
}

/** Returns a copy with the actual listening port filled into a derived public URL. */
export function withListeningPort(config: Readonly<Config>, port: number): Readonly<Config> {
  if (!config.publicUrlDerived) return config;
  const u = new URL(config.publicUrl);
  u.port = String(port);
  return Object.freeze({ ...config, port, publicUrl: u.toString().replace(/\/+$/, '') });
}

export const configKeyNames = { envName, flagName };
