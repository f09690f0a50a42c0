// The design tree the generate_design handler returns ({root, node_count};
// the node is the generated FigmaNode type from the worker's JSON Schema).
// parseDesignTree() validates untrusted results before they touch the canvas,
// and is lenient where models often slip (0..255 colours, START/END aligns).
import { isFiniteNumber, isRecord } from './guards';

export type DesignNodeType = 'FRAME' | 'TEXT' | 'RECTANGLE' | 'INSTANCE';
export type LayoutMode = 'HORIZONTAL' | 'VERTICAL' | 'NONE';
/** Primary-axis alignment; START/END are accepted as aliases of MIN/MAX. */
export type LayoutAlign = 'MIN' | 'CENTER' | 'MAX' | 'SPACE_BETWEEN';

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

export interface SolidFill {
  type: 'SOLID';
  /** Channels normalised to 0..1 (Figma's convention). */
  color: Rgb;
  opacity?: number;
}

export interface Padding {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

export interface DesignLayout {
  mode: LayoutMode;
  padding?: Padding;
  gap?: number;
  align?: LayoutAlign;
}

export interface DesignNode {
  type: DesignNodeType;
  name: string;
  width?: number;
  height?: number;
  fills?: SolidFill[];
  layout?: DesignLayout;
  characters?: string;
  fontSize?: number;
  fontWeight?: number;
  fontFamily?: string;
  componentKey?: string;
  cornerRadius?: number;
  children: DesignNode[];
}

export interface DesignTreeLimits {
  maxNodes: number;
  maxDepth: number;
}

export const DEFAULT_TREE_LIMITS: DesignTreeLimits = { maxNodes: 2000, maxDepth: 32 };

export class DesignTreeError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'DesignTreeError';
  }
}

const NODE_TYPES: readonly DesignNodeType[] = ['FRAME', 'TEXT', 'RECTANGLE', 'INSTANCE'];
const LAYOUT_MODES: readonly LayoutMode[] = ['HORIZONTAL', 'VERTICAL', 'NONE'];
const ALIGN_ALIASES: Readonly<Record<string, LayoutAlign>> = {
  MIN: 'MIN',
  START: 'MIN',
  CENTER: 'CENTER',
  MAX: 'MAX',
  END: 'MAX',
  SPACE_BETWEEN: 'SPACE_BETWEEN',
};

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

function dimension(value: unknown, path: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isFiniteNumber(value) || value < 0) throw new DesignTreeError(path, 'must be a non-negative number');
  return value;
}

function parseColor(value: unknown, path: string): Rgb {
  if (!isRecord(value)) throw new DesignTreeError(path, 'must be an object {r,g,b}');
  const { r, g, b } = value;
  if (!isFiniteNumber(r) || !isFiniteNumber(g) || !isFiniteNumber(b)) {
    throw new DesignTreeError(path, 'r, g and b must be numbers');
  }
  // Models sometimes answer in 0..255; Figma wants 0..1. Any channel above 1
  // can only mean the 0..255 scale.
  const scale = r > 1 || g > 1 || b > 1 ? 255 : 1;
  return { r: clamp01(r / scale), g: clamp01(g / scale), b: clamp01(b / scale) };
}

function parseFills(value: unknown, path: string): SolidFill[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new DesignTreeError(path, 'must be an array');
  return value.map((fill, i) => {
    const p = `${path}[${i}]`;
    if (!isRecord(fill) || fill.type !== 'SOLID') throw new DesignTreeError(p, 'only SOLID fills are supported');
    const parsed: SolidFill = { type: 'SOLID', color: parseColor(fill.color, `${p}.color`) };
    if (fill.opacity !== undefined && fill.opacity !== null) {
      if (!isFiniteNumber(fill.opacity)) throw new DesignTreeError(`${p}.opacity`, 'must be a number');
      parsed.opacity = clamp01(fill.opacity);
    }
    return parsed;
  });
}

function parsePadding(value: unknown, path: string): Padding | undefined {
  if (value === undefined || value === null) return undefined;
  if (isFiniteNumber(value)) {
    const v = Math.max(0, value);
    return { top: v, right: v, bottom: v, left: v };
  }
  if (isRecord(value)) {
    const side = (key: string): number => dimension(value[key], `${path}.${key}`) ?? 0;
    return { top: side('top'), right: side('right'), bottom: side('bottom'), left: side('left') };
  }
  throw new DesignTreeError(path, 'must be a number or {top,right,bottom,left}');
}

