// Job payloads built from what the main thread collected, shaped to the
// worker's pydantic models (the generated types in jobs/generated/types.ts).
// The worker forbids extra fields and enforces the length limits below, so
// everything is trimmed to fit here rather than failing the job later.
import type {
  ComponentRef,
  DesignSystem,
  GenerateDesignPayload,
  GenerateEditsPayload,
  GenerateImagePayload,
  Layer,
  RenameLayersPayload,
} from '../jobs/generated/types';
import type { DesignSystemSummary, LayerInfo } from '../shared/protocol';

/** Limits of the worker's payload models (worker/handlers/*.py). */
export const PAYLOAD_LIMITS = {
  prompt: 4000,
  imagePrompt: 2000,
  /** The worker allows 20 000; less keeps the payload well under 64 KiB. */
  summary: 16_000,
  components: 200,
  /** JSON characters spent on component refs at most. */
  componentsJsonBudget: 30_000,
  componentField: 200,
  layers: 500,
  layerId: 100,
  layerType: 40,
  layerName: 500,
  layerText: 2000,
  renameContext: 2000,
  editText: 5000,
  editInstruction: 1000,
} as const;

export const DEFAULT_EDIT_VARIANTS = 3;

export class PayloadError extends Error {
  override name = 'PayloadError';
}

const clip = (value: string, max: number): string => (value.length > max ? value.slice(0, max) : value);

/** Selected layers as the rename_layers handler reads them. */
export function renameLayersPayload(selection: readonly LayerInfo[], context: string): RenameLayersPayload {
  const seen = new Set<string>();
  const layers: Layer[] = [];
  for (const info of selection) {
    // Ids longer than the worker accepts cannot be renamed by id anyway.
    if (info.id === '' || info.id.length > PAYLOAD_LIMITS.layerId || seen.has(info.id)) continue;
    if (layers.length >= PAYLOAD_LIMITS.layers) break;
    seen.add(info.id);
    const layer: Layer = { id: info.id, type: clip(info.type, PAYLOAD_LIMITS.layerType) || 'NODE', name: clip(info.name, PAYLOAD_LIMITS.layerName) };
    if (info.characters !== undefined && info.characters !== '') layer.text = clip(info.characters, PAYLOAD_LIMITS.layerText);
    if (info.parentId !== null && info.parentId.length <= PAYLOAD_LIMITS.layerId) layer.parent_id = info.parentId;
    layers.push(layer);
  }
  const [first, ...rest] = layers;
  if (!first) throw new PayloadError('Select the layers to rename first.');
  const payload: RenameLayersPayload = { layers: [first, ...rest] };
  const ctx = context.trim();
  if (ctx !== '') payload.context = clip(ctx, PAYLOAD_LIMITS.renameContext);
  return payload;
}

/** The local design system in prose plus its components, for generate_design. */
export function designSystemPayload(summary: DesignSystemSummary | null): DesignSystem | undefined {
  if (!summary) return undefined;
  const lines: string[] = [];
  if (summary.paintStyles.length > 0) {
    lines.push(`Colors: ${summary.paintStyles.map((s) => (s.color ? `${s.name} ${s.color}` : s.name)).join(', ')}`);
  }
  if (summary.textStyles.length > 0) {
    lines.push(
      `Text styles: ${summary.textStyles.map((s) => `${s.name} (${s.fontFamily} ${s.fontStyle} ${s.fontSize})`).join(', ')}`,
    );
  }
  const described = summary.components.filter((c) => c.description);
  if (described.length > 0) lines.push(`Components: ${described.map((c) => `${c.name}: ${c.description ?? ''}`).join('; ')}`);
  // The whole generate_design payload must stay under the kind's 64 KiB limit.
  const components: ComponentRef[] = [];
  let budget = PAYLOAD_LIMITS.componentsJsonBudget;
  for (const c of summary.components) {
    if (components.length >= PAYLOAD_LIMITS.components) break;
    if (c.name === '' || c.key === '' || c.key.length > PAYLOAD_LIMITS.componentField) continue;
    const ref: ComponentRef = { name: clip(c.name, PAYLOAD_LIMITS.componentField), key: c.key };
    budget -= JSON.stringify(ref).length + 1;
    if (budget < 0) break;
    components.push(ref);
  }
  const out: DesignSystem = {};
  const prose = clip(lines.join('\n'), PAYLOAD_LIMITS.summary);
  if (prose !== '') out.summary = prose;
  if (components.length > 0) out.components = components;
  return out.summary === undefined && out.components === undefined ? undefined : out;
}

export function generateDesignPayload(prompt: string, summary: DesignSystemSummary | null): GenerateDesignPayload {
  const text = prompt.trim();
  if (text === '') throw new PayloadError('Write a prompt first.');
  const payload: GenerateDesignPayload = { prompt: clip(text, PAYLOAD_LIMITS.prompt) };
  const designSystem = designSystemPayload(summary);
  if (designSystem) payload.design_system = designSystem;
  return payload;
}

/**
 * generate_edits rewrites copy: the text of the selected TEXT layers, with
 * the prompt as the instruction; without selected text the prompt itself is
 * the copy to rewrite.
 */
export function generateEditsPayload(prompt: string, selection: readonly LayerInfo[]): GenerateEditsPayload {
  const instruction = prompt.trim();
  const copy = selection
    .filter((l) => l.type === 'TEXT' && l.characters !== undefined && l.characters.trim() !== '')
    .map((l) => (l.characters ?? '').trim())
    .join('\n');
  if (copy !== '') {
    const payload: GenerateEditsPayload = { text: clip(copy, PAYLOAD_LIMITS.editText), variants: DEFAULT_EDIT_VARIANTS };
    if (instruction !== '') payload.instruction = clip(instruction, PAYLOAD_LIMITS.editInstruction);
    return payload;
  }
  if (instruction === '') throw new PayloadError('Select text layers or write the copy to rewrite.');
  return { text: clip(instruction, PAYLOAD_LIMITS.editText), variants: DEFAULT_EDIT_VARIANTS };
}

export function generateImagePayload(prompt: string): GenerateImagePayload {
  const text = prompt.trim();
  if (text === '') throw new PayloadError('Write a prompt first.');
  return { prompt: clip(text, PAYLOAD_LIMITS.imagePrompt), aspect_ratio: '1:1' };
}
