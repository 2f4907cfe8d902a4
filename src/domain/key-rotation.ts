/**
 * Master-key rotation: every sealed secret in the store (VNC passwords, VeNCrypt client keys, AK
 * secret keys) re-sealed under the gateway's current master key. Each value is opened with whichever
 * configured key sealed it and written back with a compare-and-swap, so a concurrent change (an
 * operator setting a new password mid-rotation) wins and readers never see a value their node cannot
 * open — as long as every node already has the new key as current and the old ones as previous
 * (the procedure in the README). Nothing is logged or returned but ids and counts.
 */
import type { SealedKind, SealedValue, Store } from '../store/types.js';
import { endpointPasswordAad, endpointTlsKeyAad } from './endpoint-spec.js';
import { SecretBox, SecretBoxError } from './secrets.js';

/** The sealing context of each kind of sealed value (must match where it was sealed). */
export const SEAL_AAD: Record<SealedKind, (id: string) => string> = {
  endpoint_password: endpointPasswordAad,
  endpoint_tls_key: endpointTlsKeyAad,
  access_key_secret: (accessKey) => `ak:${accessKey}`,
  share_space_password: (spaceId) => `share-space:${spaceId}`,
};

export interface KeyStatus {
  /** Id of the key new values are sealed under. */
  currentKeyId: string;
  /** Sealed values per key id. */
  byKey: Record<string, number>;
  total: number;
  /** Values not under the current key (a rotation re-seals them; the old key is needed until 0). */
  stale: number;
}

export interface RotationResult {
  resealed: number;
  /** Already under the current key. */
  current: number;
  /** Changed by someone else between read and write (already re-sealed by them). */
  raced: number;
  /** Values this node cannot open (key missing, or corrupt): listed by kind and id only. */
  failed: { kind: SealedKind; id: string; reason: string }[];
}

export async function keyStatus(store: Store, secrets: SecretBox): Promise<KeyStatus> {
  const values = await store.sealed.list();
  const byKey: Record<string, number> = {};
  let stale = 0;
  for (const v of values) {
    const id = SecretBox.keyIdOfSealed(v.sealed) ?? 'malformed';
    byKey[id] = (byKey[id] ?? 0) + 1;
    if (secrets.needsReseal(v.sealed)) stale++;
  }
  return { currentKeyId: secrets.currentKeyId, byKey, total: values.length, stale };
}

export async function rotateKeys(store: Store, secrets: SecretBox): Promise<RotationResult> {
  const out: RotationResult = { resealed: 0, current: 0, raced: 0, failed: [] };
  const values: SealedValue[] = await store.sealed.list();
  for (const v of values) {
    if (!secrets.needsReseal(v.sealed)) { out.current++; continue; }
    const aad = SEAL_AAD[v.kind](v.id);
    let plain: string;
    try {
      plain = secrets.open(v.sealed, aad);
    } catch (err) {
      out.failed.push({ kind: v.kind, id: v.id, reason: err instanceof SecretBoxError ? err.reason : 'error' });
      continue;
    }
    if (await store.sealed.replace(v.kind, v.id, v.sealed, secrets.seal(plain, aad))) out.resealed++;
    else out.raced++;
  }
  return out;
}
