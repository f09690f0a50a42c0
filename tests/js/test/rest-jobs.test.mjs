// The product's SQL API over REST (PostgREST) through the real supabase-js: enqueue, read under
// RLS, isolation between users, worker-only RPCs, the per-user rate limit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { anonymousUser, cancelOpenJobs, closeClient, enqueue, newClient, suffix } from './support.mjs';

/** @type {Awaited<ReturnType<typeof anonymousUser>>} */ let alice;
/** @type {Awaited<ReturnType<typeof anonymousUser>>} */ let bob;

before(async () => {
  alice = await anonymousUser();
  bob = await anonymousUser();
});
after(async () => {
  if (alice) await cancelOpenJobs(alice.client);
  await closeClient(alice?.client);
  await closeClient(bob?.client);
});

test('rpc enqueue_job returns the row; idempotency key dedupes; the owner reads it with single()', async () => {
  const key = `js-${suffix()}`;
  const job = await enqueue(alice.client, 'generate_design', { prompt: 'pricing page' }, { idempotency_key: key });
  assert.equal(typeof job, 'object');
  assert.ok(!Array.isArray(job), 'a single composite comes back as an object');
  assert.equal(job.user_id, alice.id);
  assert.equal(job.kind, 'generate_design');
  assert.equal(job.status, 'queued');
  assert.deepEqual(job.payload, { prompt: 'pricing page' });

  const again = await enqueue(alice.client, 'generate_design', { prompt: 'pricing page' }, { idempotency_key: key });
  assert.equal(again.id, job.id);

  const { data, error, status } = await alice.client
    .from('jobs')
    .select('id, status, payload, user_id')
    .eq('id', job.id)
    .single();
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, { id: job.id, status: 'queued', payload: { prompt: 'pricing page' }, user_id: alice.id });
});

test('another user sees none of the rows and cannot cancel the job (PT404)', async () => {
  const job = await enqueue(alice.client);
  const list = await bob.client.from('jobs').select('id').eq('id', job.id);
  assert.equal(list.error, null);
  assert.deepEqual(list.data, []);
  const maybe = await bob.client.from('jobs').select('id').eq('id', job.id).maybeSingle();
  assert.equal(maybe.error, null);
  assert.equal(maybe.data, null);
  const events = await bob.client.from('job_events').select('id').eq('job_id', job.id);
  assert.deepEqual(events.data, []);

  const cancel = await bob.client.rpc('cancel_job', { job_id: job.id });
  assert.equal(cancel.data, null);
  assert.equal(cancel.error?.code, 'PT404');
  assert.equal(cancel.status, 404);

  // No direct writes, even to one's own rows.
  const upd = await alice.client.from('jobs').update({ status: 'succeeded' }).eq('id', job.id).select();
  assert.equal(upd.error?.code, '42501');
  const mine = await alice.client.from('jobs').select('status').eq('id', job.id).single();
  assert.equal(mine.data.status, 'queued');

  // The owner can cancel it.
  const ok = await alice.client.rpc('cancel_job', { job_id: job.id });
  assert.equal(ok.error, null);
  assert.equal(ok.data.id, job.id);
  assert.equal(ok.data.status, 'cancelled');
});

test('a user calling the worker RPC claim_jobs gets 42501 / 403; anon gets 401', async () => {
  const res = await alice.client.rpc('claim_jobs', { worker_id: 'sneaky', kinds: ['rename_layers'] });
  assert.equal(res.data, null);
  assert.equal(res.error?.code, '42501');
  assert.equal(res.status, 403);
  const anon = newClient();
  const res2 = await anon.rpc('claim_jobs', { worker_id: 'sneaky' });
  assert.equal(res2.error?.code, '42501');
  assert.equal(res2.status, 401);
});

test('the per-user rate limit answers 429 PT429 with a retry hint', async () => {
  const carol = await anonymousUser();
  try {
    for (let i = 0; i < 3; i++) {
      const ok = await carol.client.rpc('enqueue_job', { kind: 'generate_edits', payload: { i } });
      assert.equal(ok.error, null, JSON.stringify(ok.error));
    }
    const limited = await carol.client.rpc('enqueue_job', { kind: 'generate_edits', payload: { i: 3 } });
    assert.equal(limited.data, null);
    assert.equal(limited.status, 429);
    assert.equal(limited.error?.code, 'PT429');
    assert.match(limited.error?.hint ?? '', /^retry after \d+ seconds?/);
    // Other kinds are not limited by it.
    const other = await carol.client.rpc('enqueue_job', { kind: 'rename_layers', payload: {} });
    assert.equal(other.error, null);
  } finally {
    await cancelOpenJobs(carol.client);
    await closeClient(carol.client);
  }
});

test('an unknown kind is a 400 with the validation message', async () => {
  const res = await alice.client.rpc('enqueue_job', { kind: 'render_video' });
  assert.equal(res.status, 400);
  assert.equal(res.error?.code, '22023');
  assert.equal(res.error?.message, 'kind: unknown job kind "render_video"');
});
