// An in-memory stand-in for the parts of the Figma plugin API this plugin
// uses. It enforces the rules that matter for correctness (text edits need a
// loaded font, resize minimums, one parent per node, unknown component keys
// reject) so tests can fail for the same reasons real Figma would.
// Browser-safe (no Node imports): the e2e harness bundles it too.

type Paint = { type: string; [key: string]: unknown };

let idCounter = 0;
function nextId(): string {
  idCounter += 1;
  return `${Math.floor(idCounter / 1000) + 1}:${idCounter}`;
}

export class FakeNode {
  readonly id = nextId();
  name: string;
  parent: FakeContainer | null = null;
  removed = false;
  x = 0;
  y = 0;
  width = 100;
  height = 100;
  private readonly pluginData = new Map<string, string>();

  constructor(
    readonly type: string,
    readonly figma: FakeFigma,
  ) {
    this.name = type.charAt(0) + type.slice(1).toLowerCase();
    figma.nodes.set(this.id, this);
  }

  resize(width: number, height: number): void {
    if (!(width >= 0.01) || !(height >= 0.01)) throw new Error('in resize: Expected width and height to be >= 0.01');
    this.width = width;
    this.height = height;
  }

  remove(): void {
    this.parent?.detach(this);
    this.removed = true;
    this.figma.nodes.delete(this.id);
  }

  setPluginData(key: string, value: string): void {
    this.pluginData.set(key, value);
  }

  getPluginData(key: string): string {
    return this.pluginData.get(key) ?? '';
  }
}

export class FakeContainer extends FakeNode {
  children: FakeNode[] = [];

  appendChild(child: FakeNode): void {
    if (child.removed) throw new Error('The node has been removed');
    child.parent?.detach(child);
    child.parent = this;
    this.children.push(child);
  }

  detach(child: FakeNode): void {
    this.children = this.children.filter((c) => c !== child);
    child.parent = null;
  }

  findAllWithCriteria(criteria: { types: string[] }): FakeNode[] {
    const out: FakeNode[] = [];
    const walk = (node: FakeNode): void => {
      if (criteria.types.includes(node.type)) out.push(node);
      if (node instanceof FakeContainer) node.children.forEach(walk);
    };
    this.children.forEach(walk);
    return out;
  }
}

export class FakeFrame extends FakeContainer {
  fills: Paint[] = [{ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity: 1 }];
  strokes: Paint[] = [];
  dashPattern: number[] = [];
  cornerRadius = 0;
  layoutMode: 'NONE' | 'HORIZONTAL' | 'VERTICAL' = 'NONE';
  paddingTop = 0;
  paddingRight = 0;
  paddingBottom = 0;
  paddingLeft = 0;
  itemSpacing = 0;
  primaryAxisSizingMode: 'FIXED' | 'AUTO' = 'AUTO';
  counterAxisSizingMode: 'FIXED' | 'AUTO' = 'FIXED';
  primaryAxisAlignItems = 'MIN';

  constructor(figma: FakeFigma, type = 'FRAME') {
    super(type, figma);
  }
}

export class FakeComponent extends FakeFrame {
  key = '';
  description = '';

  constructor(figma: FakeFigma) {
    super(figma, 'COMPONENT');
  }

  createInstance(): FakeInstance {
    const instance = new FakeInstance(this.figma, this);
    instance.width = this.width;
    instance.height = this.height;
    instance.name = this.name;
    return instance;
  }
}

export class FakeInstance extends FakeNode {
  constructor(
    figma: FakeFigma,
    readonly mainComponent: FakeComponent,
  ) {
    super('INSTANCE', figma);
  }
}

export class FakeRectangle extends FakeNode {
  fills: Paint[] = [{ type: 'SOLID', color: { r: 0.85, g: 0.85, b: 0.85 }, opacity: 1 }];
  cornerRadius = 0;

  constructor(figma: FakeFigma) {
    super('RECTANGLE', figma);
  }
}

export interface FontName {
  family: string;
  style: string;
}

const fontId = (f: FontName): string => `${f.family}|${f.style}`;

