// The job client against a live stack: real PostgREST/GoTrue/Realtime
// protocols (or the devstack stand-in), the real SQL API, supabase-js, and the
// real Python worker (started by tests/support/worker-global-setup.ts) calling
// the model stand-ins.
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import type { SupabaseClient } from '@supabase/supabase-js';
import { ensureSignedIn } from '../../src/auth/session';
import { createSupabaseJobsBackend } from '../../src/jobs/backend';
import { JobClient } from '../../src/jobs/client';
import {
  BudgetExceededError,
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  RateLimitError,
  ValidationError,
} from '../../src/jobs/errors';
import type { JobHandle, JobUpdate } from '../../src/jobs/handle';
import type { JobKind, Layer } from '../../src/jobs/generated/types';
import { withStandinFault } from '../support/standin';
import { cleanupUsers, memoryStorage, serviceClient, serviceJob, stack, userClient } from './env';

const WAIT = { timeout: 30_000, interval: 50 };
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Collects every update of a handle from the moment it is returned. */
function record<K extends JobKind>(handle: JobHandle<K>): JobUpdate[] {
  const updates: JobUpdate[] = [];
  handle.onUpdate((u) => updates.push(u));
  return updates;
}

function layers(count: number, prefix: string): [Layer, ...Layer[]] {
  const root: Layer = { id: `${prefix}:0`, type: 'FRAME', name: 'Frame 1' };
  const rest: Layer[] = Array.from({ length: count - 1 }, (_, i) =>
    i % 2 === 0
      ? { id: `${prefix}:${i + 1}`, type: 'TEXT', name: `Text ${i + 1}`, text: `Headline number ${i + 1}`, parent_id: root.id }
      : { id: `${prefix}:${i + 1}`, type: 'RECTANGLE', name: `Rectangle ${i + 1}`, parent_id: root.id },
  );
  return [root, ...rest];
}

