/**
 * The `porthole <noun> <verb>` commands. Each maps to one admin API call (api/routes/admin-*.ts) or,
 * for `login` and `key generate`, to what needs no admin credentials; `backup` and `restore` work on
 * the local data directory instead (store/sqlite/backup.ts). Data goes to stdout (a table, a
 * `key: value` block, or with --json the API's JSON), diagnostics to stderr.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { flag, flags, has, required, boolFlag, type FlagSpec, type ParsedArgs } from './args.js';
import { CliError, ExitCode, httpError, queryString, type AdminClient } from './client.js';
import { details, table, type Column } from './output.js';
import { loadConfig, type Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { gatewayVersion } from '../observability/metrics.js';
import { backupSqlite, BackupError, masterKeysFor, restoreSqlite, sqliteFileOf } from '../store/sqlite/backup.js';

type Json = Record<string, unknown>;

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  readStdin(): Promise<string>;
  readFile(path: string): string;
  fetch?: typeof fetch;
}

export interface Ctx {
  a: ParsedArgs;
  io: CliIo;
  json: boolean;
  client(): AdminClient;
  /** Prints `data` as JSON with --json, else `human()`. */
  out(data: unknown, human: () => string): void;
  /** A diagnostic line on stderr. */
  note(msg: string): void;
}

export interface Command {
  noun: string;
  verb: string;
  /** Positional arguments, all required. */
  args?: string[];
  flags?: FlagSpec[];
  summary: string;
  run(c: Ctx): Promise<void>;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const short = (id: unknown) => (typeof id === 'string' ? id.slice(0, 8) : '-');
const seg = (s: string) => encodeURIComponent(s);

function readText(c: Ctx, path: string, what: string): string {
  try {
    return c.io.readFile(path);
  } catch (err) {
    throw new CliError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, ExitCode.USAGE);
  }
}

/** A secret from `--<name>-file F` or `--<name>-stdin` (one trailing newline dropped). */
async function secretFrom(c: Ctx, name: string): Promise<string | undefined> {
  const file = flag(c.a, `${name}-file`);
  if (file !== undefined && has(c.a, `${name}-stdin`)) throw new CliError(`give --${name}-file or --${name}-stdin, not both`, ExitCode.USAGE);
  if (file !== undefined) return readText(c, file, name).replace(/\r?\n$/, '');
  if (has(c.a, `${name}-stdin`)) return (await c.io.readStdin()).replace(/\r?\n$/, '');
  return undefined;
}

const secretFlags = (name: string, what: string): FlagSpec[] => [
  { name: `${name}-file`, value: true, help: `Read the ${what} from this file.` },
  { name: `${name}-stdin`, help: `Read the ${what} from standard input.` },
];

/** The last path segment of an API object (`{project: {...}}` → the object). */
function unwrap(body: unknown, key: string): Json {
  if (isObj(body) && isObj(body[key])) return body[key];
  throw new CliError(`unexpected answer from the gateway (no ${key})`, ExitCode.FAILURE);
}

function listOf(body: unknown, key: string): Json[] {
  if (isObj(body) && Array.isArray(body[key])) return (body[key] as unknown[]).filter(isObj);
  throw new CliError(`unexpected answer from the gateway (no ${key} list)`, ExitCode.FAILURE);
}

function showOne(c: Ctx, body: unknown, key: string): void {
  c.out(body, () => details(unwrap(body, key)));
}

function showList(c: Ctx, body: unknown, key: string, columns: Column[]): void {
  c.out(body, () => table(listOf(body, key), columns));
}

function deleted(c: Ctx, type: string, id: string): void {
  c.out({ deleted: { type, id } }, () => '');
  c.note(`deleted ${type} ${id}`);
}

// ---------------------------------------------------------------------------------------------
// Attribute and console flags shared by the machine nouns

/** `--attr k=v`: v is JSON when it parses as JSON (numbers, booleans, lists, objects), else a string. */
function attrValue(v: string): unknown {
  try { return JSON.parse(v) as unknown; } catch { return v; }
}

function attributesFrom(c: Ctx): Json | undefined {
  let out: Json | undefined;
  const file = flag(c.a, 'attributes-file');
  if (file !== undefined) {
    let parsed: unknown;
    try { parsed = parseYaml(readText(c, file, 'attributes file')); } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`${file} is not YAML or JSON: ${(err as Error).message.split('\n')[0]}`, ExitCode.USAGE);
    }
    if (!isObj(parsed)) throw new CliError(`${file} must hold a mapping of attributes`, ExitCode.USAGE);
    out = parsed;
  }
  for (const kv of flags(c.a, 'attr')) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`--attr ${kv}: use --attr key=value`, ExitCode.USAGE);
    out ??= {};
    out[kv.slice(0, i)] = attrValue(kv.slice(i + 1));
  }
  return out;
}

