// Builds Figma nodes from a validated design tree. Takes the figma API as a
// parameter (not the global) so tests can pass a stub.
import type { DesignLayout, DesignNode, SolidFill } from '../shared/design-tree';

export type TreeBuilderApi = Pick<
  PluginAPI,
  'createFrame' | 'createText' | 'createRectangle' | 'loadFontAsync' | 'importComponentByKeyAsync'
>;

export interface BuildResult {
  root: SceneNode;
  created: number;
  /** Component keys that could not be imported (placeholders were used). */
  missingComponents: string[];
  /** "Family Style" names that failed to load (the default font was used). */
  fontFallbacks: string[];
}

export const DEFAULT_FONT: FontName = { family: 'Inter', style: 'Regular' };

const WEIGHT_STYLES: readonly [number, string][] = [
  [100, 'Thin'],
  [200, 'Extra Light'],
  [300, 'Light'],
  [400, 'Regular'],
  [500, 'Medium'],
  [600, 'Semi Bold'],
  [700, 'Bold'],
  [800, 'Extra Bold'],
  [900, 'Black'],
];

/** Maps a CSS-like weight to the nearest Inter-style name. */
export function fontStyleForWeight(weight: number | undefined): string {
  if (weight === undefined) return 'Regular';
  let best = WEIGHT_STYLES[3] as [number, string];
  for (const entry of WEIGHT_STYLES) {
    if (Math.abs(entry[0] - weight) < Math.abs(best[0] - weight)) best = entry;
  }
  return best[1];
}

export function toPaints(fills: readonly SolidFill[]): SolidPaint[] {
  return fills.map((fill) => ({
    type: 'SOLID',
    color: { r: fill.color.r, g: fill.color.g, b: fill.color.b },
    opacity: fill.opacity ?? 1,
  }));
}

const PLACEHOLDER_FILL: SolidPaint = { type: 'SOLID', color: { r: 0.93, g: 0.93, b: 0.95 }, opacity: 1 };
const PLACEHOLDER_STROKE: SolidPaint = { type: 'SOLID', color: { r: 0.6, g: 0.6, b: 0.65 }, opacity: 1 };

class TreeBuilder {
  private created = 0;
  private readonly fonts = new Map<string, Promise<FontName>>();
  private readonly components = new Map<string, Promise<ComponentNode | null>>();
  readonly missingComponents = new Set<string>();
  readonly fontFallbacks = new Set<string>();

  constructor(private readonly api: TreeBuilderApi) {}

  get count(): number {
    return this.created;
  }

  async build(node: DesignNode, isRoot: boolean): Promise<SceneNode> {
    switch (node.type) {
      case 'FRAME':
        return this.frame(node, isRoot);
      case 'TEXT':
        return this.text(node);
      case 'RECTANGLE':
        return this.rectangle(node);
      case 'INSTANCE':
        return this.instance(node);
    }
  }

  private async frame(node: DesignNode, isRoot: boolean): Promise<FrameNode> {
    const frame = this.api.createFrame();
    this.created += 1;
    frame.name = node.name;
    if (node.fills) frame.fills = toPaints(node.fills);
    // Nested containers are transparent unless the tree says otherwise; the
    // root keeps Figma's default white background.
    else if (!isRoot) frame.fills = [];
    if (node.cornerRadius !== undefined) frame.cornerRadius = node.cornerRadius;
    if (node.width !== undefined || node.height !== undefined) {
      frame.resize(Math.max(0.01, node.width ?? frame.width), Math.max(0.01, node.height ?? frame.height));
    }
    if (node.layout) this.applyLayout(frame, node.layout, node);
    // Children are built in order so the auto-layout order matches the tree.
    for (const child of node.children) {
      frame.appendChild(await this.build(child, false));
    }
    return frame;
  }

  private applyLayout(frame: FrameNode, layout: DesignLayout, node: DesignNode): void {
    frame.layoutMode = layout.mode;
    if (layout.mode === 'NONE') return;
    if (layout.padding) {
      frame.paddingTop = layout.padding.top;
      frame.paddingRight = layout.padding.right;
      frame.paddingBottom = layout.padding.bottom;
      frame.paddingLeft = layout.padding.left;
    }
    if (layout.gap !== undefined) frame.itemSpacing = layout.gap;
    if (layout.align) frame.primaryAxisAlignItems = layout.align;
    // A given dimension is fixed; a missing one hugs the content.
    const widthFixed = node.width !== undefined;
    const heightFixed = node.height !== undefined;
    const horizontal = layout.mode === 'HORIZONTAL';
    frame.primaryAxisSizingMode = (horizontal ? widthFixed : heightFixed) ? 'FIXED' : 'AUTO';
    frame.counterAxisSizingMode = (horizontal ? heightFixed : widthFixed) ? 'FIXED' : 'AUTO';
  }

