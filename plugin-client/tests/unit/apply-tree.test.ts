import { describe, expect, it } from 'vitest';
import { buildDesignTree, fontStyleForWeight } from '../../src/main/apply-tree';
import { parseDesignTree } from '../../src/shared/design-tree';
import { FakeFigma, FakeFrame, FakeInstance, FakeRectangle, FakeText } from '../support/fake-figma';

async function build(fake: FakeFigma, tree: unknown) {
  return buildDesignTree(fake.asPluginApi(), parseDesignTree(tree));
}

describe('buildDesignTree', () => {
  it('builds an auto-layout frame with padding, gap, fills and ordered children', async () => {
    const fake = new FakeFigma();
    const result = await build(fake, {
      type: 'FRAME',
      name: 'Card',
      width: 320,
      layout: { mode: 'VERTICAL', padding: { top: 24, left: 16, right: 16, bottom: 8 }, gap: 12, align: 'CENTER' },
      fills: [{ type: 'SOLID', color: { r: 0.1, g: 0.2, b: 0.3 }, opacity: 0.5 }],
      cornerRadius: 12,
      children: [
        { type: 'RECTANGLE', name: 'Hero', width: 288, height: 120, fills: [{ type: 'SOLID', color: { r: 1, g: 0, b: 0 } }], cornerRadius: 8 },
        { type: 'FRAME', name: 'Row', layout: { mode: 'HORIZONTAL', gap: 4 } },
      ],
    });

    const root = result.root as unknown as FakeFrame;
    expect(root).toBeInstanceOf(FakeFrame);
    expect(root.name).toBe('Card');
    expect(root.layoutMode).toBe('VERTICAL');
    expect([root.paddingTop, root.paddingRight, root.paddingBottom, root.paddingLeft]).toEqual([24, 16, 8, 16]);
    expect(root.itemSpacing).toBe(12);
    expect(root.primaryAxisAlignItems).toBe('CENTER');
    expect(root.width).toBe(320);
    // Vertical layout: width given → counter axis fixed; height missing → primary axis hugs.
    expect(root.counterAxisSizingMode).toBe('FIXED');
    expect(root.primaryAxisSizingMode).toBe('AUTO');
    expect(root.cornerRadius).toBe(12);
    expect(root.fills).toEqual([{ type: 'SOLID', color: { r: 0.1, g: 0.2, b: 0.3 }, opacity: 0.5 }]);

    expect(root.children.map((c) => c.name)).toEqual(['Hero', 'Row']);
    const hero = root.children[0] as FakeRectangle;
    expect(hero).toBeInstanceOf(FakeRectangle);
    expect([hero.width, hero.height, hero.cornerRadius]).toEqual([288, 120, 8]);
    expect(hero.fills).toEqual([{ type: 'SOLID', color: { r: 1, g: 0, b: 0 }, opacity: 1 }]);
    const row = root.children[1] as FakeFrame;
    expect(row.layoutMode).toBe('HORIZONTAL');
    expect(row.primaryAxisSizingMode).toBe('AUTO');
    expect(row.counterAxisSizingMode).toBe('AUTO');
    // Nested frames without fills are transparent; the root keeps its default.
    expect(row.fills).toEqual([]);
    expect(result.created).toBe(3);
    // Children moved into the root: only the root remains directly on the page.
    expect(fake.currentPage.children).toEqual([root]);
  });

  it('loads the font before writing text and maps weights to styles', async () => {
    const fake = new FakeFigma();
    const result = await build(fake, {
      type: 'FRAME',
      name: 'Texts',
      children: [
        { type: 'TEXT', name: 'Title', characters: 'Hello', fontSize: 24, fontWeight: 700 },
        { type: 'TEXT', name: 'Body', characters: 'World', width: 200 },
        { type: 'TEXT', name: 'Body 2', characters: 'Again' },
      ],
    });
    const [title, body, body2] = (result.root as unknown as FakeFrame).children as FakeText[];
    expect(title?.fontName).toEqual({ family: 'Inter', style: 'Bold' });
    expect(title?.characters).toBe('Hello');
    expect(title?.fontSize).toBe(24);
    expect(body?.fontName).toEqual({ family: 'Inter', style: 'Regular' });
    expect(body?.textAutoResize).toBe('HEIGHT');
    expect(body?.width).toBe(200);
    expect(body2?.characters).toBe('Again');
    // Each distinct font is loaded once.
    expect(fake.fontLoadCalls).toEqual([
      { family: 'Inter', style: 'Bold' },
      { family: 'Inter', style: 'Regular' },
    ]);
    expect(result.fontFallbacks).toEqual([]);
  });

  it('falls back to Inter Regular when a font cannot be loaded', async () => {
    const fake = new FakeFigma();
    const result = await build(fake, { type: 'TEXT', name: 'T', characters: 'x', fontFamily: 'Comic Neue', fontWeight: 300 });
    const text = result.root as unknown as FakeText;
    expect(text.fontName).toEqual({ family: 'Inter', style: 'Regular' });
    expect(text.characters).toBe('x');
    expect(result.fontFallbacks).toEqual(['Comic Neue Light']);
  });

  it('creates instances of library components and placeholders for unknown keys', async () => {
    const fake = new FakeFigma({ libraryComponents: { 'key-button': { name: 'Button', width: 80, height: 32 } } });
    const result = await build(fake, {
      type: 'FRAME',
      name: 'Bar',
      children: [
        { type: 'INSTANCE', name: 'Primary', componentKey: 'key-button', width: 120 },
        { type: 'INSTANCE', name: 'Avatar', componentKey: 'key-missing', width: 40, height: 40 },
        { type: 'INSTANCE', name: 'Again', componentKey: 'key-button' },
      ],
    });
    const [primary, avatar, again] = (result.root as unknown as FakeFrame).children;
    expect(primary).toBeInstanceOf(FakeInstance);
    expect((primary as FakeInstance).mainComponent.key).toBe('key-button');
    expect([primary?.name, primary?.width, primary?.height]).toEqual(['Primary', 120, 32]);
    expect(avatar).toBeInstanceOf(FakeFrame);
    expect(avatar?.name).toBe('Avatar (missing component)');
    expect([avatar?.width, avatar?.height]).toEqual([40, 40]);
    expect(avatar?.getPluginData('missingComponentKey')).toBe('key-missing');
    expect(again).toBeInstanceOf(FakeInstance);
    expect(result.missingComponents).toEqual(['key-missing']);
    // The same key is imported once.
    expect(fake.importCalls).toEqual(['key-button', 'key-missing']);
  });

  it('maps font weights to the nearest named style', () => {
    expect(fontStyleForWeight(undefined)).toBe('Regular');
    expect(fontStyleForWeight(600)).toBe('Semi Bold');
    expect(fontStyleForWeight(640)).toBe('Semi Bold');
    expect(fontStyleForWeight(960)).toBe('Black');
    expect(fontStyleForWeight(120)).toBe('Thin');
  });
});