const CONSOLE_FLAGS: FlagSpec[] = [
  { name: 'security', value: true, help: 'none | vncauth | vencrypt.' },
  ...secretFlags('password', 'VNC password'),
  { name: 'zone', value: true, help: 'URL zone (/vnc/{zone}/…).' },
  { name: 'ca-cert', value: true, help: 'VeNCrypt: PEM file of the CA that signed the server certificate.' },
  { name: 'client-cert', value: true, help: 'VeNCrypt: PEM file of the client certificate.' },
  { name: 'client-key', value: true, help: 'VeNCrypt: PEM file of the client certificate\'s key.' },
  { name: 'servername', value: true, help: 'VeNCrypt: name the server certificate must carry (default: CA check only).' },
  { name: 'vencrypt-subtypes', value: true, help: 'VeNCrypt: allowed subtypes, comma-separated (x509plain,x509vnc,x509none,tlsplain,tlsvnc,tlsnone).' },
  { name: 'allow-anonymous-tls', value: true, help: 'VeNCrypt: true to permit the anonymous tls* subtypes (not authenticated).' },
  { name: 'username', value: true, help: 'VeNCrypt x509plain: user name (with the password).' },
  { name: 'clipboard', value: true, help: 'both | to_machine | from_machine | off.' },
  { name: 'clipboard-max-bytes', value: true, help: 'Clipboard size cap in bytes (both directions).' },
  { name: 'session-mode', value: true, help: 'shared | exclusive (one console at a time).' },
];

/** Endpoint fields from flags (`urlFlag` holds the vnc:// URL); undefined when none given. */
async function consoleFrom(c: Ctx, urlFlag: string): Promise<Json | undefined> {
  const out: Json = {};
  const url = flag(c.a, urlFlag);
  if (url !== undefined) out.url = url;
  const security = flag(c.a, 'security');
  if (security !== undefined) out.security = security;
  const zone = flag(c.a, 'zone');
  if (zone !== undefined) out.zone = zone;
  const password = await secretFrom(c, 'password');
  if (password !== undefined) out.password = password;
  for (const [f, key] of [['ca-cert', 'ca_cert'], ['client-cert', 'client_cert'], ['client-key', 'client_key']] as const) {
    const file = flag(c.a, f);
    if (file !== undefined) out[key] = readText(c, file, f);
  }
  for (const [f, key] of [['servername', 'servername'], ['username', 'username'], ['clipboard', 'clipboard'], ['session-mode', 'session_mode']] as const) {
    const v = flag(c.a, f);
    if (v !== undefined) out[key] = v;
  }
  const subtypes = flag(c.a, 'vencrypt-subtypes');
  if (subtypes !== undefined) out.vencrypt_subtypes = subtypes.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  const anon = flag(c.a, 'allow-anonymous-tls');
  if (anon !== undefined) out.allow_anonymous_tls = anon === 'true';
  const max = flag(c.a, 'clipboard-max-bytes');
  if (max !== undefined) out.clipboard_max_bytes = Number(max);
  return Object.keys(out).length > 0 ? out : undefined;
}

// ---------------------------------------------------------------------------------------------
// Column sets

/** The console state (`auth_failed: <server's reason>`, `refused: <reason>`), then the desktop's login status or a non-ACTIVE ECS status. */
function liveColumn(v: unknown): string {
  if (!isObj(v)) return '-';
  const state = `${String(v.state ?? v.reachability)}${typeof v.reason === 'string' && v.reason !== '' ? `: ${v.reason}` : ''}`;
  return `${state}${v.login_status ? ` ${String(v.login_status)}` : v.status && v.status !== 'ACTIVE' ? ` ${String(v.status)}` : ''}`;
}

const MACHINE_COLUMNS: Column[] = [
  { title: 'ID', path: 'id' },
  { title: 'NAME', path: 'name' },
  { title: 'PROJECT', path: 'project_id', format: short },
  { title: 'STATUS', path: 'status' },
  { title: 'LIVE', path: 'live', format: liveColumn },
  { title: 'SESSIONS', path: 'live.sessions_open' },
  { title: 'CONSOLE', path: 'console', format: (v) => (isObj(v) ? `${String(v.url)} ${String(v.security)}` : '-') },
];

const roleList = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v.filter(isObj).map((r) => `${String(r.role)}@${short(r.project_id)}`).join(',') : '-');

// ---------------------------------------------------------------------------------------------

