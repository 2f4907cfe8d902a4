/**
 * Command-line parsing for `porthole <noun> <verb> [ARG…] [--flag value…]`: `--flag value`,
 * `--flag=value`, boolean `--flag`, repeatable flags, `-f` for `--file`. Unknown flags and missing
 * values are usage errors (exit 2), never ignored.
 */
import { CliError, ExitCode } from './client.js';

export interface FlagSpec {
  name: string;
  /** Takes a value (`--name VALUE`); otherwise a boolean switch. */
  value?: boolean;
  /** May be given several times (values collected in order). */
  repeat?: boolean;
  help: string;
}

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string[] | true>;
}

export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'url', value: true, help: 'Gateway base URL (default $PORTHOLE_URL, else http://127.0.0.1:8080).' },
  { name: 'json', help: 'Print the API\'s JSON answer (stable field names) instead of text.' },
  { name: 'help', help: 'Show help for the command.' },
];

const SHORT: Record<string, string> = { '-f': '--file', '-h': '--help' };

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const byName = new Map([...GLOBAL_FLAGS, ...specs].map((s) => [s.name, s]));
  const positional: string[] = [];
  const flags = new Map<string, string[] | true>();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    if (SHORT[arg]) arg = SHORT[arg]!;
    if (arg === '--') { positional.push(...argv.slice(i + 1)); break; }
    if (!arg.startsWith('--')) { positional.push(arg); continue; }
    const eq = arg.indexOf('=');
    const name = (eq < 0 ? arg : arg.slice(0, eq)).slice(2);
    const spec = byName.get(name);
    if (!spec) throw new CliError(`unknown flag --${name} (see --help)`, ExitCode.USAGE);
    if (!spec.value) {
      if (eq >= 0) throw new CliError(`--${name} takes no value`, ExitCode.USAGE);
      flags.set(name, true);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new CliError(`--${name} needs a value`, ExitCode.USAGE);
    const prev = flags.get(name);
    if (prev !== undefined && !spec.repeat) throw new CliError(`--${name} given twice`, ExitCode.USAGE);
    flags.set(name, [...(Array.isArray(prev) ? prev : []), value]);
  }
  return { positional, flags };
}

export function flag(a: ParsedArgs, name: string): string | undefined {
  const v = a.flags.get(name);
  return Array.isArray(v) ? v[v.length - 1] : undefined;
}

export function flags(a: ParsedArgs, name: string): string[] {
  const v = a.flags.get(name);
  return Array.isArray(v) ? v : [];
}

export function has(a: ParsedArgs, name: string): boolean {
  return a.flags.has(name);
}

export function required(a: ParsedArgs, name: string): string {
  const v = flag(a, name);
  if (v === undefined || v === '') throw new CliError(`--${name} is required`, ExitCode.USAGE);
  return v;
}

/** `true`/`false` flag values. */
export function boolFlag(a: ParsedArgs, name: string): boolean | undefined {
  const v = flag(a, name);
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new CliError(`--${name} must be true or false`, ExitCode.USAGE);
}
