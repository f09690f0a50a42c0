// The job client: submits jobs, keeps one private Realtime channel per user
// (`jobs:<uid>`) and turns its broadcasts into live JobHandles.
//
// Nothing is lost across reconnects: after every SUBSCRIBED (the first join and
// each rejoin) the client re-reads the rows of the unfinished jobs it watches,
// and every update goes through the monotonic merge, so a late or duplicated
// message can never move a job backwards.
import type { SupabaseClient } from '@supabase/supabase-js';
import { createSupabaseJobsBackend, type ChannelStatus, type ChannelSubscription, type JobsBackend } from './backend';
import { ConflictError } from './errors';
import { JobHandle, type HandleHost, type JobUpdate } from './handle';
import { applyEvent, applyPatch, initialState, type JobSnapshot, type JobState } from './merge';
import { noCost, parseJobCost, parseSpend, type JobCost, type Spend } from './spend';
import {
  isTerminal,
  parseJobBroadcast,
  parseJobEvent,
  parseJobRow,
  patchFromRow,
  type JobKind,
  type JobPatch,
  type PayloadOf,
} from './types';

export type ConnectionState = 'idle' | 'connecting' | 'subscribed' | 'reconnecting' | 'closed';

export interface JobClientOptions {
  /** How long submit() waits for the first SUBSCRIBED before going ahead anyway. */
  subscribeTimeoutMs?: number;
  /** Generates an idempotency key when submit() is not given one. */
  newIdempotencyKey?: () => string;
  /** Background problems (bad messages, failed re-reads). Defaults to console.warn. */
  onError?: (error: Error) => void;
  /** How many states of unwatched jobs to remember (broadcasts may precede watch()). */
  maxUnwatched?: number;
}

export interface SubmitOptions {
  /** Same key → same job (the server deduplicates); generated when absent. */
  idempotencyKey?: string;
  priority?: number;
  /** ISO timestamp; the job waits until then. */
  runAt?: string;
  /** Id of a job this one waits for. */
  dependsOn?: string;
  /**
   * false bypasses the result cache: the job runs even if an identical request
   * was answered within the kind's cache TTL (its result then refreshes the cache).
   */
  cache?: boolean;
  onUpdate?: (update: JobUpdate) => void;
}