function machineCommands(kind: 'cloudserver' | 'physicalserver' | 'desktop', what: string): Command[] {
  const plural = `${kind}s`;
  const base = `/admin/v1/${plural}`;
  const attrFlags: FlagSpec[] = [
    { name: 'attr', value: true, repeat: true, help: kind === 'desktop' ? 'A DesktopDetailInfo attribute key=value (JSON values allowed); repeatable.' : 'An attribute key=value (JSON values allowed); repeatable.' },
    { name: 'attributes-file', value: true, help: 'YAML or JSON file with attributes.' },
  ];
  return [
    {
      noun: kind, verb: 'list', summary: `List ${what}s with live status.`,
      flags: [{ name: 'project', value: true, help: 'Only this project (id).' }, { name: 'name', value: true, help: 'Name contains.' }, { name: 'status', value: true, help: 'Stored status.' }],
      async run(c) {
        const q = queryString({ project_id: flag(c.a, 'project'), name: flag(c.a, 'name'), status: flag(c.a, 'status') });
        showList(c, await c.client().call('GET', base, { query: q }), plural, MACHINE_COLUMNS);
      },
    },
    {
      noun: kind, verb: 'get', args: ['ID'], summary: `Show a ${what}.`,
      async run(c) { showOne(c, await c.client().call('GET', `${base}/${seg(c.a.positional[0]!)}`), kind); },
    },
    {
      noun: kind, verb: 'create', summary: `Register a ${what}.`,
      flags: [
        { name: 'project', value: true, help: 'Project id (required).' }, { name: 'name', value: true, help: 'Name (required).' },
        { name: 'id', value: true, help: 'UUID (default: derived from project, kind and name).' }, { name: 'status', value: true, help: 'ACTIVE (default), SHUTOFF, …' },
        ...attrFlags, { name: 'console', value: true, help: 'vnc://host:port of its VNC server.' }, ...CONSOLE_FLAGS,
      ],
      async run(c) {
        const body: Json = { project_id: required(c.a, 'project'), name: required(c.a, 'name') };
        const id = flag(c.a, 'id');
        if (id !== undefined) body.id = id;
        const status = flag(c.a, 'status');
        if (status !== undefined) body.status = status;
        const attributes = attributesFrom(c);
        if (attributes) body.attributes = attributes;
        const console = await consoleFrom(c, 'console');
        if (console) {
          if (console.url === undefined) throw new CliError('--console vnc://host:port is required with the other console flags', ExitCode.USAGE);
          body.console = console;
        }
        showOne(c, await c.client().call('POST', base, { json: { [kind]: body } }), kind);
      },
    },
    {
      noun: kind, verb: 'update', args: ['ID'], summary: `Change a ${what} (revokes its console links; ends its sessions by policy).`,
      flags: [
        { name: 'name', value: true, help: 'New name.' }, { name: 'status', value: true, help: 'New status (SHUTOFF refuses consoles).' }, ...attrFlags,
        { name: 'console', value: true, help: 'New vnc://host:port.' }, ...CONSOLE_FLAGS, { name: 'no-console', help: 'Remove its console endpoint.' },
      ],
      async run(c) {
        const body: Json = {};
        for (const f of ['name', 'status']) { const v = flag(c.a, f); if (v !== undefined) body[f] = v; }
        const attributes = attributesFrom(c);
        if (attributes) body.attributes = attributes;
        const console = await consoleFrom(c, 'console');
        if (console && has(c.a, 'no-console')) throw new CliError('--no-console contradicts the console flags', ExitCode.USAGE);
        if (console) body.console = console;
        if (has(c.a, 'no-console')) body.console = null;
        if (Object.keys(body).length === 0) throw new CliError('nothing to change (see --help)', ExitCode.USAGE);
        const r = await c.client().call('PATCH', `${base}/${seg(c.a.positional[0]!)}`, { json: { [kind]: body } });
        const changed = isObj(r) && Array.isArray(r.changed) ? (r.changed as string[]) : [];
        if (!c.json) c.note(changed.length ? `changed: ${changed.join(', ')}` : 'no change');
        showOne(c, r, kind);
      },
    },
    {
      noun: kind, verb: 'console-url', args: ['ID'], summary: `Mint a one-time console link for a ${what} (--view-only: the gateway drops all input).`,
      flags: [{ name: 'view-only', help: 'A view-only link (enforced by the gateway).' }],
      async run(c) {
        const r = await c.client().call('POST', `${base}/${seg(c.a.positional[0]!)}/console-url`, { json: { view_only: has(c.a, 'view-only') } });
        const link = isObj(r) && isObj(r.console_url) ? r.console_url : {};
        c.out(r, () => `${String(link.url)}\n`);
      },
    },
    {
      noun: kind, verb: 'delete', args: ['ID'], summary: `Delete a ${what} (revokes its console links; ends its sessions by policy).`,
      async run(c) {
        const id = c.a.positional[0]!;
        await c.client().call('DELETE', `${base}/${seg(id)}`);
        deleted(c, kind, id);
      },
    },
  ];
}

/** Flags of the local commands: where the data directory and the master key are, as for `porthole serve`. */
const LOCAL_FLAGS: FlagSpec[] = [
  { name: 'data-dir', value: true, help: 'The gateway\'s data directory (default $PORTHOLE_DATA_DIR, the config file\'s, else ./data).' },
  { name: 'config', value: true, help: 'The gateway\'s YAML configuration file (for data_dir and the master key).' },
  { name: 'master-key-file', value: true, help: 'The master key, if the gateway is given one (default $PORTHOLE_MASTER_KEY[_FILE], else {data_dir}/master.key).' },
  { name: 'master-key-previous-file', value: true, help: 'Earlier master keys during a rotation.' },
];

