/**
 * `porthole <noun> <verb> [ARG…] [--flag…]`: manage a running gateway through its admin API.
 * Data goes to stdout (tables, `key: value`, or with `--json` the API's JSON answer), diagnostics to
 * stderr. The gateway is `--url` or `PORTHOLE_URL` (default http://127.0.0.1:8080); credentials are
 * `PORTHOLE_AK` + `PORTHOLE_SK` (signed requests) or `PORTHOLE_TOKEN` (from `porthole login`).
 *
 * Exit codes: 0 ok · 1 failure (gateway error, unreachable, throttled) · 2 usage or invalid input
 * (bad flags, unreadable or invalid file, 400) · 3 not found (404) · 4 not authenticated or not
 * allowed (401, 403) · 5 conflict (409: a name taken, a non-empty project, yourself).
 */
import { parseArgs, GLOBAL_FLAGS, flag, has, type FlagSpec } from './args.js';
import { AdminClient, CliError, ExitCode } from './client.js';
import { COMMANDS, type CliIo, type Command, type Ctx } from './commands.js';

export type { CliIo } from './commands.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Aliases of nouns. */
const ALIASES: Record<string, string> = {
  domains: 'domain', projects: 'project', users: 'user', roles: 'role', ak: 'accesskey', 'access-key': 'accesskey', accesskeys: 'accesskey',
  ecs: 'cloudserver', cloudservers: 'cloudserver', physicalservers: 'physicalserver', bms: 'physicalserver', desktops: 'desktop',
  endpoints: 'endpoint', tokens: 'token', 'console-token': 'token', sessions: 'session', keys: 'key',
};

/** Nouns `main.ts` hands to the CLI (everything else is `serve`). */
export const CLI_NOUNS: ReadonlySet<string> = new Set([...COMMANDS.map((c) => c.noun), ...Object.keys(ALIASES), 'help']);

function synopsis(cmd: Command): string {
  const words = ['porthole', cmd.noun, ...(cmd.verb ? [cmd.verb] : []), ...(cmd.args ?? [])];
  return words.join(' ');
}

function flagHelp(specs: readonly FlagSpec[]): string {
  return specs.map((s) => `    --${s.name}${s.value ? ' VALUE' : ''}${s.repeat ? ' …' : ''}`.padEnd(36) + s.help).join('\n');
}

export function usage(noun?: string): string {
  const cmds = noun === undefined ? COMMANDS : COMMANDS.filter((c) => c.noun === noun);
  const lines = noun === undefined
    ? ['usage: porthole <noun> <verb> [ARG…] [--flag…]        (porthole serve runs a gateway; porthole serve --help)', '']
    : [];
  for (const c of cmds) {
    lines.push(`  ${synopsis(c)}`.padEnd(48) + c.summary);
    if (noun !== undefined && c.flags?.length) lines.push(flagHelp(c.flags));
  }
  lines.push('', 'Every command takes:', flagHelp(GLOBAL_FLAGS), '',
    'Gateway: --url or PORTHOLE_URL (default ' + DEFAULT_URL + '). Credentials: PORTHOLE_AK and PORTHOLE_SK, or PORTHOLE_TOKEN.',
    'Exit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 not found, 4 not authenticated or not allowed, 5 conflict.');
  return lines.join('\n') + '\n';
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [rawNoun, ...rest] = argv;
  if (rawNoun === undefined || rawNoun === 'help' || rawNoun === '--help') {
    const topic = rest[0] === undefined ? undefined : ALIASES[rest[0]] ?? rest[0];
    io.stdout.write(usage(topic !== undefined && COMMANDS.some((c) => c.noun === topic) ? topic : undefined));
    return ExitCode.OK;
  }
  const noun = ALIASES[rawNoun] ?? rawNoun;
  const forNoun = COMMANDS.filter((c) => c.noun === noun);
  if (forNoun.length === 0) {
    io.stderr.write(`porthole: unknown command ${rawNoun} (try porthole help)\n`);
    return ExitCode.USAGE;
  }
  // Nouns without verbs (apply, login) take their arguments directly.
  const verbless = forNoun.find((c) => c.verb === '');
  const verb = verbless ? '' : rest[0];
  const cmd = verbless ?? forNoun.find((c) => c.verb === verb);
  const tail = verbless ? rest : rest.slice(1);
  if (!cmd) {
    if (verb === undefined || verb === '--help' || verb === '-h') { io.stdout.write(usage(noun)); return verb === undefined ? ExitCode.USAGE : ExitCode.OK; }
    io.stderr.write(`porthole: ${noun} has no verb ${verb}; it has: ${forNoun.map((c) => c.verb).join(', ')}\n`);
    return ExitCode.USAGE;
  }
  try {
    const a = parseArgs(tail, cmd.flags ?? []);
    if (has(a, 'help')) { io.stdout.write(usage(noun)); return ExitCode.OK; }
    const want = cmd.args ?? [];
    const optionalPositional = cmd.noun === 'token' && cmd.verb === 'revoke' ? 1 : 0;
    if (a.positional.length < want.length || a.positional.length > want.length + optionalPositional) {
      throw new CliError(`usage: ${synopsis(cmd)} [flags] (see --help)`, ExitCode.USAGE);
    }
    const json = has(a, 'json');
    let client: AdminClient | undefined;
    const ctx: Ctx = {
      a, io, json,
      client() {
        client ??= new AdminClient(flag(a, 'url') ?? io.env.PORTHOLE_URL ?? DEFAULT_URL, {
          ...(io.env.PORTHOLE_TOKEN ? { token: io.env.PORTHOLE_TOKEN } : {}),
          ...(io.env.PORTHOLE_AK ? { ak: io.env.PORTHOLE_AK } : {}),
          ...(io.env.PORTHOLE_SK ? { sk: io.env.PORTHOLE_SK } : {}),
        }, io.fetch ?? fetch);
        return client;
      },
      out(data, human) { io.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : human()); },
      note(msg) { io.stderr.write(`porthole: ${msg}\n`); },
    };
    await cmd.run(ctx);
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`porthole: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`porthole: ${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.FAILURE;
  }
}
