// The plugin UI controller: settings, sign-in, submitting jobs, showing their
// live state and applying results through the main thread.
import type { SupabaseClient } from '@supabase/supabase-js';
import { createClientStorageRelay } from '../auth/storage-relay';
import { createPluginSupabase, ensureSignedIn } from '../auth/session';
import { JobClient, type ConnectionState } from '../jobs/client';
import type { JobHandle } from '../jobs/handle';
import type { JobKind, PayloadOf } from '../jobs/types';
import { isRecord } from '../shared/guards';
import type { RequestClient } from '../shared/rpc';
import { h } from './dom';
import { JobView } from './job-view';
import { describeError } from './messages';
import { budgetText } from './spend-view';
import { generateDesignPayload, generateEditsPayload, generateImagePayload, PayloadError, renameLayersPayload } from './payloads';
import { editText, parseImageResult, summarizeApplyDesign } from './results';
import { loadSettings, saveSettings, validateSettings, type Settings } from './settings';

const ACTIONS: readonly { kind: JobKind; label: string }[] = [
  { kind: 'generate_design', label: 'Generate design' },
  { kind: 'rename_layers', label: 'Rename layers' },
  { kind: 'generate_edits', label: 'Generate edits' },
  { kind: 'generate_image', label: 'Generate image' },
];

const CONNECTION_LABELS: Record<ConnectionState | 'unconfigured' | 'signing-in' | 'error', string> = {
  unconfigured: 'Not configured',
  'signing-in': 'Signing in…',
  idle: 'Idle',
  connecting: 'Connecting…',
  subscribed: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
  error: 'Offline',
};

const RECENT_JOBS_KEY = 'recent-jobs';
const MAX_RECENT_JOBS = 20;
const IMAGE_BUCKET = 'job-artifacts';

interface RecentJob {
  id: string;
  kind: JobKind;
  label: string;
}

function isJobKind(value: unknown): value is JobKind {
  return ACTIONS.some((a) => a.kind === value);
}

export class App {
  private supabase: SupabaseClient | null = null;
  private jobs: JobClient | null = null;
  private recent: RecentJob[] = [];
  private busy = false;

  private readonly statusEl = h('span', { class: 'conn', 'data-testid': 'connection-status' });
  private readonly userEl = h('span', { class: 'user', 'data-testid': 'user-id' });
  private readonly budgetEl = h('span', { class: 'budget', 'data-testid': 'budget' });
  private readonly selectionEl = h('span', { class: 'selection', 'data-testid': 'selection-count', text: 'No selection' });
  private readonly errorEl = h('div', { class: 'banner', role: 'alert', 'data-testid': 'error-banner', hidden: true });
  private readonly promptEl = h('textarea', {
    rows: '3',
    placeholder: 'Describe what you want… e.g. "A pricing card with three tiers"',
    'data-testid': 'prompt',
  });
  private readonly listEl = h('ol', { class: 'jobs', 'data-testid': 'job-list' });
  private readonly urlInput = h('input', { type: 'url', placeholder: 'https://<project>.supabase.co', 'data-testid': 'settings-url' });
  private readonly keyInput = h('input', { type: 'password', placeholder: 'anon / publishable key', 'data-testid': 'settings-key' });
  private readonly settingsMessage = h('div', { class: 'hint', 'data-testid': 'settings-message' });
  private readonly settingsPanel = h('section', { class: 'settings', 'data-testid': 'settings-panel', hidden: true });
  private readonly actionButtons: HTMLButtonElement[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly requests: RequestClient,
  ) {}

  async start(): Promise<void> {
    this.renderShell();
    this.requests.onEvent((event) => {
      const n = event.selectionCount;
      this.selectionEl.textContent = n === 0 ? 'No selection' : `${n} layer${n === 1 ? '' : 's'} selected`;
    });
    let settings: Settings | null = null;
    try {
      settings = await loadSettings(this.requests);
      this.recent = await this.loadRecent();
    } catch (error) {
      this.showError(describeError(error));
    }
    if (!settings) {
      this.setStatus('unconfigured');
      this.toggleSettings(true);
      return;
    }
    this.urlInput.value = settings.url;
    this.keyInput.value = settings.anonKey;
    await this.connect(settings);
  }

