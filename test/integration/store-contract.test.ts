/**
 * The store contract (STYLE §10): one suite, `contract(name, open)`, run against every adapter — the
 * embedded SQLite file and PostgreSQL (a fresh schema for this file, see helpers/postgres.ts). Every
 * method of every repo in src/store/types.ts, including the concurrency promise of `redeem()`: 500
 * simultaneous redemptions of one token, spread over two independent stores (two pools = two nodes)
 * on PostgreSQL, yield exactly one winner. After the contract: PostgreSQL-only behaviour — parallel
 * migration from several nodes, per-store int8 parsing, and what a store does when the database
 * goes away (bounded failure, then recovery without reopening).
 *
 * The contract's stores share one database per adapter, so every test makes its own ids and reads
 * back through filters on them.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createStore } from '../../src/store/index.js';
import { openPostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type {
  AssistHelperRecord, ShareSpaceRecord,
} from '../../src/store/types.js';
import type {
  AccessKeyRecord, AuditEvent, ConsoleEndpoint, ConsoleSessionRecord, ConsoleTokenRecord, DomainRecord, ProjectRecord, ResourceRecord, Store, UserRecord,
} from '../../src/store/types.js';
import { createTestSchema, describePostgres, startTcpProxy, TEST_DATABASE_URL, type TestSchema } from '../helpers/postgres.js';

/** Epoch ms beyond 2^32, so a column or parser that truncates to 32 bits shows. */
const T0 = 1_700_000_000_000;
const BIG = 2 ** 40 + 7;

const hex32 = () => randomBytes(16).toString('hex');

interface Tenant { domain: DomainRecord; project: ProjectRecord; user: UserRecord }

async function tenant(store: Store): Promise<Tenant> {
  const domain = { id: hex32(), name: `d-${hex32()}`, createdAt: T0, operator: false };
  const project = { id: hex32(), domainId: domain.id, name: 'cn-north-4', createdAt: T0 + 1 };
  const user: UserRecord = {
    id: hex32(), domainId: domain.id, name: 'alice', passwordHash: 'scrypt$x', domainAdmin: false, disabled: false, passwordExpiresAt: null, createdAt: T0 + 2,
  };
  await store.identity.upsertDomain(domain);
  await store.identity.upsertProject(project);
  await store.identity.upsertUser(user);
  return { domain, project, user };
}

const endpoint = (over: Partial<ConsoleEndpoint> = {}): ConsoleEndpoint =>
  ({ host: '10.0.0.5', port: 5901, security: 'vncauth', passwordSealed: 'sealed:abc', zone: 'az1', ...over });

type ResourceInput = Omit<ResourceRecord, 'endpointGeneration' | 'createdAt' | 'updatedAt'>;
const resource = (projectId: string, over: Partial<ResourceInput> = {}): ResourceInput => ({
  id: randomUUID(), projectId, kind: 'cloudserver', name: 'web-1', status: 'ACTIVE',
  attributes: { flavor: 's6.large.2', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } }, endpoint: endpoint(), ...over,
});

const token = (projectId: string, resourceId: string, over: Partial<ConsoleTokenRecord> = {}): ConsoleTokenRecord => ({
  tokenHash: randomBytes(32).toString('hex'), projectId, resourceId, resourceKind: 'cloudserver', endpointGeneration: 1, purpose: 'console',
  zone: 'az1', userId: null, viewOnly: false, createdAt: T0, expiresAt: T0 + 600_000, redeemedAt: null, revokedAt: null, ...over,
});

const session = (over: Partial<ConsoleSessionRecord> = {}): ConsoleSessionRecord => ({
  id: randomUUID(), tokenHash: randomBytes(32).toString('hex'), projectId: hex32(), resourceId: randomUUID(), resourceKind: 'desktop',
  userId: null, nodeId: 'node-a', sourceIp: '192.0.2.7', startedAt: T0, endedAt: null, bytesToClient: 0, bytesToBackend: 0,
  closeCode: null, closeReason: null, ...over,
});

const event = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  at: T0, requestId: randomUUID(), actorUserId: hex32(), actorName: 'alice', actorAk: 'AKEXAMPLE', action: 'console.create',
  resourceKind: 'cloudserver', resourceId: randomUUID(), projectId: hex32(), sourceIp: '198.51.100.1', userAgent: 'sdk/1.0',
  result: 'success', code: null, detail: null, domainId: null, ...over,
});

/**
 * The contract. `open` returns a new, independent Store on the same database each call (a second
 * node); `redeemNodes` is how many of them the concurrent-redeem test spreads its calls over.
 */
