/**
 * `porthole` entry point. `porthole serve` (the default) loads the configuration and starts a gateway
 * node; on the embedded default it also prints how to reach the demo console. SIGTERM/SIGINT drain
 * the node: readiness, new consoles and API calls answer 503 at once, live consoles may run on for
 * `drain.grace_seconds`, then they are closed with 4010 shutdown (the page says why) and the process
 * exits. A second signal ends the grace at once.
 * Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
 * `porthole <noun> <verb>` (domain, project, user, …, apply, key, login; `porthole help`) manages a
 * running gateway through its admin API instead (src/cli/, with its own documented exit codes).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { loadConfig, KEYS, configKeyNames } from './config/index.js';
import { FleetError } from './domain/fleet.js';
import { startGateway, type Gateway } from './gateway.js';
import { CloseCode, CloseReason } from './close-codes.js';
import { CLI_NOUNS, runCli } from './cli/index.js';

const USAGE = `usage: porthole [serve] [--config FILE] [--fleet FILE] [--port N] [--host ADDR] [--public-url URL] ...
       porthole --help | --version
       porthole <noun> <verb> …   manage a running gateway (domains, projects, users, machines, fleet files, keys): porthole help

Every configuration key is also a flag and a PORTHOLE_* environment variable:
${Object.entries(KEYS).map(([k, s]) => `  ${configKeyNames.flagName(k).padEnd(34)} ${configKeyNames.envName(k).padEnd(40)} ${s.help}`).join('\n')}
`;

function banner(gw: Gateway): string {
  const lines = [`Porthole is listening on ${gw.url}`];
  if (gw.demo) {
    const f = gw.demo.facts;
    const base = gw.url;
    lines.push(
      '',
      'Demo (embedded SQLite; the same facts are in ' + gw.config.dataDir + '/demo.json):',
      `  domain ${f.domain}   project ${f.project_name} (${f.project_id})`,
      `  user ${f.user}   password ${f.password}`,
      ...(f.ak && f.sk ? [`  access key (AK) ${f.ak}   secret key (SK) ${f.sk}`] : []),
      `  ECS server ${f.cloudserver_id}   physical server ${f.physicalserver_id}   desktop ${f.desktop_id}`,
      '',
      '1. Get an IAM token:',
      `  TOKEN=$(curl -si ${base}/v3/auth/tokens -H 'Content-Type: application/json' -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"${f.user}","password":"${f.password}","domain":{"name":"${f.domain}"}}}},"scope":{"project":{"id":"${f.project_id}"}}}}' | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\\r')`,
      '2. Ask for a one-time console URL and open it in a browser:',
      `  curl -s -X POST ${base}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -d '{"remote_console":{"protocol":"vnc","type":"novnc"}}'`,
      `  curl -s ${base}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles -H "X-Auth-Token: $TOKEN"`,
      `  curl -s ${base}/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address -H "X-Auth-Token: $TOKEN"`,
    );
    if (f.ak && f.sk) {
      lines.push(
        '3. Or sign with AK/SK through the official Huawei Cloud Node SDK (in an empty directory:',
        '   npm install @huaweicloud/huaweicloud-sdk-core @huaweicloud/huaweicloud-sdk-ecs uuid@9):',
        `  node -e 'const core = require("@huaweicloud/huaweicloud-sdk-core"), ecs = require("@huaweicloud/huaweicloud-sdk-ecs");`,
        `const client = ecs.EcsClient.newBuilder()`,
        `  .withCredential(new core.BasicCredentials().withAk("${f.ak}").withSk("${f.sk}").withProjectId("${f.project_id}"))`,
        `  .withEndpoint("${base}").build();`,
        `client.showServerRemoteConsole(new ecs.ShowServerRemoteConsoleRequest().withServerId("${f.cloudserver_id}")`,
        `  .withBody(new ecs.ShowServerRemoteConsoleRequestBody().withRemoteConsole(new ecs.GetServerRemoteConsoleOption().withProtocol("vnc").withType("novnc"))))`,
        `  .then((r) => console.log(r.remote_console.url), (e) => console.error(e.httpStatusCode, e.errorCode, e.errorMsg));'`,
      );
    }
  }
  return lines.join('\n');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] !== undefined && CLI_NOUNS.has(argv[0])) {
    return runCli(argv, { env: process.env, stdout: process.stdout, stderr: process.stderr, readStdin, readFile: (f) => readFileSync(f, 'utf8') });
  }
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(USAGE); return 0; }
  if (argv.includes('--version')) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(pkg.version + '\n');
    return 0;
  }
  const args = argv[0] === 'serve' ? argv.slice(1) : argv;
  let gw: Gateway;
  try {
    const { config, positional } = loadConfig({ argv: args, env: process.env });
    if (positional.length > 0) throw new ConfigError(positional[0]!, 'unknown command or argument (try --help)');
    gw = await startGateway(config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof FleetError) { process.stderr.write(`porthole: ${err.message}\n`); return 2; }
    process.stderr.write(`porthole: failed to start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(banner(gw) + '\n');
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        gw.log.info({ signal }, 'second signal: closing live consoles now');
        gw.upgrade.closeSessions(CloseCode.SHUTDOWN, CloseReason.SHUTDOWN);
        return;
      }
      stopping = true;
      const graceMs = gw.config.drain.graceSeconds * 1000;
      gw.log.info({ signal, graceMs, live: gw.upgrade.live().length }, 'stopping');
      gw.close(graceMs).then(() => resolve(0), (err: unknown) => { gw.log.error({ err }, 'error while stopping'); resolve(1); });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`porthole: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