export class FakeText extends FakeNode {
  private font: FontName = { family: 'Inter', style: 'Regular' };
  private text = '';
  private size = 12;
  fills: Paint[] = [{ type: 'SOLID', color: { r: 0, g: 0, b: 0 }, opacity: 1 }];
  textAutoResize = 'WIDTH_AND_HEIGHT';

  constructor(figma: FakeFigma) {
    super('TEXT', figma);
    this.height = 14;
  }

  private requireLoaded(font: FontName, what: string): void {
    if (!this.figma.loadedFonts.has(fontId(font))) {
      throw new Error(`in set_${what}: Cannot write to node with unloaded font "${font.family} ${font.style}"`);
    }
  }

  get fontName(): FontName {
    return this.font;
  }
  set fontName(font: FontName) {
    this.requireLoaded(font, 'fontName');
    this.font = { ...font };
  }
  get characters(): string {
    return this.text;
  }
  set characters(value: string) {
    this.requireLoaded(this.font, 'characters');
    this.text = value;
  }
  get fontSize(): number {
    return this.size;
  }
  set fontSize(value: number) {
    this.requireLoaded(this.font, 'fontSize');
    this.size = value;
  }
}

export class FakePage extends FakeContainer {
  selection: FakeNode[] = [];

  constructor(figma: FakeFigma) {
    super('PAGE', figma);
    this.name = 'Page 1';
  }
}

export interface FakeImage {
  hash: string;
  bytes: Uint8Array;
  getSizeAsync(): Promise<{ width: number; height: number }>;
}

export interface FakeUi {
  postMessage(message: unknown): void;
  onmessage: ((message: unknown) => void) | undefined;
  on(type: 'message', handler: (message: unknown) => void): void;
  resize(width: number, height: number): void;
}

export interface FakeFigmaOptions {
  /** Fonts that load successfully; others reject like a missing font. */
  availableFonts?: FontName[];
  /** Library components by key. */
  libraryComponents?: Record<string, { name: string; width: number; height: number }>;
  /** Called for every figma.ui.postMessage (main → UI). */
  onUiMessage?: (message: unknown) => void;
  /** Size getSizeAsync reports for created images. */
  imageSize?: { width: number; height: number };
}

