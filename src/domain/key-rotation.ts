/**
 * Master-key rotation: every sealed secret in the store (VNC passwords, VeNCrypt client keys, AK
 * secret keys) re-sealed under the gateway's current master key. Each value is opened with whichever
 * configured key sealed it and written back with a compare-and-swap, so a concurrent change (an
 * operator setting a new password mid-rotation) wins and readers never see a value their node cannot
 * open — as long as every node already has the new key as current and the old ones as previous
 * (the procedure in the README). A rotation also binds endpoint secrets sealed before they were bound
 * to their endpoint's target. Nothing is logged or returned but ids and counts.
 */
import type { SealedKind, SealedValue, Store } from '../store/types.js';
import { endpointSecretAads } from './endpoint-spec.js';
import { SecretBox, SecretBoxError } from './secrets.js';

/** The sealing context of the kinds of sealed value that depend on their id only (must match where it was sealed). */
export const SEAL_AAD: Record<Exclude<SealedKind, 'endpoint_password' | 'endpoint_tls_key'>, (id: string) => string> = {
  access_key_secret: (accessKey) => `ak:${accessKey}`,
  share_space_password: (spaceId) => `share-space:${spaceId}`,
};

/**
 * The context `v` is (to be) sealed under, and the plaintext. Endpoint secrets are bound to their
 * endpoint's target (domain/endpoint-spec.ts): read from the machine as stored now; a value sealed
 * before the binding opens under its old context and `rebind` says it should be sealed again bound.
 */
async function openSealed(store: Store, secrets: SecretBox, v: SealedValue): Promise<{ plain: string; aad: string; rebind: boolean } | 'raced'> {
  if (v.kind === 'endpoint_password' || v.kind === 'endpoint_tls_key') {
    const ep = (await store.inventory.getResourceById(v.id))?.endpoint;
    // The machine, its endpoint or the secret changed since the list was read: its writer sealed it.
    if ((v.kind === 'endpoint_password' ? ep?.passwordSealed : ep?.tlsKeySealed) !== v.sealed || !ep) return 'raced';
    const aads = endpointSecretAads(v.kind === 'endpoint_password' ? 'password' : 'tlsKey', v.id, ep);
    try {
      return { plain: secrets.open(v.sealed, aads.bound), aad: aads.bound, rebind: false };
    } catch (err) {
      if (!(err instanceof SecretBoxError) || err.reason !== 'authentication') throw err;
    }
    return { plain: secrets.open(v.sealed, aads.legacy), aad: aads.bound, rebind: true };
  }
  const aad = SEAL_AAD[v.kind](v.id);
  return { plain: secrets.open(v.sealed, aad), aad, rebind: false };
}

export interface KeyStatus {
  /** Id of the key new values are sealed under. */
  currentKeyId: string;
  /** Sealed values per key id. */
  byKey: Record<string, number>;
  total: number;
  /** Values not under the current key (a rotation re-seals them; the old key is needed until 0). */
  stale: number;
  /** Endpoint secrets sealed before they were bound to their endpoint's target (a rotation binds them). */
  unbound: number;
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

const isEndpointSecret = (v: SealedValue) => v.kind === 'endpoint_password' || v.kind === 'endpoint_tls_key';

export async function keyStatus(store: Store, secrets: SecretBox): Promise<KeyStatus> {
  const values = await store.sealed.list();
  const byKey: Record<string, number> = {};
  let stale = 0;
  let unbound = 0;
  for (const v of values) {
    const id = SecretBox.keyIdOfSealed(v.sealed) ?? 'malformed';
    byKey[id] = (byKey[id] ?? 0) + 1;
    if (secrets.needsReseal(v.sealed)) stale++;
    if (isEndpointSecret(v)) {
      try {
        const o = await openSealed(store, secrets, v);
        if (o !== 'raced' && o.rebind) unbound++;
      } catch { /* a rotation lists it as failed */ }
    }
  }
  return { currentKeyId: secrets.currentKeyId, byKey, total: values.length, stale, unbound };
}

export async function rotateKeys(store: Store, secrets: SecretBox): Promise<RotationResult> {
  const out: RotationResult = { resealed: 0, current: 0, raced: 0, failed: [] };
  const values: SealedValue[] = await store.sealed.list();
  for (const v of values) {
    // Endpoint secrets are opened even under the current key: one sealed before the binding is bound now.
    if (!secrets.needsReseal(v.sealed) && !isEndpointSecret(v)) { out.current++; continue; }
    let opened: { plain: string; aad: string; rebind: boolean } | 'raced';
    try {
      opened = await openSealed(store, secrets, v);
    } catch (err) {
      out.failed.push({ kind: v.kind, id: v.id, reason: err instanceof SecretBoxError ? err.reason : 'error' });
      continue;
    }
    if (opened === 'raced') { out.raced++; continue; }
    if (!secrets.needsReseal(v.sealed) && !opened.rebind) { out.current++; continue; }
    // Compare-and-swap: a concurrent change of the endpoint (a new target or secret) changes the sealed value and wins.
    if (await store.sealed.replace(v.kind, v.id, v.sealed, secrets.seal(opened.plain, opened.aad))) out.resealed++;
    else out.raced++;
  }
  return out;
}