describe.skipIf(!stack)('job client against a Supabase stack and the worker', () => {
  const clients: { supabase: SupabaseClient; jobs: JobClient }[] = [];
  const userIds: string[] = [];

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

  afterAll(async () => {
    for (const { supabase, jobs } of clients) {
      await jobs.close();
      await supabase.removeAllChannels();
    }
    await cleanupUsers(userIds);
  });

  it('runs with a healthy worker', async () => {
    const url = inject('workerUrl');
    expect(url).not.toBe('');
    const response = await fetch(`${url}/health`);
    expect(response.status).toBe(200);
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
    expect(a.snapshot.row?.user_id).toBe(uid);
    await expect(a.result()).resolves.toMatchObject({ root: { type: 'FRAME' } });
  });

  it('generate_design: progress arrives live, then the typed design tree', async () => {
    const { jobs } = await newUser();
    const handle = await jobs.submit('generate_design', {
      prompt: 'A sign-in card with an email field and a submit button',
      design_system: { summary: 'Colors: Brand #0d99ff', components: [{ name: 'Button', key: 'a1b2c3d4e5f60718293a4b5c' }] },
      platform: 'desktop',
    });
    const updates = record(handle);
    const result = await handle.result();
    expect(result.node_count).toBeGreaterThanOrEqual(1);
    expect(result.root.type).toBe('FRAME');
    expect(result.root.name.length).toBeGreaterThan(0);
    // The worker reports "designing" (5 %) and "<n> nodes" (95 %).
    const history = handle.snapshot.progressHistory;
    expect(history.map((p) => p.percent)).toEqual(expect.arrayContaining([5, 95]));
    expect(history.map((p) => p.message)).toContain(`${result.node_count} nodes`);
    expect(updates.some((u) => u.type === 'event' && u.event.type === 'progress')).toBe(true);
    expect(handle.snapshot.status).toBe('succeeded');
  });

  it('rename_layers: batch progress, then one name per layer (a large result is read from the row)', async () => {
    const { jobs } = await newUser();
    const input = layers(300, 'r');
    const handle = await jobs.submit('rename_layers', { layers: input, context: 'A news feed' });
    const updates = record(handle);
    const result = await handle.result();
    expect(result.names.map((n) => n.id)).toEqual(input.map((l) => l.id));
    for (const { name } of result.names) expect(name.trim().length).toBeGreaterThan(0);
    // 300 layers = 12 batches of 25, each reported as it finishes. Batches run
    // concurrently, so reports may land out of order, and completing the job
    // repeats the last one at 100 %.
    const messages = new Set(handle.snapshot.progressHistory.map((p) => p.message));
    expect([...messages].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `batch ${i + 1} of 12`).sort());
    expect(handle.snapshot.progress?.percent).toBe(100);
    expect(updates.filter((u) => u.type === 'event' && u.event.type === 'progress').length).toBeGreaterThan(0);
    // A result this size (> 8 KiB) is left out of the broadcast; result() read the row.
    expect(JSON.stringify(result).length).toBeGreaterThan(8192);
  });

  it('generate_edits: streamed partial text arrives live, then the variants', async () => {
    const { jobs } = await newUser();
    const handle = await jobs.submit('generate_edits', { text: 'Sign in to your account to continue', instruction: 'friendlier', variants: 2 });
    const updates = record(handle);
    const result = await handle.result();
    expect(result.variants).toHaveLength(2);
    for (const v of result.variants) {
      expect(v.title.length).toBeGreaterThan(0);
      expect(v.text.length).toBeGreaterThan(0);
    }
    const partials = updates.filter((u) => u.type === 'event' && u.event.type === 'partial');
    expect(partials.length).toBeGreaterThan(0);
    // The streamed text is the model's JSON answer, which contains every variant.
    for (const v of result.variants) expect(handle.snapshot.partialText).toContain(v.title);
  });

  it('generate_image: the result path is in Storage; the owner can download it, nobody else can', async () => {
    const { jobs, supabase, uid } = await newUser();
    const handle = await jobs.submit('generate_image', { prompt: 'A red square on white', aspect_ratio: '1:1' });
    const result = await handle.result();
    expect(result.path.startsWith(`${uid}/${handle.id}/`)).toBe(true);
    expect(result.mime_type).toMatch(/^image\//);
    expect(result.width).toBeGreaterThan(0);
    expect(handle.snapshot.progressHistory.map((p) => p.message)).toEqual(expect.arrayContaining(['generating image', 'uploading']));

    const { data, error } = await supabase.storage.from('job-artifacts').download(result.path);
    expect(error).toBeNull();
    const bytes = new Uint8Array(await data!.arrayBuffer());
    expect(bytes.length).toBe(result.bytes);
    if (result.mime_type === 'image/png') expect(Array.from(bytes.slice(0, 8))).toEqual(PNG_SIGNATURE);

    const stranger = userClient();
    userIds.push(await ensureSignedIn(stranger));
    const denied = await stranger.storage.from('job-artifacts').download(result.path);
    expect(denied.data).toBeNull();
    expect(denied.error).not.toBeNull();
  });

  it('catches up after a Realtime reconnect: a job that finished while disconnected is not lost', async () => {
    const { jobs, supabase } = await newUser();
    supabase.realtime.disconnect();
    const handle = await jobs.submit('generate_edits', { text: 'Offline copy to tighten', variants: 1 });
    // Bounded wait on the row itself (service role), not on the client under test.
    await vi.waitFor(async () => expect((await serviceJob(handle.id))?.status).toBe('succeeded'), WAIT);
    expect(handle.snapshot.status).not.toBe('succeeded');
    expect(handle.snapshot.partialText).toBe('');
    supabase.realtime.connect();
    const result = await handle.result();
    expect(result.variants).toHaveLength(1);
    expect(handle.snapshot.status).toBe('succeeded');
    // The streamed text and progress were re-read from job_events.
    await vi.waitFor(() => expect(handle.snapshot.partialText).toContain(result.variants[0]!.title), WAIT);
  });

  it('rejects result() with JobFailedError when the worker refuses the payload', async () => {
    const { jobs } = await newUser();
    // Type-correct, but the worker's model requires unique layer ids.
    const handle = await jobs.submit('rename_layers', {
      layers: [
        { id: 'dup', type: 'FRAME' },
        { id: 'dup', type: 'TEXT' },
      ],
    });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    expect((error as JobFailedError).message).toMatch(/unique/);
    expect(handle.snapshot.status).toBe('failed');
  });

  it('cancels a running job: the worker stops it and result() rejects with JobCancelledError', async () => {
    const { jobs } = await newUser();
    const marker = `hold-me-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    // The stand-in holds the model call for this payload, so the job stays running.
    await withStandinFault({ provider: 'anthropic', kind: 'timeout', count: 5, match: marker, hold_seconds: 30 }, async () => {
      const handle = await jobs.submit('generate_design', { prompt: `A settings page ${marker}` });
      await vi.waitFor(() => expect(handle.snapshot.status).toBe('running'), WAIT);
      const requested = await handle.cancel();
      expect(requested.cancelRequested).toBe(true);
      const error = await handle.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JobCancelledError);
      expect(handle.snapshot.status).toBe('cancelled');
    });
  });

  it('cancels a queued job', async () => {
    const { jobs } = await newUser();
    const marker = `queued-${Date.now().toString(36)}`;
    await withStandinFault({ provider: 'anthropic', kind: 'timeout', count: 5, match: marker, hold_seconds: 30 }, async () => {
      const blocker = await jobs.submit('generate_edits', { text: `Hold ${marker}`, variants: 1 });
      await vi.waitFor(() => expect(blocker.snapshot.status).toBe('running'), WAIT);
      // generate_edits allows one running job per user: the second one stays queued.
      const handle = await jobs.submit('generate_edits', { text: 'Second copy', variants: 1 });
      const snapshot = await handle.cancel();
      expect(snapshot.status).toBe('cancelled');
      await expect(handle.result()).rejects.toBeInstanceOf(JobCancelledError);
      await blocker.cancel();
      await expect(blocker.result()).rejects.toBeInstanceOf(JobCancelledError);
    });
  });

  it('surfaces validation errors with the field', async () => {
    const { supabase } = await newUser();
    const backend = createSupabaseJobsBackend(supabase);
    const error = await backend.enqueue({ kind: 'make_coffee', payload: {}, idempotencyKey: 'v1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('kind');
  });

  it('answers an identical request from the result cache: succeeded and cached at once, cost 0; cache: false runs it', async () => {
    const operator = serviceClient();
    const setTtl = async (ttl: number | null) => {
      const { error } = await operator.from('job_kinds').update({ cache_ttl_seconds: ttl }).eq('kind', 'generate_design');
      expect(error).toBeNull();
    };
    await setTtl(3600);
    try {
      const { jobs } = await newUser();
      const prompt = { prompt: `A cached hero section ${Date.now()}` };
      const first = await jobs.submit('generate_design', prompt);
      const result = await first.result();
      expect(first.cached).toBe(false);
      // Identical request: the row enqueue_job returns is already succeeded, with the stored result.
      const hit = await jobs.submit('generate_design', prompt);
      expect(hit.cached).toBe(true);
      expect(hit.snapshot.status).toBe('succeeded');
      expect(hit.snapshot.row?.cached_from).toBe(first.id);
      expect(hit.snapshot.row?.attempts).toBe(0);
      expect(await hit.result()).toEqual(result);
      expect((await jobs.jobCost(hit.id)).costUsd).toBe(0);
      expect((await jobs.jobCost(hit.id)).calls).toBe(0);
      // Bypassed: a new job the worker runs.
      const fresh = await jobs.submit('generate_design', prompt, { cache: false });
      expect(fresh.cached).toBe(false);
      expect(fresh.snapshot.status).not.toBe('succeeded');
      await fresh.result();
      expect((await jobs.jobCost(fresh.id)).calls).toBeGreaterThanOrEqual(1);
    } finally {
      await setTtl(null);
    }
  });

  it('shows spend: what a finished job cost and what is left of the budget; a spent budget is BudgetExceededError', async () => {
    const { jobs, uid } = await newUser();
    const before = await jobs.spend();
    expect(before).toMatchObject({ plan: 'free', budgetUsd: 5, spentUsd: 0, remainingUsd: 5 });
    const handle = await jobs.submit('generate_design', { prompt: 'A pricing card with three tiers' });
    await handle.result();
    // The worker records each model call before it records the outcome.
    const cost = await jobs.jobCost(handle.id);
    expect(cost.calls).toBeGreaterThanOrEqual(1);
    expect(cost.models).toBe('anthropic/claude-haiku-4-5');
    expect(cost.inputTokens).toBeGreaterThan(0);
    expect(cost.costUsd).toBeGreaterThan(0);
    const after = await jobs.spend();
    expect(after?.spentUsd).toBeCloseTo(cost.costUsd, 6);
    expect(after?.remainingUsd).toBeCloseTo(5 - cost.costUsd, 6);
    expect(after?.reservedUsd).toBe(0);
    // An operator moves the user to a plan whose budget this job already spent.
    const operator = serviceClient();
    const plan = `spent_${uid.replace(/-/g, '').slice(0, 12)}`;
    for (const [fn, args] of [
      ['set_plan', { plan, monthly_budget_usd: 0.0001 }],
      ['set_user_plan', { user_id: uid, plan }],
    ] as const) {
      const { error } = await operator.rpc(fn, args);
      expect(error).toBeNull();
    }
    const refused = await jobs.submit('generate_design', { prompt: 'Another card' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BudgetExceededError);
    const budget = refused as BudgetExceededError;
    expect(budget.status).toBe(402);
    expect(budget.budgetUsd).toBe(0);  // 0.0001 is rounded to cents
    expect(budget.spentUsd).toBeCloseTo(cost.costUsd, 4);
    expect(budget.resetsAt).toMatch(/^\d{4}-\d{2}-01 00:00:00\+00$/);
    // Leave no plan behind in a shared stack.
    for (const table of ['user_plans', 'plans'] as const) {
      const { error } = await operator.from(table).delete().eq('plan', plan);
      expect(error).toBeNull();
    }
  });

  it('surfaces the per-user rate limit (generate_edits: 3 per minute) as RateLimitError with a retry delay', async () => {
    const { jobs } = await newUser();
    const accepted: JobHandle<'generate_edits'>[] = [];
    let caught: unknown = null;
    for (let i = 0; i < 4 && caught === null; i += 1) {
      await jobs.submit('generate_edits', { text: `Copy number ${i}`, variants: 1 }).then(
        (h) => accepted.push(h),
        (e: unknown) => {
          caught = e;
        },
      );
    }
    expect(accepted).toHaveLength(3);
    expect(caught).toBeInstanceOf(RateLimitError);
    expect((caught as RateLimitError).retryAfterSeconds).toBeGreaterThan(0);
    expect((caught as RateLimitError).retryAfterSeconds).toBeLessThanOrEqual(60);
  });

  it("isolates users: another user can neither read nor cancel someone's job, nor hear about it", async () => {
    const alice = await newUser();
    const bob = await newUser();
    const handle = await alice.jobs.submit('generate_design', { prompt: 'private' });
    const rows = await createSupabaseJobsBackend(bob.supabase).fetchJobs([handle.id]);
    expect(rows).toEqual([]);
    await expect(bob.jobs.cancel(handle.id)).rejects.toBeInstanceOf(JobNotFoundError);
    await expect(handle.result()).resolves.toMatchObject({ root: { type: 'FRAME' } });
    expect(bob.jobs.snapshot(handle.id)).toBeUndefined();
  });
});
