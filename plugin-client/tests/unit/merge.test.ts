import { describe, expect, it } from 'vitest';
import { applyEvent, applyPatch, decidePatch, initialState, type JobState } from '../../src/jobs/merge';
import { compareTimestamps, timestampMicros } from '../../src/jobs/timestamps';
import { parseJobBroadcast, parseJobEvent, type JobPatch } from '../../src/jobs/types';

const T = (micros: number): string => `2025-11-19T10:00:00.${String(micros).padStart(6, '0')}+00:00`;

function patch(status: JobPatch['status'], updatedAt: string, extra: Partial<JobPatch> = {}): JobPatch {
  return { id: 'j1', status, updatedAt, ...extra };
}

function run(...patches: JobPatch[]): JobState {
  return patches.reduce((s, p) => applyPatch(s, p).state, initialState('j1', 'generate_design'));
}

describe('timestamps', () => {
  it('orders by microseconds, which Date.parse cannot', () => {
    const a = '2025-11-19T10:00:00.123456+00:00';
    const b = '2025-11-19T10:00:00.123457+00:00';
    expect(Date.parse(a)).toBe(Date.parse(b));
    expect(compareTimestamps(a, b)).toBe(-1);
    expect(compareTimestamps(b, a)).toBe(1);
  });

  it('understands offsets, Z, the space separator and missing fractions', () => {
    expect(timestampMicros('2025-11-19T12:00:00+02:00')).toBe(timestampMicros('2025-11-19T10:00:00Z'));
    expect(timestampMicros('2025-11-19 10:00:00.5+00')).toBe(timestampMicros('2025-11-19T10:00:00.500000Z'));
    expect(timestampMicros('2025-11-19T10:00:00.1-0130')).toBe(timestampMicros('2025-11-19T11:30:00.100Z'));
    expect(timestampMicros('yesterday')).toBeNull();
    expect(compareTimestamps('yesterday', T(1))).toBeNull();
  });
});

describe('applyPatch (monotonic)', () => {
  it('applies newer updates and ignores older ones', () => {
    const s = run(
      patch('running', T(20), { progress: { percent: 50, message: 'half' } }),
      patch('queued', T(10)),
      patch('running', T(15), { progress: { percent: 10, message: 'old' } }),
    );
    expect(s.snapshot.status).toBe('running');
    expect(s.snapshot.progress).toEqual({ percent: 50, message: 'half' });
    expect(s.snapshot.updatedAt).toBe(T(20));
  });

  it('reports stale updates as unchanged', () => {
    const s = run(patch('running', T(20)));
    const r = applyPatch(s, patch('queued', T(19)));
    expect(r.changed).toBe(false);
    expect(r.decision).toBe('stale');
    expect(r.state).toBe(s);
  });

  it('keeps a finished job finished, even against a newer non-terminal update', () => {
    const s = run(patch('succeeded', T(30), { result: { value: { ok: 1 } } }));
    expect(decidePatch(s.snapshot, patch('running', T(40)))).toBe('after-terminal');
    expect(applyPatch(s, patch('running', T(40))).state.snapshot.status).toBe('succeeded');
  });

  it('with equal timestamps, accepts forward moves only', () => {
    const s = run(patch('running', T(5)));
    expect(decidePatch(s.snapshot, patch('queued', T(5)))).toBe('stale');
    expect(decidePatch(s.snapshot, patch('succeeded', T(5)))).toBe('apply');
  });

  it('keeps fields a broadcast did not carry', () => {
    const s = run(
      patch('running', T(1), { attempts: 1, maxAttempts: 3, progress: { percent: 5, message: null } }),
      patch('running', T(2), { cancelRequested: true }),
    );
    expect(s.snapshot.attempts).toBe(1);
    expect(s.snapshot.maxAttempts).toBe(3);
    expect(s.snapshot.progress).toEqual({ percent: 5, message: null });
    expect(s.snapshot.cancelRequested).toBe(true);
  });

  it('records each distinct progress once in the history', () => {
    const s = run(
      patch('running', T(1), { progress: { percent: 10, message: 'a' } }),
      patch('running', T(2), { progress: { percent: 10, message: 'a' } }),
      patch('running', T(3), { progress: { percent: 60, message: 'b' } }),
      patch('running', T(2), { progress: { percent: 30, message: 'stale' } }),
    );
    expect(s.snapshot.progressHistory.map((h) => [h.percent, h.message])).toEqual([
      [10, 'a'],
      [60, 'b'],
    ]);
  });

  it('takes the result only from a succeeded update; truncated means "fetch it"', () => {
    const running = run(patch('running', T(1), { result: { value: null } }));
    expect(running.snapshot.hasResult).toBe(false);
    const truncated = applyPatch(running, patch('succeeded', T(2), { result: 'truncated' })).state;
    expect(truncated.snapshot.hasResult).toBe(false);
    expect(truncated.snapshot.resultTruncated).toBe(true);
    const fetched = applyPatch(truncated, patch('succeeded', T(2), { result: { value: { tree: 1 } } })).state;
    expect(fetched.snapshot.hasResult).toBe(true);
    expect(fetched.snapshot.result).toEqual({ tree: 1 });
    expect(fetched.snapshot.resultTruncated).toBe(false);
  });
});

