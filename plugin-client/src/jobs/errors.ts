// Typed errors of the job client, and the mapping from PostgREST errors.
import type { JobErrorInfo } from './types';

export interface PostgrestErrorLike {
  code?: string | null;
  message?: string | null;
  details?: string | null;
  hint?: string | null;
}

export class JobClientError extends Error {
  override name = 'JobClientError';
  readonly code: string | null;
  readonly status: number | null;
  readonly details: string | null;
  readonly hint: string | null;

  constructor(message: string, info: { code?: string | null; status?: number | null; details?: string | null; hint?: string | null } = {}) {
    super(message);
    this.code = info.code ?? null;
    this.status = info.status ?? null;
    this.details = info.details ?? null;
    this.hint = info.hint ?? null;
  }
}

/** The per-user rate limit was hit (HTTP 429 / PT429). Retry after the delay. */
export class RateLimitError extends JobClientError {
  override name = 'RateLimitError';
  constructor(
    message: string,
    /** Seconds to wait before retrying; null when the server gave no delay. */
    readonly retryAfterSeconds: number | null,
    info: ConstructorParameters<typeof JobClientError>[1] = {},
  ) {
    super(message, info);
  }
}

/** The server rejected the request's input (SQLSTATE 22023). */
export class ValidationError extends JobClientError {
  override name = 'ValidationError';
  constructor(
    message: string,
    /** The offending field when the message names one (e.g. "kind", "payload.prompt"). */
    readonly field: string | null,
    info: ConstructorParameters<typeof JobClientError>[1] = {},
  ) {
    super(message, info);
  }
}

/**
 * The plan's monthly budget is spent (PT402 / HTTP 402), or would be by the
 * user's unfinished jobs. Jobs already running still finish.
 */
export class BudgetExceededError extends JobClientError {
  override name = 'BudgetExceededError';
  constructor(
    message: string,
    readonly spentUsd: number | null,
    readonly budgetUsd: number | null,
    /** When the budget starts again, as the server wrote it (e.g. "2027-01-01 00:00:00+00"). */
    readonly resetsAt: string | null,
    info: ConstructorParameters<typeof JobClientError>[1] = {},
  ) {
    super(message, info);
  }
}

// "budget: plan "free" allows 5.00 USD a month and 5.0123 USD is spent; it resets at 2027-01-01 00:00:00+00"
const BUDGET_RE = /allows (\d+(?:\.\d+)?) USD a month(?: and|;) (\d+(?:\.\d+)?) USD is spent/;
const RESETS_RE = /resets at (.+?)\s*$/;

function budgetError(message: string, info: ConstructorParameters<typeof JobClientError>[1]): BudgetExceededError {
  const amounts = BUDGET_RE.exec(message);
  const resets = RESETS_RE.exec(message);
  return new BudgetExceededError(
    message,
    amounts?.[2] !== undefined ? Number(amounts[2]) : null,
    amounts?.[1] !== undefined ? Number(amounts[1]) : null,
    resets?.[1] ?? null,
    info,
  );
}

/** The payload is larger than the job kind allows (PT413 / HTTP 413). */
export class PayloadTooLargeError extends ValidationError {
  override name = 'PayloadTooLargeError';
}

/** No such job, or not the caller's (PT404; existence is not leaked). */
export class JobNotFoundError extends JobClientError {
  override name = 'JobNotFoundError';
}

/**
 * The job's state does not allow the operation (PT409): cancelling a finished
 * job, or reusing an idempotency key for a different job.
 */
export class ConflictError extends JobClientError {
  override name = 'ConflictError';
}

/** Not signed in, or RLS denied the operation (42501 / 401 / 403). */
export class PermissionError extends JobClientError {
  override name = 'PermissionError';
}

/** The request never got an HTTP answer (offline, DNS, CORS, aborted). */
export class NetworkError extends JobClientError {
  override name = 'NetworkError';
}

/** The job ended in `failed`; carries the worker's typed error. */
export class JobFailedError extends JobClientError {
  override name = 'JobFailedError';
  constructor(
    readonly jobId: string,
    readonly jobError: JobErrorInfo | null,
  ) {
    super(jobError?.message ?? 'The job failed', { code: jobError?.type ?? null });
  }
  get errorType(): string | null {
    return this.jobError?.type ?? null;
  }
  get retryable(): boolean {
    return this.jobError?.retryable ?? false;
  }
}

