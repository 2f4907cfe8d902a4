/**
 * Real VNC servers for tests (Debian packages; reference vnc-servers.md): TigerVNC Xvnc with a known
 * solid root colour, on a free display bound to 127.0.0.1 only. Started per test file, killed after.
 * `requireTools` makes a missing package a failure under CI=true (CI installs them) and a skip locally.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** Displays handed out by this process: servers started together (Promise.all) see no lock file yet. */
const allocatedDisplays = new Set<number>();

/** TCP ports something listens on (IPv4 and IPv6), from /proc/net. */
function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') ports.add(parseInt(f[1]?.split(':').pop() ?? '', 16)); // state 0A = LISTEN
    }
  }
  return ports;
}

/**
 * A display number whose X socket, lock file and VNC port (5900 + n) are all free, never one this
 * process handed out before. Regression: servers started at once used to draw the same random number
 * (about one run in three with seven servers), and a test then read another server's screen.
 */
export function freeDisplay(): number {
  const busy = listeningPorts();
  const start = 20 + Math.floor(Math.random() * 60);
  for (let i = 0; i < 79; i++) {
    const n = 20 + ((start - 20 + i) % 79);
    if (allocatedDisplays.has(n) || busy.has(5900 + n) || existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    allocatedDisplays.add(n);
    return n;
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
export function startXvnc(opts: { password?: string; colour: string; geometry?: string }): Promise<XvncServer> {
  return startXvncWith({ ...opts, security: opts.password ? 'VncAuth' : 'None' });
}

export function hexToRgb(hex: string): { r: number; g: number; b: number } {
  const n = parseInt(hex.replace('#', ''), 16);
  return { r: (n >> 16) & 255, g: (n >> 8) & 255, b: n & 255 };
}

/** Runs a command and returns its stdout; throws with stderr on failure. */
function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Buffer {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input });
  if (r.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''} failed: ${r.stderr?.toString() ?? ''}`);
  return r.stdout;
}

export interface TestPki {
  dir: string;
  /** PEM of the CA that signed the server certificate. */
  ca: string;
  /** PEM of an unrelated CA (for "untrusted" tests). */
  otherCa: string;
  /** Server certificate (CN vnc.test, SAN DNS:vnc.test, IP:127.0.0.1) and key, as files. */
  certFile: string;
  keyFile: string;
  /** A client certificate signed by the CA, and its key (PEM). */
  clientCert: string;
  clientKey: string;
  close(): void;
}

/** A throwaway CA (EC P-256) with a server certificate for vnc.test / 127.0.0.1 and a client certificate. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-pki-'));
  const ossl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=porthole-test-ca');
  ossl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=someone-else');
  ossl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=vnc.test');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:vnc.test,IP:127.0.0.1\n');
  ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
  ossl('req', ...ec, '-keyout', 'cli.key', '-out', 'cli.csr', '-subj', '/CN=porthole-gateway');
  ossl('x509', '-req', '-in', 'cli.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'cli.pem', '-days', '2');
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  return {
    dir, ca: read('ca.pem'), otherCa: read('other.pem'), certFile: path.join(dir, 'srv.pem'), keyFile: path.join(dir, 'srv.key'),
    clientCert: read('cli.pem'), clientKey: read('cli.key'),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await Promise.race([exited, sleep(3000)]);
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

/**
 * Xvnc with any `-SecurityTypes` list (e.g. 'X509Vnc', 'TLSNone'), a VNC password file when
 * `password` is set, and the X.509 certificate/key for the X509* types.
 */
export async function startXvncWith(opts: { security: string; password?: string; x509?: { certFile: string; keyFile: string }; colour: string; geometry?: string; blacklist?: boolean }): Promise<XvncServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-xvnc-'));
  const display = freeDisplay();
  // `blacklist: true` keeps TigerVNC's default blacklist (5 unauthenticated connections from a host
  // block it): production servers run with it, and the prober must not trip it.
  const args = [`:${display}`, '-interface', '127.0.0.1', '-nolisten', 'tcp', '-geometry', opts.geometry ?? '320x240', '-depth', '24', ...(opts.blacklist ? [] : ['-UseBlacklist=0']), '-SecurityTypes', opts.security];
  if (opts.password) {
    writeFileSync(path.join(dir, 'passwd'), run('vncpasswd', ['-f'], { input: opts.password }), { mode: 0o600 });
    args.push('-rfbauth', path.join(dir, 'passwd'));
  }
  if (opts.x509) args.push('-X509Cert', opts.x509.certFile, '-X509Key', opts.x509.keyFile);
  const proc = spawn('Xvnc', args, { stdio: 'ignore' });
  const port = 5900 + display;
  try {
    await waitForPort(port);
    run('xsetroot', ['-solid', opts.colour, '-display', `:${display}`]);
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    display, port, password: opts.password ?? null,
    async close() {
      await stop(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface QemuServer {
  port: number;
  /** QEMU's stderr lines so far (trace output with `trace`). */
  stderr: string[];
  /** Sends a human-monitor command (stdio monitor). */
  monitor(command: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * QEMU with no disk (SeaBIOS "No bootable device", 720x400) and its VNC server on 127.0.0.1. With
 * `password`, VNC authentication is on and the password is set through the monitor (`set_password`,
 * reference vnc-servers.md). `trace` enables QEMU trace points (e.g. ps2_keyboard_event) to stderr.
 */
export async function startQemu(opts: { password?: string; trace?: string[] } = {}): Promise<QemuServer> {
  const display = freeDisplay();
  const vnc = `127.0.0.1:${display}${opts.password ? ',password=on' : ''}`;
  const args = ['-nodefaults', '-machine', 'pc', '-accel', 'tcg', '-m', '64', '-vga', 'std', '-vnc', vnc, '-display', 'none', '-monitor', 'stdio'];
  for (const t of opts.trace ?? []) args.push('-trace', t);
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => stderr.push(...d.toString().split('\n').filter((l) => l.length > 0)));
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  const monitor = async (command: string): Promise<void> => {
    const before = out.length;
    proc.stdin?.write(`${command}\n`);
    const t0 = Date.now();
    // The monitor echoes the command and prints a new prompt when it has run it.
    while (!out.slice(before).includes('(qemu)')) {
      if (Date.now() - t0 > 5000) throw new Error(`QEMU monitor did not answer ${command.split(' ')[0]}`);
      await sleep(20);
    }
  };
  const port = 5900 + display;
  try {
    await waitForPort(port);
    if (opts.password) await monitor(`set_password vnc ${opts.password}`);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return { port, stderr, monitor, close: () => stop(proc) };
}

/** x11vnc on an Xvfb display painted `colour`, VncAuth with `password` (or None). */
export async function startX11vnc(opts: { password?: string; colour: string; geometry?: string }): Promise<XvncServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-x11vnc-'));
  const display = freeDisplay();
  const xvfb = spawn('Xvfb', [`:${display}`, '-noreset', '-nolisten', 'tcp', '-screen', '0', `${opts.geometry ?? '320x240'}x24`], { stdio: 'ignore' });
  const procs: ChildProcess[] = [xvfb];
  const port = 5900 + display;
  try {
    for (let i = 0; i < 100 && !existsSync(`/tmp/.X11-unix/X${display}`); i++) await sleep(50);
    run('xsetroot', ['-solid', opts.colour, '-display', `:${display}`]);
    const args = ['-display', `:${display}`, '-listen', '127.0.0.1', '-noipv6', '-rfbportv6', '-1', '-rfbport', String(port), '-forever', '-shared', '-quiet', '-nopw'];
    if (opts.password) {
      run('x11vnc', ['-storepasswd', opts.password, path.join(dir, 'passwd')]);
      args.push('-rfbauth', path.join(dir, 'passwd'));
    }
    procs.push(spawn('x11vnc', args, { stdio: 'ignore' }));
    await waitForPort(port);
  } catch (err) {
    for (const p of procs) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    display, port, password: opts.password ?? null,
    async close() {
      for (const p of procs.reverse()) await stop(p);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The "lab/tiger" test fleet: one operator (ops / ops-password-1) and one ECS server `xvnc-1` on `xvnc`. */
export const XVNC_FLEET = {
  domain: 'lab',
  project: 'tiger',
  user: 'ops',
  password: 'ops-password-1',
  server: 'xvnc-1',
  yaml(xvnc: XvncServer, zone?: string): string {
    const zonePart = zone ? `, zone: ${zone}` : '';
    return `
domains:
  - name: lab
    users: [{ name: ops, password: ops-password-1, roles: { tiger: operator } }]
    projects:
      - name: tiger
        cloudservers:
          - name: xvnc-1
            console: { url: "vnc://127.0.0.1:${xvnc.port}", security: vncauth, password: ${xvnc.password}${zonePart} }
`;
  },
};
