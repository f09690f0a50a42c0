import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  JobClientError,
  JobNotFoundError,
  PayloadTooLargeError,
  mapPostgrestError,
  NetworkError,
  parseRetryAfterSeconds,
  parseValidationField,
  PermissionError,
  RateLimitError,
  ValidationError,
} from '../../src/jobs/errors';

describe('mapPostgrestError', () => {
  it('maps PT429 to RateLimitError with the delay from the hint', () => {
    const e = mapPostgrestError(
      { code: 'PT429', message: 'rate limit exceeded: 10 jobs per minute', details: null, hint: 'retry after 12 seconds' },
      429,
    );
    expect(e).toBeInstanceOf(RateLimitError);
    expect((e as RateLimitError).retryAfterSeconds).toBe(12);
    expect(e.status).toBe(429);
    expect(e.code).toBe('PT429');
  });

  it('treats a bare HTTP 429 as a rate limit even without the code', () => {
    const e = mapPostgrestError({ message: 'Too Many Requests' }, 429);
    expect(e).toBeInstanceOf(RateLimitError);
    expect((e as RateLimitError).retryAfterSeconds).toBeNull();
  });

  it('maps 22023 to ValidationError naming the field', () => {
    const e = mapPostgrestError({ code: '22023', message: 'unknown kind: make_coffee', details: null, hint: null }, 400);
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).field).toBe('kind');
    expect(e.message).toBe('unknown kind: make_coffee');
  });

  it('maps PT413, PT404 and PT409 as the SQL API raises them', () => {
    const big = mapPostgrestError(
      { code: 'PT413', message: 'payload: 70000 bytes exceeds the limit of 65536 bytes for kind "generate_design"', hint: 'send large inputs by reference' },
      413,
    );
    expect(big).toBeInstanceOf(PayloadTooLargeError);
    expect(big).toBeInstanceOf(ValidationError);
    expect((big as ValidationError).field).toBe('payload');
    expect(mapPostgrestError({ code: 'PT404', message: 'job_id: job x not found' }, 404)).toBeInstanceOf(JobNotFoundError);
    expect(mapPostgrestError({ code: 'PT409', message: 'job_id: job x already succeeded; nothing to cancel' }, 409)).toBeInstanceOf(ConflictError);
  });

  it('names the field of the SQL API\'s "field: problem" messages', () => {
    const e = mapPostgrestError({ code: '22023', message: 'kind: unknown job kind "make_coffee"', hint: 'known kinds: a, b' }, 400);
    expect((e as ValidationError).field).toBe('kind');
  });

  it('maps permission and network failures', () => {
    expect(mapPostgrestError({ code: '42501', message: 'permission denied for function enqueue_job' }, 401)).toBeInstanceOf(PermissionError);
    expect(mapPostgrestError({ code: 'PGRST301', message: 'JWT expired' }, 401)).toBeInstanceOf(PermissionError);
    expect(mapPostgrestError({ code: '', message: 'TypeError: fetch failed' }, 0)).toBeInstanceOf(NetworkError);
    const other = mapPostgrestError({ code: 'P0001', message: 'boom' }, 400);
    expect(other).toBeInstanceOf(JobClientError);
    expect(other).not.toBeInstanceOf(ValidationError);
  });
});

describe('parseRetryAfterSeconds', () => {
  it.each([
    ['retry after 12 seconds', 12],
    ['Retry after 1.5 s', 1.5],
    ['retry-after: 30', 30],
    ['retry after 2 minutes', 120],
    ['retry after 500 ms', 0.5],
  ])('%s → %d', (text, seconds) => {
    expect(parseRetryAfterSeconds(text)).toBe(seconds);
  });

  it('falls through to later texts and returns null when none match', () => {
    expect(parseRetryAfterSeconds(null, 'slow down', 'retry after 3 seconds')).toBe(3);
    expect(parseRetryAfterSeconds('slow down')).toBeNull();
  });
});

describe('parseValidationField', () => {
  it.each([
    ['payload is too large (300000 bytes, max 262144)', 'payload'],
    ['priority must be between -10 and 10', 'priority'],
    ['invalid field "payload.prompt": required', 'payload.prompt'],
    ['"run_at" is in the past', 'run_at'],
    ['missing payload.prompt', 'payload.prompt'],
    ['depends_on[0]: job not found', 'depends_on[0]'],
    ['something went wrong', null],
  ])('%s → %s', (message, field) => {
    expect(parseValidationField(message)).toBe(field);
  });

  it('prefers a field given in JSON details', () => {
    expect(parseValidationField('bad input', '{"field":"idempotency_key"}')).toBe('idempotency_key');
    expect(parseValidationField('kind is unknown', 'not json')).toBe('kind');
  });
});
