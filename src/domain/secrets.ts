/**
 * Envelope encryption for secrets the gateway must read back (VNC passwords, AK secret keys,
 * share-space passwords): AES-256-GCM under a 32-byte master key from config.
 *
 * Sealed form: `v1:<keyId>:<base64(iv[12] | tag[16] | ciphertext)>`. The key id selects the key on
 * open(), so a new master key can be introduced while old values are still readable (pass the old
 * keys as `previousKeys`, reseal what `needsReseal()` reports). The version and key id are bound
 * into the GCM additional data together with the caller's `aad` (e.g. `vnc:<server id>`), so a
 * sealed value cannot be moved to another record or relabelled without failing authentication.
 *
 * Errors never carry the plaintext, the key, or the sealed value.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12; // the GCM nonce size (NIST SP 800-38D §8.2)
const TAG_BYTES = 16;
const KEY_ID_RE = /^[A-Za-z0-9_-]{1,32}$/;

export type SecretBoxFailure = 'format' | 'unknown_key' | 'authentication';

export class SecretBoxError extends Error {
  readonly code = 'SECRET_DECRYPT_FAILED';

  constructor(readonly reason: SecretBoxFailure) {
    super(
      reason === 'format'
        ? 'sealed secret is malformed'
        : reason === 'unknown_key'
          ? 'sealed secret uses a key id this gateway does not have'
          : 'sealed secret failed authentication (wrong key, wrong context, or altered)',
    );
    this.name = 'SecretBoxError';
  }
}

function checkKey(keyId: string, key: Buffer): void {
  if (!KEY_ID_RE.test(keyId)) throw new RangeError('SecretBox: key id must be 1-32 characters of [A-Za-z0-9_-]');
  if (key.length !== KEY_BYTES) throw new RangeError(`SecretBox: key "${keyId}" must be ${KEY_BYTES} bytes`);
}

export class SecretBox {
  private readonly keys = new Map<string, Buffer>();

  constructor(
    masterKey: Buffer,
    private readonly keyId = 'k1',
    previousKeys: Readonly<Record<string, Buffer>> = {},
  ) {
    checkKey(keyId, masterKey);
    for (const [id, key] of Object.entries(previousKeys)) {
      checkKey(id, key);
      this.keys.set(id, Buffer.from(key));
    }
    this.keys.set(keyId, Buffer.from(masterKey)); // copies: the caller may wipe its buffers
  }

  seal(plaintext: string, aad = ''): string {
    const key = this.keys.get(this.keyId);
    if (!key) throw new Error('SecretBox: current key missing'); // unreachable: set in the constructor
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(this.keyId, aad));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}:${this.keyId}:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
  }

  open(sealed: string, aad = ''): string {
    const [version, keyId, payload, ...rest] = sealed.split(':');
    if (version !== VERSION || keyId === undefined || payload === undefined || rest.length > 0) throw new SecretBoxError('format');
    const key = this.keys.get(keyId);
    if (!key) throw new SecretBoxError('unknown_key');
    const bytes = Buffer.from(payload, 'base64');
    // Node's base64 decoder skips junk and ignores unused trailing bits, so insist on the
    // canonical encoding: otherwise some edits of the text would open to the same plaintext.
    if (bytes.toString('base64') !== payload || bytes.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('format');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(additionalData(keyId, aad));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      // The crypto error says nothing useful and is dropped on purpose.
      throw new SecretBoxError('authentication');
    }
  }

  /** True when `sealed` was made with an older key and should be sealed again with the current one. */
  needsReseal(sealed: string): boolean {
    return sealed.split(':')[1] !== this.keyId;
  }
}

function additionalData(keyId: string, aad: string): Buffer {
  return Buffer.from(`${VERSION}:${keyId}:${aad}`, 'utf8');
}
