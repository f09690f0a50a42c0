// Generic PostgREST table operations on a fixture table (created through DATABASE_URL) with
// RLS owner = auth.uid(), through the real postgrest-js query builder.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DATABASE_URL, anonymousUser, closeClient, createFixtureTable, waitForTable } from './support.mjs';

describe('table operations on a fixture table', { skip: !DATABASE_URL && 'DATABASE_URL not set' }, () => {
  /** @type {{name: string, drop: () => Promise<void>}} */ let table;
  let alice;
  let bob;

  before(async () => {
    table = await createFixtureTable('js_rest');
    alice = await anonymousUser();
    bob = await anonymousUser();
    await waitForTable(alice.client, table.name);
    const rows = [
      { name: 'apple', qty: 5, tag: 'fruit', slug: 'a-apple' },
      { name: 'banana', qty: 12, tag: 'fruit', slug: 'a-banana' },
      { name: 'carrot', qty: 7, tag: 'veg', slug: 'a-carrot' },
      { name: 'date', qty: 1, tag: null, slug: 'a-date' },
      { name: 'eggplant', qty: 20, tag: 'veg', slug: 'a-eggplant' },
    ];
    const { error } = await alice.client.from(table.name).insert(rows);
    assert.equal(error, null, JSON.stringify(error));
    const b = await bob.client.from(table.name).insert({ name: 'bob-apple', qty: 99, tag: 'fruit', slug: 'b-apple' });
    assert.equal(b.error, null, JSON.stringify(b.error));
  });

  after(async () => {
    await closeClient(alice?.client);
    await closeClient(bob?.client);
    await table?.drop();
  });

  const names = (rows) => rows.map((r) => r.name);

  test('select with eq, in, gt, like, is, or; RLS hides the other user rows', async () => {
    const c = alice.client;
    const T = table.name;
    let r = await c.from(T).select('name').eq('tag', 'fruit').order('name');
    assert.equal(r.error, null);
    assert.deepEqual(names(r.data), ['apple', 'banana']);
    r = await c.from(T).select('name').in('name', ['apple', 'carrot', 'bob-apple']).order('name');
    assert.deepEqual(names(r.data), ['apple', 'carrot']);
    r = await c.from(T).select('name, qty').gt('qty', 6).order('qty', { ascending: false });
    assert.deepEqual(r.data, [
      { name: 'eggplant', qty: 20 },
      { name: 'banana', qty: 12 },
      { name: 'carrot', qty: 7 },
    ]);
    r = await c.from(T).select('name').like('name', '%a%e%').order('name');
    assert.deepEqual(names(r.data), ['apple', 'date']);
    r = await c.from(T).select('name').is('tag', null);
    assert.deepEqual(names(r.data), ['date']);
    r = await c.from(T).select('name').or('qty.lt.2,tag.eq.veg').order('name');
    assert.deepEqual(names(r.data), ['carrot', 'date', 'eggplant']);
    r = await c.from(T).select('name').not('tag', 'is', null).neq('tag', 'veg').order('name');
    assert.deepEqual(names(r.data), ['apple', 'banana']);
    // Bob sees only his row.
    r = await bob.client.from(T).select('name, owner');
    assert.deepEqual(r.data, [{ name: 'bob-apple', owner: bob.id }]);
  });

  test('order, limit and range with count exact', async () => {
    const T = table.name;
    let r = await alice.client.from(T).select('name', { count: 'exact' }).order('qty').limit(2);
    assert.equal(r.error, null);
    assert.equal(r.count, 5);
    assert.deepEqual(names(r.data), ['date', 'apple']);
    r = await alice.client.from(T).select('name', { count: 'exact' }).order('name', { ascending: false }).range(1, 3);
    assert.equal(r.count, 5);
    assert.equal(r.status, 206);
    assert.deepEqual(names(r.data), ['date', 'carrot', 'banana']);
    r = await alice.client.from(T).select('*', { count: 'exact', head: true }).eq('tag', 'veg');
    assert.equal(r.count, 2);
    assert.equal(r.data, null);
  });

  test('insert single and bulk return representation; owner defaults to auth.uid()', async () => {
    const T = table.name;
    const one = await alice.client.from(T).insert({ name: 'fig', qty: 3, slug: 'a-fig' }).select().single();
    assert.equal(one.error, null);
    assert.equal(one.status, 201);
    assert.equal(one.data.owner, alice.id);
    assert.equal(one.data.name, 'fig');
    assert.equal(typeof one.data.id, 'number');
    const bulk = await alice.client
      .from(T)
      .insert([
        { name: 'grape', qty: 4, slug: 'a-grape' },
        { name: 'honeydew', qty: 2, slug: 'a-honeydew' },
      ])
      .select('name, qty');
    assert.equal(bulk.error, null);
    assert.deepEqual(bulk.data, [
      { name: 'grape', qty: 4 },
      { name: 'honeydew', qty: 2 },
    ]);
    // RLS with check: inserting a row for somebody else is refused.
    const forged = await alice.client.from(T).insert({ name: 'x', owner: bob.id, slug: 'a-x' });
    assert.equal(forged.error?.code, '42501');
    // Unique violation → 409 23505.
    const dup = await alice.client.from(T).insert({ name: 'dup', slug: 'a-fig' });
    assert.equal(dup.status, 409);
    assert.equal(dup.error?.code, '23505');
    await alice.client.from(T).delete().in('slug', ['a-fig', 'a-grape', 'a-honeydew']);
  });

  test('upsert with onConflict merges on the unique column', async () => {
    const T = table.name;
    const r = await alice.client
      .from(T)
      .upsert(
        [
          { name: 'apple', qty: 50, slug: 'a-apple', tag: 'fruit' },
          { name: 'kiwi', qty: 8, slug: 'a-kiwi', tag: 'fruit' },
        ],
        { onConflict: 'slug' },
      )
      .select('name, qty, slug');
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.deepEqual(
      r.data.sort((a, b) => a.slug.localeCompare(b.slug)),
      [
        { name: 'apple', qty: 50, slug: 'a-apple' },
        { name: 'kiwi', qty: 8, slug: 'a-kiwi' },
      ],
    );
    const all = await alice.client.from(T).select('slug', { count: 'exact', head: true });
    assert.equal(all.count, 6);
    // ignoreDuplicates leaves the existing row alone.
    const ign = await alice.client
      .from(T)
      .upsert({ name: 'apple', qty: 0, slug: 'a-apple' }, { onConflict: 'slug', ignoreDuplicates: true })
      .select();
    assert.equal(ign.error, null);
    assert.deepEqual(ign.data, []);
    const apple = await alice.client.from(T).select('qty').eq('slug', 'a-apple').single();
    assert.equal(apple.data.qty, 50);
    await alice.client.from(T).delete().eq('slug', 'a-kiwi');
  });

  test('update and delete with filters; other users rows are untouched', async () => {
    const T = table.name;
    const up = await alice.client.from(T).update({ tag: 'green' }).eq('tag', 'veg').select('name, tag').order('name');
    assert.equal(up.error, null);
    assert.deepEqual(up.data, [
      { name: 'carrot', tag: 'green' },
      { name: 'eggplant', tag: 'green' },
    ]);
    // Alice cannot update Bob's row: 0 rows affected, no error.
    const sneaky = await alice.client.from(T).update({ qty: 0 }).eq('slug', 'b-apple').select();
    assert.equal(sneaky.error, null);
    assert.deepEqual(sneaky.data, []);
    const del = await alice.client.from(T).delete().eq('slug', 'a-date').select('name');
    assert.deepEqual(del.data, [{ name: 'date' }]);
    const gone = await alice.client.from(T).delete().eq('slug', 'b-apple').select('name');
    assert.deepEqual(gone.data, []);
    const bobs = await bob.client.from(T).select('qty').eq('slug', 'b-apple').single();
    assert.equal(bobs.data.qty, 99);
  });

  test('single() on zero rows is a 406 PGRST116; maybeSingle() gives null', async () => {
    const T = table.name;
    const r = await alice.client.from(T).select('*').eq('slug', 'nope').single();
    assert.equal(r.data, null);
    assert.equal(r.status, 406);
    assert.equal(r.error?.code, 'PGRST116');
    const m = await alice.client.from(T).select('*').eq('slug', 'nope').maybeSingle();
    assert.equal(m.error, null);
    assert.equal(m.data, null);
    // More than one row is also PGRST116.
    const many = await alice.client.from(T).select('*').single();
    assert.equal(many.error?.code, 'PGRST116');
  });

  test('unknown column → 42703, unknown table → PGRST205', async () => {
    const r = await alice.client.from(table.name).select('nope');
    assert.equal(r.status, 400);
    assert.equal(r.error?.code, '42703');
    const t = await alice.client.from(`${table.name}_missing`).select('*');
    assert.equal(t.status, 404);
    assert.equal(t.error?.code, 'PGRST205');
  });
});
