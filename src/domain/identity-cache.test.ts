/**
 * The identity cache (domain/identity-cache.ts) and the store decorator that clears it
 * (store/identity-watch.ts): entries expire after the TTL and never outlive their token; a clear drops
 * everything, and a read that was in flight across a clear is not kept; writes to identities — direct
 * or inside a transaction, once it commits — report a change, reads do not; the size stays bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from './authz.js';
import { IdentityCache } from './identity-cache.js';
import { watchIdentityChanges } from '../store/identity-watch.js';
import { openSqliteStore } from '../store/sqlite/index.js';

const T = 1_700_000_000_000;
const principal = (userId = 'u1'): Principal => ({
  userId, userName: 'alice', domainId: 'd1', domainName: 'dom', scopeProjectId: 'p1', domainAdmin: false, operatorDomain: false, roles: new Map([['p1', 'operator']]), via: 'token',
});

describe('identity cache', () => {
  it('keeps a principal for the TTL, never past its token\'s expiry', () => {
    const c = new IdentityCache(5000);
    c.setPrincipal('h1', { principal: principal(), tokenExpiresAt: T + 60_000 }, c.generation, T);
    c.setPrincipal('h2', { principal: principal('u2'), tokenExpiresAt: T + 2000 }, c.generation, T);
    assert.equal(c.principal('h1', T + 4999)?.principal.userId, 'u1');
    assert.equal(c.principal('h1', T + 5000), undefined, 'gone after the TTL');
    assert.equal(c.principal('h2', T + 1999)?.principal.userId, 'u2');
    assert.equal(c.principal('h2', T + 2000), undefined, 'gone when its token expires');
  });

  it('clear() drops every entry, and a read begun before the clear is not cached', () => {
    const c = new IdentityCache(5000);
    c.setPrincipal('h1', { principal: principal(), tokenExpiresAt: T + 60_000 }, c.generation, T);
    c.setProject('p1', { id: 'p1', domainId: 'd1', name: 'x', createdAt: T }, c.generation, T);
    const before = c.generation;
    c.clear();
    assert.equal(c.principal('h1', T), undefined);
    assert.equal(c.project('p1', T), undefined);
    c.setPrincipal('h1', { principal: principal(), tokenExpiresAt: T + 60_000 }, before, T);
    assert.equal(c.principal('h1', T), undefined, 'read before the change: not kept');
    c.setPrincipal('h1', { principal: principal(), tokenExpiresAt: T + 60_000 }, c.generation, T);
    assert.ok(c.principal('h1', T));
  });

  it('caches a missing project as null (not found), distinct from not cached', () => {
    const c = new IdentityCache(5000);
    assert.equal(c.project('nope', T), undefined);
    c.setProject('nope', null, c.generation, T);
    assert.equal(c.project('nope', T), null);
  });

  it('access keys: kept for the TTL with their owner; a recorded use updates the cached copy; clear() drops them', () => {
    const c = new IdentityCache(5000);
    const key = { accessKey: 'AK1', userId: 'u1', domainId: 'd1', secretSealed: 's', status: 'active' as const, description: '', createdAt: T, lastUsedAt: null };
    const user = { id: 'u1', domainId: 'd1', name: 'alice', passwordHash: 'x', domainAdmin: false, disabled: false, passwordExpiresAt: null, createdAt: T };
    const domain = { id: 'd1', name: 'dom', createdAt: T, operator: false };
    c.setAccessKey('AK1', { key, secret: 'sk', user, domain, roles: [{ userId: 'u1', projectId: 'p1', role: 'operator' }] }, c.generation, T);
    assert.equal(c.accessKey('AK1', T + 4999)?.user.name, 'alice');
    c.accessKeyUsed('AK1', T + 100);
    assert.equal(c.accessKey('AK1', T + 200)?.key.lastUsedAt, T + 100);
    assert.equal(key.lastUsedAt, null, 'the record that was read is not modified');
    assert.equal(c.accessKey('AK1', T + 5000), undefined, 'gone after the TTL');
    c.setAccessKey('AK1', { key, secret: 'sk', user, domain, roles: [] }, c.generation, T);
    c.clear();
    assert.equal(c.accessKey('AK1', T), undefined);
  });

  it('a TTL of 0 caches nothing', () => {
    const c = new IdentityCache(0);
    c.setPrincipal('h1', { principal: principal(), tokenExpiresAt: T + 60_000 }, c.generation, T);
    assert.equal(c.principal('h1', T), undefined);
    assert.equal(c.size, 0);
  });

  it('holds at most maxEntries per kind, dropping the oldest', () => {
    const c = new IdentityCache(5000, 3);
    for (let i = 0; i < 5; i++) c.setPrincipal(`h${i}`, { principal: principal(`u${i}`), tokenExpiresAt: T + 60_000 }, c.generation, T);
    assert.equal(c.size, 3);
    assert.equal(c.principal('h0', T), undefined);
    assert.equal(c.principal('h4', T)?.principal.userId, 'u4');
  });
});

describe('identity watch (store decorator)', () => {
  it('reports access-key writes (insert, update, delete), not their last use or lockout counts', async () => {
    const raw = await openSqliteStore(':memory:');
    let changes = 0;
    const store = watchIdentityChanges(raw, () => { changes++; });
    try {
      await store.identity.upsertDomain({ id: 'd'.repeat(32), name: 'dom', createdAt: T, operator: false });
      await store.identity.upsertUser({ id: 'u'.repeat(32), domainId: 'd'.repeat(32), name: 'alice', passwordHash: 'x', domainAdmin: false, disabled: false, passwordExpiresAt: null, createdAt: T });
      changes = 0;
      await store.accessKeys.insert({ accessKey: 'AK1', userId: 'u'.repeat(32), domainId: 'd'.repeat(32), secretSealed: 's', status: 'active', description: '', createdAt: T, lastUsedAt: null });
      assert.equal(changes, 1);
      await store.accessKeys.touch('AK1', T + 1);
      await store.accessKeys.setLockout('AK1', { failures: 1, lockedUntil: null }, T + 1);
      await store.accessKeys.addLockoutFailure('AK1', T + 2, 5, 1000);
      await store.accessKeys.clearLockout('AK1', T + 3);
      await store.accessKeys.get('AK1');
      assert.equal(changes, 1, 'last use, lockout counts and reads are not changes');
      await store.accessKeys.update('AK1', { status: 'inactive' });
      await store.accessKeys.delete('AK1');
      assert.equal(changes, 3);
    } finally {
      await store.close();
    }
  });

  it('reports identity writes (direct, and in a transaction once it commits), not reads or other writes', async () => {
    const raw = await openSqliteStore(':memory:');
    let changes = 0;
    const store = watchIdentityChanges(raw, () => { changes++; });
    try {
      await store.identity.upsertDomain({ id: 'd'.repeat(32), name: 'dom', createdAt: T, operator: false });
      assert.equal(changes, 1);
      await store.identity.getDomain('d'.repeat(32));
      await store.identity.listDomains();
      await store.audit.append({
        at: T, requestId: null, actorUserId: null, actorName: null, actorAk: null, action: 'x', resourceKind: null, resourceId: null,
        projectId: null, sourceIp: null, userAgent: null, result: 'success', code: null, detail: null,
      });
      assert.equal(changes, 1, 'reads and non-identity writes are not changes');
      await store.transaction(async (tx) => {
        await tx.identity.upsertProject({ id: 'p'.repeat(32), domainId: 'd'.repeat(32), name: 'proj', createdAt: T });
        await tx.identity.upsertProject({ id: 'q'.repeat(32), domainId: 'd'.repeat(32), name: 'proj2', createdAt: T });
        assert.equal(changes, 1, 'not before the commit');
      });
      assert.equal(changes, 2, 'one report per transaction');
      await assert.rejects(store.identity.upsertProject({ id: 'r'.repeat(32), domainId: 'x'.repeat(32), name: 'orphan', createdAt: T }));
      assert.equal(changes, 3, 'a failed write is reported too (it may have reached the database)');
      assert.equal((await store.identity.getProject('p'.repeat(32)))?.name, 'proj', 'calls pass through');
    } finally {
      await store.close();
    }
  });
});
