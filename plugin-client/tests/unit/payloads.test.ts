import { describe, expect, it } from 'vitest';
import type { LayerInfo } from '../../src/shared/protocol';
import {
  designSystemPayload,
  generateDesignPayload,
  generateEditsPayload,
  generateImagePayload,
  PAYLOAD_LIMITS,
  PayloadError,
  renameLayersPayload,
} from '../../src/ui/payloads';

const layer = (id: string, extra: Partial<LayerInfo> = {}): LayerInfo => ({
  id,
  name: `Layer ${id}`,
  type: 'RECTANGLE',
  parentId: null,
  depth: 0,
  ...extra,
});

describe('job payloads match the worker models', () => {
  it('rename_layers: only the fields the worker accepts, ids unique, context from the prompt', () => {
    const payload = renameLayersPayload(
      [
        layer('1:1', { type: 'FRAME', width: 100, height: 50 }),
        layer('1:2', { type: 'TEXT', characters: 'Hello', parentId: '1:1', depth: 1 }),
        layer('1:2'),
      ],
      '  a login screen ',
    );
    expect(payload).toEqual({
      layers: [
        { id: '1:1', type: 'FRAME', name: 'Layer 1:1' },
        { id: '1:2', type: 'TEXT', name: 'Layer 1:2', text: 'Hello', parent_id: '1:1' },
      ],
      context: 'a login screen',
    });
    expect(renameLayersPayload([layer('1:1')], '')).not.toHaveProperty('context');
  });

  it('rename_layers: clips long names and refuses an empty selection', () => {
    const payload = renameLayersPayload([layer('1:1', { name: 'n'.repeat(900), type: 'X'.repeat(60) })], '');
    expect(payload.layers[0].name).toHaveLength(PAYLOAD_LIMITS.layerName);
    expect(payload.layers[0].type).toHaveLength(PAYLOAD_LIMITS.layerType);
    expect(() => renameLayersPayload([], 'x')).toThrowError(PayloadError);
  });

  it('generate_design: prompt plus a prose design system and component refs', () => {
    const payload = generateDesignPayload(' A pricing card ', {
      paintStyles: [{ key: 'p', name: 'Brand/Primary', color: '#0d99ff' }],
      textStyles: [{ key: 't', name: 'Heading', fontFamily: 'Inter', fontStyle: 'Bold', fontSize: 24 }],
      components: [{ key: 'button-key', name: 'Button', description: 'Primary action' }, { key: '', name: 'Broken' }],
    });
    expect(payload).toEqual({
      prompt: 'A pricing card',
      design_system: {
        summary: 'Colors: Brand/Primary #0d99ff\nText styles: Heading (Inter Bold 24)\nComponents: Button: Primary action',
        components: [{ name: 'Button', key: 'button-key' }],
      },
    });
    expect(generateDesignPayload('x', null)).toEqual({ prompt: 'x' });
    expect(designSystemPayload({ paintStyles: [], textStyles: [], components: [] })).toBeUndefined();
    expect(() => generateDesignPayload('  ', null)).toThrowError(/prompt/);
  });

  it('generate_design: many components stay within the payload budget', () => {
    const components = Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`.padEnd(150, 'k'), name: `Component ${i}`.padEnd(150, '.') }));
    const ds = designSystemPayload({ paintStyles: [], textStyles: [], components });
    expect(ds?.components?.length).toBeGreaterThan(0);
    expect(ds?.components?.length).toBeLessThanOrEqual(PAYLOAD_LIMITS.components);
    expect(JSON.stringify(ds).length).toBeLessThan(PAYLOAD_LIMITS.componentsJsonBudget + 100);
  });

  it('generate_edits: selected text is the copy and the prompt the instruction', () => {
    const selection = [layer('1:1', { type: 'TEXT', characters: 'Sign in to continue' }), layer('1:2')];
    expect(generateEditsPayload('friendlier', selection)).toEqual({ text: 'Sign in to continue', instruction: 'friendlier', variants: 3 });
    expect(generateEditsPayload('Rewrite me', [])).toEqual({ text: 'Rewrite me', variants: 3 });
    expect(() => generateEditsPayload('', [layer('1:2')])).toThrowError(PayloadError);
  });

  it('generate_image: prompt and a square aspect ratio', () => {
    expect(generateImagePayload(' A red square ')).toEqual({ prompt: 'A red square', aspect_ratio: '1:1' });
    expect(() => generateImagePayload('')).toThrowError(/prompt/);
  });
});
