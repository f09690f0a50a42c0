// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import { applyEvent, applyPatch, initialState, type JobState } from '../../src/jobs/merge';
import { parseJobEvent, type JobPatch } from '../../src/jobs/types';
import { JobView } from '../../src/ui/job-view';

const T = (s: number): string => `2025-11-19T10:00:${String(s).padStart(2, '0')}.000000+00:00`;
const q = (view: JobView, id: string): HTMLElement => {
  const el = view.el.querySelector<HTMLElement>(`[data-testid="${id}"]`);
  if (!el) throw new Error(id);
  return el;
};

function state(...patches: JobPatch[]): JobState {
  return patches.reduce((s, p) => applyPatch(s, p).state, initialState('j1', 'generate_edits'));
}

describe('JobView', () => {
  it('shows status, a live progress bar and the progress history', () => {
    const view = new JobView('j1', 'generate_edits', 'Make it pop');
    let s = state({ id: 'j1', status: 'running', updatedAt: T(1), progress: { percent: 20, message: 'Reading layers' } });
    view.render(s.snapshot);
    expect(view.el.dataset.status).toBe('running');
    expect(q(view, 'job-status').textContent).toBe('Running');
    expect(q(view, 'job-progress').getAttribute('aria-valuenow')).toBe('20');
    expect(q(view, 'job-progress-message').textContent).toBe('Reading layers');

    s = applyPatch(s, { id: 'j1', status: 'running', updatedAt: T(2), progress: { percent: 65, message: 'Writing' } }).state;
    view.render(s.snapshot);
    expect(q(view, 'job-progress').getAttribute('aria-valuenow')).toBe('65');
    const items = [...view.el.querySelectorAll('[data-testid="job-history-item"]')].map((li) => li.textContent);
    expect(items).toEqual(['20% Reading layers', '65% Writing']);
  });

  it('shows streamed text as it arrives', () => {
    const view = new JobView('j1', 'generate_edits', 'x');
    let s = state({ id: 'j1', status: 'running', updatedAt: T(1) });
    view.render(s.snapshot);
    expect(q(view, 'job-stream').hidden).toBe(true);
    for (const [id, text] of [[1, 'Make the '], [2, 'button bigger']] as const) {
      s = applyEvent(s, parseJobEvent({ id, job_id: 'j1', type: 'partial', data: { text }, created_at: T(1 + id) })).state;
      view.render(s.snapshot);
    }
    expect(q(view, 'job-stream').hidden).toBe(false);
    expect(q(view, 'job-stream').textContent).toBe('Make the button bigger');
  });

  it('hides cancel once finished and shows the failure message', () => {
    const view = new JobView('j1', 'generate_edits', 'x');
    const onCancel = vi.fn();
    view.onCancel(onCancel);
    view.render(state({ id: 'j1', status: 'queued', updatedAt: T(1) }).snapshot);
    const cancel = q(view, 'job-cancel') as HTMLButtonElement;
    expect(cancel.hidden).toBe(false);
    cancel.click();
    expect(onCancel).toHaveBeenCalledTimes(1);
    expect(cancel.disabled).toBe(true);

    view.render(
      state({
        id: 'j1',
        status: 'failed',
        updatedAt: T(2),
        error: { type: 'timeout', message: 'The model took too long', retryable: true, attempt: 3 },
      }).snapshot,
    );
    expect(cancel.hidden).toBe(true);
    expect(q(view, 'job-error').hidden).toBe(false);
    expect(q(view, 'job-error').textContent).toBe('The model took too long');
  });

  it('labels a job whose cancellation is pending', () => {
    const view = new JobView('j1', 'generate_design', 'x');
    view.render(state({ id: 'j1', status: 'running', updatedAt: T(1), cancelRequested: true }).snapshot);
    expect(q(view, 'job-status').textContent).toBe('Cancelling');
    expect((q(view, 'job-cancel') as HTMLButtonElement).disabled).toBe(true);
  });

  it('lists the renames of a rename result, the first few of them', () => {
    const view = new JobView('j2', 'rename_layers', 'Selected layers');
    expect(q(view, 'job-renames').hidden).toBe(true);
    const changes = Array.from({ length: 10 }, (_, i) => ({ from: `Rectangle ${i}`, to: `Card ${i}` }));
    view.showRenames(changes, 3);
    expect(q(view, 'job-renames').hidden).toBe(false);
    const items = [...view.el.querySelectorAll('[data-testid="job-rename"]')].map((li) => li.textContent);
    expect(items).toEqual(['Rectangle 0 → Card 0', 'Rectangle 1 → Card 1', 'Rectangle 2 → Card 2']);
    expect(q(view, 'job-renames').textContent).toContain('+7 more');
    view.showRenames([]);
    expect(q(view, 'job-renames').hidden).toBe(true);
  });
});
