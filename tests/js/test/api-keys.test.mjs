// Publishable and secret API keys as supabase-js sees them (docs/hosted-platform.md §1): the
// publishable key acts as `anon` until a user signs in, the secret key as `service_role`, and a
// bad `sb_` key is refused with hosted's 401 before any service. Runs in the `new` key flavour.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '@supabase/supabase-js';
import { KEY_FLAVOUR, URL_, anonymousUser, cancelOpenJobs, closeClient, newClient, serviceClient } from './support.mjs';

const skip = KEY_FLAVOUR !== 'new' && 'runs with SUPABASE_KEY_FLAVOUR=new';
const PUBLISHABLE = process.env.SUPABASE_PUBLISHABLE_KEY ?? '';

test('the publishable key alone is anon: it reads nothing', { skip }, async () => {
  const client = newClient(PUBLISHABLE);
  for (const table of ['jobs', 'job_kinds']) {
    const { status, error } = await client.from(table).select('*');
    assert.equal(status, 401, table);
    assert.equal(error.code, '42501', table);
  }
});

test('after sign-in the publishable key carries the user: own jobs, enqueued under RLS', { skip }, async () => {
  const user = await anonymousUser();
  try {
    const { data: job, error } = await user.client.rpc('enqueue_job', { kind: 'rename_layers', payload: { layers: [] } });
    assert.equal(error, null);
    assert.equal(job.user_id, user.id);
    const mine = await user.client.from('jobs').select('id,user_id');
    assert.deepEqual(mine.data, [{ id: job.id, user_id: user.id }]);
    const kinds = await user.client.from('job_kinds').select('kind');
    assert.ok(kinds.data.some((k) => k.kind === 'generate_design'));
  } finally {
    await cancelOpenJobs(user.client);
    await closeClient(user.client);
  }
});

test('the secret key is service_role: every bucket, and the worker RPCs', { skip }, async () => {
  const service = serviceClient();
  const buckets = await service.storage.listBuckets();
  assert.equal(buckets.error, null);
  assert.ok(buckets.data.some((b) => b.id === 'job-artifacts'));
  const claimed = await service.rpc('claim_jobs', { worker_id: 'js-keys', kinds: ['no_such_kind_js'], max_jobs: 1, lease_seconds: 30 });
  assert.equal(claimed.error?.code, '22023'); // reached the function: only service_role may call it
});

for (const [name, key, message] of [
  ['malformed', 'sb_publishable_bad', 'Invalid API key'],
  ['unregistered', `sb_publishable_${'Q'.repeat(22)}_${'z'.repeat(8)}`, 'Unregistered API key'],
]) {
  test(`a ${name} sb_ key is a 401 "${message}" on REST, Auth and Storage`, { skip }, async () => {
    const client = createClient(URL_, key, { auth: { persistSession: false, autoRefreshToken: false } });
    const rest = await client.from('job_kinds').select('kind');
    assert.equal(rest.status, 401);
    assert.equal(rest.error.message, message);
    const auth = await client.auth.signInAnonymously();
    assert.equal(auth.error?.status, 401);
    const storage = await client.storage.listBuckets();
    assert.ok(storage.error, 'Storage refused the key');
    assert.match(storage.error.message, new RegExp(message));
  });
}
