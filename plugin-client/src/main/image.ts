// Places generated image bytes on the canvas as a rectangle with an IMAGE fill.
export type ImageApi = Pick<PluginAPI, 'createImage' | 'createRectangle'>;

export interface ImageInput {
  bytes: Uint8Array;
  name: string;
  width?: number;
  height?: number;
}

/** Largest side of the created rectangle; big images are scaled down to fit. */
export const MAX_IMAGE_SIDE = 2048;

export async function createImageNode(api: ImageApi, input: ImageInput): Promise<RectangleNode> {
  const image = api.createImage(input.bytes);
  let width = input.width;
  let height = input.height;
  if (width === undefined || height === undefined) {
    const size = await image.getSizeAsync();
    width = size.width;
    height = size.height;
  }
  const scale = Math.min(1, MAX_IMAGE_SIDE / Math.max(width, height));
  const rect = api.createRectangle();
  rect.name = input.name;
  rect.resize(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
  rect.fills = [{ type: 'IMAGE', imageHash: image.hash, scaleMode: 'FILL' }];
  return rect;
}