export const COMMANDS: Command[] = [
  // Domains
  {
    noun: 'domain', verb: 'list', summary: 'List the domains you administer (operators: all).',
    async run(c) { showList(c, await c.client().call('GET', '/admin/v1/domains'), 'domains', [{ title: 'ID', path: 'id' }, { title: 'NAME', path: 'name' }, { title: 'CREATED', path: 'created_at' }]); },
  },
  {
    noun: 'domain', verb: 'get', args: ['ID'], summary: 'Show a domain.',
    async run(c) { showOne(c, await c.client().call('GET', `/admin/v1/domains/${seg(c.a.positional[0]!)}`), 'domain'); },
  },
  {
    noun: 'domain', verb: 'create', summary: 'Create a domain and its first administrator (operators).',
    flags: [{ name: 'name', value: true, help: 'Domain name (required).' }, { name: 'id', value: true, help: '32 hex (default: derived from the name).' },
      { name: 'admin-user', value: true, help: 'Name of its first domain administrator (required).' }, ...secretFlags('admin-password', 'administrator\'s password (required)')],
    async run(c) {
      const password = await secretFrom(c, 'admin-password');
      if (password === undefined) throw new CliError('--admin-password-file or --admin-password-stdin is required', ExitCode.USAGE);
      const domain: Json = { name: required(c.a, 'name'), admin: { name: required(c.a, 'admin-user'), password } };
      const id = flag(c.a, 'id');
      if (id !== undefined) domain.id = id;
      showOne(c, await c.client().call('POST', '/admin/v1/domains', { json: { domain } }), 'domain');
    },
  },
  {
    noun: 'domain', verb: 'rename', args: ['ID'], summary: 'Rename a domain (operators).', flags: [{ name: 'name', value: true, help: 'New name (required).' }],
    async run(c) { showOne(c, await c.client().call('PATCH', `/admin/v1/domains/${seg(c.a.positional[0]!)}`, { json: { domain: { name: required(c.a, 'name') } } }), 'domain'); },
  },
  {
    noun: 'domain', verb: 'delete', args: ['ID'], summary: 'Delete a domain without projects, with its users (operators).',
    async run(c) { const id = c.a.positional[0]!; await c.client().call('DELETE', `/admin/v1/domains/${seg(id)}`); deleted(c, 'domain', id); },
  },

  // Projects
  {
    noun: 'project', verb: 'list', summary: 'List projects.', flags: [{ name: 'domain', value: true, help: 'Domain id (default: all you administer).' }],
    async run(c) {
      showList(c, await c.client().call('GET', '/admin/v1/projects', { query: queryString({ domain_id: flag(c.a, 'domain') }) }), 'projects',
        [{ title: 'ID', path: 'id' }, { title: 'NAME', path: 'name' }, { title: 'DOMAIN', path: 'domain_id' }]);
    },
  },
  {
    noun: 'project', verb: 'get', args: ['ID'], summary: 'Show a project.',
    async run(c) { showOne(c, await c.client().call('GET', `/admin/v1/projects/${seg(c.a.positional[0]!)}`), 'project'); },
  },
  {
    noun: 'project', verb: 'create', summary: 'Create a project.',
    flags: [{ name: 'name', value: true, help: 'Name (required).' }, { name: 'domain', value: true, help: 'Domain id (default: yours).' }, { name: 'id', value: true, help: '32 hex (default: derived from the names).' }],
    async run(c) {
      const project: Json = { name: required(c.a, 'name') };
      const d = flag(c.a, 'domain');
      if (d !== undefined) project.domain_id = d;
      const id = flag(c.a, 'id');
      if (id !== undefined) project.id = id;
      showOne(c, await c.client().call('POST', '/admin/v1/projects', { json: { project } }), 'project');
    },
  },
  {
    noun: 'project', verb: 'rename', args: ['ID'], summary: 'Rename a project.', flags: [{ name: 'name', value: true, help: 'New name (required).' }],
    async run(c) { showOne(c, await c.client().call('PATCH', `/admin/v1/projects/${seg(c.a.positional[0]!)}`, { json: { project: { name: required(c.a, 'name') } } }), 'project'); },
  },
  {
    noun: 'project', verb: 'delete', args: ['ID'], summary: 'Delete a project without machines.',
    async run(c) { const id = c.a.positional[0]!; await c.client().call('DELETE', `/admin/v1/projects/${seg(id)}`); deleted(c, 'project', id); },
  },

  // Users
  {
    noun: 'user', verb: 'list', summary: 'List users and their roles.', flags: [{ name: 'domain', value: true, help: 'Domain id (default: yours).' }],
    async run(c) {
      showList(c, await c.client().call('GET', '/admin/v1/users', { query: queryString({ domain_id: flag(c.a, 'domain') }) }), 'users', [
        { title: 'ID', path: 'id' }, { title: 'NAME', path: 'name' }, { title: 'ADMIN', path: 'domain_admin' }, { title: 'DISABLED', path: 'disabled' },
        { title: 'ROLES', path: 'roles', format: roleList },
      ]);
    },
  },
  {
    noun: 'user', verb: 'get', args: ['ID'], summary: 'Show a user.',
    async run(c) { showOne(c, await c.client().call('GET', `/admin/v1/users/${seg(c.a.positional[0]!)}`), 'user'); },
  },
  {
    noun: 'user', verb: 'create', summary: 'Create a user.',
    flags: [{ name: 'name', value: true, help: 'Name (required).' }, ...secretFlags('password', 'password (required, ≥ 8 characters)'),
      { name: 'domain-admin', help: 'Make them a domain administrator.' }, { name: 'disabled', help: 'Create disabled.' }, { name: 'domain', value: true, help: 'Domain id (default: yours).' }],
    async run(c) {
      const password = await secretFrom(c, 'password');
      if (password === undefined) throw new CliError('--password-file or --password-stdin is required', ExitCode.USAGE);
      const user: Json = { name: required(c.a, 'name'), password, domain_admin: has(c.a, 'domain-admin'), disabled: has(c.a, 'disabled') };
      const d = flag(c.a, 'domain');
      if (d !== undefined) user.domain_id = d;
      showOne(c, await c.client().call('POST', '/admin/v1/users', { json: { user } }), 'user');
    },
  },
  {
    noun: 'user', verb: 'update', args: ['ID'], summary: 'Change a user.',
    flags: [{ name: 'name', value: true, help: 'New name.' }, ...secretFlags('password', 'new password'),
      { name: 'domain-admin', value: true, help: 'true | false.' }, { name: 'disabled', value: true, help: 'true | false.' }],
    async run(c) {
      const user: Json = {};
      const name = flag(c.a, 'name');
      if (name !== undefined) user.name = name;
      const password = await secretFrom(c, 'password');
      if (password !== undefined) user.password = password;
      const admin = boolFlag(c.a, 'domain-admin');
      if (admin !== undefined) user.domain_admin = admin;
      const disabled = boolFlag(c.a, 'disabled');
      if (disabled !== undefined) user.disabled = disabled;
      if (Object.keys(user).length === 0) throw new CliError('nothing to change (see --help)', ExitCode.USAGE);
      showOne(c, await c.client().call('PATCH', `/admin/v1/users/${seg(c.a.positional[0]!)}`, { json: { user } }), 'user');
    },
  },
  {
    noun: 'user', verb: 'delete', args: ['ID'], summary: 'Delete a user with their keys and tokens.',
    async run(c) { const id = c.a.positional[0]!; await c.client().call('DELETE', `/admin/v1/users/${seg(id)}`); deleted(c, 'user', id); },
  },

  // Role bindings
  {
    noun: 'role', verb: 'list', summary: 'List a user\'s role bindings.', flags: [{ name: 'user', value: true, help: 'User id (required).' }],
    async run(c) {
      const body = await c.client().call('GET', `/admin/v1/users/${seg(required(c.a, 'user'))}`);
      const roles = isObj(body) && isObj(body.user) && Array.isArray(body.user.roles) ? body.user.roles.filter(isObj) : [];
      c.out({ roles }, () => table(roles, [{ title: 'PROJECT', path: 'project_id' }, { title: 'ROLE', path: 'role' }]));
    },
  },
  {
    noun: 'role', verb: 'set', summary: 'Give a user a role in a project.',
    flags: [{ name: 'user', value: true, help: 'User id (required).' }, { name: 'project', value: true, help: 'Project id (required).' }, { name: 'role', value: true, help: 'admin | operator | viewer (required).' }],
    async run(c) {
      const body = await c.client().call('PUT', `/admin/v1/users/${seg(required(c.a, 'user'))}/roles/${seg(required(c.a, 'project'))}`, { json: { role: required(c.a, 'role') } });
      showOne(c, body, 'user');
    },
  },
  {
    noun: 'role', verb: 'remove', summary: 'Remove a user\'s role in a project.',
    flags: [{ name: 'user', value: true, help: 'User id (required).' }, { name: 'project', value: true, help: 'Project id (required).' }],
    async run(c) { showOne(c, await c.client().call('DELETE', `/admin/v1/users/${seg(required(c.a, 'user'))}/roles/${seg(required(c.a, 'project'))}`), 'user'); },
  },

  // Access keys
  {
    noun: 'accesskey', verb: 'list', summary: 'List access keys (never their SK).', flags: [{ name: 'user', value: true, help: 'Only this user\'s (id).' }],
    async run(c) {
      showList(c, await c.client().call('GET', '/admin/v1/access-keys', { query: queryString({ user_id: flag(c.a, 'user') }) }), 'access_keys', [
        { title: 'ACCESS KEY', path: 'access_key' }, { title: 'USER', path: 'user_id' }, { title: 'STATUS', path: 'status' }, { title: 'LAST USED', path: 'last_used_at' }, { title: 'DESCRIPTION', path: 'description' },
      ]);
    },
  },
  {
    noun: 'accesskey', verb: 'create', summary: 'Create an access key; the SK is printed once.',
    flags: [{ name: 'user', value: true, help: 'User id (required).' }, { name: 'description', value: true, help: 'Description.' }],
    async run(c) {
      const key: Json = { user_id: required(c.a, 'user') };
      const d = flag(c.a, 'description');
      if (d !== undefined) key.description = d;
      const body = await c.client().call('POST', '/admin/v1/access-keys', { json: { access_key: key } });
      if (!c.json) c.note('the secret key is shown only now: store it safely');
      showOne(c, body, 'access_key');
    },
  },
  {
    noun: 'accesskey', verb: 'get', args: ['AK'], summary: 'Show an access key.',
    async run(c) { showOne(c, await c.client().call('GET', `/admin/v1/access-keys/${seg(c.a.positional[0]!)}`), 'access_key'); },
  },
  {
    noun: 'accesskey', verb: 'update', args: ['AK'], summary: 'Enable, disable or describe an access key.',
    flags: [{ name: 'status', value: true, help: 'active | inactive.' }, { name: 'description', value: true, help: 'Description.' }],
    async run(c) {
      const key: Json = {};
      for (const f of ['status', 'description']) { const v = flag(c.a, f); if (v !== undefined) key[f] = v; }
      if (Object.keys(key).length === 0) throw new CliError('nothing to change (see --help)', ExitCode.USAGE);
      showOne(c, await c.client().call('PATCH', `/admin/v1/access-keys/${seg(c.a.positional[0]!)}`, { json: { access_key: key } }), 'access_key');
    },
  },
  {
    noun: 'accesskey', verb: 'delete', args: ['AK'], summary: 'Delete an access key.',
    async run(c) { const id = c.a.positional[0]!; await c.client().call('DELETE', `/admin/v1/access-keys/${seg(id)}`); deleted(c, 'accesskey', id); },
  },

  // Machines
  ...machineCommands('cloudserver', 'cloud server (ECS)'),
  ...machineCommands('physicalserver', 'physical server (CloudDC)'),
  ...machineCommands('desktop', 'desktop (Workspace)'),
  {
    noun: 'desktop', verb: 'assign', args: ['ID'], summary: 'Assign a desktop to a user of its domain.',
    flags: [{ name: 'user', value: true, help: 'User name (required).' }, { name: 'group', value: true, help: 'sudo | default | administrators | users (default users).' }],
    async run(c) {
      const body: Json = { user_name: required(c.a, 'user') };
      const g = flag(c.a, 'group');
      if (g !== undefined) body.user_group = g;
      showOne(c, await c.client().call('POST', `/admin/v1/desktops/${seg(c.a.positional[0]!)}/users`, { json: body }), 'desktop');
    },
  },
  {
    noun: 'desktop', verb: 'unassign', args: ['ID'], summary: 'Remove a user from a desktop.', flags: [{ name: 'user', value: true, help: 'User name (required).' }],
    async run(c) { showOne(c, await c.client().call('DELETE', `/admin/v1/desktops/${seg(c.a.positional[0]!)}/users/${seg(required(c.a, 'user'))}`), 'desktop'); },
  },

  // Console endpoints
  {
    noun: 'endpoint', verb: 'get', args: ['MACHINE_ID'], summary: 'Show a machine\'s console endpoint (no secrets).',
    async run(c) { showOne(c, await c.client().call('GET', `/admin/v1/endpoints/${seg(c.a.positional[0]!)}`), 'endpoint'); },
  },
  {
    noun: 'endpoint', verb: 'set', args: ['MACHINE_ID'], summary: 'Set a machine\'s console endpoint (omitted secrets are kept).',
    flags: [{ name: 'console', value: true, help: 'vnc://host:port (required).' }, ...CONSOLE_FLAGS],
    async run(c) {
      required(c.a, 'console');
      const endpoint = (await consoleFrom(c, 'console'))!;
      showOne(c, await c.client().call('PUT', `/admin/v1/endpoints/${seg(c.a.positional[0]!)}`, { json: { endpoint } }), 'endpoint');
    },
  },
  {
    noun: 'endpoint', verb: 'delete', args: ['MACHINE_ID'], summary: 'Remove a machine\'s console endpoint.',
    async run(c) { const id = c.a.positional[0]!; await c.client().call('DELETE', `/admin/v1/endpoints/${seg(id)}`); deleted(c, 'endpoint', id); },
  },

  // Console tokens
  {
    noun: 'token', verb: 'list', summary: 'List outstanding console links (ids are hash prefixes, never tokens).', flags: [{ name: 'resource', value: true, help: 'Only this machine\'s.' }],
    async run(c) {
      showList(c, await c.client().call('GET', '/admin/v1/console-tokens', { query: queryString({ resource_id: flag(c.a, 'resource') }) }), 'console_tokens', [
        { title: 'ID', path: 'id' }, { title: 'MACHINE', path: 'resource_id' }, { title: 'TYPE', path: 'resource_type' }, { title: 'USER', path: 'user_id' },
        { title: 'PURPOSE', path: 'purpose' }, { title: 'EXPIRES', path: 'expires_at' },
      ]);
    },
  },
  {
    noun: 'token', verb: 'revoke', summary: 'Revoke one console link (TOKEN_ID) or all of a machine\'s (--resource).', flags: [{ name: 'resource', value: true, help: 'Revoke every outstanding link of this machine.' }],
    async run(c) {
      const id = c.a.positional[0];
      const resource = flag(c.a, 'resource');
      if ((id === undefined) === (resource === undefined)) throw new CliError('give a TOKEN_ID or --resource MACHINE_ID', ExitCode.USAGE);
      const body = id !== undefined
        ? await c.client().call('DELETE', `/admin/v1/console-tokens/${seg(id)}`)
        : await c.client().call('DELETE', '/admin/v1/console-tokens', { query: queryString({ resource_id: resource }) });
      c.out(body, () => `revoked ${isObj(body) ? String(body.revoked) : '?'}\n`);
    },
  },

  // Console sessions
  {
    noun: 'session', verb: 'list', summary: 'List live console sessions (node, user, bytes, since).',
    flags: [{ name: 'resource', value: true, help: 'Only this machine\'s.' }, { name: 'all', help: 'Include ended sessions.' }, { name: 'limit', value: true, help: '1–1000 (default 100).' }],
    async run(c) {
      const q = queryString({ resource_id: flag(c.a, 'resource'), all: has(c.a, 'all') ? 'true' : undefined, limit: flag(c.a, 'limit') });
      showList(c, await c.client().call('GET', '/admin/v1/sessions', { query: q }), 'sessions', [
        { title: 'ID', path: 'id' }, { title: 'MACHINE', path: 'resource_id' }, { title: 'USER', path: 'user_name' }, { title: 'NODE', path: 'node_id' },
        { title: 'SINCE', path: 'since' }, { title: 'BYTES IN/OUT', path: 'bytes_to_client', format: (v, r) => `${String(v)}/${String(r.bytes_to_backend)}` },
        { title: 'STATE', path: 'live', format: (v, r) => (v === true ? 'live' : String(r.close_reason ?? 'ended')) },
      ]);
    },
  },
  {
    noun: 'session', verb: 'kill', args: ['SESSION_ID'], summary: 'End a live console session (the page shows "ended by an administrator").',
    async run(c) { showOne(c, await c.client().call('DELETE', `/admin/v1/sessions/${seg(c.a.positional[0]!)}`), 'session'); },
  },

  // Fleet files
  {
    noun: 'apply', verb: '', summary: 'Converge the gateway to a fleet file: all or nothing.',
    flags: [{ name: 'file', value: true, help: 'Fleet file (YAML), or - for standard input (required; -f).' }, { name: 'dry-run', help: 'Print the changes without making them.' },
      { name: 'prune', help: 'Also delete what the file\'s domains no longer name (machines, projects, users, roles).' }],
    async run(c) {
      const file = required(c.a, 'file');
      const text = file === '-' ? await c.io.readStdin() : readText(c, file, 'fleet file');
      const body = await c.client().call('POST', '/admin/v1/fleet', { json: { fleet: text, source: file === '-' ? 'stdin' : file.split('/').pop(), dry_run: has(c.a, 'dry-run'), prune: has(c.a, 'prune') } });
      c.out(body, () => fleetDiff(body));
    },
  },

  // Master keys
  {
    noun: 'key', verb: 'generate', summary: 'Print a new random master key (64 hex); nothing is sent anywhere.',
    async run(c) {
      const key = randomBytes(32).toString('hex');
      c.out({ master_key: key }, () => key + '\n');
    },
  },
  {
    noun: 'key', verb: 'status', summary: 'Sealed secrets per master-key id (operators).',
    async run(c) { const b = await c.client().call('GET', '/admin/v1/keys'); c.out(b, () => details(b as Json)); },
  },
  {
    noun: 'key', verb: 'rotate', summary: 'Re-seal every stored secret under the gateway\'s current master key (operators).',
    async run(c) {
      const b = await c.client().call('POST', '/admin/v1/keys/rotate');
      const failed = isObj(b) && Array.isArray(b.failed) ? b.failed.length : 0;
      c.out(b, () => details(b as Json));
      if (failed > 0) throw new CliError(`${failed} sealed value(s) could not be opened with this gateway's keys (listed above); keep the old key configured`, ExitCode.FAILURE);
    },
  },

  // Backup and restore of the embedded SQLite database: local commands on the data directory (no gateway API)
  {
    noun: 'backup', verb: '', summary: 'Back up the embedded SQLite database to a file, while the gateway serves (local; PostgreSQL: pg_dump).',
    flags: [{ name: 'out', value: true, help: 'The backup file to write (required; replaced atomically if it exists; mode 0600).' }, ...LOCAL_FLAGS],
    async run(c) {
      const out = required(c.a, 'out');
      const config = localConfig(c);
      const manifest = await local('backup', () => {
        const keys = masterKeysFor(config);
        if (keys.length === 0) c.note(`no master key found (${path.join(config.dataDir, 'master.key')} or --master-key-file): the backup will not say which key its secrets need`);
        return backupSqlite({ dbFile: sqliteFileOf(config.dataDir), out, masterKey: keys[0] ?? null, version: gatewayVersion() });
      });
      c.out({ backup: { file: out, ...manifest } }, () => details({ file: out, ...manifest, sealed_key_ids: manifest.sealed_key_ids }));
    },
  },
  {
    noun: 'restore', verb: '', args: ['FILE'], summary: 'Restore a backup into the data directory (local; the gateway must be stopped).',
    flags: [{ name: 'check', help: 'Verify the file and the master key only; change nothing.' }, ...LOCAL_FLAGS],
    async run(c) {
      const config = localConfig(c);
      const dbFile = sqliteFileOf(config.dataDir);
      const check = has(c.a, 'check');
      const r = await local('restore', async () => restoreSqlite({ file: c.a.positional[0]!, dbFile, keys: masterKeysFor(config), keyHint: path.join(config.dataDir, 'master.key'), check }));
      const out = { file: c.a.positional[0]!, database: dbFile, checked_only: check, previous: r.previous, ...r.manifest, pending_migrations: r.pending_migrations };
      c.out({ restore: out }, () => details(out));
      if (check) c.note('the backup is sound and this master key opens its secrets; nothing was changed');
      else c.note(`restored ${dbFile}${r.previous ? ` (the previous database is ${r.previous})` : ''}; start the gateway${r.pending_migrations.length ? ': it will migrate the database to this release' : ''}`);
    },
  },

  // Audit trail
  {
    noun: 'audit', verb: 'list', summary: 'Show the audit trail of your domain, newest first.',
    flags: ['since', 'until', 'actor', 'resource', 'action', 'result', 'limit', 'offset'].map((n) => ({ name: n, value: true, help: n === 'resource' ? 'Machine or object id.' : `Filter: ${n}.` })),
    async run(c) {
      const q = queryString({
        since: flag(c.a, 'since'), until: flag(c.a, 'until'), actor: flag(c.a, 'actor'), resource_id: flag(c.a, 'resource'), action: flag(c.a, 'action'),
        result: flag(c.a, 'result'), limit: flag(c.a, 'limit'), offset: flag(c.a, 'offset'),
      });
      showList(c, await c.client().call('GET', '/admin/v1/audit-events', { query: q }), 'events', [
        { title: 'TIME', path: 'time' }, { title: 'USER', path: 'user_name' }, { title: 'ACTION', path: 'action' }, { title: 'RESOURCE', path: 'resource_id' },
        { title: 'RESULT', path: 'result' }, { title: 'CODE', path: 'code' },
      ]);
    },
  },

  // IAM token for the other commands
  {
    noun: 'login', verb: '', summary: 'Get an IAM token (for PORTHOLE_TOKEN); the password comes from a file, stdin or PORTHOLE_PASSWORD.',
    flags: [{ name: 'domain', value: true, help: 'Domain name (required).' }, { name: 'user', value: true, help: 'User name (required).' },
      { name: 'project', value: true, help: 'Scope to this project id (default: the domain).' }, ...secretFlags('password', 'password')],
    async run(c) {
      const password = (await secretFrom(c, 'password')) ?? c.io.env.PORTHOLE_PASSWORD;
      if (!password) throw new CliError('give --password-file, --password-stdin or PORTHOLE_PASSWORD', ExitCode.USAGE);
      const domain = required(c.a, 'domain');
      const project = flag(c.a, 'project');
      const json = {
        auth: {
          identity: { methods: ['password'], password: { user: { name: required(c.a, 'user'), password, domain: { name: domain } } } },
          scope: project ? { project: { id: project } } : { domain: { name: domain } },
        },
      };
      const r = await c.client().raw('POST', '/v3/auth/tokens', { query: '?nocatalog=true', json, auth: false });
      if (r.status !== 201) throw httpError(r);
      const token = r.headers.get('x-subject-token') ?? '';
      const expires = isObj(r.body) && isObj(r.body.token) ? r.body.token.expires_at : null;
      c.out({ token, expires_at: expires }, () => token + '\n');
      if (!c.json) c.note(`token valid until ${String(expires)}; export PORTHOLE_TOKEN=<it>`);
    },
  },
];


