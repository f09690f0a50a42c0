// One job in the list: status, live progress bar, progress history, streamed
// text, error, cancel and apply buttons. Rendering is idempotent: render() can
// be called with any snapshot at any time.
import type { JobSnapshot } from '../jobs/merge';
import { formatUsd, type JobCost } from '../jobs/spend';
import { isTerminal } from '../jobs/types';
import { h } from './dom';

const KIND_LABELS: Record<string, string> = {
  generate_design: 'Design',
  rename_layers: 'Rename',
  generate_edits: 'Edits',
  generate_image: 'Image',
};

const MAX_RENAMES_SHOWN = 8;

const STATUS_LABELS: Record<string, string> = {
  waiting: 'Waiting',
  queued: 'Queued',
  running: 'Running',
  succeeded: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

export class JobView {
  readonly el: HTMLLIElement;
  private readonly statusEl = h('span', { class: 'badge', 'data-testid': 'job-status' });
  private readonly barEl = h('div', { class: 'bar-fill' });
  private readonly progressEl = h(
    'div',
    { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'data-testid': 'job-progress' },
    this.barEl,
  );
  private readonly progressMessageEl = h('div', { class: 'progress-message', 'data-testid': 'job-progress-message' });
  private readonly historyEl = h('ol', { class: 'history', 'data-testid': 'job-history' });
  private readonly historyDetails = h('details', { class: 'history-box' }, h('summary', { text: 'Progress history' }), this.historyEl);
  private readonly streamEl = h('pre', { class: 'stream', 'data-testid': 'job-stream', hidden: true });
  private readonly errorEl = h('div', { class: 'job-error', 'data-testid': 'job-error', hidden: true });
  private readonly resultEl = h('div', { class: 'job-result', 'data-testid': 'job-result', hidden: true });
  private readonly renamesEl = h('ul', { class: 'renames', 'data-testid': 'job-renames', hidden: true });
  private readonly costEl = h('div', { class: 'job-cost', 'data-testid': 'job-cost', hidden: true });
  private readonly cancelButton = h('button', { class: 'small secondary', 'data-testid': 'job-cancel', text: 'Cancel' });
  private readonly applyButton = h('button', { class: 'small', 'data-testid': 'job-apply', text: 'Apply', hidden: true });
  private renderedHistory = 0;

  constructor(id: string, kind: string, label: string) {
    const title = h(
      'div',
      { class: 'job-head' },
      h('span', { class: 'kind', 'data-testid': 'job-kind', text: KIND_LABELS[kind] ?? kind }),
      h('span', { class: 'label', title: label, text: label }),
      this.statusEl,
    );
    const actions = h('div', { class: 'job-actions' }, this.applyButton, this.cancelButton);
    this.el = h(
      'li',
      { class: 'job', 'data-testid': 'job-item', 'data-job-id': id, 'data-kind': kind },
      title,
      this.progressEl,
      this.progressMessageEl,
      this.streamEl,
      this.errorEl,
      this.resultEl,
      this.renamesEl,
      this.costEl,
      this.historyDetails,
      actions,
    );
  }

  onCancel(handler: () => void): void {
    this.cancelButton.addEventListener('click', () => {
      this.cancelButton.disabled = true;
      handler();
    });
  }

  render(s: JobSnapshot): void {
    const terminal = isTerminal(s.status);
    this.el.dataset.status = s.status;
    this.statusEl.textContent = s.cancelRequested && !terminal ? 'Cancelling' : (STATUS_LABELS[s.status] ?? s.status);
    this.statusEl.className = `badge status-${s.status}`;

    const percent = s.status === 'succeeded' ? 100 : (s.progress?.percent ?? null);
    this.progressEl.classList.toggle('indeterminate', percent === null && s.status === 'running');
    this.barEl.style.width = `${percent ?? 0}%`;
    if (percent === null) this.progressEl.removeAttribute('aria-valuenow');
    else this.progressEl.setAttribute('aria-valuenow', String(Math.round(percent)));
    this.progressMessageEl.textContent = s.progress?.message ?? '';

    if (s.progressHistory.length < this.renderedHistory) {
      this.historyEl.replaceChildren();
      this.renderedHistory = 0;
    }
    for (const entry of s.progressHistory.slice(this.renderedHistory)) {
      const message = entry.message ?? '';
      const item = h('li', { 'data-testid': 'job-history-item' });
      if (entry.percent === null) item.textContent = message;
      else item.append(h('span', { class: 'pct', text: `${Math.round(entry.percent)}%` }), message === '' ? '' : ` ${message}`);
      this.historyEl.append(item);
    }
    this.renderedHistory = s.progressHistory.length;
    this.historyDetails.hidden = s.progressHistory.length === 0;

    if (s.partialText !== '') {
      this.streamEl.hidden = false;
      this.streamEl.textContent = s.partialText;
      this.streamEl.scrollTop = this.streamEl.scrollHeight;
    }
    if (s.status === 'failed') this.showError(s.error ? s.error.message : 'The job failed.');
    this.cancelButton.hidden = terminal;
    this.cancelButton.disabled = s.cancelRequested;
  }

  showError(message: string): void {
    this.errorEl.hidden = false;
    this.errorEl.textContent = message;
  }

  /** What the finished job cost at list price, over all its attempts; a cached one cost nothing. */
  showCost(cost: JobCost, cached = false): void {
    this.costEl.hidden = false;
    const calls = cached ? 'cached result' : `${cost.calls} model call${cost.calls === 1 ? '' : 's'}`;
    this.costEl.textContent = `Cost ${formatUsd(cost.costUsd)} · ${calls}`;
  }

  showResult(text: string): void {
    this.resultEl.hidden = false;
    this.resultEl.textContent = text;
  }

  /** The layer renames a rename_layers result made ("old → new"), the first few of them. */
  showRenames(changes: readonly { from: string; to: string }[], max = MAX_RENAMES_SHOWN): void {
    const items = changes.slice(0, max).map((c) =>
      h('li', { 'data-testid': 'job-rename' }, h('span', { class: 'from', text: c.from }), ' → ', h('strong', { text: c.to })),
    );
    if (changes.length > max) items.push(h('li', { class: 'more', text: `+${changes.length - max} more` }));
    this.renamesEl.replaceChildren(...items);
    this.renamesEl.hidden = items.length === 0;
  }

  showStreamText(text: string): void {
    this.streamEl.hidden = text === '';
    this.streamEl.textContent = text;
  }

  offerApply(handler: () => Promise<void>): void {
    this.applyButton.hidden = false;
    this.applyButton.onclick = () => {
      this.applyButton.disabled = true;
      handler().finally(() => {
        this.applyButton.hidden = true;
      });
    };
  }
}
