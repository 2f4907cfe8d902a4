/**
 * Runs `porthole <noun> <verb> …` in-process (src/cli/index.ts runCli) against a test gateway and
 * captures what a terminal would see: the exit code, stdout and stderr separately. `spawnCli` runs the
 * real entry point (src/main.ts) as a child process, for the process-level contract.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/index.js';

export interface CliResult { code: number; stdout: string; stderr: string }

export interface CliEnv { PORTHOLE_URL?: string; PORTHOLE_AK?: string; PORTHOLE_SK?: string; PORTHOLE_TOKEN?: string; PORTHOLE_PASSWORD?: string }

export async function cli(argv: string[], env: CliEnv, stdin = ''): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env: { ...env },
    stdout: { write: (s: string) => { stdout += s; return true; } },
    stderr: { write: (s: string) => { stderr += s; return true; } },
    readStdin: async () => stdin,
    readFile: (f) => readFileSync(f, 'utf8'),
  });
  return { code, stdout, stderr };
}

/** Parses stdout of a `--json` run (fails the test with the output when it is not JSON). */
export function json<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `node --import tsx src/main.ts …` with only the given environment (plus PATH/HOME). */
export function spawnCli(argv: string[], env: CliEnv, stdin = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), ...argv], {
      cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}
