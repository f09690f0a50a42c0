// Pure reducer for a job's client-side state. Updates arrive from three places
// (the enqueue/cancel RPC answer, `job` broadcasts, the re-read after each
// (re)subscribe) in any order, so they are merged monotonically: an update
// older than what is known is ignored, and a finished job stays finished.
import {
  isTerminal,
  type JobErrorInfo,
  type JobEvent,
  type JobPatch,
  type JobProgress,
  type JobRow,
  type JobStatus,
} from './types';
import { compareTimestamps, timestampMicros } from './timestamps';

export interface ProgressEntry {
  percent: number | null;
  message: string | null;
  at: string;
}

export interface LogEntry {
  data: unknown;
  at: string;
}

export interface JobSnapshot {
  readonly id: string;
  readonly kind: string;
  readonly status: JobStatus;
  /** Empty until the first update is known. */
  readonly updatedAt: string;
  readonly progress: JobProgress | null;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly error: JobErrorInfo | null;
  readonly cancelRequested: boolean;
  /** The final result is known (set only once the job succeeded). */
  readonly hasResult: boolean;
  readonly result: unknown;
  /** The last broadcast said the result was too large to include. */
  readonly resultTruncated: boolean;
  /** Streamed text: partial events concatenated in order. */
  readonly partialText: string;
  readonly progressHistory: readonly ProgressEntry[];
  readonly logs: readonly LogEntry[];
  /** The last full row read, if any. */
  readonly row: JobRow | null;
}

interface PartialChunk {
  id: string;
  createdAt: string;
  text: string;
}

/** Internal state: the snapshot plus bookkeeping that consumers need not see. */
export interface JobState {
  snapshot: JobSnapshot;
  seenEventIds: ReadonlySet<string>;
  partials: readonly PartialChunk[];
}

export const MAX_HISTORY = 200;
export const MAX_LOGS = 200;

export function initialState(id: string, kind = ''): JobState {
  return {
    snapshot: {
      id,
      kind,
      status: 'queued',
      updatedAt: '',
      progress: null,
      attempts: 0,
      maxAttempts: 0,
      error: null,
      cancelRequested: false,
      hasResult: false,
      result: undefined,
      resultTruncated: false,
      partialText: '',
      progressHistory: [],
      logs: [],
      row: null,
    },
    seenEventIds: new Set(),
    partials: [],
  };
}

const STATUS_RANK: Record<JobStatus, number> = {
  waiting: 0,
  queued: 1,
  running: 2,
  succeeded: 3,
  failed: 3,
  cancelled: 3,
};

export type PatchDecision = 'apply' | 'stale' | 'after-terminal';

/** Decides whether a patch may be applied on top of the known snapshot. */
export function decidePatch(current: JobSnapshot, patch: JobPatch): PatchDecision {
  if (current.updatedAt === '') return 'apply';
  if (isTerminal(current.status) && !isTerminal(patch.status)) return 'after-terminal';
  const order = compareTimestamps(patch.updatedAt, current.updatedAt);
  if (order === null) {
    // Unparseable timestamp: fall back to status order only.
    return STATUS_RANK[patch.status] >= STATUS_RANK[current.status] ? 'apply' : 'stale';
  }
  if (order < 0) return 'stale';
  // Same timestamp: Postgres now() is per transaction, so one transaction's
  // updates share it. Accept it unless it would move the status backwards.
  if (order === 0 && STATUS_RANK[patch.status] < STATUS_RANK[current.status]) return 'stale';
  return 'apply';
}

function sameProgress(a: JobProgress | null, b: JobProgress | null): boolean {
  if (a === null || b === null) return a === b;
  return a.percent === b.percent && a.message === b.message;
}

function withHistory(
  history: readonly ProgressEntry[],
  progress: JobProgress | null,
  at: string,
): readonly ProgressEntry[] {
  // The column default {percent: 0, message: null} is no progress yet.
  if (progress === null || ((progress.percent === null || progress.percent === 0) && progress.message === null)) return history;
  const last = history[history.length - 1];
  if (last && last.percent === progress.percent && last.message === progress.message) return history;
  const next = [...history, { percent: progress.percent, message: progress.message, at }];
  return next.length > MAX_HISTORY ? next.slice(next.length - MAX_HISTORY) : next;
}

export interface MergeResult {
  state: JobState;
  /** False when the update was stale or carried nothing new. */
  changed: boolean;
  decision: PatchDecision;
}

