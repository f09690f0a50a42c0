import { describe, expect, it, vi } from 'vitest';
import { JobClient } from '../../src/jobs/client';
import { ConflictError, JobCancelledError, JobFailedError, RateLimitError } from '../../src/jobs/errors';
import type { JobUpdate } from '../../src/jobs/handle';
import { bump, FakeBackend } from '../support/fake-backend';

async function started(options: { subscribeTimeoutMs?: number } = {}) {
  const backend = new FakeBackend();
  const errors: Error[] = [];
  const client = new JobClient(backend, { onError: (e) => errors.push(e), ...options });
  const starting = client.start();
  // The channel joins asynchronously; SUBSCRIBED releases start().
  await vi.waitFor(() => expect(backend.handlers).not.toBeNull());
  backend.status('SUBSCRIBED');
  await starting;
  return { backend, client, errors };
}

const payload = { prompt: 'a card' };

describe('JobClient', () => {
  it('joins jobs:<uid> before enqueueing, then returns a handle with the inserted row', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_design', payload, { idempotencyKey: 'k-1', priority: 2 });
    expect(backend.calls.slice(0, 3)).toEqual(['userId', 'subscribe:jobs:user-1', 'enqueue']);
    expect(backend.enqueued[0]).toEqual({ kind: 'generate_design', payload, idempotencyKey: 'k-1', priority: 2 });
    expect(handle.id).toBe('job-1');
    expect(handle.snapshot.status).toBe('queued');
    expect(client.connection).toBe('subscribed');
  });

  it('generates an idempotency key when none is given', async () => {
    const { backend, client } = await started();
    await client.submit('generate_design', payload);
    await client.submit('generate_design', payload);
    const [a, b] = backend.enqueued.map((e) => e.idempotencyKey);
    expect(a).toMatch(/.{8,}/);
    expect(a).not.toBe(b);
  });

  it('delivers broadcasts to callbacks and the async iterator, and resolves result()', async () => {
    const { backend, client } = await started();
    const seen: string[] = [];
    const handle = await client.submit('generate_design', payload, {
      onUpdate: (u) => seen.push(u.type === 'state' ? u.snapshot.status : `event:${u.event.type}`),
    });
    const iterated: JobUpdate[] = [];
    const iterating = (async () => {
      for await (const update of handle) iterated.push(update);
    })();

    backend.update('job-1', { status: 'running', progress: { percent: 30, message: 'thinking' } });
    backend.broadcastEvent({ id: 1, job_id: 'job-1', type: 'partial', data: { text: 'Hi' }, created_at: bump(backend.table.get('job-1')!.updated_at) });
    backend.update('job-1', { status: 'succeeded', result: { tree: { type: 'FRAME', name: 'x' } }, progress: { percent: 100, message: 'done' } });

    await expect(handle.result()).resolves.toEqual({ tree: { type: 'FRAME', name: 'x' } });
    await iterating;
    // onUpdate is attached before the inserted row is applied, so it sees 'queued' too.
    expect(seen).toEqual(['queued', 'running', 'event:partial', 'succeeded']);
    // The iterator starts with the current state and ends after the terminal one.
    expect(iterated.map((u) => (u.type === 'state' ? u.snapshot.status : u.event.type))).toEqual([
      'queued',
      'running',
      'partial',
      'succeeded',
    ]);
    expect(handle.snapshot.partialText).toBe('Hi');
    expect(handle.snapshot.progressHistory.map((p) => p.percent)).toEqual([30, 100]);
  });

  it('ignores a stale broadcast that arrives after a newer one', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_design', payload);
    const running = backend.update('job-1', { status: 'running' }, { broadcast: false });
    const done = backend.update('job-1', { status: 'succeeded', result: { ok: true } }, { broadcast: false });
    backend.broadcastJob(done);
    backend.broadcastJob(running);
    expect(handle.snapshot.status).toBe('succeeded');
    await expect(handle.result()).resolves.toEqual({ ok: true });
  });

  it('keeps updates that arrive between the insert and the RPC answer', async () => {
    const { backend, client } = await started();
    // The worker is fast: the job starts before enqueue's response is processed.
    backend.afterInsert = (row) => {
      backend.table.set(row.id, row);
      backend.update(row.id, { status: 'running' });
    };
    const handle = await client.submit('generate_design', payload);
    // The older enqueue row must not overwrite the newer broadcast.
    expect(handle.snapshot.status).toBe('running');
  });

  it('re-reads unfinished watched jobs after every (re)subscribe', async () => {
    const { backend, client } = await started();
    const a = await client.submit('generate_design', payload);
    const b = await client.submit('generate_design', payload);
    backend.update(b.id, { status: 'succeeded', result: { x: 1 } });
    // Connection drops; meanwhile the job advances without any broadcast reaching us.
    backend.status('CHANNEL_ERROR');
    expect(client.connection).toBe('reconnecting');
    backend.update(a.id, { status: 'running', progress: { percent: 70, message: 'late' } }, { broadcast: false });
    backend.fetched.length = 0;
    backend.status('SUBSCRIBED');
    await client.idle();
    // Only the unfinished job is read back.
    expect(backend.fetched).toEqual([[a.id]]);
    expect(a.snapshot.status).toBe('running');
    expect(a.snapshot.progress).toEqual({ percent: 70, message: 'late' });
  });

  it('recovers streamed text and progress events missed while disconnected', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_edits', { text: 'x' });
    backend.update(handle.id, { status: 'running' });
    const at = (n: number) => `2025-11-19T10:00:01.00000${n}+00:00`;
    backend.broadcastEvent({ id: 1, job_id: handle.id, type: 'partial', data: { text: 'One ' }, created_at: at(1) });
    backend.status('CLOSED');
    // Missed: never broadcast to us.
    backend.broadcastEvent({ id: 2, job_id: handle.id, type: 'partial', data: { text: 'two ' }, created_at: at(2) }, { broadcast: false });
    backend.broadcastEvent({ id: 3, job_id: handle.id, type: 'progress', data: { percent: 80, message: 'nearly' }, created_at: at(3) }, { broadcast: false });
    backend.status('SUBSCRIBED');
    // Live again: this one arrives before the re-read finishes.
    backend.broadcastEvent({ id: 4, job_id: handle.id, type: 'partial', data: { text: 'three' }, created_at: at(4) });
    await client.idle();
    expect(backend.fetchedEvents).toContainEqual([handle.id]);
    expect(handle.snapshot.partialText).toBe('One two three');
    expect(handle.snapshot.progressHistory.map((p) => p.message)).toContain('nearly');
  });

  it('treats "already finished" on cancel as the final state, not an error', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_design', payload);
    backend.update(handle.id, { status: 'succeeded', result: { done: true } }, { broadcast: false });
    backend.cancelError = new ConflictError('job_id: job already succeeded; nothing to cancel');
    const snapshot = await handle.cancel();
    expect(snapshot.status).toBe('succeeded');
    await expect(handle.result()).resolves.toEqual({ done: true });
  });

  it('fetches the row when the broadcast left a large result out', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_image', { prompt: 'cat' });
    backend.update(handle.id, { status: 'succeeded', result: { path: 'u/1.png', mime_type: 'image/png', width: 1, height: 1 } }, { omitResult: true });
    await expect(handle.result()).resolves.toEqual({ path: 'u/1.png', mime_type: 'image/png', width: 1, height: 1 });
    expect(backend.fetched).toContainEqual([handle.id]);
  });

  it('rejects result() with JobFailedError carrying the typed error', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_design', payload);
    const result = handle.result();
    backend.update(handle.id, {
      status: 'failed',
      error: { type: 'provider_error', message: 'model refused', retryable: false, attempt: 3 },
    });
    const error = await result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    expect((error as JobFailedError).errorType).toBe('provider_error');
    expect((error as JobFailedError).message).toBe('model refused');
    expect((error as JobFailedError).jobId).toBe(handle.id);
  });

  it('cancels through the RPC and rejects result() with JobCancelledError', async () => {
    const { backend, client } = await started();
    const handle = await client.submit('generate_design', payload);
    const snapshot = await handle.cancel();
    expect(backend.calls).toContain(`cancel:${handle.id}`);
    expect(snapshot.status).toBe('cancelled');
    await expect(handle.result()).rejects.toBeInstanceOf(JobCancelledError);
    // Cancelling a finished job does not call the server again.
    await handle.cancel();
    expect(backend.calls.filter((c) => c.startsWith('cancel:'))).toHaveLength(1);
  });

  it('passes typed enqueue errors through to the caller', async () => {
    const { backend, client } = await started();
    backend.enqueueError = new RateLimitError('slow down', 12);
    const error = await client.submit('generate_design', payload).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfterSeconds).toBe(12);
  });

  it('watch() re-attaches to an existing job and reads its row', async () => {
    const { backend, client } = await started();
    const original = await client.submit('generate_design', payload);
    backend.update(original.id, { status: 'succeeded', result: { r: 1 } }, { broadcast: false });
    const other = new JobClient(backend, { onError: () => undefined });
    const starting = other.start();
    await vi.waitFor(() => expect(backend.calls.filter((c) => c.startsWith('subscribe')).length).toBe(2));
    const handle = other.watch(original.id, 'generate_design');
    backend.status('SUBSCRIBED');
    await starting;
    await other.idle();
    await expect(handle.result()).resolves.toEqual({ r: 1 });
    expect(() => other.watch(original.id, 'generate_image')).toThrowError(/not generate_image/);
  });

  it('start() goes ahead after the subscribe timeout and catches up on SUBSCRIBED', async () => {
    vi.useFakeTimers();
    try {
      const backend = new FakeBackend();
      const client = new JobClient(backend, { subscribeTimeoutMs: 1000, onError: () => undefined });
      const submitting = client.submit('generate_design', payload);
      await vi.advanceTimersByTimeAsync(1000);
      const handle = await submitting;
      expect(client.connection).toBe('connecting');
      backend.update(handle.id, { status: 'running' }, { broadcast: false });
      backend.status('SUBSCRIBED');
      await client.idle();
      expect(handle.snapshot.status).toBe('running');
    } finally {
      vi.useRealTimers();
    }
  });

  it('reports malformed broadcasts without breaking', async () => {
    const { backend, client, errors } = await started();
    const handle = await client.submit('generate_design', payload);
    backend.handlers?.onJob({ id: handle.id, status: 'weird', updated_at: 'x' });
    backend.handlers?.onJobEvent({ nope: true });
    expect(errors).toHaveLength(2);
    backend.update(handle.id, { status: 'running' });
    expect(handle.snapshot.status).toBe('running');
  });

  it('close() leaves the channel', async () => {
    const { backend, client } = await started();
    await client.close();
    expect(backend.closed).toBe(true);
    expect(client.connection).toBe('closed');
    await expect(client.start()).rejects.toThrowError(/closed/);
  });
});
