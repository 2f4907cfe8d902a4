/** SecretBox: AES-256-GCM envelopes must round-trip and refuse any change, key or context. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SecretBox, SecretBoxError } from './secrets.js';

const KEY = Buffer.alloc(32, 7);

function assertDecryptFails(fn: () => unknown, label: string): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof SecretBoxError && err.code === 'SECRET_DECRYPT_FAILED',
    label,
  );
}

describe('SecretBox', () => {
  it('round-trips, including empty and non-ASCII plaintext', () => {
    const box = new SecretBox(KEY);
    for (const pt of ['vnc-pass', '', 'пароль 密码 🔑', 'x'.repeat(10_000)]) {
      const sealed = box.seal(pt, 'vnc:srv-1');
      assert.match(sealed, /^v1:k1:[A-Za-z0-9+/]+=*$/);
      assert.equal(box.open(sealed, 'vnc:srv-1'), pt);
    }
  });

  it('uses a fresh IV each time', () => {
    const box = new SecretBox(KEY);
    assert.notEqual(box.seal('same'), box.seal('same'));
  });

  it('refuses a change to any single character of the sealed text', () => {
    const box = new SecretBox(KEY);
    const sealed = box.seal('secret-value', 'ctx');
    for (let i = 0; i < sealed.length; i++) {
      const c = sealed.charAt(i);
      const replacement = c === 'A' ? 'B' : 'A';
      assertDecryptFails(() => box.open(sealed.slice(0, i) + replacement + sealed.slice(i + 1), 'ctx'), `char ${i}`);
    }
    assertDecryptFails(() => box.open(sealed.slice(0, -4), 'ctx'), 'truncated');
    assertDecryptFails(() => box.open(sealed + 'AAAA', 'ctx'), 'extended');
  });

  it('refuses a change to any byte of iv, tag or ciphertext', () => {
    const box = new SecretBox(KEY);
    const sealed = box.seal('secret-value');
    const prefix = 'v1:k1:';
    const bytes = Buffer.from(sealed.slice(prefix.length), 'base64');
    for (let i = 0; i < bytes.length; i++) {
      const changed = Buffer.from(bytes);
      changed[i] = (changed[i] ?? 0) ^ 0x80;
      assertDecryptFails(() => box.open(prefix + changed.toString('base64')), `byte ${i}`);
    }
  });

  it('refuses the wrong key, and the wrong or missing context (aad)', () => {
    const sealed = new SecretBox(KEY).seal('secret-value', 'vnc:srv-1');
    assertDecryptFails(() => new SecretBox(randomBytes(32)).open(sealed, 'vnc:srv-1'), 'wrong key');
    assertDecryptFails(() => new SecretBox(KEY).open(sealed, 'vnc:srv-2'), 'other aad');
    assertDecryptFails(() => new SecretBox(KEY).open(sealed), 'no aad');
    assertDecryptFails(() => new SecretBox(KEY, 'k2').open(sealed, 'vnc:srv-1'), 'unknown key id');
  });

  it('error messages never include the plaintext, key or sealed value', () => {
    const plaintext = 'do-not-leak-me';
    const sealed = new SecretBox(KEY).seal(plaintext);
    for (const attempt of [() => new SecretBox(randomBytes(32)).open(sealed), () => new SecretBox(KEY).open('garbage:' + plaintext)]) {
      try {
        attempt();
        assert.fail('should have thrown');
      } catch (err) {
        assert.ok(err instanceof SecretBoxError);
        const text = `${err.message} ${err.stack ?? ''} ${String(err.cause ?? '')}`;
        for (const secret of [plaintext, KEY.toString('hex'), KEY.toString('base64'), sealed]) assert.ok(!text.includes(secret));
      }
    }
  });

  it('opens values sealed under a previous key, and reports them for resealing', () => {
    const oldKey = randomBytes(32);
    const oldSealed = new SecretBox(oldKey, 'k1').seal('legacy', 'a');
    const rotated = new SecretBox(KEY, 'k2', { k1: oldKey });
    assert.equal(rotated.open(oldSealed, 'a'), 'legacy');
    assert.equal(rotated.needsReseal(oldSealed), true);
    const fresh = rotated.seal('legacy', 'a');
    assert.match(fresh, /^v1:k2:/);
    assert.equal(rotated.needsReseal(fresh), false);
    // Relabelling an old value with the new key id fails: the key id is authenticated.
    assertDecryptFails(() => rotated.open(oldSealed.replace('v1:k1:', 'v1:k2:'), 'a'), 'relabelled');
  });

  it('rejects keys that are not 32 bytes and unusable key ids', () => {
    assert.throws(() => new SecretBox(Buffer.alloc(16)), RangeError);
    assert.throws(() => new SecretBox(KEY, 'a:b'), RangeError);
    assert.throws(() => new SecretBox(KEY, 'k2', { k1: Buffer.alloc(31) }), RangeError);
  });
});