  private renderShell(): void {
    const gear = h('button', { class: 'icon', title: 'Settings', 'data-testid': 'settings-toggle', text: '⚙' });
    gear.addEventListener('click', () => this.toggleSettings());

    const save = h('button', { 'data-testid': 'settings-save', text: 'Save & connect' });
    save.addEventListener('click', () => void this.onSaveSettings());
    this.settingsPanel.append(
      h('label', {}, 'Supabase URL', this.urlInput),
      h('label', {}, 'Publishable key (or legacy anon key)', this.keyInput),
      h('div', { class: 'row' }, save),
      this.settingsMessage,
    );

    const actions = h('div', { class: 'actions' });
    for (const action of ACTIONS) {
      const button = h('button', { 'data-testid': `action-${action.kind}`, text: action.label });
      button.addEventListener('click', () => void this.runAction(action.kind));
      this.actionButtons.push(button);
      actions.append(button);
    }

    const clear = h('button', { class: 'small secondary', 'data-testid': 'clear-finished', text: 'Clear finished' });
    clear.addEventListener('click', () => void this.clearFinished());

    this.root.replaceChildren(
      h('header', {}, h('strong', { text: 'AI Jobs' }), this.statusEl, this.userEl, this.budgetEl, gear),
      this.settingsPanel,
      this.errorEl,
      h('section', { class: 'compose' }, this.promptEl, h('div', { class: 'meta' }, this.selectionEl), actions),
      h('div', { class: 'list-head' }, h('span', { text: 'Jobs' }), clear),
      this.listEl,
    );
    this.setStatus('unconfigured');
  }

  private toggleSettings(open?: boolean): void {
    this.settingsPanel.hidden = open === undefined ? !this.settingsPanel.hidden : !open;
  }

  private setStatus(state: keyof typeof CONNECTION_LABELS): void {
    this.statusEl.textContent = CONNECTION_LABELS[state];
    this.statusEl.dataset.state = state;
  }

  showError(message: string): void {
    this.errorEl.textContent = message;
    this.errorEl.hidden = false;
  }

  private clearError(): void {
    this.errorEl.hidden = true;
    this.errorEl.textContent = '';
  }

  private async onSaveSettings(): Promise<void> {
    let settings: Settings;
    try {
      settings = validateSettings(this.urlInput.value, this.keyInput.value);
    } catch (error) {
      this.settingsMessage.textContent = describeError(error);
      return;
    }
    try {
      await saveSettings(this.requests, settings);
      this.settingsMessage.textContent = 'Saved.';
    } catch (error) {
      this.settingsMessage.textContent = describeError(error);
      return;
    }
    await this.connect(settings);
    if (this.jobs) this.toggleSettings(false);
  }

  private async connect(settings: Settings): Promise<void> {
    this.clearError();
    await this.disconnect();
    this.listEl.replaceChildren();
    this.setStatus('signing-in');
    try {
      const supabase = createPluginSupabase({
        url: settings.url,
        anonKey: settings.anonKey,
        storage: createClientStorageRelay(this.requests),
      });
      const userId = await ensureSignedIn(supabase);
      this.userEl.textContent = `user ${userId.slice(0, 8)}`;
      this.userEl.title = userId;
      const jobs = JobClient.fromSupabase(supabase, { onError: (e) => console.warn('[jobs]', e) });
      jobs.onConnectionChange((state) => this.setStatus(state));
      this.supabase = supabase;
      this.jobs = jobs;
      await jobs.start();
      await this.resumeRecent(jobs);
      void this.refreshSpend();
    } catch (error) {
      this.setStatus('error');
      this.showError(describeError(error));
    }
  }

  /** Tears down the previous client (channel, socket, token refresh timer). */
  private async disconnect(): Promise<void> {
    const jobs = this.jobs;
    const supabase = this.supabase;
    this.jobs = null;
    this.supabase = null;
    await jobs?.close();
    if (supabase) {
      await supabase.removeAllChannels();
      supabase.realtime.disconnect();
      await supabase.auth.stopAutoRefresh();
    }
  }

