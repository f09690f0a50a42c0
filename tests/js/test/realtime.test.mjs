// Realtime through the real supabase-js (realtime-js speaks Phoenix vsn 2.0.0 and sends client
// broadcasts as binary frames): postgres_changes under RLS, broadcast with self/ack, the private
// jobs:<uid> topic fed by Broadcast from Database, and setAuth after a token refresh.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  DATABASE_URL,
  Inbox,
  JWT_SECRET,
  WAIT_MS,
  anonymousUser,
  cancelOpenJobs,
  closeClient,
  createFixtureTable,
  enqueue,
  newClient,
  jwtClaims,
  serviceClient,
  signJwt,
  sleep,
  spyTransport,
  subscribe,
  suffix,
  waitForTable,
} from './support.mjs';

const clients = [];
/** Track a client so the file's `after` closes it even when a test fails half-way. */
const track = (x) => (clients.push(x.client ?? x), x);
after(async () => {
  await Promise.all(clients.map((c) => closeClient(c)));
});

test('the socket speaks vsn 2.0.0 (JSON arrays) by default', async () => {
  const c = track(newClient());
  const ch = c.channel(`vsn-${suffix()}`);
  const { status } = await subscribe(ch);
  assert.equal(status, 'SUBSCRIBED');
  assert.match(c.realtime.endpointURL(), /vsn=2\.0\.0/);
  await c.removeAllChannels();
});

describe('postgres_changes on a fixture table', { skip: !DATABASE_URL && 'DATABASE_URL not set' }, () => {
  let table;
  after(async () => {
    await table?.drop();
  });

  test('INSERT/UPDATE/DELETE reach the owner through a filter; RLS keeps them from another user', async () => {
    table = await createFixtureTable('js_rt');
    const T = table.name;
    const alice = track(await anonymousUser());
    const bob = track(await anonymousUser());
    await waitForTable(alice.client, T);

    const a = new Inbox();
    const aFiltered = new Inbox();
    const b = new Inbox();
    const chA = alice.client
      .channel(`pc-a-${suffix()}`)
      .on('postgres_changes', { event: '*', schema: 'public', table: T, filter: `owner=eq.${alice.id}` }, a.push)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: T, filter: 'qty=gt.10' }, aFiltered.push);
    // Bob listens to the whole table, no filter: only RLS stands between him and Alice's rows.
    const chB = bob.client.channel(`pc-b-${suffix()}`).on('postgres_changes', { event: '*', schema: 'public', table: T }, b.push);
    assert.equal((await subscribe(chA)).status, 'SUBSCRIBED');
    assert.equal((await subscribe(chB)).status, 'SUBSCRIBED');

    const ins = await alice.client.from(T).insert({ name: 'small', qty: 1, slug: `s-${suffix()}` }).select().single();
    assert.equal(ins.error, null);
    const big = await alice.client.from(T).insert({ name: 'big', qty: 11, slug: `b-${suffix()}` }).select().single();
    const id = ins.data.id;

    const inserted = await a.next((m) => m.eventType === 'INSERT' && m.new.id === id, 'INSERT');
    assert.equal(inserted.schema, 'public');
    assert.equal(inserted.table, T);
    assert.equal(inserted.new.name, 'small');
    assert.equal(inserted.new.owner, alice.id);
    assert.deepEqual(inserted.old, {});
    assert.ok(!Number.isNaN(Date.parse(inserted.commit_timestamp)), 'commit_timestamp is a date');
    assert.equal(inserted.errors, null);

    const up = await alice.client.from(T).update({ qty: 2 }).eq('id', id);
    assert.equal(up.error, null);
    const updated = await a.next((m) => m.eventType === 'UPDATE' && m.new.id === id, 'UPDATE');
    assert.equal(updated.new.qty, 2);
    assert.equal(updated.old.id, id); // old holds the primary key (no REPLICA IDENTITY FULL)

    const del = await alice.client.from(T).delete().eq('id', id);
    assert.equal(del.error, null);
    const deleted = await a.next((m) => m.eventType === 'DELETE' && m.old.id === id, 'DELETE');
    assert.deepEqual(deleted.new, {});

    // The qty=gt.10 binding got the big row and not the small one.
    const bigMsg = await aFiltered.next((m) => m.new.id === big.data.id, 'filtered INSERT');
    assert.equal(bigMsg.new.name, 'big');
    assert.ok(!aFiltered.items.some((m) => m.new.id === id), 'qty=gt.10 filter excluded qty=1');

    // Bob's own insert reaches him; changes are delivered in commit order, so anything of
    // Alice's that were to reach him would have arrived before it.
    const mine = await bob.client.from(T).insert({ name: 'bobs', qty: 3, slug: `bob-${suffix()}` }).select().single();
    assert.equal(mine.error, null);
    await b.next((m) => m.eventType === 'INSERT' && m.new.id === mine.data.id, "Bob's own INSERT");
    const leaked = b.items.filter((m) => m.eventType !== 'DELETE' && (m.new.owner === alice.id || m.new.id === id));
    assert.deepEqual(leaked, [], 'RLS: Bob receives no INSERT/UPDATE of Alice rows');
    // Hosted Realtime cannot check RLS for DELETEs (the row is gone): they go to every matching
    // subscriber, but with the primary key only.
    for (const m of b.items.filter((x) => x.eventType === 'DELETE')) {
      assert.deepEqual(Object.keys(m.old), ['id']);
    }
    // Alice's owner filter never matched Bob's row.
    assert.ok(!a.items.some((m) => m.new?.id === mine.data.id), "owner filter excluded Bob's row");
    await alice.client.removeAllChannels();
    await bob.client.removeAllChannels();
  });
});

