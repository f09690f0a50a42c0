// The narrow port the job client needs from Supabase, and its supabase-js
// implementation. The client logic is tested against a fake of this port; the
// adapter is exercised against real supabase-js (unit tests with a stubbed
// fetch, integration tests against a live stack).
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { JobClientError, mapPostgrestError, PermissionError } from './errors';
import { JOB_COST_COLUMNS, SPEND_COLUMNS } from './spend';
import { JOB_ROW_COLUMNS } from './types';

export type ChannelStatus = 'SUBSCRIBED' | 'TIMED_OUT' | 'CLOSED' | 'CHANNEL_ERROR';

export interface ChannelHandlers {
  onJob(payload: unknown): void;
  onJobEvent(payload: unknown): void;
  onStatus(status: ChannelStatus, error?: Error): void;
}

export interface ChannelSubscription {
  close(): Promise<void>;
}

export interface EnqueueArgs {
  kind: string;
  payload: unknown;
  idempotencyKey: string;
  priority?: number;
  runAt?: string;
  /** The job runs after this one succeeds (status `waiting` until then). */
  dependsOn?: string;
  /** false: run it even if an identical request's result is in the result cache. */
  cache?: boolean;
}

export interface JobsBackend {
  /** The signed-in user's id (the Realtime topic is jobs:<uid>). */
  userId(): Promise<string>;
  /** rpc('enqueue_job') → the jobs row (unparsed). */
  enqueue(args: EnqueueArgs): Promise<unknown>;
  /** rpc('cancel_job') → the jobs row (unparsed). */
  cancel(jobId: string): Promise<unknown>;
  /** Reads full rows of the given jobs (RLS limits them to the user's own). */
  fetchJobs(ids: readonly string[]): Promise<unknown[]>;
  /** Reads the job_events of the given jobs in id order (to recover missed broadcasts). */
  fetchEvents(jobIds: readonly string[]): Promise<unknown[]>;
  /** The user's row of `my_spend` (plan, budget, spend this month); [] when signed out. */
  fetchSpend(): Promise<unknown[]>;
  /** Rows of `job_costs` for the given jobs (no row: no model call recorded yet). */
  fetchJobCosts(ids: readonly string[]): Promise<unknown[]>;
  /** Joins the private topic; status callbacks fire on every (re)join. */
  subscribe(topic: string, handlers: ChannelHandlers): Promise<ChannelSubscription>;
}

/** PostgREST puts ids in the query string; keep URLs well under proxy limits. */
const IDS_PER_SELECT = 100;
const EVENTS_PAGE = 1000;
/** A safety cap: a job streaming more than this is re-read only partially. */
const MAX_EVENT_PAGES = 20;
const EVENT_COLUMNS = 'id,job_id,type,data,created_at';

