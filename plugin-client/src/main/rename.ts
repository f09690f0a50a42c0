// Applies a rename_layers result: {names: [{id, name}]}.
import { isRecord } from '../shared/guards';
import type { RenameChange, RenameSummary } from '../shared/protocol';

export type RenameApi = Pick<PluginAPI, 'getNodeByIdAsync'>;

export interface RenameEntry {
  id: string;
  name: string;
}

export class RenameResultError extends Error {
  override name = 'RenameResultError';
}

/** Figma caps nothing, but names beyond this are certainly a model mistake. */
const MAX_NAME_LENGTH = 255;

export function parseRenameResult(value: unknown): RenameEntry[] {
  const names = isRecord(value) && Array.isArray(value.names) ? value.names : Array.isArray(value) ? value : null;
  if (!names) throw new RenameResultError('rename result must be {names: [{id, name}]}');
  const entries: RenameEntry[] = [];
  for (const item of names) {
    if (!isRecord(item) || typeof item.id !== 'string' || typeof item.name !== 'string') continue;
    const name = item.name.trim().slice(0, MAX_NAME_LENGTH);
    if (name !== '') entries.push({ id: item.id, name });
  }
  return entries;
}

export async function renameLayers(api: RenameApi, entries: readonly RenameEntry[]): Promise<RenameSummary> {
  const changes: RenameChange[] = [];
  const missing: string[] = [];
  for (const entry of entries) {
    // dynamic-page document access: only the async lookup is allowed.
    const node = await api.getNodeByIdAsync(entry.id);
    if (!node || node.removed || node.type === 'DOCUMENT') {
      missing.push(entry.id);
      continue;
    }
    if (node.name !== entry.name) {
      changes.push({ id: entry.id, from: node.name, to: entry.name });
      node.name = entry.name;
    }
  }
  return { renamed: changes.length, missing, changes };
}