test('broadcast between two clients: self:true, ack:true (send resolves "ok"), self:false', async () => {
  const spy = spyTransport();
  const c1 = track(newClient(undefined, { transport: spy.SpyWebSocket }));
  const c2 = track(newClient());
  const room = `room-${suffix()}`;
  const in1 = new Inbox();
  const in2 = new Inbox();
  const ch1 = c1.channel(room, { config: { broadcast: { self: true, ack: true } } }).on('broadcast', { event: 'cursor' }, in1.push);
  const ch2 = c2.channel(room, { config: { broadcast: { self: false, ack: true } } }).on('broadcast', { event: 'cursor' }, in2.push);
  assert.equal((await subscribe(ch1)).status, 'SUBSCRIBED');
  assert.equal((await subscribe(ch2)).status, 'SUBSCRIBED');

  const sent = await ch1.send({ type: 'broadcast', event: 'cursor', payload: { x: 1, who: 'c1', text: 'héllo ✓' } });
  assert.equal(sent, 'ok');
  const self = await in1.next((m) => m.payload.who === 'c1', 'own message (self:true)');
  const other = await in2.next((m) => m.payload.who === 'c1', 'message from c1');
  for (const m of [self, other]) {
    assert.equal(m.type, 'broadcast');
    assert.equal(m.event, 'cursor');
    assert.deepEqual(m.payload, { x: 1, who: 'c1', text: 'héllo ✓' });
  }
  // realtime-js sent it as a binary kind-3 frame (vsn 2.0.0), not as a JSON text frame.
  const binary = spy.sent.filter((f) => typeof f !== 'string');
  assert.ok(binary.length >= 1, 'a binary frame was sent');
  assert.equal(new Uint8Array(binary[0].buffer ?? binary[0])[0], 3, 'kind 3 (user broadcast push)');
  assert.ok(spy.sent.some((f) => typeof f === 'string' && JSON.parse(f)[3] === 'phx_join'), 'JSON-array join frame');

  // c2 (self:false) sends; c1 gets it; then c1 answers and c2 gets the answer. c2's own message
  // would have reached it before the answer, so its absence is established without sleeping.
  assert.equal(await ch2.send({ type: 'broadcast', event: 'cursor', payload: { who: 'c2' } }), 'ok');
  await in1.next((m) => m.payload.who === 'c2', 'message from c2');
  assert.equal(await ch1.send({ type: 'broadcast', event: 'cursor', payload: { who: 'c1-reply' } }), 'ok');
  await in2.next((m) => m.payload.who === 'c1-reply', 'reply from c1');
  assert.ok(!in2.items.some((m) => m.payload.who === 'c2'), 'self:false: the sender does not get its own message');
  await c1.removeAllChannels();
  await c2.removeAllChannels();
});

