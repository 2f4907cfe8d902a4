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
 * Master-key rotation (`SecretBox.forMasterKeys`): the key id is a fingerprint of the key, so every
 * node derives the same id from the same key without coordination; a node configured with a new key
 * and the previous ones opens values sealed under any of them and seals under the new one. Values
 * sealed before ids were fingerprints carry the id `k1`; they are tried against every configured key
 * (GCM authentication tells which one is right) until a rotation re-seals them.
 *
 * Errors never carry the plaintext, the key, or the sealed value.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

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

/** The key id of a master key: a fingerprint (not reversible to the key), the same on every node. */
export function keyIdOf(key: Buffer): string {
  return 'k' + createHash('sha256').update('porthole master key id\0').update(key).digest('hex').slice(0, 16);
}

/** The id every value sealed before key fingerprints carries (each node had one key, called k1). */
export const LEGACY_KEY_ID = 'k1';

export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  /** Keys to try for values sealed under LEGACY_KEY_ID (forMasterKeys only). */
  private legacyCandidates: Buffer[] = [];

  /**
   * The gateway's box: seals under `current` (id = its fingerprint), opens values sealed under
   * `current`, any of `previous`, or the legacy id `k1` with any of them.
   */
  static forMasterKeys(current: Buffer, previous: readonly Buffer[] = []): SecretBox {
    const prev: Record<string, Buffer> = {};
    for (const k of previous) prev[keyIdOf(k)] = k;
    const box = new SecretBox(current, keyIdOf(current), prev);
    box.legacyCandidates = [Buffer.from(current), ...previous.map((k) => Buffer.from(k))];
    return box;
  }

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
    const candidates = key ? [key] : keyId === LEGACY_KEY_ID ? this.legacyCandidates : [];
    if (candidates.length === 0) throw new SecretBoxError('unknown_key');
    const bytes = Buffer.from(payload, 'base64');
    // Node's base64 decoder skips junk and ignores unused trailing bits, so insist on the
    // canonical encoding: otherwise some edits of the text would open to the same plaintext.
    if (bytes.toString('base64') !== payload || bytes.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('format');
    for (const k of candidates) {
      const plain = tryOpen(k, keyId, aad, bytes);
      if (plain !== undefined) return plain;
    }
    throw new SecretBoxError('authentication');
  }

  /** The key id `sealed` was made with (undefined when malformed). */
  static keyIdOfSealed(sealed: string): string | undefined {
    const parts = sealed.split(':');
    return parts.length === 3 && parts[0] === VERSION ? parts[1] : undefined;
  }

  /** The id new values are sealed under. */
  get currentKeyId(): string {
    return this.keyId;
  }

  /** True when `sealed` was made with an older key and should be sealed again with the current one. */
  needsReseal(sealed: string): boolean {
    return sealed.split(':')[1] !== this.keyId;
  }
}

/** AES-256-GCM open; undefined when authentication fails (the crypto error says nothing useful and is dropped on purpose). */
function tryOpen(key: Buffer, keyId: string, aad: string, bytes: Buffer): string | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(additionalData(keyId, aad));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function additionalData(keyId: string, aad: string): Buffer {
  return Buffer.from(`${VERSION}:${keyId}:${aad}`, 'utf8');
}
