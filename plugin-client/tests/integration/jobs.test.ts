// The job client against a live stack: real PostgREST/GoTrue/Realtime
// protocols (or the devstack stand-in), the real SQL API and supabase-js.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SupabaseClient } from '@supabase/supabase-js';
import { ensureSignedIn } from '../../src/auth/session';
import { createSupabaseJobsBackend } from '../../src/jobs/backend';
import { JobClient } from '../../src/jobs/client';
import {
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  RateLimitError,
  ValidationError,
} from '../../src/jobs/errors';
import type { JobUpdate } from '../../src/jobs/handle';
import { memoryStorage, serviceClient, stack, TestWorker, userClient } from './env';

const WAIT = { timeout: 10_000, interval: 50 };

describe.skipIf(!stack)('job client against a Supabase stack', () => {
  const clients: { supabase: SupabaseClient; jobs: JobClient }[] = [];
  const userIds: string[] = [];
  let worker: TestWorker;

  async function newUser() {
    const storage = memoryStorage();
    const supabase = userClient(storage);
    const uid = await ensureSignedIn(supabase);
    userIds.push(uid);
    const jobs = JobClient.fromSupabase(supabase, { onError: () => undefined });
    await jobs.start();
    clients.push({ supabase, jobs });
    return { supabase, jobs, uid, storage };
  }

  beforeAll(() => {
    worker = new TestWorker(serviceClient());
  });

  afterAll(async () => {
    for (const { supabase, jobs } of clients) {
      await jobs.close();
      await supabase.removeAllChannels();
    }
    await worker?.cleanup(userIds);
  });

  it('signs in anonymously and keeps the session in the given storage', async () => {
    const { uid, storage, jobs } = await newUser();
    expect(uid).toMatch(/^[0-9a-f-]{36}$/);
    expect([...storage.data.values()].some((v) => v.includes(uid))).toBe(true);
    expect(jobs.connection).toBe('subscribed');
  });

  it('enqueues a job that belongs to the user; the same idempotency key returns the same job', async () => {
    const { jobs, uid } = await newUser();
    const a = await jobs.submit('generate_design', { prompt: 'a card' }, { idempotencyKey: 'it-same-key' });
    const b = await jobs.submit('generate_design', { prompt: 'a card' }, { idempotencyKey: 'it-same-key' });
    expect(b.id).toBe(a.id);
    expect(a.snapshot.status).toBe('queued');
    expect(a.snapshot.row?.user_id).toBe(uid);
  });

  it('streams status, progress and partial text live, then resolves the result', async () => {
    const { jobs } = await newUser();
    const handle = await jobs.submit('generate_edits', { prompt: 'tighten the copy' });
    const updates: JobUpdate[] = [];
    handle.onUpdate((u) => updates.push(u));

    await worker.start(handle.id);
    await vi.waitFor(() => expect(handle.snapshot.status).toBe('running'), WAIT);
    await worker.progress(handle.id, { percent: 40, message: 'drafting' });
    await worker.progress(handle.id, { partial: 'Shorter ' });
    await worker.progress(handle.id, { partial: 'headline.' });
    await vi.waitFor(() => expect(handle.snapshot.partialText).toBe('Shorter headline.'), WAIT);
    expect(handle.snapshot.progress).toEqual({ percent: 40, message: 'drafting' });
    await worker.complete(handle.id, { text: 'Shorter headline.' });

    await expect(handle.result()).resolves.toEqual({ text: 'Shorter headline.' });
    expect(handle.snapshot.progressHistory.map((p) => p.message)).toContain('drafting');
    expect(updates.some((u) => u.type === 'event' && u.event.type === 'partial')).toBe(true);
  });

  it('reads a large result from the row when the broadcast leaves it out', async () => {
    const { jobs } = await newUser();
    const handle = await jobs.submit('rename_layers', { layers: [] });
    const names = Array.from({ length: 400 }, (_, i) => ({ id: `1:${i}`, name: `Layer name number ${i}` }));
    await worker.start(handle.id);
    await worker.complete(handle.id, { names });
    await expect(handle.result()).resolves.toEqual({ names });
  });

  it('catches up after a Realtime reconnect: updates made while disconnected are not lost', async () => {
    const { jobs, supabase } = await newUser();
    const handle = await jobs.submit('generate_design', { prompt: 'offline' });
    supabase.realtime.disconnect();
    await worker.start(handle.id);
    await worker.progress(handle.id, { percent: 70, message: 'while you were away' });
    await worker.progress(handle.id, { partial: 'missed text' });
    expect(handle.snapshot.status).toBe('queued');
    supabase.realtime.connect();
    await vi.waitFor(() => expect(handle.snapshot.progress?.message).toBe('while you were away'), WAIT);
    expect(handle.snapshot.status).toBe('running');
    await vi.waitFor(() => expect(handle.snapshot.partialText).toBe('missed text'), WAIT);
  });

  it('rejects result() with JobFailedError carrying the worker error', async () => {
    const { jobs } = await newUser();
    const handle = await jobs.submit('generate_design', { prompt: 'fail me' });
    await worker.start(handle.id);
    await worker.fail(handle.id, { type: 'invalid_output', message: 'the model returned no tree' }, false);
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    expect((error as JobFailedError).message).toMatch(/no tree/);
  });

  it('cancels a queued job', async () => {
    const { jobs } = await newUser();
    const handle = await jobs.submit('generate_design', { prompt: 'never mind' });
    const snapshot = await handle.cancel();
    expect(snapshot.status).toBe('cancelled');
    await expect(handle.result()).rejects.toBeInstanceOf(JobCancelledError);
  });

  it('surfaces validation errors with the field', async () => {
    const { supabase } = await newUser();
    const backend = createSupabaseJobsBackend(supabase);
    const error = await backend.enqueue({ kind: 'make_coffee', payload: {}, idempotencyKey: 'v1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('kind');
  });

  it('surfaces the per-user rate limit as RateLimitError with a retry delay', async () => {
    const { jobs } = await newUser();
    let caught: unknown = null;
    // generate_image allows a few jobs per minute per user.
    for (let i = 0; i < 20 && caught === null; i += 1) {
      await jobs.submit('generate_image', { prompt: `img ${i}` }).catch((e: unknown) => {
        caught = e;
      });
    }
    expect(caught).toBeInstanceOf(RateLimitError);
    expect((caught as RateLimitError).retryAfterSeconds).toBeGreaterThan(0);
  });

  it("isolates users: another user can neither read nor cancel someone's job", async () => {
    const alice = await newUser();
    const bob = await newUser();
    const handle = await alice.jobs.submit('generate_design', { prompt: 'private' });
    const rows = await createSupabaseJobsBackend(bob.supabase).fetchJobs([handle.id]);
    expect(rows).toEqual([]);
    await expect(bob.jobs.cancel(handle.id)).rejects.toBeInstanceOf(JobNotFoundError);
    // Bob's channel never hears about Alice's job.
    await worker.start(handle.id);
    await vi.waitFor(() => expect(handle.snapshot.status).toBe('running'), WAIT);
    expect(bob.jobs.snapshot(handle.id)).toBeUndefined();
  });
});
