/**
 * A store decorator that reports changes to identities: every write to users, domains, projects, role
 * bindings or access keys (not their last-use time or lockout counts) — directly or inside
 * `store.transaction` (reported once the transaction commits) — calls `onChange`. The gateway uses it
 * to clear its identity cache (domain/identity-cache.ts) and to tell the other nodes. Everything else
 * passes through untouched.
 */
import type { AccessKeyRepo, IdentityRepo, Store } from './types.js';

/** The IdentityRepo methods that can change what a validated token grants. */
const IDENTITY_WRITES: ReadonlySet<string> = new Set<keyof IdentityRepo>([
  'upsertDomain', 'adoptOperatorDomains', 'deleteDomain', 'upsertProject', 'deleteProject', 'upsertUser', 'deleteUser', 'setRole', 'removeRole',
  'deleteIamTokensOfUser',
]);

/** The AccessKeyRepo methods that can change what a signature grants. */
const ACCESS_KEY_WRITES: ReadonlySet<string> = new Set<keyof AccessKeyRepo>(['insert', 'update', 'delete']);

function watchRepo<R extends object>(repo: R, writes: ReadonlySet<string>, onWrite: () => void): R {
  return new Proxy(repo, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof prop !== 'string' || !writes.has(prop)) return value.bind(target);
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
  const identity = watchRepo(store.identity, IDENTITY_WRITES, onChange);
  const accessKeys = watchRepo(store.accessKeys, ACCESS_KEY_WRITES, onChange);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'identity') return identity;
      if (prop === 'accessKeys') return accessKeys;
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
