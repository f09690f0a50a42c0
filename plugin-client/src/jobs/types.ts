// Wire shapes of the jobs API (rows, broadcasts) and their runtime parsers.
// Everything here comes from the network, so it is checked, not cast.
import { isFiniteNumber, isRecord, type JsonObject } from '../shared/guards';
import type { JobKind, JobKinds } from './generated/types';

export type { JobKind, JobKinds } from './generated/types';
export type PayloadOf<K extends JobKind> = JobKinds[K]['payload'];
export type ResultOf<K extends JobKind> = JobKinds[K]['result'];

export const JOB_STATUSES = ['waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type TerminalStatus = 'succeeded' | 'failed' | 'cancelled';

export function isJobStatus(value: unknown): value is JobStatus {
  return typeof value === 'string' && (JOB_STATUSES as readonly string[]).includes(value);
}

export function isTerminal(status: JobStatus): status is TerminalStatus {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

export interface JobErrorInfo {
  type: string;
  message: string;
  retryable: boolean;
  attempt: number | null;
}

export interface JobProgress {
  percent: number | null;
  message: string | null;
}

/** A full `jobs` row as PostgREST returns it. */
export interface JobRow {
  id: string;
  user_id: string;
  kind: string;
  status: JobStatus;
  priority: number;
  payload: unknown;
  result: unknown;
  error: JobErrorInfo | null;
  progress: JobProgress | null;
  attempts: number;
  max_attempts: number;
  run_at: string | null;
  lease_expires_at: string | null;
  worker_id: string | null;
  idempotency_key: string | null;
  /** One parent job (pipelines are chains). */
  depends_on: string | null;
  cancel_requested: boolean;
  /** Answered from the result cache: created succeeded, no model call, no cost. */
  cached: boolean;
  /** The job whose result a cached job carries. */
  cached_from: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

/** Columns the client reads back after (re)subscribing. */
export const JOB_ROW_COLUMNS =
  'id,user_id,kind,status,priority,payload,result,error,progress,attempts,max_attempts,run_at,' +
  'lease_expires_at,worker_id,idempotency_key,depends_on,cancel_requested,created_at,started_at,' +
  'finished_at,updated_at,cached,cached_from';

/**
 * A state change of one job, normalised from either a full row or a `job`
 * broadcast. Fields a source did not carry are undefined (= unknown, keep
 * what is known); `result` distinguishes "absent" from "truncated".
 */
export interface JobPatch {
  id: string;
  updatedAt: string;
  status: JobStatus;
  kind?: string;
  progress?: JobProgress | null;
  attempts?: number;
  maxAttempts?: number;
  error?: JobErrorInfo | null;
  cancelRequested?: boolean;
  result?: { value: unknown } | 'truncated';
  row?: JobRow;
}

export type JobEventType = 'progress' | 'partial' | 'log';

export interface JobEvent {
  id: string;
  jobId: string;
  type: JobEventType;
  data: unknown;
  createdAt: string;
}

export class WireFormatError extends Error {
  override name = 'WireFormatError';
}

function parseProgress(value: unknown): JobProgress | null {
  if (!isRecord(value)) return null;
  return {
    percent: isFiniteNumber(value.percent) ? Math.min(100, Math.max(0, value.percent)) : null,
    message: typeof value.message === 'string' ? value.message : null,
  };
}

function parseError(value: unknown): JobErrorInfo | null {
  if (!isRecord(value)) return null;
  return {
    type: typeof value.type === 'string' ? value.type : 'error',
    message: typeof value.message === 'string' ? value.message : 'The job failed',
    retryable: value.retryable === true,
    attempt: isFiniteNumber(value.attempt) ? value.attempt : null,
  };
}

function requireBase(value: unknown, what: string): JsonObject & { id: string; updated_at: string; status: JobStatus } {
  if (!isRecord(value)) throw new WireFormatError(`${what}: not an object`);
  if (typeof value.id !== 'string') throw new WireFormatError(`${what}: missing id`);
  if (typeof value.updated_at !== 'string') throw new WireFormatError(`${what} ${value.id}: missing updated_at`);
  if (!isJobStatus(value.status)) throw new WireFormatError(`${what} ${value.id}: unknown status ${String(value.status)}`);
  return value as JsonObject & { id: string; updated_at: string; status: JobStatus };
}

function optionalInt(value: unknown): number | undefined {
  return isFiniteNumber(value) ? value : undefined;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** Parses a full jobs row (from rpc or select). */
export function parseJobRow(value: unknown): JobRow {
  const v = requireBase(value, 'job row');
  return {
    id: v.id,
    user_id: typeof v.user_id === 'string' ? v.user_id : '',
    kind: typeof v.kind === 'string' ? v.kind : '',
    status: v.status,
    priority: optionalInt(v.priority) ?? 0,
    payload: v.payload ?? null,
    result: v.result ?? null,
    error: parseError(v.error),
    progress: parseProgress(v.progress),
    attempts: optionalInt(v.attempts) ?? 0,
    max_attempts: optionalInt(v.max_attempts) ?? 0,
    run_at: str(v.run_at),
    lease_expires_at: str(v.lease_expires_at),
    worker_id: str(v.worker_id),
    idempotency_key: str(v.idempotency_key),
    depends_on: str(v.depends_on),
    cancel_requested: v.cancel_requested === true,
    cached: v.cached === true,
    cached_from: str(v.cached_from),
    created_at: typeof v.created_at === 'string' ? v.created_at : v.updated_at,
    started_at: str(v.started_at),
    finished_at: str(v.finished_at),
    updated_at: v.updated_at,
  };
}

export function patchFromRow(row: JobRow, options: { hasResultColumn?: boolean } = {}): JobPatch {
  const patch: JobPatch = {
    id: row.id,
    updatedAt: row.updated_at,
    status: row.status,
    kind: row.kind,
    progress: row.progress,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    error: row.error,
    cancelRequested: row.cancel_requested,
    row,
  };
  // A row read with the result column is authoritative for the result, even null.
  if (options.hasResultColumn !== false) patch.result = { value: row.result };
  return patch;
}

/** Parses a `job` broadcast payload (a subset of the row). */
export function parseJobBroadcast(value: unknown): JobPatch {
  const v = requireBase(value, 'job broadcast');
  const patch: JobPatch = { id: v.id, updatedAt: v.updated_at, status: v.status };
  if (typeof v.kind === 'string') patch.kind = v.kind;
  if ('progress' in v) patch.progress = parseProgress(v.progress);
  if ('error' in v) patch.error = parseError(v.error);
  const attempts = optionalInt(v.attempts);
  if (attempts !== undefined) patch.attempts = attempts;
  const maxAttempts = optionalInt(v.max_attempts);
  if (maxAttempts !== undefined) patch.maxAttempts = maxAttempts;
  if (typeof v.cancel_requested === 'boolean') patch.cancelRequested = v.cancel_requested;
  if (v.result_truncated === true) patch.result = 'truncated';
  else if ('result' in v) patch.result = { value: v.result };
  return patch;
}

/** Parses a `job_event` broadcast payload. */
export function parseJobEvent(value: unknown): JobEvent {
  if (!isRecord(value)) throw new WireFormatError('job_event: not an object');
  const id = typeof value.id === 'number' || typeof value.id === 'string' ? String(value.id) : null;
  if (id === null) throw new WireFormatError('job_event: missing id');
  if (typeof value.job_id !== 'string') throw new WireFormatError(`job_event ${id}: missing job_id`);
  const type = value.type;
  if (type !== 'progress' && type !== 'partial' && type !== 'log') {
    throw new WireFormatError(`job_event ${id}: unknown type ${String(type)}`);
  }
  return {
    id,
    jobId: value.job_id,
    type,
    data: value.data ?? null,
    createdAt: typeof value.created_at === 'string' ? value.created_at : '',
  };
}
