// A scriptable JobsBackend for job-client tests: records calls, lets the test
// push broadcasts and channel status changes, and serves rows from a table.
import type { ChannelHandlers, ChannelStatus, EnqueueArgs, JobsBackend } from '../../src/jobs/backend';
import type { JobRow } from '../../src/jobs/types';

export function makeRow(overrides: Partial<JobRow> & { id: string }): JobRow {
  const now = '2025-11-19T10:00:00.000000+00:00';
  return {
    user_id: 'user-1',
    kind: 'generate_design',
    status: 'queued',
    priority: 0,
    payload: {},
    result: null,
    error: null,
    progress: null,
    attempts: 0,
    max_attempts: 3,
    run_at: now,
    lease_expires_at: null,
    worker_id: null,
    idempotency_key: null,
    depends_on: null,
    cancel_requested: false,
    cached: false,
    cached_from: null,
    created_at: now,
    started_at: null,
    finished_at: null,
    updated_at: now,
    ...overrides,
  };
}

export class FakeBackend implements JobsBackend {
  readonly calls: string[] = [];
  readonly enqueued: EnqueueArgs[] = [];
  readonly fetched: string[][] = [];
  readonly table = new Map<string, JobRow>();
  readonly events: { id: number; job_id: string; type: string; data: unknown; created_at: string }[] = [];
  readonly fetchedEvents: string[][] = [];
  cancelError: Error | null = null;
  topic: string | null = null;
  handlers: ChannelHandlers | null = null;
  closed = false;
  enqueueError: Error | null = null;
  nextId = 1;
  /** Hook run inside enqueue after the row is "inserted" (to simulate races). */
  afterInsert: ((row: JobRow) => void) | null = null;

  async userId(): Promise<string> {
    this.calls.push('userId');
    return 'user-1';
  }

  async enqueue(args: EnqueueArgs): Promise<unknown> {
    this.calls.push('enqueue');
    this.enqueued.push(args);
    if (this.enqueueError) throw this.enqueueError;
    const row = makeRow({ id: `job-${this.nextId++}`, kind: args.kind, payload: args.payload, idempotency_key: args.idempotencyKey });
    this.table.set(row.id, row);
    this.afterInsert?.(row);
    return row;
  }

  async cancel(jobId: string): Promise<unknown> {
    this.calls.push(`cancel:${jobId}`);
    if (this.cancelError) throw this.cancelError;
    const row = this.table.get(jobId);
    if (!row) throw new Error('not found');
    const updated = { ...row, cancel_requested: true, status: row.status === 'queued' ? ('cancelled' as const) : row.status, updated_at: bump(row.updated_at) };
    this.table.set(jobId, updated);
    return updated;
  }

  /** Rows served by fetchSpend / fetchJobCosts. */
  spendRows: unknown[] = [];
  costRows: { job_id: string; [column: string]: unknown }[] = [];

  async fetchSpend(): Promise<unknown[]> {
    this.calls.push('fetchSpend');
    return this.spendRows;
  }

  async fetchJobCosts(ids: readonly string[]): Promise<unknown[]> {
    this.calls.push('fetchJobCosts');
    return this.costRows.filter((row) => ids.includes(row.job_id));
  }

  async fetchJobs(ids: readonly string[]): Promise<unknown[]> {
    this.calls.push('fetchJobs');
    this.fetched.push([...ids]);
    return ids.flatMap((id) => {
      const row = this.table.get(id);
      return row ? [row] : [];
    });
  }

  async fetchEvents(jobIds: readonly string[]): Promise<unknown[]> {
    this.calls.push('fetchEvents');
    this.fetchedEvents.push([...jobIds]);
    return this.events.filter((e) => jobIds.includes(e.job_id));
  }

  async subscribe(topic: string, handlers: ChannelHandlers) {
    this.calls.push(`subscribe:${topic}`);
    this.topic = topic;
    this.handlers = handlers;
    return {
      close: async () => {
        this.closed = true;
      },
    };
  }

  status(status: ChannelStatus): void {
    this.handlers?.onStatus(status);
  }

  /** Updates the stored row and (optionally) broadcasts it like the trigger. */
  update(id: string, change: Partial<JobRow>, options: { broadcast?: boolean; omitResult?: boolean } = {}): JobRow {
    const row = this.table.get(id);
    if (!row) throw new Error(`no row ${id}`);
    const updated = { ...row, ...change, updated_at: change.updated_at ?? bump(row.updated_at) };
    this.table.set(id, updated);
    if (options.broadcast !== false) this.broadcastJob(updated, options.omitResult);
    return updated;
  }

  broadcastJob(row: JobRow, omitResult = false): void {
    const payload: Record<string, unknown> = {
      id: row.id,
      kind: row.kind,
      status: row.status,
      progress: row.progress,
      attempts: row.attempts,
      max_attempts: row.max_attempts,
      error: row.error,
      cancel_requested: row.cancel_requested,
      updated_at: row.updated_at,
    };
    if (omitResult) payload.result_truncated = true;
    else if (row.status === 'succeeded') payload.result = row.result;
    this.handlers?.onJob(payload);
  }

  /** Records a job event (as the table would) and broadcasts it unless told not to. */
  broadcastEvent(event: { id: number; job_id: string; type: string; data: unknown; created_at: string }, options: { broadcast?: boolean } = {}): void {
    this.events.push(event);
    if (options.broadcast !== false) this.handlers?.onJobEvent(event);
  }
}

/** Adds one microsecond to a timestamp of the form ...SS.ffffff+00:00. */
export function bump(ts: string): string {
  const m = /^(.*\.)(\d{6})(\+00:00)$/.exec(ts);
  if (!m) throw new Error(`unexpected timestamp ${ts}`);
  const [, head = '', micros = '0', tail = ''] = m;
  return `${head}${String(Number(micros) + 1).padStart(6, '0')}${tail}`;
}
