// The supabase-js adapter, exercised through the real supabase-js client: REST
// calls go to a stubbed fetch, Realtime to a minimal local Phoenix endpoint.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { createSupabaseJobsBackend, type ChannelStatus } from '../../src/jobs/backend';
import { JobClient } from '../../src/jobs/client';
import { JobClientError, NetworkError, PermissionError, RateLimitError, ValidationError } from '../../src/jobs/errors';
import { makeRow } from '../support/fake-backend';
import { MiniRealtime } from '../support/mini-realtime';

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
const ACCESS_TOKEN = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'user-1', role: 'authenticated', exp: 4102444800 })}.sig`;
const SESSION = {
  access_token: ACCESS_TOKEN,
  token_type: 'bearer',
  expires_in: 3600,
  expires_at: 4102444800,
  refresh_token: 'refresh',
  user: { id: 'user-1', aud: 'authenticated', role: 'authenticated', app_metadata: {}, user_metadata: {}, created_at: '2025-01-01T00:00:00Z' },
};

interface Call {
  method: string;
  url: URL;
  headers: Headers;
  body: unknown;
}

let realtime: MiniRealtime;
let calls: Call[];
let respond: (call: Call) => Response;
let supabase: SupabaseClient;

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

beforeEach(async () => {
  realtime = await MiniRealtime.start();
  calls = [];
  respond = () => json(500, { message: 'unexpected call' });
  const memory = new Map<string, string>([['test-auth', JSON.stringify(SESSION)]]);
  supabase = createClient(realtime.url, 'anon-key', {
    auth: {
      storageKey: 'test-auth',
      storage: {
        getItem: async (k) => memory.get(k) ?? null,
        setItem: async (k, v) => void memory.set(k, v),
        removeItem: async (k) => void memory.delete(k),
      },
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
    realtime: { reconnectAfterMs: () => 50 },
    global: {
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
        const body = typeof init?.body === 'string' && init.body !== '' ? (JSON.parse(init.body) as unknown) : undefined;
        const call = { method: init?.method ?? 'GET', url, headers: new Headers(init?.headers), body };
        calls.push(call);
        return respond(call);
      },
    },
  });
});

afterEach(async () => {
  await supabase.removeAllChannels();
  supabase.realtime.disconnect();
  await realtime.close();
});

describe('supabase jobs backend: REST', () => {
  it('calls enqueue_job with named args, omitting unset optional ones, as the signed-in user', async () => {
    respond = () => json(200, makeRow({ id: 'j1' }));
    const backend = createSupabaseJobsBackend(supabase);
    const row = await backend.enqueue({ kind: 'generate_design', payload: { prompt: 'x' }, idempotencyKey: 'k1', dependsOn: 'j0' });
    expect(row).toMatchObject({ id: 'j1' });
    const call = calls.at(-1)!;
    expect(call.method).toBe('POST');
    expect(call.url.pathname).toBe('/rest/v1/rpc/enqueue_job');
    expect(call.body).toEqual({ kind: 'generate_design', payload: { prompt: 'x' }, idempotency_key: 'k1', depends_on: 'j0' });
    expect(call.headers.get('authorization')).toBe(`Bearer ${ACCESS_TOKEN}`);
  });

  it('sends cache only when the caller bypasses (or names) it', async () => {
    respond = () => json(200, makeRow({ id: 'j2', cached: false }));
    const backend = createSupabaseJobsBackend(supabase);
    await backend.enqueue({ kind: 'generate_design', payload: {}, idempotencyKey: 'k2', cache: false });
    expect(calls.at(-1)!.body).toEqual({ kind: 'generate_design', payload: {}, idempotency_key: 'k2', cache: false });
  });

  it('turns a PT429 response into RateLimitError with retryAfterSeconds', async () => {
    respond = () =>
      json(429, { code: 'PT429', message: 'rate limit exceeded', details: '10 jobs per minute', hint: 'retry after 12 seconds' });
    const error = await createSupabaseJobsBackend(supabase)
      .enqueue({ kind: 'generate_design', payload: {}, idempotencyKey: 'k' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfterSeconds).toBe(12);
    expect((error as RateLimitError).status).toBe(429);
  });

  it('turns 22023 into ValidationError and 42501 into PermissionError', async () => {
    const backend = createSupabaseJobsBackend(supabase);
    respond = () => json(400, { code: '22023', message: 'payload is too large (300001 bytes, max 262144)', details: null, hint: null });
    const validation = await backend.enqueue({ kind: 'generate_design', payload: {}, idempotencyKey: 'k' }).catch((e: unknown) => e);
    expect(validation).toBeInstanceOf(ValidationError);
    expect((validation as ValidationError).field).toBe('payload');

    respond = () => json(403, { code: '42501', message: 'permission denied for function cancel_job', details: null, hint: null });
    await expect(backend.cancel('j1')).rejects.toBeInstanceOf(PermissionError);
  });

  it('reports an unreachable server as NetworkError', async () => {
    respond = () => {
      throw new TypeError('fetch failed');
    };
    await expect(
      createSupabaseJobsBackend(supabase).enqueue({ kind: 'generate_design', payload: {}, idempotencyKey: 'k' }),
    ).rejects.toBeInstanceOf(NetworkError);
  });

  it('calls cancel_job with job_id and accepts a SETOF-style array answer', async () => {
    respond = () => json(200, [makeRow({ id: 'j9', status: 'cancelled' })]);
    const row = await createSupabaseJobsBackend(supabase).cancel('j9');
    expect(row).toMatchObject({ id: 'j9', status: 'cancelled' });
    expect(calls.at(-1)?.url.pathname).toBe('/rest/v1/rpc/cancel_job');
    expect(calls.at(-1)?.body).toEqual({ job_id: 'j9' });
  });

  it('reads job_events of the given jobs in id order, page by page', async () => {
    const total = 1500;
    respond = (call) => {
      const after = Number(/^gt\.(\d+)$/.exec(call.url.searchParams.get('id') ?? '')?.[1] ?? NaN);
      const limit = Number(call.url.searchParams.get('limit'));
      const rows = [];
      for (let id = after + 1; id <= Math.min(total, after + limit); id += 1) {
        rows.push({ id, job_id: 'j1', type: 'partial', data: { text: 'x' }, created_at: 't' });
      }
      return json(200, rows);
    };
    const events = (await createSupabaseJobsBackend(supabase).fetchEvents(['j1', 'j2'])) as { id: number }[];
    expect(events.map((e) => e.id)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(calls).toHaveLength(2);
    const first = calls[0]!.url;
    expect(first.pathname).toBe('/rest/v1/job_events');
    expect(first.searchParams.get('job_id')).toBe('in.(j1,j2)');
    expect(first.searchParams.get('id')).toBe('gt.0');
    expect(first.searchParams.get('order')).toBe('id.asc');
    expect(calls[1]!.url.searchParams.get('id')).toBe('gt.1000');
  });

  it('fails clearly when an RPC returns no row', async () => {
    respond = () => json(200, []);
    await expect(createSupabaseJobsBackend(supabase).cancel('j9')).rejects.toThrowError(JobClientError);
  });

  it('reads rows with select(...).in("id", ids), in chunks', async () => {
    respond = (call) => {
      const ids = /^in\.\((.*)\)$/.exec(call.url.searchParams.get('id') ?? '')?.[1]?.split(',') ?? [];
      return json(200, ids.map((id) => makeRow({ id })));
    };
    const ids = Array.from({ length: 150 }, (_, i) => `id-${i}`);
    const rows = await createSupabaseJobsBackend(supabase).fetchJobs(ids);
    expect(rows).toHaveLength(150);
    expect(calls).toHaveLength(2);
    const first = calls[0]!;
    expect(first.method).toBe('GET');
    expect(first.url.pathname).toBe('/rest/v1/jobs');
    expect(first.url.searchParams.get('select')).toContain('updated_at');
    expect(first.url.searchParams.get('id')).toBe(`in.(${ids.slice(0, 100).join(',')})`);
  });
});

describe('supabase jobs backend: Realtime', () => {
  it('joins the private topic with the user JWT, delivers broadcasts, and re-fires SUBSCRIBED after a reconnect', async () => {
    const backend = createSupabaseJobsBackend(supabase);
    const statuses: ChannelStatus[] = [];
    const jobs: unknown[] = [];
    const events: unknown[] = [];
    await backend.subscribe('jobs:user-1', {
      onJob: (p) => jobs.push(p),
      onJobEvent: (p) => events.push(p),
      onStatus: (s) => statuses.push(s),
    });
    await vi.waitFor(() => expect(statuses).toContain('SUBSCRIBED'), { timeout: 5000 });

    const join = realtime.joins[0]!;
    expect(join.topic).toBe('realtime:jobs:user-1');
    expect(join.payload).toMatchObject({ config: { private: true }, access_token: ACCESS_TOKEN });

    realtime.broadcast('realtime:jobs:user-1', 'job', { id: 'j1', status: 'running', updated_at: 't' });
    realtime.broadcast('realtime:jobs:user-1', 'job_event', { id: 1, job_id: 'j1', type: 'log', data: {}, created_at: 't' });
    await vi.waitFor(() => expect(jobs).toHaveLength(1));
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(jobs[0]).toEqual({ id: 'j1', status: 'running', updated_at: 't' });

    realtime.dropAll();
    await vi.waitFor(() => expect(realtime.joins).toHaveLength(2), { timeout: 5000 });
    await vi.waitFor(() => expect(statuses.filter((s) => s === 'SUBSCRIBED')).toHaveLength(2), { timeout: 5000 });
  });

  it('delivers the events a job message carries first, in order, then the row without them', async () => {
    const backend = createSupabaseJobsBackend(supabase);
    const statuses: ChannelStatus[] = [];
    const seen: [string, unknown][] = [];
    await backend.subscribe('jobs:user-1', {
      onJob: (p) => seen.push(['job', p]),
      onJobEvent: (p) => seen.push(['event', p]),
      onStatus: (s) => statuses.push(s),
    });
    await vi.waitFor(() => expect(statuses).toContain('SUBSCRIBED'), { timeout: 5000 });

    const steps = [
      { id: 7, job_id: 'j1', type: 'progress', data: { percent: 33, message: 'batch 1 of 3' }, created_at: 't' },
      { id: 8, job_id: 'j1', type: 'progress', data: { percent: 67, message: 'batch 2 of 3' }, created_at: 't' },
      { id: 9, job_id: 'j1', type: 'partial', data: { text: 'Hello' }, created_at: 't' },
    ];
    const row = { id: 'j1', status: 'running', progress: { percent: 67, message: 'batch 2 of 3' }, updated_at: 't' };
    realtime.broadcast('realtime:jobs:user-1', 'job', { ...row, events: steps });
    await vi.waitFor(() => expect(seen).toHaveLength(4));
    expect(seen).toEqual([['event', steps[0]], ['event', steps[1]], ['event', steps[2]], ['job', row]]);
  });

  it('JobClient re-reads its jobs after the channel rejoins', async () => {
    let row = makeRow({ id: 'j1', status: 'queued', updated_at: '2025-11-19T10:00:00.000001+00:00' });
    respond = (call) =>
      call.url.pathname.endsWith('/rpc/enqueue_job') ? json(200, row) : call.url.pathname.endsWith('/job_events') ? json(200, []) : json(200, [row]);
    const client = JobClient.fromSupabase(supabase, { onError: () => undefined });
    const handle = await client.submit('generate_design', { prompt: 'x' });
    expect(handle.snapshot.status).toBe('queued');

    realtime.dropAll();
    // While disconnected the job finished; no broadcast will ever arrive for it.
    row = { ...row, status: 'succeeded', result: { tree: 1 }, updated_at: '2025-11-19T10:00:05.000000+00:00' };
    await expect(handle.result()).resolves.toEqual({ tree: 1 });
    expect(calls.some((c) => c.url.pathname === '/rest/v1/jobs' && c.url.searchParams.get('id') === 'in.(j1)')).toBe(true);
    await client.close();
  });
});
