// Reading job results in the UI before they are handed to the main thread.
import { isFiniteNumber, isRecord } from '../shared/guards';

export interface ImageResultInfo {
  path: string;
  mimeType: string;
  width?: number;
  height?: number;
  signedUrl?: string;
}

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
  if (typeof result.signed_url === 'string' && result.signed_url !== '') info.signedUrl = result.signed_url;
  return info;
}

/** The final text of a generate_edits result (falls back to the streamed text). */
export function editText(result: unknown, streamed: string): string {
  if (typeof result === 'string') return result;
  if (isRecord(result)) {
    if (typeof result.text === 'string') return result.text;
    if (Array.isArray(result.edits)) {
      return result.edits
        .map((edit, i) => {
          if (typeof edit === 'string') return `${i + 1}. ${edit}`;
          if (isRecord(edit)) {
            const title = typeof edit.title === 'string' ? edit.title : `Edit ${i + 1}`;
            const body = typeof edit.description === 'string' ? edit.description : typeof edit.text === 'string' ? edit.text : '';
            return `${i + 1}. ${title}${body ? ` — ${body}` : ''}`;
          }
          return '';
        })
        .filter((line) => line !== '')
        .join('\n');
    }
  }
  return streamed;
}

/** Design trees an edits result may carry (variants to place on the canvas). */
export function editTrees(result: unknown): unknown[] {
  if (!isRecord(result)) return [];
  const variants = Array.isArray(result.variants) ? result.variants : Array.isArray(result.trees) ? result.trees : [];
  return variants
    .map((v) => (isRecord(v) && isRecord(v.tree) ? v.tree : v))
    .filter((v) => isRecord(v) && typeof v.type === 'string');
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