export function createSupabaseJobsBackend(supabase: SupabaseClient): JobsBackend {
  return {
    async userId() {
      // getSession() reads the stored session without a network round trip.
      const { data, error } = await supabase.auth.getSession();
      if (error) throw new PermissionError(error.message, { code: error.code ?? null });
      const id = data.session?.user.id;
      if (!id) throw new PermissionError('Not signed in');
      return id;
    },

    async enqueue(args) {
      // Optional arguments are omitted (not sent as null) so the SQL defaults apply.
      const params: Record<string, unknown> = {
        kind: args.kind,
        payload: args.payload,
        idempotency_key: args.idempotencyKey,
      };
      if (args.priority !== undefined) params.priority = args.priority;
      if (args.runAt !== undefined) params.run_at = args.runAt;
      if (args.dependsOn !== undefined) params.depends_on = args.dependsOn;
      if (args.cache !== undefined) params.cache = args.cache;
      const { data, error, status } = await supabase.rpc('enqueue_job', params);
      if (error) throw mapPostgrestError(error, status);
      return unwrapSingle(data, 'enqueue_job');
    },

    async cancel(jobId) {
      const { data, error, status } = await supabase.rpc('cancel_job', { job_id: jobId });
      if (error) throw mapPostgrestError(error, status);
      return unwrapSingle(data, 'cancel_job');
    },

    async fetchJobs(ids) {
      const rows: unknown[] = [];
      for (let i = 0; i < ids.length; i += IDS_PER_SELECT) {
        const chunk = ids.slice(i, i + IDS_PER_SELECT);
        const { data, error, status } = await supabase.from('jobs').select(JOB_ROW_COLUMNS).in('id', chunk);
        if (error) throw mapPostgrestError(error, status);
        if (Array.isArray(data)) rows.push(...(data as unknown[]));
      }
      return rows;
    },

    async fetchEvents(jobIds) {
      const events: unknown[] = [];
      for (let i = 0; i < jobIds.length; i += IDS_PER_SELECT) {
        const chunk = jobIds.slice(i, i + IDS_PER_SELECT);
        // Keyset pagination on the identity id (insertion order).
        let after = 0;
        for (let page = 0; page < MAX_EVENT_PAGES; page += 1) {
          const { data, error, status } = await supabase
            .from('job_events')
            .select(EVENT_COLUMNS)
            .in('job_id', chunk)
            .gt('id', after)
            .order('id', { ascending: true })
            .limit(EVENTS_PAGE);
          if (error) throw mapPostgrestError(error, status);
          const rows = Array.isArray(data) ? (data as unknown[]) : [];
          events.push(...rows);
          const last = rows[rows.length - 1] as { id?: unknown } | undefined;
          if (rows.length < EVENTS_PAGE || typeof last?.id !== 'number') break;
          after = last.id;
        }
      }
      return events;
    },

    async fetchSpend() {
      const { data, error, status } = await supabase.from('my_spend').select(SPEND_COLUMNS);
      if (error) throw mapPostgrestError(error, status);
      return Array.isArray(data) ? (data as unknown[]) : [];
    },

    async fetchJobCosts(ids) {
      const rows: unknown[] = [];
      for (let i = 0; i < ids.length; i += IDS_PER_SELECT) {
        const chunk = ids.slice(i, i + IDS_PER_SELECT);
        const { data, error, status } = await supabase.from('job_costs').select(JOB_COST_COLUMNS).in('job_id', chunk);
        if (error) throw mapPostgrestError(error, status);
        if (Array.isArray(data)) rows.push(...(data as unknown[]));
      }
      return rows;
    },

    async subscribe(topic, handlers) {
      // Private channels are authorised with the user's JWT at join time; make
      // sure Realtime holds the current access token before joining.
      await supabase.realtime.setAuth();
      const channel: RealtimeChannel = supabase
        .channel(topic, { config: { private: true } })
        .on('broadcast', { event: 'job' }, (message) => deliverJob(message.payload, handlers))
        .on('broadcast', { event: 'job_event' }, (message) => handlers.onJobEvent(message.payload))
        // realtime-js keeps this callback across rejoins, so SUBSCRIBED fires
        // again after every reconnect.
        .subscribe((status, error) => handlers.onStatus(status, error));
      return {
        async close() {
          await supabase.removeChannel(channel);
        },
      };
    },
  };
}

/**
 * A `job` message may carry the job_events its call wrote (`events`, in order: the worker's
 * batched progress and streamed text, one message per job per call to stay within hosted
 * Realtime's message quota). They are delivered first, as if each had come on its own, then the
 * row itself.
 */
function deliverJob(payload: unknown, handlers: ChannelHandlers): void {
  if (typeof payload === 'object' && payload !== null && 'events' in payload) {
    const { events, ...row } = payload as { events: unknown };
    if (Array.isArray(events)) for (const event of events) handlers.onJobEvent(event);
    handlers.onJob(row);
    return;
  }
  handlers.onJob(payload);
}

/** An RPC returning a composite comes back as an object; SETOF as an array. */
function unwrapSingle(data: unknown, fn: string): unknown {
  const value = Array.isArray(data) ? data[0] : data;
  if (value === undefined || value === null) throw new JobClientError(`${fn} returned no row`);
  return value;
}