function parseLayout(value: unknown, path: string): DesignLayout | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw new DesignTreeError(path, 'must be an object');
  const mode = value.mode ?? 'NONE';
  if (typeof mode !== 'string' || !LAYOUT_MODES.includes(mode as LayoutMode)) {
    throw new DesignTreeError(`${path}.mode`, `must be one of ${LAYOUT_MODES.join(', ')}`);
  }
  const layout: DesignLayout = { mode: mode as LayoutMode };
  const padding = parsePadding(value.padding, `${path}.padding`);
  if (padding) layout.padding = padding;
  const gap = dimension(value.gap, `${path}.gap`);
  if (gap !== undefined) layout.gap = gap;
  if (value.align !== undefined && value.align !== null) {
    const align = typeof value.align === 'string' ? ALIGN_ALIASES[value.align.toUpperCase()] : undefined;
    if (!align) throw new DesignTreeError(`${path}.align`, 'must be MIN, CENTER, MAX or SPACE_BETWEEN');
    layout.align = align;
  }
  return layout;
}

/** Validates an untrusted design tree and returns a normalised copy. */
export function parseDesignTree(input: unknown, limits: DesignTreeLimits = DEFAULT_TREE_LIMITS): DesignNode {
  let count = 0;

  const parseNode = (value: unknown, path: string, depth: number): DesignNode => {
    if (depth > limits.maxDepth) throw new DesignTreeError(path, `tree deeper than ${limits.maxDepth} levels`);
    count += 1;
    if (count > limits.maxNodes) throw new DesignTreeError(path, `tree has more than ${limits.maxNodes} nodes`);
    if (!isRecord(value)) throw new DesignTreeError(path, 'must be an object');
    const type = value.type;
    if (typeof type !== 'string' || !NODE_TYPES.includes(type as DesignNodeType)) {
      throw new DesignTreeError(`${path}.type`, `must be one of ${NODE_TYPES.join(', ')}`);
    }
    const name = typeof value.name === 'string' && value.name.trim() !== '' ? value.name : type.toLowerCase();
    const node: DesignNode = { type: type as DesignNodeType, name, children: [] };

    const width = dimension(value.width, `${path}.width`);
    if (width !== undefined) node.width = width;
    const height = dimension(value.height, `${path}.height`);
    if (height !== undefined) node.height = height;
    const fills = parseFills(value.fills, `${path}.fills`);
    if (fills) node.fills = fills;
    const layout = parseLayout(value.layout, `${path}.layout`);
    if (layout) node.layout = layout;
    const radius = dimension(value.cornerRadius, `${path}.cornerRadius`);
    if (radius !== undefined) node.cornerRadius = radius;

    if (node.type === 'TEXT') {
      if (value.characters !== undefined && typeof value.characters !== 'string') {
        throw new DesignTreeError(`${path}.characters`, 'must be a string');
      }
      node.characters = typeof value.characters === 'string' ? value.characters : '';
      const fontSize = dimension(value.fontSize, `${path}.fontSize`);
      if (fontSize !== undefined) node.fontSize = Math.max(1, fontSize);
      const weight = dimension(value.fontWeight, `${path}.fontWeight`);
      if (weight !== undefined) node.fontWeight = weight;
      if (typeof value.fontFamily === 'string' && value.fontFamily !== '') node.fontFamily = value.fontFamily;
    }
    if (node.type === 'INSTANCE' && typeof value.componentKey === 'string' && value.componentKey !== '') {
      node.componentKey = value.componentKey;
    }

    if (value.children !== undefined && value.children !== null) {
      if (!Array.isArray(value.children)) throw new DesignTreeError(`${path}.children`, 'must be an array');
      // Only frames can hold children in Figma; elsewhere they are dropped
      // rather than failing the whole result.
      if (node.type === 'FRAME') {
        node.children = value.children.map((child, i) => parseNode(child, `${path}.children[${i}]`, depth + 1));
      }
    }
    return node;
  };

  return parseNode(input, '$', 0);
}

/**
 * Finds the design tree inside a job result: either the result itself is a node
 * or it wraps one under `tree`, `root` or `design`.
 */
export function extractDesignTree(result: unknown): unknown {
  if (isRecord(result)) {
    if (typeof result.type === 'string') return result;
    for (const key of ['tree', 'root', 'design'] as const) {
      if (isRecord(result[key])) return result[key];
    }
  }
  throw new DesignTreeError('$', 'result holds no design tree (expected a node or {tree: node})');
}