  private async buildPayload<K extends JobKind>(kind: K, prompt: string): Promise<PayloadOf<K>> {
    // K is narrowed by the switch at run time; TS cannot narrow a type parameter, hence the casts.
    switch (kind) {
      case 'generate_design': {
        if (prompt === '') throw new PayloadError('Write a prompt first.');
        const ctx = await this.requests.request('collect-context', { includeDesignSystem: true });
        return generateDesignPayload(prompt, ctx.designSystem) as PayloadOf<K>;
      }
      case 'rename_layers': {
        const ctx = await this.requests.request('collect-context', { includeDesignSystem: false });
        return renameLayersPayload(ctx.selection, prompt) as PayloadOf<K>;
      }
      case 'generate_edits': {
        const ctx = await this.requests.request('collect-context', { includeDesignSystem: false });
        return generateEditsPayload(prompt, ctx.selection) as PayloadOf<K>;
      }
      default:
        return generateImagePayload(prompt) as PayloadOf<K>;
    }
  }

  private async runAction(kind: JobKind): Promise<void> {
    if (this.busy) return;
    this.clearError();
    const jobs = this.jobs;
    if (!jobs) {
      this.showError('Connect to Supabase first (settings).');
      this.toggleSettings(true);
      return;
    }
    this.setBusy(true);
    try {
      const prompt = this.promptEl.value.trim();
      const payload = await this.buildPayload(kind, prompt);
      const handle = await jobs.submit(kind, payload);
      const label = prompt || (kind === 'rename_layers' ? 'Selected layers' : kind);
      this.track(handle, label, true);
      this.remember({ id: handle.id, kind, label });
    } catch (error) {
      this.showError(describeError(error));
    } finally {
      this.setBusy(false);
    }
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    for (const button of this.actionButtons) button.disabled = busy;
  }

  private track(handle: JobHandle, label: string, autoApply: boolean): void {
    const existing = this.listEl.querySelector(`[data-job-id="${CSS.escape(handle.id)}"]`);
    if (existing) return;
    const view = new JobView(handle.id, handle.kind, label);
    this.listEl.prepend(view.el);
    view.render(handle.snapshot);
    handle.onUpdate((update) => view.render(update.snapshot));
    view.onCancel(() => {
      handle.cancel().catch((error: unknown) => view.showError(describeError(error)));
    });
    const finished = handle.result().catch(() => undefined);
    void finished.then(() => this.showCost(handle.id, view, handle.cached));
    handle.result().then(
      (result) => {
        const apply = async (): Promise<void> => {
          try {
            view.showResult(await this.applyResult(handle.kind, result, label, handle.snapshot.partialText, view));
          } catch (error) {
            view.showError(describeError(error));
          }
        };
        if (autoApply) void apply();
        else view.offerApply(apply);
      },
      (error: unknown) => view.showError(describeError(error)),
    );
  }

  /** A finished job's cost, and the budget left after it; best effort (the job itself is done). */
  private async showCost(jobId: string, view: JobView, cached: boolean): Promise<void> {
    const jobs = this.jobs;
    if (!jobs) return;
    try {
      view.showCost(await jobs.jobCost(jobId), cached);
    } catch (error) {
      console.warn('[jobs] cost', error);
    }
    await this.refreshSpend();
  }

  private async refreshSpend(): Promise<void> {
    try {
      this.budgetEl.textContent = budgetText((await this.jobs?.spend()) ?? null);
    } catch (error) {
      console.warn('[jobs] spend', error);
    }
  }

