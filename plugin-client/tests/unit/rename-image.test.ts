import { describe, expect, it } from 'vitest';
import { createImageNode, MAX_IMAGE_SIDE } from '../../src/main/image';
import { parseRenameResult, renameLayers, RenameResultError } from '../../src/main/rename';
import { FakeFigma, FakeRectangle } from '../support/fake-figma';

describe('renameLayers', () => {
  it('renames layers by id and reports ids that no longer exist', async () => {
    const fake = new FakeFigma();
    const a = fake.createRectangle();
    const b = fake.createFrame();
    const gone = fake.createText();
    const goneId = gone.id;
    gone.remove();
    a.name = 'Rectangle';
    b.name = 'Frame 12';

    const summary = await renameLayers(
      fake.asPluginApi(),
      parseRenameResult({ names: [{ id: a.id, name: 'Hero image' }, { id: b.id, name: 'Frame 12' }, { id: goneId, name: 'Label' }] }),
    );
    expect(a.name).toBe('Hero image');
    expect(b.name).toBe('Frame 12');
    // b already had the name: not counted as renamed.
    expect(summary).toEqual({ renamed: 1, missing: [goneId], changes: [{ id: a.id, from: 'Rectangle', to: 'Hero image' }] });
  });

  it('never renames the document', async () => {
    const fake = new FakeFigma();
    const summary = await renameLayers(fake.asPluginApi(), [{ id: fake.document.id, name: 'Hacked' }]);
    expect(fake.document.name).not.toBe('Hacked');
    expect(summary.missing).toEqual([fake.document.id]);
  });

  it('parses results leniently but rejects the wrong shape', () => {
    expect(
      parseRenameResult({ names: [{ id: '1:2', name: '  Title  ' }, { id: '1:3', name: '   ' }, { id: 4, name: 'x' }, 'junk'] }),
    ).toEqual([{ id: '1:2', name: 'Title' }]);
    expect(parseRenameResult([{ id: '1:2', name: 'A' }])).toEqual([{ id: '1:2', name: 'A' }]);
    expect(() => parseRenameResult({ renamed: [] })).toThrowError(RenameResultError);
  });
});

describe('createImageNode', () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

  it('creates a rectangle with an IMAGE fill of the image bytes', async () => {
    const fake = new FakeFigma();
    const node = (await createImageNode(fake.asPluginApi(), { bytes: png, name: 'Sunset', width: 512, height: 256 })) as unknown as FakeRectangle;
    expect(node).toBeInstanceOf(FakeRectangle);
    expect(node.name).toBe('Sunset');
    expect([node.width, node.height]).toEqual([512, 256]);
    expect(node.fills).toHaveLength(1);
    const fill = node.fills[0] as { type: string; imageHash: string; scaleMode: string };
    expect(fill.type).toBe('IMAGE');
    expect(fill.scaleMode).toBe('FILL');
    // The hash refers to an image created from exactly these bytes.
    expect(fake.images.get(fill.imageHash)?.bytes).toBe(png);
  });

  it('asks the image for its size when the result has none, and scales big images down', async () => {
    const fake = new FakeFigma({ imageSize: { width: 4096, height: 1024 } });
    const node = (await createImageNode(fake.asPluginApi(), { bytes: png, name: 'Wide' })) as unknown as FakeRectangle;
    expect([node.width, node.height]).toEqual([MAX_IMAGE_SIDE, MAX_IMAGE_SIDE / 4]);
  });
});
