/**
 * The configuration loader: precedence (defaults < YAML < env < flags), secrets by value or *_FILE,
 * and refusal of bad input with a message that names the key and never the secret's value.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import { loadConfig } from './index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => { const p = path.join(dir, name); writeFileSync(p, text); return p; };
const KEY_HEX = 'ab'.repeat(32);

function refused(input: Parameters<typeof loadConfig>[0], key: string, secret?: string): void {
  assert.throws(() => loadConfig(input), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key);
    assert.ok(err.message.includes(key));
    if (secret) assert.ok(!err.message.includes(secret), 'the secret value is not echoed');
    return true;
  });
}

describe('loadConfig', () => {
  it('has working defaults: port 8080, loopback, embedded SQLite, demo on, 600 s console tokens', () => {
    const { config } = loadConfig({ argv: [], env: {}, cwd: dir });
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.publicUrl, 'http://127.0.0.1:8080');
    assert.equal(config.databaseUrl, null);
    assert.equal(config.demo, true);
    assert.equal(config.console.tokenTtlSeconds, 600);
    assert.equal(config.dataDir, path.join(dir, 'data'));
    assert.ok(Object.isFrozen(config));
  });

  it('applies defaults < YAML < env < flags', () => {
    const yaml = file('a.yaml', 'port: 9001\nlog_level: warn\nconsole:\n  token_ttl_seconds: 120\n  lang: ZH-CN\n');
    const base = { cwd: dir };
    assert.equal(loadConfig({ ...base, argv: ['--config', yaml], env: {} }).config.port, 9001);
    assert.equal(loadConfig({ ...base, argv: ['--config', yaml], env: {} }).config.console.tokenTtlSeconds, 120);
    const withEnv = loadConfig({ ...base, argv: ['--config', yaml], env: { PORTHOLE_PORT: '9002', PORTHOLE_CONSOLE_TOKEN_TTL_SECONDS: '300' } }).config;
    assert.equal(withEnv.port, 9002);
    assert.equal(withEnv.console.tokenTtlSeconds, 300);
    assert.equal(withEnv.console.lang, 'ZH-CN');
    const withFlag = loadConfig({ ...base, argv: ['--config', yaml, '--port=9003', '--console-token-ttl-seconds', '60'], env: { PORTHOLE_PORT: '9002' } }).config;
    assert.equal(withFlag.port, 9003);
    assert.equal(withFlag.console.tokenTtlSeconds, 60);
    assert.equal(loadConfig({ ...base, argv: [], env: { PORTHOLE_CONFIG: yaml } }).config.logLevel, 'warn');
  });

  it('reads secrets by value or from *_FILE', () => {
    assert.deepEqual(loadConfig({ argv: [], env: { PORTHOLE_MASTER_KEY: KEY_HEX }, cwd: dir }).config.masterKey, Buffer.from(KEY_HEX, 'hex'));
    const keyFile = file('master.key', KEY_HEX + '\n');
    assert.deepEqual(loadConfig({ argv: [], env: { PORTHOLE_MASTER_KEY_FILE: keyFile }, cwd: dir }).config.masterKey, Buffer.from(KEY_HEX, 'hex'));
    assert.deepEqual(loadConfig({ argv: ['--master-key-file', keyFile], env: {}, cwd: dir }).config.masterKey, Buffer.from(KEY_HEX, 'hex'));
    const b64 = Buffer.alloc(32, 7).toString('base64');
    assert.deepEqual(loadConfig({ argv: [], env: { PORTHOLE_MASTER_KEY: b64 }, cwd: dir }).config.masterKey, Buffer.alloc(32, 7));
  });

  it('derives the public URL from host and port unless given, and validates it', () => {
    assert.equal(loadConfig({ argv: ['--public-url', 'https://console.example.com/'], env: {}, cwd: dir }).config.publicUrl, 'https://console.example.com');
    refused({ argv: ['--public-url', 'ftp://x'], env: {}, cwd: dir }, 'public_url');
    refused({ argv: ['--public-url', 'https://x/?a=1'], env: {}, cwd: dir }, 'public_url');
  });

  it('refuses bad values with a message naming the key', () => {
    refused({ argv: [], env: { PORTHOLE_PORT: 'eighty' }, cwd: dir }, 'port');
    refused({ argv: ['--port', '70000'], env: {}, cwd: dir }, 'port');
    refused({ argv: [], env: { PORTHOLE_TRUST_PROXY: 'maybe' }, cwd: dir }, 'trust_proxy');
    refused({ argv: [], env: { PORTHOLE_LOG_LEVEL: 'loud' }, cwd: dir }, 'log_level');
    refused({ argv: [], env: { PORTHOLE_DATABASE_URL: 'mysql://x' }, cwd: dir }, 'database_url', 'mysql://x');
    refused({ argv: [], env: { PORTHOLE_MASTER_KEY: 'not-a-key-secret-value' }, cwd: dir }, 'master_key', 'not-a-key-secret-value');
    refused({ argv: [], env: { PORTHOLE_ALLOWED_ORIGINS: 'not an origin' }, cwd: dir }, 'allowed_origins');
    refused({ argv: ['--no-such-flag'], env: {}, cwd: dir }, '--no-such-flag');
    refused({ argv: ['--port'], env: {}, cwd: dir }, 'port');
  });

  it('requires a master key with a shared database: no default secrets', () => {
    refused({ argv: [], env: { PORTHOLE_DATABASE_URL: 'postgres://127.0.0.1/test' }, cwd: dir }, 'master_key');
  });

  it('refuses unreadable, malformed and unknown-key config files', () => {
    refused({ argv: ['--config', path.join(dir, 'missing.yaml')], env: {}, cwd: dir }, 'config');
    refused({ argv: ['--config', file('bad.yaml', 'port: [1,\n')], env: {}, cwd: dir }, 'config');
    refused({ argv: ['--config', file('list.yaml', '- 1\n- 2\n')], env: {}, cwd: dir }, 'config');
    refused({ argv: ['--config', file('typo.yaml', 'prot: 8080\n')], env: {}, cwd: dir }, 'prot');
    refused({ argv: ['--config', file('type.yaml', 'port: "x"\n')], env: {}, cwd: dir }, 'port');
    refused({ argv: [], env: { PORTHOLE_MASTER_KEY_FILE: path.join(dir, 'nope.key') }, cwd: dir }, 'master_key');
  });
});

describe('loadConfig: scale-out keys (issue 7)', () => {
  it('defaults: no Redis, prefix porthole:, 30 s drain, 5 s heartbeat, 30 s node timeout', () => {
    const { config } = loadConfig({ argv: [], env: {}, cwd: dir });
    assert.equal(config.redisUrl, null);
    assert.equal(config.redisKeyPrefix, 'porthole:');
    assert.deepEqual(config.drain, { graceSeconds: 30 });
    assert.deepEqual(config.cluster, { heartbeatSeconds: 5, nodeTimeoutSeconds: 30 });
  });

  it('reads PORTHOLE_REDIS_URL (or _FILE) and the other keys from env and flags', () => {
    const { config } = loadConfig({
      argv: ['--drain-grace-seconds', '5', '--cluster-heartbeat-seconds', '1', '--cluster-node-timeout-seconds', '3', '--node-id', 'gw-1'],
      env: { PORTHOLE_REDIS_URL_FILE: file('redis-url', 'redis://:s3cret@10.0.0.20:6379/0\n'), PORTHOLE_REDIS_KEY_PREFIX: 'ph:' }, cwd: dir,
    });
    assert.equal(config.redisUrl, 'redis://:s3cret@10.0.0.20:6379/0');
    assert.equal(config.redisKeyPrefix, 'ph:');
    assert.deepEqual([config.drain.graceSeconds, config.cluster.heartbeatSeconds, config.cluster.nodeTimeoutSeconds, config.nodeId], [5, 1, 3, 'gw-1']);
  });

  it('refuses a non-redis URL, a bad prefix or node id, and a node timeout under two heartbeats', () => {
    refused({ env: { PORTHOLE_REDIS_URL: 'http://user:s3cret@host' } }, 'redis_url', 's3cret');
    refused({ env: { PORTHOLE_REDIS_KEY_PREFIX: 'has space' } }, 'redis_key_prefix');
    refused({ argv: ['--node-id', 'a b'] }, 'node_id');
    refused({ argv: ['--cluster-heartbeat-seconds', '5', '--cluster-node-timeout-seconds', '9'] }, 'cluster.node_timeout_seconds');
  });
});