function contract(name: string, open: () => Promise<Store>, opts: { dialect: Store['dialect']; redeemNodes: 1 | 2 }): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let t: Tenant;
    before(async () => { store = await open(); t = await tenant(store); });
    after(async () => { await store?.close(); });

    it('names its dialect and answers ping()', async () => {
      assert.equal(store.dialect, opts.dialect);
      await store.ping();
    });

    describe('identity', () => {
      it('upsertDomain inserts then renames; getDomain and findDomainByName read it; unknown is undefined', async () => {
        const d = { id: hex32(), name: `d-${hex32()}`, createdAt: T0, operator: false };
        await store.identity.upsertDomain(d);
        assert.deepEqual(await store.identity.getDomain(d.id), d);
        assert.deepEqual(await store.identity.findDomainByName(d.name), d);
        const renamed = `r-${hex32()}`;
        await store.identity.upsertDomain({ ...d, name: renamed, createdAt: T0 + 99 });
        assert.deepEqual(await store.identity.getDomain(d.id), { ...d, name: renamed }, 'rename keeps createdAt');
        assert.equal(await store.identity.findDomainByName(d.name), undefined);
        assert.equal(await store.identity.getDomain(hex32()), undefined);
      });

      it('security #1: the operator flag is written on insert only; a rename keeps it; adoption leaves recorded flags alone', async () => {
        const op = { id: hex32(), name: `op-${hex32()}`, createdAt: T0, operator: true };
        const plain = { id: hex32(), name: `pl-${hex32()}`, createdAt: T0, operator: false };
        await store.identity.upsertDomain(op);
        await store.identity.upsertDomain(plain);
        assert.equal((await store.identity.getDomain(op.id))?.operator, true);
        await store.identity.upsertDomain({ ...op, name: `op2-${hex32()}`, operator: false });
        await store.identity.upsertDomain({ ...plain, operator: true });
        assert.equal((await store.identity.getDomain(op.id))?.operator, true, 'a rename keeps the flag');
        assert.equal((await store.identity.findDomainByName(plain.name))?.operator, false, 'an upsert of an existing domain never grants it');
        assert.deepEqual(await store.identity.adoptOperatorDomains([plain.name]), [], 'domains with a recorded flag are not adopted by name');
        assert.equal((await store.identity.getDomain(plain.id))?.operator, false);
        assert.equal((await store.identity.getDomain(op.id))?.operator, true);
      });

      it('refuses a second domain with the same name', async () => {
        await assert.rejects(store.identity.upsertDomain({ id: hex32(), name: t.domain.name, createdAt: T0, operator: false }));
      });

      it('projects: upsert, get, findProjectByName scoped to the domain; (domain, name) is unique; the domain must exist', async () => {
        const p = { id: hex32(), domainId: t.domain.id, name: `p-${hex32()}`, createdAt: T0 + 5 };
        await store.identity.upsertProject(p);
        assert.deepEqual(await store.identity.getProject(p.id), p);
        assert.deepEqual(await store.identity.findProjectByName(t.domain.id, p.name), p);
        const other = await tenant(store);
        assert.equal(await store.identity.findProjectByName(other.domain.id, p.name), undefined);
        await store.identity.upsertProject({ ...p, name: 'renamed' });
        assert.equal((await store.identity.getProject(p.id))?.name, 'renamed');
        await assert.rejects(store.identity.upsertProject({ id: hex32(), domainId: t.domain.id, name: 'renamed', createdAt: T0 }));
        await assert.rejects(store.identity.upsertProject({ id: hex32(), domainId: hex32(), name: 'orphan', createdAt: T0 }));
        assert.equal(await store.identity.getProject(hex32()), undefined);
      });

      it('users: booleans and nullable expiry round-trip; upsert updates fields but keeps createdAt; names unique per domain', async () => {
        const u: UserRecord = {
          id: hex32(), domainId: t.domain.id, name: `u-${hex32()}`, passwordHash: 'scrypt$1', domainAdmin: true, disabled: false,
          passwordExpiresAt: T0 + BIG, createdAt: T0,
        };
        await store.identity.upsertUser(u);
        assert.deepEqual(await store.identity.getUser(u.id), u);
        assert.deepEqual(await store.identity.findUserByName(t.domain.id, u.name), u);
        const changed = { ...u, name: `v-${hex32()}`, passwordHash: 'scrypt$2', domainAdmin: false, disabled: true, passwordExpiresAt: null, createdAt: T0 + 1 };
        await store.identity.upsertUser(changed);
        assert.deepEqual(await store.identity.getUser(u.id), { ...changed, createdAt: T0 });
        assert.equal(await store.identity.findUserByName(t.domain.id, u.name), undefined);
        const other = await tenant(store);
        assert.equal(await store.identity.findUserByName(other.domain.id, changed.name), undefined);
        await assert.rejects(store.identity.upsertUser({ ...u, id: hex32(), name: changed.name }), 'same name in the same domain');
        await store.identity.upsertUser({ ...u, id: hex32(), domainId: other.domain.id, name: changed.name });
        assert.equal(await store.identity.getUser(hex32()), undefined);
      });

      it('setRole inserts and replaces one role per (user, project); rolesOf lists them', async () => {
        const p2 = { id: hex32(), domainId: t.domain.id, name: `p-${hex32()}`, createdAt: T0 };
        await store.identity.upsertProject(p2);
        const u = { ...t.user, id: hex32(), name: `u-${hex32()}` };
        await store.identity.upsertUser(u);
        assert.deepEqual(await store.identity.rolesOf(u.id), []);
        await store.identity.setRole({ userId: u.id, projectId: t.project.id, role: 'viewer' });
        await store.identity.setRole({ userId: u.id, projectId: p2.id, role: 'operator' });
        await store.identity.setRole({ userId: u.id, projectId: t.project.id, role: 'admin' });
        const roles = (await store.identity.rolesOf(u.id)).sort((a, b) => a.projectId.localeCompare(b.projectId));
        assert.deepEqual(roles, [{ userId: u.id, projectId: t.project.id, role: 'admin' }, { userId: u.id, projectId: p2.id, role: 'operator' }]
          .sort((a, b) => a.projectId.localeCompare(b.projectId)));
      });

      it('IAM tokens: insert/get round-trip (methods list, null project); deleteExpiredIamTokens removes only those expired before now', async () => {
        const base = { userId: t.user.id, domainId: t.domain.id, issuedAt: T0 };
        const scoped = { ...base, tokenHash: randomBytes(32).toString('hex'), projectId: t.project.id, methods: ['password'], expiresAt: T0 + 1000 };
        const domainWide = { ...base, tokenHash: randomBytes(32).toString('hex'), projectId: null, methods: ['password', 'token'], expiresAt: T0 + 2000 };
        await store.identity.insertIamToken(scoped);
        await store.identity.insertIamToken(domainWide);
        assert.deepEqual(await store.identity.getIamToken(scoped.tokenHash), scoped);
        assert.deepEqual(await store.identity.getIamToken(domainWide.tokenHash), domainWide);
        await assert.rejects(store.identity.insertIamToken(scoped), 'token hash is the key');
        await assert.rejects(store.identity.insertIamToken({ ...scoped, tokenHash: randomBytes(32).toString('hex'), userId: hex32() }), 'user must exist');
        assert.ok(await store.identity.deleteExpiredIamTokens(T0 + 1000) >= 0);
        assert.ok(await store.identity.getIamToken(scoped.tokenHash), 'expiresAt == now is not yet expired');
        assert.ok(await store.identity.deleteExpiredIamTokens(T0 + 1001) >= 1);
        assert.equal(await store.identity.getIamToken(scoped.tokenHash), undefined);
        assert.deepEqual(await store.identity.getIamToken(domainWide.tokenHash), domainWide);
      });

      it('security #13: deleteIamTokensOfUser deletes every IAM token of that user only', async () => {
        const other = { ...t.user, id: hex32(), name: `u-${hex32()}` };
        await store.identity.upsertUser(other);
        const tok = (userId: string) => ({ tokenHash: randomBytes(32).toString('hex'), userId, domainId: t.domain.id, projectId: null, methods: ['password'], issuedAt: T0, expiresAt: T0 + 1000 });
        const mine = [tok(other.id), tok(other.id)];
        const theirs = tok(t.user.id);
        for (const x of [...mine, theirs]) await store.identity.insertIamToken(x);
        assert.equal(await store.identity.deleteIamTokensOfUser(other.id), 2);
        for (const x of mine) assert.equal(await store.identity.getIamToken(x.tokenHash), undefined);
        assert.deepEqual(await store.identity.getIamToken(theirs.tokenHash), theirs);
        assert.equal(await store.identity.deleteIamTokensOfUser(other.id), 0);
      });

      it('security #6: purgeIamTokens deletes at most `limit` tokens expired before the cut-off, oldest first', async () => {
        // Expiry times far before every other test's rows, so the cut-offs touch only these.
        const mk = (expiresAt: number) => ({ tokenHash: randomBytes(32).toString('hex'), userId: t.user.id, domainId: t.domain.id, projectId: null, methods: ['password'], issuedAt: 1, expiresAt });
        const rows = [mk(1_001), mk(1_002), mk(1_003), mk(1_010)];
        for (const r of rows) await store.identity.insertIamToken(r);
        assert.equal(await store.identity.purgeIamTokens(1_010, 2), 2, 'a batch is bounded');
        assert.equal(await store.identity.getIamToken(rows[0]!.tokenHash), undefined, 'oldest first');
        assert.equal(await store.identity.getIamToken(rows[1]!.tokenHash), undefined);
        assert.ok(await store.identity.getIamToken(rows[2]!.tokenHash));
        assert.equal(await store.identity.purgeIamTokens(1_010, 100), 1);
        assert.ok(await store.identity.getIamToken(rows[3]!.tokenHash), 'expiring at the cut-off is kept');
        assert.equal(await store.identity.purgeIamTokens(1_010, 100), 0);
      });
    });

    describe('inventory', () => {
      it('upsertResource creates at generation 1; get by (project, kind, id) and by id; wrong project or kind is undefined', async () => {
        const r = resource(t.project.id);
        const res = await store.inventory.upsertResource(r, T0 + 10);
        const expected: ResourceRecord = { ...r, endpointGeneration: 1, createdAt: T0 + 10, updatedAt: T0 + 10 };
        assert.deepEqual(res, { record: expected, endpointChanged: false, created: true });
        assert.deepEqual(await store.inventory.getResource(t.project.id, 'cloudserver', r.id), expected);
        assert.deepEqual(await store.inventory.getResourceById(r.id), expected);
        assert.equal(await store.inventory.getResource(t.project.id, 'desktop', r.id), undefined);
        assert.equal(await store.inventory.getResource(hex32(), 'cloudserver', r.id), undefined);
        assert.equal(await store.inventory.getResourceById(randomUUID()), undefined);
      });

      it('a resource without an endpoint round-trips as null', async () => {
        const r = resource(t.project.id, { endpoint: null, kind: 'physicalserver' });
        const { record } = await store.inventory.upsertResource(r, T0);
        assert.equal(record.endpoint, null);
        assert.deepEqual(await store.inventory.getResourceById(r.id), record);
      });

      it('upsertResource keeps the generation for non-endpoint changes and bumps it on every endpoint change', async () => {
        const r = resource(t.project.id);
        await store.inventory.upsertResource(r, T0);
        const same = await store.inventory.upsertResource({ ...r, name: 'renamed', status: 'SHUTOFF', attributes: { x: 1 } }, T0 + 1);
        assert.deepEqual([same.created, same.endpointChanged, same.record.endpointGeneration], [false, false, 1]);
        assert.deepEqual([same.record.name, same.record.status, same.record.attributes], ['renamed', 'SHUTOFF', { x: 1 }]);
        assert.deepEqual([same.record.createdAt, same.record.updatedAt], [T0, T0 + 1]);
        const changes: (ConsoleEndpoint | null)[] = [
          endpoint({ host: '10.0.0.6' }), endpoint({ host: '10.0.0.6', port: 5902 }), endpoint({ host: '10.0.0.6', port: 5902, security: 'vencrypt' }),
          endpoint({ host: '10.0.0.6', port: 5902, security: 'vencrypt', passwordSealed: null }),
          endpoint({ host: '10.0.0.6', port: 5902, security: 'vencrypt', passwordSealed: null, zone: null }), null, endpoint(),
        ];
        let generation = 1;
        for (const [i, ep] of changes.entries()) {
          const res = await store.inventory.upsertResource({ ...r, endpoint: ep }, T0 + 10 + i);
          generation += 1;
          assert.equal(res.endpointChanged, true, `change ${i}`);
          assert.equal(res.record.endpointGeneration, generation, `change ${i}`);
          assert.deepEqual(res.record.endpoint, ep);
          assert.equal(res.record.createdAt, T0);
        }
        const again = await store.inventory.upsertResource({ ...r, endpoint: endpoint() }, T0 + 50);
        assert.deepEqual([again.endpointChanged, again.record.endpointGeneration], [false, generation]);
        assert.deepEqual(await store.inventory.getResourceById(r.id), again.record);
      });

      it('upsertResource refuses to move an id to another project or kind', async () => {
        const r = resource(t.project.id);
        await store.inventory.upsertResource(r, T0);
        const other = await tenant(store);
        await assert.rejects(store.inventory.upsertResource({ ...r, projectId: other.project.id }, T0 + 1));
        await assert.rejects(store.inventory.upsertResource({ ...r, kind: 'desktop' }, T0 + 1));
        assert.equal((await store.inventory.getResourceById(r.id))?.projectId, t.project.id);
      });

      it('listResources filters by project and kind, oldest first', async () => {
        const mine = await tenant(store);
        const a = resource(mine.project.id, { kind: 'desktop', name: 'a' });
        const b = resource(mine.project.id, { kind: 'cloudserver', name: 'b' });
        const c = resource(mine.project.id, { kind: 'desktop', name: 'c' });
        await store.inventory.upsertResource(c, T0 + 3);
        await store.inventory.upsertResource(a, T0 + 1);
        await store.inventory.upsertResource(b, T0 + 2);
        assert.deepEqual((await store.inventory.listResources({ projectId: mine.project.id })).map((x) => x.name), ['a', 'b', 'c']);
        assert.deepEqual((await store.inventory.listResources({ projectId: mine.project.id, kind: 'desktop' })).map((x) => x.name), ['a', 'c']);
        const allDesktops = await store.inventory.listResources({ kind: 'desktop' });
        assert.ok(allDesktops.every((x) => x.kind === 'desktop'));
        assert.deepEqual(allDesktops.filter((x) => x.projectId === mine.project.id).map((x) => x.id), [a.id, c.id]);
        const all = await store.inventory.listResources({});
        assert.deepEqual(all.filter((x) => x.projectId === mine.project.id).map((x) => x.id), [a.id, b.id, c.id]);
      });

      it('deleteResource reports whether a resource went', async () => {
        const r = resource(t.project.id);
        await store.inventory.upsertResource(r, T0);
        assert.equal(await store.inventory.deleteResource(r.id), true);
        assert.equal(await store.inventory.getResourceById(r.id), undefined);
        assert.equal(await store.inventory.deleteResource(r.id), false);
      });
    });

    describe('console tokens', () => {
      it('insert/get round-trip every field; unknown hash is undefined; the hash is unique', async () => {
        const tk = token(t.project.id, randomUUID(), { userId: t.user.id, viewOnly: true, purpose: 'assist-viewer', resourceKind: 'desktop', endpointGeneration: 3, expiresAt: T0 + BIG });
        await store.consoleTokens.insert(tk);
        assert.deepEqual(await store.consoleTokens.get(tk.tokenHash), tk);
        assert.equal(await store.consoleTokens.get(randomBytes(32).toString('hex')), undefined);
        await assert.rejects(store.consoleTokens.insert(tk));
      });

      it('redeem: the first call gets the record with redeemedAt, later calls get undefined', async () => {
        const tk = token(t.project.id, randomUUID());
        await store.consoleTokens.insert(tk);
        assert.deepEqual(await store.consoleTokens.redeem(tk.tokenHash, T0 + 5), { ...tk, redeemedAt: T0 + 5 });
        assert.equal(await store.consoleTokens.redeem(tk.tokenHash, T0 + 6), undefined);
        assert.equal((await store.consoleTokens.get(tk.tokenHash))?.redeemedAt, T0 + 5);
        assert.equal(await store.consoleTokens.redeem(randomBytes(32).toString('hex'), T0), undefined);
      });

      it('redeem after expiry fails (expiresAt itself is already too late) and leaves the token unredeemed', async () => {
        const tk = token(t.project.id, randomUUID(), { expiresAt: T0 + 600_000 });
        await store.consoleTokens.insert(tk);
        assert.equal(await store.consoleTokens.redeem(tk.tokenHash, T0 + 600_000), undefined);
        assert.equal(await store.consoleTokens.redeem(tk.tokenHash, T0 + 600_001), undefined);
        assert.equal((await store.consoleTokens.get(tk.tokenHash))?.redeemedAt, null);
        assert.ok(await store.consoleTokens.redeem(tk.tokenHash, T0 + 599_999), 'one ms before expiry it still redeems');
      });

      it('revokeForResource revokes the unredeemed, unrevoked tokens of that resource only; a revoked token does not redeem', async () => {
        const rid = randomUUID();
        const live1 = token(t.project.id, rid);
        const live2 = token(t.project.id, rid);
        const used = token(t.project.id, rid);
        const earlier = token(t.project.id, rid, { revokedAt: T0 + 1 });
        const otherResource = token(t.project.id, randomUUID());
        for (const x of [live1, live2, used, earlier, otherResource]) await store.consoleTokens.insert(x);
        assert.ok(await store.consoleTokens.redeem(used.tokenHash, T0 + 2));
        assert.equal(await store.consoleTokens.revokeForResource(rid, T0 + 3), 2);
        assert.equal((await store.consoleTokens.get(live1.tokenHash))?.revokedAt, T0 + 3);
        assert.equal((await store.consoleTokens.get(earlier.tokenHash))?.revokedAt, T0 + 1, 'first revocation time kept');
        assert.equal((await store.consoleTokens.get(used.tokenHash))?.revokedAt, null);
        assert.equal((await store.consoleTokens.get(otherResource.tokenHash))?.revokedAt, null);
        assert.equal(await store.consoleTokens.redeem(live1.tokenHash, T0 + 4), undefined);
        assert.equal(await store.consoleTokens.redeem(earlier.tokenHash, T0 + 4), undefined);
        assert.equal(await store.consoleTokens.revokeForResource(rid, T0 + 5), 0);
        assert.ok(await store.consoleTokens.redeem(otherResource.tokenHash, T0 + 4));
      });

      it('security #4: revokeForUser revokes the unredeemed, unrevoked tokens the user minted, except in the projects kept', async () => {
        const uid = hex32();
        const other = hex32();
        const inKept = token(other, randomUUID(), { userId: uid });
        const live1 = token(t.project.id, randomUUID(), { userId: uid });
        const used = token(t.project.id, randomUUID(), { userId: uid });
        const someoneElse = token(t.project.id, randomUUID(), { userId: hex32() });
        const helper = token(t.project.id, randomUUID());
        for (const x of [inKept, live1, used, someoneElse, helper]) await store.consoleTokens.insert(x);
        assert.ok(await store.consoleTokens.redeem(used.tokenHash, T0 + 1));
        assert.equal(await store.consoleTokens.revokeForUser(uid, T0 + 2, [other]), 1);
        assert.equal((await store.consoleTokens.get(live1.tokenHash))?.revokedAt, T0 + 2);
        for (const x of [inKept, used, someoneElse, helper]) assert.equal((await store.consoleTokens.get(x.tokenHash))?.revokedAt, null);
        assert.equal(await store.consoleTokens.revokeForUser(uid, T0 + 3), 1, 'no project kept: the rest goes');
        assert.equal((await store.consoleTokens.get(inKept.tokenHash))?.revokedAt, T0 + 3);
        assert.equal(await store.consoleTokens.redeem(inKept.tokenHash, T0 + 4), undefined);
      });

      it('security #6: purgeSpent deletes at most `limit` tokens expired, redeemed or revoked before the cut-off', async () => {
        const rid = randomUUID();
        // Times far before every other test's rows, so the cut-offs touch only these.
        const expired = token(t.project.id, rid, { createdAt: 1_000, expiresAt: 1_005 });
        const redeemed = token(t.project.id, rid, { createdAt: 1_000, expiresAt: T0 + BIG, redeemedAt: 1_006 });
        const revoked = token(t.project.id, rid, { createdAt: 1_000, expiresAt: T0 + BIG + 1, revokedAt: 1_007 });
        const outstanding = token(t.project.id, rid, { createdAt: 1_000, expiresAt: T0 + BIG });
        const late = token(t.project.id, rid, { createdAt: 1_000, expiresAt: T0 + BIG, redeemedAt: 1_020 });
        for (const x of [expired, redeemed, revoked, outstanding, late]) await store.consoleTokens.insert(x);
        assert.equal(await store.consoleTokens.purgeSpent(1_010, 1), 1, 'a batch is bounded');
        assert.equal(await store.consoleTokens.get(expired.tokenHash), undefined, 'oldest expiry first');
        assert.equal(await store.consoleTokens.purgeSpent(1_010, 100), 2);
        assert.equal(await store.consoleTokens.get(redeemed.tokenHash), undefined);
        assert.equal(await store.consoleTokens.get(revoked.tokenHash), undefined);
        assert.ok(await store.consoleTokens.get(outstanding.tokenHash), 'an outstanding token is kept');
        assert.ok(await store.consoleTokens.get(late.tokenHash), 'redeemed after the cut-off: kept');
        assert.equal(await store.consoleTokens.purgeSpent(1_010, 100), 0);
      });

      it('deleteExpired removes the tokens that expired before the cut-off', async () => {
        const old = token(t.project.id, randomUUID(), { expiresAt: T0 + 10 });
        const edge = token(t.project.id, randomUUID(), { expiresAt: T0 + 20 });
        const fresh = token(t.project.id, randomUUID(), { expiresAt: T0 + BIG });
        for (const x of [old, edge, fresh]) await store.consoleTokens.insert(x);
        assert.ok(await store.consoleTokens.deleteExpired(T0 + 20) >= 1);
        assert.equal(await store.consoleTokens.get(old.tokenHash), undefined);
        assert.ok(await store.consoleTokens.get(edge.tokenHash));
        assert.ok(await store.consoleTokens.get(fresh.tokenHash));
      });

      it('group commit: token inserts and audit appends issued together all commit; a duplicate fails only its own caller', async () => {
        const rid = randomUUID();
        const tokens = Array.from({ length: 20 }, () => token(t.project.id, rid));
        const events = Array.from({ length: 5 }, () => event({ resourceId: rid }));
        const dup = { ...tokens[3]!, resourceId: randomUUID() };
        const results = await Promise.allSettled([
          ...tokens.map((x) => store.consoleTokens.insert(x)),
          store.consoleTokens.insert(dup),
          ...events.map((e) => store.audit.append(e)),
        ]);
        assert.deepEqual(results.map((r) => r.status), [...tokens.map(() => 'fulfilled'), 'rejected', ...events.map(() => 'fulfilled')]);
        for (const x of tokens) assert.deepEqual(await store.consoleTokens.get(x.tokenHash), x);
        assert.equal(await store.audit.count({ resourceId: rid }), 5);
      });

      it('inside a transaction token inserts and audit appends go with it: rolled back when it throws', async () => {
        const tk = token(t.project.id, randomUUID());
        const ev = event({ resourceId: tk.resourceId });
        await assert.rejects(store.transaction(async (tx) => {
          await tx.consoleTokens.insert(tk);
          await tx.audit.append(ev);
          assert.ok(await tx.consoleTokens.get(tk.tokenHash), 'visible inside the transaction');
          throw new Error('abort');
        }), /abort/);
        assert.equal(await store.consoleTokens.get(tk.tokenHash), undefined);
        assert.equal(await store.audit.count({ resourceId: tk.resourceId }), 0);
      });

      it(`500 concurrent redeem() of one token over ${opts.redeemNodes} store(s): exactly one succeeds`, async () => {
        const nodes = [store];
        if (opts.redeemNodes === 2) nodes.push(await open());
        try {
          for (let round = 0; round < 3; round++) {
            const tk = token(t.project.id, randomUUID());
            await store.consoleTokens.insert(tk);
            const results = await Promise.all(Array.from({ length: 500 }, (_, i) => nodes[i % nodes.length]!.consoleTokens.redeem(tk.tokenHash, T0 + 1 + i)));
            const winners = results.filter((r) => r !== undefined);
            assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
            assert.equal((await store.consoleTokens.get(tk.tokenHash))?.redeemedAt, winners[0]?.redeemedAt);
          }
        } finally {
          if (nodes[1]) await nodes[1].close();
        }
      });
    });

    describe('sessions', () => {
      it('start/get round-trip; byte counts beyond 2^32 come back as numbers', async () => {
        const s = session({ userId: t.user.id, bytesToClient: BIG, bytesToBackend: 2 ** 33 });
        await store.sessions.start(s);
        assert.deepEqual(await store.sessions.get(s.id), s);
        assert.equal(typeof (await store.sessions.get(s.id))?.bytesToClient, 'number');
        assert.equal(await store.sessions.get(randomUUID()), undefined);
        await assert.rejects(store.sessions.start(s), 'id is the key');
      });

      it('end records the outcome once; a second end does not overwrite it', async () => {
        const s = session();
        await store.sessions.start(s);
        await store.sessions.end(s.id, { endedAt: T0 + 100, bytesToClient: BIG, bytesToBackend: 12, closeCode: 4001, closeReason: 'idle' });
        await store.sessions.end(s.id, { endedAt: T0 + 200, bytesToClient: 1, bytesToBackend: 1, closeCode: 1000, closeReason: 'late' });
        assert.deepEqual(await store.sessions.get(s.id), { ...s, endedAt: T0 + 100, bytesToClient: BIG, bytesToBackend: 12, closeCode: 4001, closeReason: 'idle' });
      });

      it('list filters by resource and open/closed, newest first, up to limit', async () => {
        const rid = randomUUID();
        const s1 = session({ resourceId: rid, startedAt: T0 + 1 });
        const s2 = session({ resourceId: rid, startedAt: T0 + 2 });
        const s3 = session({ resourceId: rid, startedAt: T0 + 3 });
        const elsewhere = session({ startedAt: T0 + 4 });
        for (const s of [s2, s3, s1, elsewhere]) await store.sessions.start(s);
        await store.sessions.end(s2.id, { endedAt: T0 + 10, bytesToClient: 0, bytesToBackend: 0, closeCode: 1000, closeReason: 'bye' });
        const ids = (xs: ConsoleSessionRecord[]) => xs.map((x) => x.id);
        assert.deepEqual(ids(await store.sessions.list({ resourceId: rid })), [s3.id, s2.id, s1.id]);
        assert.deepEqual(ids(await store.sessions.list({ resourceId: rid, open: true })), [s3.id, s1.id]);
        assert.deepEqual(ids(await store.sessions.list({ resourceId: rid, open: false })), [s2.id]);
        assert.deepEqual(ids(await store.sessions.list({ resourceId: rid, limit: 2 })), [s3.id, s2.id]);
        const open = await store.sessions.list({ open: true, limit: 1000 });
        assert.ok(open.every((x) => x.endedAt === null));
        assert.ok(ids(open).includes(elsewhere.id));
      });

      it('closeAllOfNode ends only that node\'s open sessions, with code 1001 and the reason', async () => {
        const node = `node-${hex32()}`;
        const a = session({ nodeId: node });
        const b = session({ nodeId: node });
        const done = session({ nodeId: node });
        const other = session({ nodeId: `node-${hex32()}` });
        for (const s of [a, b, done, other]) await store.sessions.start(s);
        await store.sessions.end(done.id, { endedAt: T0 + 5, bytesToClient: 1, bytesToBackend: 2, closeCode: 1000, closeReason: 'normal' });
        assert.equal(await store.sessions.closeAllOfNode(node, T0 + 50, 'node restarted'), 2);
        for (const s of [a, b]) {
          const got = await store.sessions.get(s.id);
          assert.deepEqual([got?.endedAt, got?.closeCode, got?.closeReason], [T0 + 50, 1001, 'node restarted']);
        }
        assert.equal((await store.sessions.get(done.id))?.closeReason, 'normal');
        assert.equal((await store.sessions.get(other.id))?.endedAt, null);
        assert.equal(await store.sessions.closeAllOfNode(node, T0 + 60, 'again'), 0);
      });
    });

    describe('audit', () => {
      it('security #6: an aggregated event keeps its chosen id; setCount updates its count; list shows count only when not 1', async () => {
        const ev = event({ id: randomUUID(), result: 'failure', code: 'APIGW.0301', userAgent: null, projectId: null });
        await store.audit.append(ev);
        const { id, ...shown } = ev;
        assert.deepEqual(await store.audit.list({ resourceId: ev.resourceId! }), [shown]);
        await store.audit.setCount(id!, 37);
        assert.deepEqual(await store.audit.list({ resourceId: ev.resourceId! }), [{ ...shown, count: 37 }]);
        const counted = event({ count: 5 });
        await store.audit.append(counted);
        assert.equal((await store.audit.list({ resourceId: counted.resourceId! }))[0]?.count, 5);
      });

      it('security #6: purgeBefore deletes at most `limit` events older than the cut-off, oldest first', async () => {
        const rid = randomUUID();
        // Times far before every other test's rows, so the cut-offs touch only these.
        const evs = [1_001, 1_002, 1_003, 1_010].map((at) => event({ at, resourceId: rid }));
        for (const e of evs) await store.audit.append(e);
        assert.equal(await store.audit.purgeBefore(1_010, 2), 2, 'a batch is bounded');
        assert.deepEqual((await store.audit.list({ resourceId: rid })).map((e) => e.at), [1_010, 1_003], 'oldest first');
        assert.equal(await store.audit.purgeBefore(1_010, 100), 1);
        assert.deepEqual((await store.audit.list({ resourceId: rid })).map((e) => e.at), [1_010], 'at the cut-off: kept');
        assert.equal(await store.audit.purgeBefore(1_010, 100), 0);
      });

      it('append/list round-trip every field, nulls included', async () => {
        const full = event({ result: 'failure', code: 'Ecs.0114', detail: 'endpoint unreachable' });
        const sparse = event({
          resourceId: full.resourceId, at: T0 - 1, requestId: null, actorUserId: null, actorName: null, actorAk: null, resourceKind: null,
          projectId: null, sourceIp: null, userAgent: null,
        });
        await store.audit.append(full);
        await store.audit.append(sparse);
        assert.deepEqual(await store.audit.list({ resourceId: full.resourceId! }), [full, sparse]);
      });

      it('list filters: since (inclusive), until (exclusive), action and resourceId; newest first', async () => {
        const rid = randomUUID();
        const at = (n: number) => T0 + BIG + n;
        const evs = [event({ resourceId: rid, at: at(1), action: 'a.one' }), event({ resourceId: rid, at: at(2), action: 'a.two' }),
          event({ resourceId: rid, at: at(3), action: 'a.one' }), event({ resourceId: rid, at: at(4), action: 'a.two' })];
        for (const e of evs) await store.audit.append(e);
        await store.audit.append(event({ at: at(2), action: 'a.one' }));
        const ats = (xs: AuditEvent[]) => xs.map((x) => x.at - T0 - BIG);
        assert.deepEqual(ats(await store.audit.list({ resourceId: rid })), [4, 3, 2, 1]);
        assert.deepEqual(ats(await store.audit.list({ resourceId: rid, since: at(2) })), [4, 3, 2]);
        assert.deepEqual(ats(await store.audit.list({ resourceId: rid, until: at(3) })), [2, 1]);
        assert.deepEqual(ats(await store.audit.list({ resourceId: rid, since: at(2), until: at(4) })), [3, 2]);
        assert.deepEqual(ats(await store.audit.list({ resourceId: rid, action: 'a.one' })), [3, 1]);
        const window = await store.audit.list({ since: at(2), until: at(3) });
        assert.equal(window.length, 2, 'since/until alone span resources');
        assert.ok(window.every((x) => x.at === at(2)));
      });

      it('list pages with limit and offset without gaps or repeats; the default limit is 100', async () => {
        const action = `page.${hex32()}`;
        const evs = Array.from({ length: 105 }, (_, i) => event({ action, at: T0 + i }));
        for (const e of evs) await store.audit.append(e);
        assert.equal((await store.audit.list({ action })).length, 100);
        const seen: number[] = [];
        for (let offset = 0; ; offset += 20) {
          const page = await store.audit.list({ action, limit: 20, offset });
          seen.push(...page.map((x) => x.at - T0));
          if (page.length < 20) break;
        }
        assert.deepEqual(seen, Array.from({ length: 105 }, (_, i) => 104 - i));
        assert.deepEqual(await store.audit.list({ action, offset: 105 }), []);
        assert.equal(await store.audit.count({ action }), 105);
        assert.equal(await store.audit.count({ action, limit: 5, offset: 50 }), 105, 'count ignores limit and offset');
        assert.equal(await store.audit.count({ action: `none.${hex32()}` }), 0);
      });

      it('list and count filter by actor (user id, name or AK), result and domain (attributed, or via its projects)', async () => {
        const mine = await tenant(store);
        const rid = randomUUID();
        const uid = hex32();
        const byId = event({ resourceId: rid, at: T0 + 1, actorUserId: uid, actorName: null, actorAk: null, projectId: mine.project.id });
        const byName = event({ resourceId: rid, at: T0 + 2, actorUserId: null, actorName: `n-${uid}`, actorAk: null, result: 'failure', domainId: mine.domain.id });
        const byAk = event({ resourceId: rid, at: T0 + 3, actorUserId: null, actorName: null, actorAk: `AK${uid}`, result: 'failure' });
        for (const e of [byId, byName, byAk]) await store.audit.append(e);
        const ats = (xs: AuditEvent[]) => xs.map((x) => x.at - T0);
        assert.deepEqual(await store.audit.list({ resourceId: rid, actor: uid }), [byId]);
        assert.deepEqual(await store.audit.list({ resourceId: rid, actor: `n-${uid}` }), [byName]);
        assert.deepEqual(await store.audit.list({ resourceId: rid, actor: `AK${uid}` }), [byAk]);
        assert.deepEqual(ats(await store.audit.list({ resourceId: rid, result: 'failure' })), [3, 2]);
        assert.deepEqual(ats(await store.audit.list({ domainId: mine.domain.id })), [2, 1], 'attributed to the domain, or about one of its projects');
        assert.equal(await store.audit.count({ domainId: mine.domain.id }), 2);
        assert.equal(await store.audit.count({ domainId: mine.domain.id, result: 'failure' }), 1);
        assert.equal(await store.audit.count({ resourceId: rid, actor: `AK${uid}` }), 1);
      });
    });

    describe('access keys', () => {
      const ak = (userId: string, domainId: string, over: Partial<AccessKeyRecord> = {}): AccessKeyRecord => ({
        accessKey: `AK${randomBytes(9).toString('hex').toUpperCase()}`, userId, domainId, secretSealed: 'sealed:sk', status: 'active',
        description: '', createdAt: T0, lastUsedAt: null, ...over,
      });

      it('insert/get round-trip; unknown is undefined; the key is unique; the user must exist', async () => {
        const k = ak(t.user.id, t.domain.id, { description: 'ci', lastUsedAt: T0 + BIG });
        await store.accessKeys.insert(k);
        assert.deepEqual(await store.accessKeys.get(k.accessKey), k);
        assert.equal(await store.accessKeys.get('AKNOPE'), undefined);
        await assert.rejects(store.accessKeys.insert(k));
        await assert.rejects(store.accessKeys.insert(ak(hex32(), t.domain.id)));
      });

      it('listByUser and listByDomain, oldest first', async () => {
        const mine = await tenant(store);
        const u2 = { ...mine.user, id: hex32(), name: `u-${hex32()}` };
        await store.identity.upsertUser(u2);
        const k2 = ak(mine.user.id, mine.domain.id, { createdAt: T0 + 2 });
        const k1 = ak(mine.user.id, mine.domain.id, { createdAt: T0 + 1 });
        const k3 = ak(u2.id, mine.domain.id, { createdAt: T0 + 3 });
        for (const k of [k2, k3, k1]) await store.accessKeys.insert(k);
        assert.deepEqual(await store.accessKeys.listByUser(mine.user.id), [k1, k2]);
        assert.deepEqual(await store.accessKeys.listByDomain(mine.domain.id), [k1, k2, k3]);
        assert.deepEqual(await store.accessKeys.listByUser(hex32()), []);
      });

      it('update patches status and description and returns the record; unknown key is undefined; touch records last use', async () => {
        const k = ak(t.user.id, t.domain.id);
        await store.accessKeys.insert(k);
        assert.deepEqual(await store.accessKeys.update(k.accessKey, { status: 'inactive' }), { ...k, status: 'inactive' });
        assert.deepEqual(await store.accessKeys.update(k.accessKey, { description: 'rotated' }), { ...k, status: 'inactive', description: 'rotated' });
        assert.deepEqual(await store.accessKeys.update(k.accessKey, {}), { ...k, status: 'inactive', description: 'rotated' });
        assert.equal(await store.accessKeys.update('AKNOPE', { status: 'active' }), undefined);
        await store.accessKeys.touch(k.accessKey, T0 + BIG);
        assert.equal((await store.accessKeys.get(k.accessKey))?.lastUsedAt, T0 + BIG);
      });

      it('lockout state: set, replace, read; a clean state removes it; delete takes the key and its lockout', async () => {
        const k = ak(t.user.id, t.domain.id);
        await store.accessKeys.insert(k);
        assert.equal(await store.accessKeys.getLockout(k.accessKey), undefined);
        await store.accessKeys.setLockout(k.accessKey, { failures: 3, lockedUntil: null }, T0);
        assert.deepEqual(await store.accessKeys.getLockout(k.accessKey), { failures: 3, lockedUntil: null });
        await store.accessKeys.setLockout(k.accessKey, { failures: 5, lockedUntil: T0 + BIG }, T0 + 1);
        assert.deepEqual(await store.accessKeys.getLockout(k.accessKey), { failures: 5, lockedUntil: T0 + BIG });
        await store.accessKeys.setLockout(k.accessKey, { failures: 0, lockedUntil: null }, T0 + 2);
        assert.equal(await store.accessKeys.getLockout(k.accessKey), undefined);
        await store.accessKeys.setLockout(k.accessKey, { failures: 1, lockedUntil: null }, T0 + 3);
        assert.equal(await store.accessKeys.delete(k.accessKey), true);
        assert.equal(await store.accessKeys.get(k.accessKey), undefined);
        assert.equal(await store.accessKeys.getLockout(k.accessKey), undefined);
        assert.equal(await store.accessKeys.delete(k.accessKey), false);
      });

      it(`security #12 (AK/SK): 40 concurrent addLockoutFailure over ${opts.redeemNodes} store(s) count 40; exactly the 6th sets the lock; it is not extended`, async () => {
        const k = ak(t.user.id, t.domain.id);
        await store.accessKeys.insert(k);
        const others = opts.redeemNodes === 2 ? [await open()] : [];
        try {
          const stores = [store, ...others];
          const res = await Promise.all(Array.from({ length: 40 }, (_, i) => stores[i % stores.length]!.accessKeys.addLockoutFailure(k.accessKey, T0 + BIG, 5, 300_000)));
          assert.deepEqual(res.map((r) => r.failures).sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i + 1), 'each failure counted once');
          for (const r of res) assert.equal(r.lockedUntil, r.failures > 5 ? T0 + BIG + 300_000 : null, `after failure ${r.failures}`);
        } finally {
          for (const s of others) await s.close();
        }
        assert.deepEqual(await store.accessKeys.getLockout(k.accessKey), { failures: 40, lockedUntil: T0 + BIG + 300_000 });
        assert.deepEqual(await store.accessKeys.addLockoutFailure(k.accessKey, T0 + BIG + 1000, 5, 300_000), { failures: 41, lockedUntil: T0 + BIG + 300_000 }, 'a running lock is not extended');
      });

      it('security #12 (AK/SK): clearLockout keeps a running lock and removes the rest; an expired lock restarts the count; maxFailures 0 locks at once', async () => {
        const k = ak(t.user.id, t.domain.id);
        await store.accessKeys.insert(k);
        assert.deepEqual(await store.accessKeys.addLockoutFailure(k.accessKey, T0, 1, 1000), { failures: 1, lockedUntil: null });
        await store.accessKeys.clearLockout(k.accessKey, T0);
        assert.equal(await store.accessKeys.getLockout(k.accessKey), undefined);
        await store.accessKeys.addLockoutFailure(k.accessKey, T0, 1, 1000);
        assert.deepEqual(await store.accessKeys.addLockoutFailure(k.accessKey, T0 + 1, 1, 1000), { failures: 2, lockedUntil: T0 + 1001 });
        await store.accessKeys.clearLockout(k.accessKey, T0 + 1000);
        assert.deepEqual(await store.accessKeys.getLockout(k.accessKey), { failures: 2, lockedUntil: T0 + 1001 }, 'a running lock stays');
        assert.deepEqual(await store.accessKeys.addLockoutFailure(k.accessKey, T0 + 1001, 1, 1000), { failures: 1, lockedUntil: null }, 'expired: a fresh count');
        await store.accessKeys.setLockout(k.accessKey, { failures: 7, lockedUntil: T0 + 5 }, T0);
        await store.accessKeys.clearLockout(k.accessKey, T0 + 5);
        assert.equal(await store.accessKeys.getLockout(k.accessKey), undefined, 'an expired lock is cleared');
        assert.deepEqual(await store.accessKeys.addLockoutFailure(k.accessKey, T0 + BIG, 0, 1000), { failures: 1, lockedUntil: T0 + BIG + 1000 });
      });
    });

    // Admin API, prober and key rotation (issue 4).
    describe('directory listing and deletion', () => {
      it('listDomains/listProjects/listUsers by name; deleteProject takes its role bindings; deleteUser its keys, lockouts, tokens and roles', async () => {
        const mine = await tenant(store);
        assert.ok((await store.identity.listDomains()).some((d) => d.id === mine.domain.id));
        const p2 = { id: hex32(), domainId: mine.domain.id, name: 'a-first', createdAt: T0 };
        await store.identity.upsertProject(p2);
        assert.deepEqual(await store.identity.listProjects(mine.domain.id), [p2, mine.project]);
        assert.ok((await store.identity.listProjects()).some((p) => p.id === p2.id));
        const bob: UserRecord = { ...mine.user, id: hex32(), name: 'bob' };
        await store.identity.upsertUser(bob);
        assert.deepEqual((await store.identity.listUsers(mine.domain.id)).map((u) => u.name), ['alice', 'bob']);
        await store.identity.setRole({ userId: bob.id, projectId: mine.project.id, role: 'viewer' });
        await store.identity.setRole({ userId: bob.id, projectId: p2.id, role: 'admin' });
        assert.equal(await store.identity.removeRole(bob.id, mine.project.id), true);
        assert.equal(await store.identity.removeRole(bob.id, mine.project.id), false);
        assert.equal(await store.identity.deleteProject(p2.id), true);
        assert.deepEqual(await store.identity.rolesOf(bob.id), []);
        assert.equal(await store.identity.deleteProject(p2.id), false);
        await store.identity.setRole({ userId: bob.id, projectId: mine.project.id, role: 'viewer' });
        const key: AccessKeyRecord = { accessKey: `AK${randomBytes(9).toString('hex').toUpperCase()}`, userId: bob.id, domainId: mine.domain.id, secretSealed: 's', status: 'active', description: '', createdAt: T0, lastUsedAt: null };
        await store.accessKeys.insert(key);
        await store.accessKeys.setLockout(key.accessKey, { failures: 2, lockedUntil: null }, T0);
        await store.identity.insertIamToken({ tokenHash: hex32() + hex32(), userId: bob.id, projectId: null, domainId: mine.domain.id, methods: ['password'], issuedAt: T0, expiresAt: T0 + BIG });
        assert.equal(await store.identity.deleteUser(bob.id), true);
        assert.equal(await store.identity.getUser(bob.id), undefined);
        assert.equal(await store.accessKeys.get(key.accessKey), undefined);
        assert.equal(await store.accessKeys.getLockout(key.accessKey), undefined);
        assert.equal(await store.identity.deleteUser(bob.id), false);
        const empty = { id: hex32(), name: `e-${hex32()}`, createdAt: T0, operator: false };
        await store.identity.upsertDomain(empty);
        assert.equal(await store.identity.deleteDomain(empty.id), true);
        assert.equal(await store.identity.getDomain(empty.id), undefined);
        await assert.rejects(store.identity.deleteDomain(mine.domain.id), 'a domain with projects and users cannot go');
      });
    });

    describe('inventory for the admin API', () => {
      it('VeNCrypt fields round-trip, appear only when set, and each change bumps the generation', async () => {
        const r = resource(t.project.id, { endpoint: endpoint({ security: 'vencrypt', tlsCa: 'CA-PEM', tlsCert: 'CERT-PEM', tlsKeySealed: 'sealed:key' }) });
        const { record } = await store.inventory.upsertResource(r, T0);
        assert.deepEqual(record.endpoint, r.endpoint);
        const plain = resource(t.project.id);
        assert.deepEqual(Object.keys((await store.inventory.upsertResource(plain, T0)).record.endpoint!).sort(), ['host', 'passwordSealed', 'port', 'security', 'zone']);
        let gen = record.endpointGeneration;
        for (const over of [{ tlsCa: null }, { tlsCert: 'OTHER' }, { tlsKeySealed: 'sealed:key2' }]) {
          const res = await store.inventory.upsertResource({ ...r, endpoint: { ...r.endpoint!, ...over } }, T0 + 1);
          assert.equal(res.endpointChanged, true, JSON.stringify(over));
          assert.equal(res.record.endpointGeneration, ++gen);
        }
      });

      it('listResources limits to projectIds (an empty list matches nothing)', async () => {
        const a = await tenant(store);
        const b = await tenant(store);
        const ra = resource(a.project.id);
        const rb = resource(b.project.id, { kind: 'desktop' });
        for (const r of [ra, rb]) await store.inventory.upsertResource(r, T0);
        assert.deepEqual((await store.inventory.listResources({ projectIds: [a.project.id, b.project.id] })).map((r) => r.id).sort(), [ra.id, rb.id].sort());
        assert.deepEqual((await store.inventory.listResources({ projectIds: [b.project.id], kind: 'cloudserver' })), []);
        assert.deepEqual(await store.inventory.listResources({ projectIds: [] }), []);
      });
    });

    describe('console tokens for the admin API', () => {
      it('listOutstanding: unredeemed, unrevoked, unexpired; by resource, projects or hash prefix, newest first; revoke one', async () => {
        const mine = await tenant(store);
        const rid = randomUUID();
        const fresh = token(mine.project.id, rid, { createdAt: T0 + 2, expiresAt: T0 + BIG });
        const older = token(mine.project.id, rid, { createdAt: T0 + 1, expiresAt: T0 + BIG });
        const expired = token(mine.project.id, rid, { expiresAt: T0 + 5 });
        const used = token(mine.project.id, rid, { redeemedAt: T0, expiresAt: T0 + BIG });
        const revoked = token(mine.project.id, rid, { revokedAt: T0, expiresAt: T0 + BIG });
        const other = token(mine.project.id, randomUUID(), { expiresAt: T0 + BIG });
        for (const x of [fresh, older, expired, used, revoked, other]) await store.consoleTokens.insert(x);
        const now = T0 + 10;
        assert.deepEqual(await store.consoleTokens.listOutstanding({ now, resourceId: rid }), [fresh, older]);
        assert.deepEqual((await store.consoleTokens.listOutstanding({ now, projectIds: [mine.project.id] })).length, 3);
        assert.deepEqual(await store.consoleTokens.listOutstanding({ now, projectIds: [] }), []);
        assert.deepEqual(await store.consoleTokens.listOutstanding({ now, hashPrefix: fresh.tokenHash.slice(0, 12) }), [fresh]);
        assert.deepEqual(await store.consoleTokens.listOutstanding({ now, hashPrefix: '%' }), [], 'no LIKE wildcards from callers');
        assert.equal(await store.consoleTokens.revoke(fresh.tokenHash, now), true);
        assert.equal(await store.consoleTokens.revoke(fresh.tokenHash, now), false);
        assert.equal(await store.consoleTokens.revoke(used.tokenHash, now), false, 'a redeemed token is not revoked');
        assert.deepEqual(await store.consoleTokens.listOutstanding({ now, resourceId: rid }), [older]);
      });
    });

    describe('sessions for the admin API', () => {
      it('list by projects and node; progress updates an open session only; activity counts open ones and the last end', async () => {
        const p = hex32();
        const rid = randomUUID();
        const open1 = session({ projectId: p, resourceId: rid, nodeId: 'n1', startedAt: T0 + 1 });
        const open2 = session({ projectId: p, resourceId: rid, nodeId: 'n2', startedAt: T0 + 2 });
        const done = session({ projectId: p, resourceId: rid, nodeId: 'n1', startedAt: T0, endedAt: T0 + BIG, closeCode: 4006, closeReason: 'killed' });
        for (const x of [open1, open2, done]) await store.sessions.start(x);
        assert.deepEqual((await store.sessions.list({ projectIds: [p], open: true })).map((x) => x.id), [open2.id, open1.id]);
        assert.deepEqual((await store.sessions.list({ projectIds: [p], nodeId: 'n1' })).map((x) => x.id), [open1.id, done.id]);
        assert.deepEqual(await store.sessions.list({ projectIds: [] }), []);
        await store.sessions.progress(open1.id, { bytesToClient: BIG, bytesToBackend: 7 });
        await store.sessions.progress(done.id, { bytesToClient: 1, bytesToBackend: 1 });
        assert.deepEqual([(await store.sessions.get(open1.id))?.bytesToClient, (await store.sessions.get(open1.id))?.bytesToBackend], [BIG, 7]);
        assert.equal((await store.sessions.get(done.id))?.bytesToClient, 0, 'an ended session keeps its final counts');
        const none = randomUUID();
        const act = await store.sessions.activity([rid, none]);
        assert.deepEqual(act.get(rid), { open: 2, lastEndedAt: T0 + BIG });
        assert.equal(act.get(none), undefined);
        assert.equal((await store.sessions.activity([])).size, 0);
      });
    });

    describe('endpoint probes', () => {
      it('record inserts and replaces; get, list (all or some), delete', async () => {
        const id = randomUUID();
        const pr = { resourceId: id, endpointGeneration: 2, reachable: true, failure: null, rfbVersion: '003.008', reason: null, checkedAt: T0 + BIG, changedAt: T0, nodeId: 'n1' };
        await store.probes.record(pr);
        assert.deepEqual(await store.probes.get(id), pr);
        const down = { ...pr, reachable: false, failure: 'refused', rfbVersion: null, checkedAt: T0 + BIG + 1, changedAt: T0 + BIG + 1, nodeId: 'n2' };
        await store.probes.record(down);
        assert.deepEqual(await store.probes.get(id), down);
        const denied = { ...pr, failure: 'auth_failed', reason: 'Authentication failure', checkedAt: T0 + BIG + 2, nodeId: 'n1' };
        await store.probes.record(denied);
        assert.deepEqual(await store.probes.get(id), denied, 'the server\'s reason is kept');
        const id2 = randomUUID();
        await store.probes.record({ ...pr, resourceId: id2 });
        assert.deepEqual((await store.probes.list([id, id2, randomUUID()])).map((x) => x.resourceId).sort(), [id, id2].sort());
        assert.ok((await store.probes.list()).length >= 2);
        assert.deepEqual(await store.probes.list([]), []);
        await store.probes.delete(id);
        assert.equal(await store.probes.get(id), undefined);
      });
    });

    describe('sealed values and transactions', () => {
      it('sealed.list finds every sealed secret; replace is a compare-and-swap', async () => {
        const mine = await tenant(store);
        const r = resource(mine.project.id, { endpoint: endpoint({ passwordSealed: 'v1:old:pw', security: 'vencrypt', tlsKeySealed: 'v1:old:key' }) });
        await store.inventory.upsertResource(r, T0);
        const k: AccessKeyRecord = { accessKey: `AK${randomBytes(9).toString('hex').toUpperCase()}`, userId: mine.user.id, domainId: mine.domain.id, secretSealed: 'v1:old:sk', status: 'active', description: '', createdAt: T0, lastUsedAt: null };
        await store.accessKeys.insert(k);
        const mineOnly = (await store.sealed.list()).filter((v) => v.id === r.id || v.id === k.accessKey);
        assert.deepEqual(mineOnly, [
          { kind: 'endpoint_password', id: r.id, sealed: 'v1:old:pw' }, { kind: 'endpoint_tls_key', id: r.id, sealed: 'v1:old:key' },
          { kind: 'access_key_secret', id: k.accessKey, sealed: 'v1:old:sk' },
        ]);
        assert.equal(await store.sealed.replace('endpoint_password', r.id, 'v1:old:pw', 'v1:new:pw'), true);
        assert.equal(await store.sealed.replace('endpoint_password', r.id, 'v1:old:pw', 'v1:other:pw'), false, 'a concurrent change wins');
        assert.equal(await store.sealed.replace('endpoint_tls_key', r.id, 'v1:old:key', 'v1:new:key'), true);
        assert.equal(await store.sealed.replace('access_key_secret', k.accessKey, 'v1:old:sk', 'v1:new:sk'), true);
        const after = (await store.inventory.getResourceById(r.id))!;
        assert.deepEqual([after.endpoint?.passwordSealed, after.endpoint?.tlsKeySealed, after.endpointGeneration], ['v1:new:pw', 'v1:new:key', 1], 're-sealing is no endpoint change');
        assert.equal((await store.accessKeys.get(k.accessKey))?.secretSealed, 'v1:new:sk');
      });

      it('transaction commits every write together, or none when it throws', async () => {
        const d = { id: hex32(), name: `tx-${hex32()}`, createdAt: T0, operator: false };
        const p = { id: hex32(), domainId: d.id, name: 'p', createdAt: T0 };
        await assert.rejects(store.transaction(async (tx) => {
          await tx.identity.upsertDomain(d);
          await tx.identity.upsertProject(p);
          await tx.inventory.upsertResource(resource(p.id), T0);
          throw new Error('boom');
        }), /boom/);
        assert.equal(await store.identity.getDomain(d.id), undefined);
        assert.equal(await store.identity.getProject(p.id), undefined);
        const out = await store.transaction(async (tx) => {
          await tx.identity.upsertDomain(d);
          await tx.identity.upsertProject(p);
          await tx.identity.deleteProject(p.id);
          return 'ok';
        });
        assert.equal(out, 'ok');
        assert.deepEqual(await store.identity.getDomain(d.id), d);
        assert.equal(await store.identity.getProject(p.id), undefined);
      });
    });

    // Remote assistance (issue 6).
    describe('remote assistance', () => {
      const spaceRec = (desktopId: string, over: Partial<ShareSpaceRecord> = {}): ShareSpaceRecord => ({
        id: hex32(), projectId: t.project.id, desktopId, name: 'Remote assistance for ws-1', invitationCode: randomBytes(4).toString('hex').toUpperCase(),
        passwordSealed: 'v1:k:pw', status: 'WAIT_USER_CONFIRM', initiatorType: 'ADMIN_INITIATE', createdByUserId: t.user.id, createdByName: 'alice',
        createdAt: T0 + BIG, expiresAt: T0 + BIG + 3_600_000, acceptedAt: null, openedAt: null, closedAt: null, closeReason: null, failedReason: null, ...over,
      });
      const helperRec = (spaceId: string, over: Partial<AssistHelperRecord> = {}): AssistHelperRecord => ({
        id: randomUUID(), spaceId, name: 'Hank', sourceIp: '192.0.2.9', tokenHash: randomBytes(32).toString('hex'), sessionId: null, control: false,
        state: 'joining', joinedAt: T0 + BIG, connectedAt: null, leftAt: null, ...over,
      });

      it('one active space per desktop; transitions are compare-and-set; closing frees the desktop; the last closed one is current', async () => {
        const desktop = randomUUID();
        const a = spaceRec(desktop);
        assert.equal(await store.assistance.insertSpace(a), true);
        assert.equal(await store.assistance.insertSpace(spaceRec(desktop)), false, 'a second active space');
        assert.deepEqual(await store.assistance.getSpace(a.id), a);
        assert.deepEqual(await store.assistance.currentForDesktop(desktop), a);
        assert.deepEqual(await store.assistance.findActiveByCode(a.invitationCode), a);
        assert.equal(await store.assistance.transition(a.id, ['OPEN'], { status: 'CLOSE' }), undefined, 'wrong state: nothing changes');
        const accepted = await store.assistance.transition(a.id, ['WAIT_USER_CONFIRM'], { status: 'WAIT_USER_ACCESS', acceptedAt: T0 + BIG + 1 });
        assert.deepEqual(accepted, { ...a, status: 'WAIT_USER_ACCESS', acceptedAt: T0 + BIG + 1 });
        const closed = await store.assistance.transition(a.id, ['WAIT_USER_CONFIRM', 'WAIT_USER_ACCESS', 'OPEN'], {
          status: 'CLOSE', closedAt: T0 + BIG + 2, closeReason: 'declined', failedReason: 'The desktop user declined.',
        });
        assert.equal(closed?.status, 'CLOSE');
        assert.equal(closed?.failedReason, 'The desktop user declined.');
        assert.equal(await store.assistance.findActiveByCode(a.invitationCode), undefined);
        assert.deepEqual(await store.assistance.currentForDesktop(desktop), closed);
        const b = spaceRec(desktop, { createdAt: T0, expiresAt: T0 + 1 });
        assert.equal(await store.assistance.insertSpace(b), true, 'the desktop is free again');
        assert.equal((await store.assistance.currentForDesktop(desktop))?.id, b.id, 'the active one first');
        assert.deepEqual((await store.assistance.listExpired(T0 + 1, 1000)).filter((x) => x.desktopId === desktop).map((x) => x.id), [b.id]);
        await store.assistance.transition(b.id, ['WAIT_USER_CONFIRM'], { status: 'CLOSE', closedAt: T0 + BIG + 5, closeReason: 'expired' });
        assert.equal((await store.assistance.currentForDesktop(desktop))?.id, b.id, 'the one closed last');
      });

      it('concurrent inserts for one desktop (two nodes on PostgreSQL): exactly one wins', async () => {
        const others = opts.redeemNodes === 2 ? [await open()] : [];
        try {
          const stores = [store, ...others];
          const desktop = randomUUID();
          const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % stores.length]!.assistance.insertSpace(spaceRec(desktop))));
          assert.equal(wins.filter(Boolean).length, 1);
        } finally {
          for (const s of others) await s.close();
        }
      });

      it('helpers: by token, by sessions, by state; updates are compare-and-set on the state; purgeClosed removes spaces with their helpers', async () => {
        const sp = spaceRec(randomUUID());
        await store.assistance.insertSpace(sp);
        const h1 = helperRec(sp.id);
        const h2 = helperRec(sp.id, { joinedAt: T0 + BIG + 1 });
        await store.assistance.insertHelper(h1);
        await store.assistance.insertHelper(h2);
        assert.deepEqual(await store.assistance.findHelperByToken(h1.tokenHash), h1);
        assert.deepEqual(await store.assistance.getHelper(h2.id), h2);
        const connected = await store.assistance.updateHelper(h1.id, { sessionId: 's-1', state: 'connected', connectedAt: T0 + BIG + 2 }, ['joining']);
        assert.deepEqual(connected, { ...h1, sessionId: 's-1', state: 'connected', connectedAt: T0 + BIG + 2 });
        assert.equal(await store.assistance.updateHelper(h1.id, { state: 'connected' }, ['joining']), undefined, 'not joining any more');
        assert.equal((await store.assistance.updateHelper(h1.id, { control: true }))?.control, true);
        assert.deepEqual((await store.assistance.listHelpers(sp.id)).map((h) => h.id), [h1.id, h2.id]);
        assert.deepEqual((await store.assistance.listHelpers(sp.id, ['connected'])).map((h) => h.id), [h1.id]);
        assert.deepEqual(await store.assistance.listHelpers(sp.id, []), []);
        assert.deepEqual((await store.assistance.helpersBySessions(['s-1', 's-none'])).map((h) => h.id), [h1.id]);
        await store.assistance.transition(sp.id, ['WAIT_USER_CONFIRM'], { status: 'CLOSE', closedAt: T0 });
        assert.ok(await store.assistance.purgeClosed(T0 + 1) >= 1);
        assert.equal(await store.assistance.getSpace(sp.id), undefined);
        assert.equal(await store.assistance.getHelper(h1.id), undefined);
      });

      it('consents: one per user and space, on any node (two on PostgreSQL); listed in order; purged with the space', async () => {
        const others = opts.redeemNodes === 2 ? [await open()] : [];
        try {
          const stores = [store, ...others];
          const sp = spaceRec(randomUUID());
          await store.assistance.insertSpace(sp);
          assert.equal(await store.assistance.addConsent(sp.id, 'alice', T0 + BIG), true);
          const again = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % stores.length]!.assistance.addConsent(sp.id, 'bob', T0 + BIG + 1)));
          assert.equal(again.filter(Boolean).length, 1, 'exactly one of the concurrent consents by bob counts');
          assert.equal(await store.assistance.addConsent(sp.id, 'alice', T0 + BIG + 2), false);
          assert.deepEqual(await store.assistance.listConsents(sp.id), ['alice', 'bob']);
          assert.deepEqual(await store.assistance.listConsents(hex32()), []);
          await store.assistance.transition(sp.id, ['WAIT_USER_CONFIRM'], { status: 'CLOSE', closedAt: T0 });
          assert.ok(await store.assistance.purgeClosed(T0 + 1) >= 1);
          assert.deepEqual(await store.assistance.listConsents(sp.id), []);
        } finally {
          for (const s of others) await s.close();
        }
      });

      it('page bindings: the first binding of a key wins; deleted with their session, or by age', async () => {
        const keyHash = randomBytes(32).toString('hex');
        const page = { keyHash, sessionId: randomUUID(), projectId: t.project.id, resourceId: randomUUID(), role: 'user' as const, userId: t.user.id, helperId: null, createdAt: T0 + BIG };
        await store.assistance.bindPage(page);
        await store.assistance.bindPage({ ...page, sessionId: randomUUID(), role: 'none' });
        assert.deepEqual(await store.assistance.getPage(keyHash), page);
        await store.assistance.deletePagesOfSession(page.sessionId);
        assert.equal(await store.assistance.getPage(keyHash), undefined);
        await store.assistance.bindPage({ ...page, createdAt: T0 });
        assert.ok(await store.assistance.purgePages(T0 + 1) >= 1);
        assert.equal(await store.assistance.getPage(keyHash), undefined);
      });

      it('join attempts: every concurrent hit is counted (two nodes on PostgreSQL); windows restart; lock, release, clear', async () => {
        const key = `space:${hex32()}`;
        const others = opts.redeemNodes === 2 ? [await open()] : [];
        try {
          const stores = [store, ...others];
          const hits = await Promise.all(Array.from({ length: 40 }, (_, i) => stores[i % stores.length]!.assistance.hitAttempt(key, T0 + BIG, 300_000)));
          assert.deepEqual(hits.map((h) => h.count).sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i + 1));
        } finally {
          for (const s of others) await s.close();
        }
        await store.assistance.lockAttempts(key, T0 + BIG + 300_000);
        assert.deepEqual(await store.assistance.getAttempts(key), { count: 40, windowStart: T0 + BIG, lockedUntil: T0 + BIG + 300_000 });
        await store.assistance.releaseAttempt(key);
        assert.equal((await store.assistance.getAttempts(key))?.count, 39);
        const next = await store.assistance.hitAttempt(key, T0 + BIG + 300_000, 300_000);
        assert.deepEqual([next.count, next.windowStart], [1, T0 + BIG + 300_000], 'a new window');
        await store.assistance.clearAttempts(key);
        assert.equal(await store.assistance.getAttempts(key), undefined);
        await store.assistance.releaseAttempt(key); // nothing to release: no row, no error
      });

      it('security #6: purgeAttempts deletes at most `limit` counters whose window and lock are over before the cut-off', async () => {
        // Window starts far before every other test's rows, so the cut-offs touch only these.
        const [a, b, c, locked, recent] = Array.from({ length: 5 }, () => `addr:${hex32()}`);
        await store.assistance.hitAttempt(a!, 1_001, 300_000);
        await store.assistance.hitAttempt(b!, 1_002, 300_000);
        await store.assistance.hitAttempt(c!, 1_003, 300_000);
        await store.assistance.hitAttempt(locked!, 1_001, 300_000);
        await store.assistance.lockAttempts(locked!, 2_000);
        await store.assistance.hitAttempt(recent!, 1_500, 300_000);
        assert.equal(await store.assistance.purgeAttempts(1_010, 2), 2, 'a batch is bounded');
        assert.equal(await store.assistance.getAttempts(a!), undefined, 'oldest window first');
        assert.ok(await store.assistance.getAttempts(c!));
        assert.equal(await store.assistance.purgeAttempts(1_010, 100), 1);
        assert.ok(await store.assistance.getAttempts(locked!), 'still locked at the cut-off: kept');
        assert.ok(await store.assistance.getAttempts(recent!), 'window started after the cut-off: kept');
        assert.equal(await store.assistance.purgeAttempts(1_010, 100), 0);
        assert.equal(await store.assistance.purgeAttempts(2_001, 100), 2);
      });

      it('share-space passwords are sealed values the key rotation walks', async () => {
        const sp = spaceRec(randomUUID(), { passwordSealed: 'v1:old:space' });
        await store.assistance.insertSpace(sp);
        assert.deepEqual((await store.sealed.list()).filter((v) => v.id === sp.id), [{ kind: 'share_space_password', id: sp.id, sealed: 'v1:old:space' }]);
        assert.equal(await store.sealed.replace('share_space_password', sp.id, 'v1:old:space', 'v1:new:space'), true);
        assert.equal(await store.sealed.replace('share_space_password', sp.id, 'v1:old:space', 'v1:x:space'), false);
        assert.equal((await store.assistance.getSpace(sp.id))?.passwordSealed, 'v1:new:space');
      });
    });

    // Scale-out (issue 7). Last in the contract: reapLost closes every open session of a node that is
    // not alive, which includes the unregistered nodes of the tests above.
    describe('nodes', () => {
      const node = (id: string, at: number) => ({ id, address: `10.0.0.1:${8000 + (at % 1000)}`, version: '0.1.0', startedAt: at, heartbeatAt: at });

      it('register/list round-trip; heartbeat records time and draining; unknown node is missing; register again replaces', async () => {
        const id = `n-${hex32()}`;
        await store.nodes.register(node(id, T0));
        const mine = () => store.nodes.list().then((xs) => xs.find((x) => x.id === id));
        assert.deepEqual(await mine(), { ...node(id, T0), draining: false, lostAt: null });
        assert.equal(await store.nodes.heartbeat(id, T0 + BIG, true), 'ok');
        assert.deepEqual([(await mine())?.heartbeatAt, (await mine())?.draining], [T0 + BIG, true]);
        assert.equal(await store.nodes.heartbeat(`n-${hex32()}`, T0, false), 'missing');
        await store.nodes.register({ ...node(id, T0 + 5), address: 'elsewhere:1' });
        assert.deepEqual(await mine(), { ...node(id, T0 + 5), address: 'elsewhere:1', draining: false, lostAt: null });
        await store.nodes.remove(id);
        assert.equal(await mine(), undefined);
      });

      it('reapLost declares stale nodes once, closes the sessions of every node not alive (1001, reason), forgets old lost rows', async () => {
        const now = T0 + 1_000_000;
        const alive = `n-${hex32()}`;
        const stale = `n-${hex32()}`;
        const old = `n-${hex32()}`;
        await store.nodes.register(node(alive, now - 1000));
        await store.nodes.register(node(stale, now - 60_000));
        await store.nodes.register(node(old, now - 10 * 86_400_000));
        const mineAlive = session({ nodeId: alive });
        const mineStale = session({ nodeId: stale });
        const neverRegistered = session({ nodeId: `n-${hex32()}` });
        for (const s of [mineAlive, mineStale, neverRegistered]) await store.sessions.start(s);
        const first = await store.nodes.reapLost({ cutoff: now - 30_000, now, reason: 'node_lost', forgetLostBefore: now - 86_400_000 });
        assert.deepEqual(first.nodes.sort(), [old, stale].sort());
        assert.ok(first.sessions >= 2);
        for (const s of [mineStale, neverRegistered]) {
          const got = await store.sessions.get(s.id);
          assert.deepEqual([got?.endedAt, got?.closeCode, got?.closeReason], [now, 1001, 'node_lost']);
        }
        assert.equal((await store.sessions.get(mineAlive.id))?.endedAt, null);
        assert.equal(await store.nodes.heartbeat(stale, now + 1, false), 'lost', 'a lost node learns it from its heartbeat');
        const rows = await store.nodes.list();
        assert.equal(rows.find((x) => x.id === stale)?.lostAt, now);
        const second = await store.nodes.reapLost({ cutoff: now - 30_000, now: now + 10, reason: 'node_lost', forgetLostBefore: now - 86_400_000 });
        assert.deepEqual(second, { nodes: [], sessions: 0 }, 'each node and session once');
        await store.nodes.reapLost({ cutoff: now - 30_000, now: now + 20, reason: 'node_lost', forgetLostBefore: now + 15 });
        assert.equal((await store.nodes.list()).some((x) => x.id === stale || x.id === old), false, 'lost rows older than forgetLostBefore are gone');
        await store.nodes.register(node(stale, now + 30));
        assert.equal((await store.nodes.list()).find((x) => x.id === stale)?.lostAt, null, 'registering again makes it alive');
        for (const id of [alive, stale]) await store.nodes.remove(id);
        await store.sessions.end(mineAlive.id, { endedAt: now, bytesToClient: 0, bytesToBackend: 0, closeCode: 1000, closeReason: 'done' });
      });

      it('reopenSessions re-opens only that node\'s sessions closed with that reason', async () => {
        const id = `n-${hex32()}`;
        const lost = session({ nodeId: id });
        const normal = session({ nodeId: id });
        const otherNode = session({ nodeId: `n-${hex32()}` });
        for (const s of [lost, normal, otherNode]) await store.sessions.start(s);
        await store.sessions.end(lost.id, { endedAt: T0 + 1, bytesToClient: 0, bytesToBackend: 0, closeCode: 1001, closeReason: 'node_lost' });
        await store.sessions.end(normal.id, { endedAt: T0 + 1, bytesToClient: 0, bytesToBackend: 0, closeCode: 1000, closeReason: 'client_closed' });
        await store.sessions.end(otherNode.id, { endedAt: T0 + 1, bytesToClient: 0, bytesToBackend: 0, closeCode: 1001, closeReason: 'node_lost' });
        assert.equal(await store.nodes.reopenSessions(id, [lost.id, normal.id, otherNode.id], 'node_lost'), 1);
        assert.deepEqual(await store.sessions.get(lost.id), lost);
        assert.equal((await store.sessions.get(normal.id))?.closeReason, 'client_closed');
        assert.equal((await store.sessions.get(otherNode.id))?.closeReason, 'node_lost');
        assert.equal(await store.nodes.reopenSessions(id, [], 'node_lost'), 0);
        await store.sessions.end(lost.id, { endedAt: T0 + 2, bytesToClient: 0, bytesToBackend: 0, closeCode: 1000, closeReason: 'done' });
      });

      it('openSessionCounts per node, optionally of some projects (an empty list matches nothing)', async () => {
        const n1 = `n-${hex32()}`;
        const n2 = `n-${hex32()}`;
        const p1 = hex32();
        const p2 = hex32();
        const ss = [session({ nodeId: n1, projectId: p1 }), session({ nodeId: n1, projectId: p2 }), session({ nodeId: n2, projectId: p1 }), session({ nodeId: n2, projectId: p1 })];
        for (const s of ss) await store.sessions.start(s);
        await store.sessions.end(ss[3]!.id, { endedAt: T0 + 1, bytesToClient: 0, bytesToBackend: 0, closeCode: 1000, closeReason: 'done' });
        const all = await store.nodes.openSessionCounts();
        assert.deepEqual([all.get(n1), all.get(n2)], [2, 1]);
        const onlyP1 = await store.nodes.openSessionCounts([p1]);
        assert.deepEqual([onlyP1.get(n1), onlyP1.get(n2)], [1, 1]);
        assert.equal((await store.nodes.openSessionCounts([])).size, 0);
        for (const s of ss.slice(0, 3)) await store.sessions.end(s.id, { endedAt: T0 + 2, bytesToClient: 0, bytesToBackend: 0, closeCode: 1000, closeReason: 'done' });
      });

      it(`survivors reaping at once over ${opts.redeemNodes} store(s): each stale node is declared exactly once`, async () => {
        const stores = [store, ...(opts.redeemNodes === 2 ? [await open()] : [])];
        try {
          const now = T0 + 2_000_000;
          const ids = Array.from({ length: 10 }, () => `n-${hex32()}`);
          for (const id of ids) await store.nodes.register(node(id, now - 60_000));
          const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
            stores[i % stores.length]!.nodes.reapLost({ cutoff: now - 30_000, now, reason: 'node_lost', forgetLostBefore: 0 })));
          const declared = results.flatMap((r) => r.nodes).filter((id) => ids.includes(id));
          assert.deepEqual(declared.sort(), [...ids].sort());
          for (const id of ids) await store.nodes.remove(id);
        } finally {
          for (const s of stores.slice(1)) await s.close();
        }
      });
    });
  });
}

