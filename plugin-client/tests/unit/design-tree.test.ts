import { describe, expect, it } from 'vitest';
import { DesignTreeError, extractDesignTree, parseDesignTree } from '../../src/shared/design-tree';

describe('parseDesignTree', () => {
  it('normalises a valid tree', () => {
    const tree = parseDesignTree({
      type: 'FRAME',
      name: 'Card',
      width: 320,
      layout: { mode: 'VERTICAL', padding: 16, gap: 8, align: 'START' },
      fills: [{ type: 'SOLID', color: { r: 255, g: 128, b: 0 }, opacity: 2 }],
      children: [{ type: 'TEXT', name: 'Title', characters: 'Hi', fontSize: 20, fontWeight: 700 }],
    });
    expect(tree.layout).toEqual({
      mode: 'VERTICAL',
      padding: { top: 16, right: 16, bottom: 16, left: 16 },
      gap: 8,
      align: 'MIN',
    });
    // 0..255 colours are rescaled to Figma's 0..1; opacity is clamped.
    expect(tree.fills).toEqual([{ type: 'SOLID', color: { r: 1, g: 128 / 255, b: 0 }, opacity: 1 }]);
    expect(tree.children).toHaveLength(1);
    expect(tree.children[0]).toMatchObject({ type: 'TEXT', characters: 'Hi', fontSize: 20, fontWeight: 700 });
  });

  it('keeps 0..1 colours as they are', () => {
    const tree = parseDesignTree({ type: 'RECTANGLE', name: 'r', fills: [{ type: 'SOLID', color: { r: 0.5, g: 1, b: 0 } }] });
    expect(tree.fills?.[0]?.color).toEqual({ r: 0.5, g: 1, b: 0 });
  });

  it('reports the path of an invalid node', () => {
    const bad = { type: 'FRAME', name: 'root', children: [{ type: 'TEXT', name: 'ok' }, { type: 'ELLIPSE', name: 'x' }] };
    expect(() => parseDesignTree(bad)).toThrowError(DesignTreeError);
    expect(() => parseDesignTree(bad)).toThrowError(/\$\.children\[1\]\.type/);
  });

  it('rejects negative sizes and non-solid fills', () => {
    expect(() => parseDesignTree({ type: 'FRAME', name: 'a', width: -1 })).toThrowError(/\$\.width/);
    expect(() => parseDesignTree({ type: 'FRAME', name: 'a', fills: [{ type: 'IMAGE' }] })).toThrowError(/fills\[0\]/);
  });

  it('enforces node and depth limits', () => {
    const wide = { type: 'FRAME', name: 'w', children: Array.from({ length: 5 }, () => ({ type: 'RECTANGLE', name: 'r' })) };
    expect(() => parseDesignTree(wide, { maxNodes: 5, maxDepth: 10 })).toThrowError(/more than 5 nodes/);
    expect(parseDesignTree(wide, { maxNodes: 6, maxDepth: 10 }).children).toHaveLength(5);
    const deep = { type: 'FRAME', name: 'd', children: [{ type: 'FRAME', name: 'd2', children: [{ type: 'FRAME', name: 'd3' }] }] };
    expect(() => parseDesignTree(deep, { maxNodes: 100, maxDepth: 1 })).toThrowError(/deeper than 1/);
  });

  it('drops children of nodes that cannot have any and names unnamed nodes', () => {
    const tree = parseDesignTree({ type: 'TEXT', children: [{ type: 'RECTANGLE', name: 'x' }] });
    expect(tree.children).toEqual([]);
    expect(tree.name).toBe('text');
  });
});

describe('extractDesignTree', () => {
  it('accepts a bare node or a {tree} wrapper', () => {
    const node = { type: 'FRAME', name: 'a' };
    expect(extractDesignTree(node)).toBe(node);
    expect(extractDesignTree({ tree: node })).toBe(node);
    expect(extractDesignTree({ root: node })).toBe(node);
    expect(() => extractDesignTree({ nothing: true })).toThrowError(DesignTreeError);
  });
});