export function applyPatch(state: JobState, patch: JobPatch): MergeResult {
  const cur = state.snapshot;
  const decision = decidePatch(cur, patch);
  if (decision !== 'apply') return { state, changed: false, decision };

  const progress = patch.progress === undefined ? cur.progress : patch.progress;
  let hasResult = cur.hasResult;
  let result = cur.result;
  let resultTruncated = cur.resultTruncated;
  if (patch.result === 'truncated') {
    if (!hasResult) resultTruncated = true;
  } else if (patch.result !== undefined && patch.status === 'succeeded') {
    // Only a succeeded job's result is final; the column is null before that.
    hasResult = true;
    result = patch.result.value;
    resultTruncated = false;
  }

  const next: JobSnapshot = {
    ...cur,
    kind: patch.kind ?? cur.kind,
    status: patch.status,
    updatedAt: patch.updatedAt,
    progress,
    attempts: patch.attempts ?? cur.attempts,
    maxAttempts: patch.maxAttempts ?? cur.maxAttempts,
    error: patch.error === undefined ? cur.error : patch.error,
    cancelRequested: patch.cancelRequested ?? cur.cancelRequested,
    hasResult,
    result,
    resultTruncated,
    progressHistory: sameProgress(progress, cur.progress)
      ? cur.progressHistory
      : withHistory(cur.progressHistory, progress, patch.updatedAt),
    row: patch.row ?? cur.row,
  };

  const changed =
    next.status !== cur.status ||
    next.updatedAt !== cur.updatedAt ||
    !sameProgress(next.progress, cur.progress) ||
    next.attempts !== cur.attempts ||
    next.error !== cur.error ||
    next.cancelRequested !== cur.cancelRequested ||
    next.result !== cur.result ||
    next.resultTruncated !== cur.resultTruncated ||
    next.kind !== cur.kind;
  return { state: { ...state, snapshot: next }, changed, decision };
}

/** Orders events by created_at, then by id (numerically when both are numbers). */
export function compareEvents(a: { id: string; createdAt: string }, b: { id: string; createdAt: string }): number {
  const ta = timestampMicros(a.createdAt);
  const tb = timestampMicros(b.createdAt);
  if (ta !== null && tb !== null && ta !== tb) return ta - tb;
  const na = Number(a.id);
  const nb = Number(b.id);
  if (Number.isFinite(na) && Number.isFinite(nb) && a.id !== '' && b.id !== '') return na - nb;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function partialText(data: unknown): string | null {
  if (typeof data === 'object' && data !== null && 'text' in data) {
    const text = (data as { text: unknown }).text;
    return typeof text === 'string' ? text : null;
  }
  return null;
}

function progressFromData(data: unknown): JobProgress | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as { percent?: unknown; message?: unknown };
  const percent = typeof d.percent === 'number' && Number.isFinite(d.percent) ? Math.min(100, Math.max(0, d.percent)) : null;
  const message = typeof d.message === 'string' ? d.message : null;
  return percent === null && message === null ? null : { percent, message };
}

/** Applies one job_event; duplicates (same event id) are ignored. */
export function applyEvent(state: JobState, event: JobEvent): { state: JobState; changed: boolean } {
  if (state.seenEventIds.has(event.id)) return { state, changed: false };
  const seenEventIds = new Set(state.seenEventIds).add(event.id);
  const cur = state.snapshot;

  switch (event.type) {
    case 'partial': {
      const text = partialText(event.data);
      if (text === null) return { state: { ...state, seenEventIds }, changed: false };
      const chunk: PartialChunk = { id: event.id, createdAt: event.createdAt, text };
      const last = state.partials[state.partials.length - 1];
      let partials: PartialChunk[];
      let joined: string;
      if (!last || compareEvents(last, chunk) <= 0) {
        // In-order arrival (the common case): append.
        partials = [...state.partials, chunk];
        joined = cur.partialText + text;
      } else {
        partials = [...state.partials, chunk].sort(compareEvents);
        joined = partials.map((p) => p.text).join('');
      }
      return {
        state: { ...state, seenEventIds, partials, snapshot: { ...cur, partialText: joined } },
        changed: true,
      };
    }
    case 'progress': {
      const progress = progressFromData(event.data);
      if (progress === null) return { state: { ...state, seenEventIds }, changed: false };
      // A progress event is also the job's current progress unless the job has
      // already moved past it (a later row update wins).
      const history = withHistory(cur.progressHistory, progress, event.createdAt);
      const newer =
        cur.updatedAt === '' || (compareTimestamps(event.createdAt, cur.updatedAt) ?? 1) >= 0;
      const snapshot: JobSnapshot = {
        ...cur,
        progressHistory: history,
        progress: newer && !isTerminal(cur.status) ? progress : cur.progress,
      };
      return { state: { ...state, seenEventIds, snapshot }, changed: true };
    }
    case 'log': {
      const logs = [...cur.logs, { data: event.data, at: event.createdAt }];
      const trimmed = logs.length > MAX_LOGS ? logs.slice(logs.length - MAX_LOGS) : logs;
      return { state: { ...state, seenEventIds, snapshot: { ...cur, logs: trimmed } }, changed: true };
    }
  }
}
