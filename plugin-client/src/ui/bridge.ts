// The iframe side of Figma's message channel: the UI posts
// {pluginMessage} to its parent, and main's figma.ui.postMessage arrives as a
// window message whose data.pluginMessage holds the payload.
import type { MessagePortLike } from '../shared/rpc';

export function figmaMessagePort(win: Window = window): MessagePortLike {
  return {
    post(message) {
      win.parent.postMessage({ pluginMessage: message }, '*');
    },
    listen(handler) {
      const onMessage = (event: MessageEvent): void => {
        const data: unknown = event.data;
        if (typeof data === 'object' && data !== null && 'pluginMessage' in data) {
          handler((data as { pluginMessage: unknown }).pluginMessage);
        }
      };
      win.addEventListener('message', onMessage);
      return () => win.removeEventListener('message', onMessage);
    },
  };
}
