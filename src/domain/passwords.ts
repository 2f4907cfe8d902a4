/**
 * Password hashing and random tokens.
 *
 * Passwords are hashed with scrypt, N=2^15, r=8, p=1 (the OWASP minimum is N=2^17 with r=8, or
 * N=2^15 with a larger p; we keep p=1 for latency). N=2^15 needs 128·N·r = 32 MiB, exactly Node's
 * default `maxmem`, which OpenSSL then rejects ("memory limit exceeded"), so maxmem is raised to
 * 64 MiB. Measured on the development machine (Xeon, Node 20): ~90 ms per hash at 2^15, ~45 ms at
 * 2^14; 2^15 stays under the 150 ms budget. Hashes run on the libuv thread pool, so concurrent
 * logins do not block the event loop but each holds 32 MiB while it runs.
 *
 * Stored form: `scrypt$N$r$p$<salt base64>$<hash base64>`. The parameters travel with the hash, so
 * they can be raised later (`needsRehash`) without invalidating existing passwords. Parameters read
 * back are bounded, so a corrupted or planted row cannot make verification allocate gigabytes.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const SCRYPT_N = 2 ** 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

/** Bounds on parameters accepted from a stored hash: memory (128·N·r) and work (N·r·p, 8× today's). */
const MAX_SCRYPT_MEMORY = 128 * 1024 * 1024;
const MAX_SCRYPT_WORK = 8 * SCRYPT_N * SCRYPT_R * SCRYPT_P;
const MIN_HASH_BYTES = 16;
const MAX_HASH_BYTES = 64;

function scryptAsync(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password, salt, HASH_BYTES, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, maxmem: SCRYPT_MAXMEM });
  return `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

interface StoredHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const DECIMAL_RE = /^[1-9]\d{0,9}$/;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function parseStored(stored: string): StoredHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  if (![n, r, p].every((x) => DECIMAL_RE.test(x)) || !BASE64_RE.test(salt) || !BASE64_RE.test(hash)) return null;
  const parsed = { N: Number(n), r: Number(r), p: Number(p), salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
  const powerOfTwo = parsed.N > 1 && (parsed.N & (parsed.N - 1)) === 0;
  if (!powerOfTwo || 128 * parsed.N * parsed.r > MAX_SCRYPT_MEMORY || parsed.N * parsed.r * parsed.p > MAX_SCRYPT_WORK) return null;
  if (parsed.salt.length === 0 || parsed.hash.length < MIN_HASH_BYTES || parsed.hash.length > MAX_HASH_BYTES) return null;
  return parsed;
}

/** True when the password matches. A malformed or out-of-bounds stored value is a non-match, not an error. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const s = parseStored(stored);
  if (!s) return false;
  const maxmem = Math.max(SCRYPT_MAXMEM, 2 * 128 * s.N * s.r);
  const actual = await scryptAsync(password, s.salt, s.hash.length, { N: s.N, r: s.r, p: s.p, maxmem });
  return timingSafeEqual(actual, s.hash);
}

/** True when `stored` was made with weaker parameters than the current ones (rehash on next login). */
export function needsRehash(stored: string): boolean {
  const s = parseStored(stored);
  return !s || s.N < SCRYPT_N || s.r < SCRYPT_R || s.p < SCRYPT_P || s.hash.length < HASH_BYTES;
}

/** A random opaque token, base64url without padding (32 bytes → 43 characters). */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 1024) throw new RangeError('randomToken: bytes must be an integer in 16..1024');
  return randomBytes(bytes).toString('base64url');
}

/** Lower-case hex SHA-256 of a UTF-8 string (or bytes): how tokens are stored and looked up. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