// Hosted Realtime (>= v2.97) answers POST /realtime/v1/api/broadcast/<topic>/events/<event> with 202.
test('REST broadcast via channel.httpSend reaches subscribers', async () => {
  const c1 = track(newClient());
  const c2 = track(newClient());
  const room = `rest-${suffix()}`;
  const inbox = new Inbox();
  const ch2 = c2.channel(room).on('broadcast', { event: 'ping' }, inbox.push);
  assert.equal((await subscribe(ch2)).status, 'SUBSCRIBED');
  const ch1 = c1.channel(room);
  try {
    assert.deepEqual(await ch1.httpSend('ping', { n: 1 }), { success: true });
    const got = await inbox.next((m) => m.payload.n === 1, 'REST broadcast');
    assert.equal(got.event, 'ping');
  } finally {
    await c1.removeAllChannels();
    await c2.removeAllChannels();
  }
});

describe('private topic jobs:<uid>', () => {
  /**
   * Claim `jobId` as the worker (filtering by kind), releasing any other job claimed on the way so
   * that concurrent tests and suites are not disturbed. Retries (bounded) in case a concurrent
   * claimer held it for a moment.
   */
  async function claimOnly(worker, workerId, kind, jobId) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const { data, error } = await worker.rpc('claim_jobs', { worker_id: workerId, kinds: [kind], max_jobs: 50, lease_seconds: 60 });
      assert.equal(error, null, JSON.stringify(error));
      const others = data.filter((j) => j.id !== jobId).map((j) => j.id);
      if (others.length) {
        const rel = await worker.rpc('release_jobs', { worker_id: workerId, job_ids: others });
        assert.equal(rel.error, null, JSON.stringify(rel.error));
      }
      const mine = data.find((j) => j.id === jobId);
      if (mine) return mine;
      if (Date.now() > deadline) throw new Error(`could not claim job ${jobId}`);
      await sleep(200);
    }
  }

  test('the owner receives job and job_event broadcasts live; another user is refused', async () => {
    const alice = track(await anonymousUser());
    const bob = track(await anonymousUser());
    const worker = track(serviceClient());
    const topic = `jobs:${alice.id}`;
    const inbox = new Inbox();
    const ch = alice.client
      .channel(topic, { config: { private: true } })
      .on('broadcast', { event: 'job' }, inbox.push)
      .on('broadcast', { event: 'job_event' }, inbox.push);
    const joined = await subscribe(ch);
    assert.equal(joined.status, 'SUBSCRIBED', String(joined.err));

    const intruder = bob.client.channel(topic, { config: { private: true } }).on('broadcast', { event: 'job' }, () => {});
    const refused = await subscribe(intruder);
    assert.equal(refused.status, 'CHANNEL_ERROR');
    assert.match(String(refused.err?.message ?? refused.err), /Unauthorized/);
    await bob.client.removeAllChannels();

    const job = await enqueue(alice.client, 'rename_layers', { layers: [{ id: '1:2', name: 'Rectangle' }] });
    const queued = await inbox.next((m) => m.event === 'job' && m.payload.id === job.id, 'job queued');
    assert.equal(queued.type, 'broadcast');
    assert.equal(queued.payload.status, 'queued');
    assert.equal(queued.payload.kind, 'rename_layers');
    assert.ok(queued.meta?.id, 'a Broadcast from Database message carries meta.id');

    const workerId = `js-worker-${suffix()}`;
    const claimed = await claimOnly(worker, workerId, 'rename_layers', job.id);
    assert.equal(claimed.status, 'running');
    const rp = await worker.rpc('report_progress', { job_id: job.id, worker_id: workerId, percent: 50, message: 'half' });
    assert.equal(rp.error, null, JSON.stringify(rp.error));
    const pp = await worker.rpc('report_progress', { job_id: job.id, worker_id: workerId, partial: 'Hero' });
    assert.equal(pp.error, null, JSON.stringify(pp.error));
    const result = { names: [{ id: '1:2', name: 'Hero background' }] };
    const done = await worker.rpc('complete_job', { job_id: job.id, worker_id: workerId, result });
    assert.equal(done.error, null, JSON.stringify(done.error));

    const succeeded = await inbox.next((m) => m.event === 'job' && m.payload.status === 'succeeded', 'job succeeded');
    assert.deepEqual(succeeded.payload.result, result);
    const mine = inbox.items.filter((m) => (m.payload.id ?? m.payload.job_id) === job.id || m.payload.job_id === job.id);
    const statuses = mine.filter((m) => m.event === 'job').map((m) => m.payload.status);
    assert.equal(statuses[0], 'queued');
    assert.ok(statuses.includes('running'), `statuses: ${statuses}`);
    assert.equal(statuses.at(-1), 'succeeded');
    const events = mine.filter((m) => m.event === 'job_event').map((m) => [m.payload.type, m.payload.data]);
    assert.deepEqual(events, [
      ['progress', { percent: 50, message: 'half' }],
      ['partial', { text: 'Hero' }],
    ]);
    // Nothing of anybody else's jobs arrived on Alice's topic.
    assert.ok(inbox.items.every((m) => (m.payload.job_id ?? m.payload.id) === job.id));
    await alice.client.removeAllChannels();
  });

  test('setAuth(newToken) after refreshSession keeps the private channel working', async () => {
    const alice = track(await anonymousUser());
    const inbox = new Inbox();
    const ch = alice.client.channel(`jobs:${alice.id}`, { config: { private: true } }).on('broadcast', { event: 'job' }, inbox.push);
    assert.equal((await subscribe(ch)).status, 'SUBSCRIBED');
    const first = await enqueue(alice.client);
    await inbox.next((m) => m.payload.id === first.id, 'first job');

    await sleep(1100); // a new second, so the refreshed JWT differs from the old one
    const { data, error } = await alice.client.auth.refreshSession();
    assert.equal(error, null);
    assert.notEqual(data.session.access_token, alice.session.access_token);
    await alice.client.realtime.setAuth(data.session.access_token);
    assert.equal(alice.client.realtime.accessTokenValue, data.session.access_token);

    const second = await enqueue(alice.client);
    const got = await inbox.next((m) => m.payload.id === second.id, 'job after setAuth');
    assert.equal(got.payload.status, 'queued');
    assert.equal(ch.state, 'joined');
    await cancelOpenJobs(alice.client);
    await alice.client.removeAllChannels();
  });

  test('a token that expires while joined ends the channel with a system error', { skip: !JWT_SECRET && 'SUPABASE_JWT_SECRET not set' }, async () => {
    const alice = track(await anonymousUser());
    const inbox = new Inbox();
    const ch = alice.client
      .channel(`jobs:${alice.id}`, { config: { private: true } })
      .on('system', {}, (m) => inbox.push({ kind: 'system', ...m }));
    const statuses = new Inbox();
    ch.subscribe((status, err) => statuses.push({ status, err }));
    await statuses.next((s) => s.status === 'SUBSCRIBED', 'SUBSCRIBED');
    // Same user and session, valid for two more seconds only.
    const now = Math.floor(Date.now() / 1000);
    const shortLived = signJwt({ ...jwtClaims(alice.session.access_token), iat: now, exp: now + 2 }, JWT_SECRET);
    await alice.client.realtime.setAuth(shortLived);
    const err = await inbox.next((m) => m.status === 'error', 'system error on expiry');
    assert.match(err.message, /expired/i);
    await statuses.next((s) => s.status === 'CLOSED', 'CLOSED after expiry');
    await alice.client.removeAllChannels();
  });
});
