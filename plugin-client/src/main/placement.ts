// Puts new nodes on the current page, centred in the viewport, and selects them.
export type PlacementApi = Pick<PluginAPI, 'currentPage' | 'viewport'>;

export function placeInViewport(api: PlacementApi, nodes: readonly SceneNode[]): void {
  if (nodes.length === 0) return;
  const { x: cx, y: cy } = api.viewport.center;
  let offset = 0;
  for (const node of nodes) {
    api.currentPage.appendChild(node);
    node.x = Math.round(cx - node.width / 2 + offset);
    node.y = Math.round(cy - node.height / 2);
    // Several results side by side rather than stacked on top of each other.
    offset += node.width + 40;
  }
  api.currentPage.selection = [...nodes];
  api.viewport.scrollAndZoomIntoView([...nodes]);
}
