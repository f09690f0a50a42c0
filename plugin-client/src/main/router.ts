// Answers the UI's requests (see shared/protocol.ts). One response per request,
// errors included, so the UI's pending request never waits for its timeout.
import { extractDesignTree, parseDesignTree } from '../shared/design-tree';
import { errorMessage } from '../shared/guards';
import { parseUiRequest, ProtocolError, type MainResponse, type UiRequest } from '../shared/protocol';
import { buildDesignTree } from './apply-tree';
import { collectDesignSystem, collectLayers } from './collect';
import { createImageNode } from './image';
import { placeInViewport } from './placement';
import { parseRenameResult, renameLayers } from './rename';

export type RouterApi = Pick<
  PluginAPI,
  | 'createFrame'
  | 'createText'
  | 'createRectangle'
  | 'createImage'
  | 'loadFontAsync'
  | 'importComponentByKeyAsync'
  | 'getNodeByIdAsync'
  | 'getLocalPaintStylesAsync'
  | 'getLocalTextStylesAsync'
  | 'loadAllPagesAsync'
  | 'root'
  | 'currentPage'
  | 'viewport'
  | 'clientStorage'
  | 'notify'
>;

async function handle(api: RouterApi, request: UiRequest): Promise<unknown> {
  switch (request.type) {
    case 'storage-get': {
      const value: unknown = await api.clientStorage.getAsync(request.params.key);
      return typeof value === 'string' ? value : null;
    }
    case 'storage-set':
      await api.clientStorage.setAsync(request.params.key, request.params.value);
      return null;
    case 'storage-remove':
      await api.clientStorage.deleteAsync(request.params.key);
      return null;
    case 'collect-context': {
      const { layers, truncated } = collectLayers(api.currentPage.selection);
      return {
        selection: layers,
        selectionTruncated: truncated,
        designSystem: request.params.includeDesignSystem ? await collectDesignSystem(api) : null,
      };
    }
    case 'apply-design': {
      const tree = parseDesignTree(extractDesignTree(request.params.tree));
      const built = await buildDesignTree(api, tree);
      placeInViewport(api, [built.root]);
      return {
        rootId: built.root.id,
        created: built.created,
        missingComponents: built.missingComponents,
        fontFallbacks: built.fontFallbacks,
      };
    }
    case 'rename-layers':
      return renameLayers(api, parseRenameResult(request.params.names));
    case 'place-image': {
      const node = await createImageNode(api, request.params);
      placeInViewport(api, [node]);
      return { nodeId: node.id, width: node.width, height: node.height };
    }
    case 'notify':
      api.notify(request.params.message, request.params.error ? { error: true } : undefined);
      return null;
  }
}

/** Returns the response to post back, or null for messages that are not requests. */
export async function routeMessage(api: RouterApi, message: unknown): Promise<MainResponse | null> {
  let request: UiRequest | null;
  try {
    request = parseUiRequest(message);
  } catch (error) {
    const requestId =
      typeof message === 'object' && message !== null && 'requestId' in message ? String(message.requestId) : '';
    return { type: 'response', requestId, ok: false, error: error instanceof ProtocolError ? error.message : errorMessage(error) };
  }
  if (!request) return null;
  try {
    const result = await handle(api, request);
    return { type: 'response', requestId: request.requestId, ok: true, result };
  } catch (error) {
    return { type: 'response', requestId: request.requestId, ok: false, error: errorMessage(error) };
  }
}