// ───────────────────────────── SQLite ─────────────────────────────

describe('sqlite', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  contract('sqlite', () => openSqliteStore(path.join(dir, 'store.db')), { dialect: 'sqlite', redeemNodes: 1 });

  it('createStore() without database_url opens SQLite in data_dir', async () => {
    const s = await createStore({ databaseUrl: null, dataDir: path.join(dir, 'data') });
    try { assert.equal(s.dialect, 'sqlite'); await s.ping(); } finally { await s.close(); }
  });
});

// ─────────────────────────── PostgreSQL ───────────────────────────

await describePostgres('postgres', () => {
  let schema: TestSchema;
  before(async () => { schema = await createTestSchema(); });
  after(async () => { await schema?.drop(); });

  contract('postgres', () => openPostgresStore(schema.url), { dialect: 'postgres', redeemNodes: 2 });

  it('createStore() with a postgres:// database_url opens PostgreSQL', async () => {
    const s = await createStore({ databaseUrl: schema.url, dataDir: '/nonexistent' });
    try { assert.equal(s.dialect, 'postgres'); await s.ping(); } finally { await s.close(); }
  });

  it('four nodes migrating one fresh schema at once all succeed and each migration runs once', async () => {
    const fresh = await createTestSchema();
    try {
      const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore(fresh.url, { poolMax: 2 })));
      try {
        await Promise.all(stores.map((s) => s.ping()));
        const { rows } = await fresh.admin(`select name, count(*)::int as n from ${fresh.name}.porthole_migrations group by name`);
        assert.ok(rows.length >= 1);
        assert.ok(rows.every((r: { n: number }) => r.n === 1), JSON.stringify(rows));
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    } finally {
      await fresh.drop();
    }
  });

  it('the schema option puts the tables in that schema, creating it', async () => {
    const fresh = await createTestSchema();
    const name = `${fresh.name}_opt`;
    try {
      const s = await openPostgresStore(TEST_DATABASE_URL, { schema: name });
      await s.close();
      const { rows } = await fresh.admin('select table_name from information_schema.tables where table_schema = $1 and table_name = $2', [name, 'console_tokens']);
      assert.equal(rows.length, 1);
      await assert.rejects(openPostgresStore(TEST_DATABASE_URL, { schema: 'Bad; drop' }), /must match/);
    } finally {
      await fresh.admin(`drop schema if exists ${name} cascade`);
      await fresh.drop();
    }
  });

  it('int8 is parsed as a number on the store\'s connections only; pg.types stays as it was', async () => {
    const s = await openPostgresStore(schema.url);
    try {
      const sess = session({ bytesToClient: BIG });
      await s.sessions.start(sess);
      assert.strictEqual((await s.sessions.get(sess.id))?.bytesToClient, BIG);
      assert.strictEqual(pg.types.getTypeParser(20, 'text')('42'), '42');
    } finally {
      await s.close();
    }
  });

  describe('database outage', () => {
    const target = new URL(TEST_DATABASE_URL);
    const fast: PostgresStoreOptions = { connectTimeoutMs: 500, queryTimeoutMs: 800, statementTimeoutMs: 600, poolMax: 3 };

    async function until(cond: () => boolean, ms = 5000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error('condition not reached in time');
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    /** Time a promise takes to settle, and whether it rejected. */
    async function timed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
      const t0 = performance.now();
      try { await p; return { ms: performance.now() - t0, error: undefined }; } catch (error) { return { ms: performance.now() - t0, error }; }
    }

    it('server gone (every connection reset, new ones refused): ping rejects at once; back again: the same store recovers', async (t) => {
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      t.after(() => proxy.close());
      const errors: Error[] = [];
      const app = `porthole-test-${hex32().slice(0, 8)}`;
      const s = await openPostgresStore(proxy.urlFor(schema.url), { ...fast, applicationName: app, onError: (e) => errors.push(e) });
      t.after(() => s.close());
      await Promise.all([s.ping(), s.ping(), s.ping()]);
      const idle = (await schema.admin('select count(*)::int as n from pg_stat_activity where application_name = $1', [app])).rows[0] as { n: number };
      proxy.refuse();
      // The pool drops each reset idle connection as its error arrives (a call made in that instant
      // fails too, like any call during an outage); wait for that, then every call needs a new connection.
      await until(() => errors.length >= idle.n);
      const down = await timed(s.ping());
      assert.ok(down.error instanceof Error, 'ping must reject while the server is gone');
      assert.ok(down.ms < 2000, `rejected after ${down.ms.toFixed(0)} ms`);
      proxy.restore();
      await s.ping();
    });

    it('network black-holed: ping rejects within the query/connect timeout; once traffic flows the same store recovers', async (t) => {
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      t.after(() => proxy.close());
      const s = await openPostgresStore(proxy.urlFor(schema.url), { ...fast, poolMax: 1 });
      t.after(() => s.close());
      await s.ping();
      proxy.freeze();
      const onOpen = await timed(s.ping());
      assert.ok(onOpen.error instanceof Error, 'a ping on a silent open connection must reject');
      assert.ok(onOpen.ms < 800 + 1000, `query timeout: rejected after ${onOpen.ms.toFixed(0)} ms`);
      const onNew = await timed(s.ping());
      assert.ok(onNew.error instanceof Error, 'a ping needing a new connection must reject');
      assert.ok(onNew.ms < 500 + 800 + 1000, `connect timeout: rejected after ${onNew.ms.toFixed(0)} ms`);
      proxy.restore();
      // The connection that timed out was destroyed, not pooled: the next call dials afresh and works.
      const up = await timed(s.ping());
      assert.equal(up.error, undefined);
      assert.ok(up.ms < 500, `recovered ping took ${up.ms.toFixed(0)} ms`);
    });

    it('network black-holed: console tokens queued together (group commit) all fail at once, not one timeout per row', async (t) => {
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      t.after(() => proxy.close());
      const s = await openPostgresStore(proxy.urlFor(schema.url), { ...fast, poolMax: 1 });
      t.after(() => s.close());
      const who = await tenant(s);
      proxy.freeze();
      const rows = Array.from({ length: 20 }, () => token(who.project.id, randomUUID()));
      const all = await timed(Promise.allSettled(rows.map((r) => s.consoleTokens.insert(r))).then((rs) => {
        if (rs.some((r) => r.status !== 'rejected')) throw new Error('an insert succeeded while the network was black-holed');
      }));
      assert.equal(all.error, undefined, String(all.error));
      // One attempt for the batch (query timeout 800 ms, or connect 500 + 800): retrying row by row would take 20 of those.
      assert.ok(all.ms < 5000, `the queued inserts took ${all.ms.toFixed(0)} ms to fail`);
      proxy.restore();
      await s.consoleTokens.insert(rows[0]!);
      assert.ok(await s.consoleTokens.get(rows[0]!.tokenHash));
    });

    it('pg_terminate_backend of every connection: reported to onError, process unharmed, the next call reconnects', async () => {
      const app = `porthole-test-${hex32().slice(0, 8)}`;
      const errors: Error[] = [];
      const s = await openPostgresStore(schema.url, { poolMax: 3, applicationName: app, onError: (e) => errors.push(e) });
      try {
        await Promise.all([s.ping(), s.ping(), s.ping()]);
        const { rows } = await schema.admin('select pg_terminate_backend(pid, 5000) as ok from pg_stat_activity where application_name = $1', [app]);
        assert.ok(rows.length >= 1 && rows.every((r: { ok: boolean }) => r.ok));
        await until(() => errors.length >= rows.length);
        assert.equal(errors.length, rows.length, 'each killed idle connection reported once');
        await s.ping();
        const after = await schema.admin('select count(*)::int as n from pg_stat_activity where application_name = $1', [app]);
        assert.ok((after.rows[0] as { n: number }).n >= 1, 'a new backend serves the store');
      } finally {
        await s.close();
      }
    });

    it('opening while the server refuses connections rejects at once', async (t) => {
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      t.after(() => proxy.close());
      proxy.refuse();
      const r = await timed(openPostgresStore(proxy.urlFor(schema.url), fast));
      assert.ok(r.error instanceof Error);
      assert.ok(r.ms < 2000, `rejected after ${r.ms.toFixed(0)} ms`);
    });

    it('opening while the network is black-holed rejects within the connect timeout', async (t) => {
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      t.after(() => proxy.close());
      proxy.freeze();
      const r = await timed(openPostgresStore(proxy.urlFor(schema.url), fast));
      assert.ok(r.error instanceof Error);
      assert.ok(r.ms >= 400 && r.ms < 500 + 1000, `rejected after ${r.ms.toFixed(0)} ms`);
    });
  });
});