function randomKey(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export class JobClient {
  private readonly states = new Map<string, JobState>();
  private readonly handles = new Map<string, JobHandle>();
  private readonly connectionListeners = new Set<(state: ConnectionState) => void>();
  private readonly subscribeTimeoutMs: number;
  private readonly newKey: () => string;
  private readonly reportError: (error: Error) => void;
  private readonly maxUnwatched: number;
  private readonly host: HandleHost;

  private connectionState: ConnectionState = 'idle';
  private starting: Promise<void> | null = null;
  private subscription: ChannelSubscription | null = null;
  private markSubscribed: (() => void) | null = null;
  private resyncRunning: Promise<void> | null = null;
  private resyncAgain = false;
  private closed = false;

  constructor(
    private readonly backend: JobsBackend,
    options: JobClientOptions = {},
  ) {
    this.subscribeTimeoutMs = options.subscribeTimeoutMs ?? 10_000;
    this.newKey = options.newIdempotencyKey ?? randomKey;
    this.reportError = options.onError ?? ((error) => console.warn('[jobs]', error));
    this.maxUnwatched = options.maxUnwatched ?? 500;
    this.host = {
      snapshot: (id) => this.stateOf(id).snapshot,
      cancel: (id) => this.cancel(id),
      refresh: async (id) => {
        await this.refresh([id]);
        return this.stateOf(id).snapshot;
      },
    };
  }

  static fromSupabase(supabase: SupabaseClient, options: JobClientOptions = {}): JobClient {
    return new JobClient(createSupabaseJobsBackend(supabase), options);
  }

  get connection(): ConnectionState {
    return this.connectionState;
  }

  onConnectionChange(listener: (state: ConnectionState) => void): () => void {
    this.connectionListeners.add(listener);
    return () => {
      this.connectionListeners.delete(listener);
    };
  }

  /**
   * Joins the user's channel. Resolves at the first SUBSCRIBED, or after
   * subscribeTimeoutMs (Realtime keeps retrying; the re-read on SUBSCRIBED
   * catches up whatever happened meanwhile). Idempotent.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('JobClient is closed'));
    if (!this.starting) {
      this.starting = this.doStart().catch((error: unknown) => {
        this.starting = null;
        this.setConnection('idle');
        throw error;
      });
    }
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.setConnection('connecting');
    const userId = await this.backend.userId();
    const subscribed = new Promise<void>((resolve) => {
      this.markSubscribed = resolve;
    });
    this.subscription = await this.backend.subscribe(`jobs:${userId}`, {
      onJob: (payload) => this.receiveJob(payload),
      onJobEvent: (payload) => this.receiveEvent(payload),
      onStatus: (status, error) => this.receiveStatus(status, error),
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.subscribeTimeoutMs);
    });
    await Promise.race([subscribed, timeout]);
    clearTimeout(timer);
  }

  /** Enqueues a job and returns its live handle. */
  async submit<K extends JobKind>(kind: K, payload: PayloadOf<K>, options: SubmitOptions = {}): Promise<JobHandle<K>> {
    // Subscribe first, so updates right after the insert reach us.
    await this.start();
    const args = {
      kind,
      payload,
      idempotencyKey: options.idempotencyKey ?? this.newKey(),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.runAt === undefined ? {} : { runAt: options.runAt }),
      ...(options.dependsOn === undefined ? {} : { dependsOn: options.dependsOn }),
      ...(options.cache === undefined ? {} : { cache: options.cache }),
    };
    const row = parseJobRow(await this.backend.enqueue(args));
    const handle = this.watch(row.id, kind, { refresh: false });
    if (options.onUpdate) handle.onUpdate(options.onUpdate);
    // Monotonic: if a broadcast already delivered a newer state, this is a no-op.
    this.apply(patchFromRow(row));
    return handle;
  }

  /**
   * Returns a handle for an existing job (e.g. one submitted before the plugin
   * was closed) and reads its current row.
   */
  watch<K extends JobKind>(id: string, kind: K, options: { refresh?: boolean } = {}): JobHandle<K> {
    const existing = this.handles.get(id);
    if (existing) {
      if (existing.kind !== kind) throw new Error(`job ${id} is a ${existing.kind} job, not ${kind}`);
      // Same id and kind checked above, so the handle's K is this K.
      return existing as unknown as JobHandle<K>;
    }
    const handle = new JobHandle<K>(id, kind, this.host);
    // Stored type-erased; the kind check above restores K on the way out.
    this.handles.set(id, handle as unknown as JobHandle);
    if (!this.states.has(id)) this.states.set(id, initialState(id, kind));
    if (options.refresh !== false) {
      if (this.connectionState === 'subscribed') {
        this.refresh([id], { events: true }).catch((error: unknown) => this.reportError(toError(error)));
      } else {
        // The re-read after SUBSCRIBED covers it.
        this.start().catch((error: unknown) => this.reportError(toError(error)));
      }
    }
    return handle;
  }

  /** Stops tracking a job (its handle no longer updates). */
  forget(id: string): void {
    this.handles.delete(id);
    this.states.delete(id);
  }

  handle(id: string): JobHandle | undefined {
    return this.handles.get(id);
  }

  snapshot(id: string): JobSnapshot | undefined {
    return this.states.get(id)?.snapshot;
  }

  /** The user's plan, budget and spend this month; null without a signed-in user. */
  async spend(): Promise<Spend | null> {
    const rows = await this.backend.fetchSpend();
    return rows.length > 0 ? parseSpend(rows[0]) : null;
  }

  /** What a job's model calls cost so far (all attempts); zero before its first call. */
  async jobCost(id: string): Promise<JobCost> {
    const rows = await this.backend.fetchJobCosts([id]);
    const found = rows.map(parseJobCost).find((cost) => cost?.jobId === id);
    return found ?? noCost(id);
  }

  async cancel(id: string): Promise<JobSnapshot> {
    let raw: unknown;
    try {
      raw = await this.backend.cancel(id);
    } catch (error) {
      // The job finished before the cancel reached the server: nothing to
      // cancel, so report its actual final state rather than an error.
      if (error instanceof ConflictError) {
        await this.refresh([id]);
        return this.stateOf(id).snapshot;
      }
      throw error;
    }
    this.apply(patchFromRow(parseJobRow(raw)));
    return this.stateOf(id).snapshot;
  }

  async close(): Promise<void> {
    this.closed = true;
    const subscription = this.subscription;
    this.subscription = null;
    this.setConnection('closed');
    if (subscription) await subscription.close();
  }

  /**
   * Reads the given jobs' rows and merges them; with `events`, also their
   * job_events (streamed text and progress broadcast while we were away;
   * duplicates are dropped by event id).
   */
  async refresh(ids: readonly string[], options: { events?: boolean } = {}): Promise<void> {
    if (ids.length === 0) return;
    const [rows, events] = await Promise.all([
      this.backend.fetchJobs(ids),
      options.events ? this.backend.fetchEvents(ids) : Promise.resolve([]),
    ]);
    for (const raw of rows) {
      try {
        this.apply(patchFromRow(parseJobRow(raw)));
      } catch (error) {
        this.reportError(toError(error));
      }
    }
    for (const raw of events) this.receiveEvent(raw);
  }

  private receiveStatus(status: ChannelStatus, error?: Error): void {
    if (this.closed) return;
    if (status === 'SUBSCRIBED') {
      this.setConnection('subscribed');
      this.markSubscribed?.();
      this.resync();
      return;
    }
    // realtime-js rejoins on its own after errors, timeouts and socket drops.
    this.setConnection('reconnecting');
    if (error) this.reportError(error);
  }

  /**
   * Re-reads every unfinished watched job (rows and events); coalesces
   * overlapping calls. Finished jobs cannot change any more.
   */
  private resync(): void {
    if (this.resyncRunning) {
      this.resyncAgain = true;
      return;
    }
    this.resyncRunning = (async () => {
      do {
        this.resyncAgain = false;
        const ids = [...this.handles.keys()].filter((id) => !isTerminal(this.stateOf(id).snapshot.status));
        try {
          await this.refresh(ids, { events: true });
        } catch (error) {
          this.reportError(toError(error));
        }
      } while (this.resyncAgain && !this.closed);
    })().finally(() => {
      this.resyncRunning = null;
    });
  }

  /** Waits for an in-flight re-read (tests and shutdown use this). */
  async idle(): Promise<void> {
    while (this.resyncRunning) await this.resyncRunning;
  }

  private receiveJob(payload: unknown): void {
    try {
      this.apply(parseJobBroadcast(payload));
    } catch (error) {
      this.reportError(toError(error));
    }
  }

  private receiveEvent(payload: unknown): void {
    let event;
    try {
      event = parseJobEvent(payload);
    } catch (error) {
      this.reportError(toError(error));
      return;
    }
    const { state, changed } = applyEvent(this.stateOf(event.jobId), event);
    this.store(event.jobId, state);
    if (changed) this.handles.get(event.jobId)?._notify({ type: 'event', event, snapshot: state.snapshot });
  }

  private apply(patch: JobPatch): void {
    const { state, changed } = applyPatch(this.stateOf(patch.id), patch);
    this.store(patch.id, state);
    if (changed) this.handles.get(patch.id)?._notify({ type: 'state', snapshot: state.snapshot });
  }

  private stateOf(id: string): JobState {
    return this.states.get(id) ?? initialState(id, this.handles.get(id)?.kind ?? '');
  }

  private store(id: string, state: JobState): void {
    this.states.set(id, state);
    if (this.states.size - this.handles.size <= this.maxUnwatched) return;
    // Forget the oldest unwatched states (Map iterates in insertion order).
    for (const key of this.states.keys()) {
      if (this.states.size - this.handles.size <= this.maxUnwatched) break;
      if (!this.handles.has(key)) this.states.delete(key);
    }
  }

  private setConnection(state: ConnectionState): void {
    if (this.connectionState === state) return;
    this.connectionState = state;
    for (const listener of [...this.connectionListeners]) listener(state);
  }
}