function hashBytes(bytes: Uint8Array): string {
  // FNV-1a: stable and good enough to tell images apart in tests.
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export class FakeFigma {
  readonly nodes = new Map<string, FakeNode>();
  readonly loadedFonts = new Set<string>();
  readonly fontLoadCalls: FontName[] = [];
  readonly importCalls: string[] = [];
  readonly images = new Map<string, FakeImage>();
  readonly notifications: { message: string; options?: unknown }[] = [];
  readonly storage = new Map<string, unknown>();
  readonly uiMessages: unknown[] = [];
  readonly eventHandlers = new Map<string, (() => void)[]>();
  readonly paintStyles: { key: string; name: string; paints: Paint[] }[] = [];
  readonly textStyles: { key: string; name: string; fontName: FontName; fontSize: number }[] = [];
  shownHtml: string | null = null;
  readonly document: FakeContainer;
  readonly currentPage: FakePage;
  readonly viewport = {
    center: { x: 500, y: 300 },
    scrolledTo: [] as FakeNode[][],
    scrollAndZoomIntoView: (nodes: FakeNode[]): void => {
      this.viewport.scrolledTo.push(nodes);
    },
  };
  readonly ui: FakeUi;
  readonly clientStorage = {
    getAsync: async (key: string): Promise<unknown> => this.storage.get(key),
    setAsync: async (key: string, value: unknown): Promise<void> => {
      this.storage.set(key, value);
    },
    deleteAsync: async (key: string): Promise<void> => {
      this.storage.delete(key);
    },
    keysAsync: async (): Promise<string[]> => [...this.storage.keys()],
  };
  private readonly availableFonts: Set<string>;
  private readonly library: NonNullable<FakeFigmaOptions['libraryComponents']>;
  private readonly imageSize: { width: number; height: number };

  constructor(options: FakeFigmaOptions = {}) {
    this.availableFonts = new Set(
      (options.availableFonts ?? [
        { family: 'Inter', style: 'Regular' },
        { family: 'Inter', style: 'Medium' },
        { family: 'Inter', style: 'Semi Bold' },
        { family: 'Inter', style: 'Bold' },
      ]).map(fontId),
    );
    this.library = options.libraryComponents ?? {};
    this.imageSize = options.imageSize ?? { width: 640, height: 480 };
    this.document = new FakeContainer('DOCUMENT', this);
    this.currentPage = new FakePage(this);
    this.document.appendChild(this.currentPage);
    const onUiMessage = options.onUiMessage;
    const ui: FakeUi = {
      postMessage: (message) => {
        this.uiMessages.push(message);
        onUiMessage?.(message);
      },
      onmessage: undefined,
      on: (_type, handler) => {
        ui.onmessage = handler;
      },
      resize: () => undefined,
    };
    this.ui = ui;
  }

  get root(): FakeContainer {
    return this.document;
  }

  createFrame = (): FakeFrame => this.onPage(new FakeFrame(this));
  createText = (): FakeText => this.onPage(new FakeText(this));
  createRectangle = (): FakeRectangle => this.onPage(new FakeRectangle(this));

  /** New nodes start on the current page, as in Figma. */
  private onPage<T extends FakeNode>(node: T): T {
    this.currentPage.appendChild(node);
    return node;
  }

  loadFontAsync = async (font: FontName): Promise<void> => {
    this.fontLoadCalls.push({ ...font });
    if (!this.availableFonts.has(fontId(font))) throw new Error(`The font "${font.family} ${font.style}" could not be loaded`);
    this.loadedFonts.add(fontId(font));
  };

  importComponentByKeyAsync = async (key: string): Promise<FakeComponent> => {
    this.importCalls.push(key);
    const spec = this.library[key];
    if (!spec) throw new Error(`Could not find a published component with key "${key}"`);
    const component = new FakeComponent(this);
    component.key = key;
    component.name = spec.name;
    component.width = spec.width;
    component.height = spec.height;
    return component;
  };

  /** Adds a local component to the current page (for design-system collection). */
  addLocalComponent(key: string, name: string, description = ''): FakeComponent {
    const component = new FakeComponent(this);
    component.key = key;
    component.name = name;
    component.description = description;
    this.currentPage.appendChild(component);
    return component;
  }

  createImage = (bytes: Uint8Array): FakeImage => {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new Error('Image data is empty or invalid');
    const size = this.imageSize;
    const image: FakeImage = { hash: hashBytes(bytes), bytes, getSizeAsync: async () => ({ ...size }) };
    this.images.set(image.hash, image);
    return image;
  };

  getNodeByIdAsync = async (id: string): Promise<FakeNode | null> => this.nodes.get(id) ?? null;

  getLocalPaintStylesAsync = async (): Promise<FakeFigma['paintStyles']> => this.paintStyles;
  getLocalTextStylesAsync = async (): Promise<FakeFigma['textStyles']> => this.textStyles;
  pagesLoaded = false;
  loadAllPagesAsync = async (): Promise<void> => {
    this.pagesLoaded = true;
  };

  notify = (message: string, options?: unknown): { cancel(): void } => {
    this.notifications.push(options === undefined ? { message } : { message, options });
    return { cancel: () => undefined };
  };

  showUI = (html: string): void => {
    this.shownHtml = html;
  };

  on = (event: string, handler: () => void): void => {
    this.eventHandlers.set(event, [...(this.eventHandlers.get(event) ?? []), handler]);
  };

  emit(event: string): void {
    for (const handler of this.eventHandlers.get(event) ?? []) handler();
  }

  /** Delivers a UI → main message the way Figma does (figma.ui.onmessage). */
  sendFromUi(message: unknown): void {
    const handler = this.ui.onmessage;
    if (!handler) throw new Error('figma.ui.onmessage is not set');
    handler(message);
  }

  /**
   * The fake typed as the real API. The fake implements the subset the plugin
   * calls; the cast is confined to this one place.
   */
  asPluginApi(): PluginAPI {
    return this as unknown as PluginAPI;
  }
}