  /** Hands a result to the main thread; returns a one-line summary. */
  private async applyResult(kind: JobKind, result: unknown, label: string, streamed: string, view: JobView): Promise<string> {
    let summary: string;
    switch (kind) {
      case 'generate_design': {
        const applied = await this.requests.request('apply-design', { tree: result });
        summary = summarizeApplyDesign(applied);
        break;
      }
      case 'rename_layers': {
        const renamed = await this.requests.request('rename-layers', { names: result });
        summary = `Renamed ${renamed.renamed} layer${renamed.renamed === 1 ? '' : 's'}`;
        if (renamed.missing.length > 0) summary += ` (${renamed.missing.length} no longer exist)`;
        view.showRenames(renamed.changes);
        break;
      }
      case 'generate_edits': {
        const text = editText(result, streamed);
        view.showStreamText(text.text);
        summary = text.count > 0 ? `${text.count} variant${text.count === 1 ? '' : 's'} ready` : 'Edits ready';
        break;
      }
      case 'generate_image': {
        const info = parseImageResult(result);
        const bytes = await this.downloadImage(info.path);
        const params: { bytes: Uint8Array; name: string; width?: number; height?: number } = { bytes, name: label.slice(0, 60) };
        if (info.width !== undefined) params.width = info.width;
        if (info.height !== undefined) params.height = info.height;
        const placed = await this.requests.request('place-image', params);
        summary = `Placed a ${placed.width}×${placed.height} image`;
        break;
      }
    }
    await this.requests.request('notify', { message: summary }).catch(() => undefined);
    return summary;
  }

  private async downloadImage(path: string): Promise<Uint8Array> {
    const supabase = this.supabase;
    if (!supabase) throw new Error('Not connected');
    // Storage RLS lets the owner read <user_id>/<job_id>/… with their own JWT.
    const { data, error } = await supabase.storage.from(IMAGE_BUCKET).download(path);
    if (data) return new Uint8Array(await data.arrayBuffer());
    throw new Error(`Could not download the image: ${error?.message ?? 'unknown error'}`);
  }

  private async loadRecent(): Promise<RecentJob[]> {
    const raw = await this.requests.request('storage-get', { key: RECENT_JOBS_KEY });
    if (raw === null) return [];
    try {
      const value: unknown = JSON.parse(raw);
      if (!Array.isArray(value)) return [];
      return value.filter(
        (v): v is RecentJob => isRecord(v) && typeof v.id === 'string' && isJobKind(v.kind) && typeof v.label === 'string',
      );
    } catch {
      return [];
    }
  }

  private remember(job: RecentJob): void {
    this.recent = [job, ...this.recent.filter((j) => j.id !== job.id)].slice(0, MAX_RECENT_JOBS);
    void this.persistRecent();
  }

  private async persistRecent(): Promise<void> {
    await this.requests
      .request('storage-set', { key: RECENT_JOBS_KEY, value: JSON.stringify(this.recent) })
      .catch((error: unknown) => console.warn('could not save recent jobs', error));
  }

  /**
   * Jobs from earlier sessions: shown again with their current state, results
   * offered but not auto-applied. Jobs the server no longer has (purged after
   * the retention period) are dropped.
   */
  private async resumeRecent(jobs: JobClient): Promise<void> {
    const recent = [...this.recent];
    if (recent.length === 0) return;
    const handles = recent.map((job) => jobs.watch(job.id, job.kind, { refresh: false }));
    try {
      await jobs.refresh(
        recent.map((job) => job.id),
        { events: true },
      );
    } catch (error) {
      console.warn('could not read earlier jobs', error);
      return;
    }
    const gone = new Set(handles.filter((h) => h.snapshot.updatedAt === '').map((h) => h.id));
    for (const id of gone) jobs.forget(id);
    this.recent = recent.filter((job) => !gone.has(job.id));
    if (gone.size > 0) void this.persistRecent();
    for (let i = recent.length - 1; i >= 0; i -= 1) {
      const job = recent[i];
      const handle = handles[i];
      if (job && handle && !gone.has(job.id)) this.track(handle, job.label, false);
    }
  }

  private async clearFinished(): Promise<void> {
    const jobs = this.jobs;
    for (const el of [...this.listEl.querySelectorAll<HTMLElement>('[data-testid="job-item"]')]) {
      const status = el.dataset.status;
      if (status === 'succeeded' || status === 'failed' || status === 'cancelled') {
        const id = el.dataset.jobId ?? '';
        el.remove();
        jobs?.forget(id);
        this.recent = this.recent.filter((j) => j.id !== id);
      }
    }
    await this.persistRecent();
  }
}