describe('applyEvent', () => {
  const ev = (id: number, type: string, data: unknown, micros = id) =>
    parseJobEvent({ id, job_id: 'j1', type, data, created_at: T(micros) });

  it('appends partial text in order, tolerating duplicates and reordering', () => {
    let s = initialState('j1');
    for (const e of [ev(1, 'partial', { text: 'Hel' }), ev(3, 'partial', { text: 'rld' }), ev(1, 'partial', { text: 'Hel' }), ev(2, 'partial', { text: 'lo wo' })]) {
      s = applyEvent(s, e).state;
    }
    expect(s.snapshot.partialText).toBe('Hello world');
  });

  it('orders same-timestamp events by numeric id', () => {
    let s = initialState('j1');
    s = applyEvent(s, ev(10, 'partial', { text: 'b' }, 5)).state;
    s = applyEvent(s, ev(9, 'partial', { text: 'a' }, 5)).state;
    expect(s.snapshot.partialText).toBe('ab');
  });

  it('adds progress events to the history and the current progress', () => {
    let s = run(patch('running', T(1)));
    s = applyEvent(s, ev(2, 'progress', { percent: 40, message: 'drawing' })).state;
    expect(s.snapshot.progress).toEqual({ percent: 40, message: 'drawing' });
    expect(s.snapshot.progressHistory).toHaveLength(1);
    // A later row update with the same progress does not duplicate the entry.
    s = applyPatch(s, patch('running', T(3), { progress: { percent: 40, message: 'drawing' } })).state;
    expect(s.snapshot.progressHistory).toHaveLength(1);
  });

  it('does not let an old progress event override a newer row', () => {
    let s = run(patch('running', T(50), { progress: { percent: 90, message: 'almost' } }));
    s = applyEvent(s, ev(2, 'progress', { percent: 20, message: 'early' }, 10)).state;
    expect(s.snapshot.progress).toEqual({ percent: 90, message: 'almost' });
    expect(s.snapshot.progressHistory.map((h) => h.message)).toEqual(['almost', 'early']);
  });

  it('keeps logs and ignores events without usable data', () => {
    let s = initialState('j1');
    s = applyEvent(s, ev(1, 'log', { level: 'info', msg: 'x' })).state;
    const r = applyEvent(s, ev(2, 'partial', { notText: 1 }));
    expect(r.changed).toBe(false);
    expect(r.state.snapshot.logs).toEqual([{ data: { level: 'info', msg: 'x' }, at: T(1) }]);
  });
});

describe('wire parsers', () => {
  it('parses a job broadcast with and without the result', () => {
    const base = { id: 'j1', kind: 'generate_image', status: 'succeeded', progress: null, attempts: 1, max_attempts: 3, error: null, cancel_requested: false, updated_at: T(1) };
    expect(parseJobBroadcast({ ...base, result: { path: 'a.png' } }).result).toEqual({ value: { path: 'a.png' } });
    expect(parseJobBroadcast({ ...base, result_truncated: true }).result).toBe('truncated');
    expect(parseJobBroadcast(base).result).toBeUndefined();
    expect(() => parseJobBroadcast({ ...base, status: 'exploded' })).toThrowError(/unknown status/);
  });
});