/** The job ended in `cancelled`. */
export class JobCancelledError extends JobClientError {
  override name = 'JobCancelledError';
  constructor(readonly jobId: string) {
    super('The job was cancelled');
  }
}

const RETRY_AFTER_RE = /retry[\s-]*after\D{0,5}?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)?\b/i;

/** Extracts the delay from texts like "retry after 12 seconds". */
export function parseRetryAfterSeconds(...texts: (string | null | undefined)[]): number | null {
  for (const text of texts) {
    if (!text) continue;
    const m = RETRY_AFTER_RE.exec(text);
    if (!m || m[1] === undefined) continue;
    const n = Number(m[1]);
    const unit = (m[2] ?? 's').toLowerCase();
    if (unit.startsWith('ms') || unit.startsWith('milli')) return n / 1000;
    if (unit.startsWith('m')) return n * 60;
    return n;
  }
  return null;
}

const IDENT = '[A-Za-z_][A-Za-z0-9_]*(?:(?:\\.[A-Za-z_][A-Za-z0-9_]*)|(?:\\[\\d+\\]))*';
const FIELD_PATTERNS: readonly RegExp[] = [
  // "field payload.prompt is required", "invalid parameter \"kind\""
  new RegExp(`\\b(?:field|parameter|argument|property|key|column)\\s+["'\`]?(${IDENT})`, 'i'),
  // "\"payload\" is too large", "unknown kind 'x'" is handled by the leading pattern below
  new RegExp(`^["'\`](${IDENT})["'\`]`),
  // "payload: too large", "priority must be between 0 and 10", "kind is not known"
  new RegExp(`^(${IDENT})(?:\\s*:|\\s+(?:is|are|must|should|exceeds|has|contains|cannot|may|not|too)\\b)`, 'i'),
  // "unknown kind: foo", "invalid payload"
  new RegExp(`^(?:unknown|invalid|missing|unsupported)\\s+(${IDENT})\\b`, 'i'),
];

/** Best-effort name of the field a validation message is about. */
export function parseValidationField(message: string | null | undefined, details?: string | null): string | null {
  if (details) {
    try {
      const parsed: unknown = JSON.parse(details);
      if (typeof parsed === 'object' && parsed !== null && 'field' in parsed) {
        const field = (parsed as { field: unknown }).field;
        if (typeof field === 'string' && field !== '') return field;
      }
    } catch {
      // details is free text; fall through to the message patterns.
    }
  }
  const text = (message ?? '').trim();
  for (const re of FIELD_PATTERNS) {
    const m = re.exec(text);
    if (m?.[1]) return m[1];
  }
  return null;
}

/** Maps a supabase-js / PostgREST error and HTTP status to a typed error. */
export function mapPostgrestError(error: PostgrestErrorLike, status: number | null | undefined): JobClientError {
  const code = error.code ?? null;
  const message = error.message?.trim() || 'Request failed';
  const info = { code, status: status ?? null, details: error.details ?? null, hint: error.hint ?? null };
  if (code === 'PT429' || status === 429) {
    return new RateLimitError(message, parseRetryAfterSeconds(error.hint, error.details, message), info);
  }
  if (code === '22023') {
    return new ValidationError(message, parseValidationField(message, error.details), info);
  }
  if (code === 'PT413' || status === 413) {
    return new PayloadTooLargeError(message, parseValidationField(message, error.details) ?? 'payload', info);
  }
  if (code === 'PT402' || status === 402) return budgetError(message, info);
  if (code === 'PT404') return new JobNotFoundError(message, info);
  if (code === 'PT409' || status === 409) return new ConflictError(message, info);
  if (code === '42501' || code === 'PGRST301' || code === 'PGRST302' || status === 401 || status === 403) {
    return new PermissionError(message, info);
  }
  // postgrest-js reports a fetch that never got a response as status 0.
  if (status === 0) return new NetworkError(message, info);
  return new JobClientError(message, info);
}
