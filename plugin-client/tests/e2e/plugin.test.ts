// The plugin in a real Chromium (playwright-core): dist/code.js runs against
// the fake figma of the harness; dist/ui.html runs in a sandboxed iframe.
// The smoke tests need no backend; the flow tests need SUPABASE_URL and keys.
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';
import { serviceClient, stack, TestWorker } from '../integration/env';
import { distReady, startHarnessServer, type HarnessServer } from './harness/serve';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const canRun = existsSync(CHROMIUM) && distReady();
if (!canRun) {
  console.warn(`[e2e] SKIPPED: needs ${CHROMIUM} (set CHROMIUM_PATH) and a build (npm run build).`);
} else if (!stack) {
  console.warn('[e2e] flow tests SKIPPED (smoke tests still run): they need SUPABASE_URL and keys, see tests/integration/env.ts.');
}

let browser: Browser;
let server: HarnessServer;
let page: Page;
let ui: FrameLocator;

beforeAll(async () => {
  if (!canRun) return;
  // --no-sandbox: containers and CI often run as root.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  server = await startHarnessServer();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

beforeEach(async () => {
  if (!canRun) return;
  page = await browser.newPage();
  page.on('pageerror', (error) => console.error('[page error]', error));
  await page.goto(server.url);
  ui = page.frameLocator('[data-testid="plugin-ui"]');
  await ui.locator('[data-testid="app"] header').waitFor();
});

afterEach(async () => {
  await page?.close();
});

const byId = (id: string) => ui.locator(`[data-testid="${id}"]`);

describe.skipIf(!canRun)('plugin UI (no backend)', () => {
  it('runs in an iframe without localStorage, so auth storage must be relayed', async () => {
    const frame = page.frames().find((f) => f !== page.mainFrame());
    const access = await frame?.evaluate(() => {
      try {
        return String(window.localStorage.length);
      } catch {
        return 'blocked';
      }
    });
    expect(access).toBe('blocked');
  });

  it('asks for settings on first run and saves them through figma.clientStorage', async () => {
    await expect.poll(() => byId('connection-status').textContent()).toBe('Not configured');
    expect(await byId('settings-panel').isVisible()).toBe(true);

    await byId('settings-url').fill('not a url');
    await byId('settings-key').fill('anon');
    await byId('settings-save').click();
    await expect.poll(() => byId('settings-message').textContent()).toMatch(/not a valid URL/);

    // Nothing listens on port 9: connecting fails with a plain message.
    await byId('settings-url').fill('http://127.0.0.1:9');
    await byId('settings-save').click();
    await expect
      .poll(() => page.evaluate(() => window.__harness.fake.storage.get('settings')))
      .toBe(JSON.stringify({ url: 'http://127.0.0.1:9', anonKey: 'anon' }));
    await byId('error-banner').waitFor({ state: 'visible' });
    expect((await byId('error-banner').textContent())?.length).toBeGreaterThan(5);
    expect(await byId('connection-status').textContent()).toBe('Offline');
  });

  it('shows the selection size pushed by the main thread', async () => {
    await page.evaluate(() => window.__harness.selectNew(3));
    await expect.poll(() => byId('selection-count').textContent()).toBe('3 layers selected');
  });

  it('asks for a connection before running an action', async () => {
    await byId('prompt').fill('a login screen');
    await byId('action-generate_design').click();
    await expect.poll(() => byId('error-banner').textContent()).toMatch(/Connect to Supabase/);
  });
});

describe.skipIf(!canRun || !stack)('plugin flows against a Supabase stack', () => {
  const worker = stack ? new TestWorker(serviceClient()) : null;
  const users: string[] = [];

  afterAll(async () => {
    await worker?.cleanup(users);
  });

  async function connect(): Promise<void> {
    if (!stack) throw new Error('no stack');
    await byId('settings-url').fill(stack.url);
    await byId('settings-key').fill(stack.anonKey);
    await byId('settings-save').click();
    await expect.poll(() => byId('connection-status').textContent(), { timeout: 15_000 }).toBe('Live');
    const uid = await byId('user-id').getAttribute('title');
    if (uid) users.push(uid);
  }

  async function newestJobId(): Promise<string> {
    const item = byId('job-item').first();
    await item.waitFor();
    const id = await item.getAttribute('data-job-id');
    if (!id) throw new Error('job item without id');
    return id;
  }

  it('generate design: live progress, history, then the tree is built on the canvas', async () => {
    await connect();
    // The session went through the relay into figma.clientStorage.
    const keys = await page.evaluate(() => [...window.__harness.fake.storage.keys()]);
    expect(keys.some((k) => k.startsWith('auth:'))).toBe(true);

    await byId('prompt').fill('A sign-in card');
    await byId('action-generate_design').click();
    const id = await newestJobId();
    const item = ui.locator(`[data-job-id="${id}"]`);
    await expect.poll(() => item.getAttribute('data-status')).toBe('queued');

    await worker!.start(id);
    await worker!.progress(id, { percent: 35, message: 'Laying out' });
    await expect.poll(() => item.locator('[data-testid="job-progress"]').getAttribute('aria-valuenow')).toBe('35');
    await worker!.progress(id, { percent: 80, message: 'Styling' });
    await expect.poll(() => item.locator('[data-testid="job-history-item"]').allTextContents()).toEqual(['35% Laying out', '80% Styling']);

    await worker!.complete(id, {
      tree: {
        type: 'FRAME',
        name: 'Sign in',
        width: 320,
        layout: { mode: 'VERTICAL', padding: 24, gap: 12 },
        children: [
          { type: 'TEXT', name: 'Title', characters: 'Welcome back', fontSize: 24, fontWeight: 700 },
          { type: 'INSTANCE', name: 'Submit', componentKey: 'button-key' },
        ],
      },
    });
    await expect.poll(() => item.getAttribute('data-status')).toBe('succeeded');
    await expect.poll(() => item.locator('[data-testid="job-result"]').textContent()).toMatch(/Created 3 layers/);
    const tree = await page.evaluate(() => window.__harness.pageTree());
    expect(tree).toContainEqual({
      name: 'Sign in',
      type: 'FRAME',
      fills: ['SOLID'],
      children: [
        { name: 'Title', type: 'TEXT', fills: ['SOLID'], characters: 'Welcome back' },
        { name: 'Submit', type: 'INSTANCE' },
      ],
    });
  });

  it('reopening the plugin keeps the session and resumes earlier jobs, offering their result', async () => {
    await connect();
    const uid = await byId('user-id').getAttribute('title');
    await byId('prompt').fill('Resume me');
    await byId('action-generate_design').click();
    const id = await newestJobId();
    // "Close" the plugin; the job finishes meanwhile.
    await page.goto('about:blank');
    await worker!.start(id);
    await worker!.complete(id, { tree: { type: 'RECTANGLE', name: 'Resumed box', width: 10, height: 10 } });
    await page.goto(server.url);
    await expect.poll(() => byId('connection-status').textContent(), { timeout: 15_000 }).toBe('Live');
    expect(await byId('user-id').getAttribute('title')).toBe(uid);
    const item = ui.locator(`[data-job-id="${id}"]`);
    await expect.poll(() => item.getAttribute('data-status')).toBe('succeeded');
    // Not applied automatically: the user chooses.
    expect(await page.evaluate(() => window.__harness.pageTree())).toEqual([]);
    await item.locator('[data-testid="job-apply"]').click();
    await expect.poll(() => page.evaluate(() => window.__harness.pageTree())).toContainEqual({
      name: 'Resumed box',
      type: 'RECTANGLE',
      fills: ['SOLID'],
    });
  });

  it('generate edits: streamed text appears live; cancel works', async () => {
    await connect();
    await byId('prompt').fill('Tighten the copy');
    await byId('action-generate_edits').click();
    const id = await newestJobId();
    const item = ui.locator(`[data-job-id="${id}"]`);
    await worker!.start(id);
    await worker!.progress(id, { partial: 'Use a shorter ' });
    await worker!.progress(id, { partial: 'headline.' });
    await expect.poll(() => item.locator('[data-testid="job-stream"]').textContent()).toBe('Use a shorter headline.');

    await item.locator('[data-testid="job-cancel"]').click();
    await expect.poll(() => item.locator('[data-testid="job-status"]').textContent()).toBe('Cancelling');
  });

  it('rename layers: the selected layers get the names from the result', async () => {
    await connect();
    const ids = await page.evaluate(() => window.__harness.selectNew(2));
    await byId('action-rename_layers').click();
    const id = await newestJobId();
    await worker!.start(id);
    await worker!.complete(id, { names: [{ id: ids[0], name: 'Avatar' }, { id: ids[1], name: 'Badge' }] });
    const item = ui.locator(`[data-job-id="${id}"]`);
    await expect.poll(() => item.locator('[data-testid="job-result"]').textContent()).toBe('Renamed 2 layers');
    const names = await page.evaluate((nodeIds) => nodeIds.map((n) => window.__harness.fake.nodes.get(n)?.name), ids);
    expect(names).toEqual(['Avatar', 'Badge']);
  });

  it('generate image: bytes are downloaded from Storage and placed as an image fill', async () => {
    await connect();
    await byId('prompt').fill('A red square');
    await byId('action-generate_image').click();
    const id = await newestJobId();
    const uid = await byId('user-id').getAttribute('title');
    const path = `${uid}/${id}/image.png`;
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9, 9, 9]);
    const up = await serviceClient().storage.from('job-artifacts').upload(path, new Blob([bytes], { type: 'image/png' }), {
      contentType: 'image/png',
      upsert: true,
    });
    expect(up.error).toBeNull();
    await worker!.start(id);
    await worker!.complete(id, { path, mime_type: 'image/png', width: 256, height: 128 });
    const item = ui.locator(`[data-job-id="${id}"]`);
    await expect.poll(() => item.locator('[data-testid="job-result"]').textContent()).toBe('Placed a 256×128 image');
    const placed = await page.evaluate(() => {
      const images = [...window.__harness.fake.images.values()];
      return images.map((img) => Array.from(img.bytes));
    });
    expect(placed).toContainEqual(Array.from(bytes));
    await serviceClient().storage.from('job-artifacts').remove([path]);
  });
});
