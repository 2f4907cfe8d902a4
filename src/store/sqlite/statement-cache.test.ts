/**
 * The prepared-statement cache (store/sqlite/statement-cache.ts): the same SQL text reuses one
 * statement; a statement still being iterated is not handed out again; the cache is bounded (least
 * recently used dropped first); results are the same as without it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CachedStatements } from './statement-cache.js';

function db(): Database.Database {
  const d = new Database(':memory:');
  d.exec('create table t (id integer primary key, v text)');
  d.prepare('insert into t (v) values (?), (?), (?)').run('a', 'b', 'c');
  return d;
}

describe('statement cache', () => {
  it('reuses one prepared statement per SQL text and returns the same rows', () => {
    const c = new CachedStatements(db());
    const q = 'select v from t where id = ?';
    assert.deepEqual(c.prepare(q).all([1]), [{ v: 'a' }]);
    assert.deepEqual(c.prepare(q).all([2]), [{ v: 'b' }]);
    assert.equal(c.prepare(q), c.prepare(q));
    assert.deepEqual([c.hits, c.misses], [3, 1]);
    assert.equal(c.prepare('insert into t (v) values (?)').run(['d']).changes, 1);
    assert.equal(c.prepare('select count(*) as n from t').reader, true);
    c.close();
  });

  it('a statement being iterated is not shared: a second use of the same SQL gets its own', () => {
    const c = new CachedStatements(db());
    const q = 'select v from t order by id';
    const it1 = c.prepare(q).iterate([]);
    assert.deepEqual(it1.next().value, { v: 'a' });
    assert.deepEqual(c.prepare(q).all([]), [{ v: 'a' }, { v: 'b' }, { v: 'c' }], 'served while the first is busy');
    assert.deepEqual([...it1].map((r) => (r as { v: string }).v), ['b', 'c'], 'the first iteration is undisturbed');
    c.close();
  });

  it('holds at most `limit` statements, dropping the least recently used', () => {
    const c = new CachedStatements(db(), 2);
    const a = c.prepare('select 1');
    c.prepare('select 2');
    assert.equal(c.prepare('select 1'), a, 'used again: now the most recent');
    c.prepare('select 3');
    assert.equal(c.size, 2);
    assert.equal(c.prepare('select 1'), a, 'kept');
    assert.notEqual(c.prepare('select 2'), undefined);
    assert.deepEqual([c.hits, c.misses], [2, 4], 'select 2 was dropped and prepared again');
    c.close();
  });
});
