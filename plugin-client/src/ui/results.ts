// Reading job results in the UI before they are handed to the main thread.
import { isFiniteNumber, isRecord } from '../shared/guards';

export interface ImageResultInfo {
  path: string;
  mimeType: string;
  width?: number;
  height?: number;
}

/** Reads a generate_image result ({path, mime_type, width, height, bytes}). */
export function parseImageResult(result: unknown): ImageResultInfo {
  if (!isRecord(result) || typeof result.path !== 'string' || result.path === '') {
    throw new Error('The image result has no storage path');
  }
  const info: ImageResultInfo = {
    path: result.path,
    mimeType: typeof result.mime_type === 'string' ? result.mime_type : 'image/png',
  };
  if (isFiniteNumber(result.width) && result.width > 0) info.width = result.width;
  if (isFiniteNumber(result.height) && result.height > 0) info.height = result.height;
  return info;
}

/**
 * The text to show for a generate_edits result ({variants: [{title, text}]}):
 * one numbered block per variant. Falls back to the streamed text.
 */
export function editText(result: unknown, streamed: string): { text: string; count: number } {
  const variants = isRecord(result) && Array.isArray(result.variants) ? result.variants : [];
  const blocks: string[] = [];
  for (const variant of variants) {
    if (!isRecord(variant) || typeof variant.text !== 'string' || variant.text === '') continue;
    const title = typeof variant.title === 'string' && variant.title !== '' ? variant.title : `Variant ${blocks.length + 1}`;
    blocks.push(`${blocks.length + 1}. ${title}\n${variant.text}`);
  }
  if (blocks.length === 0) return { text: streamed, count: 0 };
  return { text: blocks.join('\n\n'), count: blocks.length };
}

export function summarizeApplyDesign(summary: {
  created: number;
  missingComponents: string[];
  fontFallbacks: string[];
}): string {
  const parts = [`Created ${summary.created} layer${summary.created === 1 ? '' : 's'}`];
  if (summary.missingComponents.length > 0) {
    parts.push(`${summary.missingComponents.length} component(s) unavailable, placeholders used`);
  }
  if (summary.fontFallbacks.length > 0) parts.push(`fonts replaced: ${summary.fontFallbacks.join(', ')}`);
  return parts.join('; ');
}
