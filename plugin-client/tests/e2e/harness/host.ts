// Browser-side stand-in for the Figma editor: installs a fake `figma` global
// for dist/code.js and hosts dist/ui.html in a sandboxed iframe (opaque origin,
// no localStorage — like Figma's plugin iframe), relaying messages both ways
// in Figma's {pluginMessage} envelope.
import { FakeFigma } from '../../support/fake-figma';

declare global {
  interface Window {
    __harness: Harness;
  }
}

interface Harness {
  fake: FakeFigma;
  /** Messages main posted to the UI, in order. */
  toUi: unknown[];
  /** Messages the UI posted to main, in order. */
  fromUi: unknown[];
  /** Selects `count` new rectangles and fires selectionchange. */
  selectNew(count: number): string[];
  /**
   * Selects a new screen: a frame holding text layers (with these texts) and
   * a few rectangles, all with Figma's default names. Returns every layer id,
   * the frame first.
   */
  selectScreen(texts: string[], rectangles: number): Promise<string[]>;
  /** Names and types of the nodes on the current page (recursively). */
  pageTree(): unknown[];
}

const toUi: unknown[] = [];
const fromUi: unknown[] = [];
let iframe: HTMLIFrameElement | null = null;
let uiReady = false;
const queued: unknown[] = [];

function deliver(message: unknown): void {
  iframe?.contentWindow?.postMessage({ pluginMessage: message, pluginId: 'harness' }, '*');
}

const fake = new FakeFigma({
  libraryComponents: { 'button-key': { name: 'Button', width: 120, height: 40 } },
  onUiMessage: (message) => {
    toUi.push(message);
    // Figma queues messages posted before the UI has loaded.
    if (uiReady) deliver(message);
    else queued.push(message);
  },
});

// figma.clientStorage outlives a plugin run: keep it in the host page's
// localStorage so a reload plays "close and reopen the plugin".
const PERSIST_KEY = 'fake-figma-client-storage';
for (const [k, v] of Object.entries(JSON.parse(localStorage.getItem(PERSIST_KEY) ?? '{}') as Record<string, unknown>)) {
  fake.storage.set(k, v);
}
const persist = (): void => localStorage.setItem(PERSIST_KEY, JSON.stringify(Object.fromEntries(fake.storage)));
const { setAsync, deleteAsync } = fake.clientStorage;
fake.clientStorage.setAsync = async (key, value) => {
  await setAsync(key, value);
  persist();
};
fake.clientStorage.deleteAsync = async (key) => {
  await deleteAsync(key);
  persist();
};

const showUI = fake.showUI;
fake.showUI = (html: string) => {
  showUI(html);
  iframe = document.createElement('iframe');
  iframe.setAttribute('sandbox', 'allow-scripts');
  iframe.setAttribute('data-testid', 'plugin-ui');
  iframe.style.cssText = 'width:380px;height:620px;border:1px solid #ccc';
  iframe.addEventListener('load', () => {
    uiReady = true;
    for (const message of queued.splice(0)) deliver(message);
  });
  iframe.srcdoc = html;
  document.body.append(iframe);
};

window.addEventListener('message', (event: MessageEvent) => {
  if (!iframe || event.source !== iframe.contentWindow) return;
  const data: unknown = event.data;
  if (typeof data === 'object' && data !== null && 'pluginMessage' in data) {
    const message = (data as { pluginMessage: unknown }).pluginMessage;
    fromUi.push(message);
    fake.sendFromUi(message);
  }
});

function describeNode(node: { name: string; type: string; children?: unknown[] }): unknown {
  const out: Record<string, unknown> = { name: node.name, type: node.type };
  const fills = (node as { fills?: { type: string }[] }).fills;
  if (fills) out.fills = fills.map((f) => f.type);
  const chars = (node as { characters?: string }).characters;
  if (node.type === 'TEXT' && chars !== undefined) out.characters = chars;
  if (Array.isArray(node.children)) out.children = node.children.map((c) => describeNode(c as never));
  return out;
}

window.__harness = {
  fake,
  toUi,
  fromUi,
  selectNew(count) {
    const nodes = Array.from({ length: count }, (_, i) => {
      const r = fake.createRectangle();
      r.name = `Rectangle ${i + 1}`;
      return r;
    });
    fake.currentPage.selection = nodes;
    fake.emit('selectionchange');
    return nodes.map((n) => n.id);
  },
  async selectScreen(texts, rectangles) {
    await fake.loadFontAsync({ family: 'Inter', style: 'Regular' });
    const frame = fake.createFrame();
    frame.name = 'Frame 1';
    const ids = [frame.id];
    texts.forEach((chars) => {
      const t = fake.createText();
      t.characters = chars;
      t.name = chars;
      frame.appendChild(t);
      ids.push(t.id);
    });
    for (let i = 0; i < rectangles; i += 1) {
      const r = fake.createRectangle();
      r.name = `Rectangle ${i + 1}`;
      frame.appendChild(r);
      ids.push(r.id);
    }
    fake.currentPage.selection = [frame];
    fake.emit('selectionchange');
    return ids;
  },
  pageTree() {
    return fake.currentPage.children.map((c) => describeNode(c as never));
  },
};
(globalThis as unknown as { figma: unknown }).figma = fake;
