/**
 * VNC Authentication (RFC 6143 §7.2.2): the client encrypts the server's 16-byte challenge with DES,
 * keyed by the password truncated or zero-padded to 8 bytes with the bit order of every key byte
 * reversed (VNC treats the least significant bit as DES's first key bit).
 *
 * Node 20's OpenSSL 3 keeps `des-ecb` in the legacy provider, which is not loaded. Two-key triple DES
 * (`des-ede-ecb`) with the key K‖K computes E_K(D_K(E_K(x))) = E_K(x), i.e. single DES, and is in the
 * default provider; `des.test.ts` checks it against the NBS/FIPS vectors.
 */
import { createCipheriv } from 'node:crypto';
import { VNC_AUTH_CHALLENGE_LENGTH, VNC_PASSWORD_MAX_BYTES } from './constants.js';

/** Single-DES ECB encryption of `data` (a multiple of 8 bytes) under an 8-byte key, no padding. */
export function desEncryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.length !== 8) throw new RangeError('DES key must be 8 bytes');
  if (data.length % 8 !== 0) throw new RangeError('DES input must be a multiple of 8 bytes');
  const k = Buffer.alloc(16);
  k.set(key, 0);
  k.set(key, 8);
  const cipher = createCipheriv('des-ede-ecb', k, null);
  cipher.setAutoPadding(false);
  const out = Buffer.concat([cipher.update(data), cipher.final()]);
  k.fill(0);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function reverseBits(b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
  return r;
}

/** The VNC key: the first 8 password bytes (zero-padded), each byte bit-reversed. */
export function vncAuthKey(password: Uint8Array): Uint8Array {
  const key = new Uint8Array(VNC_PASSWORD_MAX_BYTES);
  for (let i = 0; i < VNC_PASSWORD_MAX_BYTES && i < password.length; i++) {
    key[i] = reverseBits(password[i] ?? 0);
  }
  return key;
}

/** The 16-byte response to a VNC Authentication challenge. */
export function vncAuthResponse(password: Uint8Array, challenge: Uint8Array): Uint8Array {
  if (challenge.length !== VNC_AUTH_CHALLENGE_LENGTH) {
    throw new RangeError(`VNC challenge must be ${VNC_AUTH_CHALLENGE_LENGTH} bytes`);
  }
  const key = vncAuthKey(password);
  try {
    return desEncryptEcb(key, challenge);
  } finally {
    key.fill(0);
  }
}