  private async text(node: DesignNode): Promise<TextNode> {
    const text = this.api.createText();
    this.created += 1;
    text.name = node.name;
    // Figma refuses to change text until the node's font is loaded.
    text.fontName = await this.loadFont({
      family: node.fontFamily ?? DEFAULT_FONT.family,
      style: fontStyleForWeight(node.fontWeight),
    });
    text.characters = node.characters ?? '';
    if (node.fontSize !== undefined) text.fontSize = node.fontSize;
    if (node.fills) text.fills = toPaints(node.fills);
    if (node.width !== undefined) {
      // Fixed width, wrapping text that grows in height.
      text.textAutoResize = 'HEIGHT';
      text.resize(Math.max(0.01, node.width), Math.max(0.01, node.height ?? text.height));
    }
    return text;
  }

  private loadFont(font: FontName): Promise<FontName> {
    const id = `${font.family} ${font.style}`;
    let pending = this.fonts.get(id);
    if (!pending) {
      pending = this.api.loadFontAsync(font).then(
        () => font,
        async () => {
          this.fontFallbacks.add(id);
          await this.api.loadFontAsync(DEFAULT_FONT);
          return DEFAULT_FONT;
        },
      );
      this.fonts.set(id, pending);
    }
    return pending;
  }

  private rectangle(node: DesignNode): RectangleNode {
    const rect = this.api.createRectangle();
    this.created += 1;
    rect.name = node.name;
    if (node.width !== undefined || node.height !== undefined) {
      rect.resize(Math.max(0.01, node.width ?? rect.width), Math.max(0.01, node.height ?? rect.height));
    }
    if (node.fills) rect.fills = toPaints(node.fills);
    if (node.cornerRadius !== undefined) rect.cornerRadius = node.cornerRadius;
    return rect;
  }

  private async instance(node: DesignNode): Promise<SceneNode> {
    const component = node.componentKey ? await this.importComponent(node.componentKey) : null;
    if (!component) {
      if (node.componentKey) this.missingComponents.add(node.componentKey);
      return this.placeholder(node);
    }
    const instance = component.createInstance();
    this.created += 1;
    instance.name = node.name;
    if (node.width !== undefined || node.height !== undefined) {
      instance.resize(Math.max(0.01, node.width ?? instance.width), Math.max(0.01, node.height ?? instance.height));
    }
    return instance;
  }

  private importComponent(key: string): Promise<ComponentNode | null> {
    let pending = this.components.get(key);
    if (!pending) {
      // Unpublished, deleted or inaccessible components reject: fall back.
      pending = this.api.importComponentByKeyAsync(key).catch(() => null);
      this.components.set(key, pending);
    }
    return pending;
  }

  /** A visible stand-in for a component that could not be imported. */
  private placeholder(node: DesignNode): FrameNode {
    const frame = this.api.createFrame();
    this.created += 1;
    frame.name = `${node.name} (missing component)`;
    frame.resize(Math.max(0.01, node.width ?? 120), Math.max(0.01, node.height ?? 40));
    frame.fills = [PLACEHOLDER_FILL];
    frame.strokes = [PLACEHOLDER_STROKE];
    frame.dashPattern = [4, 4];
    frame.cornerRadius = node.cornerRadius ?? 4;
    frame.setPluginData('missingComponentKey', node.componentKey ?? '');
    return frame;
  }
}

/** Creates the nodes for `tree`; the root is left where Figma put it (the current page). */
export async function buildDesignTree(api: TreeBuilderApi, tree: DesignNode): Promise<BuildResult> {
  const builder = new TreeBuilder(api);
  const root = await builder.build(tree, true);
  return {
    root,
    created: builder.count,
    missingComponents: [...builder.missingComponents],
    fontFallbacks: [...builder.fontFallbacks],
  };
}
