// Collects what a model needs to know about the document: the selected layers
// and a summary of the local design system.
import type { ComponentInfo, DesignSystemSummary, LayerInfo, PaintStyleInfo, TextStyleInfo } from '../shared/protocol';

export interface CollectLimits {
  maxLayers: number;
  maxDepth: number;
  maxTextLength: number;
}

export const DEFAULT_COLLECT_LIMITS: CollectLimits = { maxLayers: 200, maxDepth: 6, maxTextLength: 200 };

/** Selected layers and their descendants, depth-first, up to the limits. */
export function collectLayers(
  selection: readonly SceneNode[],
  limits: CollectLimits = DEFAULT_COLLECT_LIMITS,
): { layers: LayerInfo[]; truncated: boolean } {
  const layers: LayerInfo[] = [];
  let truncated = false;
  const visit = (node: SceneNode, depth: number, parentId: string | null): void => {
    if (layers.length >= limits.maxLayers) {
      truncated = true;
      return;
    }
    const info: LayerInfo = { id: node.id, name: node.name, type: node.type, parentId, depth };
    if ('width' in node) {
      info.width = Math.round(node.width);
      info.height = Math.round(node.height);
    }
    if (node.type === 'TEXT') info.characters = node.characters.slice(0, limits.maxTextLength);
    layers.push(info);
    // Instances are opaque to renaming; their insides belong to the component.
    if ('children' in node && node.type !== 'INSTANCE') {
      if (depth + 1 > limits.maxDepth) {
        if (node.children.length > 0) truncated = true;
        return;
      }
      for (const child of node.children) visit(child, depth + 1, node.id);
    }
  };
  for (const node of selection) visit(node, 0, null);
  return { layers, truncated };
}

function hex(color: RGB): string {
  const c = (v: number): string =>
    Math.round(Math.min(1, Math.max(0, v)) * 255)
      .toString(16)
      .padStart(2, '0');
  return `#${c(color.r)}${c(color.g)}${c(color.b)}`;
}

export type DesignSystemApi = Pick<
  PluginAPI,
  'getLocalPaintStylesAsync' | 'getLocalTextStylesAsync' | 'loadAllPagesAsync' | 'root'
>;

export async function collectDesignSystem(api: DesignSystemApi, maxComponents = 300): Promise<DesignSystemSummary> {
  const paintStyles: PaintStyleInfo[] = (await api.getLocalPaintStylesAsync()).map((style) => {
    const info: PaintStyleInfo = { key: style.key, name: style.name };
    const solid = style.paints.find((p): p is SolidPaint => p.type === 'SOLID');
    if (solid) info.color = hex(solid.color);
    return info;
  });
  const textStyles: TextStyleInfo[] = (await api.getLocalTextStylesAsync()).map((style) => ({
    key: style.key,
    name: style.name,
    fontFamily: style.fontName.family,
    fontStyle: style.fontName.style,
    fontSize: style.fontSize,
  }));
  // dynamic-page access: other pages must be loaded before searching them.
  await api.loadAllPagesAsync();
  const components: ComponentInfo[] = [];
  for (const node of api.root.findAllWithCriteria({ types: ['COMPONENT'] })) {
    if (components.length >= maxComponents) break;
    const info: ComponentInfo = { key: node.key, name: node.name };
    if (node.description) info.description = node.description;
    components.push(info);
  }
  return { paintStyles, textStyles, components };
}