/** The gateway's configuration as `porthole serve` would load it (defaults < file < env < flags), for the local commands. */
function localConfig(c: Ctx): Readonly<Config> {
  const argv: string[] = [];
  for (const f of LOCAL_FLAGS) {
    const v = flag(c.a, f.name);
    if (v !== undefined) argv.push(`--${f.name}`, v);
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig({ argv, env: c.io.env }).config;
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, ExitCode.USAGE);
    throw err;
  }
  if (config.databaseUrl) {
    throw new CliError('database_url is set: this gateway keeps its data in PostgreSQL; back it up with pg_dump and restore it with pg_restore (docs/deployment.md, "Backup and restore")', ExitCode.USAGE);
  }
  return config;
}

/** Runs a local backup/restore step; a refusal becomes its coded message with the documented exit code. */
async function local<T>(what: 'backup' | 'restore', fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof BackupError)) throw err;
    const code = err.code === 'DATABASE_IN_USE' ? ExitCode.CONFLICT : err.code === 'DATABASE_MISSING' ? ExitCode.NOT_FOUND : what === 'restore' ? ExitCode.USAGE : ExitCode.FAILURE;
    throw new CliError(`${what} refused: ${err.message}${what === 'restore' && err.code !== 'DATABASE_MISSING' ? ' (nothing was changed)' : ''}`, code);
  }
}

/** `apply` output for people: one line per change, then a summary. */
export function fleetDiff(body: unknown): string {
  if (!isObj(body) || !Array.isArray(body.changes) || !isObj(body.summary)) throw new CliError('unexpected answer from the gateway (no changes)', ExitCode.FAILURE);
  const sign: Record<string, string> = { create: '+', update: '~', delete: '-' };
  const lines = (body.changes as unknown[]).filter(isObj).map((ch) => {
    const fields = Array.isArray(ch.fields) && ch.fields.length ? ` (${(ch.fields as string[]).join(', ')})` : '';
    return `${sign[String(ch.action)] ?? '?'} ${String(ch.type)} ${String(ch.name)}${fields}  ${String(ch.id)}`;
  });
  const s = body.summary;
  const verb = body.dry_run === true ? 'would ' : '';
  lines.push(`${lines.length === 0 ? 'no changes; ' : ''}${verb}create ${String(s.create)}, ${verb}update ${String(s.update)}, ${verb}delete ${String(s.delete)}; unchanged ${String(s.unchanged)}${body.dry_run === true ? ' (dry run: nothing changed)' : ''}`);
  return lines.join('\n') + '\n';
}
