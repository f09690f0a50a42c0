// Message protocol between the plugin UI (iframe) and the main thread.
// Every UI→main message is a request carrying a requestId; main answers with
// exactly one `response` carrying the same id. Main may also push `event`s.
import { isFiniteNumber, isRecord } from './guards';

export interface LayerInfo {
  id: string;
  name: string;
  type: string;
  width?: number;
  height?: number;
  /** Text content of TEXT layers (truncated), so a model can name them. */
  characters?: string;
  parentId: string | null;
  depth: number;
}

export interface PaintStyleInfo {
  key: string;
  name: string;
  /** Hex colour of the first solid paint, if any. */
  color?: string;
}

export interface TextStyleInfo {
  key: string;
  name: string;
  fontFamily: string;
  fontStyle: string;
  fontSize: number;
}

export interface ComponentInfo {
  key: string;
  name: string;
  description?: string;
}

export interface DesignSystemSummary {
  paintStyles: PaintStyleInfo[];
  textStyles: TextStyleInfo[];
  components: ComponentInfo[];
}

export interface PluginContext {
  selection: LayerInfo[];
  /** True when the selection had more layers than were collected. */
  selectionTruncated: boolean;
  designSystem: DesignSystemSummary | null;
}

export interface ApplyDesignSummary {
  rootId: string;
  created: number;
  missingComponents: string[];
  fontFallbacks: string[];
}

export interface RenameChange {
  id: string;
  from: string;
  to: string;
}

export interface RenameSummary {
  renamed: number;
  missing: string[];
  /** The renames made, in result order. */
  changes: RenameChange[];
}

export interface PlaceImageSummary {
  nodeId: string;
  width: number;
  height: number;
}

/** Request type → its params and the result main answers with. */
export interface RequestMap {
  'storage-get': { params: { key: string }; result: string | null };
  'storage-set': { params: { key: string; value: string }; result: null };
  'storage-remove': { params: { key: string }; result: null };
  'collect-context': { params: { includeDesignSystem: boolean }; result: PluginContext };
  // Results are validated on the main side, so the UI passes them through untyped.
  'apply-design': { params: { tree: unknown }; result: ApplyDesignSummary };
  'rename-layers': { params: { names: unknown }; result: RenameSummary };
  'place-image': {
    params: { bytes: Uint8Array; width?: number; height?: number; name: string };
    result: PlaceImageSummary;
  };
  notify: { params: { message: string; error?: boolean }; result: null };
}

export type RequestType = keyof RequestMap;

export type UiRequest = {
  [K in RequestType]: { type: K; requestId: string; params: RequestMap[K]['params'] };
}[RequestType];

export type MainResponse =
  | { type: 'response'; requestId: string; ok: true; result: unknown }
  | { type: 'response'; requestId: string; ok: false; error: string };

export type MainEvent = { type: 'event'; event: 'selection-changed'; selectionCount: number };

export type MainToUi = MainResponse | MainEvent;

export const REQUEST_TYPES: readonly RequestType[] = [
  'storage-get',
  'storage-set',
  'storage-remove',
  'collect-context',
  'apply-design',
  'rename-layers',
  'place-image',
  'notify',
];

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

function requireString(params: Record<string, unknown>, key: string, type: string): string {
  const value = params[key];
  if (typeof value !== 'string' || value === '') throw new ProtocolError(`${type}: params.${key} must be a non-empty string`);
  return value;
}

/**
 * Validates a message received by the main thread. Returns null for messages
 * that are not requests at all (ignored); throws ProtocolError for malformed
 * requests so the caller can answer with an error response.
 */
export function parseUiRequest(message: unknown): UiRequest | null {
  if (!isRecord(message) || typeof message.type !== 'string' || typeof message.requestId !== 'string') return null;
  const type = message.type as RequestType;
  if (!REQUEST_TYPES.includes(type)) return null;
  const requestId = message.requestId;
  const params = message.params;
  if (!isRecord(params)) throw new ProtocolError(`${type}: params must be an object`);
  switch (type) {
    case 'storage-get':
    case 'storage-remove':
      return { type, requestId, params: { key: requireString(params, 'key', type) } };
    case 'storage-set': {
      const value = params.value;
      if (typeof value !== 'string') throw new ProtocolError('storage-set: params.value must be a string');
      return { type, requestId, params: { key: requireString(params, 'key', type), value } };
    }
    case 'collect-context':
      return { type, requestId, params: { includeDesignSystem: params.includeDesignSystem === true } };
    case 'apply-design':
      return { type, requestId, params: { tree: params.tree } };
    case 'rename-layers':
      return { type, requestId, params: { names: params.names } };
    case 'place-image': {
      const bytes = params.bytes;
      if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
        throw new ProtocolError('place-image: params.bytes must be a non-empty Uint8Array');
      }
      const out: RequestMap['place-image']['params'] = {
        bytes,
        name: typeof params.name === 'string' && params.name !== '' ? params.name : 'Generated image',
      };
      if (isFiniteNumber(params.width) && params.width > 0) out.width = params.width;
      if (isFiniteNumber(params.height) && params.height > 0) out.height = params.height;
      return { type, requestId, params: out };
    }
    case 'notify': {
      const out: RequestMap['notify']['params'] = { message: requireString(params, 'message', type) };
      if (params.error === true) out.error = true;
      return { type, requestId, params: out };
    }
  }
}

export function parseMainToUi(message: unknown): MainToUi | null {
  if (!isRecord(message)) return null;
  if (message.type === 'response' && typeof message.requestId === 'string') {
    if (message.ok === true) return { type: 'response', requestId: message.requestId, ok: true, result: message.result };
    if (message.ok === false) {
      const error = typeof message.error === 'string' ? message.error : 'unknown error';
      return { type: 'response', requestId: message.requestId, ok: false, error };
    }
    return null;
  }
  if (message.type === 'event' && message.event === 'selection-changed' && isFiniteNumber(message.selectionCount)) {
    return { type: 'event', event: 'selection-changed', selectionCount: message.selectionCount };
  }
  return null;
}
