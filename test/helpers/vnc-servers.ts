/**
 * Real VNC servers for tests (Debian packages; reference vnc-servers.md): TigerVNC Xvnc with a known
 * solid root colour, on a free display bound to 127.0.0.1 only. Started per test file, killed after.
 * `requireTools` makes a missing package a failure under CI=true (CI installs them) and a skip locally.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** `false` when every tool exists; otherwise a skip reason (locally) — under CI it throws. */
export function requireTools(...tools: string[]): false | string {
  const missing = tools.filter((t) => !existsSync(t.startsWith('/') ? t : `/usr/bin/${t}`));
  if (missing.length === 0) return false;
  const msg = `missing ${missing.join(', ')} (install the Debian packages listed in .ci/run)`;
  if (process.env.CI === 'true') throw new Error(msg);
  return msg;
}

export function freeDisplay(): number {
  for (let n = 20 + Math.floor(Math.random() * 60); n < 99; n++) {
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error('no free X display');
}

export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`port ${port} did not open within ${ms} ms`);
    await sleep(50);
  }
}

export interface XvncServer { display: number; port: number; password: string | null; close(): Promise<void> }

/** Starts Xvnc (VncAuth with `password`, or None) and paints the root window `colour` (#rrggbb). */
export async function startXvnc(opts: { password?: string; colour: string; geometry?: string }): Promise<XvncServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-xvnc-'));
  const display = freeDisplay();
  const args = [`:${display}`, '-interface', '127.0.0.1', '-nolisten', 'tcp', '-geometry', opts.geometry ?? '320x240', '-depth', '24', '-UseBlacklist=0'];
  if (opts.password) {
    const pw = spawnSync('vncpasswd', ['-f'], { input: opts.password });
    if (pw.status !== 0) throw new Error('vncpasswd -f failed');
    writeFileSync(path.join(dir, 'passwd'), pw.stdout, { mode: 0o600 });
    args.push('-SecurityTypes', 'VncAuth', '-rfbauth', path.join(dir, 'passwd'));
  } else {
    args.push('-SecurityTypes', 'None');
  }
  const proc: ChildProcess = spawn('Xvnc', args, { stdio: 'ignore' });
  const port = 5900 + display;
  try {
    await waitForPort(port);
    const r = spawnSync('xsetroot', ['-solid', opts.colour, '-display', `:${display}`]);
    if (r.status !== 0) throw new Error('xsetroot failed');
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    display, port, password: opts.password ?? null,
    async close() {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await Promise.race([exited, sleep(3000)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function hexToRgb(hex: string): { r: number; g: number; b: number } {
  const n = parseInt(hex.replace('#', ''), 16);
  return { r: (n >> 16) & 255, g: (n >> 8) & 255, b: n & 255 };
}
