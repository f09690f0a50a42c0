import { describe, expect, it } from 'vitest';
import { collectLayers } from '../../src/main/collect';
import { FakeFigma } from '../support/fake-figma';

describe('collectLayers', () => {
  it('walks selected layers depth-first and stops at the limits', () => {
    const fake = new FakeFigma();
    const outer = fake.createFrame();
    const inner = fake.createFrame();
    const leaf = fake.createRectangle();
    inner.appendChild(leaf);
    outer.appendChild(inner);
    const sel = [outer] as unknown as SceneNode[];

    const all = collectLayers(sel, { maxLayers: 10, maxDepth: 5, maxTextLength: 10 });
    expect(all.layers.map((l) => [l.id, l.depth, l.parentId])).toEqual([
      [outer.id, 0, null],
      [inner.id, 1, outer.id],
      [leaf.id, 2, inner.id],
    ]);
    expect(all.truncated).toBe(false);

    const shallow = collectLayers(sel, { maxLayers: 10, maxDepth: 1, maxTextLength: 10 });
    expect(shallow.layers.map((l) => l.id)).toEqual([outer.id, inner.id]);
    expect(shallow.truncated).toBe(true);

    const few = collectLayers(sel, { maxLayers: 2, maxDepth: 5, maxTextLength: 10 });
    expect(few.layers).toHaveLength(2);
    expect(few.truncated).toBe(true);
  });
});
