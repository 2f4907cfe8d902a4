/**
 * The composition root as a function: config → store → services → HTTP server with the REST API and the
 * console WebSocket upgrade handler. `main.ts` calls it for `porthole serve`; tests call it to run the
 * real gateway on port 0. Nothing else wires components together.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { withListeningPort, type Config } from './config/index.js';
import { buildApi } from './api/app.js';
import { AuditService } from './domain/audit.js';
import { systemClock, type Clock } from './domain/clock.js';
import { ConsoleService } from './domain/consoles.js';
import { applyFleet, parseFleet } from './domain/fleet.js';
import { IamService } from './domain/iam.js';
import { SecretBox } from './domain/secrets.js';
import { SessionService } from './domain/sessions.js';
import { createStore } from './store/index.js';
import type { Store } from './store/types.js';
import { createUpgradeHandler, type UpgradeHandler } from './proxy/upgrade.js';
import { loadWebAssets } from './web/assets.js';
import { startDemoDesktop, type DemoDesktop } from './demo/desktop.js';
import { demoFleet, loadOrCreateDemoFacts, writeDemoFacts, type DemoFacts } from './demo/seed.js';
import { logSerializers, redactPaths } from './observability/redact.js';
import { CloseCode, CloseReason } from './close-codes.js';

export interface Gateway {
  config: Readonly<Config>;
  url: string;
  app: FastifyInstance;
  store: Store;
  upgrade: UpgradeHandler;
  consoles: ConsoleService;
  iam: IamService;
  secrets: SecretBox;
  demo: { facts: DemoFacts; desktop: DemoDesktop } | null;
  log: Logger;
  /** Stops taking connections, ends live consoles with SHUTDOWN after `graceMs`, closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  clock?: Clock;
}

/** Reads the master key, or on first start of an embedded node generates `{data_dir}/master.key` (0600). */
function resolveMasterKey(config: Readonly<Config>, log: Logger): Buffer {
  if (config.masterKey) return config.masterKey;
  const file = path.join(config.dataDir, 'master.key');
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${file} is not a 64-hex-character key`);
    return Buffer.from(text, 'hex');
  }
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  log.warn({ file }, 'generated a new master key; back it up: stored secrets cannot be read without it');
  return key;
}

export async function startGateway(baseConfig: Readonly<Config>, opts: StartOptions = {}): Promise<Gateway> {
  const log = opts.logger ?? pino({ level: baseConfig.logLevel, serializers: logSerializers, redact: { paths: redactPaths, censor: '[redacted]' } });
  const clock = opts.clock ?? systemClock;
  mkdirSync(baseConfig.dataDir, { recursive: true, mode: 0o700 });

  // Listen first so a derived public URL carries the real port (port 0 in tests).
  const server = http.createServer();
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(baseConfig.port, baseConfig.host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  const config = withListeningPort(baseConfig, port);

  let store: Store | undefined;
  let demoDesktop: DemoDesktop | undefined;
  try {
    const masterKey = resolveMasterKey(config, log);
    const secrets = new SecretBox(masterKey);
    masterKey.fill(0);
    store = await createStore(config);
    const audit = new AuditService(store, (err) => log.error({ err }, 'audit record failed'));
    const iam = new IamService(store, clock, { tokenTtlSeconds: config.iamTokenTtlSeconds, publicUrl: config.publicUrl });
    const consoles = new ConsoleService(store, secrets, clock, {
      publicUrl: config.publicUrl, tokenTtlSeconds: config.console.tokenTtlSeconds, lang: config.console.lang, defaultZone: config.console.defaultZone,
    });
    const nodeId = config.nodeId ?? `${os.hostname()}-${process.pid}`;
    const sessions = new SessionService(store, audit, clock, nodeId);
    const recovered = await sessions.recover();
    if (recovered > 0) log.warn({ recovered }, 'closed console sessions left open by a previous run of this node');

    let demo: Gateway['demo'] = null;
    if (config.demo) {
      const facts = loadOrCreateDemoFacts(config.dataDir, config.publicUrl);
      demoDesktop = await startDemoDesktop({ host: '127.0.0.1', port: 0, name: 'Porthole demo desktop', password: facts.vnc_password });
      await applyFleet(store, secrets, clock, demoFleet(facts, demoDesktop.host, demoDesktop.port));
      writeDemoFacts(config.dataDir, facts);
      demo = { facts, desktop: demoDesktop };
    }
    if (config.fleet) {
      const spec = parseFleet(readFileSync(config.fleet, 'utf8'), path.basename(config.fleet));
      const res = await applyFleet(store, secrets, clock, spec);
      log.info({ fleet: config.fleet, ...res, revokedResources: res.revokedResources.length }, 'fleet applied');
    }

    const web = loadWebAssets();
    const upgrade = createUpgradeHandler({ config, consoles, sessions, log });
    const app = await buildApi({ config, store, iam, consoles, audit, web }, {
      logger: log,
      serverFactory: (handler) => { server.on('request', handler); return server; },
    });
    server.on('upgrade', (req, socket, head) => upgrade.handle(req, socket, head));
    await app.ready();
    log.info({ url: config.publicUrl, nodeId, store: store.dialect }, 'porthole listening');

    const finalStore = store;
    let closing: Promise<void> | undefined;
    return {
      config, url: config.publicUrl, app, store, upgrade, consoles, iam, secrets, demo, log,
      close(graceMs = 0) {
        closing ??= (async () => {
          server.close();
          if (graceMs > 0) await upgrade.drained(graceMs);
          upgrade.closeSessions(CloseCode.SHUTDOWN, CloseReason.SHUTDOWN);
          await upgrade.drained(2000);
          await app.close();
          server.closeAllConnections();
          await demoDesktop?.close();
          await finalStore.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    server.close();
    await demoDesktop?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    throw err;
  }
}
