// The main-thread entry (src/main/code.ts) against a stubbed `figma` global:
// messages in through figma.ui.onmessage, answers out through figma.ui.postMessage.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeFigma, FakeFrame, FakeRectangle, FakeText } from '../support/fake-figma';

let fake: FakeFigma;

async function loadEntry(): Promise<void> {
  vi.resetModules();
  await import('../../src/main/code');
}

/** Sends a request from the "UI" and waits for the response with its id. */
async function request(type: string, params: unknown, requestId = `r-${Math.random()}`): Promise<Record<string, unknown>> {
  fake.sendFromUi({ type, requestId, params });
  await vi.waitFor(() => {
    if (!fake.uiMessages.some((m) => (m as { requestId?: string }).requestId === requestId)) throw new Error('no response yet');
  });
  return fake.uiMessages.find((m) => (m as { requestId?: string }).requestId === requestId) as Record<string, unknown>;
}

beforeEach(async () => {
  fake = new FakeFigma();
  vi.stubGlobal('figma', fake.asPluginApi());
  vi.stubGlobal('__html__', '<html>ui</html>');
  await loadEntry();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('main thread entry', () => {
  it('shows the UI and announces the selection', () => {
    expect(fake.shownHtml).toBe('<html>ui</html>');
    expect(fake.uiMessages[0]).toEqual({ type: 'event', event: 'selection-changed', selectionCount: 0 });
    fake.currentPage.selection = [fake.createRectangle(), fake.createRectangle()];
    fake.emit('selectionchange');
    expect(fake.uiMessages.at(-1)).toEqual({ type: 'event', event: 'selection-changed', selectionCount: 2 });
  });

  it('relays clientStorage get/set/remove', async () => {
    expect(await request('storage-set', { key: 'auth:sb-token', value: '{"a":1}' })).toMatchObject({ ok: true, result: null });
    expect(fake.storage.get('auth:sb-token')).toBe('{"a":1}');
    expect(await request('storage-get', { key: 'auth:sb-token' })).toMatchObject({ ok: true, result: '{"a":1}' });
    await request('storage-remove', { key: 'auth:sb-token' });
    expect(fake.storage.has('auth:sb-token')).toBe(false);
    expect(await request('storage-get', { key: 'auth:sb-token' })).toMatchObject({ ok: true, result: null });
  });

  it('answers malformed requests with an error instead of staying silent', async () => {
    const res = await request('storage-set', { key: 'k' }, 'bad-1');
    expect(res).toEqual({ type: 'response', requestId: 'bad-1', ok: false, error: 'storage-set: params.value must be a string' });
  });

  it('applies a design result: builds the tree, places it in the viewport and selects it', async () => {
    const res = await request('apply-design', {
      tree: {
        tree: {
          type: 'FRAME',
          name: 'Login',
          width: 200,
          height: 100,
          layout: { mode: 'VERTICAL', padding: 8, gap: 4 },
          children: [{ type: 'TEXT', name: 'Heading', characters: 'Sign in' }],
        },
      },
    });
    expect(res.ok).toBe(true);
    const summary = res.result as { rootId: string; created: number };
    expect(summary.created).toBe(2);
    const root = fake.nodes.get(summary.rootId) as FakeFrame;
    expect(root.name).toBe('Login');
    expect((root.children[0] as FakeText).characters).toBe('Sign in');
    expect(root.parent).toBe(fake.currentPage);
    // Centred on the viewport centre (500, 300).
    expect([root.x, root.y]).toEqual([400, 250]);
    expect(fake.currentPage.selection).toEqual([root]);
    expect(fake.viewport.scrolledTo).toEqual([[root]]);
  });

  it('reports an invalid design tree as an error response', async () => {
    const res = await request('apply-design', { tree: { type: 'CIRCLE' } });
    expect(res.ok).toBe(false);
    expect(res.error).toMatch(/\$\.type/);
    expect(fake.currentPage.children).toEqual([]);
  });

  it('renames layers by id', async () => {
    const rect = fake.createRectangle();
    const res = await request('rename-layers', { names: { names: [{ id: rect.id, name: 'Avatar' }] } });
    expect(res).toMatchObject({ ok: true, result: { renamed: 1, missing: [] } });
    expect(rect.name).toBe('Avatar');
  });

  it('places an image as an IMAGE fill', async () => {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const res = await request('place-image', { bytes, width: 64, height: 32, name: 'Logo' });
    expect(res.ok).toBe(true);
    const { nodeId } = res.result as { nodeId: string };
    const rect = fake.nodes.get(nodeId) as FakeRectangle;
    expect(rect.fills[0]).toMatchObject({ type: 'IMAGE', scaleMode: 'FILL' });
    expect(fake.images.get(String(rect.fills[0]?.imageHash))?.bytes).toEqual(bytes);
    expect(fake.currentPage.selection).toEqual([rect]);
  });

  it('collects the selection and the design system', async () => {
    const frame = fake.createFrame();
    frame.name = 'Card';
    const text = fake.createText();
    await fake.loadFontAsync({ family: 'Inter', style: 'Regular' });
    text.characters = 'Buy now';
    frame.appendChild(text);
    fake.currentPage.selection = [frame];
    fake.paintStyles.push({ key: 'p1', name: 'Brand/Blue', paints: [{ type: 'SOLID', color: { r: 0, g: 0.6, b: 1 } }] });
    fake.textStyles.push({ key: 't1', name: 'Heading/L', fontName: { family: 'Inter', style: 'Bold' }, fontSize: 32 });
    fake.addLocalComponent('c1', 'Button', 'Primary button');

    const res = await request('collect-context', { includeDesignSystem: true });
    expect(res.ok).toBe(true);
    const ctx = res.result as { selection: unknown[]; designSystem: unknown };
    expect(ctx.selection).toEqual([
      { id: frame.id, name: 'Card', type: 'FRAME', width: 100, height: 100, parentId: null, depth: 0 },
      { id: text.id, name: 'Text', type: 'TEXT', width: 100, height: 14, characters: 'Buy now', parentId: frame.id, depth: 1 },
    ]);
    expect(ctx.designSystem).toEqual({
      paintStyles: [{ key: 'p1', name: 'Brand/Blue', color: '#0099ff' }],
      textStyles: [{ key: 't1', name: 'Heading/L', fontFamily: 'Inter', fontStyle: 'Bold', fontSize: 32 }],
      components: [{ key: 'c1', name: 'Button', description: 'Primary button' }],
    });
    expect(fake.pagesLoaded).toBe(true);
  });

  it('shows notifications', async () => {
    await request('notify', { message: 'Created 3 layers' });
    await request('notify', { message: 'Oops', error: true });
    expect(fake.notifications).toEqual([{ message: 'Created 3 layers' }, { message: 'Oops', options: { error: true } }]);
  });

  it('ignores messages that are not requests', async () => {
    const before = fake.uiMessages.length;
    fake.sendFromUi({ hello: 'world' });
    fake.sendFromUi({ type: 'unknown-thing', requestId: 'x', params: {} });
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.uiMessages.length).toBe(before);
  });
});
