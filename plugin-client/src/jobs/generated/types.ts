/* eslint-disable */
/**
 * @placeholder
 * PLACEHOLDER — TO BE REGENERATED. Hand-written stand-in for the output of
 * scripts/gen-types.mjs, which will generate this file from the worker's JSON
 * Schemas (../worker/schemas/<kind>.payload.json / <kind>.result.json, written
 * by `python -m worker schema`). Run `npm run gen:types` once they exist; the
 * generated file replaces this one entirely (and drops the @placeholder tag,
 * which `npm run check:types` uses to tell the two apart).
 *
 * The names follow the generator's convention: <Kind>Payload, <Kind>Result,
 * the JobKinds map, JobKind and JOB_KINDS.
 */

export interface GenerateDesignPayload {
  prompt: string;
  design_system?: unknown;
  selection?: unknown[];
  [k: string]: unknown;
}
export interface GenerateDesignResult {
  tree: unknown;
  [k: string]: unknown;
}
export interface RenameLayersPayload {
  layers: unknown[];
  instructions?: string;
  [k: string]: unknown;
}
export interface RenameLayersResult {
  names: {
    id: string;
    name: string;
  }[];
  [k: string]: unknown;
}
export interface GenerateEditsPayload {
  prompt: string;
  layers?: unknown[];
  [k: string]: unknown;
}
export interface GenerateEditsResult {
  text?: string;
  [k: string]: unknown;
}
export interface GenerateImagePayload {
  prompt: string;
  width?: number;
  height?: number;
  [k: string]: unknown;
}
export interface GenerateImageResult {
  path: string;
  mime_type: string;
  width: number;
  height: number;
  signed_url?: string;
  [k: string]: unknown;
}

export interface JobKinds {
  generate_design: { payload: GenerateDesignPayload; result: GenerateDesignResult };
  rename_layers: { payload: RenameLayersPayload; result: RenameLayersResult };
  generate_edits: { payload: GenerateEditsPayload; result: GenerateEditsResult };
  generate_image: { payload: GenerateImagePayload; result: GenerateImageResult };
}

export type JobKind = keyof JobKinds;

export const JOB_KINDS = ['generate_design', 'generate_edits', 'generate_image', 'rename_layers'] as const satisfies readonly JobKind[];
