/**
 * A store decorator that reports changes to identities: every write to users, domains, projects or
 * role bindings — directly or inside `store.transaction` (reported once the transaction commits) —
 * calls `onChange`. The gateway uses it to clear its principal cache (domain/principal-cache.ts) and to
 * tell the other nodes. Everything else passes through untouched.
 */
import type { IdentityRepo, Store } from './types.js';

/** The IdentityRepo methods that can change what a validated token grants. */
const IDENTITY_WRITES: ReadonlySet<keyof IdentityRepo> = new Set<keyof IdentityRepo>([
  'upsertDomain', 'deleteDomain', 'upsertProject', 'deleteProject', 'upsertUser', 'deleteUser', 'setRole', 'removeRole',
]);

function watchRepo(repo: IdentityRepo, onWrite: () => void): IdentityRepo {
  return new Proxy(repo, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!IDENTITY_WRITES.has(prop as keyof IdentityRepo)) return value.bind(target);
      return async (...args: unknown[]) => {
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          // Reported even when the write failed: it may have reached the database before failing.
          onWrite();
        }
      };
    },
  });
}

export function watchIdentityChanges(store: Store, onChange: () => void): Store {
  const identity = watchRepo(store.identity, onChange);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'identity') return identity;
      if (prop === 'transaction') {
        return async <T>(fn: (tx: Store) => Promise<T>): Promise<T> => {
          let changed = false;
          try {
            return await target.transaction((tx) => fn(watchIdentityChanges(tx, () => { changed = true; })));
          } finally {
            if (changed) onChange();
          }
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
